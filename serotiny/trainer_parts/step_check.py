"""One batch through a copy of the model, before training: does the model take its data?

A model whose input size does not match the data, a batch key it expects and the data does
not have, a target of the wrong dtype, a negative learning rate: each stops training at its
first step, after a run was opened. Running the model's own steps on one batch finds them
first. The steps run on a deep copy of the model, on whatever device it is on now (the CPU,
as built), with the random generators put back afterwards, so the real training starts from
the very state it would have had; no optimizer is stepped.

Steps that need a Trainer (``self.trainer``, ``self.optimizers()`` in manual optimization)
cannot run outside one: such a step is skipped, never reported as a mistake. The names the
steps log are recorded, so that a monitor that names no logged metric can be refused too
(:func:`unlogged_monitor`).
"""

from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch

from serotiny.errors import SerotinyUserError
from serotiny.trainer_parts.first_batch import describe
from serotiny.trainer_parts.random_state import capture_rng_state, restore_rng_state

#: What a step raises when the model and its data do not fit: shapes and dtypes
#: (RuntimeError), the model's own checks (ValueError), a missing batch key (KeyError), a
#: class index out of range (IndexError), a value of the wrong kind (TypeError).
STEP_ERRORS = (RuntimeError, ValueError, TypeError, KeyError, IndexError)
_NOT_ATTACHED = "is not attached to a `Trainer`"

#: Hooks that may log metrics but cannot be run outside a Trainer's loop: a model that
#: overrides one may log names the check does not see.
_UNRUN_LOGGING_HOOKS = (
    "on_train_start",
    "on_validation_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "optimizer_step",
    "optimizer_zero_grad",
    "lr_scheduler_step",
    "configure_gradient_clipping",
)


class ModelStepError(SerotinyUserError):
    """The model fails on the first batch of its data, or cannot make its optimizers."""


class _NeedsTrainer(Exception):
    """A step used ``self.trainer``: it cannot be tried outside a Trainer."""


@dataclass
class StepRecord:
    """What the steps logged; ``complete`` when every hook that can log was run."""

    logged: set[str] = field(default_factory=set)
    complete: bool = True


@contextmanager
def kept_random_state() -> Iterator[None]:
    """The random generators put back on the way out as they were on the way in (CUDA's
    only when CUDA is already started: asking for them would start it)."""
    state = capture_rng_state(with_cuda=torch.cuda.is_initialized())
    try:
        yield
    finally:
        restore_rng_state(state)


