"""``serotiny test``: evaluate a trained run's checkpoint and log test metrics to it."""

from __future__ import annotations

import logging

from mlflow.entities import Metric
from omegaconf import DictConfig

from serotiny.ml_ops.evaluation import open_trained_run

log = logging.getLogger(__name__)


def test(cfg: DictConfig) -> dict[str, float]:
    """Run ``Trainer.test`` with the named run's model and log the metrics to that run."""
    run = open_trained_run(cfg)
    results = run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    metrics: dict[str, float] = {}
    for result in results:
        metrics.update({name: float(value) for name, value in result.items()})
    import time

    now = int(time.time() * 1000)
    run.client.log_batch(
        run.run_id, metrics=[Metric(name, value, now, 0) for name, value in metrics.items()]
    )
    for name, value in sorted(metrics.items()):
        log.info("%s = %.6g", name, value)
    log.info("logged %d test metrics to run '%s' (%s)", len(metrics), run.run_name, run.run_id)
    return metrics
