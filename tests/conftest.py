"""Shared fixtures: a project rendered once by real cookiecutter, copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import PACKAGE, REPO_ROOT, CliResult, run_cli


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
