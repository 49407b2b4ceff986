"""Everything that can be checked without training, checked before a run exists.

``serotiny train`` builds its model, datamodule and callbacks first
(:func:`~serotiny.commands.training_setup.build_training_parts`: each built and type-checked,
the manifest checked); :func:`preflight_training` then checks the rest before the run is
claimed: the command's folder can be made, the tracking store can be used, the trainer's
options build a Trainer, the first training and validation batches go through a copy of the
model (shapes, dtypes, batch keys, NaN or infinite inputs, the loss, the optimizers), the
monitored metrics are ones the model logs, and what the model's ``on_save_checkpoint`` stores
is plain data a safe load reads (unless ``checkpoint.trusted``). A mistake is then one line
and leaves no run behind. ``serotiny test`` and ``predict`` check their first batch the same
way (:func:`preflight_evaluation`) before evaluating.

The checks leave no trace on what training then does: the model's copy is dropped, the
random generators are put back, the loaders training will iterate are not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from serotiny.cluster import is_extra_rank
from serotiny.commands.job_setup import output_folder
from serotiny.commands.training_setup import TrainingParts
from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import Settings
from serotiny.tracking.store_health import check_store
from serotiny.trainer_parts.first_batch import first_batch, non_finite_entry
from serotiny.trainer_parts.plain_checkpoint import refuse_unsafe_model_state
from serotiny.trainer_parts.step_check import (
    StepRecord,
    kept_random_state,
    try_evaluation,
    try_training,
    unlogged_monitor,
)
from serotiny.trainer_parts.trainer_options import try_trainer

log = logging.getLogger(__name__)

#: Where callbacks come from that are known not to log metrics of their own.
_QUIET_CALLBACK_MODULES = ("lightning.", "pytorch_lightning.", "serotiny.", "optuna")


class PreflightError(SerotinyUserError):
    """A mistake found before the run: the data's batches or the monitored metrics."""


def preflight_training(cfg: DictConfig, settings: Settings, parts: TrainingParts) -> None:
    """Check what a training needs before its run is claimed (see the module doc).

    Rank 0 checks; the extra ranks of a distributed training join a run it opened.
    """
    if is_extra_rank():
        return
    output_folder(settings)
    check_store(settings.mlflow.tracking_uri)
    if not settings.checkpoint.trusted:
        refuse_unsafe_model_state(parts.model, described(parts.model, parts.datamodule))
    with kept_random_state():  # a datamodule's setup may draw from them, as a step may
        trainer = try_trainer(cfg.trainer, parts.callbacks)
        if settings.preflight:
            record = try_first_batches(parts, trainer)
            check_monitors(cfg, settings, parts.callbacks, record, type(parts.model).__name__)


def try_first_batches(parts: TrainingParts, trainer: pl.Trainer) -> StepRecord | None:
    """The first training and validation batches through a copy of the model (None when
    there is no training batch to take aside)."""
    where = described(parts.model, parts.datamodule)
    with attached(parts.datamodule, trainer):
        train, val = first_batches(parts.datamodule, "fit", ("train", "val"), where)
    if train is None:
        log.info("preflight: no first training batch to try %s on", where)
        return None
    return try_training(parts.model, train, val, where)


def preflight_evaluation(
    model: pl.LightningModule, datamodule: pl.LightningDataModule, stage: str
) -> None:
    """Put the first ``test`` or ``predict`` batch (``stage``) through a copy of ``model``."""
    where = described(model, datamodule)
    with kept_random_state():
        (batch,) = first_batches(datamodule, stage, (stage,), where)
        if batch is not None:
            try_evaluation(model, batch, stage, where)


def described(model: pl.LightningModule, datamodule: pl.LightningDataModule) -> str:
    """``model X with data Y (its path)``, for messages."""
    path = getattr(datamodule, "path", None)
    data = type(datamodule).__name__ + (f" ({path})" if isinstance(path, str) else "")
    return f"model {type(model).__name__} with data {data}"


@contextmanager
def attached(datamodule: pl.LightningDataModule, trainer: pl.Trainer) -> Iterator[None]:
    """The trial Trainer attached to ``datamodule`` while it sets up, as in ``fit`` (a
    datamodule may read ``self.trainer.world_size``), and detached again."""
    before = datamodule.trainer
    datamodule.trainer = trainer
    try:
        yield
    finally:
        datamodule.trainer = before


def first_batches(
    datamodule: pl.LightningDataModule, stage: str, splits: tuple[str, ...], where: str
) -> list[Any | None]:
    """The first batch of each split's loader, the datamodule prepared and set up for
    ``stage`` as Lightning would; None for a split whose loader the datamodule lacks or whose
    batch cannot be taken aside (an iterable dataset, ...). A batch holding NaN or infinite
    values is refused."""
    datamodule.prepare_data()
    datamodule.setup(stage)
    batches = []
    for split in splits:
        hook = f"{split}_dataloader"
        if getattr(type(datamodule), hook) is getattr(pl.LightningDataModule, hook):
            batches.append(None)
            continue
        try:
            loader = getattr(datamodule, hook)()
        except (TypeError, ValueError) as error:  # DataLoader refusing its arguments
            raise PreflightError(
                f"{where}: {hook}() fails ({type(error).__name__}: {error})"
            ) from error
        batch = first_batch(loader)
        key = non_finite_entry(batch) if batch is not None else None
        if key is not None:
            raise PreflightError(
                f"{where}: the first {split} batch holds NaN or infinite values in '{key}'; "
                "fix the data (serotiny validate checks a manifest's columns)"
            )
        batches.append(batch)
    return batches


def check_monitors(
    cfg: DictConfig,
    settings: Settings,
    callbacks: list[Callback],
    record: StepRecord | None,
    model_name: str,
) -> None:
    """Refuse a monitored metric (``checkpoint.monitor``, a callback's ``monitor``) that the
    model surely never logs: every hook that can log ran on the first batches, no callback
    of the project's own might log it, and it was not among what they logged."""
    if record is None or any(
        not type(callback).__module__.startswith(_QUIET_CALLBACK_MODULES) for callback in callbacks
    ):
        return
    wanted: list[tuple[str, Any]] = []
    if cfg.trainer.get("enable_checkpointing", True) is not False:
        wanted.append(("checkpoint.monitor", settings.checkpoint.monitor))
    for callback in callbacks:
        if getattr(callback, "strict", True):
            key = f"the monitor of {type(callback).__name__} (trainer.callbacks)"
            wanted.append((key, getattr(callback, "monitor", None)))
    for key, monitor in wanted:
        if isinstance(monitor, str) and unlogged_monitor(record, monitor):
            logged = sorted(
                name for name in record.logged if not name.endswith(("_step", "_epoch"))
            )
            raise PreflightError(
                f"{key}='{monitor}' is not a metric {model_name} logs (it logs "
                f"{', '.join(logged) or 'none'}); set {key} to one of them"
            )
