"""What a user sees: a progress bar on a terminal, one line per epoch in a log file, and none
of the known noise unless ``--verbose`` asks for it (the CLI in a subprocess: what it prints
is the subject)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import CliResult, cli_env, run_cli
from terminal import Terminal

pytestmark = pytest.mark.slow

EPOCHS = 3
BAR = "━"  # the bar's own character (rich's progress bar)
ESCAPE = "\x1b["
EPOCH_LINE = re.compile(r"\]\[serotiny\.trainer_parts\.progress\]\[INFO\] - Epoch \d+/\d+ · ")
LITLOGGER_TIP = "litlogger"
LEAFSPEC = "LeafSpec"
SRUN_HINT = "The `srun` command is available on your system but is not used"
MLFLOW_SCHEMA = "Creating initial MLflow database tables"


def run_in_terminal(*args: str, cwd: Path, timeout: float = 300) -> CliResult:
    """Run ``python -m serotiny ARGS`` with a pseudo-terminal (120 columns) as its stdin,
    stdout and stderr, as in a user's shell; everything it wrote, escapes included."""
    terminal = Terminal()
    process = subprocess.Popen(
        [sys.executable, "-m", "serotiny", *args],
        cwd=cwd,
        env=cli_env(cwd, TERM="xterm-256color"),
        stdin=terminal.file,
        stdout=terminal.file,
        stderr=terminal.file,
    )
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        output = terminal.close()
    return CliResult(process.returncode, output, "")


def bar_frames(output: str) -> list[str]:
    """Each drawing of the progress bar in a terminal's ``output``, as plain text on one line.

    rich redraws the bar in place (a carriage return, then clearing the lines it drew before);
    where the terminal is too narrow for a row, a column's text goes on in the next lines
    (``train_loss:`` at the end of one line, its value on the next), so a drawing is read
    whole, its escapes taken out and its line breaks and padding made single spaces.
    """
    drawings = re.split(r"\r(?:\x1b\[2K\x1b\[1A)*\x1b\[2K", output)
    plain = (" ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", d).split()) for d in drawings)
    return [drawing for drawing in plain if BAR in drawing]


def run_to_file(*args: str, cwd: Path, log: Path) -> CliResult:
    """Run ``python -m serotiny ARGS`` with stdout and stderr going to the file ``log``."""
    with log.open("w") as out:
        completed = subprocess.run(
            [sys.executable, "-m", "serotiny", *args],
            cwd=cwd,
            env=cli_env(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    return CliResult(completed.returncode, log.read_text(), "")


def test_a_training_in_a_terminal_shows_the_progress_bar(project: Path) -> None:
    result = run_in_terminal(
        "train", f"++trainer.max_epochs={EPOCHS}", "++mlflow.run_name=bar", cwd=project
    )
    assert result.returncode == 0, result.output[-3000:]
    bars = bar_frames(result.output)
    assert bars, result.output[-3000:]
    last = f"Epoch {EPOCHS - 1}/{EPOCHS - 1}"
    # The bar shows the epoch, the global step, the loss and the monitored metric.
    shown = [
        frame for frame in bars if last in frame and "step: " in frame and "train_loss: " in frame
    ]
    assert shown, bars[-5:]
    assert any(re.search(r"val_loss: \d", frame) for frame in shown)  # checkpoint.monitor
    assert LITLOGGER_TIP not in result.output and LEAFSPEC not in result.output

    predicted = run_in_terminal("predict", "++mlflow.run_name=bar", cwd=project)
    assert predicted.returncode == 0, predicted.output[-3000:]
    assert any("Predicting" in line and BAR in line for line in predicted.output.splitlines())


def test_a_training_logged_to_a_file_has_one_line_per_epoch_and_no_noise(
    project: Path, tmp_path: Path
) -> None:
    result = run_to_file(
        "train",
        f"++trainer.max_epochs={EPOCHS}",
        "++mlflow.run_name=logged",
        cwd=project,
        log=tmp_path / "train.log",
    )
    assert result.returncode == 0, result.output[-3000:]
    assert BAR not in result.output and ESCAPE not in result.output
    lines = result.output.splitlines()
    epochs = [line for line in lines if EPOCH_LINE.search(line)]
    # Several steps an epoch, one line each epoch: never a line per step.
    assert len(epochs) == EPOCHS, "\n".join(epochs)
    for number, line in enumerate(epochs):
        assert f"Epoch {number}/{EPOCHS - 1} · step " in line, line
        assert " · train_loss " in line and " · val_loss " in line, line
    assert int(re.search(r"step (\d+)", epochs[-1])[1]) > EPOCHS  # type: ignore[index]

    # A default command prints none of the known noise (serotiny/cli/quiet.py).
    in_slurm_job = bool(os.environ.get("SLURM_JOB_ID"))  # where the srun hint is kept
    for noise in (LITLOGGER_TIP, LEAFSPEC, MLFLOW_SCHEMA, *([] if in_slurm_job else [SRUN_HINT])):
        assert noise not in result.output, noise
    # ... and still prints what Lightning and serotiny say that is worth reading.
    assert "GPU available" in result.output and "`Trainer.fit` stopped" in result.output
    assert "run 'logged'" in result.output


def test_verbose_shows_the_noise_again(project: Path) -> None:
    result = run_cli(
        "train", "--verbose", "++trainer.max_epochs=1", "++mlflow.run_name=loud", cwd=project
    )
    assert result.returncode == 0, result.output[-3000:]
    for noise in (LITLOGGER_TIP, LEAFSPEC, MLFLOW_SCHEMA):
        assert noise in result.output, noise
    if shutil.which("srun") is not None and not os.environ.get("SLURM_JOB_ID"):
        assert SRUN_HINT in result.output
