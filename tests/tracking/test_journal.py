"""The run journal: records reach MLflow in order, once each, only when committed, and a
record MLflow refuses does not hold back the others (a real SQLite store)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from serotiny.tracking.artifact_copy import store_artifact
from serotiny.tracking.journal import (
    JOURNAL_FILE,
    JournalHeader,
    RunJournal,
    has_unsent_records,
    read_cursor,
    write_cursor,
)
from serotiny.tracking.journal_drain import GroupSender, drain_once, is_transient


@pytest.fixture
def run(tmp_path: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    return client, client.create_run(experiment, run_name="r").info.run_id


def journal_of(tmp_path: Path, run_id: str) -> RunJournal:
    return RunJournal(tmp_path / "journal", JournalHeader(run_id, "r", "e", "sqlite:///x"))


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_committed_records_reach_the_run_in_order(tmp_path: Path, run) -> None:
    client, run_id = run
    journal = journal_of(tmp_path, run_id)
    journal.metrics({"loss": 3.0}, step=1)
    journal.params({"lr": 0.1})
    journal.tags({"note": "first"})
    sender = GroupSender(client, run_id)
    assert drain_once(journal.folder, sender)
    assert history(client, run_id, "loss") == []  # not committed yet
    journal.commit()
    journal.metrics({"loss": 2.0}, step=2)
    journal.commit()
    journal.status("FINISHED")
    assert drain_once(journal.folder, sender)
    stored = client.get_run(run_id)
    assert history(client, run_id, "loss") == [(1, 3.0), (2, 2.0)]
    assert stored.data.params == {"lr": "0.1"} and stored.data.tags["note"] == "first"
    assert stored.info.status == "FINISHED"
    assert not has_unsent_records(journal.folder)


def test_sending_again_after_a_crash_keeps_one_copy(tmp_path: Path, run) -> None:
    client, run_id = run
    journal = journal_of(tmp_path, run_id)
    for step in range(5):
        journal.metrics({"loss": 1.0 / (step + 1)}, step=step)
        journal.commit()
    assert drain_once(journal.folder, GroupSender(client, run_id))
    write_cursor(journal.folder, -1)  # as if the process died before moving the cursor
    assert drain_once(journal.folder, GroupSender(client, run_id))
    assert [step for step, _ in history(client, run_id, "loss")] == [0, 1, 2, 3, 4]


def test_a_torn_last_line_is_never_sent(tmp_path: Path, run) -> None:
    client, run_id = run
    journal = journal_of(tmp_path, run_id)
    journal.metrics({"loss": 1.0}, step=0)
    journal.commit()
    journal.close()
    with (journal.folder / JOURNAL_FILE).open("a") as handle:
        handle.write('{"seq": 99, "kind": "commit"')  # a crash in the middle of a write
    assert drain_once(journal.folder, GroupSender(client, run_id))
    assert history(client, run_id, "loss") == [(0, 1.0)]
    assert read_cursor(journal.folder) == 3  # header 0, its commit 1, metrics 2, commit 3


def test_a_refused_record_does_not_hold_back_the_rest(tmp_path: Path, run) -> None:
    client, run_id = run
    client.log_param(run_id, "lr", "0.1")
    journal = journal_of(tmp_path, run_id)
    journal.params({"lr": "0.5"})  # MLflow refuses another value for a param it holds
    journal.metrics({"loss": 1.0}, step=0)
    journal.commit()
    assert drain_once(journal.folder, GroupSender(client, run_id))
    assert history(client, run_id, "loss") == [(0, 1.0)]
    assert client.get_run(run_id).data.params["lr"] == "0.1"


def test_an_unreachable_server_is_transient_a_refusal_is_not() -> None:
    assert is_transient(ConnectionRefusedError("Connection refused"))
    assert is_transient(RuntimeError("HTTPConnectionPool: Max retries exceeded"))
    assert not is_transient(ValueError("Changing param values is not allowed"))


def test_a_local_artifact_store_keeps_the_checkpoint_as_written(tmp_path: Path, run) -> None:
    client, run_id = run
    checkpoint = tmp_path / "out" / "last.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"epoch 1")
    store_artifact(client, run_id, checkpoint, "checkpoints")
    stored = tmp_path / "art" / run_id / "artifacts" / "checkpoints" / "last.ckpt"
    assert stored.read_bytes() == b"epoch 1"
    assert os.stat(stored).st_ino == os.stat(checkpoint).st_ino  # a link, not a copy
    # Training replaces its checkpoint with a new file: the stored one keeps its content
    # until it is stored again.
    replacement = checkpoint.with_name("last.ckpt.partial")
    replacement.write_bytes(b"epoch 2")
    replacement.replace(checkpoint)
    assert stored.read_bytes() == b"epoch 1"
    store_artifact(client, run_id, checkpoint, "checkpoints")
    assert stored.read_bytes() == b"epoch 2"
    assert {a.path for a in client.list_artifacts(run_id, "checkpoints")} == {
        "checkpoints/last.ckpt"
    }
