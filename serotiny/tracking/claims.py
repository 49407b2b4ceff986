"""Claiming the MLflow run a training belongs to: new, resumed, or already finished.

What a run name means is decided by the run-state table (``run_state.py``); the run is then
created or reopened and claimed (``name_claims.py``), so that two commands started at once
with one name never both train it, on a SQLite store (under its lock) or a server.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import RunLookupError, SerotinyUserError
from serotiny.settings.config_data import differing_keys, flatten, resolved_container
from serotiny.settings.schema import Settings
from serotiny.tracking.artifacts import CONFIG_ARTIFACT, list_checkpoints, load_run_config
from serotiny.tracking.name_claims import claim_existing_run, claim_new_run
from serotiny.tracking.run_names import RUN_NAME_TAG, find_runs_by_name
from serotiny.tracking.run_record import (
    CONFIG_HASH_TAG,
    OPERATION_TAG,
    log_new_run_contents,
    training_hash,
    training_identity,
)
from serotiny.tracking.run_state import Action, Decision, decide
from serotiny.tracking.store import connect, get_or_create_experiment, is_locked_store, store_lock

log = logging.getLogger(__name__)
PARENT_RUN_TAG = "mlflow.parentRunId"


class ConfigDriftError(SerotinyUserError):
    """Resuming a run with a config that differs from the one it started with."""


@dataclass
class ClaimedRun:
    """The MLflow run a training writes to, and why (the run-state table's decision)."""

    client: MlflowClient
    tracking_uri: str
    experiment_name: str
    run_name: str
    run_id: str
    decision: Decision

    @property
    def finished_before(self) -> bool:
        """Whether the run had finished already (nothing to train)."""
        return self.decision.action is Action.SKIP


def generated_run_name(cfg: DictConfig) -> str:
    """A fresh unique name, for when the user gave none."""
    model = str((cfg.get("model") or {}).get("_target_", "model")).rsplit(".", 1)[-1]
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def check_config_drift(client: MlflowClient, run: Run, cfg: DictConfig, allow_change: bool) -> None:
    """Refuse to resume ``run`` with a config other than the one it started with."""
    new_hash = training_hash(cfg)
    old_hash = run.data.tags.get(CONFIG_HASH_TAG)
    if old_hash is None or old_hash == new_hash or restart_untrained_run(client, run, cfg):
        return
    old_flat = dict(flatten(training_identity(load_run_config(client, run.info.run_id))))
    changed = differing_keys(old_flat, dict(flatten(training_identity(cfg))))
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


def restart_untrained_run(client: MlflowClient, run: Run, cfg: DictConfig) -> bool:
    """Give a run that holds no checkpoint the changed config it is rerun with; False (and
    nothing done) when it holds one.

    A run that failed before its first checkpoint trained nothing (its metrics wait for a
    checkpoint), so the fixed command that reruns it is no drift: the run starts cleanly
    under the new config. The change is recorded in a ``serotiny.config_change.<time>`` tag,
    and the config hash and the stored config (``config/train.yaml``, from which test,
    predict and notebooks rebuild the model) become the new ones; the params logged when the
    run opened keep their first values (MLflow never changes a param), the tag says which
    differ.
    """
    run_id = run.info.run_id
    if list_checkpoints(client, run_id):
        return False
    new = dict(flatten(training_identity(cfg)))
    try:
        changed = differing_keys(
            dict(flatten(training_identity(load_run_config(client, run_id)))), new
        )
    except RunLookupError:  # it failed before even its config was stored
        changed = ["(no config was stored)"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    note = f"before the first checkpoint: {', '.join(changed)}"
    client.set_tag(run_id, f"serotiny.config_change.{stamp}", note[:5000])
    client.set_tag(run_id, CONFIG_HASH_TAG, training_hash(cfg))
    with tempfile.TemporaryDirectory(prefix="serotiny-config-") as folder:
        path = Path(folder) / Path(CONFIG_ARTIFACT).name
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(resolved_container(cfg))))
        client.log_artifact(run_id, str(path), str(Path(CONFIG_ARTIFACT).parent))
    log.info(
        "run '%s' failed before its first checkpoint: starting it again with the changed "
        "config (%s)",
        run.info.run_name,
        ", ".join(changed),
    )
    return True


def set_aside_finished_run(client: MlflowClient, run: Run) -> str:
    """Rename a finished run out of the way, so its name can be trained afresh."""
    new_name = f"{run.info.run_name}-replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    client.set_tag(run.info.run_id, RUN_NAME_TAG, new_name)
    client.set_tag(run.info.run_id, "serotiny.replaced", "true")
    log.info("renamed finished run %s to '%s' to train its name again", run.info.run_id, new_name)
    return new_name


def _decide_and_open(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    cfg: DictConfig,
    settings: Settings,
    tags: dict[str, str],
) -> tuple[str, Decision]:
    """What the name means, then the run created or reopened, claimed for this command."""
    resume = settings.resume
    settle = (
        0.0
        if is_locked_store(settings.mlflow.tracking_uri)
        else settings.mlflow.claim_settle_seconds
    )
    decision = decide(
        find_runs_by_name(client, experiment_id, run_name), run_name, resume.stale_after_seconds
    )
    if decision.action is Action.SKIP and resume.retrain_finished:
        set_aside_finished_run(client, decision.run)
        decision = Decision(Action.START, reason="retrain_finished was asked for")
    if decision.action is Action.START:
        tags = {CONFIG_HASH_TAG: training_hash(cfg), OPERATION_TAG: "train", **tags}
        return claim_new_run(client, experiment_id, run_name, tags, settle), decision
    assert decision.run is not None
    if decision.action is Action.RESUME:
        check_config_drift(client, decision.run, cfg, resume.allow_config_change)
        claim_existing_run(client, decision.run, settle, decision.mark_failed_first)
    return decision.run.info.run_id, decision


def claim_training_run(
    cfg: DictConfig, settings: Settings, extra_tags: dict[str, str] | None = None
) -> ClaimedRun:
    """Find or create the run named in ``settings.mlflow``, decided by the run-state table.

    ``extra_tags`` go on a new run (e.g. a cross-validation fold's index); a new run whose
    settings name a parent run is tagged as its child.
    """
    tracking = settings.mlflow
    client = connect(tracking.tracking_uri)
    run_name = tracking.run_name or generated_run_name(cfg)
    tags = dict(extra_tags or {})
    if tracking.parent_run_id:
        tags[PARENT_RUN_TAG] = tracking.parent_run_id
    with store_lock(tracking.tracking_uri):
        experiment_id = get_or_create_experiment(
            client, tracking.experiment_name, tracking.artifact_location
        )
        run_id, decision = _decide_and_open(client, experiment_id, run_name, cfg, settings, tags)
    if decision.action is Action.START:
        try:
            log_new_run_contents(client, run_id, cfg, Path(settings.paths.root))
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        log.info(
            "started run '%s' (%s) in experiment '%s'", run_name, run_id, tracking.experiment_name
        )
    elif decision.action is Action.RESUME:
        log.info("resuming run '%s' (%s): %s", run_name, run_id, decision.reason)
    return ClaimedRun(
        client, tracking.tracking_uri, tracking.experiment_name, run_name, run_id, decision
    )
