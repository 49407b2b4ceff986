"""Shared fixtures: a project rendered once by real cookiecutter, copied per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def rendered_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project rendered once from project-template/ by real cookiecutter."""
    from cookiecutter.main import cookiecutter

    output = tmp_path_factory.mktemp("rendered")
    path = cookiecutter(
        str(REPO_ROOT / "project-template"),
        no_input=True,
        output_dir=str(output),
        extra_context={"project_name": "A Tiny Project"},
    )
    return Path(path)


@pytest.fixture
def project(rendered_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the rendered project in this test's own ``tmp_path``."""
    target = tmp_path / PACKAGE
    shutil.copytree(rendered_template, target)
    return target


@pytest.fixture
def cli(project: Path) -> Callable[..., CliResult]:
    """Run the serotiny CLI inside this test's project."""

    def run(*args: str, **kwargs: object) -> CliResult:
        return run_cli(*args, cwd=project, project=project, **kwargs)  # type: ignore[arg-type]

    return run


def tracking_uri(project: Path) -> str:
    """The embedded default tracking URI of a generated project."""
    return f"sqlite:///{project / 'mlruns.db'}"
