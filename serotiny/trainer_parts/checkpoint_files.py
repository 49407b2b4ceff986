"""Reading checkpoint files safely, and telling a damaged file from one a safe load refuses.

A checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain data only, never
arbitrary unpickling, so opening a run's checkpoint cannot run code that came with it.
serotiny writes its checkpoints so (see ``plain_checkpoint.py``). A project whose model or
callbacks store other objects in checkpoints says so with ``checkpoint.trusted: true``; its
checkpoints are then unpickled in full (``weights_only=False``).

Two ways a checkpoint fails to load are told apart, because they call for different answers:

* **damaged** (a copy or an upload cut short, bytes overwritten): one of
  :data:`UNREADABLE_CHECKPOINT_ERRORS`; a run's other checkpoint may stand in for it;
* **refused** (whole, but holding objects a safe load does not unpickle: a checkpoint written
  before serotiny kept them plain, or a model storing such objects): an
  :class:`UnsafeCheckpointError`, one line naming ``checkpoint.trusted``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from serotiny.errors import SerotinyUserError

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

#: How a one-line message tells users to trust a project's checkpoints.
TRUST_HINT = (
    "if you trust them, set checkpoint.trusted: true (++checkpoint.trusted=true, or "
    "trusted=True in load_model_from_checkpoint) and they are unpickled in full"
)


class UnsafeCheckpointError(SerotinyUserError):
    """A checkpoint holds objects that a safe (``weights_only``) load does not unpickle."""


def unsafe_globals(path: Path) -> list[str]:
    """The classes and functions a safe load of the checkpoint at ``path`` would refuse,
    sorted (empty for a safe checkpoint, and for a file too damaged to tell)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # not a whole checkpoint: it is damaged, not unsafe
        return []


def read_checkpoint(path: Path, trusted: bool = False, what: str | None = None) -> dict[str, Any]:
    """The checkpoint's contents, read safely unless ``trusted``.

    Raises :class:`UnsafeCheckpointError` (one line; ``what`` names the file, e.g. "run
    X's last.ckpt") when the safe load refuses objects in a whole file, and one of
    :data:`UNREADABLE_CHECKPOINT_ERRORS` when the file is damaged.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError:
        refused = unsafe_globals(path)
        if not refused:
            raise
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise UnsafeCheckpointError(
            f"{what or path.name} holds objects a safe load refuses ({shown}): it was written "
            "before serotiny kept checkpoints to plain data, or the project's model or "
            f"callbacks store such objects in it; {TRUST_HINT}"
        ) from None
