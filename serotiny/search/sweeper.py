"""serotiny's Optuna sweeper for Hydra: ``serotiny train --multirun hparams_search=optuna``.

Hydra's own Optuna plugin pins optuna below 3, whose stored studies fail on SQLAlchemy 2
(which MLflow 3 brings); so serotiny drives a current Optuna itself, with what a search
needs to survive a crash:

- the study lives in a database (``hydra.sweeper.storage``, by default beside MLflow's
  store in the project) and a rerun of the same command loads it: finished trials are not
  repeated, and trials a killed process left running are recorded as failed;
- ``n_trials`` is the size of the study: the search asks for trials until the study holds
  ``n_trials`` of them, whatever they ended as (complete, pruned, failed), counting trials
  a live process is still running. A rerun of a finished search trains nothing; a larger
  ``n_trials`` extends it;
- every trial is a ``serotiny train`` job with the drawn values as overrides, plus
  ``++search.storage``, ``++search.study_name``, ``++search.trial_number`` (the trial's
  number in the study, stable across reruns: name runs after it) and
  ``++mlflow.parent_run_id``: every trial is an MLflow run under one parent run, named
  after the study. Hydra's job number equals the trial number too;
- the study's best trial goes to ``optimization_results.yaml`` in the sweep folder, as
  Hydra's plugin wrote it (``best_params``, ``best_value``).

Hydra builds sweepers only from the ``hydra_plugins`` namespace; the class Hydra sees is
``hydra_plugins.serotiny_search.optuna_sweeper.OptunaSweeper``, which hands over to this one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from serotiny.search import parent_run
from serotiny.search import study as studies
from serotiny.search.space import SearchSpace, search_space, trial_overrides
from serotiny.tracking.heartbeat import Heartbeat

log = logging.getLogger(__name__)

# What a trial's run name must refer to, so that each trial has a run of its own.
TRIAL_NAME_KEYS = ("search.trial_number", "hydra:job.num")


def _quoted(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_run_name(config: DictConfig) -> None:
    """Refuse a trial run name that does not tell trials apart.

    With one name for several trials, the second would find the first's run finished and
    return its value instead of training: a search that silently learns nothing.
    """
    mlflow = OmegaConf.to_container(config.get("mlflow") or OmegaConf.create(), resolve=False)
    name = mlflow.get("run_name") if isinstance(mlflow, dict) else None
    if name is not None and not any(key in str(name) for key in TRIAL_NAME_KEYS):
        raise studies.SearchConfigError(
            f"mlflow.run_name '{name}' is the same for every trial of a search: build it "
            "from the trial number, e.g. ${search.study_name}-trial${search.trial_number}"
        )


def consecutive_runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """(first number, count) of each run of consecutive numbers, in order."""
    groups: list[tuple[int, int]] = []
    for number in numbers:
        if groups and groups[-1][0] + groups[-1][1] == number:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((number, 1))
    return groups


class OptunaSweeper(Sweeper):
    """A Hydra sweeper that searches with Optuna in a study that outlives the process.

    Settings (``hydra.sweeper.*``, see ``serotiny/config/hydra/sweeper/optuna.yaml``):
    ``study_name``, ``storage`` (a database URL; null keeps the study in memory, with no
    resume), ``direction`` (minimize or maximize), ``n_trials``, ``n_jobs`` (trials handed
    to the launcher at once), ``sampler`` and ``pruner`` (``_target_`` specs of Optuna
    classes), ``params`` (the search space in Hydra's sweep syntax), ``max_failure_rate``
    (the share of failed trials in a batch above which the search stops).
    """

    def __init__(
        self,
        study_name: str,
        storage: str | None = None,
        direction: str = "minimize",
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: DictConfig | None = None,
        pruner: DictConfig | None = None,
        params: DictConfig | None = None,
        max_failure_rate: float = 0.0,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise studies.SearchConfigError(
                f"hydra.sweeper.max_failure_rate is {max_failure_rate}: give a share from 0 to 1"
            )
        self.study_name = str(study_name)
        self.storage_url = None if storage is None else str(storage)
        self.direction = str(direction)
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.sampler = sampler
        self.pruner = pruner
        self.params = params
        self.max_failure_rate = float(max_failure_rate)
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the composed config and build the launcher that runs the trials."""
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> dict[str, Any]:
        """Run the search to ``n_trials`` trials; return (and write) what it found."""
        assert self.config is not None
        space = search_space(self.params, arguments)
        check_run_name(self.config)  # before anything is stored
        resume = self.config.get("resume") or {}
        heartbeat = int(resume.get("heartbeat_seconds", 30))
        stale_after = int(resume.get("stale_after_seconds", 90))
        storage = None
        if self.storage_url is not None:
            storage = studies.open_storage(self.storage_url, heartbeat, stale_after)
        study = self._open_study(storage)
        studies.fail_abandoned_trials(study)

        search = parent_run.open_search_run(self.config.mlflow, self.study_name, self.storage_url)
        parent_run.fail_abandoned_trial_runs(search, stale_after)
        with Heartbeat(search.client, search.run_id, heartbeat):
            try:
                self._run_trials(study, storage, space, search.run_id)
            except BaseException as stop:
                search.client.set_terminated(search.run_id, parent_run.ended_status(stop))
                raise
        found = studies.results(study)
        parent_run.record_best(search, found["best_trial"], found["best_value"])
        search.client.set_terminated(search.run_id, "FINISHED")
        folder = Path(str(self.config.hydra.sweep.dir))
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(found), folder / studies.RESULTS_FILE)
        best = (found["best_trial"], found["best_value"], found["best_params"])
        log.info("best trial %s: value %s, %s", *best)
        return found

    def _open_study(self, storage: Any) -> optuna.Study:
        """The stored study with this search's sampler, and its pruner recorded for trials.

        A seeded sampler is seeded with the seed plus the number of trials the study has
        already: a fresh search is reproducible, and a resumed one does not draw again the
        values its first trials drew.
        """
        study = studies.open_study(storage, self.study_name, self.direction)
        if self.sampler:
            spec = OmegaConf.to_container(self.sampler, resolve=True)
            assert isinstance(spec, dict)
            if spec.get("seed") is not None:
                spec["seed"] = int(spec["seed"]) + len(study.get_trials(deepcopy=False))
            study.sampler = instantiate(spec)
        pruner = OmegaConf.to_container(self.pruner, resolve=True) if self.pruner else None
        study.set_user_attr(studies.PRUNER_ATTR, pruner)
        return study

    def _run_trials(
        self, study: optuna.Study, storage: Any, space: SearchSpace, parent_run_id: str
    ) -> None:
        """Ask, launch and tell batches of ``n_jobs`` trials until the study is full."""
        while (left := studies.trials_left(study, self.n_trials)) > 0:
            batch = [study.ask(space.distributions) for _ in range(min(left, self.n_jobs))]
            for trial in batch:
                studies.claim(trial)
            numbers = [trial.number for trial in batch]
            with studies.TrialHeartbeat(storage, study.study_name, numbers):
                try:
                    returns = self._launch(batch, space, parent_run_id)
                except BaseException:  # the search itself stops: these trials end with it
                    for number in numbers:
                        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                    raise
            told = [self._tell(study, t, ret) for t, ret in zip(batch, returns, strict=True)]
            errors = [error for error in told if error is not None]
            if errors and len(errors) / len(batch) > self.max_failure_rate:
                log.error(
                    "%d of %d trials failed (hydra.sweeper.max_failure_rate=%s): stopping",
                    len(errors),
                    len(batch),
                    self.max_failure_rate,
                )
                raise errors[0]

    def _trial_overrides(self, trial: optuna.Trial, space: SearchSpace, parent: str) -> list[str]:
        storage = "null" if self.storage_url is None else _quoted(self.storage_url)
        return [
            *trial_overrides(space, trial.params),
            f"++search.storage={storage}",
            f"++search.study_name={_quoted(self.study_name)}",
            f"++search.trial_number={trial.number}",
            f"++mlflow.parent_run_id={_quoted(parent)}",
        ]

    def _launch(
        self, batch: list[optuna.Trial], space: SearchSpace, parent: str
    ) -> list[JobReturn]:
        """Launch the batch so that each job's number (``hydra.job.num``, its output
        folder) is its trial's number."""
        assert self.launcher is not None
        overrides = [self._trial_overrides(trial, space, parent) for trial in batch]
        returns: list[JobReturn] = []
        start = 0
        for first, count in consecutive_runs([trial.number for trial in batch]):
            jobs = overrides[start : start + count]
            returns += self.launcher.launch(jobs, initial_job_idx=first)
            start += count
        return returns

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> Exception | None:
        """Record how a trial ended; return its error when it failed."""
        number = trial.number
        if ret.status is not JobStatus.COMPLETED:
            try:
                ret.return_value  # noqa: B018 - raises the job's exception
            except Exception as error:
                study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                log.warning("trial %d failed: %s", number, error)
                return error
        if studies.PRUNED_AT_ATTR in studies.fresh_trial(study, number).user_attrs:
            study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
            log.info("trial %d was pruned", number)
            return None
        try:
            value = float(ret.return_value)
        except (TypeError, ValueError):
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            error = ValueError(
                f"trial {number} returned {ret.return_value!r}, not a number: does the model "
                "log the monitored metric (checkpoint.monitor)?"
            )
            log.warning("%s", error)
            return error
        study.tell(number, value, skip_if_finished=True)
        return None
