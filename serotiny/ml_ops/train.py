"""``serotiny train``: fit a model on the composed config, tracked in one MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import MLFlowLogger
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
from serotiny.ml_ops.run_context import output_dir, prepare_config, print_config_tree
from serotiny.ml_ops.run_state import Action
from serotiny.ml_ops.tracking import TrackedRun, open_training_run

log = logging.getLogger(__name__)


class RunOwnedMLFlowLogger(MLFlowLogger):
    """An MLFlowLogger that leaves the run's final status to serotiny.

    Lightning's logger marks the run FINISHED when ``fit`` returns, before serotiny has
    uploaded the final checkpoints; and it cannot tell a SIGTERM from a crash.
    """

    def finalize(self, status: str = "success") -> None:  # status: see the class doc
        return


def _resume_checkpoint(run: TrackedRun, folder: Path) -> Path | None:
    """The run's latest loadable checkpoint, or None when it has none yet."""
    for which in ("last", "best"):
        try:
            path = download_checkpoint(run.client, run.run_id, which, folder / which)
        except Exception:  # no checkpoint of this kind: try the next
            continue
        try:
            load_checkpoint_state(path)
        except Exception as error:  # unreadable: fall back to the other
            log.warning("checkpoint %s of run %s is unreadable (%s)", which, run.run_id, error)
            continue
        return path
    log.info("run %s has no usable checkpoint: training it from the start", run.run_id)
    return None


def _monitored_value(trainer: pl.Trainer, monitor: str | None) -> float | None:
    if monitor and monitor in trainer.callback_metrics:
        return float(trainer.callback_metrics[monitor])
    return None


def _finished_value(run: TrackedRun, monitor: str | None) -> float | None:
    if not monitor:
        return None
    value = run.decision.run.data.metrics.get(monitor)
    return float(value) if value is not None else None


def train(cfg: DictConfig) -> float | None:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.trainer``, tracked in ``cfg.mlflow``.

    Returns the final value of the monitored metric (``checkpoint.monitor``), so that Hydra
    sweepers (Optuna) can optimise it.
    """
    cfg = prepare_config(cfg)
    if cfg.get("print_config", True):
        print_config_tree(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True)
    checkpoint_cfg: Any = cfg.get("checkpoint") or {}
    monitor = checkpoint_cfg.get("monitor", "val_loss")

    # Build everything that can fail on bad input *before* a run exists in MLflow.
    model = instantiate_model(cfg.model)
    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
    callbacks = instantiate_callbacks(cfg.trainer.get("callbacks"))

    run = open_training_run(cfg)
    if run.decision.action is Action.SKIP:
        log.info(
            "run '%s' (%s) already finished: not training it again (choose a new "
            "++mlflow.run_name to train another)",
            run.run_name,
            run.run_id,
        )
        return _finished_value(run, monitor)

    folder = output_dir()
    try:
        resume_from = None
        if run.decision.action is Action.RESUME:
            resume_from = _resume_checkpoint(run, folder / "resume")
        logger = RunOwnedMLFlowLogger(
            experiment_name=run.experiment_name,
            tracking_uri=run.tracking_uri,
            run_id=run.run_id,
            log_model=False,
        )
        if cfg.trainer.get("enable_checkpointing", True):
            callbacks.append(
                MLflowModelCheckpoint(
                    run.tracking_uri,
                    run.run_id,
                    dirpath=folder / "checkpoints",
                    monitor=monitor,
                    mode=checkpoint_cfg.get("mode", "min"),
                )
            )
        trainer = instantiate_trainer(cfg.trainer, callbacks, logger, default_root_dir=str(folder))
    except BaseException:
        run.client.set_terminated(run.run_id, "FAILED")
        raise

    with Heartbeat(
        run.client, run.run_id, float(cfg.get("resume", {}).get("heartbeat_seconds", 30))
    ):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        except (KeyboardInterrupt, SystemExit):
            run.client.set_terminated(run.run_id, "KILLED")
            log.warning("run '%s' interrupted; rerun the same command to resume", run.run_name)
            raise
        except BaseException:
            run.client.set_terminated(run.run_id, "FAILED")
            log.error("run '%s' failed; rerun the same command to resume", run.run_name)
            raise
    run.client.set_terminated(run.run_id, "FINISHED")
    log.info("run '%s' (%s) finished", run.run_name, run.run_id)
    return _monitored_value(trainer, monitor)
