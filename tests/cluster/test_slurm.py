"""serotiny on a real SLURM cluster (``scripts/services/up slurm``), through the CLI:
sweeps through ``hydra/launcher=slurm``, preempted and timed-out jobs that resume their
run, and DDP ranks started by ``srun``."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import cli_env, has_checkpoint, runs_in, start_cli, tracking_uri
from mlflow import MlflowClient
from mlflow.entities import Run
from services import SlurmCluster
from slurm_jobs import (
    add_held_callback,
    job_logs,
    jobs_named,
    launcher_overrides,
    release_if_held,
    slurm,
    wait_for,
)

from serotiny.tracking.store import connect

# Under `--dist loadgroup` one worker runs them (and the scale-out tutorial) one after another,
# as they share the cluster's few CPUs; side by side they pass too, a job waiting for a CPU.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

JOB_TAG = "serotiny.slurm.job_id"
ATTEMPT_TAG = "serotiny.slurm.restart_count"


@pytest.fixture
def job_name(slurm_cluster: SlurmCluster) -> Iterator[str]:
    """A job name of this test's own; its jobs are cancelled when the test ends."""
    name = f"serotiny-test-{secrets.token_hex(4)}"
    yield name
    subprocess.run(["scancel", "--name", name], capture_output=True, timeout=60)


def metric_steps(client: MlflowClient, run: Run) -> dict[str, list[int]]:
    """The steps of every metric the run logged, in the order logged."""
    return {
        key: [metric.step for metric in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }


def assert_each_epoch_once(client: MlflowClient, run: Run, epochs: int) -> None:
    for key, steps in metric_steps(client, run).items():
        if key.startswith(("train_", "val_")):
            assert len(steps) == len(set(steps)) == epochs, (key, steps)


def test_a_sweep_runs_one_slurm_job_per_run_and_a_rerun_submits_only_what_is_left(
    cli, project: Path, slurm_cluster: SlurmCluster, job_name: str
) -> None:
    sweep = [
        "train",
        "--multirun",
        "hydra/sweeper=skip_finished",
        *launcher_overrides(slurm_cluster, job_name),
        "++mlflow.run_name=seed_${seed}",
        "++trainer.max_epochs=2",
    ]
    first = cli(*sweep, "seed=1,2", timeout=600)
    assert first.returncode == 0, first.output + job_logs(project / "multirun")
    first_jobs = jobs_named(job_name)
    assert len(first_jobs) == 2
    runs = runs_in(project)
    assert set(runs) == {"seed_1", "seed_2"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    # Each run trained in a job of its own, on the cluster.
    assert sorted(run.data.tags[JOB_TAG] for run in runs.values()) == first_jobs

    # One value more: only its job is submitted; the finished ones are not.
    wider = cli(*sweep, "seed=1,2,3", timeout=600)
    assert wider.returncode == 0, wider.output + job_logs(project / "multirun")
    assert "run 'seed_1' already finished" in wider.output
    assert "run 'seed_2' already finished" in wider.output
    new_jobs = sorted(set(jobs_named(job_name)) - set(first_jobs))
    assert len(new_jobs) == 1
    after = runs_in(project)
    assert set(after) == {"seed_1", "seed_2", "seed_3"}
    assert after["seed_3"].info.status == "FINISHED"
    assert after["seed_3"].data.tags[JOB_TAG] == new_jobs[0]
    client = MlflowClient(tracking_uri(project))
    for name in ("seed_1", "seed_2"):
        assert after[name].info.run_id == runs[name].info.run_id
        assert_each_epoch_once(client, after[name], 2)  # not trained a second time

    # Everything finished: the same sweep submits nothing at all.
    again = cli(*sweep, "seed=1,2,3", timeout=600)
    assert again.returncode == 0, again.output
    assert "3 of 3 jobs left out" in again.output
    assert len(jobs_named(job_name)) == 3
    assert {name: run.info.run_id for name, run in runs_in(project).items()} == {
        name: run.info.run_id for name, run in after.items()
    }


def _named_run(client: MlflowClient, name: str) -> Run | None:
    experiment = client.get_experiment_by_name("default")
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], f"tags.`mlflow.runName` = '{name}'")
    return runs[0] if runs else None


