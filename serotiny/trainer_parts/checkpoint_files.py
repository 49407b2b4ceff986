"""Reading checkpoint files safely.

A checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain data only, never
arbitrary unpickling, so opening a run's checkpoint cannot run code that came with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def load_checkpoint_state(path: Path) -> dict[str, Any]:
    """The checkpoint's contents, read without unpickling arbitrary objects."""
    return torch.load(path, map_location="cpu", weights_only=True)
