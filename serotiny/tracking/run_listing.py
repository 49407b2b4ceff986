"""The runs of an experiment as they truly are, for ``serotiny runs``.

MLflow shows a run whose process was SIGKILLed or OOM-killed as RUNNING forever. The listing
tells a live run (its owner's pid on this host, or a fresh heartbeat) from a STALE one, and
can mark stale runs KILLED so that the MLflow UI tells the truth. One search call, however
many runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run

from serotiny.tracking.ownership import HOST_TAG, SLURM_JOB_TAG, process_alive

STALE = "STALE"
MAX_RUNS = 5000


@dataclass(frozen=True)
class RunRow:
    """One run of the listing."""

    run_id: str
    name: str
    status: str
    epoch: int | None
    monitor: str | None
    value: float | None
    started: float  # seconds since the epoch
    seconds: float  # how long it ran (until now for a live run)
    where: str


def true_status(run: Run, stale_after_seconds: float) -> str:
    """MLflow's status, except that a RUNNING run whose owner is gone is STALE."""
    status = run.info.status
    if status in ("RUNNING", "SCHEDULED") and not process_alive(run, stale_after_seconds):
        return STALE
    return status


def _row(run: Run, stale_after_seconds: float) -> RunRow:
    data, info = run.data, run.info
    monitor = data.params.get("checkpoint.monitor") or None
    epoch = data.metrics.get("epoch")
    started = (info.start_time or 0) / 1000
    ended = (info.end_time or 0) / 1000 or time.time()
    where = data.tags.get(HOST_TAG, "")
    if data.tags.get(SLURM_JOB_TAG):
        where = f"{where} (slurm {data.tags[SLURM_JOB_TAG]})".strip()
    return RunRow(
        run_id=info.run_id,
        name=str(info.run_name),
        status=true_status(run, stale_after_seconds),
        epoch=int(epoch) if epoch is not None else None,
        monitor=monitor,
        value=data.metrics.get(monitor) if monitor else None,
        started=started,
        seconds=max(0.0, ended - started),
        where=where,
    )


def list_runs(client: MlflowClient, experiment_id: str, stale_after_seconds: float) -> list[RunRow]:
    """Every active run of the experiment, newest first, with its true status."""
    runs = client.search_runs(
        [experiment_id], max_results=MAX_RUNS, order_by=["attributes.start_time DESC"]
    )
    return [_row(run, stale_after_seconds) for run in runs]


def mark_stale_killed(client: MlflowClient, rows: list[RunRow]) -> list[RunRow]:
    """Mark the STALE runs KILLED in MLflow; the rows marked."""
    stale = [row for row in rows if row.status == STALE]
    for row in stale:
        client.set_terminated(row.run_id, "KILLED")
    return stale
