"""Crash-safe resume: rerunning the same command continues the same run, bit for bit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import add_slow_callback, start_cli, tracking_uri, wait_until
from inprocess import Workspace, make_workspace
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
EPOCHS = 6


def arguments(name: str) -> list[str]:
    return [
        "train",
        "trainer/callbacks=slow",
        f"++trainer.max_epochs={EPOCHS}",
        "++trainer.deterministic=true",
        "++model.network.dropout=0.2",
        f"++mlflow.run_name={name}",
    ]


@pytest.fixture
def slow_project(workspace: Workspace) -> Workspace:
    add_slow_callback(workspace.root, seconds=0.06)
    return workspace


@pytest.fixture(scope="module")
def uninterrupted(
    rendered_template: Path, empty_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A project of its own in which the same training ran once without interruption (in
    this process: only the interrupted runs need a process of their own)."""
    workspace = make_workspace(
        rendered_template, empty_store, tmp_path_factory.mktemp("uninterrupted")
    )
    add_slow_callback(workspace.root, seconds=0.0)
    workspace.run(*arguments("straight"))
    return workspace.root


def single_run(project: Path, name: str):  # type: ignore[no-untyped-def]
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiment = client.get_experiment_by_name("default")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"
    )
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client, runs[0]


def final_weights(project: Path, name: str) -> dict[str, torch.Tensor]:
    client, run = single_run(project, name)
    path = client.download_artifacts(run.info.run_id, "checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)["state_dict"]


def start_and_interrupt(project: Path, name: str, how: signal.Signals, log: Path) -> str:
    """Start training, wait for the first uploaded checkpoint, then send ``how``."""
    process = start_cli(*arguments(name), project=project, log=log)
    artifacts = project / "mlartifacts"
    wait_until(lambda: bool(list(artifacts.rglob("checkpoints/last.ckpt"))), process, log)
    time.sleep(0.3)  # into the next epoch, between checkpoints
    os.kill(process.pid, how)
    process.wait(timeout=120)
    assert process.returncode != 0, log.read_text()[-3000:]
    return log.read_text()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_run_resumes_to_the_same_result(
    slow_project: Workspace,
    uninterrupted: Path,
    how: signal.Signals,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    project = slow_project.root
    output = start_and_interrupt(project, "crashy", how, tmp_path / "train.log")
    client, interrupted = single_run(project, "crashy")
    expected_status = "RUNNING" if how == signal.SIGKILL else "KILLED"
    assert interrupted.info.status == expected_status, output
    steps_before = [m.step for m in client.get_metric_history(interrupted.info.run_id, "val_loss")]
    assert 0 < len(steps_before) < EPOCHS

    slow_project.run(*arguments("crashy"))  # the same command again, in this process
    assert "resuming run 'crashy'" in caplog.text
    client, run = single_run(project, "crashy")
    assert run.info.run_id == interrupted.info.run_id
    assert run.info.status == "FINISHED"
    for metric in ("val_loss", "train_loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        assert len(steps) == EPOCHS, (metric, steps)  # ends at max_epochs
        assert len(set(steps)) == EPOCHS  # no step twice
        assert steps == sorted(steps)

    reference_client, reference = single_run(uninterrupted, "straight")
    reference_history = reference_client.get_metric_history(reference.info.run_id, "val_loss")
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in reference_history] == [m.step for m in history]
    resumed_weights = final_weights(project, "crashy")
    reference_weights = final_weights(uninterrupted, "straight")
    assert resumed_weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=0, msg=key)
    assert [m.value for m in history] == pytest.approx([m.value for m in reference_history])
