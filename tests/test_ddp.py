"""Distributed data parallel through Lightning (gloo on CPU), end to end through the CLI:
ranks started by Lightning's launcher, and ranks started by SLURM's srun (one task each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import cli_env, free_port, kill_group, run_cli, tracking_uri, wait_until
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
EPOCHS = 3
RECORDER = """
import os
import time
from pathlib import Path

import lightning.pytorch as pl


class RecordIds(pl.Callback):
    \"\"\"Writes the ids each rank trains on, one file per rank and epoch (named after
    $RECORD_PREFIX, which is not part of the config, so that a resume may change it).\"\"\"

    def __init__(self, folder: str, seconds: float = 0.0) -> None:
        self.folder = Path(folder)
        self.seconds = seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        prefix = os.environ.get("RECORD_PREFIX", "")
        name = f"{prefix}rank{trainer.global_rank}_epoch{trainer.current_epoch}.txt"
        with (self.folder / name).open("a") as handle:
            handle.writelines(f"{value}\\n" for value in batch["id"])
        time.sleep(self.seconds)
"""


@pytest.fixture
def ddp_project(project: Path, tmp_path: Path) -> Path:
    (project / "a_tiny_project" / "recorder.py").write_text(RECORDER)
    callbacks = project / "a_tiny_project" / "config" / "trainer" / "callbacks"
    (callbacks / "record.yaml").write_text(
        "- _target_: a_tiny_project.recorder.RecordIds\n"
        f"  folder: {tmp_path / 'seen'}\n"
        "  seconds: ${oc.decode:${oc.env:RECORD_SLEEP,0}}\n"
    )
    return project


def ddp_arguments(name: str) -> list[str]:
    return [
        "train",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer/callbacks=record",
        f"++trainer.max_epochs={EPOCHS}",
        f"++mlflow.run_name={name}",
    ]


def the_run(project: Path, name: str):  # type: ignore[no-untyped-def]
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiment = client.get_experiment_by_name("default")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == [name]  # exactly one run, whatever the ranks
    return client, runs[0]


def test_two_ranks_make_one_run_and_shard_the_data(ddp_project: Path, tmp_path: Path) -> None:
    result = run_cli(*ddp_arguments("ddp"), cwd=ddp_project, timeout=600)
    assert result.returncode == 0, result.output
    client, run = the_run(ddp_project, "ddp")
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == EPOCHS
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"checkpoints", "config", "plots", "reproducibility.json"}
    assert len(client.list_artifacts(run.info.run_id, "config")) == 1
    assert len(list((ddp_project / "outputs" / "train").iterdir())) == 1  # one folder, not two

    manifest = pd.read_csv(ddp_project / "data" / "manifest.csv")
    train_ids = set(manifest.loc[manifest["split"] == "train", "id"])
    seen = tmp_path / "seen"
    for epoch in range(EPOCHS):
        per_rank = [(seen / f"rank{rank}_epoch{epoch}.txt").read_text().split() for rank in (0, 1)]
        assert per_rank[0] and per_rank[1]
        union = per_rank[0] + per_rank[1]
        assert len(union) == len(set(union)), "a sample was seen twice in one epoch"
        assert set(union) == train_ids


def test_killed_ddp_job_resumes_on_rerun(ddp_project: Path) -> None:
    env = cli_env(ddp_project, RECORD_SLEEP="0.1")
    process = subprocess.Popen(
        [sys.executable, "-m", "serotiny", *ddp_arguments("ddp-crash")],
        cwd=ddp_project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not list((ddp_project / "mlartifacts").rglob("checkpoints/last.ckpt")):
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher and its ranks, as a node crash would
    process.wait(timeout=60)
    client, interrupted = the_run(ddp_project, "ddp-crash")
    assert interrupted.info.status == "RUNNING"

    result = run_cli(*ddp_arguments("ddp-crash"), cwd=ddp_project, timeout=600, RECORD_SLEEP="0.1")
    assert result.returncode == 0, result.output
    assert "resuming run 'ddp-crash'" in result.output
    client, run = the_run(ddp_project, "ddp-crash")
    assert run.info.run_id == interrupted.info.run_id
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert len(steps) == EPOCHS and len(set(steps)) == EPOCHS


def start_slurm_tasks(
    project: Path, name: str, logs: Path, restart_count: int, **env: str
) -> list[subprocess.Popen]:
    """Start the command as `srun --ntasks=2` would for one job step on one node: once per
    task, each told its rank by SLURM's variables, which Lightning's SLURM environment reads."""
    job = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "127.0.0.1",
        "SLURM_RESTART_COUNT": str(restart_count),
        "MASTER_PORT": str(free_port()),
        **env,
    }
    logs.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "serotiny", *ddp_arguments(name)],
            cwd=project,
            env=cli_env(project, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), **job),
            stdout=(logs / f"rank{rank}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for rank in (0, 1)
    ]


def finish(tasks: list[subprocess.Popen], logs: Path) -> list[str]:
    """Wait for every task; return what each printed, failing if one failed."""
    for task in tasks:
        task.wait(timeout=600)
    outputs = [(logs / f"rank{rank}.log").read_text() for rank in range(len(tasks))]
    failed = [
        f"rank {rank} exited {task.returncode}:\n{outputs[rank][-3000:]}"
        for rank, task in enumerate(tasks)
        if task.returncode != 0
    ]
    assert not failed, "\n\n".join(failed)
    return outputs


def test_a_requeued_srun_job_resumes_its_one_run_and_shards_the_data(
    ddp_project: Path, tmp_path: Path
) -> None:
    first = tmp_path / "attempt0"
    tasks = start_slurm_tasks(
        ddp_project, "preempted", first, 0, RECORD_SLEEP="0.1", RECORD_PREFIX="first_"
    )
    artifacts = ddp_project / "mlartifacts"
    wait_until(
        lambda: bool(list(artifacts.rglob("checkpoints/last.ckpt"))),
        tasks[0],
        first / "rank0.log",
    )
    assert "rank 1 joins run 'preempted'" in (first / "rank1.log").read_text()
    for task in tasks:  # the node is lost: no handler runs, the run stays RUNNING
        kill_group(task)
    client, interrupted = the_run(ddp_project, "preempted")
    assert interrupted.info.status == "RUNNING"
    assert interrupted.data.tags["serotiny.slurm.restart_count"] == "0"
    assert interrupted.data.tags["serotiny.resume.checkpoint"] == "none"

    # SLURM requeues the job: same job id, next attempt, every task runs the command again.
    second = tmp_path / "attempt1"
    rank0, rank1 = finish(
        start_slurm_tasks(
            ddp_project,
            "preempted",
            second,
            1,
            RECORD_SLEEP="0.1",
            RECORD_PREFIX="second_",
        ),
        second,
    )
    assert "resuming run 'preempted'" in rank0
    assert f"rank 1 joins run 'preempted' ({interrupted.info.run_id})" in rank1
    client, run = the_run(ddp_project, "preempted")  # still one run, whatever the ranks
    assert run.info.run_id == interrupted.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["serotiny.slurm.restart_count"] == "1"
    assert run.data.tags["serotiny.resume.checkpoint"] == "last"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert len(steps) == EPOCHS and len(set(steps)) == EPOCHS
    assert len(client.list_artifacts(run.info.run_id, "config")) == 1

    # One output folder per attempt, rank 0's; the extra rank kept Hydra's files elsewhere.
    folders = sorted((ddp_project / "outputs" / "train").iterdir())
    assert len(folders) == 2
    assert run.data.tags["serotiny.output_dir"] == str(folders[-1])
    assert not list(ddp_project.glob("*.log"))

    # Each epoch the requeued attempt trained, the two ranks saw the train split once.
    manifest = pd.read_csv(ddp_project / "data" / "manifest.csv")
    train_ids = set(manifest.loc[manifest["split"] == "train", "id"])
    seen = tmp_path / "seen"
    epochs = sorted({path.stem.split("_")[-1] for path in seen.glob("second_rank0_*.txt")})
    assert epochs and f"epoch{EPOCHS - 1}" in epochs
    for epoch in epochs:
        per_rank = [
            (seen / f"second_rank{rank}_{epoch}.txt").read_text().split() for rank in (0, 1)
        ]
        union = per_rank[0] + per_rank[1]
        assert per_rank[0] and per_rank[1] and len(union) == len(set(union)), epoch
        assert set(union) == train_ids, epoch
