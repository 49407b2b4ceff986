"""A run's metrics in MLflow: logged straight to it, in batches (test results, a
cross-validation's summary), and the steps it already holds (what a resume must not log
again)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from mlflow import MlflowClient
from mlflow.entities import Metric

MLFLOW_METRIC_BATCH = 1000


def log_values(client: MlflowClient, run_id: str, values: Mapping[str, float]) -> None:
    """Log ``values`` (name -> number) at step 0 and the current time, in batches."""
    now = int(time.time() * 1000)
    metrics = [Metric(name, float(value), now, 0) for name, value in values.items()]
    for start in range(0, len(metrics), MLFLOW_METRIC_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + MLFLOW_METRIC_BATCH])


def committed_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """Each metric of the run -> the last step MLflow holds for it.

    A training that resumes from an older checkpoint than its newest committed one trains
    some steps again; their metrics are here already (see ``JournalLogger``).
    """
    names = client.get_run(run_id).data.metrics
    return {
        name: max((m.step for m in client.get_metric_history(run_id, name)), default=-1)
        for name in names
    }
