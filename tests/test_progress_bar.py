"""The rich progress bar on a terminal, in this process: what it shows, and where the log
lines written while it is drawn end up (above the bar on the terminal; in the file when
stdout goes to one)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import rich
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from logging_model import LoggingModel
from omegaconf import OmegaConf
from terminal import Terminal

from serotiny.trainer_parts.builders import instantiate_trainer
from serotiny.trainer_parts.progress import RunProgressBar

MESSAGE = "a line logged while the bar is drawn"


class LogsWhileTraining(Callback):
    """Logs :data:`MESSAGE` at the end of each epoch; notes where the line was written."""

    def __init__(self, logger: logging.Logger, handler: logging.StreamHandler) -> None:
        self.logger = logger
        self.handler = handler
        self.streams: list[str] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.streams.append(type(self.handler.stream).__name__)
        self.logger.info(MESSAGE)


@pytest.fixture
def console_kept() -> Iterator[None]:
    """Lightning's rich bar reconfigures rich's global console: put it back afterwards."""
    console = rich.get_console()
    saved = dict(console.__dict__)
    yield
    console.__dict__.clear()
    console.__dict__.update(saved)


@pytest.fixture
def job_logger(tmp_path: Path) -> Iterator[logging.Logger]:
    """A logger of its own, to which each test gives a console handler as Hydra's job
    logging does (a ``StreamHandler`` bound to the stream when logging is set up)."""
    logger = logging.getLogger(f"tests.progress_bar.{tmp_path.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def train(logger: logging.Logger, stream: Any, tmp_path: Path) -> LogsWhileTraining:
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logs = LogsWhileTraining(logger, handler)
    monitor = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss")
    config = OmegaConf.create({"max_epochs": 2, "accelerator": "cpu", "limit_val_batches": 2})
    trainer = instantiate_trainer(
        config, [logs, monitor], logger=False, default_root_dir=str(tmp_path)
    )
    assert isinstance(trainer.progress_bar_callback, RunProgressBar)
    trainer.fit(LoggingModel())
    assert handler.stream is stream  # put back when the bar stopped
    return logs


def test_the_bar_shows_epoch_step_loss_and_monitor_and_lines_print_above_it(
    monkeypatch: pytest.MonkeyPatch, console_kept: None, job_logger: logging.Logger, tmp_path: Path
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal.file)
    monkeypatch.setattr(sys, "stderr", terminal.file)
    logs = train(job_logger, terminal.file, tmp_path)
    drawn = terminal.close()
    assert logs.streams == ["FileProxy", "FileProxy"]  # through rich, above the bar
    assert drawn.count(MESSAGE) == 2
    bar = [line for line in drawn.splitlines() if "Epoch 1/1" in line and "━" in line]
    assert any("step: 128" in line for line in bar), bar[-3:]  # 64 batches an epoch
    # The metrics next to the bar (wrapped to a second line when the bar is narrow).
    assert "train_loss: " in drawn and "val_loss: " in drawn


def test_lines_for_a_file_stay_in_the_file(
    monkeypatch: pytest.MonkeyPatch, console_kept: None, job_logger: logging.Logger, tmp_path: Path
) -> None:
    terminal = Terminal()
    with (tmp_path / "stdout.log").open("w") as log_file:
        monkeypatch.setattr(sys, "stdout", log_file)  # serotiny train > stdout.log
        monkeypatch.setattr(sys, "stderr", terminal.file)
        logs = train(job_logger, log_file, tmp_path)
    drawn = terminal.close()
    assert logs.streams == ["TextIOWrapper", "TextIOWrapper"]
    assert (tmp_path / "stdout.log").read_text().count(MESSAGE) == 2
    assert MESSAGE not in drawn and "━" in drawn
