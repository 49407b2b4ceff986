"""The rows a run trains on, kept with the run when its splits were drawn from fractions.

A split drawn by ``split_fractions`` depends on every row of the manifest, so a manifest that
gains rows would split differently the next time. The train command saves the assignment
(each id's split) in the run under ``data/``; a resumed training, ``serotiny test`` and
``serotiny predict`` on the run's own manifest read it back, and so see the run's rows in
the run's splits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig

from serotiny.datamodules.assignment import ASSIGNMENT_FILE
from serotiny.tracking.artifacts import DATA_ARTIFACT_DIR, download_if_present
from serotiny.tracking.claims import ClaimedRun
from serotiny.tracking.run_state import Action

log = logging.getLogger(__name__)
ASSIGNMENT_ARTIFACT = f"{DATA_ARTIFACT_DIR}/{ASSIGNMENT_FILE}"


def draws_splits(datamodule: pl.LightningDataModule) -> bool:
    """Whether the datamodule draws its splits from fractions (and can save them)."""
    return bool(getattr(datamodule, "split_fractions", None)) and hasattr(
        datamodule, "save_split_assignment"
    )


def keep_split_assignment(
    run: ClaimedRun, datamodule: pl.LightningDataModule, folder: Path
) -> None:
    """Train: a resumed run reads its saved assignment back; a new one saves its own."""
    if not draws_splits(datamodule):
        return
    if run.decision.action is Action.RESUME:
        saved = download_if_present(run.client, run.run_id, ASSIGNMENT_ARTIFACT, folder)
        if saved is not None:
            datamodule.use_split_assignment(saved)
            log.info("run '%s' keeps the splits it started with (%s)", run.run_name, saved.name)
            return
    path = datamodule.save_split_assignment(folder / ASSIGNMENT_FILE)
    run.client.log_artifact(run.run_id, str(path), DATA_ARTIFACT_DIR)


def reuse_split_assignment(
    client: MlflowClient,
    run: Run,
    datamodule: pl.LightningDataModule,
    data: DictConfig,
    folder: Path,
) -> None:
    """Test and predict: the run's splits, when the data is the run's own manifest."""
    if not draws_splits(datamodule) or str(data.get("path")) != run.data.params.get("data.path"):
        return
    saved = download_if_present(client, run.info.run_id, ASSIGNMENT_ARTIFACT, folder)
    if saved is not None:
        datamodule.use_split_assignment(saved)
