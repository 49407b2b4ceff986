"""``serotiny train``: fit a model on the composed config, tracked in one MLflow run."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from serotiny.ml_ops.checkpoints import MLflowModelCheckpoint
from serotiny.ml_ops.heartbeat import Heartbeat
from serotiny.ml_ops.instantiators import (
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_model,
    instantiate_trainer,
)
from serotiny.ml_ops.mlflow_utils import download_checkpoint, load_checkpoint_state
from serotiny.ml_ops.ranks import hand_over, handover_tags, is_extra_rank, join_rank_zero
from serotiny.ml_ops.resume_state import RandomStateCheckpoint
from serotiny.ml_ops.run_context import output_dir, prepare_config, print_config_tree
from serotiny.ml_ops.run_logger import CheckpointCommittedMLFlowLogger
from serotiny.ml_ops.run_state import Action
from serotiny.ml_ops.tracking import TrackedRun, open_training_run

log = logging.getLogger(__name__)


def resume_checkpoint(run: TrackedRun, folder: Path) -> tuple[Path | None, str | None, bool]:
    """The run's newest checkpoint that loads and which one it is (``last`` or ``best``;
    None twice when it has none yet), and whether it is a fallback because a newer one was
    unreadable.

    ``last`` is newest; when it is unreadable, ``best`` (never newer) is the one before.
    """
    fallback = False
    for which in ("last", "best"):
        try:
            path = download_checkpoint(run.client, run.run_id, which, folder / which)
        except Exception:  # no checkpoint of this kind: try the next
            continue
        try:
            load_checkpoint_state(path)
        except Exception as error:  # unreadable: fall back to the one before
            reason = str(error).splitlines()[0]
            log.warning("checkpoint %s of run %s is unreadable (%s)", which, run.run_id, reason)
            fallback = True
            continue
        return path, which, fallback
    log.info("run %s has no usable checkpoint: training it from the start", run.run_id)
    return None, None, fallback


@contextmanager
def first_interrupt_stops_gracefully() -> Iterator[None]:
    """Make a first Ctrl-C act like SIGTERM: stop at the next batch boundary and checkpoint.

    Lightning turns SIGTERM into a clean stop between batches; a KeyboardInterrupt can land
    in the middle of an optimizer step, where no consistent checkpoint exists. A second
    Ctrl-C interrupts at once.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log.warning("interrupted: stopping after this batch (Ctrl-C again to stop at once)")
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def log_loss_curves(run: TrackedRun, folder: Path) -> None:
    """Draw the run's loss and metric curves as an image beside its metrics."""
    from serotiny.ml_ops import plots

    names = sorted(run.client.get_run(run.run_id).data.metrics)
    history = {
        name: [(m.step, m.value) for m in run.client.get_metric_history(run.run_id, name)]
        for name in names
    }
    figure = plots.loss_curves_figure(history, title=f"run {run.run_name}")
    path = plots.save_figure(figure, folder / "loss_curves.png")
    run.client.log_artifact(run.run_id, str(path), "plots")


def _monitored_value(trainer: pl.Trainer, monitor: str | None) -> float | None:
    if monitor and monitor in trainer.callback_metrics:
        return float(trainer.callback_metrics[monitor])
    return None


def _finished_value(run: TrackedRun, monitor: str | None) -> float | None:
    if not monitor:
        return None
    value = run.decision.run.data.metrics.get(monitor)
    return float(value) if value is not None else None


def _build_trainer(
    cfg: DictConfig, run_id: str, callbacks: list[Any], folder: Path, rewrite: bool
) -> pl.Trainer:
    checkpoint_cfg: Any = cfg.get("checkpoint") or {}
    checkpointing = bool(cfg.trainer.get("enable_checkpointing", True))
    tracking_uri = str(cfg.mlflow.tracking_uri)
    logger = CheckpointCommittedMLFlowLogger(
        buffered=checkpointing,
        experiment_name=str(cfg.mlflow.get("experiment_name") or "default"),
        tracking_uri=tracking_uri,
        run_id=run_id,
        log_model=False,
    )
    callbacks = [*callbacks, RandomStateCheckpoint()]
    if checkpointing:
        checkpoint = MLflowModelCheckpoint(
            tracking_uri,
            run_id,
            dirpath=folder / "checkpoints",
            monitor=checkpoint_cfg.get("monitor", "val_loss"),
            mode=checkpoint_cfg.get("mode", "min"),
        )
        checkpoint.rewrite_after_resume = rewrite
        callbacks.append(checkpoint)
    return instantiate_trainer(cfg.trainer, callbacks, logger, default_root_dir=str(folder))