class TrainingJob:
    """One training submitted through ``hydra/launcher=slurm``, its first attempt slowed
    down (0.2 s a batch) until :meth:`hurry` lets the next attempts run at full speed."""

    def __init__(
        self, project: Path, cluster: SlurmCluster, job_name: str, epochs: int, *more: str
    ) -> None:
        self.project = project
        self.job_name = job_name
        self.hold = project.parent / "hold"
        self.log = project.parent / "sweep.log"
        add_held_callback(project, self.hold, seconds=0.2)  # about 1.4 s an epoch
        self.process = start_cli(
            "train",
            "--multirun",
            *launcher_overrides(cluster, job_name, *more),
            "trainer/callbacks=held",
            "++mlflow.run_name=preempted",
            f"++trainer.max_epochs={epochs}",
            project=project,
            log=self.log,
        )
        self.client = connect(tracking_uri(project))
        self.wait_for(lambda: has_checkpoint(self.client, self.run()), "a first checkpoint", 300)
        (self.job,) = jobs_named(job_name)

    def release(self) -> None:
        """Let any attempt that SLURM holds back after a requeue start now."""
        for job in jobs_named(self.job_name):
            release_if_held(job)

    def run(self) -> Run | None:
        return _named_run(self.client, "preempted")

    def logs(self) -> str:
        return self.log.read_text()[-3000:] + job_logs(self.project / "multirun")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait for ``condition`` while the sweep runs; fail with the logs if it ends."""

        def holds() -> bool:
            self.release()
            assert self.process.poll() is None, f"the sweep ended first:\n{self.logs()}"
            return condition()

        wait_for(holds, what, timeout, self.logs)

    def hurry(self) -> None:
        self.hold.unlink()

    def finish(self) -> Run:
        """Let requeued attempts start at once; wait for the sweep; the run it ended with."""

        def ended() -> bool:
            self.release()
            return self.process.poll() is not None

        wait_for(ended, "the requeued job to finish", 400, self.logs)
        assert self.process.returncode == 0, self.logs()
        run = self.run()
        assert run is not None
        return run


def test_a_requeued_job_resumes_its_run_from_its_checkpoint(
    project: Path, slurm_cluster: SlurmCluster, job_name: str
) -> None:
    epochs = 12
    training = TrainingJob(project, slurm_cluster, job_name, epochs)
    before = training.run()
    assert before is not None and before.info.status == "RUNNING"
    assert before.data.tags[JOB_TAG] == training.job and before.data.tags[ATTEMPT_TAG] == "0"

    # As a preemption does: SIGTERM, then back in the queue. serotiny stops at the next
    # batch, saves and uploads a checkpoint, and marks the run KILLED.
    slurm("scontrol", "requeue", training.job)
    run_id = before.info.run_id
    training.wait_for(
        lambda: training.client.get_run(run_id).info.status == "KILLED",
        "the run to be marked KILLED",
        120,
    )
    logged_before = metric_steps(training.client, training.client.get_run(run_id))["val_loss"]
    training.hurry()

    run = training.finish()
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags[JOB_TAG] == training.job and run.data.tags[ATTEMPT_TAG] == "1"
    assert_each_epoch_once(training.client, run, epochs)
    assert logged_before and set(logged_before) <= set(
        metric_steps(training.client, run)["val_loss"]
    )
    output = job_logs(project / "multirun", tail=None)
    assert "resuming run 'preempted'" in output
    assert "Restored all states from the checkpoint" in output


def test_a_job_at_its_time_limit_is_requeued_by_submitit_and_resumes_its_run(
    project: Path, slurm_cluster: SlurmCluster, job_name: str
) -> None:
    # A one-minute limit, and submitit's signal 10 s before it. slurmctld checks time
    # limits every 30 s and sends such a signal up to one check early: 20 to 50 s into the
    # job, after its first checkpoint and before the end of its (held-up) first attempt.
    # submitit then checkpoints the job's command and requeues the job.
    epochs = 50
    limits = ["timeout_min=1", "signal_delay_s=10", "max_num_timeout=3"]
    training = TrainingJob(
        project, slurm_cluster, job_name, epochs, *(f"hydra.launcher.{x}" for x in limits)
    )
    first = training.run()
    assert first is not None
    training.wait_for(lambda: _restarts(training.job) >= 1, "submitit to requeue the job", 120)
    training.hurry()

    run = training.finish()
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert int(run.data.tags[ATTEMPT_TAG]) >= 1
    assert_each_epoch_once(training.client, run, epochs)
    output = job_logs(project / "multirun", tail=None)
    assert "this job is timed-out" in output
    assert "resuming run 'preempted'" in output
    assert "Restored all states from the checkpoint" in output


def _restarts(job: str) -> int:
    """How often SLURM has restarted the job (``scontrol show job``'s Restarts)."""
    shown = slurm("scontrol", "show", "job", job)
    return int(shown.split("Restarts=", 1)[1].split()[0])


def test_srun_with_two_tasks_trains_one_ddp_run(
    project: Path, slurm_cluster: SlurmCluster, job_name: str
) -> None:
    # Two tasks on one node, as `hydra/launcher=slurm` with tasks_per_node=2 starts them;
    # --overcommit lets them share one CPU on a smaller node.
    srun = ["srun", f"--partition={slurm_cluster.partition}", f"--job-name={job_name}"]
    srun += ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--overcommit"]
    srun += ["--kill-on-bad-exit=1", sys.executable, "-m", "serotiny", "train", "trainer=ddp"]
    srun += ["trainer.devices=2", "trainer.accelerator=cpu", "++trainer.max_epochs=2"]
    done = subprocess.run(
        [*srun, "++mlflow.run_name=ddp-srun"],
        cwd=project,
        env=cli_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    (job,) = jobs_named(job_name)
    assert "rank 1 joins run 'ddp-srun'" in output
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output and "distributed_backend=gloo" in output
    runs = runs_in(project)
    assert list(runs) == ["ddp-srun"]  # one run, whatever the ranks
    run = runs["ddp-srun"]
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp"
    assert run.data.tags[JOB_TAG] == job and run.data.tags["serotiny.slurm.step_id"] == "0"
    assert_each_epoch_once(MlflowClient(tracking_uri(project)), run, 2)
    assert len(list((project / "outputs" / "train").iterdir())) == 1  # rank 0's folder only
