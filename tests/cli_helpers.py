"""Helpers for tests that run the serotiny CLI in generated projects."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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


def tracking_uri(project: Path) -> str:
    """The embedded default tracking URI of a generated project."""
    return f"sqlite:///{project / 'mlruns.db'}"
