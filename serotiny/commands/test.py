"""``serotiny test``: evaluate a trained run's checkpoint and log test metrics to it."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
from omegaconf import DictConfig

from serotiny.commands.trained_run import open_trained_run
from serotiny.models.ensemble import EnsembleModule
from serotiny.tracking.cross_validation_runs import FOLD_TAG, fold_runs
from serotiny.tracking.metric_history import log_values

log = logging.getLogger(__name__)


def test_metrics(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule
) -> dict[str, float]:
    """``Trainer.test`` of ``model`` on ``datamodule``'s test set, as name -> value."""
    metrics: dict[str, float] = {}
    for result in trainer.test(model, datamodule=datamodule, verbose=False):
        metrics.update({name: float(value) for name, value in result.items()})
    return metrics


def test(cfg: DictConfig) -> dict[str, float]:
    """Run ``Trainer.test`` with the named run's model and log the metrics to that run.

    On a cross-validation parent run, the ensemble of its folds is tested and logged to the
    parent, and each fold is tested too: logged to its own run, and to the parent as
    ``fold<i>_<metric>`` beside the ensemble's.
    """
    run = open_trained_run(cfg)
    metrics = test_metrics(run.trainer, run.model, run.datamodule)
    if isinstance(run.model, EnsembleModule):
        folds = fold_runs(run.client, run.run_id)
        for member, fold_run in zip(run.model.members, folds, strict=True):
            fold_metrics = test_metrics(run.new_trainer(), member, run.datamodule)
            log_values(run.client, fold_run.info.run_id, fold_metrics)
            fold = fold_run.data.tags[FOLD_TAG]
            metrics.update({f"fold{fold}_{name}": value for name, value in fold_metrics.items()})
    log_values(run.client, run.run_id, metrics)
    for name, value in sorted(metrics.items()):
        log.info("%s = %.6g", name, value)
    log.info("logged %d test metrics to run '%s' (%s)", len(metrics), run.run_name, run.run_id)
    return metrics
