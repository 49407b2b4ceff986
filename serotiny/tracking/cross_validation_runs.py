"""A cross-validation in MLflow: one parent run carrying the name, a child run per fold.

Folds are named ``<name>-fold<i>`` and tagged with the parent's id and their index. When all
folds are done, the parent logs each metric's mean and standard deviation over the folds
(and each fold's value); loading the parent gives the folds' models as an ensemble.
"""

from __future__ import annotations

import statistics

from mlflow import MlflowClient
from mlflow.entities import Run

from serotiny.tracking.claims import PARENT_RUN_TAG
from serotiny.tracking.metric_history import log_values

FOLDS_TAG = "serotiny.cv.folds"
FOLD_TAG = "serotiny.cv.fold"


def fold_name(run_name: str, fold: int) -> str:
    """The run name of one fold."""
    return f"{run_name}-fold{fold}"


def is_cross_validation_run(client: MlflowClient, run_id: str) -> bool:
    """Whether the run is the parent of a cross-validation (its folds hold the models)."""
    return FOLDS_TAG in client.get_run(run_id).data.tags


def fold_runs(client: MlflowClient, parent_run_id: str) -> list[Run]:
    """The parent's fold runs, in fold order."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'"
    )
    return sorted(runs, key=lambda run: int(run.data.tags.get(FOLD_TAG, 0)))


def summarize_folds(client: MlflowClient, parent_run_id: str) -> dict[str, float]:
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
    log_values(client, parent_run_id, summary)
    return summary
