"""Turning the optimizer / scheduler partials from config into Lightning's optimizer config.

Models take ``optimizer`` and ``scheduler`` as factories (Hydra ``_partial_: true``) rather
than built objects, because an optimizer needs the module's parameters, which only exist once
the module is built. Keeping this in one function means every model reads the same YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from serotiny.models._checks import ModelConfigError


def configure_optimizers(
    owner: str,
    parameters: Iterable[torch.nn.Parameter],
    optimizer: Callable[..., Any],
    scheduler: Callable[..., Any] | None = None,
    scheduler_monitor: str = "val_loss",
) -> Any:
    """What ``LightningModule.configure_optimizers`` should return.

    ``optimizer(parameters)`` must build a ``torch.optim.Optimizer``; ``scheduler(optimizer)``,
    when given, an LR scheduler. ``scheduler_monitor`` names the logged metric that
    ``ReduceLROnPlateau`` watches (Lightning ignores it for other schedulers).
    """
    built = optimizer(parameters)
    if not isinstance(built, torch.optim.Optimizer):
        raise ModelConfigError(
            f"{owner}: optimizer(parameters) built {type(built).__name__}, "
            "not a torch.optim.Optimizer; check the optimizer's _target_"
        )
    if scheduler is None:
        return built
    lr_scheduler = scheduler(built)
    if not isinstance(lr_scheduler, torch.optim.lr_scheduler.LRScheduler):
        raise ModelConfigError(
            f"{owner}: scheduler(optimizer) built {type(lr_scheduler).__name__}, "
            "not a torch.optim.lr_scheduler scheduler; check the scheduler's _target_"
        )
    return {
        "optimizer": built,
        "lr_scheduler": {"scheduler": lr_scheduler, "monitor": scheduler_monitor},
    }
