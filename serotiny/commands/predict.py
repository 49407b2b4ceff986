"""``serotiny predict``: predict with a trained run and store the table in that run."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from serotiny.commands.job_setup import output_folder
from serotiny.commands.trained_run import open_trained_run
from serotiny.settings.reading import read_settings
from serotiny.tracking.run_pictures import log_prediction_picture
from serotiny.trainer_parts.prediction_writer import PredictionCollector, write_table

log = logging.getLogger(__name__)
PREDICTIONS_ARTIFACT_DIR = "predictions"


def predict(cfg: DictConfig) -> Path:
    """Predict every row of the data config's predict set; log the table to the run.

    Returns the local path of the predictions file (also logged under ``predictions/``).
    """
    collector = PredictionCollector(id_key=read_settings(cfg).predictions.id_key)
    run = open_trained_run(cfg, extra_callbacks=[collector])
    run.trainer.predict(run.model, datamodule=run.datamodule, return_predictions=False)
    table = collector.table()
    folder = output_folder(run.settings)
    path = write_table(table, folder / "predictions", run.settings.predictions.format.value)
    run.client.log_artifact(run.run_id, str(path), PREDICTIONS_ARTIFACT_DIR)
    log_prediction_picture(run.client, run.run_id, table, folder / "plots")
    log.info(
        "wrote %d predictions to %s and to run '%s' (%s) under %s/",
        len(table),
        path,
        run.run_name,
        run.run_id,
        PREDICTIONS_ARTIFACT_DIR,
    )
    return path
