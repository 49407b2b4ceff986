"""Where a resumed training starts: the run's newest checkpoint that loads.

A resume never silently starts over. ``last`` is newest; when it is damaged (a copy or an
upload cut short), ``best`` (never newer) is the one before, and the epochs between them are
trained again without logging their metrics twice (``ResumePoint.committed_steps``). A
checkpoint that is whole but refused by the safe load is one line naming
``checkpoint.trusted``; a run whose checkpoints are all damaged is one line too. Only a run
without any checkpoint starts from the beginning: it committed no metric (they wait for a
checkpoint), so nothing is repeated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from serotiny.errors import RunLookupError
from serotiny.tracking.artifacts import (
    CHECKPOINT_ARTIFACT_DIR,
    download_checkpoint,
    list_checkpoints,
)
from serotiny.tracking.claims import ClaimedRun
from serotiny.tracking.metric_history import committed_steps
from serotiny.tracking.run_state import Action
from serotiny.trainer_parts.checkpoint_files import UNREADABLE_CHECKPOINT_ERRORS, read_checkpoint

log = logging.getLogger(__name__)


class NoLoadableCheckpointError(RunLookupError):
    """A run holds checkpoints, and none of them loads: it is not trained from the start."""


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint to resume from (None: from the start), which one it is, and whether it
    is a fallback because a newer one was unreadable.

    ``committed_steps`` (metric name -> last step the run holds) is filled when training
    does not resume from the run's newest state, so that steps trained again are not logged
    again.
    """

    path: Path | None = None
    which: str | None = None
    fell_back: bool = False
    committed_steps: dict[str, int] = field(default_factory=dict)


def choose_resume_point(run: ClaimedRun, folder: Path, trusted: bool = False) -> ResumePoint:
    """The newest of the run's checkpoints that loads, downloaded into ``folder``.

    ``trusted``: the project trusts its checkpoints (``checkpoint.trusted``), so they are
    unpickled in full. Raises :class:`NoLoadableCheckpointError` when the run holds
    checkpoints but none loads, and ``UnsafeCheckpointError`` for one the safe load refuses.
    """
    if run.decision.action is not Action.RESUME:
        return ResumePoint()
    problems: list[str] = []
    stored = set(list_checkpoints(run.client, run.run_id))
    for which in ("last", "best"):
        if f"{CHECKPOINT_ARTIFACT_DIR}/{which}.ckpt" not in stored:
            continue
        path = download_checkpoint(run.client, run.run_id, which, folder / which)
        try:
            read_checkpoint(path, trusted, f"checkpoint {which}.ckpt of run {run.run_id}")
        except UNREADABLE_CHECKPOINT_ERRORS as error:  # damaged: fall back to the one before
            reason = (str(error).strip().splitlines() or [""])[0][:200]
            problems.append(f"{which}.ckpt: {type(error).__name__} {reason}".rstrip())
            log.warning("checkpoint %s of run %s is unreadable (%s)", which, run.run_id, reason)
            continue
        return resume_point(run, path, which, fell_back=bool(problems))
    if problems:
        raise NoLoadableCheckpointError(
            f"run '{run.run_name}' ({run.run_id}) holds checkpoints but none loads "
            f"({'; '.join(problems)}); it is not trained again from the start, which would "
            "repeat its recorded metrics: restore its checkpoints/ artifacts, or train under "
            "a new ++mlflow.run_name"
        )
    log.info("run %s has no checkpoint: training it from the start", run.run_id)
    return resume_point(run, None, None, fell_back=False)


def resume_point(
    run: ClaimedRun, path: Path | None, which: str | None, fell_back: bool
) -> ResumePoint:
    """The resume point, with the run's committed steps when it is not the newest state
    (a fallback, or no checkpoint while metrics were committed without one)."""
    steps = committed_steps(run.client, run.run_id) if fell_back or path is None else {}
    if steps and path is None:
        log.warning(
            "run %s holds metrics but no checkpoint: their steps are not logged again", run.run_id
        )
    return ResumePoint(path, which, fell_back, steps)
