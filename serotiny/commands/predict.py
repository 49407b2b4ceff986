"""``serotiny predict``: predict with a trained run and store the table in that run.

Predictions on the run's own data go to ``predictions/predictions.parquet``; on other data
to ``predictions/<label>/predictions.parquet``, side by side, each with its
``lineage.json`` (see :mod:`serotiny.tracking.evaluation_records`). Under several
processes (``trainer=ddp``) every rank predicts a share of the rows and rank 0 gathers
them and writes the table once (:mod:`serotiny.trainer_parts.prediction_writer`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from omegaconf import DictConfig

from serotiny.commands.checkpoint_lineage import checkpoints_used
from serotiny.commands.job_setup import output_folder
from serotiny.commands.preflight import preflight_evaluation
from serotiny.commands.trained_run import SeveralProcessesError, TrainedRun, open_trained_run
from serotiny.settings.reading import read_settings
from serotiny.tracking.evaluation_records import (
    PREDICTIONS_ARTIFACT_DIR,
    lineage_record,
    log_lineage,
)
from serotiny.tracking.run_pictures import PLOTS_ARTIFACT_DIR, prediction_picture
from serotiny.trainer_parts.prediction_writer import PredictionCollector, write_table

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> Path:
    """Predict every row of the data config's predict set; log the table to the run.

    Returns the local path of the predictions file (also logged under ``predictions/``, or
    ``predictions/<label>/`` for data other than the run's own).
    """
    collector = PredictionCollector(id_key=read_settings(cfg).predictions.id_key)
    run = open_trained_run(cfg, extra_callbacks=[collector])
    preflight_evaluation(run.model, run.datamodule, "predict")
    refuse_spawned_ranks(run.trainer)
    run.trainer.predict(run.model, datamodule=run.datamodule, return_predictions=False)
    artifact_dir = run.data.artifact_dir(PREDICTIONS_ARTIFACT_DIR)
    folder = output_folder(run.settings) / artifact_dir
    file_format = run.settings.predictions.format.value
    if not run.trainer.is_global_zero:
        log.info("rank %d: its predictions went to rank 0", run.trainer.global_rank)
        return folder / f"predictions.{file_format}"
    table = collector.table()
    path = write_table(table, folder, file_format)
    run.client.log_artifact(run.run_id, str(path), artifact_dir)
    record = lineage_record(
        "predict",
        run.data,
        checkpoints_used(run.client, run.run_id, run.checkpoint, run.settings.checkpoint.trusted),
        {
            "file": f"{artifact_dir}/{path.name}",
            "rows": len(table),
            "processes": run.trainer.world_size,
        },
    )
    log_lineage(run.client, run.run_id, artifact_dir, record)
    log_picture(run, table, output_folder(run.settings) / run.data.artifact_dir("plots"))
    log.info(
        "wrote %d predictions to %s and to run '%s' (%s) under %s/ (%s)",
        len(table),
        path,
        run.run_name,
        run.run_id,
        artifact_dir,
        run.data.describe(),
    )
    return path


def refuse_spawned_ranks(trainer: pl.Trainer) -> None:
    """Refuse a strategy that spawns or forks its ranks (``ddp_spawn``, ``ddp_fork``,
    ``ddp_notebook``): rank 0 gathers every rank's rows, and there it would be a child
    process whose table never comes back to the command. ``ddp`` starts ranks as commands."""
    if trainer.world_size > 1 and isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
        raise SeveralProcessesError(
            "serotiny predict runs its ranks as commands, but the trainer's strategy spawns "
            "them as child processes (ddp_spawn, ddp_fork or ddp_notebook), whose predictions "
            "would not come back: use trainer.strategy=ddp (e.g. trainer=ddp)"
        )


def log_picture(run: TrainedRun, table: pd.DataFrame, folder: Path) -> None:
    """The predictions' picture (confusion matrix, scatter) under ``plots/`` for the run's own
    data and ``plots/<label>/`` for other data."""
    picture = prediction_picture(table, folder)
    if picture is not None:
        run.client.log_artifact(run.run_id, str(picture), run.data.artifact_dir(PLOTS_ARTIFACT_DIR))
