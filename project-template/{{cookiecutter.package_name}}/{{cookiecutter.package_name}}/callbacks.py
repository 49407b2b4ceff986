"""Your own Lightning callbacks, listed in config/trainer/callbacks/*.yaml by `_target_`."""

from __future__ import annotations

import lightning.pytorch as pl


class PrintEpoch(pl.Callback):
    """An example callback: prints each finished training epoch's number."""

    def __init__(self, prefix: str = "epoch") -> None:
        self.prefix = prefix

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        print(f"{self.prefix} {trainer.current_epoch} done")
