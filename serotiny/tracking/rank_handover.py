"""Which process of a distributed training this is, and how the extra ranks join rank 0's run.

A DDP training has one process (rank) per device. Rank 0 opens or resumes the MLflow run and
owns its status; the other ranks train in it and log nothing of their own. They come to be
in one of two ways:

- Lightning's DDP launcher starts them from rank 0 by running the command again; rank 0
  hands them its run and the checkpoint it resumes from through the environment.
- A cluster starts every rank itself: SLURM's ``srun`` runs the command once per task (as
  ``hydra/launcher=slurm`` does with ``tasks_per_node`` set to the devices), and Lightning's
  SLURM environment tells each task its rank. Nothing passes from rank 0 to the others, so
  they find its run in MLflow: rank 0 records the SLURM job step and attempt that own the
  run, with the checkpoint it resumes from and its output folder, in one batch of tags.

This module reads the environment only; MLflow is imported by the functions that talk to it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from serotiny.errors import SerotinyUserError

log = logging.getLogger(__name__)

# Rank 0 -> ranks that Lightning's launcher starts: the run, and the checkpoint to resume from.
RUN_ID_ENV = "SEROTINY_RUN_ID"
RESUME_CHECKPOINT_ENV = "SEROTINY_RESUME_CHECKPOINT"
# Rank 0 -> ranks that srun starts, as tags of the run (logged with its owner's identity).
RESUME_TAG = "serotiny.resume.checkpoint"
OUTPUT_DIR_TAG = "serotiny.output_dir"
NO_CHECKPOINT = "none"
# How long a rank started by srun waits for rank 0 to open the run.
JOIN_TIMEOUT_SECONDS = 600.0
JOIN_POLL_SECONDS = 1.0


def srun_task_rank() -> int | None:
    """This task's global rank when SLURM started several tasks for one training, else None.

    The same rule as Lightning's ``SLURMEnvironment``: tasks started by ``srun``, unless the
    job is an interactive session (job name ``bash`` or ``interactive``).
    """
    if os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    tasks = os.environ.get("SLURM_NTASKS", "")
    if not tasks.isdigit() or int(tasks) < 2:
        return None
    return int(os.environ.get("SLURM_PROCID", "0"))


def started_by_lightning() -> bool:
    """Whether Lightning's DDP launcher started this process as an extra rank."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 and bool(os.environ.get(RUN_ID_ENV))


def is_extra_rank() -> bool:
    """Whether this process is a DDP rank other than the one that owns the MLflow run."""
    return started_by_lightning() or bool(srun_task_rank())


def hand_over(run_id: str, resume_from: Path | None) -> None:
    """Rank 0: leave the run and its resume checkpoint for the ranks Lightning will start."""
    os.environ[RUN_ID_ENV] = run_id
    os.environ[RESUME_CHECKPOINT_ENV] = str(resume_from or "")


def handover_tags(resume_which: str | None, folder: Path) -> dict[str, str]:
    """Rank 0: what ranks started by srun need, as tags logged with the run's owner."""
    return {RESUME_TAG: resume_which or NO_CHECKPOINT, OUTPUT_DIR_TAG: str(folder)}


@dataclass(frozen=True)
class JoinedRun:
    """What an extra rank trains in: rank 0's run, output folder and resume checkpoint."""

    run_id: str
    folder: Path
    resume_from: Path | None


class RankZeroNotFoundError(SerotinyUserError):
    """An extra rank found no run that its rank 0 opened."""


def join_rank_zero(cfg: DictConfig, scratch: Path, default_folder: Path) -> JoinedRun | None:
    """The run this extra rank trains in; None when rank 0 skips it (it finished before).

    ``scratch`` is where a rank started by srun downloads the checkpoint rank 0 resumes from;
    ``default_folder`` is the output folder of a rank started by Lightning's launcher, which
    Lightning points at rank 0's.
    """
    tracking = cfg.mlflow
    if not srun_task_rank():
        resume_from = os.environ.get(RESUME_CHECKPOINT_ENV)
        return JoinedRun(
            os.environ[RUN_ID_ENV], default_folder, Path(resume_from) if resume_from else None
        )

    from serotiny.ml_ops import mlflow_utils

    client = mlflow_utils.connect(str(tracking.tracking_uri))
    run = _wait_for_rank_zero(client, cfg)
    if run is None:
        return None
    which = run.data.tags.get(RESUME_TAG, NO_CHECKPOINT)
    resume_from = None
    if which != NO_CHECKPOINT:
        resume_from = mlflow_utils.download_checkpoint(client, run.info.run_id, which, scratch)
    folder = Path(run.data.tags.get(OUTPUT_DIR_TAG) or default_folder)
    log.info("rank %s joins run '%s' (%s)", srun_task_rank(), run.info.run_name, run.info.run_id)
    return JoinedRun(run.info.run_id, folder, resume_from)


def _wait_for_rank_zero(client: Any, cfg: DictConfig) -> Any | None:
    """Poll MLflow until rank 0 owns a RUNNING run for this job step and attempt.

    Returns None when the named run had finished before (rank 0 skips it then).
    """
    from serotiny.ml_ops import mlflow_utils
    from serotiny.ml_ops.run_state import slurm_identity

    tracking = cfg.mlflow
    experiment_name = str(tracking.get("experiment_name") or "default")
    run_name = tracking.get("run_name")
    retrain = bool((cfg.get("resume") or {}).get("retrain_finished", False))
    ownership = " and ".join(
        f"tags.`{tag}` = '{value}'" for tag, value in sorted(slurm_identity().items())
    )
    deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            owned = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"{ownership} and attributes.status = 'RUNNING'",
            )
            if run_name:
                owned = [run for run in owned if run.info.run_name == str(run_name)]
            if len(owned) == 1:
                return owned[0]
            if run_name and not retrain:
                named = mlflow_utils.find_runs_by_name(
                    client, experiment.experiment_id, str(run_name)
                )
                if len(named) == 1 and named[0].info.status == "FINISHED":
                    return None
        time.sleep(JOIN_POLL_SECONDS)
    raise RankZeroNotFoundError(
        f"rank {srun_task_rank()} waited {JOIN_TIMEOUT_SECONDS:.0f} s for rank 0 to open run "
        f"'{run_name or '(unnamed)'}' in experiment '{experiment_name}': see rank 0's output"
    )
