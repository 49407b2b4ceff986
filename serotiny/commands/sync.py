"""``serotiny sync``: send what trainings recorded while their MLflow server was away.

A training keeps every record in a journal in its output folder and sends it in the
background; when the server is still away at the end, the command says so and the journal
waits on disk. ``serotiny sync`` (from anywhere in the project, once the server answers)
sends every such journal of the project's store, and draws the loss curves of the runs that
finished meanwhile. ``++mlflow.run_name=NAME`` limits it to one run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from serotiny.commands.job_setup import start_job
from serotiny.errors import TrackingIncomplete
from serotiny.tracking.artifacts import list_artifact_paths
from serotiny.tracking.journal import JOURNAL_FILE, read_header
from serotiny.tracking.journal_sync import SyncReport, sync_journals
from serotiny.tracking.run_pictures import LOSS_CURVES_ARTIFACT, log_loss_curves
from serotiny.tracking.store import connect, redacted_uri

log = logging.getLogger(__name__)


def sync(cfg: DictConfig) -> SyncReport:
    """Send the project's unsent journals to its tracking store; say what is left."""
    cfg, settings = start_job(cfg)
    tracking = settings.mlflow
    client = connect(tracking.tracking_uri)
    name = tracking.run_name
    report = sync_journals(
        Path(settings.paths.root), client, name, tracking.experiment_name if name else None
    )
    for folder in report.sent:
        header = read_header(folder / JOURNAL_FILE)
        assert header is not None
        run = client.get_run(header.run_id)
        pictures = list_artifact_paths(client, header.run_id, "plots")
        if run.info.status == "FINISHED" and LOSS_CURVES_ARTIFACT not in pictures:
            log_loss_curves(client, header.run_id, header.run_name, folder.parent / "plots")
    print(f"sent {len(report.sent)} journal(s) to {redacted_uri(client)}")
    if report.waiting:
        raise TrackingIncomplete(
            f"{len(report.waiting)} journal(s) still wait (MLflow did not take them): "
            + ", ".join(str(folder) for folder in report.waiting)
        )
    return report
