"""Trained models, rebuilt from their MLflow runs: the notebook-facing API.

A run holds everything needed to rebuild its model: the resolved config it was trained with
and its checkpoints. The project's config tree is not used, so a model loads in any Python
process (a notebook, another project) where the classes its config names are importable.
A version of a registered model (``models:/cells@champion``) is a run and one of its
checkpoints, loaded the same way (see :mod:`serotiny.tracking.registry`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from mlflow import MlflowClient

from serotiny.api.readable_checkpoint import readable_checkpoint
from serotiny.errors import RunLookupError
from serotiny.models.ensemble import EnsembleModule
from serotiny.settings.schema import CheckpointChoice
from serotiny.tracking.artifacts import load_run_config
from serotiny.tracking.cross_validation_runs import fold_runs, is_cross_validation_run
from serotiny.tracking.model_source import is_model_uri, resolve_model_uri, version_run
from serotiny.tracking.registry import RegistryError
from serotiny.tracking.run_names import resolve_run_id
from serotiny.tracking.store import connect


def build_single_model(
    client: MlflowClient, run_id: str, checkpoint: str = "best", trusted: bool = False
) -> pl.LightningModule:
    """Rebuild the run's LightningModule from its stored config and load its checkpoint.

    As Lightning's ``load_from_checkpoint`` does, the model's ``on_load_checkpoint`` sees the
    checkpoint first (a model restores state of its own there), then its weights are loaded.
    ``trusted``: unpickle the checkpoint in full even if the run's config does not say
    ``checkpoint.trusted: true``.
    """
    config = load_run_config(client, run_id)
    model = instantiate(config.model)
    with tempfile.TemporaryDirectory(prefix="serotiny-ckpt-") as folder:
        _, state = readable_checkpoint(client, run_id, checkpoint, Path(folder), trusted)
    model.on_load_checkpoint(state)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model


def build_ensemble_from_run(
    client: MlflowClient,
    parent_run_id: str,
    checkpoint: str = "best",
    aggregate: str = "mean",
    trusted: bool = False,
) -> EnsembleModule:
    """The fold models of a cross-validation parent run, as one ensemble module."""
    members = [
        build_single_model(client, run.info.run_id, checkpoint, trusted)
        for run in fold_runs(client, parent_run_id)
    ]
    if not members:
        raise RunLookupError(f"cross-validation run {parent_run_id} has no trained folds yet")
    ensemble = EnsembleModule(members, aggregate)
    ensemble.eval()
    return ensemble


def build_model_from_run(
    client: MlflowClient,
    run_id: str,
    checkpoint: str | None = None,
    aggregate: str = "mean",
    trusted: bool = False,
) -> pl.LightningModule:
    """The run's model: its own, or the ensemble of its folds for a cross-validation.

    ``run_id`` may be a registered model's version (``models:/cells@champion``,
    ``models:/cells/3``): its run is loaded with the checkpoint it was registered with.
    ``checkpoint`` None means ``best`` for a run. ``trusted``: unpickle checkpoints in full
    (``checkpoint.trusted``; a run trained with it set is trusted anyway).
    """
    run_id, checkpoint = pinned_checkpoint(client, run_id, checkpoint)
    if is_cross_validation_run(client, run_id):
        return build_ensemble_from_run(client, run_id, checkpoint, aggregate, trusted)
    return build_single_model(client, run_id, checkpoint, trusted)


def pinned_checkpoint(client: MlflowClient, run_id: str, checkpoint: str | None) -> tuple[str, str]:
    """The run id and checkpoint to load: a ``models:/`` URI's run and its registered one."""
    if not is_model_uri(run_id):
        return run_id, checkpoint or CheckpointChoice.best.value
    version = resolve_model_uri(client, run_id)
    if checkpoint not in (None, version.checkpoint):
        raise RegistryError(
            f"{run_id} is the {version.checkpoint} checkpoint of run {version.run_id}; load "
            f"that run by id for its {checkpoint} checkpoint, or leave checkpoint out"
        )
    return version_run(client, version).info.run_id, version.checkpoint


def load_model_from_checkpoint(
    tracking_uri: str,
    run_id: str | None = None,
    *,
    run_name: str | None = None,
    experiment_name: str | None = None,
    checkpoint: str | None = None,
    aggregate: str = "mean",
    trusted: bool = False,
) -> pl.LightningModule:
    """Load a trained model from an MLflow run, in any Python process (e.g. a notebook).

    Args:
        tracking_uri: the MLflow tracking URI the run was logged to.
        run_id: the run's id, or a registered model's version: ``"models:/cells@champion"``
            (the version an alias points at) or ``"models:/cells/3"``. Alternatively give
            ``run_name`` and ``experiment_name``.
        run_name: the run's (unique) name, used with ``experiment_name``.
        experiment_name: the experiment holding ``run_name``.
        checkpoint: ``"best"`` or ``"last"``; left out, ``"best"`` for a run and the
            checkpoint a registered version was registered with.
        aggregate: for a cross-validation parent run, how the folds' outputs are combined
            (``"mean"`` or ``"median"``).
        trusted: unpickle the run's checkpoints in full, as for a run trained with
            ``checkpoint.trusted: true`` (which needs no flag here). Left False, a checkpoint
            is read with ``torch.load(weights_only=True)``: tensors and plain data only, and
            one holding other objects is refused in one line. Only for checkpoints you
            trust as you trust the code you run.

    Returns:
        The LightningModule in eval mode. The run itself holds everything needed (its
        resolved config and checkpoints); the project's config tree is not used. Classes
        named in the config (``_target_``) must be importable. A cross-validation parent
        run gives an :class:`~serotiny.models.ensemble.EnsembleModule` of its folds.

    Example:
        >>> from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint
        >>> model = load_model_from_checkpoint(  # doctest: +SKIP
        ...     "sqlite:///path/to/project/mlruns.db", run_name="first", experiment_name="default"
        ... )
        >>> champion = load_model_from_checkpoint(  # doctest: +SKIP
        ...     "sqlite:///path/to/project/mlruns.db", "models:/cells@champion"
        ... )
    """
    client = connect(tracking_uri)
    if not is_model_uri(run_id):
        run_id = resolve_run_id(client, run_id, run_name, experiment_name)
    assert run_id is not None
    return build_model_from_run(client, run_id, checkpoint, aggregate, trusted)
