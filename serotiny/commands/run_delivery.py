"""A training's records on their way to MLflow: the run's journal, sent in the background,
and what the command does at its end if MLflow has not taken all of them yet."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serotiny.errors import TrackingIncomplete
from serotiny.settings.schema import Settings
from serotiny.settings.secrets import redact
from serotiny.tracking.claims import ClaimedRun
from serotiny.tracking.journal import JOURNAL_FOLDER, JournalHeader, RunJournal
from serotiny.tracking.journal_drain import GroupSender, JournalDrain
from serotiny.tracking.journal_sync import sync_journals
from serotiny.tracking.store import connect

log = logging.getLogger(__name__)


def send_earlier_journals(settings: Settings) -> None:
    """Before a rerun claims its run: send what an earlier attempt left in its journal, so
    that the run-state table sees the run as it truly ended."""
    tracking = settings.mlflow
    if not tracking.run_name:
        return
    client = connect(tracking.tracking_uri)
    report = sync_journals(
        Path(settings.paths.root), client, tracking.run_name, tracking.experiment_name
    )
    if report.waiting:
        log.warning("MLflow took only part of the earlier journal of '%s'", tracking.run_name)


def open_journal(folder: Path, run: ClaimedRun) -> RunJournal:
    """The run's journal in this command's output folder."""
    header = JournalHeader(run.run_id, run.run_name, run.experiment_name, redact(run.tracking_uri))
    return RunJournal(folder / JOURNAL_FOLDER, header)


@contextmanager
def delivered(run: ClaimedRun, journal: RunJournal, settings: Settings) -> Iterator[None]:
    """Send the journal to MLflow while the block runs, and wait for the rest at its end.

    When MLflow has not taken everything within ``mlflow.sync_timeout_seconds``, the block's
    own error (if any) goes on; otherwise :class:`~serotiny.errors.TrackingIncomplete` says
    where the records wait.
    """
    timeout = settings.mlflow.sync_timeout_seconds
    with JournalDrain(journal.folder, GroupSender(run.client, run.run_id)) as drain:
        failed = True
        try:
            yield
            failed = False
        finally:
            sent = drain.finish(timeout)
            journal.close()
            if not sent:
                message = (
                    f"run '{run.run_name}' ({run.run_id}) ended, but MLflow at "
                    f"{redact(run.tracking_uri)} has not taken all of its records within "
                    f"{timeout:.0f} s; they are safe in {journal.folder}: run `serotiny sync` "
                    "(or this command again) once the server answers"
                )
                if failed:
                    log.error("%s", message)
                else:
                    raise TrackingIncomplete(message)
