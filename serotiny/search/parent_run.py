"""The MLflow run that a search's trials are nested under.

Every trial is a run of its own, trained by ``serotiny train`` and tagged with this run's
id (``mlflow.parentRunId``), so that MLflow shows a search as one parent with one child per
trial. The parent is named after the study and found again by that name, so a resumed
search keeps adding children to the same parent.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric

from serotiny.errors import RunLookupError
from serotiny.tracking.ownership import process_alive
from serotiny.tracking.run_names import find_runs_by_name
from serotiny.tracking.store import connect, get_or_create_experiment, redacted_uri, store_lock

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
STUDY_TAG = "serotiny.search.study"
STORAGE_TAG = "serotiny.search.storage"
BEST_TRIAL_TAG = "serotiny.search.best_trial"


@dataclass(frozen=True)
class SearchRun:
    """The parent run of a search."""

    client: MlflowClient
    experiment_id: str
    run_id: str
    run_name: str


def open_search_run(tracking: Any, study_name: str, storage_url: str | None) -> SearchRun:
    """Find the search's parent run (named ``study_name``) in ``tracking`` (the ``mlflow``
    settings: tracking_uri, experiment_name, artifact_location), or start it."""
    uri = str(tracking.tracking_uri)
    client = connect(uri)
    experiment_name = str(tracking.get("experiment_name") or "default")
    with store_lock(uri):
        experiment_id = get_or_create_experiment(
            client, experiment_name, tracking.get("artifact_location")
        )
        runs = find_runs_by_name(client, experiment_id, study_name)
        if len(runs) > 1 or (runs and STUDY_TAG not in runs[0].data.tags):
            raise RunLookupError(
                f"run name '{study_name}' in experiment '{experiment_name}' is taken by "
                f"{len(runs)} other run(s), not by a search's parent run: choose another "
                "hydra.sweeper.study_name"
            )
        if runs:
            run_id = runs[0].info.run_id
            client.update_run(run_id, status="RUNNING")
        else:
            tags = {STUDY_TAG: study_name}
            if storage_url:
                tags[STORAGE_TAG] = redacted_uri(storage_url)
            run_id = client.create_run(experiment_id, run_name=study_name, tags=tags).info.run_id
    verb = "resuming" if runs else "started"
    log.info("%s search '%s' (%s) in experiment '%s'", verb, study_name, run_id, experiment_name)
    return SearchRun(client, experiment_id, run_id, study_name)


def fail_abandoned_trial_runs(search: SearchRun, stale_after_seconds: float) -> list[str]:
    """Mark FAILED the parent's RUNNING trial runs whose process is gone; return their names.

    Their trials are recorded as failed in the study and are not trained again, so their
    runs must not look as if they were still going.
    """
    running = search.client.search_runs(
        [search.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{search.run_id}' and attributes.status = 'RUNNING'",
    )
    names = []
    for run in running:
        if not process_alive(run, stale_after_seconds):
            search.client.set_terminated(run.info.run_id, "FAILED")
            names.append(run.info.run_name)
    return names


def ended_status(stop: BaseException) -> str:
    """The status a search's parent run ends with when ``stop`` ends the search: KILLED
    for an interrupt or a termination signal, FAILED for anything else (a trial's error,
    a user error's exit)."""
    if isinstance(stop, KeyboardInterrupt):
        return "KILLED"
    if isinstance(stop, SystemExit) and stop.code == 128 + signal.SIGTERM:
        return "KILLED"
    return "FAILED"


def record_best(search: SearchRun, best_trial: int | None, best_value: float | None) -> None:
    """Show the study's best trial and value on the parent run."""
    if best_trial is None or best_value is None:
        return
    search.client.set_tag(search.run_id, BEST_TRIAL_TAG, str(best_trial))
    metric = Metric("best_value", float(best_value), int(time.time() * 1000), best_trial)
    search.client.log_batch(search.run_id, metrics=[metric])
