"""A run's final status, set in exactly one place: how the block that ran it ended.

FINISHED when the block returns, KILLED when it was stopped (a signal, Ctrl-C, an exit),
FAILED on any other exception. Lightning marks a run failed only on a Python exception and a
SIGKILL leaves it RUNNING; serotiny's heartbeat and run-state table handle that case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def run_outcome(set_status: Callable[[str], None], run_name: str) -> Iterator[None]:
    """Set the run's final status from how the ``with`` block ends; re-raise what ended it.

    ``set_status`` records the status: into a training's journal (sent to MLflow in the
    background), or straight to MLflow (``client.set_terminated`` of the run).
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        set_status("KILLED")
        log.warning("run '%s' stopped; rerun the same command to resume it", run_name)
        raise
    except BaseException:
        set_status("FAILED")
        log.error("run '%s' failed; rerun the same command to resume it", run_name)
        raise
    set_status("FINISHED")
