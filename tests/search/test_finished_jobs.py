"""hydra/sweeper=skip_finished: a rerun sweep launches only the jobs whose run is not
FINISHED (with Hydra's own launcher here; tests/cluster submits to SLURM)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import tracking_uri
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def test_a_rerun_sweep_launches_only_the_jobs_whose_run_has_not_finished(
    cli, project: Path
) -> None:
    sweep = [
        "train",
        "--multirun",
        "hydra/sweeper=skip_finished",
        "++mlflow.run_name=seed_${seed}",
        "++trainer.max_epochs=1",
    ]
    first = cli(*sweep, "seed=1")
    assert first.returncode == 0, first.output
    assert "left out" not in first.output

    wider = cli(*sweep, "seed=1,2")
    assert wider.returncode == 0, wider.output
    assert "job #0 left out: run 'seed_1' already finished" in wider.output
    assert "1 of 2 jobs left out" in wider.output
    # The job left is the only one launched (and numbered 0); seed_1's job never started,
    # so it did not even get to say that its run had finished.
    launched = re.findall(r"#(\d+) : .*seed=(\d+)", wider.output)
    assert launched == [("0", "2")]
    assert "started run 'seed_2'" in wider.output
    assert "not training it again" not in wider.output

    client = MlflowClient(tracking_uri(project))
    experiment = client.get_experiment_by_name("default")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"seed_1", "seed_2"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert len(client.get_metric_history(runs["seed_1"].info.run_id, "val_loss")) == 1
    # Two sweep folders; the rerun's has a job folder for seed 2 alone (number and run).
    sweeps = (project / "multirun" / "train").iterdir()
    first_sweep, second_sweep = sorted(sweeps, key=lambda path: path.stat().st_mtime)
    assert sorted(path.name for path in second_sweep.iterdir() if path.is_dir()) == ["0_seed_2"]
