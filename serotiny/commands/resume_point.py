"""Where a resumed training starts: the run's newest checkpoint that loads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from serotiny.errors import RunLookupError
from serotiny.tracking.artifacts import download_checkpoint
from serotiny.tracking.claims import ClaimedRun
from serotiny.tracking.run_state import Action
from serotiny.trainer_parts.checkpoint_files import load_checkpoint_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint to resume from (None: from the start), which one it is, and whether it
    is a fallback because a newer one was unreadable."""

    path: Path | None = None
    which: str | None = None
    fell_back: bool = False


def choose_resume_point(run: ClaimedRun, folder: Path) -> ResumePoint:
    """The newest of the run's checkpoints that loads, downloaded into ``folder``.

    ``last`` is newest; when it is unreadable, ``best`` (never newer) is the one before.
    """
    if run.decision.action is not Action.RESUME:
        return ResumePoint()
    fell_back = False
    for which in ("last", "best"):
        try:
            path = download_checkpoint(run.client, run.run_id, which, folder / which)
        except RunLookupError:  # no checkpoint of this kind: try the next
            continue
        try:
            load_checkpoint_state(path)
        except Exception as error:  # unreadable: fall back to the one before
            reason = str(error).splitlines()[0]
            log.warning("checkpoint %s of run %s is unreadable (%s)", which, run.run_id, reason)
            fell_back = True
            continue
        return ResumePoint(path, which, fell_back)
    log.info("run %s has no usable checkpoint: training it from the start", run.run_id)
    return ResumePoint(fell_back=fell_back)
