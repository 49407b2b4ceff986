"""One run per name on every store: commands started together with one name, for real (each
in a process of its own), against SQLite and against a PostgreSQL-backed MLflow server."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from serotiny.errors import RunLookupError
from serotiny.settings.reading import read_settings
from serotiny.tracking.claims import claim_training_run
from serotiny.tracking.ownership import HOST_TAG, PID_TAG
from serotiny.tracking.run_names import find_runs_by_name
from serotiny.tracking.store import connect, get_or_create_experiment

pytestmark = pytest.mark.slow
COMMANDS = 5
ROUNDS = 5


def config(tmp_path: Path, uri: str, name: str) -> dict:
    return {
        "seed": 1,
        "model": {"_target_": "serotiny.models.BasicModel"},
        "paths": {"root": str(tmp_path), "output_dir": str(tmp_path / "out")},
        "mlflow": {"tracking_uri": uri, "experiment_name": "race", "run_name": name},
    }


def claim(container: dict, start_at: float, results: multiprocessing.Queue) -> None:
    """One command's claim of the name (in a process of its own), started at ``start_at``."""
    cfg = OmegaConf.create(container)
    settings = read_settings(cfg)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        results.put(("claimed", claim_training_run(cfg, settings).run_id))
    except RunLookupError as error:
        results.put(("refused", str(error)))


def race(tmp_path: Path, uri: str, name: str) -> list[tuple[str, str]]:
    """Start :data:`COMMANDS` claims of ``name`` at the same instant; what each got."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0
    processes = [
        context.Process(target=claim, args=(config(tmp_path, uri, name), start_at, results))
        for _ in range(COMMANDS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return outcomes


def check_one_run(uri: str, name: str, outcomes: list[tuple[str, str]]) -> None:
    claimed = [value for kind, value in outcomes if kind == "claimed"]
    refused = [value for kind, value in outcomes if kind == "refused"]
    assert len(claimed) == 1 and len(refused) == COMMANDS - 1, outcomes
    assert all("\n" not in message and f"'{name}'" in message for message in refused)
    client = connect(uri)
    experiment = client.get_experiment_by_name("race")
    assert [
        run.info.run_id for run in find_runs_by_name(client, experiment.experiment_id, name)
    ] == claimed


def test_one_new_run_per_name_on_sqlite(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    connect(uri)  # the store exists, as after a project's first command
    for round_number in range(ROUNDS):
        name = f"same{round_number}"
        check_one_run(uri, name, race(tmp_path, uri, name))


def test_one_new_run_per_name_on_a_server(tmp_path: Path, mlflow_postgres_server) -> None:
    uri = mlflow_postgres_server.uri
    for round_number in range(ROUNDS):
        name = f"same{round_number}"
        check_one_run(uri, name, race(tmp_path, uri, name))


def test_one_resume_per_name_on_a_server(tmp_path: Path, mlflow_postgres_server) -> None:
    uri = mlflow_postgres_server.uri
    client = connect(uri)
    experiment_id = get_or_create_experiment(client, "race")
    for round_number in range(ROUNDS):
        name = f"crashed{round_number}"
        # A run whose owner died (its pid on this host is gone): every command would resume it.
        dead = {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())}
        run = client.create_run(experiment_id, run_name=name, tags=dead)
        outcomes = race(tmp_path, uri, name)
        claimed = [value for kind, value in outcomes if kind == "claimed"]
        assert claimed == [run.info.run_id], outcomes
        assert client.get_run(run.info.run_id).info.status == "RUNNING"


def dead_pid() -> int:
    """A pid that no process has now."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
