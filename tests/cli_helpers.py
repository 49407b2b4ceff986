"""Helpers for tests that run the serotiny CLI in generated projects."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "a_tiny_project"


@dataclass
class CliResult:
    """What a CLI subprocess did."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(project: Path | None = None, **extra: str) -> dict[str, str]:
    """Environment for CLI subprocesses: the project importable, quiet, deterministic."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SEROTINY_"))}
    env.pop("HYDRA_FULL_ERROR", None)
    if project is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONHASHSEED", "0")
    env["GIT_PYTHON_REFRESH"] = "quiet"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, project: Path | None = None, timeout: float = 300, **env: str
) -> CliResult:
    """Run ``python -m serotiny ARGS`` in ``cwd`` and capture what it printed."""
    completed = subprocess.run(
        [sys.executable, "-m", "serotiny", *args],
        cwd=cwd,
        env=cli_env(project if project is not None else cwd, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def render_project(output_dir: Path, project_name: str = "A Tiny Project") -> Path:
    """A project rendered from ``project-template/`` by real cookiecutter into ``output_dir``."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(REPO_ROOT / "project-template"),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={"project_name": project_name},
        )
    )


def tracking_uri(project: Path) -> str:
    """The embedded default tracking URI of a generated project."""
    return f"sqlite:///{project / 'mlruns.db'}"


def runs_in(project: Path, experiment: str = "default") -> dict[str, Any]:
    """The runs of ``experiment`` in the project's store by name (empty when there is no
    such experiment), read under the store's lock as serotiny reads it; a name used by
    two runs fails the test."""
    from serotiny.tracking.store import connect

    client = connect(tracking_uri(project))
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found is not None else []
    names = [run.info.run_name for run in runs]
    assert len(names) == len(set(names)), f"a run name is used twice: {sorted(names)}"
    return {run.info.run_name: run for run in runs}


SLOW_CALLBACK = '''
import time

import lightning.pytorch as pl


class SlowDown(pl.Callback):
    """Makes each training batch take a while, so that a test can interrupt training."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs) -> None:
        time.sleep(self.seconds)
'''


def add_slow_callback(project: Path, seconds: float) -> None:
    """Give the project a ``trainer/callbacks=slow`` option that slows each batch down."""
    (project / PACKAGE / "slow.py").write_text(SLOW_CALLBACK)
    (project / PACKAGE / "config" / "trainer" / "callbacks" / "slow.yaml").write_text(
        f"- _target_: {PACKAGE}.slow.SlowDown\n  seconds: {seconds}\n"
    )


def start_cli(*args: str, project: Path, log: Path, **env: str) -> subprocess.Popen:
    """Start ``python -m serotiny ARGS`` in its own process group, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "serotiny", *args],
        cwd=project,
        env=cli_env(project, **env),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until(
    condition: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 300
) -> None:
    """Poll ``condition`` while ``process`` runs; fail if it ends or time runs out first."""
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the command ended first:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started, as a node crash or OOM kill would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def has_checkpoint(client: object, run: object | None) -> bool:
    """Whether ``run`` already stores ``checkpoints/last.ckpt``."""
    if run is None:
        return False
    names = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}  # type: ignore[attr-defined]
    return "checkpoints/last.ckpt" in names


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
