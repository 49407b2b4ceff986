"""Helpers for tests that send serotiny's commands to the real SLURM cluster
(``scripts/services/up slurm``): the launcher's overrides for a one-node cluster, and
what SLURM says about the jobs a test submitted."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cli_helpers import PACKAGE
from services import SlurmCluster

HELD_CALLBACK = '''
import time
from pathlib import Path

import lightning.pytorch as pl


class SlowWhileHeld(pl.Callback):
    """Makes each training batch take a while as long as the file ``hold`` exists."""

    def __init__(self, hold: str, seconds: float) -> None:
        self.hold = Path(hold)
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        if self.hold.exists():
            time.sleep(self.seconds)
'''


def launcher_overrides(cluster: SlurmCluster, job_name: str, *more: str) -> list[str]:
    """``hydra/launcher=slurm`` asking for what one small node has, under ``job_name``.

    The template's launcher config asks for 4 CPUs and 16 GB per job, more than a test
    node may have; a unique job name lets a test find its own jobs in ``squeue``.
    """
    return [
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        f"hydra.launcher.name={job_name}",
        *more,
    ]


def add_held_callback(project: Path, hold: Path, seconds: float) -> None:
    """Give the project a ``trainer/callbacks=held`` option: each batch takes ``seconds``
    while the file ``hold`` exists, so that a test can keep a job's first attempt busy
    until SLURM interrupts it, then let the next attempt run at full speed (with the same
    config, as a requeued job must)."""
    hold.touch()
    (project / PACKAGE / "held.py").write_text(HELD_CALLBACK)
    (project / PACKAGE / "config" / "trainer" / "callbacks" / "held.yaml").write_text(
        f"- _target_: {PACKAGE}.held.SlowWhileHeld\n  hold: {hold}\n  seconds: {seconds}\n"
    )


def slurm(*command: str) -> str:
    """Run a SLURM command; its output, or an error with what it printed."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"`{' '.join(command)}` failed: {done.stderr.strip()}"
    return done.stdout


def jobs_named(job_name: str) -> list[str]:
    """Every job ever submitted under ``job_name`` that slurmctld still knows (finished jobs
    stay known for an hour: ``MinJobAge`` in the cluster's slurm.conf)."""
    listed = slurm("squeue", "--noheader", "--states=all", "--name", job_name, "-o", "%A")
    return sorted(listed.split())


def job_state(job_id: str) -> tuple[str, str]:
    """The job's state and the reason it is in it (``PENDING``, ``BeginTime``, say)."""
    line = slurm("squeue", "--noheader", "--states=all", "--jobs", job_id, "-o", "%T %r").strip()
    state, _, reason = line.partition(" ")
    return state, reason


def release_if_held(job_id: str) -> bool:
    """Let a requeued job start now rather than in two minutes.

    SLURM holds a requeued job back (reason ``BeginTime``) for about 120 s before it may
    start again; nothing that the job sees changes when the hold is lifted early.
    """
    if job_state(job_id) != ("PENDING", "BeginTime"):
        return False
    slurm("scontrol", "update", f"JobId={job_id}", "StartTime=now")
    return True


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float, logs: Callable[[], str]
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` and the logs at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{logs()}"
        time.sleep(0.5)


def job_logs(folder: Path, tail: int | None = 2500) -> str:
    """What every job under a sweep folder printed (submitit's log files, every attempt),
    each cut to its last ``tail`` characters (None: all of it)."""
    parts = []
    for path in sorted(folder.rglob(".submitit/*/*_log.*")):
        text = path.read_text(errors="replace")
        parts.append(f"--- {path.name}\n{text[-tail:] if tail else text}")
    return "\n".join(parts) or f"(no job logs under {folder})"
