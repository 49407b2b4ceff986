"""Each row of the run-name table, config drift, corrupt checkpoints and secrets, via the CLI."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from cli_helpers import tracking_uri
from mlflow import MlflowClient

from serotiny.ml_ops.mlflow_utils import get_or_create_experiment
from serotiny.ml_ops.run_state import HOST_TAG, PID_TAG

pytestmark = pytest.mark.slow


def runs_named(project: Path, name: str) -> list:
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiment = client.get_experiment_by_name("default")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"
    )


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_live_running_run_is_refused(cli, project: Path) -> None:
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiment_id = get_or_create_experiment(client, "default")
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}  # this process: alive
    run = client.create_run(experiment_id, run_name="busy", tags=tags)
    line = one_error_line(cli("train", "++mlflow.run_name=busy", "++trainer.max_epochs=1"))
    assert "still running" in line and socket.gethostname() in line
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # left alone


def test_duplicate_names_are_refused(cli, project: Path) -> None:
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiment_id = get_or_create_experiment(client, "default")
    ids = []
    for _ in range(2):
        run = client.create_run(experiment_id, run_name="twin")
        client.set_terminated(run.info.run_id, "FAILED")
        ids.append(run.info.run_id)
    line = one_error_line(cli("train", "++mlflow.run_name=twin", "++trainer.max_epochs=1"))
    assert all(run_id in line for run_id in ids)


def test_config_drift_is_refused_unless_allowed(cli, project: Path) -> None:
    first = cli("train", "++mlflow.run_name=drift", "++trainer.max_epochs=2")
    assert first.returncode == 0, first.output
    (run,) = runs_named(project, "drift")
    client = MlflowClient(tracking_uri=tracking_uri(project))
    client.set_terminated(run.info.run_id, "FAILED")  # as if it had crashed

    line = one_error_line(
        cli(
            "train", "++mlflow.run_name=drift", "++trainer.max_epochs=2", "++model.optimizer.lr=0.5"
        )
    )
    assert "model.optimizer.lr" in line and "allow_config_change" in line
    assert client.get_run(run.info.run_id).info.status == "FAILED"

    allowed = cli(
        "train",
        "++mlflow.run_name=drift",
        "++trainer.max_epochs=3",
        "++resume.allow_config_change=true",
    )
    assert allowed.returncode == 0, allowed.output
    resumed = client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED"
    changes = [v for k, v in resumed.data.tags.items() if k.startswith("serotiny.config_change")]
    assert changes and "trainer.max_epochs" in changes[0]
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 3


def test_corrupt_newest_checkpoint_falls_back(cli, project: Path) -> None:
    first = cli("train", "++mlflow.run_name=corrupt", "++trainer.max_epochs=3")
    assert first.returncode == 0, first.output
    (run,) = runs_named(project, "corrupt")
    client = MlflowClient(tracking_uri=tracking_uri(project))
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    (artifacts / "checkpoints" / "last.ckpt").write_bytes(b"\x00 not a checkpoint")
    client.set_terminated(run.info.run_id, "FAILED")
    again = cli("train", "++mlflow.run_name=corrupt", "++trainer.max_epochs=3")
    assert again.returncode == 0, again.output
    assert "unreadable" in again.output
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    checkpoint = torch.load(artifacts / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 3


def test_retrain_finished_sets_the_old_run_aside(cli, project: Path) -> None:
    assert cli("train", "++mlflow.run_name=again", "++trainer.max_epochs=1").returncode == 0
    (old,) = runs_named(project, "again")
    result = cli(
        "train",
        "++mlflow.run_name=again",
        "++trainer.max_epochs=1",
        "++resume.retrain_finished=true",
    )
    assert result.returncode == 0, result.output
    (new,) = runs_named(project, "again")
    assert new.info.run_id != old.info.run_id
    client = MlflowClient(tracking_uri=tracking_uri(project))
    assert client.get_run(old.info.run_id).info.run_name.startswith("again-replaced-")


def test_credentials_never_reach_params_config_or_record(cli, project: Path) -> None:
    secret = "hunter2-s3cret"
    result = cli(
        "train",
        "++mlflow.run_name=secretive",
        "++trainer.max_epochs=1",
        f"+extra.api_token={secret}",
        f"+extra.remote=https://alice:{secret}@example.org/db",
    )
    assert result.returncode == 0, result.output
    (run,) = runs_named(project, "secretive")
    client = MlflowClient(tracking_uri=tracking_uri(project))
    assert secret not in str(run.data.params) and secret not in str(run.data.tags)
    for artifact in ("config/train.yaml", "reproducibility.json"):
        assert secret not in Path(client.download_artifacts(run.info.run_id, artifact)).read_text()
    assert secret not in result.output


def test_reproducibility_record(cli, project: Path) -> None:
    import json

    assert cli("train", "++mlflow.run_name=record", "++trainer.max_epochs=1").returncode == 0
    (run,) = runs_named(project, "record")
    client = MlflowClient(tracking_uri=tracking_uri(project))
    record = json.loads(
        Path(client.download_artifacts(run.info.run_id, "reproducibility.json")).read_text()
    )
    assert record["config_hash"] == run.data.tags["serotiny.config_hash"]
    assert set(record["versions"]) >= {"python", "serotiny", "torch", "lightning", "mlflow"}
    assert record["seed"] == 42
    assert record["host"] == socket.gethostname()
    assert record["git"]["commit"] == "not a git repository"  # the copied project has no .git
    ((manifest_path, digest),) = record["manifests"].items()
    assert manifest_path.endswith("data/manifest.csv") and len(digest) == 64


def test_load_by_name_and_choose_the_checkpoint(cli, project: Path) -> None:
    from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint

    assert cli("train", "++mlflow.run_name=pick", "++trainer.max_epochs=2").returncode == 0
    uri = tracking_uri(project)
    best = load_model_from_checkpoint(uri, run_name="pick", experiment_name="default")
    last = load_model_from_checkpoint(
        uri, run_name="pick", experiment_name="default", checkpoint="last"
    )
    assert type(best).__name__ == type(last).__name__ == "BasicModel"
    assert not best.training
