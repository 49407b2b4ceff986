"""Pruning: stop a search's trial early when Optuna's pruner says it cannot win.

A trial of a search is an ordinary ``serotiny train`` job that the sweeper started with
``++search.storage=... ++search.study_name=... ++search.trial_number=N``. From those
settings, :func:`pruning_callback` gives the Lightning callback that, after each
validation, reports the monitored metric to trial N of the study and asks the study's
pruner (the one in ``hydra.sweeper.pruner``, stored with the study) whether to go on.
When the pruner says stop, training stops as an early stop would: the run ends FINISHED
with its checkpoints, and the trial is marked, so that the sweeper records it as pruned.

No MLflow here: what the run records about a pruning is the train command's business
(:attr:`PruningCallback.pruned_at_epoch`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import optuna
from hydra.utils import instantiate
from optuna.storages import RDBStorage

from serotiny.search.study import PRUNED_AT_ATTR, PRUNER_ATTR, engine_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialSettings:
    """Which trial of which stored study a training is (the ``search`` settings)."""

    storage: str
    study_name: str
    trial_number: int

    @classmethod
    def from_config(cls, search: Mapping[str, Any] | None) -> TrialSettings | None:
        """The settings in a config's ``search`` section; None outside a stored search."""
        if not search or search.get("trial_number") is None or not search.get("storage"):
            return None
        return cls(str(search["storage"]), str(search["study_name"]), int(search["trial_number"]))


def open_trial(settings: TrialSettings) -> optuna.Trial:
    """Trial ``settings.trial_number`` of the stored study, with the study's pruner."""
    storage = RDBStorage(settings.storage, engine_kwargs=engine_settings(settings.storage))
    study_id = storage.get_study_id_from_name(settings.study_name)
    spec = storage.get_study_user_attrs(study_id).get(PRUNER_ATTR)
    study = optuna.load_study(
        study_name=settings.study_name,
        storage=storage,
        pruner=instantiate(spec) if spec else optuna.pruners.NopPruner(),
        # A trial object consults the sampler when made; the search's own sampler is not
        # needed here (nothing is drawn), and random sampling has no state to disturb.
        sampler=optuna.samplers.RandomSampler(),
    )
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, settings.trial_number)
    return optuna.Trial(study, trial_id)


class PruningCallback(pl.Callback):
    """Report ``monitor`` to a search's trial after each validation; stop when pruned.

    Only rank 0 talks to the study; its decision is broadcast, so that every rank of a
    distributed training stops at the same epoch. The epoch is the step Optuna's pruners
    count (e.g. ``n_warmup_steps`` of ``MedianPruner``).
    """

    def __init__(self, settings: TrialSettings, monitor: str) -> None:
        self.settings = settings
        self.monitor = monitor
        self.pruned_at_epoch: int | None = None
        self._trial: optuna.Trial | None = None

    @property
    def pruned(self) -> bool:
        """Whether the pruner stopped this training."""
        return self.pruned_at_epoch is not None

    def _should_prune(self, trainer: pl.Trainer) -> bool:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            log.warning("trial %d: no '%s' to report", self.settings.trial_number, self.monitor)
            return False
        if self._trial is None:
            self._trial = open_trial(self.settings)
        epoch = trainer.current_epoch
        self._trial.report(float(value), step=epoch)
        if not self._trial.should_prune():
            return False
        self._trial.set_user_attr(PRUNED_AT_ATTR, epoch)
        return True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Report this validation's value; stop training when the pruner says so."""
        if trainer.sanity_checking or self.pruned:
            return
        prune = self._should_prune(trainer) if trainer.is_global_zero else False
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.pruned_at_epoch = trainer.current_epoch
            trainer.should_stop = True
            log.info(
                "trial %d pruned after epoch %d", self.settings.trial_number, self.pruned_at_epoch
            )


def pruning_callback(search: Mapping[str, Any] | None, monitor: str) -> PruningCallback | None:
    """The pruning callback for a trial of a stored search (``search``: the config's
    ``search`` section), or None when the training is not one.

    Example, in the train command: ``callback = pruning_callback(cfg.get("search"),
    cfg.checkpoint.monitor)``; add it to the trainer's callbacks when it is not None.
    """
    settings = TrialSettings.from_config(search)
    return None if settings is None else PruningCallback(settings, monitor)
