"""Each row of the run-name table, config drift, corrupt checkpoints and secrets, through the
train command (in this process; the CLI's one-line errors are tested in test_cli_errors)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from inprocess import Workspace

from serotiny.errors import SerotinyUserError
from serotiny.tracking.ownership import HOST_TAG, PID_TAG
from serotiny.tracking.store import get_or_create_experiment

pytestmark = pytest.mark.slow


def runs_named(workspace: Workspace, name: str) -> list:
    client = workspace.client()
    experiment = client.get_experiment_by_name("default")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"
    )


def refused(workspace: Workspace, *overrides: str) -> str:
    """The one-line message ``serotiny train OVERRIDES`` refuses with."""
    with pytest.raises(SerotinyUserError) as error:
        workspace.run("train", *overrides)
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_a_live_running_run_is_refused(workspace: Workspace) -> None:
    client = workspace.client()
    experiment_id = get_or_create_experiment(client, "default")
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}  # this process: alive
    run = client.create_run(experiment_id, run_name="busy", tags=tags)
    line = refused(workspace, "++mlflow.run_name=busy", "++trainer.max_epochs=1")
    assert "still running" in line and socket.gethostname() in line
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # left alone


def test_duplicate_names_are_refused(workspace: Workspace) -> None:
    client = workspace.client()
    experiment_id = get_or_create_experiment(client, "default")
    ids = []
    for _ in range(2):
        run = client.create_run(experiment_id, run_name="twin")
        client.set_terminated(run.info.run_id, "FAILED")
        ids.append(run.info.run_id)
    line = refused(workspace, "++mlflow.run_name=twin", "++trainer.max_epochs=1")
    assert all(run_id in line for run_id in ids)


def test_config_drift_is_refused_unless_allowed(workspace: Workspace) -> None:
    workspace.run("train", "++mlflow.run_name=drift", "++trainer.max_epochs=2")
    (run,) = runs_named(workspace, "drift")
    client = workspace.client()
    client.set_terminated(run.info.run_id, "FAILED")  # as if it had crashed

    line = refused(
        workspace, "++mlflow.run_name=drift", "++trainer.max_epochs=2", "++model.optimizer.lr=0.5"
    )
    assert "model.optimizer.lr" in line and "allow_config_change" in line
    assert client.get_run(run.info.run_id).info.status == "FAILED"

    workspace.run(
        "train",
        "++mlflow.run_name=drift",
        "++trainer.max_epochs=3",
        "++resume.allow_config_change=true",
    )
    resumed = client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED"
    changes = [v for k, v in resumed.data.tags.items() if k.startswith("serotiny.config_change")]
    assert changes and "trainer.max_epochs" in changes[0]
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 3


def test_corrupt_newest_checkpoint_falls_back(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    workspace.run("train", "++mlflow.run_name=corrupt", "++trainer.max_epochs=3")
    (run,) = runs_named(workspace, "corrupt")
    client = workspace.client()
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    damaged = artifacts / "checkpoints" / "last.ckpt"
    damaged.unlink()  # a new file: the stored one may share its bytes with the local copies
    damaged.write_bytes(b"\x00 not a checkpoint")
    client.set_terminated(run.info.run_id, "FAILED")
    workspace.run("train", "++mlflow.run_name=corrupt", "++trainer.max_epochs=3")
    assert "unreadable" in caplog.text
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    checkpoint = torch.load(artifacts / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 3


def test_retrain_finished_sets_the_old_run_aside(workspace: Workspace) -> None:
    workspace.run("train", "++mlflow.run_name=again", "++trainer.max_epochs=1")
    (old,) = runs_named(workspace, "again")
    workspace.run(
        "train",
        "++mlflow.run_name=again",
        "++trainer.max_epochs=1",
        "++resume.retrain_finished=true",
    )
    (new,) = runs_named(workspace, "again")
    assert new.info.run_id != old.info.run_id
    client = workspace.client()
    assert client.get_run(old.info.run_id).info.run_name.startswith("again-replaced-")


def test_credentials_never_reach_params_config_or_record(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-s3cret"
    workspace.run(
        "train",
        "++mlflow.run_name=secretive",
        "++trainer.max_epochs=1",
        f"+extra.api_token={secret}",
        f"+extra.remote=https://alice:{secret}@example.org/db",
    )
    (run,) = runs_named(workspace, "secretive")
    client = workspace.client()
    assert secret not in str(run.data.params) and secret not in str(run.data.tags)
    for artifact in ("config/train.yaml", "reproducibility.json"):
        assert secret not in Path(client.download_artifacts(run.info.run_id, artifact)).read_text()
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err + caplog.text


def test_reproducibility_record(workspace: Workspace) -> None:
    import json

    workspace.run("train", "++mlflow.run_name=record", "++trainer.max_epochs=1")
    (run,) = runs_named(workspace, "record")
    client = workspace.client()
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


def test_load_by_name_and_choose_the_checkpoint(workspace: Workspace) -> None:
    from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint

    workspace.run("train", "++mlflow.run_name=pick", "++trainer.max_epochs=2")
    uri = workspace.uri
    best = load_model_from_checkpoint(uri, run_name="pick", experiment_name="default")
    last = load_model_from_checkpoint(
        uri, run_name="pick", experiment_name="default", checkpoint="last"
    )
    assert type(best).__name__ == type(last).__name__ == "BasicModel"
    assert not best.training
