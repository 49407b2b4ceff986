"""Tracking through the command line: a server that does not answer is one line within
seconds; credentials never show; `serotiny runs` tells the truth about every run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import free_port, run_cli
from inprocess import Workspace

from serotiny.tracking.ownership import HOST_TAG, PID_TAG
from serotiny.tracking.store import connect, get_or_create_experiment

pytestmark = pytest.mark.slow


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_server_that_does_not_answer_is_one_line_within_ten_seconds(cli, project: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = cli("train", f"++mlflow.tracking_uri={uri}", "++mlflow.run_name=nowhere")
    seconds = time.monotonic() - started
    line = one_error_line(result)
    assert uri in line and "does not answer" in line and "mlflow server" in line
    assert seconds < 10, seconds
    assert not list((project / "outputs").rglob("journal.jsonl"))  # nothing was started


def test_credentials_never_show(
    workspace: Workspace, mlflow_postgres_server, tmp_path: Path
) -> None:
    secret = "s3cret-pa55"
    host = mlflow_postgres_server.uri.removeprefix("http://")
    uri = f"http://alice:{secret}@{host}"
    result = run_cli(
        "train",
        "++trainer.max_epochs=1",
        f"++mlflow.tracking_uri={uri}",
        "++mlflow.run_name=secretive",
        "+db.password=hunter2",
        cwd=workspace.root,
    )
    assert result.returncode == 0, result.output
    assert secret not in result.output and "hunter2" not in result.output
    written = [path for path in (workspace.root / "outputs").rglob("*") if path.is_file()]
    assert any(path.parent.name == ".hydra" for path in written)
    for path in written:
        if path.suffix in (".yaml", ".jsonl", ".log", ".json", ".txt"):
            text = path.read_text(errors="replace")
            assert secret not in text and "hunter2" not in text, path
    client = connect(mlflow_postgres_server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert secret not in str(run.data.params) + str(run.data.tags)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_runs_tells_live_stale_and_ended_runs_apart(workspace: Workspace) -> None:
    workspace.run("train", "++mlflow.run_name=done", "++trainer.max_epochs=2")
    client = workspace.client()
    experiment_id = get_or_create_experiment(client, "default")
    here = socket.gethostname()
    stale = client.create_run(
        experiment_id, run_name="ghost", tags={HOST_TAG: here, PID_TAG: str(dead_pid())}
    )
    live = client.create_run(
        experiment_id, run_name="busy", tags={HOST_TAG: here, PID_TAG: str(os.getpid())}
    )
    failed = client.create_run(experiment_id, run_name="broken")
    client.set_terminated(failed.info.run_id, "FAILED")

    listed = run_cli("runs", cwd=workspace.root, COLUMNS="200")
    assert listed.returncode == 0, listed.output
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if "│" in line}
    assert "FINISHED" in rows["done"] and "val_loss" in rows["done"] and here in rows["done"]
    assert "STALE" in rows["ghost"] and "RUNNING" in rows["busy"] and "FAILED" in rows["broken"]
    assert client.get_run(stale.info.run_id).info.status == "RUNNING"  # only listed

    marked = run_cli("runs", "--stale", cwd=workspace.root, COLUMNS="200")
    assert marked.returncode == 0, marked.output
    assert "marked 1 stale run(s) KILLED: ghost" in marked.stdout
    assert client.get_run(stale.info.run_id).info.status == "KILLED"
    assert client.get_run(live.info.run_id).info.status == "RUNNING"
