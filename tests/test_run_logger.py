"""Metrics committed with checkpoints, through the run's journal into a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from serotiny.tracking.journal import JournalHeader, RunJournal
from serotiny.tracking.journal_drain import GroupSender, drain_once
from serotiny.trainer_parts.journal_logger import JournalLogger


def make_logger(tmp_path: Path, folder: str = "journal") -> tuple[JournalLogger, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name("e") is None:
        client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    experiment = client.get_experiment_by_name("e").experiment_id
    runs = client.search_runs([experiment])
    run_id = runs[0].info.run_id if runs else client.create_run(experiment).info.run_id
    journal = RunJournal(tmp_path / folder, JournalHeader(run_id, "r", "e", uri))
    return JournalLogger(journal, run_id), client, run_id


def steps(client: MlflowClient, run_id: str, key: str, logger: JournalLogger) -> list[int]:
    """The steps MLflow holds for ``key`` once the journal has been sent."""
    assert drain_once(logger.journal.folder, GroupSender(client, run_id))  # type: ignore[union-attr]
    return [metric.step for metric in client.get_metric_history(run_id, key)]


def test_metrics_wait_for_the_commit(tmp_path: Path) -> None:
    logger, client, run_id = make_logger(tmp_path)
    logger.log_metrics({"val_loss": 1.0}, step=6)
    assert steps(client, run_id, "val_loss", logger) == []  # not committed: not sent
    ((values, step, _),) = logger.pending()
    assert (values, step) == ({"val_loss": 1.0}, 6)
    logger.commit()
    assert steps(client, run_id, "val_loss", logger) == [6]
    assert logger.pending() == []


def test_a_checkpoints_uncommitted_metrics_are_written_once_on_resume(tmp_path: Path) -> None:
    logger, client, run_id = make_logger(tmp_path)
    logger.log_metrics({"val_loss": 1.0, "epoch": 0.0}, step=6)
    logger.commit()
    # Saved in a checkpoint, committed and sent, then the process died:
    logger.log_metrics({"val_loss": 0.5, "epoch": 1.0}, step=13)
    stored_in_checkpoint = logger.pending()
    logger.commit()
    assert steps(client, run_id, "val_loss", logger) == [6, 13]

    # The process that resumes (a journal of its own) commits the checkpoint's metrics again,
    # twice even (a second resume): MLflow keeps them once, as first stamped.
    resumed, _, _ = make_logger(tmp_path, "journal-resumed")
    resumed.commit_again(stored_in_checkpoint)
    resumed.commit_again(stored_in_checkpoint)
    assert steps(client, run_id, "val_loss", resumed) == [6, 13]
    assert steps(client, run_id, "epoch", resumed) == [6, 13]
    values = [metric.value for metric in client.get_metric_history(run_id, "val_loss")]
    assert values == [1.0, 0.5]
