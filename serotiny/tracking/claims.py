"""Opening the MLflow run a training belongs to: new, resumed, or already finished."""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Param
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import SerotinyUserError
from serotiny.ml_ops import mlflow_utils
from serotiny.ml_ops.config_utils import (
    config_hash,
    differing_keys,
    flatten,
    redact,
    resolved_container,
)
from serotiny.ml_ops.provenance import record_tags, reproducibility_record
from serotiny.ml_ops.run_state import Action, Decision, decide

log = logging.getLogger(__name__)

CONFIG_HASH_TAG = "serotiny.config_hash"
OPERATION_TAG = "serotiny.operation"
# Sections that say where and under which name a run is tracked, not what it trains.
UNHASHED_SECTIONS = ("mlflow", "paths", "resume")
MLFLOW_PARAM_BATCH = 100
MLFLOW_PARAM_MAX_LENGTH = 6000


class ConfigDriftError(SerotinyUserError):
    """Resuming a run with a config that differs from the one it started with."""


@dataclass
class TrackedRun:
    """The MLflow run a training writes to."""

    client: Any
    tracking_uri: str
    experiment_name: str
    run_name: str
    run_id: str
    decision: Decision


def training_identity(cfg: DictConfig) -> dict[str, Any]:
    """The part of the resolved config that defines what is trained (hashed for drift)."""
    container = resolved_container(cfg)
    return {key: value for key, value in container.items() if key not in UNHASHED_SECTIONS}


def generated_run_name(cfg: DictConfig) -> str:
    """A fresh unique name, for when the user gave none."""
    model = cfg.get("model", {}).get("_target_", "model").rsplit(".", 1)[-1]
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def log_new_run_contents(client: Any, run_id: str, cfg: DictConfig) -> None:
    """Log flattened params, the resolved config and the reproducibility record of a run."""
    container = resolved_container(cfg)
    root = Path(str(cfg.get("paths", {}).get("root") or Path.cwd()))
    record = reproducibility_record(cfg, root, config_hash(training_identity(cfg)))
    for key, value in record_tags(record).items():
        client.set_tag(run_id, key, value[:5000])
    params = [
        Param(key[:250], str(value)[:MLFLOW_PARAM_MAX_LENGTH])
        for key, value in flatten(container)
        if not key.startswith(("paths.", "resume."))
    ]
    for start in range(0, len(params), MLFLOW_PARAM_BATCH):
        client.log_batch(run_id, params=params[start : start + MLFLOW_PARAM_BATCH])
    with tempfile.TemporaryDirectory(prefix="serotiny-config-") as folder:
        path = Path(folder) / Path(mlflow_utils.CONFIG_ARTIFACT).name
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(container)))
        client.log_artifact(run_id, str(path), str(Path(mlflow_utils.CONFIG_ARTIFACT).parent))
        record_path = Path(folder) / "reproducibility.json"
        record_path.write_text(json.dumps(redact(record), indent=2, sort_keys=True))
        client.log_artifact(run_id, str(record_path))


def check_config_drift(client: Any, run: Any, cfg: DictConfig, allow_change: bool) -> None:
    """Refuse to resume ``run`` with a config other than the one it started with."""
    new_hash = config_hash(training_identity(cfg))
    old_hash = run.data.tags.get(CONFIG_HASH_TAG)
    if old_hash is None or old_hash == new_hash:
        return
    old_config = mlflow_utils.load_run_config(client, run.info.run_id)
    old_flat = dict(flatten(training_identity(old_config)))
    new_flat = dict(flatten(training_identity(cfg)))
    changed = differing_keys(old_flat, new_flat)
    if not allow_change:
        raise ConfigDriftError(
            f"run '{run.info.run_name}' was started with a different config "
            f"(changed: {', '.join(changed[:10])}); rerun with the original settings, or "
            "add ++resume.allow_config_change=true to resume anyway"
        )
    log.warning("resuming '%s' with a changed config: %s", run.info.run_name, ", ".join(changed))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    client.set_tag(run.info.run_id, f"serotiny.config_change.{stamp}", ", ".join(changed)[:5000])
    client.set_tag(run.info.run_id, CONFIG_HASH_TAG, new_hash)


def set_aside_finished_run(client: Any, run: Any) -> str:
    """Rename a finished run out of the way, so its name can be trained afresh."""
    new_name = f"{run.info.run_name}-replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    client.set_tag(run.info.run_id, "mlflow.runName", new_name)
    client.set_tag(run.info.run_id, "serotiny.replaced", "true")
    log.info("renamed finished run %s to '%s' to train its name again", run.info.run_id, new_name)
    return new_name


def open_training_run(cfg: DictConfig, extra_tags: dict[str, str] | None = None) -> TrackedRun:
    """Find or create the run named in ``cfg.mlflow``, decided by the run-state table.

    ``extra_tags`` go on a new run (e.g. a cross-validation fold's parent and index).
    Deciding what the name means and creating or reopening the run happen under the store's
    lock, so that two commands started at once with one name never both train it.
    """
    tracking = cfg.mlflow
    tracking_uri = str(tracking.tracking_uri)
    client = mlflow_utils.connect(tracking_uri)
    experiment_name = str(tracking.get("experiment_name") or "default")
    run_name = str(tracking.get("run_name") or generated_run_name(cfg))
    resume_cfg = cfg.get("resume") or {}
    stale_after = float(resume_cfg.get("stale_after_seconds", 90))
    with mlflow_utils.store_lock(tracking_uri):
        experiment_id = mlflow_utils.get_or_create_experiment(
            client, experiment_name, tracking.get("artifact_location")
        )
        runs = mlflow_utils.find_runs_by_name(client, experiment_id, run_name)
        decision = decide(runs, run_name, stale_after)
        if decision.action is Action.SKIP and resume_cfg.get("retrain_finished", False):
            set_aside_finished_run(client, decision.run)
            decision = Decision(Action.START, reason="retrain_finished was asked for")
        if decision.action is Action.START:
            tags = {
                CONFIG_HASH_TAG: config_hash(training_identity(cfg)),
                OPERATION_TAG: "train",
                **(extra_tags or {}),
            }
            run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        else:
            run_id = decision.run.info.run_id
        if decision.action is Action.RESUME:
            check_config_drift(
                client, decision.run, cfg, bool(resume_cfg.get("allow_config_change", False))
            )
            if decision.mark_failed_first:
                client.set_terminated(run_id, "FAILED")
            client.update_run(run_id, status="RUNNING")

    if decision.action is Action.START:
        try:
            log_new_run_contents(client, run_id, cfg)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        log.info("started run '%s' (%s) in experiment '%s'", run_name, run_id, experiment_name)
    elif decision.action is Action.RESUME:
        log.info("resuming run '%s' (%s): %s", run_name, run_id, decision.reason)
    return TrackedRun(client, tracking_uri, experiment_name, run_name, run_id, decision)
