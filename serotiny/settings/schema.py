"""The config sections serotiny itself reads, as dataclasses: every default in one place.

A project's config tree holds two kinds of sections. ``model``, ``data``, ``trainer`` and the
project's own keys describe objects that Hydra builds, and are the project's business.
``mlflow``, ``resume``, ``checkpoint``, ``cv``, ``paths``, ``predictions``, ``ensemble``,
``search`` and ``registry`` are serotiny's: each key has one meaning in every command, a type,
and a default here. A key serotiny does not know in those sections is a mistake
(``++resume.allow_config_chnage=true`` would otherwise be ignored without a word), reported
by ``serotiny.settings.reading``.

The sections are registered in Hydra's ConfigStore as ``serotiny_settings``; a config that
puts ``serotiny_settings`` first in its defaults list shows every setting and its default in
``--cfg job`` and gets its values type-checked as Hydra composes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from serotiny.errors import SerotinyUserError
from serotiny.settings.resolvers import register_resolvers

SETTINGS_CONFIG_NAME = "serotiny_settings"


class MonitorMode(StrEnum):
    """Whether the monitored metric is better when lower or higher."""

    min = "min"
    max = "max"


class CheckpointChoice(StrEnum):
    """Which of a run's checkpoints ``test``, ``predict`` and notebooks load."""

    best = "best"
    last = "last"


class PredictionFormat(StrEnum):
    """The file format of a predictions table."""

    parquet = "parquet"
    csv = "csv"


class EnsembleAggregate(StrEnum):
    """How an ensemble (the folds of a cross-validation) combines its members' outputs."""

    mean = "mean"
    median = "median"


@dataclass
class TrackingSettings:
    """``mlflow``: where and under which name a command's run is tracked."""

    #: The embedded SQLite store in the project, or an ``http(s)://`` MLflow server.
    tracking_uri: str = "sqlite:///${paths.root}/mlruns.db"
    experiment_name: str = "default"
    #: The run's name, unique under the experiment, so that rerunning a command with it
    #: resumes or skips the run (None gives every training a new generated name).
    run_name: str | None = None
    #: The run by id instead of by name (for ``test``, ``predict``, ``register`` and
    #: notebooks), or a registered model's version by its URI: ``models:/cells@champion``
    #: (an alias) or ``models:/cells/3`` (a version number) loads that version's run and the
    #: checkpoint it was registered with.
    run_id: str | None = None
    #: Where a new experiment keeps artifacts (None puts them next to a SQLite store, in
    #: ``mlartifacts/``, or wherever the server decides).
    artifact_location: str | None = None
    #: A new run is made a child of this run (a search's or a cross-validation's parent).
    parent_run_id: str | None = None
    #: How long one request to an MLflow server may take before it counts as failed.
    #: (MLflow's own default is 120 s with 7 retries: 4 minutes to notice a dead server.)
    #: ``MLFLOW_HTTP_REQUEST_TIMEOUT`` in the environment wins over this.
    http_timeout_seconds: float = 10.0
    #: How often a failed request is retried at once (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
    #: wins). Training never waits on these: its records go through the run's journal.
    http_retries: int = 1
    #: How long a command waits at its end for the journal to reach MLflow; past it, the
    #: command says so and exits non-zero, and ``serotiny sync`` sends the rest later.
    sync_timeout_seconds: float = 120.0
    #: How long a command that just created or reopened a run waits before it checks that
    #: no other command claimed the same name meanwhile (a server has no lock to take).
    claim_settle_seconds: float = 1.0


@dataclass
class ResumeSettings:
    """``resume``: what rerunning a command with a run name that exists does."""

    #: Resume a FAILED/KILLED run even if its config changed (the change is recorded).
    allow_config_change: bool = False
    #: Set a FINISHED run aside (renamed) and train its name afresh.
    retrain_finished: bool = False
    #: A RUNNING run whose heartbeat is older than this is taken as abandoned and resumed.
    stale_after_seconds: float = 90.0
    #: How often a training refreshes its run's heartbeat.
    heartbeat_seconds: float = 30.0


@dataclass
class CheckpointSettings:
    """``checkpoint``: which checkpoint is best while training, and which one is used after."""

    #: ``best.ckpt`` keeps the best value of this metric (None: keep ``last.ckpt`` only).
    monitor: str | None = "val_loss"
    mode: MonitorMode = MonitorMode.min
    #: The checkpoint ``test``, ``predict`` and ``load_model_from_checkpoint`` use.
    use: CheckpointChoice = CheckpointChoice.best
    #: Trust this project's checkpoints, so that they are kept as Lightning writes them and
    #: unpickled in full when a resume, ``test``, ``predict`` or a notebook loads them. Left
    #: false, a checkpoint holds plain data and tensors only (hyperparameters that are
    #: objects, such as an optimizer partial, are kept as their text, since serotiny rebuilds
    #: models from the run's config) and is read with ``torch.load(weights_only=True)``,
    #: which runs no code from the file. Set it when the model or a callback stores other
    #: objects in checkpoints, or to open checkpoints written before serotiny kept them
    #: plain; only for checkpoints you trust as you trust the code you run.
    trusted: bool = False


@dataclass
class CrossValidationSettings:
    """``cv``: k-fold cross-validation over the train and valid rows (``++cv.folds=5``)."""

    folds: int | None = None
    #: Keep class proportions in every fold.
    stratify_column: str | None = None
    #: Keep all rows of a group (a subject, a plate) in one fold.
    group_column: str | None = None
    #: The seed of the fold assignment (None means the run's ``seed``).
    seed: int | None = None


