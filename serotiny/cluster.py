"""Where this process runs: its SLURM job and attempt, and which rank of a training it is.

Read from the environment only, so every layer may ask (the CLI before it composes a config,
the tracking layer when it records a run's owner, the train command when it decides who opens
the run). Nothing here imports MLflow or Lightning.

A DDP training has one process (rank) per device. Rank 0 opens or resumes the MLflow run and
owns its status; the other ranks come to be in one of two ways:

- Lightning's DDP launcher starts them from rank 0 by running the command again; rank 0 hands
  them its run and the checkpoint it resumes from through the environment (:func:`hand_over`).
- A cluster starts every rank itself: SLURM's ``srun`` runs the command once per task, and
  Lightning's SLURM environment tells each task its rank (:func:`srun_task_rank`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Rank 0 -> ranks that Lightning's launcher starts: the run, and the checkpoint to resume from.
RUN_ID_ENV = "SEROTINY_RUN_ID"
RESUME_CHECKPOINT_ENV = "SEROTINY_RESUME_CHECKPOINT"


@dataclass(frozen=True)
class SlurmJob:
    """The SLURM job step and attempt this process belongs to.

    SLURM keeps a job's id when it requeues it (after preemption or a node failure) and counts
    the attempt in ``SLURM_RESTART_COUNT``, which is how a requeued job knows its earlier
    attempt is gone. The step tells the tasks of one ``srun`` (the ranks of one DDP training)
    from other steps; the batch script itself has no step (``"none"``).
    """

    job_id: str
    step_id: str
    restart_count: str

    @property
    def step(self) -> str:
        """``<job>.<step>``, as SLURM writes a job step."""
        return f"{self.job_id}.{self.step_id}"

    @property
    def attempt(self) -> str:
        """``<job>.<step>.<restart count>``: this step in this attempt of the job."""
        return f"{self.step}.{self.restart_count}"


def slurm_job() -> SlurmJob | None:
    """This process's SLURM job, step and attempt; None outside a SLURM job."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    return SlurmJob(
        job_id=job_id,
        step_id=os.environ.get("SLURM_STEP_ID") or "none",
        restart_count=os.environ.get("SLURM_RESTART_COUNT") or "0",
    )


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


def handed_over() -> tuple[str, Path | None]:
    """An extra rank started by Lightning: the run and resume checkpoint rank 0 handed over."""
    resume_from = os.environ.get(RESUME_CHECKPOINT_ENV)
    return os.environ[RUN_ID_ENV], Path(resume_from) if resume_from else None
