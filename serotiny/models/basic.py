"""BasicModel: supervised training of any network on dict batches, for classification or
regression, with the loss, optimizer and metrics chosen in config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torchmetrics
from torch import nn

from serotiny.models import _checks
from serotiny.models._checks import ModelConfigError
from serotiny.models._optim import configure_optimizers
from serotiny.models._steps import StagedModule

Batch = Mapping[str, torch.Tensor]

TASKS = ("classification", "regression")


def _float_input(x: torch.Tensor) -> torch.Tensor:
    # Manifests read through pandas often arrive as float64 or integer pixels; networks are
    # float32, and the dtype mismatch error from nn.Linear does not say where it came from.
    if not x.is_floating_point() or x.dtype == torch.float64:
        return x.float()
    return x


def _metrics(task: str, num_classes: int | None) -> torchmetrics.MetricCollection:
    if task == "classification":
        return torchmetrics.MetricCollection(
            {"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)}
        )
    return torchmetrics.MetricCollection(
        {"mae": torchmetrics.MeanAbsoluteError(), "r2": torchmetrics.R2Score()}
    )


def _check_parts(owner: str, network: Any, loss: Any, task: str) -> None:
    if not isinstance(network, nn.Module):
        raise ModelConfigError(
            f"{owner}: network must be a torch.nn.Module, got {type(network).__name__}"
        )
    if not callable(loss):
        raise ModelConfigError(
            f"{owner}: loss must be a torch.nn.Module or callable, got {type(loss).__name__}"
        )
    if task not in TASKS:
        raise ModelConfigError(f"{owner}: unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _check_num_classes(owner: str, task: str, num_classes: int | None) -> int | None:
    if task != "classification":
        if num_classes is not None:
            raise ModelConfigError(
                f"{owner}: num_classes applies to task 'classification' only; remove it for "
                f"task {task!r}"
            )
        return None
    if num_classes is None:
        raise ModelConfigError(
            f"{owner}: task 'classification' needs num_classes (the number of labels)"
        )
    num_classes = _checks.positive_int(owner, "num_classes", num_classes)
    if num_classes < 2:
        raise ModelConfigError(f"{owner}: num_classes must be at least 2, got {num_classes}")
    return num_classes


class BasicModel(StagedModule):
    """Train ``network`` on ``batch[x_label]`` against ``batch[y_label]`` with ``loss``.

    Logged per epoch (``on_epoch=True``): ``train_loss``, ``val_loss``, ``test_loss`` and, per
    stage ``val``/``test``, ``{stage}_accuracy`` for classification or ``{stage}_mae`` and
    ``{stage}_r2`` for regression (R2 needs at least two samples in the stage).

    Args:
        network: maps ``batch[x_label]`` to logits ``(B, num_classes)`` for classification, or
            to ``(B,)``, ``(B, 1)`` or ``(B, K)`` values for regression.
        loss: called as ``loss(output, target)``, e.g. ``torch.nn.CrossEntropyLoss`` (int64
            targets ``(B,)``) or ``torch.nn.MSELoss`` (float targets shaped like the output).
        optimizer: factory called with the parameters (YAML: ``_partial_: true``).
        x_label: batch key of the input tensor.
        y_label: batch key of the target; may be missing from predict batches.
        task: ``"classification"`` or ``"regression"``.
        num_classes: number of classes; required for classification only.
        scheduler: optional factory called with the optimizer (YAML: ``_partial_: true``).
        scheduler_monitor: metric ``ReduceLROnPlateau`` watches.

    Only the primitive arguments are saved as hyperparameters, so checkpoints load with
    ``torch.load(path, weights_only=True)``; rebuild the model from config before
    ``load_state_dict``.
    """

    def __init__(
        self,
        network: nn.Module,
        loss: nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: Callable[..., torch.optim.Optimizer],
        x_label: str = "x",
        y_label: str = "y",
        task: str = "classification",
        num_classes: int | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val_loss",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        _check_parts(owner, network, loss, task)
        num_classes = _check_num_classes(owner, task, num_classes)
        x_label = _checks.label(owner, "x_label", x_label)
        y_label = _checks.label(owner, "y_label", y_label)
        if x_label == y_label:
            raise ModelConfigError(f"{owner}: x_label and y_label are both {x_label!r}")
        scheduler_monitor = _checks.label(owner, "scheduler_monitor", scheduler_monitor)

        self.network = network
        self.loss = loss
        self.optimizer_factory = _checks.factory(owner, "optimizer", optimizer, "the parameters")
        self.scheduler_factory = _checks.factory(
            owner, "scheduler", scheduler, "the optimizer", optional=True
        )
        self.x_label = x_label
        self.y_label = y_label
        self.task = task
        self.num_classes = num_classes
        self.scheduler_monitor = scheduler_monitor
        # Primitives only: modules and partials would make checkpoints need full unpickling.
        self.save_hyperparameters(
            {
                "x_label": x_label,
                "y_label": y_label,
                "task": task,
                "num_classes": num_classes,
                "scheduler_monitor": scheduler_monitor,
            }
        )
        # One collection per stage: metric state accumulates over the epoch and must not mix.
        metrics = _metrics(task, num_classes)
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw output (logits for classification)."""
        return self.network(_float_input(x))

    # -- batch handling -------------------------------------------------------------------

    def _input(self, batch: Batch) -> torch.Tensor:
        if self.x_label not in batch:
            raise ModelConfigError(
                f"{type(self).__name__}: batch has no {self.x_label!r} (x_label); "
                f"its keys are {sorted(batch)}"
            )
        return batch[self.x_label]

    def _target(self, batch: Batch) -> torch.Tensor:
        if self.y_label not in batch:
            raise ModelConfigError(
                f"{type(self).__name__}: batch has no {self.y_label!r} (y_label); "
                f"its keys are {sorted(batch)}"
            )
        y = batch[self.y_label]
        if self.task == "classification":
            # Labels may arrive one-hot (LoadClass(one_hot=true)), as (B, 1) or as floats;
            # cross-entropy, accuracy and the prediction writer all want (B,) class indices.
            if y.ndim == 2 and y.shape[1] == self.num_classes:
                y = y.argmax(dim=1)
            elif y.ndim == 2 and y.shape[1] == 1:
                y = y.squeeze(1)
            if y.ndim != 1:
                raise ValueError(
                    f"{type(self).__name__}: target {self.y_label!r} has shape {tuple(y.shape)}; "
                    f"expected class indices (B,) or one-hot (B, {self.num_classes})"
                )
            return y.long()
        return _float_input(y)

    def _output(self, x: torch.Tensor, target_shape: torch.Size | None = None) -> torch.Tensor:
        output = self(x)
        if self.task == "classification":
            if output.ndim != 2 or output.shape[1] != self.num_classes:
                raise ValueError(
                    f"{type(self).__name__}: network output has shape {tuple(output.shape)}, "
                    f"expected (B, {self.num_classes}) logits for num_classes={self.num_classes}"
                )
            return output
        # A one-output regressor returns (B, 1) while its target is (B,); MSELoss would
        # broadcast that to (B, B) and silently learn the mean.
        if (
            output.ndim == 2
            and output.shape[1] == 1
            and (target_shape is None or len(target_shape) == 1)
        ):
            output = output.squeeze(1)
        if target_shape is not None and output.shape != target_shape:
            raise ValueError(
                f"{type(self).__name__}: network output has shape {tuple(output.shape)} but "
                f"target {self.y_label!r} has shape {tuple(target_shape)}"
            )
        return output

    def _shared_step(self, batch: Batch, stage: str) -> torch.Tensor:
        x = self._input(batch)
        y = self._target(batch)
        output = self._output(x, y.shape if self.task == "regression" else None)
        loss = self.loss(output, y)
        batch_size = x.shape[0]
        # on_step=False keeps the logged names exactly `{stage}_loss` (with on_step=True
        # Lightning renames them `_step`/`_epoch`), which checkpoint and early-stop monitors use.
        self.log(
            f"{stage}_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
            sync_dist=True,  # one value across DDP ranks (a no-op on one process)
        )
        metrics = {"val": self.val_metrics, "test": self.test_metrics}.get(stage)
        if metrics is not None:
            metrics.update(
                output.detach() if self.task == "regression" else output.detach().argmax(1), y
            )
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    # -- Lightning hooks ------------------------------------------------------------------

    # Metric state made by a reset under `trainer.validate()` (inference mode) cannot be
    # updated in place under `fit()`'s validation (plain no_grad); resetting when each epoch
    # starts rebuilds the state under whichever mode is current.
    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()

    def predict_step(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """Per-sample outputs, each ``(B,)`` or ``(B, K)``.

        Classification: ``prediction`` (argmax class, int64) and ``probability``
        ``(B, num_classes)``; regression: ``prediction``. Both add ``target`` when the batch
        has ``y_label``.
        """
        has_target = self.y_label in batch
        target = self._target(batch) if has_target else None
        output = self._output(
            self._input(batch),
            target.shape if target is not None and self.task == "regression" else None,
        )
        if self.task == "classification":
            result = {"prediction": output.argmax(dim=1), "probability": output.softmax(dim=1)}
        else:
            result = {"prediction": output}
        if target is not None:
            result["target"] = target
        return result

    def configure_optimizers(self) -> Any:
        return configure_optimizers(
            type(self).__name__,
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.scheduler_monitor,
        )
