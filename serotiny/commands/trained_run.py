"""What ``serotiny test`` and ``serotiny predict`` share: the trained run and its model."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from mlflow import MlflowClient
from omegaconf import DictConfig

from serotiny.api.models_from_runs import build_model_from_run
from serotiny.cluster import srun_task_rank
from serotiny.commands.job_setup import output_folder, start_job
from serotiny.commands.split_assignment import reuse_split_assignment
from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import Settings
from serotiny.tracking.artifacts import load_run_config
from serotiny.tracking.evaluation_records import EvaluatedData, evaluated_data
from serotiny.tracking.model_source import ModelSource, find_model_source
from serotiny.tracking.store import connect
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
    #: The data evaluated on: the run's own or other data, and where results go in the run.
    data: EvaluatedData
    #: Which of the run's checkpoints the model came from (``best`` or ``last``).
    checkpoint: str


def find_trained_run(client: MlflowClient, settings: Settings) -> ModelSource:
    """The run ``mlflow.run_id`` or ``mlflow.run_name`` names, or the run of the registered
    version a ``models:/`` URI in ``mlflow.run_id`` names, with the checkpoint to load (a
    version's own, whatever ``checkpoint.use`` says)."""
    source = find_model_source(client, settings)
    if source.version is not None:
        log.info(
            "%s is version %s of model '%s': the %s checkpoint of run '%s' (%s)",
            settings.mlflow.run_id,
            source.version.version,
            source.version.name,
            source.checkpoint,
            source.run.info.run_name,
            source.run.info.run_id,
        )
    if source.run.info.status != "FINISHED":
        log.warning(
            "run '%s' is %s, not FINISHED: using its latest checkpoint",
            source.run.info.run_name,
            source.run.info.status,
        )
    return source


class SeveralProcessesError(SerotinyUserError):
    """A command that must run in one process was given a multi-process trainer."""


def refuse_several_processes(trainer: pl.Trainer, command: str) -> None:
    """Refuse a trainer of several processes (DDP and the like) for ``command``.

    Lightning's distributed sampler gives every rank as many rows by repeating some of them,
    so metrics computed over several processes count those rows twice.
    """
    if trainer.world_size > 1:
        raise SeveralProcessesError(
            f"serotiny {command} runs in one process, but the trainer asks for "
            f"{trainer.world_size} ({type(trainer.strategy).__name__}): a distributed "
            "sampler repeats rows to even out the ranks, so the metrics would count some rows "
            "twice; use trainer.devices=1 (and trainer.num_nodes=1), e.g. drop trainer=ddp"
        )


def data_folder(folder: Path) -> Path:
    """Where this process keeps the run's data files: ranks other than 0 (which Lightning or
    srun start, all at once) each get a folder of their own, so no file is written twice."""
    ranks = (os.environ.get(name, "0") for name in ("RANK", "NODE_RANK", "LOCAL_RANK"))
    extra = any(rank.isdigit() and int(rank) > 0 for rank in ranks) or bool(srun_task_rank())
    return folder / (f"data-{os.getpid()}" if extra else "data")


def trainer_factory(
    cfg: DictConfig, folder: Path, extra: list[Callback]
) -> Callable[[], pl.Trainer]:
    """Makes trainers for evaluating: the config's trainer and callbacks, no logger, no
    checkpointing (the run's training is over)."""

    def new_trainer() -> pl.Trainer:
        callbacks = instantiate_callbacks(cfg.trainer.get("callbacks")) + extra
        return instantiate_trainer(
            cfg.trainer,
            callbacks,
            logger=False,
            default_root_dir=str(folder),
            enable_checkpointing=False,
        )

    return new_trainer


def open_trained_run(
    cfg: DictConfig,
    extra_callbacks: list[Callback] | None = None,
    *,
    one_process_for: str | None = None,
) -> TrainedRun:
    """Resolve the named run and rebuild its model from its checkpoint.

    The model comes from the run (its stored config and ``checkpoint.use``: best or last);
    data and trainer settings come from the current config, so a model can be evaluated on
    other data than it was trained on (``TrainedRun.data`` says which). With
    ``one_process_for`` (a command's name), a multi-process trainer is refused before
    anything else is done.
    """
    cfg, settings = start_job(cfg)
    folder = output_folder(settings)
    new_trainer = trainer_factory(cfg, folder, list(extra_callbacks or []))
    trainer = new_trainer()
    if one_process_for:
        refuse_several_processes(trainer, one_process_for)
    client = connect(settings.mlflow.tracking_uri)
    source = find_trained_run(client, settings)
    run = source.run
    datamodule = instantiate_datamodule(cfg.data)
    reuse_split_assignment(client, run, datamodule, cfg.data, data_folder(folder))
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    data = evaluated_data(run, load_run_config(client, run.info.run_id), cfg.data)
    log.info("run '%s' evaluated on %s", run.info.run_name, data.describe())
    model = build_model_from_run(
        client,
        run.info.run_id,
        source.checkpoint,
        settings.ensemble.aggregate.value,
        settings.checkpoint.trusted,
    )
    return TrainedRun(
        client,
        run.info.run_id,
        str(run.info.run_name),
        model,
        datamodule,
        trainer,
        cfg,
        settings,
        new_trainer,
        data,
        source.checkpoint,
    )
