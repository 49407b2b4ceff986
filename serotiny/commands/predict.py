"""``serotiny predict``: predict with a trained run and store the table in that run."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from serotiny.ml_ops.evaluation import open_trained_run
from serotiny.ml_ops.predictions import PredictionCollector, write_table
from serotiny.ml_ops.run_context import output_dir

log = logging.getLogger(__name__)
PREDICTIONS_ARTIFACT_DIR = "predictions"
PLOTS_ARTIFACT_DIR = "plots"


def prediction_picture(table: pd.DataFrame, folder: Path) -> Path | None:
    """A confusion matrix (classification) or predicted-vs-true scatter (regression) PNG.

    Drawn when the predictions hold both ``prediction`` and ``target``; classifiers are told
    apart by their ``probability_*`` columns.
    """
    from serotiny.ml_ops import plots

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


def predict(cfg: DictConfig) -> Path:
    """Predict every row of the data config's predict set; log the table to the run.

    Returns the local path of the predictions file (also logged under ``predictions/``).
    """
    options = cfg.get("predictions") or {}
    collector = PredictionCollector(id_key=str(options.get("id_key", "id")))
    run = open_trained_run(cfg, extra_callbacks=[collector])
    run.trainer.predict(run.model, datamodule=run.datamodule, return_predictions=False)
    table = collector.table()
    path = write_table(table, output_dir() / "predictions", str(options.get("format", "parquet")))
    run.client.log_artifact(run.run_id, str(path), PREDICTIONS_ARTIFACT_DIR)
    picture = prediction_picture(table, output_dir() / "plots")
    if picture is not None:
        run.client.log_artifact(run.run_id, str(picture), PLOTS_ARTIFACT_DIR)
    log.info(
        "wrote %d predictions to %s and to run '%s' (%s) under %s/",
        len(table),
        path,
        run.run_name,
        run.run_id,
        PREDICTIONS_ARTIFACT_DIR,
    )
    return path
