"""Sweeps, hyperparameter search, cluster launchers and debug configs through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import (
    add_slow_callback,
    has_checkpoint,
    kill_group,
    run_cli,
    runs_in,
    start_cli,
    wait_until,
)
from inprocess import Workspace

pytestmark = pytest.mark.slow


def test_interrupted_sweep_skips_finished_jobs_and_resumes_the_rest(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = workspace.root  # its store exists before the sweep starts: nothing races to make it
    add_slow_callback(project, seconds=0.05)
    command = [
        "train",
        "--multirun",
        "seed=1,2",
        "trainer/callbacks=slow",
        "++mlflow.run_name=sweep_${seed}",
        "++trainer.max_epochs=5",
    ]
    log = tmp_path / "sweep.log"
    process = start_cli(*command, project=project, log=log)
    client = workspace.client()
    # Interrupt once the second job has checkpointed, the first having finished.
    wait_until(
        lambda: has_checkpoint(client, runs_in(project, "default").get("sweep_2")), process, log
    )
    kill_group(process)
    before = runs_in(project, "default")
    assert before["sweep_1"].info.status == "FINISHED"
    assert before["sweep_2"].info.status == "RUNNING"

    again = run_cli(*command, cwd=project)
    assert again.returncode == 0, again.output
    assert "'sweep_1'" in again.output and "already finished" in again.output
    assert "resuming run 'sweep_2'" in again.output
    after = runs_in(project, "default")
    assert set(after) == {"sweep_1", "sweep_2"}
    for name in after:
        assert after[name].info.run_id == before[name].info.run_id
        assert after[name].info.status == "FINISHED"
    for run in after.values():
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 5


def test_submitit_local_launcher_runs_each_job(cli, project: Path) -> None:
    result = cli(
        "train",
        "--multirun",
        "hydra/launcher=local",
        "seed=1,2",
        "++mlflow.run_name=submitted_${seed}",
        "++trainer.max_epochs=1",
    )
    assert result.returncode == 0, result.output
    runs = runs_in(project, "default")
    assert set(runs) == {"submitted_1", "submitted_2"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert list((project / "multirun").rglob(".submitit"))  # really went through submitit


@pytest.mark.parametrize("debug", ["fast", "overfit", "limit", "profiler"])
def test_debug_configs_run_apart_from_real_experiments(
    workspace: Workspace, debug: str, capsys: pytest.CaptureFixture[str], caplog
) -> None:
    workspace.run("train", f"debug={debug}", f"++mlflow.run_name=debug_{debug}")
    assert workspace.runs("default") == {}
    debug_runs = workspace.runs("debug")
    assert list(debug_runs) == [f"debug_{debug}"]
    assert debug_runs[f"debug_{debug}"].info.status == "FINISHED"
    if debug == "profiler":
        printed = capsys.readouterr()
        assert "Profiler Report" in printed.out + printed.err + caplog.text
