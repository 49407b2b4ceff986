"""Against a real `mlflow server` on 127.0.0.1, everything works as on the SQLite default."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import (
    add_slow_callback,
    cli_env,
    free_port,
    has_checkpoint,
    kill_group,
    start_cli,
    wait_until,
)
from inprocess import Workspace
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module's tests (each keeps its runs in an experiment of its own)."""
    port = free_port()
    store = tmp_path_factory.mktemp("server")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            str(store / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=cli_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),  # stops in 1 s, not 10
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_train_test_predict_and_load_through_a_server(
    workspace: Workspace, mlflow_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    common = (
        "++mlflow.run_name=remote",
        "++mlflow.experiment_name=remote",
        f"++mlflow.tracking_uri={mlflow_server}",
    )
    for operation in ("train", "test", "predict"):
        workspace.run(operation, *common, "++trainer.max_epochs=2")
    assert workspace.runs("remote") == {} and workspace.runs() == {}  # none in the embedded store
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("remote")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert "test_loss" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
    names = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert names == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}
    predictions = pd.read_parquet(
        client.download_artifacts(run.info.run_id, "predictions/predictions.parquet")
    )
    assert len(predictions) == 300

    from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint

    model = load_model_from_checkpoint(mlflow_server, run.info.run_id)
    assert type(model).__name__ == "BasicModel"
    workspace.run("train", *common, "++trainer.max_epochs=2")
    assert "already finished" in caplog.text


def test_killed_run_resumes_against_the_server(
    workspace: Workspace, mlflow_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = workspace.root
    add_slow_callback(project, seconds=0.05)
    arguments = [
        "train",
        "trainer/callbacks=slow",
        "++trainer.max_epochs=5",
        "++mlflow.run_name=remote-crash",
        "++mlflow.experiment_name=remote_crash",
        f"++mlflow.tracking_uri={mlflow_server}",
    ]
    log = tmp_path / "train.log"
    process = start_cli(*arguments, project=project, log=log)
    client = MlflowClient(tracking_uri=mlflow_server)

    def the_run():  # type: ignore[no-untyped-def]
        experiment = client.get_experiment_by_name("remote_crash")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return runs[0] if runs else None

    wait_until(lambda: has_checkpoint(client, the_run()), process, log)
    kill_group(process)
    interrupted = the_run()
    assert interrupted.info.status == "RUNNING"

    workspace.run(*arguments)  # the same command again (in this process: only the kill needs one)
    assert "resuming run 'remote-crash'" in caplog.text
    run = the_run()
    assert run.info.run_id == interrupted.info.run_id and run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert len(steps) == 5 and len(set(steps)) == 5 and steps == sorted(steps)
