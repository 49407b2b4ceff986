"""``serotiny test``: evaluate a trained run's checkpoint and log test metrics to it."""

from __future__ import annotations

import logging
import time
from typing import Any

from mlflow.entities import Metric
from omegaconf import DictConfig

from serotiny.ml_ops.cross_validation import FOLD_TAG, fold_runs
from serotiny.ml_ops.ensemble import EnsembleModule
from serotiny.ml_ops.evaluation import open_trained_run

log = logging.getLogger(__name__)


def _test_metrics(trainer: Any, model: Any, datamodule: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for result in trainer.test(model, datamodule=datamodule, verbose=False):
        metrics.update({name: float(value) for name, value in result.items()})
    return metrics


def _log(client: Any, run_id: str, metrics: dict[str, float]) -> None:
    now = int(time.time() * 1000)
    client.log_batch(
        run_id, metrics=[Metric(name, value, now, 0) for name, value in metrics.items()]
    )


def test(cfg: DictConfig) -> dict[str, float]:
    """Run ``Trainer.test`` with the named run's model and log the metrics to that run.

    On a cross-validation parent run, the ensemble of its folds is tested and logged to the
    parent, and each fold is tested too: logged to its own run, and to the parent as
    ``fold<i>_<metric>`` beside the ensemble's.
    """
    run = open_trained_run(cfg)
    metrics = _test_metrics(run.trainer, run.model, run.datamodule)
    if isinstance(run.model, EnsembleModule):
        for member, fold_run in zip(
            run.model.members, fold_runs(run.client, run.run_id), strict=True
        ):
            fold_metrics = _test_metrics(run.new_trainer(), member, run.datamodule)
            _log(run.client, fold_run.info.run_id, fold_metrics)
            fold = fold_run.data.tags[FOLD_TAG]
            metrics.update({f"fold{fold}_{name}": value for name, value in fold_metrics.items()})
    _log(run.client, run.run_id, metrics)
    for name, value in sorted(metrics.items()):
        log.info("%s = %.6g", name, value)
    log.info("logged %d test metrics to run '%s' (%s)", len(metrics), run.run_name, run.run_id)
    return metrics
