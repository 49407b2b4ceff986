"""The Optuna study of a search, stored in the project so that a killed search resumes.

A study in a persistent storage (by default ``sqlite:///<project>/optuna.db``, beside
MLflow's ``mlruns.db``) outlives the process that runs it: a rerun of the same search
loads it and asks only for the trials still missing. Trials that a killed process left
RUNNING are recorded as FAILED, so that they are neither lost nor counted twice; we tell
those apart from trials a live process is still running the way serotiny tells abandoned
MLflow runs from live ones: the owner (host, pid, SLURM job attempt) recorded on each
trial, and Optuna's own heartbeat for owners on other hosts.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from serotiny.errors import SerotinyUserError
from serotiny.tracking.heartbeat import Beating
from serotiny.tracking.ownership import owner_gone, owner_tags

log = logging.getLogger(__name__)

# On a trial: the process running it; the epoch at which the pruner stopped it.
OWNER_ATTR = "serotiny.owner"
PRUNED_AT_ATTR = "serotiny.pruned_at_epoch"
# On the study: the pruner's spec (``_target_`` and arguments), for trials to build it.
PRUNER_ATTR = "serotiny.pruner"
RESULTS_FILE = "optimization_results.yaml"
# SQLite serialises writers; the search, its heartbeat and a trial's pruning reports all
# write to one file, so wait for the lock rather than fail at once.
_SQLITE_TIMEOUT_SECONDS = 60


class SearchConfigError(SerotinyUserError):
    """``hydra.sweeper`` settings that a search cannot run with."""


def engine_settings(url: str) -> dict[str, Any]:
    """SQLAlchemy engine arguments for a storage URL (a patient SQLite; its folder made)."""
    if not url.startswith("sqlite:///"):
        return {}
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return {"connect_args": {"timeout": _SQLITE_TIMEOUT_SECONDS}}


def open_storage(url: str, heartbeat_seconds: int, stale_after_seconds: int) -> RDBStorage:
    """Optuna's database storage at ``url``, with trial heartbeats switched on."""
    engine = engine_settings(url)
    with warnings.catch_warnings():  # heartbeats are marked experimental, and have been for years
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=max(1, int(heartbeat_seconds)),
            grace_period=max(1, int(stale_after_seconds)),
        )


def open_study(
    storage: RDBStorage | None, study_name: str, direction: str, sampler: Any = None
) -> optuna.Study:
    """Load the study named ``study_name`` from ``storage``, or create it."""
    if direction not in ("minimize", "maximize"):
        raise SearchConfigError(
            f"hydra.sweeper.direction is '{direction}': use minimize or maximize (serotiny "
            "train returns one value, the monitored metric)"
        )
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction,
        sampler=sampler,
        load_if_exists=True,
    )
    stored = study.direction.name.lower()
    if stored != direction:
        raise SearchConfigError(
            f"study '{study_name}' was made to {stored}, not to {direction}: set "
            f"hydra.sweeper.direction={stored}, or choose another hydra.sweeper.study_name"
        )
    return study


def claim(trial: optuna.Trial) -> None:
    """Record which process runs ``trial``, so that a later search knows if it is gone."""
    trial.set_user_attr(OWNER_ATTR, owner_tags())


def fail_abandoned_trials(study: optuna.Study) -> list[int]:
    """Record as FAILED every RUNNING trial whose process is gone; return their numbers."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER_ATTR) or {}
        if owner_gone(owner):
            with contextlib.suppress(UpdateFinishedTrialError):  # another process was first
                study.tell(trial.number, state=TrialState.FAIL)
                failed.append(trial.number)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():  # owners on other hosts whose heartbeat stopped
        warnings.simplefilter("ignore", ExperimentalWarning)
        fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    failed += sorted(after - before)
    for number in failed:
        log.warning("trial %d was left running by a process now gone: recorded as failed", number)
    return failed


def trials_left(study: optuna.Study, n_trials: int) -> int:
    """How many trials the search must still ask for: ``n_trials`` counts every trial the
    study holds, finished (complete, pruned, failed) or running in a live process."""
    return max(0, n_trials - len(study.get_trials(deepcopy=False)))


def fresh_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` as stored now (attributes another process may have written)."""
    (trial,) = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    return trial


def results(study: optuna.Study) -> dict[str, Any]:
    """What the search found, as Hydra's Optuna sweeper wrote it (``best_params``,
    ``best_value``), with how many trials ended in each state."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    found: dict[str, Any] = {"name": "optuna", "study_name": study.study_name}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best = study.best_trial
        found.update(best_trial=best.number, best_params=best.params, best_value=best.value)
    else:
        found.update(best_trial=None, best_params=None, best_value=None)
    return {**found, "trials": counts}


class TrialHeartbeat(Beating):
    """Context manager that records an Optuna heartbeat for trials in flight, so that a
    search on another host can tell them from trials whose process died. The first beat is
    recorded on entering: Optuna never takes a trial without any heartbeat as stale."""

    def __init__(self, storage: RDBStorage | None, study_name: str, numbers: Iterable[int]) -> None:
        super().__init__((storage.get_heartbeat_interval() if storage else None) or 30)
        self.storage = storage
        self.trial_ids: list[int] = []
        if storage is not None:
            study_id = storage.get_study_id_from_name(study_name)
            self.trial_ids = [
                storage.get_trial_id_from_study_id_trial_number(study_id, number)
                for number in numbers
            ]

    def beat(self) -> None:
        """Record that the trials' process is alive now."""
        if self.storage is None:
            return
        for trial_id in self.trial_ids:
            self.storage.record_heartbeat(trial_id)
