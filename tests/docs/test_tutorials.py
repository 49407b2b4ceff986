"""The tutorials, followed command by command; then what they promise, checked in MLflow."""

from __future__ import annotations

import os
import signal
import statistics
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import tracking_uri
from doc_runner import (
    Command,
    FollowedPage,
    Reader,
    Step,
    commands_of,
    follow,
    page_steps,
    run_id_in,
)
from mlflow import MlflowClient
from PIL import Image
from services import SlurmCluster, find_slurm_cluster, service_missing

from serotiny.ml_ops.mlflow_utils import connect, get_run_by_name

pytestmark = pytest.mark.slow


def client_of(project: Path) -> MlflowClient:
    return connect(tracking_uri(project))


def test_tabular_classification(tabular_tutorial: FollowedPage) -> None:
    project = tabular_tutorial.project
    client = client_of(project)
    run = get_run_by_name(client, "default", "wine")
    assert run.info.status == "FINISHED"
    assert run.data.params["data.loaders.y._target_"] == ("serotiny.io.dataframe.loaders.LoadClass")
    assert run.data.metrics["test_accuracy"] >= 0.9

    manifest = pd.read_csv(project / "data" / "wine.csv")
    assert len(manifest) == 178
    assert manifest["split"].value_counts().to_dict() == {"train": 108, "valid": 35, "test": 35}
    predictions = pd.read_parquet(
        client.download_artifacts(run.info.run_id, "predictions/predictions.parquet")
    )
    # The columns the page lists, one row per manifest row, keyed by id.
    assert list(predictions.columns) == [
        "id",
        "prediction",
        "probability_0",
        "probability_1",
        "probability_2",
        "target",
    ]
    assert sorted(predictions["id"]) == sorted(manifest["id"])
    classes = ["class_0", "class_1", "class_2"]
    merged = manifest.merge(predictions, on="id")
    assert (merged["cultivar"].map(classes.index) == merged["target"]).all()
    assert (merged["prediction"] == merged["target"]).mean() >= 0.9


def test_image_classification_reaches_ninety_percent(tmp_path: Path) -> None:
    page = follow("tutorials/images.md", tmp_path)
    project = page.project
    manifest = pd.read_csv(project / "data" / "digits.csv")
    assert len(manifest) == 1797
    with Image.open(project / "data" / manifest.loc[0, "path"]) as image:
        assert (image.size, image.mode) == ((8, 8), "L")

    run = get_run_by_name(client_of(project), "default", "digits")
    assert run.info.status == "FINISHED"
    assert run.data.params["model.network._target_"] == "serotiny.models.SmallCNN"
    assert run.data.params["data.loaders.x._target_"] == "serotiny.io.dataframe.loaders.LoadImage"
    # Logged by `serotiny test` on the 10% of digits held out for test.
    assert run.data.metrics["test_accuracy"] >= 0.9


def last_checkpoint_uploaded(project: Path) -> bool:
    return any((project / "mlartifacts").glob("**/artifacts/checkpoints/last.ckpt"))


def epochs_logged(project: Path) -> int:
    """Validation epochs the run 'long' has logged so far.

    The store is only read once a checkpoint shows the run is under way: a client opening
    a store that does not exist yet would create it, racing the CLI's own migrations.
    """
    if not last_checkpoint_uploaded(project):
        return 0
    client = client_of(project)
    experiment = client.get_experiment_by_name("default")
    runs = client.search_runs([experiment.experiment_id], "tags.`mlflow.runName` = 'long'")
    return len(client.get_metric_history(runs[0].info.run_id, "val_loss"))


