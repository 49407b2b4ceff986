"""How the extra ranks that srun starts join rank 0's run: they take the checkpoint and
output folder that rank 0 handed over in this attempt of the job, never an earlier one's."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow.entities import RunTag

from serotiny.settings.schema import Settings, TrackingSettings
from serotiny.tracking import rank_handover
from serotiny.tracking.ownership import owner_tags
from serotiny.tracking.rank_handover import handover_tags, join_rank_zero
from serotiny.tracking.store import connect, get_or_create_experiment

NAME = "requeued"


@pytest.fixture
def rank_one_of_a_job(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """This process as rank 1 of a two-task job step that SLURM started (attempt 0)."""
    job = {
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NAME": "train",
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_RESTART_COUNT": "0",
    }
    for key, value in job.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(rank_handover, "JOIN_POLL_SECONDS", 0.05)
    return monkeypatch


def test_a_requeued_rank_waits_for_the_handover_of_its_own_attempt(
    rank_one_of_a_job: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = connect(uri)
    experiment = get_or_create_experiment(client, "default", str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment, run_name=NAME).info.run_id

    def log_tags(tags: dict[str, str]) -> None:
        client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])

    # Attempt 0 started without a checkpoint, saved one, and was killed with its node.
    log_tags({**owner_tags(), **handover_tags(None, tmp_path / "attempt0")})
    saved = tmp_path / "last.ckpt"
    saved.write_bytes(b"the weights of epoch 1")
    client.log_artifact(run_id, str(saved), "checkpoints")

    # Attempt 1: rank 0 claims the run (tagging itself its owner) before it hands over.
    rank_one_of_a_job.setenv("SLURM_RESTART_COUNT", "1")
    log_tags(owner_tags())
    settings = Settings(mlflow=TrackingSettings(tracking_uri=uri, run_name=NAME))
    with ThreadPoolExecutor(max_workers=1) as pool:
        joining = pool.submit(join_rank_zero, settings, tmp_path / "scratch", tmp_path / "other")
        time.sleep(1.0)
        assert not joining.done(), "rank 1 joined with the handover of the attempt before"
        log_tags({**owner_tags(), **handover_tags("last", tmp_path / "attempt1")})
        joined = joining.result(timeout=60)

    assert joined is not None and joined.run_id == run_id
    assert joined.folder == tmp_path / "attempt1"
    assert joined.resume_from is not None
    assert joined.resume_from.read_bytes() == saved.read_bytes()


def test_outside_slurm_the_handover_carries_no_attempt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    tags = handover_tags(None, tmp_path)
    assert rank_handover.HANDOVER_TAG not in tags
    assert tags[rank_handover.RESUME_TAG] == rank_handover.NO_CHECKPOINT
