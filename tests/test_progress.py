"""Progress, in this process: which display a Trainer gets, what the log lines say, and the
progress of long work outside training (manifest checks over many files, downloads).

Where the display depends on the terminal, ``sys.stderr`` is a real file or a real
pseudo-terminal (``os.openpty``); with ``LOG_EVERY_SECONDS`` at 0 every update is logged,
so no assert waits on the clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from logging_model import LoggingModel
from omegaconf import OmegaConf
from terminal import Terminal

from serotiny.io import progress as io_progress
from serotiny.io.dataframe.checks import check_files_exist
from serotiny.io.dataframe.readers import read_manifest
from serotiny.io.progress import track, watch_file
from serotiny.trainer_parts.builders import instantiate_trainer
from serotiny.trainer_parts.progress import EpochLogLines, RunProgressBar

PROGRESS_LOGGERS = ("serotiny.trainer_parts.progress", "serotiny.io.progress")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[IO[str]]:
    """A plain file, as a cluster job's log."""
    with (tmp_path / "stderr.log").open("w") as file:
        yield file


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    """A pseudo-terminal, closed after the test."""
    opened = Terminal()
    yield opened
    opened.close()


def stderr_is(monkeypatch: pytest.MonkeyPatch, file: IO[str]) -> None:
    """Make ``file`` this test's ``sys.stderr`` (in the test's body: pytest's capture
    installs its own at the start of each phase)."""
    monkeypatch.setattr("sys.stderr", file)


@pytest.fixture
def every_update_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every update shows: no wait between log lines, ``track`` updates at each item."""
    monkeypatch.setattr(io_progress, "LOG_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(io_progress, "_TRACK_STRIDE", 1)


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name in PROGRESS_LOGGERS]


def trainer_of(options: dict[str, Any], callbacks: list[Any] | None = None, **overrides: Any):
    config = OmegaConf.create({"max_epochs": 1, "accelerator": "cpu", **options})
    return instantiate_trainer(config, list(callbacks or []), logger=False, **overrides)


def test_a_terminal_gets_the_rich_bar_a_file_gets_log_lines(
    terminal: Terminal, log_file: IO[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr_is(monkeypatch, terminal.file)
    assert isinstance(trainer_of({}).progress_bar_callback, RunProgressBar)
    shown = trainer_of({"enable_progress_bar": True}).progress_bar_callback
    assert isinstance(shown, RunProgressBar)
    stderr_is(monkeypatch, log_file)
    assert isinstance(trainer_of({}).progress_bar_callback, EpochLogLines)


def test_the_project_turns_progress_off_or_brings_its_own(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr_is(monkeypatch, terminal.file)
    assert trainer_of({"enable_progress_bar": False}).progress_bar_callback is None
    own = TQDMProgressBar()
    trainer = trainer_of({}, [own])
    assert trainer.progress_bar_callback is own
    assert not any(isinstance(c, RunProgressBar | EpochLogLines) for c in trainer.callbacks)


def test_one_line_per_epoch_with_step_loss_and_monitored_metric(
    log_file: IO[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    monitor = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_score", mode="max")
    trainer = trainer_of(
        {"max_epochs": 3, "limit_train_batches": 8, "limit_val_batches": 2},
        [monitor],
        default_root_dir=str(tmp_path),
        enable_model_summary=False,
    )
    trainer.fit(LoggingModel())
    lines = progress_lines(caplog)
    assert len(lines) == 3, lines  # 8 steps an epoch, one line
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch}/2 · step {8 * (epoch + 1)} · train_loss "), line
        assert " · val_score " in line and line.endswith(" s"), line
    assert "val_loss" not in lines[0]  # neither monitored nor logged for the bar


def test_long_predictions_log_periodic_lines(
    log_file: IO[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    every_update_shows: None,
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    trainer = trainer_of({"limit_predict_batches": 4}, enable_model_summary=False)
    trainer.predict(BoringModel(), torch.utils.data.DataLoader(torch.randn(64, 32), batch_size=8))
    lines = progress_lines(caplog)
    assert lines[:4] == [f"predicting: {n}/4 batches" for n in range(1, 5)], lines
    assert lines[-1].startswith("predicting: done, 4/4 batches in ")


def test_quick_work_shows_nothing(
    log_file: IO[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    assert list(track(range(1000), "counting")) == list(range(1000))
    assert progress_lines(caplog) == []


def test_checking_many_files_logs_its_progress(
    tmp_path: Path,
    log_file: IO[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    every_update_shows: None,
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    for index in range(0, 20, 2):
        (tmp_path / f"{index}.png").touch()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path\n" + "".join(f"{index}.png\n" for index in range(20)))
    problems = check_files_exist(read_manifest(manifest), "path", "LoadImage")
    assert problems and problems[0].num_rows == 10  # the check itself is unchanged
    lines = progress_lines(caplog)
    assert lines[0] == "checking the files of column 'path': 1/20"
    assert lines[-1].startswith("checking the files of column 'path': done, 20/20 in ")


def test_a_bar_is_drawn_on_a_terminal_once_work_takes_a_while(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch, every_update_shows: None
) -> None:
    stderr_is(monkeypatch, terminal.file)
    monkeypatch.setattr(io_progress, "SHOW_AFTER_SECONDS", 0.0)
    assert sum(track(range(50), "counting things")) == sum(range(50))
    drawn = terminal.close()
    assert "counting things" in drawn and "━" in drawn


def test_a_file_being_written_shows_its_size(
    tmp_path: Path,
    log_file: IO[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    every_update_shows: None,
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    target = tmp_path / "best.ckpt"
    seen = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.set()

    watcher = Seen()
    logging.getLogger("serotiny.io.progress").addHandler(watcher)
    try:
        with watch_file(target, 4_000_000, "downloading checkpoints/best.ckpt"):
            target.write_bytes(b"\0" * 2_000_000)
            assert seen.wait(timeout=60), "no progress line while the file was written"
    finally:
        logging.getLogger("serotiny.io.progress").removeHandler(watcher)
    lines = progress_lines(caplog)
    assert "downloading checkpoints/best.ckpt: 2.0 MB of 4.0 MB" in lines
    assert lines[-1].startswith("downloading checkpoints/best.ckpt: done, 2.0 MB of 4.0 MB in ")


def test_an_extra_distributed_rank_shows_nothing(
    log_file: IO[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    every_update_shows: None,
) -> None:
    stderr_is(monkeypatch, log_file)
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("LOCAL_RANK", "1")  # as Lightning starts rank 1 of a DDP training
    assert sum(track(range(20), "counting")) == sum(range(20))
    assert progress_lines(caplog) == []
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert sum(track(range(20), "counting")) == sum(range(20))
    assert progress_lines(caplog)[-1].startswith("counting: done, 20/20 in ")
