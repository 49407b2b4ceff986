"""The checkpoint of a run that test, predict and notebooks load: the one asked for, or the
other one when the one asked for is damaged.

A run keeps ``best.ckpt`` and ``last.ckpt``. When the one asked for cannot be read (a disk
error, a copy cut short), the other one is a trained model of the same run: it is used, with
a warning that says so, rather than the command ending in a traceback. When neither reads,
one line says why for each. A whole checkpoint that the safe load refuses is not damaged:
that is one line naming ``checkpoint.trusted`` (see
:mod:`serotiny.trainer_parts.checkpoint_files`), with no fallback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from serotiny.errors import RunLookupError
from serotiny.tracking.artifacts import (
    CHECKPOINT_ARTIFACT_DIR,
    CHECKPOINT_NAMES,
    download_checkpoint,
    list_checkpoints,
)
from serotiny.tracking.run_record import trusts_checkpoints
from serotiny.trainer_parts.checkpoint_files import (
    UNREADABLE_CHECKPOINT_ERRORS,
    UnsafeCheckpointError,
    read_checkpoint,
)

log = logging.getLogger(__name__)

__all__ = ["UNREADABLE_CHECKPOINT_ERRORS", "CheckpointReadError", "readable_checkpoint"]


class CheckpointReadError(RunLookupError):
    """None of a run's checkpoints can be read."""


def readable_checkpoint(
    client: MlflowClient, run_id: str, which: str, folder: Path, trusted: bool = False
) -> tuple[Path, dict[str, Any]]:
    """The run's ``which`` checkpoint (``best`` or ``last``), downloaded into ``folder`` and
    read (safely, unless ``trusted``), as its path and contents; the other one when
    ``which`` is missing or damaged. Raises :class:`CheckpointReadError` (one line) when
    none can be read, ``UnsafeCheckpointError`` when the safe load refuses one."""
    available = set(list_checkpoints(client, run_id))
    order = [which, *(name for name in CHECKPOINT_NAMES if name != which)]
    present = [name for name in order if f"{CHECKPOINT_ARTIFACT_DIR}/{name}.ckpt" in available]
    if not present:
        download_checkpoint(client, run_id, which, folder)  # raises its one-line "no checkpoint"
    problems = []
    for name in present:
        path = download_checkpoint(client, run_id, name, folder / name)
        try:
            state = read_run_checkpoint(client, run_id, path, trusted)
        except UNREADABLE_CHECKPOINT_ERRORS as error:
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            problems.append(f"{name}.ckpt: {type(error).__name__} {reason}".rstrip())
            continue
        if problems:
            log.warning(
                "run %s: %s; using its %s checkpoint instead", run_id, problems[0], path.stem
            )
        return path, state
    raise CheckpointReadError(
        f"run {run_id}: no checkpoint can be read ({'; '.join(problems)}); the files are "
        "damaged: train the run again (or restore its artifacts)"
    )


def read_run_checkpoint(
    client: MlflowClient, run_id: str, path: Path, trusted: bool = False
) -> dict[str, Any]:
    """The contents of the run's checkpoint at ``path``: read safely, unless ``trusted`` or
    the run was trained with ``checkpoint.trusted: true`` (a tag of the run says so, as
    much to be trusted as the run's stored config, which names the classes to build)."""
    what = f"checkpoint {path.name} of run {run_id}"
    try:
        return read_checkpoint(path, trusted, what)
    except UnsafeCheckpointError:
        if not trusts_checkpoints(client, run_id):
            raise
    return read_checkpoint(path, True, what)
