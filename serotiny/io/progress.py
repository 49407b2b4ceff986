"""Progress of long work outside training: a bar on a terminal, a few log lines elsewhere.

Checking a manifest of many image files or downloading a large checkpoint can take minutes;
a user at a terminal should see it move, and a cluster job's log should say where it is
without a line per item. So:

* on a terminal (``sys.stderr`` is one), a transient rich bar on stderr, like the config tree,
  that appears only once the work has taken :data:`SHOW_AFTER_SECONDS`, so quick work shows
  nothing and leaves nothing behind;
* elsewhere, one log line every :data:`LOG_EVERY_SECONDS` while the work lasts, and a last
  one when it ends, only for work that logged any;
* nothing in a distributed rank other than 0, which does the same work.

Training's own progress (a Lightning progress bar, or a line per epoch) is
``serotiny.trainer_parts.progress``; it decides terminal or not with :func:`on_terminal`.

Example::

    for path in track(paths, "checking image files", total=len(paths)):
        check(path)

    with watch_file(destination, total_bytes=size, description="downloading best.ckpt"):
        download(to=destination)
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Work that ends sooner shows no bar.
SHOW_AFTER_SECONDS = 1.0
#: Away from a terminal, at most one progress line this often.
LOG_EVERY_SECONDS = 30.0
#: A bar redraws at most this often (a rich update costs microseconds; items can be cheaper).
_REDRAW_SECONDS = 0.1
#: ``track`` looks at the clock once per this many items (a clock read costs more than a
#: cheap item, such as a file's existence check).
_TRACK_STRIDE = 64
#: A file being written is measured this often.
_POLL_SECONDS = 0.2


def on_terminal() -> bool:
    """Whether progress is drawn (stderr is a terminal) rather than logged (a file, a pipe)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def extra_rank() -> bool:
    """Whether this process is a distributed rank other than 0 (Lightning's ``RANK`` and
    ``LOCAL_RANK``, srun's ``SLURM_PROCID``)."""
    names = ("RANK", "LOCAL_RANK", "SLURM_PROCID")
    return any(os.environ.get(name, "0") not in ("", "0") for name in names)


class Reporter:
    """Shows how far some work of ``total`` units has come; see the module's docstring.

    Call :meth:`update` as often as you like (it is cheap between redraws) and
    :meth:`close` at the end. ``terminal`` forces a bar (True) or log lines (False);
    by default :func:`on_terminal` decides.
    """

    def __init__(
        self,
        description: str,
        total: float | None,
        unit: str = "",
        terminal: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.completed = 0.0
        self.started = time.monotonic()
        self._terminal = on_terminal() if terminal is None else terminal
        self._bar: Any = None
        self._task: Any = None
        wait = SHOW_AFTER_SECONDS if self._terminal else LOG_EVERY_SECONDS
        # Each DDP rank does the same work; rank 0 shows it for all, on the same terminal.
        self._next_check = math.inf if extra_rank() else self.started + wait
        self._logged = False

    def update(self, completed: float) -> None:
        """Record that ``completed`` units are done; redraw or log if it is time to."""
        self.completed = completed
        now = time.monotonic()
        if now < self._next_check:
            return
        if not self._terminal:
            log.info("%s: %s", self.description, self._amount())
            self._logged = True
            self._next_check = now + LOG_EVERY_SECONDS
            return
        if self._bar is None:
            self._start_bar()
        self._bar.update(self._task, completed=completed)
        self._next_check = now + _REDRAW_SECONDS

    def close(self) -> None:
        """End the display: remove the bar, or log the last line if any was logged."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._logged:
            seconds = time.monotonic() - self.started
            log.info("%s: done, %s in %.0f s", self.description, self._amount(), seconds)
            self._logged = False

    def _amount(self) -> str:
        if self.unit == "B":
            done = _bytes(self.completed)
            return f"{done} of {_bytes(self.total)}" if self.total else done
        total = f"/{self.total:,.0f}" if self.total else ""
        return f"{self.completed:,.0f}{total}{self.unit}"

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        amounts = (
            [DownloadColumn(), TransferSpeedColumn()]
            if self.unit == "B"
            else [MofNCompleteColumn()]
        )
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            *amounts,
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(self.description, total=self.total)
        self._bar.start()


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items``, showing how many are done (of ``total``, or ``len(items)``)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    reporter = Reporter(description, total)
    done = 0
    try:
        for done, item in enumerate(items, 1):  # noqa: B007  # ``done`` is read after the loop
            yield item
            if not done % _TRACK_STRIDE:
                reporter.update(done)
    finally:
        reporter.completed = done
        reporter.close()


@contextmanager
def watch_file(path: Path, total_bytes: int | None, description: str) -> Iterator[None]:
    """Show the size of ``path`` growing towards ``total_bytes`` while the block writes it."""
    reporter = Reporter(description, total_bytes, unit="B")
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            try:
                reporter.update(path.stat().st_size)
            except OSError:  # not created yet
                continue

    watcher = threading.Thread(target=poll, name="serotiny-watch-file", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        reporter.close()


def _bytes(amount: float | None) -> str:
    if amount is None:
        return "?"
    for scale in ("B", "kB", "MB", "GB"):
        if amount < 1000 or scale == "GB":
            return f"{amount:.0f} {scale}" if scale == "B" else f"{amount:.1f} {scale}"
        amount /= 1000
    raise AssertionError("unreachable")
