"""A background thread that keeps a RUNNING run's heartbeat fresh.

Lightning marks a run failed only on a Python exception; a SIGKILL or an out-of-memory
kill leaves it RUNNING forever. The heartbeat lets the next ``serotiny train`` with the
same name tell a live run (refuse) from an abandoned one (resume).
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType
from typing import Any, Self

from mlflow.entities import RunTag

from serotiny.tracking.ownership import HEARTBEAT_TAG, owner_tags


class Beating:
    """Context manager that calls :meth:`beat` when entered, then every
    ``interval_seconds`` from a daemon thread until it is exited. A beat that fails in the
    thread is skipped: the next one will do, and a missed beat must never stop the work
    it accompanies."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, daemon=True)

    def beat(self) -> None:
        """Record that the owning process is alive now."""
        raise NotImplementedError

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            with contextlib.suppress(Exception):
                self.beat()

    def __enter__(self) -> Self:
        self.beat()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Heartbeat(Beating):
    """Context manager that tags the run with its owner (host, pid, SLURM job), and with
    ``tags`` in the same batch, then beats every ``interval_seconds``."""

    def __init__(
        self,
        client: Any,
        run_id: str,
        interval_seconds: float,
        tags: dict[str, str] | None = None,
    ) -> None:
        super().__init__(interval_seconds)
        self.client = client
        self.run_id = run_id
        self.tags = tags or {}

    def beat(self) -> None:
        """Record that the owning process is alive now."""
        self.client.set_tag(self.run_id, HEARTBEAT_TAG, f"{time.time():.0f}")

    def __enter__(self) -> Self:
        tags = [RunTag(key, value) for key, value in {**owner_tags(), **self.tags}.items()]
        self.client.log_batch(self.run_id, tags=tags)
        return super().__enter__()
