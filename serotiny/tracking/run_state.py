"""What a run name finds in MLflow, and what ``serotiny train`` does about it.

The behaviour is a table (:data:`RUN_STATE_ACTIONS`) from the state of the run found under
a name to an action, rather than nested conditions, so that it reads like the promise it
is: a run name is unique, a finished run is never trained twice, and a failed, killed or
abandoned run picks up where it stopped.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from serotiny.errors import RunLookupError

HEARTBEAT_TAG = "serotiny.heartbeat"
HOST_TAG = "serotiny.host"
PID_TAG = "serotiny.pid"
# The SLURM job step and attempt that own a RUNNING run. SLURM keeps a job's id when it
# requeues it (after preemption or a node failure) and counts the attempt in
# SLURM_RESTART_COUNT, which is how a requeued job knows its earlier attempt is gone. The
# step tells the tasks of one `srun` (the ranks of one DDP training) from other steps.
SLURM_JOB_TAG = "serotiny.slurm.job_id"
SLURM_STEP_TAG = "serotiny.slurm.step_id"
SLURM_ATTEMPT_TAG = "serotiny.slurm.restart_count"
_SLURM_VARIABLES = {
    SLURM_JOB_TAG: "SLURM_JOB_ID",
    SLURM_STEP_TAG: "SLURM_STEP_ID",
    SLURM_ATTEMPT_TAG: "SLURM_RESTART_COUNT",
}


def slurm_identity() -> dict[str, str]:
    """This process's SLURM job, step and attempt as run tags; empty outside a SLURM job."""
    if not os.environ.get("SLURM_JOB_ID"):
        return {}
    identity = {tag: os.environ.get(variable, "") for tag, variable in _SLURM_VARIABLES.items()}
    identity[SLURM_STEP_TAG] = identity[SLURM_STEP_TAG] or "none"  # the batch script itself
    identity[SLURM_ATTEMPT_TAG] = identity[SLURM_ATTEMPT_TAG] or "0"
    return identity


def owner_tags() -> dict[str, str]:
    """Tags that say which process owns a run: host, pid and, under SLURM, job and attempt."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **slurm_identity()}


def _owned_by_an_earlier_attempt_of_this_job(tags: dict[str, str]) -> bool:
    """Whether the run's owner was an earlier attempt of the SLURM job this process is.

    A requeued job may start on another host within seconds, while the heartbeat of its
    killed attempt still looks fresh; that attempt is gone all the same.
    """
    ours = slurm_identity()
    recorded = tags.get(SLURM_ATTEMPT_TAG, "")
    return (
        bool(ours)
        and tags.get(SLURM_JOB_TAG) == ours[SLURM_JOB_TAG]
        and recorded.isdigit()
        and ours[SLURM_ATTEMPT_TAG].isdigit()
        and int(recorded) < int(ours[SLURM_ATTEMPT_TAG])
    )


class Action(Enum):
    """What to do with a run name."""

    START = "start a new run"
    SKIP = "already finished: nothing to train"
    RESUME = "resume from its latest checkpoint"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    """An action, the run it applies to (if any), and why."""

    action: Action
    run: Any = None
    reason: str = ""
    mark_failed_first: bool = False


def process_alive(run: Any, stale_after_seconds: float) -> bool:
    """Whether the process that owns a RUNNING run still appears to be alive.

    A requeued SLURM job knows its earlier attempt is gone; on the same host we can ask
    the OS about the pid; elsewhere we trust the heartbeat that the training process
    refreshes while it runs.
    """
    tags = run.data.tags
    if _owned_by_an_earlier_attempt_of_this_job(tags):
        return False
    if tags.get(HOST_TAG) == socket.gethostname() and tags.get(PID_TAG, "").isdigit():
        try:
            os.kill(int(tags[PID_TAG]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    try:
        last_beat = float(tags.get(HEARTBEAT_TAG, "0"))
    except ValueError:
        return False
    if not last_beat:
        last_beat = (run.info.start_time or 0) / 1000
    return time.time() - last_beat < stale_after_seconds


def _start(_: Any, __: float) -> Decision:
    return Decision(Action.START)


def _skip(run: Any, _: float) -> Decision:
    return Decision(Action.SKIP, run, "the run finished")


def _resume(run: Any, _: float) -> Decision:
    return Decision(Action.RESUME, run, f"the run ended {run.info.status}")


def _resume_if_abandoned(run: Any, stale_after_seconds: float) -> Decision:
    if process_alive(run, stale_after_seconds):
        tags = run.data.tags
        where = f"{tags.get(HOST_TAG, 'an unknown host')} (pid {tags.get(PID_TAG, '?')})"
        return Decision(Action.REFUSE, run, f"it is still running on {where}")
    return Decision(Action.RESUME, run, "its process is gone", mark_failed_first=True)


# MLflow run status (None: no run has the name) -> what `serotiny train` does.
RUN_STATE_ACTIONS: dict[str | None, Callable[[Any, float], Decision]] = {
    None: _start,
    "FINISHED": _skip,
    "FAILED": _resume,
    "KILLED": _resume,
    "RUNNING": _resume_if_abandoned,
    "SCHEDULED": _resume_if_abandoned,
}


def decide(runs: list[Any], run_name: str, stale_after_seconds: float) -> Decision:
    """The decision for the runs found under ``run_name`` (newest first)."""
    if len(runs) > 1:
        ids = ", ".join(run.info.run_id for run in runs)
        raise RunLookupError(
            f"run name '{run_name}' matches {len(runs)} runs ({ids}); serotiny needs it to "
            "be unique: delete the extras or choose another ++mlflow.run_name"
        )
    run = runs[0] if runs else None
    status = run.info.status if run else None
    decision = RUN_STATE_ACTIONS[status](run, stale_after_seconds)
    if decision.action is Action.REFUSE:
        raise RunLookupError(
            f"run '{run_name}' ({run.info.run_id}) cannot be trained now: {decision.reason}"
        )
    return decision
