"""``serotiny test``: evaluate a trained run's checkpoint and log test metrics to it.

Metrics on the run's own data keep the names the model logs them under (``test_accuracy``);
on other data they go under the data's label (``<label>/test_accuracy``), beside them, with
a ``lineage.json`` each (see :mod:`serotiny.tracking.evaluation_records`). A test runs in one
process: a multi-process trainer is refused before anything is done, because Lightning's
distributed sampler repeats rows to give every rank as many, and the metrics would count
them twice.
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
from omegaconf import DictConfig

from serotiny.commands.checkpoint_lineage import checkpoints_used
from serotiny.commands.preflight import preflight_evaluation
from serotiny.commands.trained_run import TrainedRun, open_trained_run
from serotiny.models.ensemble import EnsembleModule
from serotiny.tracking.cross_validation_runs import FOLD_TAG, fold_runs
from serotiny.tracking.evaluation_records import TEST_ARTIFACT_DIR, lineage_record, log_lineage
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


def test_folds(run: TrainedRun) -> dict[str, float]:
    """A cross-validation's folds, each tested alone: logged to its own run, and returned
    as ``fold<i>_<metric>`` for the parent (names under the data's label for other data)."""
    assert isinstance(run.model, EnsembleModule)
    metrics: dict[str, float] = {}
    folds = fold_runs(run.client, run.run_id)
    for member, fold_run in zip(run.model.members, folds, strict=True):
        fold_metrics = test_metrics(run.new_trainer(), member, run.datamodule)
        named = {run.data.metric_name(name): value for name, value in fold_metrics.items()}
        log_values(run.client, fold_run.info.run_id, named)
        fold = fold_run.data.tags[FOLD_TAG]
        metrics.update({f"fold{fold}_{name}": value for name, value in fold_metrics.items()})
    return metrics


def test(cfg: DictConfig) -> dict[str, float]:
    """Run ``Trainer.test`` with the named run's model and log the metrics to that run.

    On a cross-validation parent run, the ensemble of its folds is tested and logged to the
    parent, and each fold is tested too: logged to its own run, and to the parent as
    ``fold<i>_<metric>`` beside the ensemble's. Returns the metrics as logged (under the
    data's label for data other than the run's own).
    """
    run = open_trained_run(cfg, one_process_for="test")
    preflight_evaluation(run.model, run.datamodule, "test")
    metrics = test_metrics(run.trainer, run.model, run.datamodule)
    if isinstance(run.model, EnsembleModule):
        metrics.update(test_folds(run))
    logged = {run.data.metric_name(name): value for name, value in metrics.items()}
    log_values(run.client, run.run_id, logged)
    artifact_dir = run.data.artifact_dir(TEST_ARTIFACT_DIR)
    checkpoints = checkpoints_used(
        run.client, run.run_id, run.checkpoint, run.settings.checkpoint.trusted
    )
    record = lineage_record("test", run.data, checkpoints, {"metrics": logged})
    log_lineage(run.client, run.run_id, artifact_dir, record)
    for name, value in sorted(logged.items()):
        log.info("%s = %.6g", name, value)
    log.info(
        "logged %d test metrics to run '%s' (%s) on %s",
        len(logged),
        run.run_name,
        run.run_id,
        run.data.describe(),
    )
    return logged
