"""A run's durable local journal: what training tells MLflow, written to disk first.

Training never waits on tracking. Metrics, params, tags, checkpoint uploads and the run's
final status are appended to ``journal.jsonl`` in the run's output folder, and a background
worker (``journal_drain.py``) sends them to MLflow in order. An MLflow server that goes away
for a minute or for an hour slows nothing: the journal grows, and drains when the server is
back; if it is still away when training ends, the records wait on disk for ``serotiny sync``
(or a rerun of the command).

The journal is JSON lines, one record each, numbered by ``seq``. Records become sendable in
groups closed by a ``commit`` record: a checkpoint and the metrics logged up to it are
committed together, so MLflow's history never runs ahead of the newest checkpoint a resume
can start from. What was sent is remembered in ``journal.cursor`` (the last ``seq`` sent),
replaced atomically. Sending a record twice does no harm (metrics carry the timestamp they
were logged at, and MLflow keeps one row per key, step, value and timestamp), so a crash
between sending and moving the cursor loses nothing and duplicates nothing.

Nothing here imports MLflow: the training side writes, the drain sends.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serotiny.tracking import CHECKPOINT_ARTIFACT_DIR

JOURNAL_FILE = "journal.jsonl"
CURSOR_FILE = "journal.cursor"
JOURNAL_FOLDER = "tracking"


def now_ms() -> int:
    """The time in milliseconds, as MLflow stamps metrics."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class JournalHeader:
    """Which run a journal belongs to. The tracking URI is kept without credentials; who
    sends the journal gives the URI (with them) from the project's config."""

    run_id: str
    run_name: str
    experiment_name: str
    tracking_uri: str


class RunJournal:
    """Appends a run's records to its journal file (thread-safe; one writer per file).

    Args:
        folder: where ``journal.jsonl`` and ``journal.cursor`` live (made if missing).
        header: the run the journal belongs to, written as its first record.
    """

    def __init__(self, folder: Path, header: JournalHeader) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / JOURNAL_FILE
        self._lock = threading.Lock()
        self._seq = last_seq(self.path)
        self._handle = self.path.open("a", encoding="utf-8")
        if self._seq < 0:
            self._append({"kind": "run", **header.__dict__})
            self.commit()

    # -- what training records --------------------------------------------------------------
    def metrics(self, values: Mapping[str, float], step: int, timestamp: int | None = None) -> None:
        """Metric values at ``step`` (sent once a :meth:`commit` follows them)."""
        clean = {str(key): float(value) for key, value in values.items()}
        self._append(
            {
                "kind": "metrics",
                "step": int(step),
                "timestamp": timestamp or now_ms(),
                "values": clean,
            }
        )

    def params(self, values: Mapping[str, Any]) -> None:
        """Params (text values) of the run."""
        self._append({"kind": "params", "values": {str(k): str(v) for k, v in values.items()}})

    def tags(self, values: Mapping[str, str]) -> None:
        """Tags of the run."""
        self._append({"kind": "tags", "values": {str(k): str(v) for k, v in values.items()}})

    def artifact(self, path: Path, artifact_path: str) -> None:
        """A local file to store in the run under ``artifact_path`` (its content when sent)."""
        self._append(
            {"kind": "artifact", "path": str(Path(path).resolve()), "artifact_path": artifact_path}
        )

    def checkpoint_saved(self, path: Path) -> None:
        """A checkpoint file just written: store it among the run's checkpoints."""
        self.artifact(path, CHECKPOINT_ARTIFACT_DIR)

    def status(self, status: str) -> None:
        """The run's final status (``FINISHED``, ``FAILED``, ``KILLED``), committed at once."""
        self._append({"kind": "status", "status": status, "end_time": now_ms()})
        self.commit()

    def commit(self) -> None:
        """Make the records so far sendable, and durable on disk."""
        self._append({"kind": "commit"})
        with self._lock:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Flush and close the file (records already appended stay)."""
        with self._lock:
            if not self._handle.closed:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()

    def _append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            line = json.dumps({"seq": self._seq, **record}, separators=(",", ":"))
            self._handle.write(line + "\n")
            self._handle.flush()  # to the OS at once: a killed process loses nothing written


def read_records(path: Path, after: int = -1) -> Iterator[dict[str, Any]]:
    """The journal's whole records with ``seq`` above ``after``, in order (a torn last line,
    from a crash mid-write, is left out)."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn by a crash: never committed
            record = json.loads(line)
            if record["seq"] > after:
                yield record


def last_seq(path: Path) -> int:
    """The ``seq`` of the journal's last whole record (-1 for no journal)."""
    last = -1
    for record in read_records(path):
        last = record["seq"]
    return last


def read_header(path: Path) -> JournalHeader | None:
    """The run a journal file belongs to (None when it has no header yet)."""
    for record in read_records(path):
        if record["kind"] == "run":
            return JournalHeader(
                record["run_id"],
                record["run_name"],
                record["experiment_name"],
                record["tracking_uri"],
            )
        return None
    return None


def read_cursor(folder: Path) -> int:
    """The ``seq`` of the last record sent to MLflow (-1: none yet)."""
    try:
        return int((folder / CURSOR_FILE).read_text().strip() or -1)
    except FileNotFoundError:
        return -1


def write_cursor(folder: Path, seq: int) -> None:
    """Remember that every record up to ``seq`` was sent (atomically: a crash keeps the old)."""
    temporary = folder / f".{CURSOR_FILE}.partial"
    temporary.write_text(f"{seq}\n")
    os.replace(temporary, folder / CURSOR_FILE)


def unsent_groups(folder: Path) -> Iterator[list[dict[str, Any]]]:
    """The committed records not sent yet, as groups ending with their ``commit`` record."""
    group: list[dict[str, Any]] = []
    for record in read_records(folder / JOURNAL_FILE, after=read_cursor(folder)):
        group.append(record)
        if record["kind"] == "commit":
            yield group
            group = []


def has_unsent_records(folder: Path) -> bool:
    """Whether some committed record of the journal in ``folder`` was not sent yet."""
    return next(unsent_groups(folder), None) is not None


def journals_under(root: Path) -> Iterator[Path]:
    """Every journal folder under ``root`` (the project's ``outputs/`` and ``multirun/``)."""
    for name in ("outputs", "multirun"):
        base = root / name
        if base.is_dir():
            yield from sorted(path.parent for path in base.rglob(JOURNAL_FILE))
