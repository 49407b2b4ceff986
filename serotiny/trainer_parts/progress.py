"""Training's progress: a rich bar on a terminal, one log line per epoch elsewhere.

:func:`progress_callbacks` picks the display for every Trainer serotiny builds (train, test,
predict; see ``builders.instantiate_trainer``):

* stderr is a terminal: :class:`RunProgressBar`, Lightning's ``RichProgressBar`` on stderr
  (where the config tree is), showing the epoch, the global step, the training loss and the
  monitored metrics (``checkpoint.monitor`` and any early-stopping monitor) besides what the
  model logs with ``prog_bar=True``;
* otherwise (a cluster job's log, a file, a pipe): :class:`EpochLogLines`, one log line at
  the end of each training epoch with the same numbers, never a line per step, and for a
  long test or prediction a line every ``serotiny.io.progress.LOG_EVERY_SECONDS``.

A project keeps the last word: ``trainer.enable_progress_bar: false`` turns progress off,
and a progress-bar callback of its own (any Lightning ``ProgressBar``) replaces ours.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.progress import ProgressBar, RichProgressBar

from serotiny.io.progress import Reporter, on_terminal

log = logging.getLogger(__name__)

#: Names the training loss goes by, the first one logged is shown.
LOSS_NAMES = ("train_loss", "loss")


def progress_callbacks(
    callbacks: Sequence[Callback], enable_progress_bar: bool | None = None
) -> list[Callback]:
    """The progress callbacks to add to ``callbacks`` for a Trainer: none, or one.

    Args:
        callbacks: the Trainer's other callbacks; one that is a ``ProgressBar`` is the
            project's own choice, and nothing is added.
        enable_progress_bar: the config's ``trainer.enable_progress_bar``; ``False`` turns
            progress off, ``None`` (unset) or ``True`` leaves the choice to serotiny.

    Example::

        callbacks += progress_callbacks(callbacks, cfg.trainer.get("enable_progress_bar"))
    """
    if enable_progress_bar is False or any(isinstance(c, ProgressBar) for c in callbacks):
        return []
    return [RunProgressBar() if on_terminal() else EpochLogLines()]


def shown_metrics(trainer: pl.Trainer, logged_for_bar: dict[str, Any]) -> dict[str, Any]:
    """What progress shows: the step, the training loss, the monitored metrics, and the
    metrics logged with ``prog_bar=True``; numbers as Python floats."""
    available = trainer.callback_metrics
    shown: dict[str, Any] = {"step": str(trainer.global_step)}  # a count, not a float
    loss = next((name for name in LOSS_NAMES if name in available), None)
    for name in [loss, *monitored_names(trainer)]:
        if name is not None and name in available:
            shown[name] = available[name]
    shown.update((k, v) for k, v in logged_for_bar.items() if k != "v_num")  # v_num: run id
    return {key: _plain(value) for key, value in shown.items()}


def monitored_names(trainer: pl.Trainer) -> list[str]:
    """The metrics the Trainer's checkpoint and early-stopping callbacks watch."""
    names = []
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, ModelCheckpoint | EarlyStopping) and callback.monitor:
            names.append(str(callback.monitor))
    return list(dict.fromkeys(names))


def epoch_description(trainer: pl.Trainer) -> str:
    """``Epoch 3/9`` as Lightning's bars count (from 0), or ``Epoch 3`` with no epoch limit."""
    last = trainer.max_epochs - 1 if trainer.max_epochs and trainer.max_epochs > 0 else None
    return f"Epoch {trainer.current_epoch}" + (f"/{last}" if last is not None else "")


class RunProgressBar(RichProgressBar):
    """Lightning's rich progress bar, on stderr, showing :func:`shown_metrics`.

    While the bar is drawn, log lines are written through it (above the bar) rather than
    across it: the handlers that print to the terminal write to rich's proxy of the stream.
    A stream that goes to a file (``serotiny train > train.log``) keeps its lines.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("console_kwargs", {"stderr": True})
        super().__init__(**kwargs)
        self._rerouted: list[tuple[logging.StreamHandler, Any]] = []

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return shown_metrics(trainer, super().get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning's refresh at an epoch's end is "soft": on a busy machine the bar can stop
        # without ever showing the epoch's losses. Draw the epoch's last state for sure.
        super().on_train_epoch_end(trainer, pl_module)
        self.refresh(hard=True)

    def _init_progress(self, trainer: pl.Trainer) -> None:
        super()._init_progress(trainer)
        if self.progress is not None and not self._rerouted:
            _keep_files_out_of_the_bar()
            self._rerouted = _log_through_proxies()

    def _stop_progress(self) -> None:
        super()._stop_progress()
        for handler, stream in self._rerouted:
            handler.setStream(stream)
        self._rerouted = []


class EpochLogLines(ProgressBar):
    """Progress as log lines: one at the end of each training epoch, for example
    ``Epoch 3/9 · step 120 · train_loss 0.512 · val_loss 0.480 · 2.1 s``, and for a long
    test or prediction a line every ``LOG_EVERY_SECONDS`` (none for a short one)."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._epoch_started = time.monotonic()
        self._evaluation: Reporter | None = None

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        metrics = shown_metrics(trainer, self.get_metrics(trainer, pl_module))
        parts = [epoch_description(trainer)]
        parts += [f"{name} {_formatted(value)}" for name, value in metrics.items()]
        parts.append(f"{time.monotonic() - self._epoch_started:.1f} s")
        log.info(" · ".join(parts))

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_evaluation("testing", trainer.num_test_batches)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_evaluation("predicting", trainer.num_predict_batches)

    def on_test_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._advance_evaluation()

    def on_predict_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._advance_evaluation()

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_evaluation()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_evaluation()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        self._end_evaluation()

    def _start_evaluation(self, what: str, batches: list[int | float]) -> None:
        """Begin counting ``batches`` (one number per dataloader, ``inf`` when unknown)."""
        known = all(count != float("inf") for count in batches)
        total = int(sum(batches)) if known else None
        if self._enabled:
            self._evaluation = Reporter(what, total, unit=" batches", terminal=False)

    def _advance_evaluation(self) -> None:
        if self._evaluation is not None:
            self._evaluation.update(self._evaluation.completed + 1)

    def _end_evaluation(self) -> None:
        if self._evaluation is not None:
            self._evaluation.close()
            self._evaluation = None


def _keep_files_out_of_the_bar() -> None:
    """Undo rich's redirection of stdout or stderr where that stream is not a terminal:
    rich would print what is written there on the bar's terminal instead of the file."""
    for name in ("stdout", "stderr"):
        real = getattr(getattr(sys, name), "rich_proxied_file", None)  # a rich FileProxy's
        if real is not None and not _is_terminal(real):
            setattr(sys, name, real)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _log_through_proxies() -> list[tuple[logging.StreamHandler, Any]]:
    """Point the handlers that print to the real stdout or stderr at rich's proxies of them
    (installed while a live display runs); return (handler, stream) pairs to put back."""
    pairs = {}
    for proxy in (sys.stdout, sys.stderr):
        real = getattr(proxy, "rich_proxied_file", None)  # only a rich FileProxy has it
        if real is not None:
            pairs[id(real)] = proxy
    rerouted = []
    for handler in _stream_handlers():
        proxy = pairs.get(id(handler.stream))
        if proxy is not None:
            rerouted.append((handler, handler.setStream(proxy)))
    return rerouted


def _stream_handlers() -> Iterator[logging.StreamHandler]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler:
                yield handler


def _plain(value: Any) -> Any:
    """A one-element tensor as a Python number; anything else as it is."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        return value.item()
    return value


def _formatted(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
