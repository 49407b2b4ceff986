"""MLflow helpers: experiments, runs looked up by their unique name, checkpoints, loading.

serotiny treats a run name as unique under its experiment (MLflow does not), and finds a
run by name with a single ``search_runs`` query rather than listing every run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serotiny.errors import RunLookupError

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from mlflow import MlflowClient
    from mlflow.entities import Run

CHECKPOINT_ARTIFACT_DIR = "checkpoints"
CONFIG_ARTIFACT = "config/train.yaml"
CHECKPOINT_NAMES = ("best", "last")
SQLITE_PREFIX = "sqlite:///"


def connect(tracking_uri: str) -> MlflowClient:
    """An MLflow client on ``tracking_uri`` (``sqlite:///...`` or ``http(s)://...``)."""
    # Progress bars for single small artifacts only clutter the CLI's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    # The first use of a SQLite store creates and migrates its schema. Two processes doing
    # that at once (sweep jobs, DDP ranks, a notebook) corrupt each other's migration, so
    # the first touch happens under the store's lock.
    with store_lock(tracking_uri):
        client = MlflowClient(tracking_uri=tracking_uri)
        if tracking_uri.startswith(SQLITE_PREFIX):
            client.search_experiments(max_results=1)
    return client


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold the lock of a SQLite store (a file next to the database); no-op for a server.

    Processes on one machine take it around the read-then-write steps that must not
    interleave: migrating a new store, and deciding what a run name means, then creating
    or reopening that run.
    """
    if not tracking_uri.startswith(SQLITE_PREFIX):
        yield
        return
    from filelock import FileLock

    database = Path(tracking_uri[len(SQLITE_PREFIX) :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock", timeout=300):
        yield


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where artifacts go by default: next to a SQLite store, or wherever a server decides.

    An experiment created without an explicit location puts artifacts under ``./mlruns``
    of whatever the current directory is, so for SQLite we always give one.
    """
    if tracking_uri.startswith(SQLITE_PREFIX):
        database = Path(tracking_uri[len(SQLITE_PREFIX) :])
        return (database.parent / "mlartifacts").resolve().as_uri()
    return None


def get_or_create_experiment(
    client: MlflowClient, name: str, artifact_location: str | None = None
) -> str:
    """The id of experiment ``name``, creating it (with an artifact location) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise RunLookupError(
                f"MLflow experiment '{name}' is deleted; restore it or choose another "
                "++mlflow.experiment_name"
            )
        return experiment.experiment_id
    location = artifact_location or default_artifact_location(client.tracking_uri)
    if location and "://" not in location:
        location = Path(location).expanduser().resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process (a sweep job, a DDP rank) may have created it meanwhile.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _quoted(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise RunLookupError(f"run name {value!r} mixes both quote characters; rename the run")


def find_runs_by_name(client: MlflowClient, experiment_id: str, run_name: str) -> list[Run]:
    """All active runs named ``run_name`` in the experiment, newest first (one query)."""
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=f"tags.`mlflow.runName` = {_quoted(run_name)}",
            order_by=["attributes.start_time DESC"],
            max_results=100,
        )
    )


def get_run_by_name(client: MlflowClient, experiment_name: str, run_name: str) -> Run:
    """The single run named ``run_name`` under ``experiment_name``; one clear error if not."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise RunLookupError(
            f"no run named '{run_name}': there is no MLflow experiment '{experiment_name}' at "
            f"{redacted_uri(client)}; check ++mlflow.experiment_name and ++mlflow.tracking_uri"
        )
    runs = find_runs_by_name(client, experiment.experiment_id, run_name)
    if not runs:
        raise RunLookupError(
            f"no run named '{run_name}' in experiment '{experiment_name}' at "
            f"{redacted_uri(client)}; train it first or check ++mlflow.run_name"
        )
    if len(runs) > 1:
        ids = ", ".join(run.info.run_id for run in runs)
        raise RunLookupError(
            f"run name '{run_name}' is not unique in experiment '{experiment_name}' "
            f"(runs {ids}); delete the extra runs or pick one by id"
        )
    return runs[0]


def redacted_uri(client_or_uri: MlflowClient | str) -> str:
    """The tracking URI with any ``user:password@`` hidden, for messages."""
    from serotiny.ml_ops.config_utils import redact

    uri = client_or_uri if isinstance(client_or_uri, str) else client_or_uri.tracking_uri
    return str(redact(uri))


def list_checkpoints(client: MlflowClient, run_id: str) -> list[str]:
    """Artifact paths of the checkpoints stored in the run."""
    return [
        item.path
        for item in client.list_artifacts(run_id, CHECKPOINT_ARTIFACT_DIR)
        if item.path.endswith(".ckpt")
    ]


