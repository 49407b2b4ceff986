"""Building the objects of a run from config, each checked for the type it must have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from serotiny.errors import SerotinyUserError
from serotiny.trainer_parts.progress import progress_callbacks
from serotiny.trainer_parts.pytorch_lightning_era import (
    is_pytorch_lightning_callback,
    pytorch_lightning_message,
)


class ConfigTypeError(SerotinyUserError):
    """A config section builds an object of the wrong kind."""


def _build(section: str, cfg: Any, **kwargs: Any) -> Any:
    if cfg is None:
        raise ConfigTypeError(f"config section '{section}' is empty; set it or pick an option")
    if isinstance(cfg, DictConfig | Mapping) and "_target_" not in cfg:
        raise ConfigTypeError(f"config section '{section}' has no _target_ naming a class to build")
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, SerotinyUserError):
            # The class itself said what is wrong, in one line: Hydra's wrapping adds nothing.
            raise ConfigTypeError(f"config '{section}': {error.__cause__}") from error
        message = " ".join(str(error).split())
        raise ConfigTypeError(f"cannot build '{section}': {message}") from error


Built = TypeVar("Built")


def _build_a(section: str, cfg: DictConfig, kind: type[Built]) -> Built:
    """The ``kind`` object that config section ``section`` builds; one line when it is not."""
    built = _build(section, cfg)
    if not isinstance(built, kind):
        raise ConfigTypeError(
            pytorch_lightning_message(built, section)
            or f"config '{section}' builds {type(built).__name__}, not a {kind.__name__} "
            f"(_target_: {cfg.get('_target_')})"
        )
    return built


def instantiate_model(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule described by ``cfg``."""
    return _build_a("model", cfg, pl.LightningModule)


def instantiate_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The LightningDataModule described by ``cfg``."""
    return _build_a("data", cfg, pl.LightningDataModule)


def instantiate_callbacks(cfg: ListConfig | DictConfig | None) -> list[Callback]:
    """Callbacks from a list of specs, or a mapping of name -> spec (either form is accepted)."""
    if cfg is None:
        return []
    if isinstance(cfg, DictConfig | Mapping):
        specs: Sequence[Any] = [value for value in cfg.values() if value is not None]
        names = [str(key) for key, value in cfg.items() if value is not None]
    elif isinstance(cfg, ListConfig | Sequence):
        specs = list(cfg)
        names = [str(index) for index in range(len(specs))]
    else:
        raise ConfigTypeError(f"'trainer.callbacks' must be a list or a mapping, got {cfg!r}")
    callbacks = []
    for name, spec in zip(names, specs, strict=True):
        callback = _build(f"trainer.callbacks.{name}", spec)
        if not isinstance(callback, Callback) and not is_pytorch_lightning_callback(callback):
            raise ConfigTypeError(
                f"trainer.callbacks.{name} builds {type(callback).__name__}, not a Lightning "
                f"Callback (_target_: {spec.get('_target_')})"
            )
        callbacks.append(callback)
    return callbacks


def instantiate_trainer(
    cfg: DictConfig, callbacks: list[Callback], logger: Any, **overrides: Any
) -> pl.Trainer:
    """The Trainer from ``cfg`` (its ``callbacks`` key replaced by the built ``callbacks``),
    with serotiny's progress display unless the config turns it off or brings its own
    (see ``progress.py``)."""
    options = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(options, dict)
    options.pop("callbacks", None)
    options.setdefault("_target_", "lightning.pytorch.Trainer")
    options.update(overrides)
    callbacks = [*callbacks, *progress_callbacks(callbacks, options.get("enable_progress_bar"))]
    trainer = _build("trainer", OmegaConf.create(options), callbacks=callbacks, logger=logger)
    if not isinstance(trainer, pl.Trainer):
        raise ConfigTypeError(f"config 'trainer' builds {type(trainer).__name__}, not a Trainer")
    return trainer
