"""serotiny's Optuna sweeper: search spaces, a stored study that survives a kill, pruning.

The searches run the generated project's ``hparams_search=optuna`` through the real CLI,
with real Optuna studies in the project's ``optuna.db`` and real MLflow runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from cli_helpers import (
    add_slow_callback,
    has_checkpoint,
    kill_group,
    runs_in,
    start_cli,
    wait_until,
)
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from serotiny.search.space import search_space, trial_overrides
from serotiny.search.study import OWNER_ATTR, PRUNED_AT_ATTR, fail_abandoned_trials, open_study
from serotiny.tracking.store import connect

EXPERIMENT = "hparams_search"
STUDY = "serotiny_search"
PARENT_TAG = "mlflow.parentRunId"


def stored_study(project: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{project / 'optuna.db'}")


def results_of(project: Path) -> list[dict]:
    """Every ``optimization_results.yaml`` the searches wrote, oldest sweep first."""
    files = sorted((project / "multirun").rglob("optimization_results.yaml"))
    return [yaml.safe_load(path.read_text()) for path in files]


# -- the search space, in process ------------------------------------------------------


def test_hydra_sweep_syntax_becomes_optuna_distributions() -> None:
    space = search_space(
        {
            "lr": "tag(log, interval(0.0001, 0.1))",
            "dropout": "interval(0.0, 0.5)",
            "layers": "int(interval(1, 4))",
            "width": "range(16, 65, 16)",
            "optimizer": "choice(adam, sgd)",
            "seed": "7",
        },
        ["++trainer.max_epochs=2", "dropout=0.25"],  # the command line comes last
    )
    assert space.distributions == {
        "lr": FloatDistribution(0.0001, 0.1, log=True),
        "layers": IntDistribution(1, 4),
        "width": IntDistribution(16, 64, step=16),  # range excludes its stop, as in Hydra
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
    }
    assert space.fixed == {
        "seed": "seed=7",
        "++trainer.max_epochs": "++trainer.max_epochs=2",
        "dropout": "dropout=0.25",
    }
    drawn = {"lr": 0.001, "layers": 2, "width": 32, "optimizer": "sgd"}
    assert trial_overrides(space, drawn) == [
        "lr=0.001",
        "layers=2",
        "width=32",
        "optimizer=sgd",
        "seed=7",
        "++trainer.max_epochs=2",
        "dropout=0.25",
    ]


def test_trials_of_a_dead_process_are_failed_and_those_of_a_live_one_kept(
    tmp_path: Path,
) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = open_study(storage, "s", "minimize")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    host = socket.gethostname()
    dead, live = study.ask(), study.ask()
    dead.set_user_attr(OWNER_ATTR, {"serotiny.host": host, "serotiny.pid": gone})
    live.set_user_attr(OWNER_ATTR, {"serotiny.host": host, "serotiny.pid": str(os.getpid())})

    assert fail_abandoned_trials(study) == [dead.number]
    states = {trial.number: trial.state for trial in study.get_trials()}
    assert states == {dead.number: TrialState.FAIL, live.number: TrialState.RUNNING}


# -- searches through the CLI -----------------------------------------------------------


@pytest.mark.slow
def test_search_writes_the_best_trial_and_a_rerun_trains_nothing(cli, project: Path) -> None:
    command = (
        "train",
        "--multirun",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "++trainer.max_epochs=2",
    )
    result = cli(*command)
    assert result.returncode == 0, result.output
    runs = runs_in(project, EXPERIMENT)
    parent = runs.pop(STUDY)
    assert set(runs) == {f"{STUDY}-trial{number}" for number in range(3)}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert parent.info.status == "FINISHED"

    (results,) = results_of(project)
    folder = project / "multirun" / "search" / STUDY  # one folder per study, a trial each
    assert (folder / "optimization_results.yaml").is_file()
    trials = {path.name for path in folder.iterdir() if path.is_dir()}
    # A folder per trial, named by its number and what ran (the trial's run).
    assert {f"{number}_{STUDY}-trial{number}" for number in range(3)} <= trials
    best = min(run.data.metrics["val_loss"] for run in runs.values())
    assert results["best_value"] == pytest.approx(best)
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.network.hidden_layers.0"}
    best_run = runs[f"{STUDY}-trial{results['best_trial']}"]
    assert best_run.data.metrics["val_loss"] == pytest.approx(best)
    assert float(best_run.data.params["model.optimizer.lr"]) == pytest.approx(
        results["best_params"]["model.optimizer.lr"]
    )
    assert parent.data.metrics["best_value"] == pytest.approx(best)

    again = cli(*command)
    assert again.returncode == 0, again.output
    assert "started run" not in again.output
    assert set(runs_in(project, EXPERIMENT)) == {STUDY, *runs}
    assert len(stored_study(project).trials) == 3
    assert results_of(project)[-1]["best_value"] == pytest.approx(best)


@pytest.mark.slow
def test_killed_search_resumes_its_study_without_repeating_trials(
    project: Path, tmp_path: Path
) -> None:
    add_slow_callback(project, seconds=0.05)
    command = (
        "train",
        "--multirun",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "trainer/callbacks=slow",
        "++trainer.max_epochs=3",
    )
    log = tmp_path / "search.log"
    process = start_cli(*command, project=project, log=log)
    client = connect(f"sqlite:///{project / 'mlruns.db'}")
    # Kill it once the second trial has checkpointed, the first having finished.
    second = f"{STUDY}-trial1"
    wait_until(
        lambda: has_checkpoint(client, runs_in(project, EXPERIMENT).get(second)), process, log
    )
    kill_group(process)
    before = runs_in(project, EXPERIMENT)
    assert before[f"{STUDY}-trial0"].info.status == "FINISHED"
    assert before[f"{STUDY}-trial1"].info.status == "RUNNING"
    states = [trial.state for trial in stored_study(project).trials]
    assert states == [TrialState.COMPLETE, TrialState.RUNNING]

    again = start_cli(*command, project=project, log=tmp_path / "again.log")
    assert again.wait(timeout=600) == 0, (tmp_path / "again.log").read_text()[-3000:]
    output = (tmp_path / "again.log").read_text()
    assert "trial 1 was left running by a process now gone: recorded as failed" in output

    # n_trials trials in the study, once each: the killed one failed, none repeated.
    trials = stored_study(project).trials
    assert [trial.number for trial in trials] == [0, 1, 2, 3]
    assert [trial.state for trial in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    # The resumed search drew new values, rather than its seeded sampler's first ones again.
    assert len({trial.params["model.optimizer.lr"] for trial in trials}) == 4
    # And as many MLflow runs, under one parent that the rerun kept.
    after = runs_in(project, EXPERIMENT)
    parent = after.pop(STUDY)
    assert parent.info.run_id == before[STUDY].info.run_id
    assert parent.info.status == "FINISHED"
    assert set(after) == {f"{STUDY}-trial{number}" for number in range(4)}
    parents = {run.data.tags.get(PARENT_TAG) for run in after.values()}
    assert parents == {parent.info.run_id}, "does serotiny train honour mlflow.parent_run_id?"
    statuses = {name: run.info.status for name, run in after.items()}
    assert statuses == {
        f"{STUDY}-trial0": "FINISHED",
        f"{STUDY}-trial1": "FAILED",
        f"{STUDY}-trial2": "FINISHED",
        f"{STUDY}-trial3": "FINISHED",
    }
    # The first trial was not trained again: one value per epoch, as its own run logged.
    first = after[f"{STUDY}-trial0"].info.run_id
    assert first == before[f"{STUDY}-trial0"].info.run_id
    assert len(client.get_metric_history(first, "val_loss")) == 3
    # The study's best is the best of the runs that completed.
    best = min(after[f"{STUDY}-trial{n}"].data.metrics["val_loss"] for n in (0, 2, 3))
    assert results_of(project)[-1]["best_value"] == pytest.approx(best)


@pytest.mark.slow
def test_pruned_trials_stop_early_and_are_recorded_as_pruned(cli, project: Path) -> None:
    # A pruner that prunes every trial at its first report makes pruning deterministic.
    result = cli(
        "train",
        "--multirun",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "~hydra.sweeper.pruner",
        "+hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,upper:-1.0}",
        "++trainer.max_epochs=4",
    )
    assert result.returncode == 0, result.output
    trials = stored_study(project).trials
    states = [trial.state for trial in trials]
    assert states == [TrialState.PRUNED] * 2, "does serotiny train add pruning_callback()?"
    assert [trial.user_attrs[PRUNED_AT_ATTR] for trial in trials] == [0, 0]
    runs = runs_in(project, EXPERIMENT)
    client = connect(f"sqlite:///{project / 'mlruns.db'}")
    for number in (0, 1):
        run = runs[f"{STUDY}-trial{number}"]
        assert run.info.status == "FINISHED"  # stopped early, as an early stop would
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 1
    assert results_of(project)[-1]["best_value"] is None  # no trial completed


@pytest.mark.slow
def test_a_run_name_shared_by_all_trials_is_refused_before_anything_runs(
    cli, project: Path
) -> None:
    result = cli("train", "--multirun", "hparams_search=optuna", "++mlflow.run_name=same")
    assert result.returncode == 2, result.output
    assert "mlflow.run_name 'same' is the same for every trial" in result.output
    assert runs_in(project, EXPERIMENT) == {}
    assert not (project / "optuna.db").exists()
