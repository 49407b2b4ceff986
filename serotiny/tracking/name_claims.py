"""One run per name on any store, though MLflow has no compare-and-set.

Two commands started at once with one run name must not both train it. On a SQLite store
the store's file lock makes "look the name up, then create or reopen the run" one step on
one machine. An MLflow server (shared by many machines) has no lock to take, so the claim
is made safe without one:

* **A new run** is created first, then resolved: after a short settle time, every active
  run of that name is looked up, and the first one made (earliest start time, then the
  smallest id) is the winner, the same for every command that looks. A loser deletes its
  own run and stops with one line.
* **An existing run** (resumed) gets a claim tag of the command's own, named after the time
  it was made (``serotiny.claim.<ms>.<token>``); after the settle time, the run's recent
  claim tags are read, and the earliest wins, again the same for everyone who looks: a
  command that comes late sees the earlier claim and stops. Only the winner reopens the run
  (its status, its owner); the losers change nothing but their own tag, which they remove.
  A claim made before the run last ended is spent: its command is over (a resume that
  failed at once is rerun at once, not refused).

The rules hold as long as the machines' clocks agree to within the settle time, and no
command stalls longer than :data:`CLAIM_WINDOW_SECONDS` between looking the name up and
writing its claim (a command that does is refused, which is safe).
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
CLAIM_PREFIX = f"{CLAIM_TAG}."
# Claims of an existing run this recent take part in a contest; older ones are spent.
CLAIM_WINDOW_SECONDS = 30.0


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


def _claim_time(tag: str) -> int:
    return int(tag[len(CLAIM_PREFIX) :].split(".", 1)[0])


def claim_existing_run(
    client: MlflowClient, run: Run, settle_seconds: float, mark_failed_first: bool = False
) -> None:
    """Reopen ``run`` (RUNNING, owned by this process) if this command's claim is the first;
    with ``mark_failed_first``, the earlier attempt is recorded as FAILED first."""
    run_id = run.info.run_id
    stamp = int(time.time() * 1000)
    mine = f"{CLAIM_PREFIX}{stamp:013d}.{secrets.token_hex(4)}"
    client.set_tag(run_id, mine, "claim")
    time.sleep(settle_seconds)
    tags = client.get_run(run_id).data.tags
    claims = sorted(tag for tag in tags if tag.startswith(CLAIM_PREFIX))
    # The run's end as this command found it: claims before it belong to commands that ended.
    # (Never later than this command's own claim, whatever another machine's clock said.)
    since = min(stamp, max(stamp - CLAIM_WINDOW_SECONDS * 1000, (run.info.end_time or 0) + 1))
    recent = [tag for tag in claims if _claim_time(tag) >= since]
    if recent[0] != mine:
        client.delete_tag(run_id, mine)
        raise _lost(str(run.info.run_name), run_id)
    for spent in (tag for tag in claims if tag not in recent):
        client.delete_tag(run_id, spent)
    if mark_failed_first:
        client.set_terminated(run_id, "FAILED")
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in owner_tags().items()])
    client.update_run(run_id, status="RUNNING")
