"""An ensemble of trained models (the folds of a cross-validation) as one LightningModule.

Members are evaluated on the same batch and their ``predict_step`` outputs aggregated:
class probabilities and regression outputs by their mean (or median), class predictions as
the most probable class of the aggregated probabilities. Test metrics are computed from the
aggregated outputs, so they hold for any member model that follows serotiny's output
convention (``prediction``, ``probability``, ``target``; see ``serotiny.models``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.nn import functional

AGGREGATES = ("mean", "median")


def aggregate_outputs(outputs: Sequence[Mapping[str, Any]], how: str = "mean") -> dict[str, Any]:
    """Combine the members' ``predict_step`` dicts into one."""
    if how not in AGGREGATES:
        raise ValueError(f"unknown ensemble aggregate '{how}': choose one of {AGGREGATES}")
    combined: dict[str, Any] = {}
    for key in outputs[0]:
        values = [output[key] for output in outputs]
        if key == "target" or not torch.is_tensor(values[0]):
            combined[key] = values[0]
            continue
        stacked = torch.stack([value.float() for value in values])
        combined[key] = stacked.mean(0) if how == "mean" else stacked.median(0).values
    if "probability" in combined:
        combined["prediction"] = combined["probability"].argmax(dim=1)
    return combined


class EnsembleModule(pl.LightningModule):
    """Several trained LightningModules answering as one.

    Args:
        members: the trained models (e.g. one per cross-validation fold).
        aggregate: ``"mean"`` or ``"median"`` of the members' outputs.
    """

    def __init__(self, members: Sequence[pl.LightningModule], aggregate: str = "mean") -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if aggregate not in AGGREGATES:
            raise ValueError(
                f"unknown ensemble aggregate '{aggregate}': choose one of {AGGREGATES}"
            )
        self.members = torch.nn.ModuleList(members)
        self.aggregate = aggregate

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        outputs = [member.predict_step(batch, batch_idx) for member in self.members]
        return aggregate_outputs(outputs, self.aggregate)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        output = self.predict_step(batch, batch_idx)
        target = output.get("target")
        if target is None:
            return
        size = len(target)
        if "probability" in output:
            probability = output["probability"].clamp_min(1e-12)
            labels = target.long().reshape(-1)
            self.log("test_loss", functional.nll_loss(probability.log(), labels), batch_size=size)
            accuracy = (output["prediction"] == labels).float().mean()
            self.log("test_accuracy", accuracy, batch_size=size)
        else:
            prediction = output["prediction"].reshape(target.shape).float()
            self.log("test_loss", functional.mse_loss(prediction, target.float()), batch_size=size)
            self.log("test_mae", functional.l1_loss(prediction, target.float()), batch_size=size)
