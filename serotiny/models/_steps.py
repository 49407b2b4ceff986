"""The step methods every serotiny model shares: one function for all three stages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch


class StagedModule(pl.LightningModule):
    """A LightningModule whose train, validation and test steps all run ``_shared_step``."""

    def _shared_step(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        """The loss of ``batch`` in ``stage`` (``train``, ``val`` or ``test``), logged."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")