def test_restarting_a_killed_run(tmp_path: Path) -> None:
    steps = page_steps("tutorials/restart.md")
    commands = commands_of(steps)
    trains = [command for command in commands if command.argv[:2] == ("serotiny", "train")]
    # The page's promise: the very same command, three times.
    assert len(trains) == 3 and len({command.argv for command in trains}) == 1
    first = steps.index(trains[0])

    reader = Reader(tmp_path)
    reader.follow(steps[:first])
    project = reader.cwd
    process = reader.start(trains[0])
    # Kill it halfway: once its first checkpoint and a couple of epochs are in MLflow.
    deadline = time.monotonic() + 240
    while process.poll() is None and epochs_logged(project) < 2:
        assert time.monotonic() < deadline, "the run logged no epochs in time"
        time.sleep(0.25)
    assert process.poll() is None, (
        "the run ended before it could be killed:\n" + (process.communicate()[0][-3000:])
    )
    os.kill(process.pid, signal.SIGKILL)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == -signal.SIGKILL
    reader.check(trains[0], 0, output)  # it printed what the page shows before dying
    killed_id = run_id_in(output, "long")
    client = client_of(project)
    assert client.get_run(killed_id).info.status == "RUNNING"  # nobody could mark it
    logged_before = client.get_metric_history(killed_id, "val_loss")
    assert 2 <= len(logged_before) < 20

    reader.follow(steps[first + 1 :])
    resumed, skipped = reader.outcomes[-2:]
    assert run_id_in(resumed.output, "long") == killed_id
    assert run_id_in(skipped.output, "long") == killed_id

    run = get_run_by_name(client, "default", "long")  # still exactly one run of that name
    assert run.info.run_id == killed_id
    assert run.info.status == "FINISHED"
    # One value per epoch, steps going on from where the killed process stopped: the
    # epochs it logged are kept, none is lost and none is logged twice.
    steps_logged = [metric.step for metric in client.get_metric_history(killed_id, "val_loss")]
    assert len(steps_logged) == len(set(steps_logged)) == 20
    assert {metric.step for metric in logged_before} <= set(steps_logged)


def test_sweep_names_each_run_after_its_values(sweeps_tutorial: FollowedPage) -> None:
    page = sweeps_tutorial
    client = client_of(page.project)
    experiment = client.get_experiment_by_name("lr_sweep")
    assert experiment is not None
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {
        f"lr_{lr}-batch_{batch}" for lr in ("0.001", "0.01") for batch in ("16", "64")
    }
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        params = run.data.params
        assert name == f"lr_{params['model.optimizer.lr']}-batch_{params['data.batch_size']}"
        assert params["trainer.max_epochs"] == "3"
    # Each job's Hydra output folder, as the page says: its number and its run's name.
    jobs = {path.name for path in (page.project / "multirun" / "train").glob("*/[0-3]_*")}
    assert jobs == {f"{number}_{name}" for number, name in enumerate(sorted(runs))}


