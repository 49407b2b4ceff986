"""A sweep that leaves out the jobs whose MLflow run already finished.

Rerunning a sweep after a crash, or with more values, should hand the launcher only the
jobs still to do. ``serotiny train`` skips a finished run itself, but only once it runs:
on a cluster every such job would still be submitted, wait in the queue, start and import
its libraries, to do nothing. :class:`SkipFinishedSweeper` is Hydra's basic sweeper (the
same sweep syntax, batches and output folders) that first composes each job's config as
the launcher will, resolves its ``mlflow.run_name``, and drops the job when its run is
FINISHED in MLflow — so no launcher (local, submitit's SLURM executor, ...) sees it.

A job is kept (and so decides for itself, as ``serotiny train`` does) when its run name is
not set or cannot be resolved here, when it asks for ``resume.retrain_finished``, or when
its name finds no run, a run in another state, or several runs. Name runs after the swept
values (``'++mlflow.run_name=seed_${seed}'``), not after ``hydra.job.num``: the jobs left
are numbered afresh.

Selected with ``hydra/sweeper=skip_finished`` (serotiny's packaged config); Hydra builds
sweepers only from the ``hydra_plugins`` namespace, where
``hydra_plugins.serotiny_search.finished_jobs.SkipFinishedSweeper`` stands for this one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

if TYPE_CHECKING:
    from mlflow import MlflowClient

from serotiny.tracking import SQLITE_PREFIX  # a light import: no MLflow

# Hydra imports every plugin whenever any Hydra app starts, so this module stays light: the
# tracking layer's MLflow modules are imported by the methods that use them.

log = logging.getLogger(__name__)

FINISHED = "FINISHED"


class SkipFinishedSweeper(BasicSweeper):
    """Hydra's basic sweeper, without the jobs whose named run already FINISHED."""

    def __init__(
        self, max_batch_size: int | None = None, params: dict[str, str] | None = None
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self._clients: dict[str, MlflowClient] = {}

    # BasicSweeper.sweep calls ``self.split_arguments(overrides, max_batch_size)`` once, to
    # build every batch; this is where the finished jobs leave, before anything launches.
    def split_arguments(  # type: ignore[override]
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """The sweep's batches of jobs (each a list of overrides), finished jobs left out."""
        (every_job,) = BasicSweeper.split_arguments(overrides, None)
        with _hydra_config_kept():
            remaining = [
                job for index, job in enumerate(every_job) if not self._finished(job, index)
            ]
        skipped = len(every_job) - len(remaining)
        if skipped:
            log.info("%d of %d jobs left out: their runs already finished", skipped, len(every_job))
        if not remaining:
            return []
        return list(BasicSweeper.split_overrides_to_chunks(remaining, max_batch_size))

    def _finished(self, job: Sequence[str], index: int) -> bool:
        """Whether ``job``'s named run is FINISHED in its MLflow store."""
        config = self._job_config(job, index)
        try:
            name = OmegaConf.select(config, "mlflow.run_name")
            tracking_uri = OmegaConf.select(config, "mlflow.tracking_uri")
            experiment_name = OmegaConf.select(config, "mlflow.experiment_name") or "default"
            retrain = OmegaConf.select(config, "resume.retrain_finished", default=False)
        except OmegaConfBaseException as error:  # an interpolation only the job can resolve
            log.debug("job #%d kept: its run name does not resolve here (%s)", index, error)
            return False
        if name is None or tracking_uri is None or retrain or _no_store_yet(str(tracking_uri)):
            return False
        client = self._client(str(tracking_uri))
        experiment = client.get_experiment_by_name(str(experiment_name))
        if experiment is None:
            return False
        from serotiny.tracking.run_names import find_runs_by_name

        runs = find_runs_by_name(client, experiment.experiment_id, str(name))
        if len(runs) == 1 and runs[0].info.status == FINISHED:
            log.info("job #%d left out: run '%s' already finished", index, name)
            return True
        return False

    def _job_config(self, job: Sequence[str], index: int) -> DictConfig:
        """Job ``index``'s config, composed and numbered as the launcher will."""
        assert self.hydra_context is not None and self.config is not None, "setup() first"
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        with open_dict(config.hydra.job):
            config.hydra.job.num = index
            config.hydra.job.id = f"job_id_for_{index}"
        # ``${hydra:...}`` interpolations read the job's Hydra config from this singleton.
        HydraConfig.instance().set_config(config)
        return config

    def _client(self, tracking_uri: str) -> MlflowClient:
        """One MLflow client per store, for every job of the sweep."""
        from serotiny.tracking.store import connect

        if tracking_uri not in self._clients:
            self._clients[tracking_uri] = connect(tracking_uri)
        return self._clients[tracking_uri]


def _no_store_yet(tracking_uri: str) -> bool:
    """Whether the URI names a SQLite store that does not exist yet (so holds no run; and
    opening it would create it, which the first job will do)."""
    return (
        tracking_uri.startswith(SQLITE_PREFIX)
        and not Path(tracking_uri[len(SQLITE_PREFIX) :]).exists()
    )


@contextmanager
def _hydra_config_kept() -> Iterator[None]:
    """Restore the sweep's own Hydra config after composing jobs' configs: the launcher
    hands that singleton's state to the jobs it starts."""
    hydra_config = HydraConfig.instance()
    kept = hydra_config.cfg
    try:
        yield
    finally:
        hydra_config.cfg = kept
