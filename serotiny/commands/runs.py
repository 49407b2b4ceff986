"""``serotiny runs``: the project's runs in an experiment, as they truly are.

A table of every run of the experiment (``mlflow.experiment_name``): its name, its status as
it truly is (RUNNING with a live heartbeat; STALE when its process is gone; FINISHED, FAILED,
KILLED), the epoch it reached, its monitored metric, when it started, how long it ran, and
where. ``serotiny runs --stale`` marks the stale ones KILLED, so that the MLflow UI tells the
truth too.
"""

from __future__ import annotations

import os
import time

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from serotiny.commands.job_setup import start_job
from serotiny.errors import RunLookupError
from serotiny.tracking.run_listing import STALE, RunRow, list_runs, mark_stale_killed
from serotiny.tracking.store import connect, redacted_uri

# Set by the CLI for `serotiny runs --stale` (serotiny.cli.main.MARK_STALE_ENV).
MARK_STALE_ENV = "SEROTINY_MARK_STALE"
_STYLES = {"RUNNING": "green", STALE: "yellow", "FAILED": "red", "KILLED": "magenta"}


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def runs_table(rows: list[RunRow], title: str) -> Table:
    """The rows as a rich table."""
    table = Table(title=title)
    for column in ("run", "status", "epoch", "metric", "started", "ran", "where"):
        table.add_column(column, justify="right" if column in ("epoch", "ran") else "left")
    for row in rows:
        metric = f"{row.monitor} {row.value:.4g}" if row.monitor and row.value is not None else ""
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.started))
        status = f"[{_STYLES[row.status]}]{row.status}[/]" if row.status in _STYLES else row.status
        epoch = "" if row.epoch is None else str(row.epoch)
        table.add_row(row.name, status, epoch, metric, started, _duration(row.seconds), row.where)
    return table


def runs(cfg: DictConfig) -> list[RunRow]:
    """Print the experiment's runs; mark the stale ones KILLED when the CLI was given
    ``--stale`` (which it passes on as ``SEROTINY_MARK_STALE=1``)."""
    mark_stale = os.environ.get(MARK_STALE_ENV) == "1"
    cfg, settings = start_job(cfg)
    tracking = settings.mlflow
    client = connect(tracking.tracking_uri)
    experiment = client.get_experiment_by_name(tracking.experiment_name)
    if experiment is None:
        raise RunLookupError(
            f"no MLflow experiment '{tracking.experiment_name}' at {redacted_uri(client)}; "
            "check ++mlflow.experiment_name"
        )
    rows = list_runs(client, experiment.experiment_id, settings.resume.stale_after_seconds)
    title = f"runs of experiment '{tracking.experiment_name}' at {redacted_uri(client)}"
    Console().print(runs_table(rows, title))
    if mark_stale:
        marked = mark_stale_killed(client, rows)
        print(f"marked {len(marked)} stale run(s) KILLED: {', '.join(r.name for r in marked)}")
    return rows