def _train_as_extra_rank(
    cfg: DictConfig, model: Any, datamodule: Any, callbacks: list[Any], monitor: str | None
) -> float | None:
    """Train in the run that rank 0 opened, without touching its status."""
    with tempfile.TemporaryDirectory(prefix="serotiny-rank-") as scratch:
        joined = join_rank_zero(cfg, Path(scratch), output_dir())
        if joined is None:
            log.info("run '%s' already finished: not training it again", cfg.mlflow.run_name)
            return None
        trainer = _build_trainer(cfg, joined.run_id, callbacks, joined.folder, rewrite=False)
        trainer.fit(model, datamodule=datamodule, ckpt_path=joined.resume_from)
    return _monitored_value(trainer, monitor)


def train(cfg: DictConfig, parent_tags: dict[str, str] | None = None) -> float | None:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.trainer``, tracked in ``cfg.mlflow``.

    With ``cv.folds`` set, trains every fold under one parent run instead (see
    ``cross_validation``). Returns the final value of the monitored metric
    (``checkpoint.monitor``), so that Hydra sweepers (Optuna) can optimise it.
    """
    cfg = prepare_config(cfg)
    from serotiny.ml_ops.cross_validation import (
        FOLD_TAG,
        check_one_process_per_fold,
        cross_validate,
        requested_folds,
    )

    if requested_folds(cfg):
        check_one_process_per_fold(cfg.trainer)
        return cross_validate(cfg)
    if cfg.get("print_config", True) and not is_extra_rank():  # rank 0 shows it
        print_config_tree(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True)
    monitor = (cfg.get("checkpoint") or {}).get("monitor", "val_loss")

    # Build everything that can fail on bad input *before* a run exists in MLflow.
    model = instantiate_model(cfg.model)
    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    callbacks = instantiate_callbacks(cfg.trainer.get("callbacks"))

    if is_extra_rank():
        return _train_as_extra_rank(cfg, model, datamodule, callbacks, monitor)

    run = open_training_run(cfg, extra_tags=parent_tags)
    if run.decision.action is Action.SKIP:
        log.info(
            "run '%s' (%s) already finished: not training it again (choose a new "
            "++mlflow.run_name, or add ++resume.retrain_finished=true to train it afresh)",
            run.run_name,
            run.run_id,
        )
        return _finished_value(run, monitor)

    folder = output_dir()
    fold = (parent_tags or {}).get(FOLD_TAG)
    if fold is not None:  # each fold of a cross-validation keeps its own files
        folder = folder / f"fold{fold}"
    try:
        resume_from, resumed_which, fell_back = None, None, False
        if run.decision.action is Action.RESUME:
            resume_from, resumed_which, fell_back = resume_checkpoint(run, folder / "resume")
        trainer = _build_trainer(cfg, run.run_id, callbacks, folder, rewrite=fell_back)
        hand_over(run.run_id, resume_from)
    except BaseException:
        run.client.set_terminated(run.run_id, "FAILED")
        raise

    heartbeat_seconds = float((cfg.get("resume") or {}).get("heartbeat_seconds", 30))
    # The heartbeat's first beat also tells ranks that srun started which run to join.
    heartbeat = Heartbeat(
        run.client, run.run_id, heartbeat_seconds, handover_tags(resumed_which, folder)
    )
    with heartbeat, first_interrupt_stops_gracefully():
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        except (KeyboardInterrupt, SystemExit) as stop:
            run.client.set_terminated(run.run_id, "KILLED")
            log.warning("run '%s' stopped; rerun the same command to resume it", run.run_name)
            if isinstance(stop, SIGTERMException):
                # Lightning's SIGTERMException exits with status 0; a stop is not a success.
                raise SystemExit(128 + signal.SIGTERM) from stop
            raise
        except BaseException:
            run.client.set_terminated(run.run_id, "FAILED")
            log.error("run '%s' failed; rerun the same command to resume it", run.run_name)
            raise
    if trainer.checkpoint_callback is not None and hasattr(
        trainer.checkpoint_callback, "ensure_saved"
    ):
        trainer.checkpoint_callback.ensure_saved(trainer)
    log_loss_curves(run, folder / "plots")
    run.client.set_terminated(run.run_id, "FINISHED")
    log.info("run '%s' (%s) finished", run.run_name, run.run_id)
    return _monitored_value(trainer, monitor)
