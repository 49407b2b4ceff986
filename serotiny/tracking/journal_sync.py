"""Sending the journals a project keeps on disk: ``serotiny sync``, and before a rerun.

A training whose MLflow server was away when it ended leaves the rest of its journal in its
output folder. ``serotiny sync`` sends every such journal of the project's store; rerunning
the same command sends the journals of its run first, so that the run-state table sees the
run as it truly ended (and resumes it from its newest checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient

from serotiny.settings.secrets import redact
from serotiny.tracking.journal import (
    JOURNAL_FILE,
    has_unsent_records,
    journals_under,
    read_header,
)
from serotiny.tracking.journal_drain import GroupSender, drain_once

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What :func:`sync_journals` did: the journals sent whole, and those still waiting."""

    sent: list[Path] = field(default_factory=list)
    waiting: list[Path] = field(default_factory=list)


def sync_journals(
    root: Path,
    client: MlflowClient,
    run_name: str | None = None,
    experiment_name: str | None = None,
) -> SyncReport:
    """Send the unsent records of every journal under ``root`` that belongs to ``client``'s
    store (and to run ``run_name`` of ``experiment_name``, when given)."""
    report = SyncReport()
    store = redact(client.tracking_uri)
    for folder in journals_under(root):
        header = read_header(folder / JOURNAL_FILE)
        if header is None or header.tracking_uri != store:
            continue
        if run_name is not None and (header.run_name, header.experiment_name) != (
            run_name,
            experiment_name,
        ):
            continue
        if not has_unsent_records(folder):
            continue
        if drain_once(folder, GroupSender(client, header.run_id)):
            log.info("sent the journal of run '%s' (%s)", header.run_name, folder)
            report.sent.append(folder)
        else:
            report.waiting.append(folder)
    return report