def download_checkpoint(client: MlflowClient, run_id: str, which: str, destination: Path) -> Path:
    """Download the run's ``best`` or ``last`` checkpoint into ``destination``; fall back to
    the other one.

    The run's best checkpoint may be missing when nothing was monitored; then the last one is
    the only model there is.
    """
    if which not in CHECKPOINT_NAMES:
        raise RunLookupError(f"unknown checkpoint '{which}': choose one of {CHECKPOINT_NAMES}")
    available = set(list_checkpoints(client, run_id))
    order = [which, *(name for name in CHECKPOINT_NAMES if name != which)]
    for name in order:
        artifact = f"{CHECKPOINT_ARTIFACT_DIR}/{name}.ckpt"
        if artifact in available:
            destination.mkdir(parents=True, exist_ok=True)
            return Path(client.download_artifacts(run_id, artifact, str(destination)))
    raise RunLookupError(
        f"run {run_id} has no checkpoint under '{CHECKPOINT_ARTIFACT_DIR}/'; "
        "was it trained with checkpointing enabled?"
    )


def load_run_config(client: MlflowClient, run_id: str) -> Any:
    """The resolved training config stored with the run (an OmegaConf DictConfig)."""
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory(prefix="serotiny-config-") as folder:
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except Exception as error:
            raise RunLookupError(
                f"run {run_id} has no '{CONFIG_ARTIFACT}' artifact; it was not trained by serotiny"
            ) from error
        return OmegaConf.load(path)


def load_checkpoint_state(path: Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects (``weights_only=True``)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def build_ensemble_from_run(
    client: MlflowClient, parent_run_id: str, checkpoint: str = "best", aggregate: str = "mean"
) -> pl.LightningModule:
    """The fold models of a cross-validation parent run, as one ensemble module."""
    from serotiny.ml_ops.cross_validation import fold_runs
    from serotiny.ml_ops.ensemble import EnsembleModule

    members = [
        build_single_model(client, run.info.run_id, checkpoint)
        for run in fold_runs(client, parent_run_id)
    ]
    if not members:
        raise RunLookupError(f"cross-validation run {parent_run_id} has no trained folds yet")
    ensemble = EnsembleModule(members, aggregate)
    ensemble.eval()
    return ensemble


def is_cross_validation_run(client: MlflowClient, run_id: str) -> bool:
    """Whether the run is the parent of a cross-validation (its folds hold the models)."""
    from serotiny.ml_ops.cross_validation import FOLDS_TAG

    return FOLDS_TAG in client.get_run(run_id).data.tags


def build_model_from_run(
    client: MlflowClient, run_id: str, checkpoint: str = "best", aggregate: str = "mean"
) -> pl.LightningModule:
    """The run's model: its own, or the ensemble of its folds for a cross-validation."""
    if is_cross_validation_run(client, run_id):
        return build_ensemble_from_run(client, run_id, checkpoint, aggregate)
    return build_single_model(client, run_id, checkpoint)


def build_single_model(
    client: MlflowClient, run_id: str, checkpoint: str = "best"
) -> pl.LightningModule:
    """Rebuild the run's LightningModule from its stored config and load its weights."""
    from hydra.utils import instantiate

    config = load_run_config(client, run_id)
    model = instantiate(config.model)
    with tempfile.TemporaryDirectory(prefix="serotiny-ckpt-") as folder:
        state = load_checkpoint_state(download_checkpoint(client, run_id, checkpoint, Path(folder)))
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model


def resolve_run_id(
    client: MlflowClient,
    run_id: str | None,
    run_name: str | None,
    experiment_name: str | None,
) -> str:
    """A run id, given either the id or a run name with its experiment."""
    if run_id:
        try:
            return client.get_run(run_id).info.run_id
        except Exception as error:
            if run_name is None and experiment_name is not None:
                # Allow passing a run *name* positionally together with an experiment.
                return get_run_by_name(client, experiment_name, run_id).info.run_id
            raise RunLookupError(f"no run with id '{run_id}' at {redacted_uri(client)}") from error
    if run_name and experiment_name:
        return get_run_by_name(client, experiment_name, run_name).info.run_id
    raise RunLookupError("give a run_id, or a run_name together with an experiment_name")


def load_model_from_checkpoint(
    tracking_uri: str,
    run_id: str | None = None,
    *,
    run_name: str | None = None,
    experiment_name: str | None = None,
    checkpoint: str = "best",
    aggregate: str = "mean",
) -> pl.LightningModule:
    """Load a trained model from an MLflow run, in any Python process (e.g. a notebook).

    Args:
        tracking_uri: the MLflow tracking URI the run was logged to.
        run_id: the run's id. Alternatively give ``run_name`` and ``experiment_name``.
        run_name: the run's (unique) name, used with ``experiment_name``.
        experiment_name: the experiment holding ``run_name``.
        checkpoint: ``"best"`` (default) or ``"last"``.
        aggregate: for a cross-validation parent run, how the folds' outputs are combined
            (``"mean"`` or ``"median"``).

    Returns:
        The LightningModule in eval mode. The run itself holds everything needed (its
        resolved config and checkpoints); the project's config tree is not used. Classes
        named in the config (``_target_``) must be importable. A cross-validation parent
        run gives an :class:`~serotiny.ml_ops.ensemble.EnsembleModule` of its folds.
    """
    client = connect(tracking_uri)
    resolved = resolve_run_id(client, run_id, run_name, experiment_name)
    return build_model_from_run(client, resolved, checkpoint, aggregate)
