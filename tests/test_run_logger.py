"""Metrics committed with checkpoints, against a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from serotiny.trainer_parts.metrics_logger import CheckpointCommittedMLFlowLogger


def make_logger(tmp_path: Path) -> tuple[CheckpointCommittedMLFlowLogger, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    run_id = client.create_run(experiment).info.run_id
    logger = CheckpointCommittedMLFlowLogger(
        experiment_name="e", tracking_uri=uri, run_id=run_id, log_model=False
    )
    return logger, client, run_id


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [metric.step for metric in client.get_metric_history(run_id, key)]


def test_metrics_wait_for_the_commit(tmp_path: Path) -> None:
    logger, client, run_id = make_logger(tmp_path)
    logger.log_metrics({"val_loss": 1.0}, step=6)
    assert steps(client, run_id, "val_loss") == []
    assert logger.pending() == [({"val_loss": 1.0}, 6)]
    logger.commit()
    assert steps(client, run_id, "val_loss") == [6]
    assert logger.pending() == []


def test_a_checkpoints_uncommitted_metrics_are_written_once_on_resume(tmp_path: Path) -> None:
    logger, client, run_id = make_logger(tmp_path)
    logger.log_metrics({"val_loss": 1.0, "epoch": 0.0}, step=6)
    logger.commit()
    # Saved in a checkpoint, then the process died before committing them:
    logger.log_metrics({"val_loss": 0.5, "epoch": 1.0}, step=13)
    stored_in_checkpoint = logger.pending()

    resumed = CheckpointCommittedMLFlowLogger(
        experiment_name="e", tracking_uri=client.tracking_uri, run_id=run_id, log_model=False
    )  # as in the process that resumes: nothing pending of its own
    resumed.commit_missing(stored_in_checkpoint)
    resumed.commit_missing(stored_in_checkpoint)  # idempotent: a second resume adds nothing
    assert steps(client, run_id, "val_loss") == [6, 13]
    assert steps(client, run_id, "epoch") == [6, 13]
    values = [metric.value for metric in client.get_metric_history(run_id, "val_loss")]
    assert values == [1.0, 0.5]
