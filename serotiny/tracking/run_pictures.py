"""Pictures kept in a run beside its numbers: loss curves after training, a confusion matrix
or predicted-vs-true scatter after predicting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from serotiny import plots

PLOTS_ARTIFACT_DIR = "plots"
LOSS_CURVES_ARTIFACT = f"{PLOTS_ARTIFACT_DIR}/loss_curves.png"


def log_loss_curves(client: MlflowClient, run_id: str, run_name: str, folder: Path) -> None:
    """Draw the run's loss and metric curves as an image beside its metrics."""
    names = sorted(client.get_run(run_id).data.metrics)
    history = {
        name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)] for name in names
    }
    figure = plots.loss_curves_figure(history, title=f"run {run_name}")
    path = plots.save_figure(figure, folder / "loss_curves.png")
    client.log_artifact(run_id, str(path), PLOTS_ARTIFACT_DIR)


def prediction_picture(table: pd.DataFrame, folder: Path) -> Path | None:
    """A confusion matrix (classification) or predicted-vs-true scatter (regression) PNG.

    Drawn when the predictions hold both ``prediction`` and ``target``; classifiers are told
    apart by their ``probability_*`` columns.
    """
    if not {"prediction", "target"} <= set(table.columns):
        return None
    known = table.dropna(subset=["target"])
    if known.empty:
        return None
    if any(column.startswith("probability_") for column in table.columns):
        figure = plots.confusion_matrix_figure(known["target"], known["prediction"])
        return plots.save_figure(figure, folder / "confusion_matrix.png")
    figure = plots.scatter_figure(known["target"], known["prediction"])
    return plots.save_figure(figure, folder / "predicted_vs_true.png")
