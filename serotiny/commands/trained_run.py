"""What ``serotiny test`` and ``serotiny predict`` share: the trained run and its model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig

from serotiny.api.models_from_runs import build_model_from_run
from serotiny.commands.job_setup import output_folder, start_job
from serotiny.commands.split_assignment import reuse_split_assignment
from serotiny.errors import RunLookupError
from serotiny.settings.schema import Settings
from serotiny.tracking.run_names import get_run_by_name
from serotiny.tracking.store import connect, redacted_uri
from serotiny.trainer_parts.builders import (
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_trainer,
)

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    """A finished training run, with its model rebuilt and a trainer to evaluate it."""

    client: MlflowClient
    run_id: str
    run_name: str
    model: pl.LightningModule
    datamodule: pl.LightningDataModule
    trainer: pl.Trainer
    config: DictConfig
    settings: Settings
    #: Makes another trainer with the same settings (one per model evaluated).
    new_trainer: Callable[[], pl.Trainer]


def find_trained_run(client: MlflowClient, settings: Settings) -> Run:
    """The run ``mlflow.run_id`` or ``mlflow.run_name`` names."""
    tracking = settings.mlflow
    if tracking.run_id:
        try:
            return client.get_run(tracking.run_id)
        except Exception as error:
            raise RunLookupError(
                f"no run with id '{tracking.run_id}' at {redacted_uri(client)}; check "
                "++mlflow.run_id"
            ) from error
    if not tracking.run_name:
        raise RunLookupError("which run? give the trained run's name with ++mlflow.run_name=NAME")
    return get_run_by_name(client, tracking.experiment_name, tracking.run_name)


def open_trained_run(cfg: DictConfig, extra_callbacks: list[Callback] | None = None) -> TrainedRun:
    """Resolve the named run and rebuild its model from its checkpoint.

    The model comes from the run (its stored config and ``checkpoint.use``: best or last);
    data and trainer settings come from the current config, so a model can be evaluated on
    other data than it was trained on.
    """
    cfg, settings = start_job(cfg)
    client = connect(settings.mlflow.tracking_uri)
    run = find_trained_run(client, settings)
    if run.info.status != "FINISHED":
        log.warning(
            "run '%s' is %s, not FINISHED: using its latest checkpoint",
            run.info.run_name,
            run.info.status,
        )
    folder = output_folder(settings)
    datamodule = instantiate_datamodule(cfg.data)
    reuse_split_assignment(client, run, datamodule, cfg.data, folder / "data")
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    model = build_model_from_run(
        client, run.info.run_id, settings.checkpoint.use.value, settings.ensemble.aggregate.value
    )
    extra = list(extra_callbacks or [])

    def new_trainer() -> pl.Trainer:
        callbacks = instantiate_callbacks(cfg.trainer.get("callbacks")) + extra
        return instantiate_trainer(
            cfg.trainer,
            callbacks,
            logger=False,
            default_root_dir=str(folder),
            enable_checkpointing=False,
        )

    return TrainedRun(
        client,
        run.info.run_id,
        str(run.info.run_name),
        model,
        datamodule,
        new_trainer(),
        cfg,
        settings,
        new_trainer,
    )
