"""K-fold cross-validation: one MLflow parent run with a child run per fold.

The parent carries the run name; folds are named ``<name>-fold<i>`` and tagged with the
parent's id. Every fold goes through the same run-name table as any training, so rerunning
the command after a crash trains only the folds that did not finish. When all folds are
done, the parent logs each metric's mean and standard deviation over the folds (and each
fold's value), and ``serotiny test`` / ``predict`` / ``load_model_from_checkpoint`` on the
parent use the folds' models as an ensemble.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

from mlflow.entities import Metric
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import SerotinyUserError
from serotiny.ml_ops.heartbeat import Heartbeat
from serotiny.ml_ops.run_state import Action
from serotiny.ml_ops.tracking import open_training_run

log = logging.getLogger(__name__)

FOLDS_TAG = "serotiny.cv.folds"
FOLD_TAG = "serotiny.cv.fold"
PARENT_TAG = "mlflow.parentRunId"


def requested_folds(cfg: DictConfig) -> int:
    """The number of folds asked for by ``cv.folds`` (0: no cross-validation)."""
    options = cfg.get("cv") or {}
    return int(options.get("folds") or 0)


class CrossValidationConfigError(SerotinyUserError):
    """A cross-validation asked for with settings it cannot run with."""


def check_one_process_per_fold(trainer_cfg: Any) -> None:
    """Refuse cross-validation on a multi-process trainer (DDP and the like).

    Each fold is a ``Trainer.fit`` of its own in one process, one after the other; the
    extra ranks of a distributed trainer would not follow rank 0 from fold to fold.
    """
    strategy = str(trainer_cfg.get("strategy") or "")
    devices = trainer_cfg.get("devices", 1)
    several = (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 1
    )
    if several or int(trainer_cfg.get("num_nodes") or 1) > 1 or "ddp" in strategy:
        raise CrossValidationConfigError(
            f"cv.folds trains each fold in one process, but the trainer asks for several "
            f"(strategy={strategy or 'auto'}, devices={devices}): drop trainer=ddp, or run "
            "the folds as separate runs"
        )


def fold_name(run_name: str, fold: int) -> str:
    """The run name of one fold."""
    return f"{run_name}-fold{fold}"


def fold_config(cfg: DictConfig, run_name: str, fold: int) -> DictConfig:
    """The config that trains ``fold``: the data config learns which fold to hold out."""
    options = dict(cfg.get("cv") or {})
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container["data"]["cross_validation"] = {
        "folds": int(options["folds"]),
        "fold": fold,
        "stratify_column": options.get("stratify_column"),
        "group_column": options.get("group_column"),
        "seed": int(options.get("seed") or cfg.get("seed") or 0),
    }
    container["cv"] = None
    container["mlflow"]["run_name"] = fold_name(run_name, fold)
    container["print_config"] = False
    return OmegaConf.create(container)


def fold_runs(client: Any, parent_run_id: str) -> list[Any]:
    """The parent's fold runs, in fold order."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'"
    )
    return sorted(runs, key=lambda run: int(run.data.tags.get(FOLD_TAG, 0)))


def summarize(client: Any, parent_run_id: str) -> dict[str, float]:
    """Log each fold metric's mean and standard deviation (and per-fold values) to the parent."""
    runs = fold_runs(client, parent_run_id)
    names = sorted({name for run in runs for name in run.data.metrics})
    summary: dict[str, float] = {}
    for name in names:
        values = [run.data.metrics[name] for run in runs if name in run.data.metrics]
        summary[f"{name}_mean"] = statistics.fmean(values)
        summary[f"{name}_std"] = statistics.pstdev(values)
        for run in runs:
            if name in run.data.metrics:
                summary[f"fold{run.data.tags[FOLD_TAG]}_{name}"] = run.data.metrics[name]
    now = int(time.time() * 1000)
    items = [Metric(key, value, now, 0) for key, value in summary.items()]
    for start in range(0, len(items), 1000):
        client.log_batch(parent_run_id, metrics=items[start : start + 1000])
    return summary


def cross_validate(cfg: DictConfig) -> float | None:
    """Train every fold of ``cfg`` under one parent run; return the monitored metric's mean."""
    from serotiny.ml_ops.train import train

    folds = requested_folds(cfg)
    monitor = (cfg.get("checkpoint") or {}).get("monitor", "val_loss")
    parent = open_training_run(cfg, extra_tags={FOLDS_TAG: str(folds)})
    if parent.decision.action is Action.SKIP:
        log.info("cross-validation '%s' already finished: not training it again", parent.run_name)
        value = parent.decision.run.data.metrics.get(f"{monitor}_mean")
        return float(value) if value is not None else None
    heartbeat_seconds = float((cfg.get("resume") or {}).get("heartbeat_seconds", 30))
    try:
        with Heartbeat(parent.client, parent.run_id, heartbeat_seconds):
            for fold in range(folds):
                log.info("cross-validation '%s': fold %d of %d", parent.run_name, fold + 1, folds)
                train(
                    fold_config(cfg, parent.run_name, fold),
                    parent_tags={PARENT_TAG: parent.run_id, FOLD_TAG: str(fold)},
                )
            summary = summarize(parent.client, parent.run_id)
    except (KeyboardInterrupt, SystemExit):
        parent.client.set_terminated(parent.run_id, "KILLED")
        raise
    except BaseException:
        parent.client.set_terminated(parent.run_id, "FAILED")
        raise
    parent.client.set_terminated(parent.run_id, "FINISHED")
    log.info(
        "cross-validation '%s' finished: %s",
        parent.run_name,
        ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if k.endswith(("_mean", "_std"))),
    )
    return summary.get(f"{monitor}_mean")
