"""A team's MLflow server (PostgreSQL-backed, artifacts proxied) that goes away: training
never waits on it, and nothing recorded is lost or doubled; `serotiny sync` sends the rest."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from cli_helpers import PACKAGE, run_cli, start_cli, wait_until
from inprocess import Workspace
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

EPOCH_CLOCK = '''
import time
from pathlib import Path

import lightning.pytorch as pl


class EpochClock(pl.Callback):
    """Writes when each training epoch ends, and makes each batch take a while."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path = Path(path)
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{time.time()}\\n")
'''


def add_epoch_clock(project: Path, seconds: float) -> Path:
    """A ``trainer/callbacks=clock`` option; returns the file the epoch times go to."""
    (project / PACKAGE / "clock.py").write_text(EPOCH_CLOCK)
    times = project / "epoch_times.txt"
    (project / PACKAGE / "config" / "trainer" / "callbacks" / "clock.yaml").write_text(
        f"- _target_: {PACKAGE}.clock.EpochClock\n  path: {times}\n  seconds: {seconds}\n"
    )
    return times


def epochs_ended(times: Path) -> list[float]:
    return [float(line) for line in times.read_text().split()] if times.exists() else []


def arguments(server_uri: str, name: str, epochs: int, *extra: str) -> list[str]:
    return [
        "train",
        "trainer/callbacks=clock",
        f"++trainer.max_epochs={epochs}",
        f"++mlflow.tracking_uri={server_uri}",
        f"++mlflow.run_name={name}",
        *extra,
    ]


def assert_complete(client: MlflowClient, name: str, epochs: int) -> None:
    """The run FINISHED with every epoch's metrics once and both checkpoints."""
    experiment = client.get_experiment_by_name("default")
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"
    )
    assert run.info.status == "FINISHED"
    for key in ("val_loss", "train_loss"):
        steps = [metric.step for metric in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)) == epochs, (key, steps)
    stored = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert stored == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}


def test_training_rides_out_a_server_outage(
    workspace: Workspace, mlflow_postgres_server, tmp_path: Path
) -> None:
    server, epochs = mlflow_postgres_server, 40
    times = add_epoch_clock(workspace.root, seconds=0.12)
    log = tmp_path / "train.log"
    process = start_cli(*arguments(server.uri, "outage", epochs), project=workspace.root, log=log)
    wait_until(lambda: len(epochs_ended(times)) >= 3, process, log, timeout=300)
    server.stop()
    down_since = time.monotonic()
    # The server stays away for 60 s; training goes on meanwhile.
    while time.monotonic() - down_since < 60 and process.poll() is None:
        time.sleep(0.5)
    server.start()
    assert process.wait(timeout=300) == 0, log.read_text()[-3000:]

    ended = epochs_ended(times)
    assert len(ended) == epochs
    gaps = [later - earlier for earlier, later in zip(ended, ended[1:], strict=False)]
    usual = statistics.median(gaps)
    # Never a pause longer than an epoch's time (with a margin for a busy machine).
    assert max(gaps) <= max(2 * usual, usual + 1.5), (usual, max(gaps))
    assert_complete(MlflowClient(server.uri), "outage", epochs)


def test_sync_sends_what_waited_for_the_server(
    workspace: Workspace, mlflow_postgres_server, tmp_path: Path
) -> None:
    server, epochs = mlflow_postgres_server, 8
    times = add_epoch_clock(workspace.root, seconds=0.05)
    log = tmp_path / "train.log"
    command = arguments(server.uri, "away", epochs, "++mlflow.sync_timeout_seconds=3")
    process = start_cli(*command, project=workspace.root, log=log)
    wait_until(lambda: len(epochs_ended(times)) >= 2, process, log, timeout=300)
    server.stop()
    assert process.wait(timeout=300) == 3, log.read_text()[-3000:]
    output = log.read_text()
    assert "serotiny sync" in output and "Traceback" not in output
    assert len(epochs_ended(times)) == epochs  # training went on to its end

    server.start()
    synced = run_cli("sync", f"++mlflow.tracking_uri={server.uri}", cwd=workspace.root)
    assert synced.returncode == 0, synced.output
    assert "sent 1 journal(s)" in synced.output
    client = MlflowClient(server.uri)
    assert_complete(client, "away", epochs)
    (run,) = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert "plots/loss_curves.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")
    }
    again = run_cli("sync", f"++mlflow.tracking_uri={server.uri}", cwd=workspace.root)
    assert again.returncode == 0 and "sent 0 journal(s)" in again.output


def test_eight_trainings_at_once(
    workspace: Workspace, mlflow_postgres_server, tmp_path: Path
) -> None:
    server = mlflow_postgres_server
    processes = []
    for index in range(8):
        log = tmp_path / f"train{index}.log"
        command = [
            "train",
            "++trainer.max_epochs=2",
            f"++mlflow.tracking_uri={server.uri}",
            f"++mlflow.run_name=parallel{index}",
        ]
        processes.append((start_cli(*command, project=workspace.root, log=log), log))
    for process, log in processes:
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    client = MlflowClient(server.uri)
    runs = client.search_runs([client.get_experiment_by_name("default").experiment_id])
    assert sorted(run.info.run_name for run in runs) == [f"parallel{index}" for index in range(8)]
    for run in runs:
        assert run.info.status == "FINISHED"
        for key in ("val_loss", "train_loss", "val_accuracy"):
            assert len(client.get_metric_history(run.info.run_id, key)) == 2, (
                run.info.run_name,
                key,
            )
