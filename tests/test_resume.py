"""Crash-safe resume: rerunning the same command continues the same run, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import cli_env, run_cli, tracking_uri
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
EPOCHS = 6
SLOW_CALLBACK = """
import time
import lightning.pytorch as pl


class SlowDown(pl.Callback):
    \"\"\"Makes each training batch take a while, so a test can interrupt training.\"\"\"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)
"""


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
def slow_project(project: Path) -> Path:
    (project / "a_tiny_project" / "slow.py").write_text(SLOW_CALLBACK)
    (project / "a_tiny_project" / "config" / "trainer" / "callbacks" / "slow.yaml").write_text(
        "- _target_: a_tiny_project.slow.SlowDown\n  seconds: 0.06\n"
    )
    return project


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


def start_and_interrupt(project: Path, name: str, how: signal.Signals) -> str:
    """Start training, wait for the first uploaded checkpoint, then send ``how``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "serotiny", *arguments(name)],
        cwd=project,
        env=cli_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    artifacts = project / "mlartifacts"
    while not list(artifacts.rglob("checkpoints/last.ckpt")):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch, between checkpoints
    os.kill(process.pid, how)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output
    return output


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_run_resumes_to_the_same_result(slow_project: Path, how) -> None:
    project = slow_project
    output = start_and_interrupt(project, "crashy", how)
    client, interrupted = single_run(project, "crashy")
    expected_status = "RUNNING" if how == signal.SIGKILL else "KILLED"
    assert interrupted.info.status == expected_status, output
    steps_before = [m.step for m in client.get_metric_history(interrupted.info.run_id, "val_loss")]
    assert 0 < len(steps_before) < EPOCHS

    resumed = run_cli(*arguments("crashy"), cwd=project)
    assert resumed.returncode == 0, resumed.output
    assert "resuming run 'crashy'" in resumed.output
    client, run = single_run(project, "crashy")
    assert run.info.run_id == interrupted.info.run_id
    assert run.info.status == "FINISHED"
    for metric in ("val_loss", "train_loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        assert len(steps) == EPOCHS, (metric, steps)  # ends at max_epochs
        assert len(set(steps)) == EPOCHS  # no step twice
        assert steps == sorted(steps)

    straight = run_cli(*arguments("straight"), cwd=project)
    assert straight.returncode == 0, straight.output
    _, reference = single_run(project, "straight")
    reference_steps = [m.step for m in client.get_metric_history(reference.info.run_id, "val_loss")]
    assert reference_steps == [
        m.step for m in client.get_metric_history(run.info.run_id, "val_loss")
    ]
    resumed_weights = final_weights(project, "crashy")
    reference_weights = final_weights(project, "straight")
    assert resumed_weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=0, msg=key)
    history = client.get_metric_history(run.info.run_id, "val_loss")
    reference_history = client.get_metric_history(reference.info.run_id, "val_loss")
    assert [m.value for m in history] == pytest.approx([m.value for m in reference_history])
