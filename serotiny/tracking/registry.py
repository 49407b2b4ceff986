"""The MLflow model registry: a trained run as a version of a registered model, and a
``models:/`` URI resolved back to the run and checkpoint it stands for.

What a version points at: MLflow's registry wants a source URI, and serotiny's model is a
run's checkpoint plus the resolved config stored beside it, not an MLflow ``MLmodel`` folder.
So a version's source is the checkpoint in the run's artifacts
(``runs:/<id>/checkpoints/best.ckpt``), or for a cross-validation the parent run itself
(``runs:/<id>``, whose folds hold the models); its run id is that run, so MLflow's UI links
the two; its tags say which checkpoint (:data:`CHECKPOINT_TAG`) and whether the version is
an ensemble (:data:`ENSEMBLE_TAG`). Nothing is copied: the version is the run's checkpoint
in place, loaded the way a run is.

Registering the same run and checkpoint again gives the version it already is (the alias is
still moved to it), so ``serotiny register`` can be rerun as safely as ``serotiny train``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from serotiny.errors import RunLookupError
from serotiny.settings.schema import Settings
from serotiny.tracking.artifacts import CHECKPOINT_ARTIFACT_DIR, CHECKPOINT_NAMES, list_checkpoints
from serotiny.tracking.cross_validation_runs import FOLDS_TAG, fold_runs
from serotiny.tracking.run_names import quoted

log = logging.getLogger(__name__)

MODELS_PREFIX = "models:/"
#: Which of the run's checkpoints the version is (``best`` or ``last``).
CHECKPOINT_TAG = "serotiny.checkpoint"
#: ``true`` when the version is a cross-validation's folds, answering as one ensemble.
ENSEMBLE_TAG = "serotiny.ensemble"
#: The registered run's name, for people browsing the registry.
RUN_NAME_TAG = "serotiny.run_name"


class RegistryError(RunLookupError):
    """A registered model, version or alias that does not exist, or a run that cannot be one."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A version of a registered model, as serotiny reads it: which run and checkpoint."""

    name: str
    version: str
    run_id: str
    checkpoint: str
    ensemble: bool

    @property
    def uri(self) -> str:
        """The version's own URI, ``models:/<name>/<version>``."""
        return f"{MODELS_PREFIX}{self.name}/{self.version}"

    @classmethod
    def of(cls, version: ModelVersion) -> RegisteredVersion:
        """Read an MLflow model version that serotiny registered."""
        tags = version.tags or {}
        if CHECKPOINT_TAG not in tags or not version.run_id:
            raise RegistryError(
                f"version {version.version} of registered model '{version.name}' was not "
                f"registered by serotiny (no '{CHECKPOINT_TAG}' tag): load it with MLflow"
            )
        return cls(
            version.name,
            str(version.version),
            version.run_id,
            tags[CHECKPOINT_TAG],
            tags.get(ENSEMBLE_TAG) == "true",
        )


def checkpoint_to_register(client: MlflowClient, run: Run, wanted: str) -> tuple[str, bool]:
    """Which checkpoint the run's version will be, and whether the run is an ensemble.

    The wanted one (``checkpoint.use``) when the run has it, else the other (a run trained
    without a monitored metric has only ``last``), as loading falls back; every fold of a
    cross-validation must hold a checkpoint.
    """
    ensemble = FOLDS_TAG in run.data.tags
    runs = fold_runs(client, run.info.run_id) if ensemble else [run]
    if not runs:
        raise RegistryError(f"cross-validation '{run.info.run_name}' has no folds to register")
    order = [wanted, *(name for name in CHECKPOINT_NAMES if name != wanted)]
    for name in order:
        artifact = f"{CHECKPOINT_ARTIFACT_DIR}/{name}.ckpt"
        if all(artifact in list_checkpoints(client, each.info.run_id) for each in runs):
            return name, ensemble
    raise RegistryError(
        f"run '{run.info.run_name}' ({run.info.run_id}) has no checkpoint under "
        f"'{CHECKPOINT_ARTIFACT_DIR}/'{' in every fold' if ensemble else ''}: nothing to register"
    )


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model unless it exists (another process may create it too)."""
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register_run(
    client: MlflowClient, run: Run, name: str, alias: str | None, checkpoint: str = "best"
) -> RegisteredVersion:
    """Register ``run``'s checkpoint (a cross-validation: its folds') as a version of ``name``.

    Args:
        client: a client on the run's tracking store (SQLite or a server).
        run: a training run, or a cross-validation's parent run.
        name: the registered model, created on first use.
        alias: moved to the version when given (``champion``).
        checkpoint: ``best`` or ``last``; the other when the run lacks it.

    Returns:
        The version: a new one, or the one this run and checkpoint already are.

    Example:
        >>> version = register_run(client, run, "cells", "champion")  # doctest: +SKIP
        >>> version.uri  # doctest: +SKIP
        'models:/cells/1'
    """
    which, ensemble = checkpoint_to_register(client, run, checkpoint)
    run_id = run.info.run_id
    ensure_registered_model(client, name)
    found = client.search_model_versions(f"name = {quoted(name)} and run_id = '{run_id}'")
    same = [v for v in found if (v.tags or {}).get(CHECKPOINT_TAG) == which]
    if same:
        version = max(same, key=lambda v: int(v.version))
    else:
        source = f"runs:/{run_id}" + (
            "" if ensemble else f"/{CHECKPOINT_ARTIFACT_DIR}/{which}.ckpt"
        )
        tags = {
            CHECKPOINT_TAG: which,
            ENSEMBLE_TAG: str(ensemble).lower(),
            RUN_NAME_TAG: str(run.info.run_name),
        }
        version = client.create_model_version(name, source, run_id=run_id, tags=tags)
    if alias:
        client.set_registered_model_alias(name, alias, str(version.version))
    return RegisteredVersion(name, str(version.version), run_id, which, ensemble)


def register_if_configured(
    client: MlflowClient, run_id: str, settings: Settings
) -> RegisteredVersion | None:
    """After a training finished its run: register it when ``registry.register_after_training``.

    A cross-validation fold or a search trial (a run with a parent) is not registered on its
    own: the parent's ensemble, or the trial a person picks, is the model worth a version.
    Call it once the run's status is FINISHED and its checkpoints are in its artifacts.
    """
    options = settings.registry
    if not options.register_after_training or not options.name:
        return None
    if settings.mlflow.parent_run_id:
        log.info("run %s has a parent run: not registered on its own", run_id)
        return None
    run = client.get_run(run_id)
    version = register_run(client, run, options.name, options.alias, settings.checkpoint.use.value)
    log_registered(run, version, options.alias)
    return version


def log_registered(run: Run, version: RegisteredVersion, alias: str | None) -> None:
    """Say what was registered, and the URI that loads it."""
    uri = f"{MODELS_PREFIX}{version.name}@{alias}" if alias else version.uri
    log.info(
        "registered run '%s' (%s) as version %s of model '%s' (%s checkpoint%s): load it as %s",
        run.info.run_name,
        run.info.run_id,
        version.version,
        version.name,
        version.checkpoint,
        ", an ensemble of its folds" if version.ensemble else "",
        uri,
    )
