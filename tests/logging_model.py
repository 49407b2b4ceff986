"""A small LightningModule for the tests of what training shows (progress bar, log lines)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.demos.boring_classes import BoringModel


class LoggingModel(BoringModel):
    """Lightning's BoringModel, logging its losses as serotiny's models name them
    (``train_loss`` per epoch, ``val_loss``), and ``val_score`` for a metric to monitor at
    ``mode=max``; none of them for the bar (``prog_bar`` is not set)."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)["loss"]
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self.step(batch)
        self.log("val_loss", loss)
        self.log("val_score", -loss)
        return loss
