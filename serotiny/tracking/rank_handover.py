"""How the extra ranks of a DDP training that SLURM's ``srun`` started find rank 0's run.

Each task srun starts runs the whole command; nothing passes from rank 0 to the others, so
they find its run in MLflow: rank 0 records the checkpoint it resumes from and its output
folder, stamped with the SLURM job step and attempt they are for, in one batch of tags (logged
with the run's owner by the heartbeat). The extra ranks wait for that stamp, not for the
run's owner tags: rank 0 claims the run (and so tags its owner) before it has chosen its
checkpoint, and until its heartbeat starts the run still holds the handover of the attempt
before, whose checkpoint the extra ranks must not resume from. Ranks that Lightning's
launcher starts are handed the run through the environment instead (``serotiny.cluster``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from serotiny.cluster import handed_over, slurm_job, srun_task_rank
from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import Settings
from serotiny.tracking.artifacts import download_checkpoint
from serotiny.tracking.run_names import find_runs_by_name
from serotiny.tracking.store import connect

log = logging.getLogger(__name__)

RESUME_TAG = "serotiny.resume.checkpoint"
OUTPUT_DIR_TAG = "serotiny.output_dir"
# The SLURM job step and attempt (``SlurmJob.attempt``) that the two tags above are for.
HANDOVER_TAG = "serotiny.slurm.handover"
NO_CHECKPOINT = "none"
# How long a rank started by srun waits for rank 0 to open the run.
JOIN_TIMEOUT_SECONDS = 600.0
JOIN_POLL_SECONDS = 1.0


def handover_tags(resume_which: str | None, folder: Path) -> dict[str, str]:
    """Rank 0: what ranks started by srun need, as tags logged with the run's owner in one
    batch, stamped with this job step and attempt (no stamp outside SLURM)."""
    tags = {RESUME_TAG: resume_which or NO_CHECKPOINT, OUTPUT_DIR_TAG: str(folder)}
    job = slurm_job()
    if job is not None:
        tags[HANDOVER_TAG] = job.attempt
    return tags


@dataclass(frozen=True)
class JoinedRun:
    """What an extra rank trains in: rank 0's run, output folder and resume checkpoint."""

    run_id: str
    folder: Path
    resume_from: Path | None


class RankZeroNotFoundError(SerotinyUserError):
    """An extra rank found no run that its rank 0 opened."""


def join_rank_zero(settings: Settings, scratch: Path, default_folder: Path) -> JoinedRun | None:
    """The run this extra rank trains in; None when rank 0 skips it (it finished before).

    ``scratch`` is where a rank started by srun downloads the checkpoint rank 0 resumes from;
    ``default_folder`` is the output folder of a rank started by Lightning's launcher, which
    Lightning points at rank 0's.
    """
    if not srun_task_rank():
        run_id, resume_from = handed_over()
        return JoinedRun(run_id, default_folder, resume_from)
    client = connect(settings.mlflow.tracking_uri)
    run = _wait_for_rank_zero(client, settings)
    if run is None:
        return None
    which = run.data.tags.get(RESUME_TAG, NO_CHECKPOINT)
    resume_from = None
    if which != NO_CHECKPOINT:
        resume_from = download_checkpoint(client, run.info.run_id, which, scratch)
    folder = Path(run.data.tags.get(OUTPUT_DIR_TAG) or default_folder)
    log.info("rank %s joins run '%s' (%s)", srun_task_rank(), run.info.run_name, run.info.run_id)
    return JoinedRun(run.info.run_id, folder, resume_from)


def _rank_zero_run(client: MlflowClient, settings: Settings) -> Run | None | bool:
    """Rank 0's RUNNING run, handed over for this job step and attempt; None if the named
    run had finished before (rank 0 skips it then); False while neither is found."""
    tracking = settings.mlflow
    experiment = client.get_experiment_by_name(tracking.experiment_name)
    job = slurm_job()
    if experiment is None or job is None:
        return False
    owned = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{HANDOVER_TAG}` = '{job.attempt}' and attributes.status = 'RUNNING'",
    )
    if tracking.run_name:
        owned = [run for run in owned if run.info.run_name == tracking.run_name]
    if len(owned) == 1:
        return owned[0]
    if tracking.run_name and not settings.resume.retrain_finished:
        named = find_runs_by_name(client, experiment.experiment_id, tracking.run_name)
        if len(named) == 1 and named[0].info.status == "FINISHED":
            return None
    return False


def _wait_for_rank_zero(client: MlflowClient, settings: Settings) -> Run | None:
    """Poll MLflow until rank 0 owns a RUNNING run for this job step and attempt."""
    deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        found = _rank_zero_run(client, settings)
        if found is not False:
            return found  # type: ignore[return-value]
        time.sleep(JOIN_POLL_SECONDS)
    raise RankZeroNotFoundError(
        f"rank {srun_task_rank()} waited {JOIN_TIMEOUT_SECONDS:.0f} s for rank 0 to open run "
        f"'{settings.mlflow.run_name or '(unnamed)'}' in experiment "
        f"'{settings.mlflow.experiment_name}': see rank 0's output"
    )
