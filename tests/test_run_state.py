"""The run-name table, against a real MLflow SQLite store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serotiny.errors import RunLookupError
from serotiny.tracking.ownership import (
    HEARTBEAT_TAG,
    HOST_TAG,
    PID_TAG,
    SLURM_ATTEMPT_TAG,
    SLURM_JOB_TAG,
    owner_tags,
)
from serotiny.tracking.run_names import find_runs_by_name
from serotiny.tracking.run_state import RUN_STATE_ACTIONS, Action, decide
from serotiny.tracking.store import get_or_create_experiment


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    folder = tmp_path_factory.mktemp("store")
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns.db'}")
    return client, get_or_create_experiment(client, "table")


def new_run(store, name: str, status: str | None, tags: dict[str, str] | None = None):
    client, experiment_id = store
    run = client.create_run(experiment_id, run_name=name, tags=tags or {})
    if status and status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return client.get_run(run.info.run_id)


def decision_for(store, name: str, stale_after: float = 60.0):
    client, experiment_id = store
    return decide(find_runs_by_name(client, experiment_id, name), name, stale_after)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_every_mlflow_status_has_an_action() -> None:
    assert set(RUN_STATE_ACTIONS) == {None, "FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED"}


def test_nothing_found_starts_a_new_run(store) -> None:
    assert decision_for(store, "fresh").action is Action.START


def test_finished_is_skipped(store) -> None:
    run = new_run(store, "done", "FINISHED")
    decision = decision_for(store, "done")
    assert decision.action is Action.SKIP
    assert decision.run.info.run_id == run.info.run_id


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
def test_failed_and_killed_resume(store, status: str) -> None:
    run = new_run(store, f"ended-{status}", status)
    decision = decision_for(store, f"ended-{status}")
    assert decision.action is Action.RESUME
    assert decision.run.info.run_id == run.info.run_id
    assert not decision.mark_failed_first


def test_running_with_a_live_process_is_refused_naming_where(store) -> None:
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    new_run(store, "busy", "RUNNING", tags)
    with pytest.raises(RunLookupError, match=f"still running on {socket.gethostname()}"):
        decision_for(store, "busy")


def test_running_whose_local_process_is_gone_is_resumed(store) -> None:
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())}
    new_run(store, "orphan", "RUNNING", tags)
    decision = decision_for(store, "orphan")
    assert decision.action is Action.RESUME
    assert decision.mark_failed_first


def test_running_elsewhere_is_judged_by_its_heartbeat(store) -> None:
    fresh = {HOST_TAG: "other-host", PID_TAG: "1", HEARTBEAT_TAG: f"{time.time():.0f}"}
    new_run(store, "remote-live", "RUNNING", fresh)
    with pytest.raises(RunLookupError, match="other-host"):
        decision_for(store, "remote-live")
    stale = {HOST_TAG: "other-host", PID_TAG: "1", HEARTBEAT_TAG: f"{time.time() - 600:.0f}"}
    new_run(store, "remote-stale", "RUNNING", stale)
    assert decision_for(store, "remote-stale").action is Action.RESUME


def test_duplicate_names_are_refused_listing_the_ids(store) -> None:
    first = new_run(store, "twice", "FINISHED")
    second = new_run(store, "twice", "FAILED")
    with pytest.raises(RunLookupError) as error:
        decision_for(store, "twice")
    assert first.info.run_id in str(error.value) and second.info.run_id in str(error.value)


def test_names_with_quotes_are_found(store) -> None:
    new_run(store, "it's", "FINISHED")
    assert decision_for(store, "it's").action is Action.SKIP


def test_names_are_matched_exactly(store, tmp_path: Path) -> None:
    new_run(store, "prefix-run", "FINISHED")
    assert decision_for(store, "prefix").action is Action.START


def test_a_requeued_slurm_job_resumes_its_earlier_attempt_at_once(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first attempt of job 4242 ran on another node and was preempted seconds ago:
    # its heartbeat is fresh, and only the job id and attempt say it is gone.
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    first_attempt = {**owner_tags(), HOST_TAG: "node-a", HEARTBEAT_TAG: f"{time.time():.0f}"}
    assert first_attempt[SLURM_JOB_TAG] == "4242"
    assert first_attempt[SLURM_ATTEMPT_TAG] == "0"
    new_run(store, "preempted", "RUNNING", first_attempt)

    # Another command of the same attempt (say, in the same allocation) must not take over.
    with pytest.raises(RunLookupError, match="node-a"):
        decision_for(store, "preempted")
    # Nor may another job.
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with pytest.raises(RunLookupError, match="node-a"):
        decision_for(store, "preempted")

    # The requeued job: same id, next attempt.
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    decision = decision_for(store, "preempted")
    assert decision.action is Action.RESUME
    assert decision.mark_failed_first


def test_outside_slurm_no_job_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    tags = owner_tags()
    assert tags == {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
