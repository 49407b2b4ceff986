"""Your own LightningModules. Refer to them from config/model/*.yaml by `_target_`, e.g.

    _target_: {{cookiecutter.package_name}}.models.LinearClassifier
    in_features: 8
    num_classes: 3

Write them as Lightning and Hydra users do: arguments may be objects that Hydra builds
(a network from a nested config, an optimizer as a partial, `_partial_: true`), kept by
`self.save_hyperparameters()` or not. serotiny rebuilds a model from its run's config, so
checkpoints keep such hyperparameters as text and stay loadable with
`torch.load(weights_only=True)`. State of your own saved in `on_save_checkpoint` must be
plain data or tensors, unless `checkpoint.trusted: true` (see the getting-started guide).
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class LinearClassifier(pl.LightningModule):
    """A minimal example model: one linear layer over batch["x"], predicting batch["y"]."""

    def __init__(self, in_features: int, num_classes: int, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def _loss(self, batch: dict, stage: str) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(self(batch["x"]), batch["y"])
        self.log(f"{stage}_loss", loss, on_epoch=True, on_step=False)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._loss(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._loss(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"prediction": self(batch["x"]).argmax(dim=1)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
