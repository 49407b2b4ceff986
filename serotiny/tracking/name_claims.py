"""One run per name on any store, though MLflow has no compare-and-set.

Two commands started at once with one run name must not both train it. On a SQLite store
the store's file lock makes "look the name up, then create or reopen the run" one step on
one machine. An MLflow server (shared by many machines) has no lock to take, so the claim
is made safe without one:

* **A new run** is created first, then resolved: after a short settle time, every active
  run of that name is looked up, and the first one made (earliest start time, then the
  smallest id) is the winner, the same for every command that looks. A loser deletes its
  own run and stops with one line.
* **An existing run** (resumed) is reopened with a claim token of the command's own in its
  tags; after the settle time the run's token is read back. The store keeps one value per
  tag, so exactly one command finds its own token there: it trains, the others stop.

Both rules hold as long as no command stalls longer than the settle time between looking
the name up and writing its claim, and the machines' clocks agree to within it.
"""

from __future__ import annotations

import secrets
import time

from mlflow import MlflowClient
from mlflow.entities import Run, RunTag

from serotiny.errors import RunLookupError
from serotiny.tracking.ownership import owner_tags
from serotiny.tracking.run_names import find_runs_by_name

CLAIM_TAG = "serotiny.claim"


class ClaimLostError(RunLookupError):
    """Another command claimed the same run name at the same moment."""


def _lost(run_name: str, winner: str) -> ClaimLostError:
    return ClaimLostError(
        f"run '{run_name}' was claimed by another command at the same moment (run {winner}), "
        "which trains it; rerun this command later, or choose another ++mlflow.run_name"
    )


def claim_new_run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    tags: dict[str, str],
    settle_seconds: float,
) -> str:
    """Create run ``run_name`` and keep it if it is the first of that name; its id."""
    claim = {CLAIM_TAG: secrets.token_hex(8), **owner_tags()}
    run = client.create_run(experiment_id, run_name=run_name, tags={**tags, **claim})
    time.sleep(settle_seconds)
    named = find_runs_by_name(client, experiment_id, run_name)
    first = min(named, key=lambda found: (found.info.start_time or 0, found.info.run_id))
    if first.info.run_id != run.info.run_id:
        client.delete_run(run.info.run_id)
        raise _lost(run_name, first.info.run_id)
    return run.info.run_id


def claim_existing_run(client: MlflowClient, run: Run, settle_seconds: float) -> None:
    """Reopen ``run`` (RUNNING, owned by this process) if no other command claims it too."""
    token = secrets.token_hex(8)
    claim = {CLAIM_TAG: token, **owner_tags()}
    client.log_batch(run.info.run_id, tags=[RunTag(key, value) for key, value in claim.items()])
    client.update_run(run.info.run_id, status="RUNNING")
    time.sleep(settle_seconds)
    if client.get_run(run.info.run_id).data.tags.get(CLAIM_TAG) != token:
        raise _lost(str(run.info.run_name), run.info.run_id)