def test_cross_validation_then_its_ensemble(sweeps_tutorial: FollowedPage) -> None:
    project = sweeps_tutorial.project
    client = client_of(project)
    experiment = client.get_experiment_by_name("default")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    # One parent and its three folds; the rerun of the finished cross-validation made none.
    assert set(runs) == {"cv", "cv-fold0", "cv-fold1", "cv-fold2"}
    parent = runs.pop("cv")
    folds = [runs[f"cv-fold{fold}"] for fold in range(3)]
    assert parent.info.status == "FINISHED"
    parent_id = parent.info.run_id
    trained, rerun = (
        outcome.output
        for outcome in sweeps_tutorial.outcomes
        if outcome.command.text.startswith("serotiny train ++cv.folds=3")
    )
    assert run_id_in(trained, "cv") == parent_id
    assert "already finished" in rerun and "started run" not in rerun
    for fold, run in enumerate(folds):
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent_id
        assert run.data.tags["serotiny.cv.fold"] == str(fold)
        assert run.data.params["trainer.max_epochs"] == "3"
        # Trained once: the rerun logged no second round of epochs.
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert len(steps) == len(set(steps)) == 3

    # The summary on the parent, from the folds' own (last) values.
    metrics = parent.data.metrics
    val_losses = [run.data.metrics["val_loss"] for run in folds]
    assert metrics["val_loss_mean"] == pytest.approx(statistics.fmean(val_losses))
    assert metrics["val_loss_std"] == pytest.approx(statistics.pstdev(val_losses))
    for fold, run in enumerate(folds):
        assert metrics[f"fold{fold}_val_loss"] == pytest.approx(run.data.metrics["val_loss"])

    # `serotiny test`: the ensemble's metrics on the parent, each fold's beside them (and in
    # the fold's own run).
    assert metrics["test_accuracy"] >= 0.8
    assert "test_loss" in metrics
    for fold, run in enumerate(folds):
        assert metrics[f"fold{fold}_test_accuracy"] == pytest.approx(
            run.data.metrics["test_accuracy"]
        )

    # `serotiny predict`: the ensemble's predictions, one row per manifest row, on the parent.
    manifest = pd.read_csv(project / "data" / "manifest.csv")
    predictions = pd.read_parquet(
        client.download_artifacts(parent_id, "predictions/predictions.parquet")
    )
    assert sorted(predictions["id"]) == sorted(manifest["id"])
    probabilities = predictions[[f"probability_{k}" for k in range(3)]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert (predictions["prediction"] == probabilities.argmax(axis=1)).all()


def needs_slurm(step: Step) -> bool:
    """Whether a step of a page sends work to a SLURM cluster."""
    return isinstance(step, Command) and "hydra/launcher=slurm" in step.argv


@pytest.mark.xdist_group("slurm")  # with tests/cluster: they share the cluster's CPUs
def test_scaling_out(tmp_path: Path) -> None:
    steps = page_steps("tutorials/scale_out.md")
    assert len([step for step in steps if needs_slurm(step)]) == 3  # none goes unnoticed
    # Without a cluster, the page is followed but for its SLURM commands; then skipped.
    cluster = find_slurm_cluster()
    on_cluster = isinstance(cluster, SlurmCluster)
    reader = Reader(tmp_path)
    reader.follow([step for step in steps if on_cluster or not needs_slurm(step)])
    page = FollowedPage(tmp_path, reader)
    client = client_of(page.project)
    experiment = client.get_experiment_by_name("default")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    # One run for the two DDP ranks; the others as the page names them.
    on_this_machine = {"ddp", "bf16", "job_1", "job_2"}
    assert set(runs) - SLURM_RUNS == on_this_machine
    assert all(run.info.status == "FINISHED" for run in runs.values())

    ddp = runs["ddp"]
    assert ddp.data.params["trainer.strategy"] == "ddp"
    assert ddp.data.params["trainer.devices"] == "2"
    assert len(client.get_metric_history(ddp.info.run_id, "val_loss")) == 3
    assert runs["bf16"].data.params["trainer.precision"] == "bf16-mixed"
    assert runs["bf16"].data.params["data.pin_memory"] == "True"
    # One output folder for the DDP run and one for the bf16 run, not one per rank.
    assert len(list((page.project / "outputs" / "train").iterdir())) == 2
    # The local launcher really went through submitit.
    assert list((page.project / "multirun").rglob(".submitit"))

    if not on_cluster:
        service_missing("slurm", f"{cluster} (the page's SLURM commands were not followed)")
    assert set(runs) == on_this_machine | SLURM_RUNS
    # Each sweep run trained in a SLURM job of its own; the rerun submitted only seed 3.
    jobs = [runs[f"seed_{seed}"].data.tags["serotiny.slurm.job_id"] for seed in (1, 2, 3)]
    assert len(set(jobs)) == 3
    sweeps = [o.output for o in page.outcomes if "hydra/sweeper=skip_finished" in o.command.argv]
    assert "#1 :" not in sweeps[1] and "#0 : seed=3" in sweeps[1]
    # Two tasks of one job trained one DDP run.
    ddp_slurm = runs["ddp_slurm"]
    assert ddp_slurm.data.params["trainer.strategy"] == "ddp"
    assert len(client.get_metric_history(ddp_slurm.info.run_id, "val_loss")) == 2
    task_logs = "".join(
        path.read_text() for path in (page.project / "multirun").rglob(".submitit/*/*_log.out")
    )
    assert "rank 1 joins run 'ddp_slurm'" in task_logs


SLURM_RUNS = {"seed_1", "seed_2", "seed_3", "ddp_slurm"}
