"""What a run name finds in MLflow, and what ``serotiny train`` does about it.

The behaviour is a table (:data:`RUN_STATE_ACTIONS`) from the state of the run found under
a name to an action, rather than nested conditions, so that it reads like the promise it
is: a run name is unique, a finished run is never trained twice, and a failed, killed or
abandoned run picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from mlflow.entities import Run

from serotiny.errors import RunLookupError
from serotiny.tracking.ownership import HOST_TAG, PID_TAG, process_alive


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
    run: Run | None = None
    reason: str = ""
    mark_failed_first: bool = False


def _start(_: Run | None, __: float) -> Decision:
    return Decision(Action.START)


def _skip(run: Run, _: float) -> Decision:
    return Decision(Action.SKIP, run, "the run finished")


def _resume(run: Run, _: float) -> Decision:
    return Decision(Action.RESUME, run, f"the run ended {run.info.status}")


def _resume_if_abandoned(run: Run, stale_after_seconds: float) -> Decision:
    if process_alive(run, stale_after_seconds):
        tags = run.data.tags
        where = f"{tags.get(HOST_TAG, 'an unknown host')} (pid {tags.get(PID_TAG, '?')})"
        return Decision(Action.REFUSE, run, f"it is still running on {where}")
    return Decision(Action.RESUME, run, "its process is gone", mark_failed_first=True)


# MLflow run status (None: no run has the name) -> what `serotiny train` does.
RUN_STATE_ACTIONS: dict[str | None, Callable[[Run | None, float], Decision]] = {
    None: _start,
    "FINISHED": _skip,
    "FAILED": _resume,
    "KILLED": _resume,
    "RUNNING": _resume_if_abandoned,
    "SCHEDULED": _resume_if_abandoned,
}


def decide(runs: list[Run], run_name: str, stale_after_seconds: float) -> Decision:
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
