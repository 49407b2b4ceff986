"""The checkpoint of a run that test, predict and notebooks load: the one asked for, or the
other one when the one asked for is damaged.

A run keeps ``best.ckpt`` and ``last.ckpt``. When the one asked for cannot be read (a disk
error, a copy cut short), the other one is a trained model of the same run: it is used, with
a warning that says so, rather than the command ending in a traceback. When neither reads,
one line says why for each.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
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
from serotiny.trainer_parts.checkpoint_files import load_checkpoint_state

log = logging.getLogger(__name__)

#: What ``torch.load`` raises on a damaged file: a zip cut short (OSError, RuntimeError,
#: BadZipFile), bytes that are no pickle (UnpicklingError), an empty file (EOFError), a
#: record missing from the archive (KeyError), a bad header (ValueError).
UNREADABLE_CHECKPOINT_ERRORS = (
    OSError,
    RuntimeError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
    EOFError,
    KeyError,
    ValueError,
)


class CheckpointReadError(RunLookupError):
    """None of a run's checkpoints can be read."""


def readable_checkpoint(
    client: MlflowClient, run_id: str, which: str, folder: Path
) -> tuple[Path, dict[str, Any]]:
    """The run's ``which`` checkpoint (``best`` or ``last``), downloaded into ``folder`` and
    read safely, as its path and contents; the other one when ``which`` is missing or
    damaged. Raises :class:`CheckpointReadError` (one line) when none can be read."""
    available = set(list_checkpoints(client, run_id))
    order = [which, *(name for name in CHECKPOINT_NAMES if name != which)]
    present = [name for name in order if f"{CHECKPOINT_ARTIFACT_DIR}/{name}.ckpt" in available]
    if not present:
        download_checkpoint(client, run_id, which, folder)  # raises its one-line "no checkpoint"
    problems = []
    for name in present:
        path = download_checkpoint(client, run_id, name, folder / name)
        try:
            state = load_checkpoint_state(path)
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