@contextmanager
def model_copy(model: pl.LightningModule) -> Iterator[tuple[pl.LightningModule, StepRecord] | None]:
    """A deep copy of ``model`` that records what it logs (None when it cannot be copied),
    with warnings hushed (logging without a Trainer warns) and the random generators put back
    on the way out."""
    with kept_random_state(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            twin = copy.deepcopy(model)
        except (TypeError, RuntimeError, pickle.PicklingError):
            yield None
            return
        record = StepRecord()
        twin.log = _recording(twin.log, record)  # type: ignore[method-assign]
        yield twin, record


def _recording(log: Callable[..., Any], record: StepRecord) -> Callable[..., Any]:
    def recorded(name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        # Lightning names a metric logged both per step and per epoch `_step` and `_epoch`.
        record.logged.update({name, f"{name}_step", f"{name}_epoch"})
        return log(name, value, *args, **kwargs)

    return recorded


def run_hook(where: str, hook: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``; a step's error as one line (:class:`ModelStepError`) saying
    ``where`` and which ``hook`` failed, or :class:`_NeedsTrainer`."""
    try:
        return function(*args)
    except STEP_ERRORS as error:
        if _NOT_ATTACHED in str(error):
            raise _NeedsTrainer from None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelStepError(
            f"{where}: {hook} fails ({type(error).__name__}: {reason}); fix the model's or "
            "the data's config so that they fit"
        ) from error


def check_loss(where: str, output: Any, model: pl.LightningModule) -> None:
    """What training_step returned is a loss Lightning can use: finite, and with gradients."""
    loss = output.get("loss") if isinstance(output, dict) else output
    if output is None:
        return
    if isinstance(output, dict) and loss is None:
        raise ModelStepError(f"{where}: training_step returns a dict without a 'loss' key")
    if not isinstance(loss, torch.Tensor):
        raise ModelStepError(
            f"{where}: training_step returns {type(loss).__name__}; return the loss tensor, "
            "a dict with 'loss', or None to skip the batch"
        )
    if not bool(torch.isfinite(loss.detach()).all()):
        raise ModelStepError(
            f"{where}: training_step gives a non-finite loss ({loss.detach().flatten()[:1]}) "
            "on the first batch; check the data's values and the model's settings"
        )
    trainable = any(parameter.requires_grad for parameter in model.parameters())
    if trainable and not loss.requires_grad:
        raise ModelStepError(
            f"{where}: training_step's loss does not depend on the model's parameters (it "
            "has no gradient); do not detach it or compute it under torch.no_grad()"
        )


def try_training(
    model: pl.LightningModule, train: Any, val: Any | None, where: str
) -> StepRecord | None:
    """Run the training hooks, ``configure_optimizers`` and the validation hooks of a copy of
    ``model`` on the batches ``train`` and ``val`` (None: no validation batch)."""
    with model_copy(model) as made:
        if made is None:
            return None
        twin, record = made
        batch_where = f"{where}, first training batch {describe(train)}"
        try:
            _training_hooks(twin, train, batch_where)
        except _NeedsTrainer:
            record.complete = False
        with suppress(_NeedsTrainer):
            run_hook(where, "configure_optimizers", twin.configure_optimizers)
        if val is not None and _overrides(twin, "validation_step"):
            try:
                _validation_hooks(twin, val, f"{where}, first validation batch {describe(val)}")
            except _NeedsTrainer:
                record.complete = False
        overridden = [h for h in _UNRUN_LOGGING_HOOKS if _overrides(twin, h)]
        unvalidated = val is None and _overrides(twin, "validation_step")
        record.complete = record.complete and not unvalidated and not overridden
        return record


def _training_hooks(model: pl.LightningModule, batch: Any, where: str) -> None:
    model.train()
    with torch.enable_grad():
        run_hook(where, "on_train_epoch_start", model.on_train_epoch_start)
        if not model.automatic_optimization:
            raise _NeedsTrainer  # manual optimization steps its optimizers itself
        run_hook(where, "on_train_batch_start", model.on_train_batch_start, batch, 0)
        output = run_hook(where, "training_step", model.training_step, batch, 0)
        check_loss(where, output, model)
        run_hook(where, "on_train_batch_end", model.on_train_batch_end, output, batch, 0)
        run_hook(where, "on_train_epoch_end", model.on_train_epoch_end)


def _validation_hooks(model: pl.LightningModule, batch: Any, where: str) -> None:
    model.eval()
    with torch.no_grad():
        run_hook(where, "on_validation_epoch_start", model.on_validation_epoch_start)
        run_hook(where, "on_validation_batch_start", model.on_validation_batch_start, batch, 0)
        output = run_hook(where, "validation_step", model.validation_step, batch, 0)
        run_hook(where, "on_validation_batch_end", model.on_validation_batch_end, output, batch, 0)
        run_hook(where, "on_validation_epoch_end", model.on_validation_epoch_end)


def try_evaluation(model: pl.LightningModule, batch: Any, stage: str, where: str) -> None:
    """Run ``test_step`` or ``predict_step`` (``stage``) of a copy of ``model`` on ``batch``."""
    with model_copy(model) as made:
        if made is None:
            return
        twin, _ = made
        twin.eval()
        hook = f"{stage}_step"
        with torch.no_grad(), suppress(_NeedsTrainer):
            run_hook(
                f"{where}, first {stage} batch {describe(batch)}",
                hook,
                getattr(twin, hook),
                batch,
                0,
            )


def _overrides(model: pl.LightningModule, hook: str) -> bool:
    return getattr(type(model), hook, None) is not getattr(pl.LightningModule, hook, None)


def unlogged_monitor(record: StepRecord | None, monitor: str | None) -> bool:
    """Whether ``monitor`` is surely never logged: every logging hook ran and none logged it."""
    return (
        bool(monitor) and record is not None and record.complete and (monitor not in record.logged)
    )
