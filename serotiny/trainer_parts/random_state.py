"""Random-number state saved in checkpoints, so a resumed run continues bit for bit.

Lightning checkpoints restore weights, optimizers, schedulers, loop progress and callback
state, but not the random generators. Without them, a resumed run shuffles and drops out
differently from the run it continues. This callback stores the Python, NumPy and torch
generators when a checkpoint is written and puts them back at the same point of training
when it resumes: as the checkpoint is loaded for an epoch-boundary checkpoint, or at the
start of training for a mid-epoch one (after the data iterators, which draw seeds, exist).
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def capture_rng_state(with_cuda: bool = True) -> dict[str, Any]:
    """The generators' states as plain data and tensors (``weights_only``-loadable).

    ``with_cuda=False`` leaves CUDA's generators out (asking for them starts CUDA, which a
    process that forks its ranks later must not have done)."""
    version, python_state, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(python_state), gauss],
        "numpy": [
            name,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            position,
            has_gauss,
            cached,
        ],
        "torch": torch.get_rng_state(),
    }
    if with_cuda and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back as :func:`capture_rng_state` found them."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomStateCheckpoint(Callback):
    """Saves the random generators with every checkpoint and restores them on resume.

    Where they are restored matters, because Lightning makes the training data iterator
    (which draws a seed) at a different point when it resumes: before ``on_train_start``.
    A checkpoint taken at an epoch boundary was taken just before that draw, so its state is
    restored as soon as the checkpoint is loaded; one taken mid-epoch was taken after it, so
    its state is restored once the resumed iterator exists. (Where in its order an
    interrupted epoch resumes is the data loader's business: ``ManifestDatamodule``'s
    training loader saves its position in the checkpoint.)
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        mid_epoch = not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        checkpoint[STATE_KEY] = {"rng": capture_rng_state(), "mid_epoch": mid_epoch}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(STATE_KEY)
        if state is None:
            return
        if state["mid_epoch"]:
            self._pending = state["rng"]
        else:
            restore_rng_state(state["rng"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None:
            return
        restore_rng_state(self._pending)
        self._pending = None


STATE_KEY = "serotiny_random_state"
