"""Which checkpoints a test or a prediction used: the run's (or each fold's), and their step.

Read after the model was built, with the same choice of file (``download_checkpoint``: the
asked-for checkpoint, or the other one when it is missing) and the same safe reader, so the
record names the file the model came from. Kept apart from the model building of
:mod:`serotiny.api.models_from_runs`, which returns the model alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow import MlflowClient

from serotiny.api.readable_checkpoint import readable_checkpoint
from serotiny.tracking.artifacts import CHECKPOINT_ARTIFACT_DIR
from serotiny.tracking.cross_validation_runs import fold_runs, is_cross_validation_run
from serotiny.tracking.evaluation_records import CheckpointUsed
from serotiny.tracking.provenance import file_sha256


def checkpoint_used(
    client: MlflowClient, run_id: str, which: str, folder: Path, trusted: bool = False
) -> CheckpointUsed:
    """The checkpoint of ``run_id`` that ``which`` (best or last) gives, with its step
    (``trusted``: as ``checkpoint.trusted``)."""
    path, state = readable_checkpoint(client, run_id, which, folder / run_id, trusted)
    step, epoch = state.get("global_step"), state.get("epoch")
    return CheckpointUsed(
        run_id=run_id,
        artifact=f"{CHECKPOINT_ARTIFACT_DIR}/{path.name}",
        step=int(step) if step is not None else None,
        epoch=int(epoch) if epoch is not None else None,
        sha256=file_sha256(path),
    )


def checkpoints_used(
    client: MlflowClient, run_id: str, which: str, trusted: bool = False
) -> list[CheckpointUsed]:
    """The run's checkpoint; for a cross-validation parent, each fold's, in fold order."""
    if is_cross_validation_run(client, run_id):
        run_ids = [fold.info.run_id for fold in fold_runs(client, run_id)]
    else:
        run_ids = [run_id]
    with tempfile.TemporaryDirectory(prefix="serotiny-ckpt-") as folder:
        return [checkpoint_used(client, each, which, Path(folder), trusted) for each in run_ids]
