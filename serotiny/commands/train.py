"""``serotiny train``: fit a model on the composed config, tracked in one MLflow run.

The story, step by step: read the config; build everything that can fail on bad input
before a run exists; send what an earlier attempt left unsent; claim the run the name stands
for (new, resumed, or finished already); resume from its newest readable checkpoint; fit
while a heartbeat says the run is alive, every record going through the run's journal to
MLflow in the background; keep the final checkpoint; draw the loss curves. The run's final
status is set in one place, :func:`~serotiny.tracking.outcome.run_outcome`.
"""

from __future__ import annotations

import logging
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from serotiny.cluster import hand_over, is_extra_rank
from serotiny.commands.job_setup import output_folder, print_config_tree, start_job
from serotiny.commands.preflight import preflight_training
from serotiny.commands.resume_point import choose_resume_point
from serotiny.commands.run_delivery import delivered, open_journal, send_earlier_journals
from serotiny.commands.split_assignment import keep_split_assignment
from serotiny.commands.training_setup import (
    TrainingParts,
    build_trainer,
    build_training_parts,
    monitored_value,
)
from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import Settings
from serotiny.tracking.claims import ClaimedRun, claim_training_run
from serotiny.tracking.heartbeat import Heartbeat
from serotiny.tracking.journal import RunJournal
from serotiny.tracking.outcome import run_outcome
from serotiny.tracking.rank_handover import handover_tags, join_rank_zero
from serotiny.tracking.registry import register_if_configured
from serotiny.tracking.run_pictures import log_loss_curves
from serotiny.tracking.run_record import TRUSTED_CHECKPOINTS_TAG
from serotiny.trainer_parts.graceful_stop import first_interrupt_stops_gracefully

log = logging.getLogger(__name__)


def train(cfg: DictConfig, extra_tags: dict[str, str] | None = None) -> float | None:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.trainer``, tracked as ``cfg.mlflow`` says.

    ``extra_tags`` go on a new run (a cross-validation fold's index). Returns the final
    value of the monitored metric (``checkpoint.monitor``), so that Hydra sweepers can
    optimise it.
    """
    cfg, settings = start_job(cfg)
    if settings.cv.folds:
        raise SerotinyUserError(
            "cv.folds is set: cross-validate with serotiny.commands.cross_validate, as "
            "`serotiny train` does"
        )
    if settings.print_config and not is_extra_rank():  # rank 0 shows it
        print_config_tree(cfg)
    if settings.seed is not None:
        pl.seed_everything(settings.seed, workers=True)
    parts = build_training_parts(cfg, settings)
    preflight_training(cfg, settings, parts)
    if is_extra_rank():
        return train_as_extra_rank(cfg, settings, parts)
    send_earlier_journals(settings)
    run = claim_training_run(cfg, settings, extra_tags)
    if run.finished_before:
        return value_of_finished_run(run, settings)
    folder = output_folder(settings)
    journal = open_journal(folder, run)
    outcome = run_outcome(journal.status, run.run_name)
    with delivered(run, journal, settings), outcome, stops_exit_nonzero():
        trainer = fit_in_run(cfg, settings, parts, run, journal, folder)
    log_loss_curves(run.client, run.run_id, run.run_name, folder / "plots")
    log.info("run '%s' (%s) finished", run.run_name, run.run_id)
    register_if_configured(run.client, run.run_id, settings)  # its records are all in MLflow
    return monitored_value(trainer, settings.checkpoint.monitor)


def fit_in_run(
    cfg: DictConfig,
    settings: Settings,
    parts: TrainingParts,
    run: ClaimedRun,
    journal: RunJournal,
    folder: Path,
) -> pl.Trainer:
    """Resume from the run's newest readable checkpoint (if any) and fit to the end."""
    trusted = settings.checkpoint.trusted
    if trusted:  # before any checkpoint: test, predict and notebooks then read them in full
        journal.tags({TRUSTED_CHECKPOINTS_TAG: "true"})
    resume = choose_resume_point(run, folder / "resume", trusted)
    keep_split_assignment(run, parts.datamodule, folder / "data")
    trainer = build_trainer(cfg, settings, run.run_id, parts, folder, journal, resume)
    hand_over(run.run_id, resume.path)
    # The heartbeat's first beat also tells ranks that srun started which run to join.
    beats = Heartbeat(
        run.client,
        run.run_id,
        settings.resume.heartbeat_seconds,
        handover_tags(resume.which, folder),
    )
    with beats, first_interrupt_stops_gracefully():
        trainer.fit(
            parts.model,
            datamodule=parts.datamodule,
            ckpt_path=resume.path,
            weights_only=not trusted,  # only a project that trusts its checkpoints unpickles
        )
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and hasattr(checkpoint, "ensure_saved"):
        checkpoint.ensure_saved(trainer)
    return trainer


def train_as_extra_rank(cfg: DictConfig, settings: Settings, parts: TrainingParts) -> float | None:
    """Train in the run that rank 0 opened, without touching its status."""
    with tempfile.TemporaryDirectory(prefix="serotiny-rank-") as scratch:
        joined = join_rank_zero(settings, Path(scratch), output_folder(settings))
        if joined is None:
            log.info("run '%s' already finished: not training it again", settings.mlflow.run_name)
            return None
        trainer = build_trainer(cfg, settings, joined.run_id, parts, joined.folder, None)
        trainer.fit(
            parts.model,
            datamodule=parts.datamodule,
            ckpt_path=joined.resume_from,
            weights_only=not settings.checkpoint.trusted,
        )
    return monitored_value(trainer, settings.checkpoint.monitor)


def value_of_finished_run(run: ClaimedRun, settings: Settings) -> float | None:
    """A finished run is not trained again; its monitored metric is the answer."""
    log.info(
        "run '%s' (%s) already finished: not training it again (choose a new "
        "++mlflow.run_name, or add ++resume.retrain_finished=true to train it afresh)",
        run.run_name,
        run.run_id,
    )
    monitor = settings.checkpoint.monitor
    value = run.decision.run.data.metrics.get(monitor) if monitor and run.decision.run else None
    return float(value) if value is not None else None


@contextmanager
def stops_exit_nonzero() -> Iterator[None]:
    """Lightning's SIGTERMException exits with status 0; a stopped training is no success."""
    try:
        yield
    except SIGTERMException as stop:
        raise SystemExit(128 + signal.SIGTERM) from stop