@dataclass
class PathsSettings:
    """``paths``: where the project is and where a command writes its files."""

    #: The project's root folder (the serotiny CLI sets ``SEROTINY_PROJECT_ROOT``).
    root: str = "${oc.env:SEROTINY_PROJECT_ROOT,.}"
    #: This command's own folder (Hydra's job folder when run by the CLI).
    output_dir: str = "${hydra:runtime.output_dir}"
    #: The project's data (the template's manifests live here).
    data_dir: str = "${paths.root}/data"


@dataclass
class PredictionSettings:
    """``predictions``: the table ``serotiny predict`` writes."""

    #: The batch key holding each row's id, which every prediction must carry (it says which
    #: manifest row the prediction is for).
    id_key: str = "id"
    format: PredictionFormat = PredictionFormat.parquet


@dataclass
class EnsembleSettings:
    """``ensemble``: how a cross-validation's folds answer as one model."""

    aggregate: EnsembleAggregate = EnsembleAggregate.mean


@dataclass
class SearchSettings:
    """``search``: which trial of a stored hyperparameter search a training is.

    Set by serotiny's Optuna sweeper for each trial it launches (``hparams_search=optuna``);
    left empty otherwise.
    """

    #: The study's storage (``sqlite:///.../optuna.db``).
    storage: str | None = None
    study_name: str | None = None
    trial_number: int | None = None


# MLflow's rules for registered model names and aliases, checked before anything runs: a
# bad alias found only after a training (or after a version was made) would leave half a
# registration behind.
_ALIAS = re.compile(r"^[\w-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


@dataclass
class RegistrySettings:
    """``registry``: a trained run as a version of an MLflow registered model.

    ``serotiny register ++mlflow.run_name=x ++registry.name=cells ++registry.alias=champion``
    registers run ``x`` (a cross-validation: the ensemble of its folds) as a version of
    ``cells`` (the one it already is, when registered before) and points the alias at it;
    ``models:/cells@champion`` then names it in ``++mlflow.run_id`` and
    ``load_model_from_checkpoint``.
    """

    #: The registered model (created on first use); None registers nothing.
    name: str | None = None
    #: An alias moved to the version (``champion``, ``staging``); None sets none.
    alias: str | None = None
    #: Register each run ``serotiny train`` finishes (a cross-validation: its parent run,
    #: once every fold is done; folds and search trials are not registered on their own).
    register_after_training: bool = False

    def __post_init__(self) -> None:
        if self.name is not None and (not self.name.strip() or any(c in self.name for c in "/:@")):
            raise SerotinyUserError(
                f"registry.name={self.name!r} is not a registered model name: a name is not "
                "empty and has no '/', ':' or '@'"
            )
        if self.alias is not None and (
            not _ALIAS.match(self.alias) or _RESERVED_ALIAS.match(self.alias)
        ):
            raise SerotinyUserError(
                f"registry.alias={self.alias!r} is not an alias MLflow accepts: use letters, "
                "digits, '_' and '-', and neither 'latest' nor v<number>"
            )
        if self.name is None and (self.alias is not None or self.register_after_training):
            what = (
                "registry.alias" if self.alias is not None else "registry.register_after_training"
            )
            raise SerotinyUserError(
                f"{what} needs a model to register to: add ++registry.name=NAME"
            )


#: serotiny's sections, by the config key they live under.
SECTIONS: dict[str, type] = {
    "mlflow": TrackingSettings,
    "resume": ResumeSettings,
    "checkpoint": CheckpointSettings,
    "cv": CrossValidationSettings,
    "paths": PathsSettings,
    "predictions": PredictionSettings,
    "ensemble": EnsembleSettings,
    "search": SearchSettings,
    "registry": RegistrySettings,
}


@dataclass
class RunValues:
    """Top-level values serotiny reads beside its sections."""

    #: Seeds Python, NumPy and torch (and data loader workers) before anything is built.
    seed: int | None = None
    #: Print the resolved config as a tree before training.
    print_config: bool = True
    #: Before a run is opened, put the first batch through a copy of the model (where it
    #: is built, the CPU) to find a model and data that do not fit; false skips this, e.g.
    #: for a model that runs on a GPU only.
    preflight: bool = True


@dataclass
class Settings:
    """Everything serotiny reads from a composed config, typed and with defaults filled in."""

    mlflow: TrackingSettings = field(default_factory=TrackingSettings)
    resume: ResumeSettings = field(default_factory=ResumeSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    cv: CrossValidationSettings = field(default_factory=CrossValidationSettings)
    paths: PathsSettings = field(default_factory=PathsSettings)
    predictions: PredictionSettings = field(default_factory=PredictionSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    seed: int | None = None
    print_config: bool = True
    preflight: bool = True


#: Top-level keys of :class:`Settings` that are values rather than sections.
TOP_LEVEL_VALUES = tuple(f.name for f in fields(RunValues))


def register_settings() -> None:
    """Store serotiny's sections in Hydra's ConfigStore as ``serotiny_settings``, and register
    the resolvers serotiny's configs use.

    Only the sections are typed: the root of a composed config also holds the project's
    ``model``, ``data``, ``trainer`` and keys of its own.
    """
    from hydra.core.config_store import ConfigStore

    register_resolvers()
    node: dict[str, Any] = {name: section for name, section in SECTIONS.items()}
    # The top-level values too, untyped here (read_settings checks them): every command's
    # config then has a `seed`, which data configs may interpolate (``split_seed: ${seed}``).
    node.update({f.name: f.default for f in fields(RunValues)})
    ConfigStore.instance().store(name=SETTINGS_CONFIG_NAME, node=node)
