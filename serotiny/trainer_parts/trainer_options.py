"""The trainer's config, checked before a run exists: its option names, their types, and a
Trainer built from it once.

Lightning takes ``max_epochs="abc"`` or ``max_epochs=2.5`` without a word and fails with an
``AssertionError`` when training starts; a misspelled option, an accelerator the machine
lacks or an unknown strategy fail only when the Trainer is built, which for a training is
after its run was opened (the Trainer logs to it). Here the options are compared with the
Trainer's signature and type hints, and a Trainer is built once without a logger, so that
each of these is one line before anything starts.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import tempfile
import types
import typing
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, Union

import lightning.pytorch as pl
from hydra.utils import get_class
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import SerotinyUserError
from serotiny.trainer_parts.builders import instantiate_trainer

_DEFAULT_TARGET = "lightning.pytorch.Trainer"
# Keys of the trainer's config that serotiny consumes before the Trainer sees it.
_NOT_FOR_THE_TRAINER = frozenset({"_target_", "_partial_", "_recursive_", "_convert_"})
_NOT_FOR_THE_TRAINER |= {"callbacks"}


class TrainerOptionError(SerotinyUserError):
    """A trainer option is unknown or of a kind the Trainer does not take."""


def accepts(value: Any, hint: Any) -> bool | None:
    """Whether a config value fits a type hint: True, False, or None where it cannot tell
    (a class instance Hydra builds from a ``_target_`` mapping, an unusual hint)."""
    if isinstance(value, Mapping) and "_target_" in value:
        return None
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        verdicts = [accepts(value, arg) for arg in typing.get_args(hint)]
        return True if True in verdicts else (None if None in verdicts else False)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Iterable, typing.Sequence):
        if not isinstance(value, list | tuple):
            return False
        (item,) = typing.get_args(hint)[:1] or (Any,)
        verdicts = [accepts(each, item) for each in value]
        return False if False in verdicts else (None if None in verdicts else True)
    if origin is dict:
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        # Values from YAML are plain data: they are never instances of a Lightning class.
        return isinstance(value, hint) or (None if isinstance(value, Mapping) else False)
    return None


def _shown(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "None")


def check_trainer_options(cfg: DictConfig) -> None:
    """Raise :class:`TrainerOptionError` for an option the trainer class does not take (with
    the nearest one it does) or a value of a type its type hints rule out."""
    options = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(options, dict)
    try:
        trainer_class = get_class(str(options.get("_target_", _DEFAULT_TARGET)))
        parameters = inspect.signature(trainer_class).parameters
        hints = typing.get_type_hints(trainer_class.__init__)
    except (ImportError, AttributeError, NameError, TypeError, ValueError):
        return  # building the Trainer reports a target it cannot find
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in options.items():
        if name in _NOT_FOR_THE_TRAINER:
            continue
        if name not in parameters:
            if open_ended:
                continue
            close = difflib.get_close_matches(name, list(parameters), n=1, cutoff=0.6)
            hint = f" (did you mean 'trainer.{close[0]}'?)" if close else ""
            raise TrainerOptionError(
                f"trainer.{name} is not an option of {trainer_class.__name__}{hint}; see "
                "Lightning's Trainer documentation for its options"
            )
        if name in hints and accepts(value, hints[name]) is False:
            raise TrainerOptionError(
                f"trainer.{name}={value!r}: {trainer_class.__name__} takes "
                f"{_shown(hints[name])} there"
            )


@contextmanager
def _hushed() -> Iterator[None]:
    """Lightning's messages while a Trainer is built (devices found, ...) said once, by the
    real one: hidden while the trial one is built."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def try_trainer(cfg: DictConfig, callbacks: list[Callback]) -> pl.Trainer:
    """Check the options, then build a Trainer from ``cfg`` with ``callbacks`` (a copy of the
    list: the Trainer adds its own to it), no logger and no checkpointing, and return it.

    Building it is what finds an accelerator the machine lacks, an unknown strategy or
    precision, devices that do not exist. Nothing is written; the Trainer is not the one
    that trains (which logs to the run), but a datamodule may be set up beside it.
    """
    check_trainer_options(cfg)
    with _hushed():
        return instantiate_trainer(
            cfg,
            list(callbacks),
            logger=False,
            default_root_dir=tempfile.gettempdir(),
            enable_checkpointing=False,
        )
