"""The objects a training is made of: model, data, callbacks, and the Trainer that joins them
to the run's logger and checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from serotiny.commands.resume_point import ResumePoint
from serotiny.settings.schema import Settings
from serotiny.tracking.journal import RunJournal
from serotiny.trainer_parts.builders import (
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_model,
    instantiate_trainer,
)
from serotiny.trainer_parts.checkpoint_callback import RunCheckpoint
from serotiny.trainer_parts.journal_logger import JournalLogger
from serotiny.trainer_parts.random_state import RandomStateCheckpoint


@dataclass
class TrainingParts:
    """What the config builds before any run exists: a mistake in it leaves no run behind."""

    model: pl.LightningModule
    datamodule: pl.LightningDataModule
    callbacks: list[Callback]


def build_training_parts(cfg: DictConfig, settings: Settings) -> TrainingParts:
    """Build the model, the datamodule (its checks run now) and the callbacks: the configured
    ones, and a search trial's pruning callback."""
    model = instantiate_model(cfg.model)
    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    callbacks = instantiate_callbacks(cfg.trainer.get("callbacks"))
    if settings.search.trial_number is not None and settings.checkpoint.monitor:
        # Lazy: only a search's trials pay for importing Optuna.
        from serotiny.search.pruning import pruning_callback

        pruning = pruning_callback(asdict(settings.search), settings.checkpoint.monitor)
        if pruning is not None:
            callbacks.append(pruning)
    return TrainingParts(model, datamodule, callbacks)


def build_trainer(
    cfg: DictConfig,
    settings: Settings,
    run_id: str,
    parts: TrainingParts,
    folder: Path,
    journal: RunJournal | None,
    resume: ResumePoint | None = None,
) -> pl.Trainer:
    """A Trainer whose metrics and checkpoints go to the run's journal (None: an extra rank
    of a distributed training, which records nothing).

    ``resume``: where training resumes. From a fallback (a newer checkpoint was unreadable)
    the checkpoint is written again at the first opportunity, and the steps the run holds
    already are not logged again.
    """
    resume = resume or ResumePoint()
    checkpointing = bool(cfg.trainer.get("enable_checkpointing", True))
    logger = JournalLogger(journal, run_id, checkpointing, resume.committed_steps)
    callbacks: list[Callback] = [*parts.callbacks, RandomStateCheckpoint()]
    if checkpointing:
        checkpoint = RunCheckpoint(
            journal,
            dirpath=folder / "checkpoints",
            monitor=settings.checkpoint.monitor,
            mode=settings.checkpoint.mode.value,
            trusted=settings.checkpoint.trusted,
        )
        checkpoint.rewrite_after_resume = resume.fell_back
        callbacks.append(checkpoint)
    return instantiate_trainer(cfg.trainer, callbacks, logger, default_root_dir=str(folder))


def monitored_value(trainer: pl.Trainer, monitor: str | None) -> float | None:
    """The monitored metric's final value (what a sweeper such as Optuna optimises)."""
    if monitor and monitor in trainer.callback_metrics:
        return float(trainer.callback_metrics[monitor])
    return None
