"""What ``serotiny test`` and ``serotiny predict`` share: the trained run and its model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig

from serotiny.errors import RunLookupError
from serotiny.ml_ops import mlflow_utils
from serotiny.ml_ops.instantiators import (
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_trainer,
)
from serotiny.ml_ops.run_context import output_dir, prepare_config

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    """A finished training run, with its model rebuilt and a trainer to evaluate it."""

    client: Any
    run_id: str
    run_name: str
    model: pl.LightningModule
    datamodule: pl.LightningDataModule
    trainer: pl.Trainer
    config: DictConfig
    #: Makes another trainer with the same settings (one per model evaluated).
    new_trainer: Callable[[], pl.Trainer]


def open_trained_run(cfg: DictConfig, extra_callbacks: list[Any] | None = None) -> TrainedRun:
    """Resolve ``cfg.mlflow.run_name`` to its run and rebuild the model from its checkpoint.

    The model comes from the run (its stored config and ``checkpoint`` = best or last);
    data and trainer settings come from the current config, so a model can be evaluated on
    other data than it was trained on.
    """
    cfg = prepare_config(cfg)
    tracking = cfg.mlflow
    run_name = tracking.get("run_name")
    if not run_name:
        raise RunLookupError("which run? give the trained run's name with ++mlflow.run_name=NAME")
    client = mlflow_utils.connect(str(tracking.tracking_uri))
    experiment_name = str(tracking.get("experiment_name") or "default")
    run = mlflow_utils.get_run_by_name(client, experiment_name, str(run_name))
    if run.info.status != "FINISHED":
        log.warning(
            "run '%s' is %s, not FINISHED: using its latest checkpoint", run_name, run.info.status
        )
    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    which = str(cfg.get("checkpoint") or "best")
    aggregate = str((cfg.get("ensemble") or {}).get("aggregate", "mean"))
    model = mlflow_utils.build_model_from_run(client, run.info.run_id, which, aggregate)
    extra = list(extra_callbacks or [])

    def new_trainer() -> pl.Trainer:
        callbacks = instantiate_callbacks(cfg.trainer.get("callbacks")) + extra
        return instantiate_trainer(
            cfg.trainer,
            callbacks,
            logger=False,
            default_root_dir=str(output_dir()),
            enable_checkpointing=False,
        )

    return TrainedRun(
        client, run.info.run_id, str(run_name), model, datamodule, new_trainer(), cfg, new_trainer
    )
