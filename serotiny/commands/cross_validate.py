"""K-fold cross-validation: ``serotiny train ++cv.folds=5`` trains every fold under one parent.

The parent run carries the run name; each fold is a training of its own (``train``), named
``<name>-fold<i>`` and made a child of the parent, and goes through the same run-name table,
so rerunning the command after a crash trains only the folds that did not finish. When all
folds are done, the parent logs each metric's mean and standard deviation over the folds,
and ``serotiny test`` / ``predict`` / ``load_model_from_checkpoint`` on the parent use the
folds' models as an ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from omegaconf import DictConfig, OmegaConf

from serotiny.commands.job_setup import output_folder, print_config_tree, start_job
from serotiny.commands.preflight import preflight_training
from serotiny.commands.train import train
from serotiny.commands.training_setup import build_training_parts
from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import Settings
from serotiny.tracking.claims import ClaimedRun, claim_training_run
from serotiny.tracking.cross_validation_runs import (
    FOLD_TAG,
    FOLDS_TAG,
    fold_name,
    summarize_folds,
)
from serotiny.tracking.heartbeat import Heartbeat
from serotiny.tracking.outcome import run_outcome
from serotiny.tracking.registry import register_if_configured

log = logging.getLogger(__name__)


class CrossValidationConfigError(SerotinyUserError):
    """A cross-validation asked for with settings it cannot run with."""


def check_one_process_per_fold(trainer_cfg: DictConfig) -> None:
    """Refuse cross-validation on a multi-process trainer (DDP and the like).

    Each fold is a ``Trainer.fit`` of its own in one process, one after the other; the
    extra ranks of a distributed trainer would not follow rank 0 from fold to fold.
    """
    strategy = str(trainer_cfg.get("strategy") or "")
    devices = trainer_cfg.get("devices", 1)
    several = (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 1
    )
    if several or int(trainer_cfg.get("num_nodes") or 1) > 1 or "ddp" in strategy:
        raise CrossValidationConfigError(
            f"cv.folds trains each fold in one process, but the trainer asks for several "
            f"(strategy={strategy or 'auto'}, devices={devices}): drop trainer=ddp, or run "
            "the folds as separate runs"
        )


def fold_config(cfg: DictConfig, settings: Settings, parent: ClaimedRun, fold: int) -> DictConfig:
    """The config that trains ``fold``: the data config learns which fold to hold out, and the
    run is named after the fold, made the parent's child, and given a folder of its own."""
    options = settings.cv
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container["data"]["cross_validation"] = {
        "folds": options.folds,
        "fold": fold,
        "stratify_column": options.stratify_column,
        "group_column": options.group_column,
        "seed": options.seed if options.seed is not None else (settings.seed or 0),
    }
    container["cv"] = {"folds": None}
    # A search's pruner judges whole trials: the folds of one trial do not report to it.
    container.pop("search", None)
    container["mlflow"].update(
        run_name=fold_name(parent.run_name, fold), parent_run_id=parent.run_id
    )
    container["paths"]["output_dir"] = str(Path(settings.paths.output_dir) / f"fold{fold}")
    container["print_config"] = False
    return OmegaConf.create(container)


def preflight_first_fold(cfg: DictConfig, settings: Settings) -> None:
    """The first fold checked as ``serotiny train`` checks a training, before the parent run
    exists: a mistake in the model, the data or the trainer then leaves no run behind."""
    name = settings.mlflow.run_name or "cross-validation"
    stand_in = cast(ClaimedRun, SimpleNamespace(run_name=name, run_id=None))
    fold_cfg, fold_settings = start_job(fold_config(cfg, settings, stand_in, 0))
    preflight_training(fold_cfg, fold_settings, build_training_parts(fold_cfg, fold_settings))


def cross_validate(cfg: DictConfig) -> float | None:
    """Train every fold of ``cfg`` under one parent run; return the monitored metric's mean."""
    cfg, settings = start_job(cfg)
    check_one_process_per_fold(cfg.trainer)
    if settings.print_config:
        print_config_tree(cfg)
    folds = int(settings.cv.folds or 0)
    monitor = settings.checkpoint.monitor
    preflight_first_fold(cfg, settings)
    parent = claim_training_run(cfg, settings, extra_tags={FOLDS_TAG: str(folds)})
    if parent.finished_before:
        log.info("cross-validation '%s' already finished: not training it again", parent.run_name)
        value = parent.decision.run.data.metrics.get(f"{monitor}_mean")
        return float(value) if value is not None else None
    output_folder(settings)
    beats = Heartbeat(parent.client, parent.run_id, settings.resume.heartbeat_seconds)

    def set_status(status: str) -> None:
        parent.client.set_terminated(parent.run_id, status)

    with run_outcome(set_status, parent.run_name), beats:
        for fold in range(folds):
            log.info("cross-validation '%s': fold %d of %d", parent.run_name, fold + 1, folds)
            train(fold_config(cfg, settings, parent, fold), extra_tags={FOLD_TAG: str(fold)})
        summary = summarize_folds(parent.client, parent.run_id)
    register_if_configured(parent.client, parent.run_id, settings)  # the folds as one version
    log.info(
        "cross-validation '%s' finished: %s",
        parent.run_name,
        ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if k.endswith(("_mean", "_std"))),
    )
    return summary.get(f"{monitor}_mean")
