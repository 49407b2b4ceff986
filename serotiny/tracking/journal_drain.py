"""Sending a run's journal to MLflow: in order, in the background, through outages.

:class:`JournalDrain` sends the committed records of a journal (``journal.py``) as they come,
from a thread of its own, so that training never waits on MLflow. When MLflow does not
answer, it waits and tries again, longer each time (up to :data:`MAX_BACKOFF_SECONDS`), for
as long as it takes; a record MLflow refuses for good (a param logged before with another
value, say) is left out with a warning rather than blocking the records after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from serotiny.tracking.artifact_copy import store_artifact
from serotiny.tracking.journal import has_unsent_records, unsent_groups, write_cursor

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 10.0
POLL_SECONDS = 0.25
# MLflow's log_batch limits.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
_TRANSIENT_WORDS = ("connection", "timed out", "timeout", "max retries", "database is locked")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says MLflow could not be reached now (try again), rather than that
    it refuses the record (leave it out)."""
    if isinstance(error, ConnectionError | TimeoutError | OSError):
        return True
    text = str(error).lower()
    if isinstance(error, MlflowException) and error.error_code in _TRANSIENT_CODES:
        return True
    return any(word in text for word in _TRANSIENT_WORDS)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class GroupSender:
    """Sends one committed group of records to the run (``send`` raises on a transient error)."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def send(self, group: list[dict[str, Any]]) -> None:
        """Send the group's records in order: batched values, files, then the status."""
        metrics: list[Metric] = []
        params: list[Param] = []
        tags: list[RunTag] = []
        for record in group:
            kind = record["kind"]
            if kind == "metrics":
                stamp, step = record["timestamp"], record["step"]
                metrics += [Metric(k, v, stamp, step) for k, v in record["values"].items()]
            elif kind == "params":
                params += [Param(k, v) for k, v in record["values"].items()]
            elif kind == "tags":
                tags += [RunTag(k, v) for k, v in record["values"].items()]
            elif kind in ("artifact", "status"):
                self._values(metrics, params, tags)
                metrics, params, tags = [], [], []
                self._other(record)
        self._values(metrics, params, tags)

    def _values(self, metrics: list[Metric], params: list[Param], tags: list[RunTag]) -> None:
        for batch in _chunks(metrics, MAX_METRICS):
            self._refusable(lambda b=batch: self.client.log_batch(self.run_id, metrics=b))
        for batch in _chunks(params, MAX_PARAMS):
            self._refusable(lambda b=batch: self.client.log_batch(self.run_id, params=b))
        for batch in _chunks(tags, MAX_TAGS):
            self._refusable(lambda b=batch: self.client.log_batch(self.run_id, tags=b))

    def _other(self, record: dict[str, Any]) -> None:
        if record["kind"] == "status":
            self._refusable(
                lambda: self.client.set_terminated(
                    self.run_id, record["status"], end_time=record["end_time"]
                )
            )
            return
        path = Path(record["path"])
        if not path.is_file():
            log.warning("left out of run %s: %s is gone", self.run_id, path)
            return
        self._refusable(
            lambda: store_artifact(self.client, self.run_id, path, record["artifact_path"])
        )

    def _refusable(self, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception as error:
            if is_transient(error):
                raise
            log.warning("MLflow refused a record of run %s: %s", self.run_id, error)


def coalesced(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records of several committed groups as one, each file stored once: a checkpoint
    saved again since (``last.ckpt`` every epoch) is sent in its newest form only.

    A checkpoint may so reach MLflow newer than the metrics sent with it, never older; a
    resume from it commits the metrics it carries again (``JournalLogger.commit_again``).
    """
    records = [record for group in groups for record in group]
    last_seen: dict[tuple[str, str], int] = {}
    for record in records:
        if record["kind"] == "artifact":
            last_seen[(record["artifact_path"], Path(record["path"]).name)] = record["seq"]
    return [
        record
        for record in records
        if record["kind"] != "artifact"
        or last_seen[(record["artifact_path"], Path(record["path"]).name)] == record["seq"]
    ]


def drain_once(folder: Path, sender: GroupSender) -> bool:
    """Send every committed group not sent yet, as one; True when all were sent, False when
    MLflow did not answer (the rest waits)."""
    groups = list(unsent_groups(folder))
    if not groups:
        return True
    try:
        sender.send(coalesced(groups))
    except Exception as error:
        if not is_transient(error):
            raise
        log.debug("MLflow did not answer (%s); the journal waits", error)
        return False
    write_cursor(folder, groups[-1][-1]["seq"])
    return True


class JournalDrain:
    """Sends a journal to MLflow from a background thread (a context manager).

    Args:
        folder: the journal's folder.
        sender: what sends a group to the run.
    """

    def __init__(self, folder: Path, sender: GroupSender) -> None:
        self.folder = folder
        self.sender = sender
        self._stop = threading.Event()
        self._wake = threading.Event()  # set to send at once (the last records of a command)
        self._sent = threading.Event()  # set each time everything committed was sent
        self._thread = threading.Thread(target=self._drain_until_stopped, daemon=True)
        self.outage_started: float | None = None

    def __enter__(self) -> JournalDrain:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=MAX_BACKOFF_SECONDS + 5)

    def finish(self, timeout: float) -> bool:
        """Send what is left at once, and wait up to ``timeout`` seconds for every committed
        record to be sent; whether they were."""
        deadline = time.monotonic() + timeout
        while has_unsent_records(self.folder):
            if time.monotonic() >= deadline:
                return False
            self._sent.clear()
            self._wake.set()
            self._sent.wait(timeout=min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return True

    def _drain_until_stopped(self) -> None:
        backoff = POLL_SECONDS
        while not self._stop.is_set():
            try:
                done = drain_once(self.folder, self.sender)
            except Exception:  # a bug must not stop training; the records stay on disk
                log.exception("sending the journal in %s failed", self.folder)
                done = False
            if done:
                if self.outage_started is not None:
                    log.info("MLflow answers again: the journal is sent")
                self.outage_started, backoff = None, POLL_SECONDS
                self._sent.set()
            else:
                self.outage_started = self.outage_started or time.monotonic()
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
            self._wake.wait(backoff)
            self._wake.clear()
