"""Who owns a RUNNING run, and whether that owner is still alive.

The owner of a run tags it with its host, pid and, under SLURM, its job step and attempt; while
it trains, its heartbeat (see ``heartbeat.py``) refreshes a time tag. A later command that
finds the run RUNNING asks :func:`process_alive` whether to refuse (a live owner) or to resume
(an abandoned one).
"""

from __future__ import annotations

import os
import socket
import time

from mlflow.entities import Run

from serotiny.cluster import SlurmJob, slurm_job

HEARTBEAT_TAG = "serotiny.heartbeat"
HOST_TAG = "serotiny.host"
PID_TAG = "serotiny.pid"
SLURM_JOB_TAG = "serotiny.slurm.job_id"
SLURM_STEP_TAG = "serotiny.slurm.step_id"
SLURM_ATTEMPT_TAG = "serotiny.slurm.restart_count"


def slurm_tags(job: SlurmJob | None = None) -> dict[str, str]:
    """A SLURM job step and attempt as run tags (this process's by default; empty outside)."""
    job = job if job is not None else slurm_job()
    if job is None:
        return {}
    return {
        SLURM_JOB_TAG: job.job_id,
        SLURM_STEP_TAG: job.step_id,
        SLURM_ATTEMPT_TAG: job.restart_count,
    }


def owner_tags() -> dict[str, str]:
    """Tags that say which process owns a run: host, pid and, under SLURM, job and attempt."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **slurm_tags()}


def owned_by_an_earlier_attempt_of_this_job(tags: dict[str, str]) -> bool:
    """Whether the run's owner was an earlier attempt of the SLURM job this process is.

    A requeued job may start on another host within seconds, while the heartbeat of its
    killed attempt still looks fresh; that attempt is gone all the same.
    """
    ours = slurm_job()
    recorded = tags.get(SLURM_ATTEMPT_TAG, "")
    return (
        ours is not None
        and tags.get(SLURM_JOB_TAG) == ours.job_id
        and recorded.isdigit()
        and ours.restart_count.isdigit()
        and int(recorded) < int(ours.restart_count)
    )


def gone_from_this_host(tags: dict[str, str]) -> bool:
    """Whether the owner's pid, on this very host, is known to be gone (False: alive, or
    elsewhere and so unknown here)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    try:
        os.kill(int(tags[PID_TAG]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def owner_gone(tags: dict[str, str]) -> bool:
    """Whether the owner these tags record is known to be gone, without a heartbeat: an
    earlier attempt of this SLURM job, or a pid on this host that no longer exists."""
    return owned_by_an_earlier_attempt_of_this_job(tags) or gone_from_this_host(tags)


def process_alive(run: Run, stale_after_seconds: float) -> bool:
    """Whether the process that owns a RUNNING run still appears to be alive.

    A requeued SLURM job knows its earlier attempt is gone; on the same host we can ask
    the OS about the pid; elsewhere we trust the heartbeat that the training process
    refreshes while it runs.
    """
    tags = run.data.tags
    if owner_gone(tags):
        return False
    # A pid that exists may have been reused: the heartbeat decides.
    try:
        last_beat = float(tags.get(HEARTBEAT_TAG, "0"))
    except ValueError:
        return False
    if not last_beat:
        last_beat = (run.info.start_time or 0) / 1000
    return time.time() - last_beat < stale_after_seconds
