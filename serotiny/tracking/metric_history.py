"""Metrics logged straight to a run, in batches (test results, a cross-validation's summary)."""

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
