"""Shared fixtures: a project rendered once by real cookiecutter, copied per test, in which
commands run either through the CLI (a subprocess) or in this process (``workspace``)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import PACKAGE, CliResult, render_project, run_cli
from forked_cli import ForkedCli
from inprocess import Workspace, make_workspace

pytest_plugins = ["services"]  # real services: tests/services.py


@pytest.fixture(scope="session")
def rendered_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project rendered once from project-template/ by real cookiecutter."""
    return render_project(tmp_path_factory.mktemp("rendered"))


@pytest.fixture
def project(rendered_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the rendered project in this test's own ``tmp_path``."""
    target = tmp_path / PACKAGE
    shutil.copytree(rendered_template, target)
    return target


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema made, copied into each workspace: making the
    schema takes seconds, and is the same for every test."""
    from serotiny.tracking.store import connect

    database = tmp_path_factory.mktemp("store") / "mlruns.db"
    connect(f"sqlite:///{database}")
    return database


@pytest.fixture
def workspace(
    rendered_template: Path, empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """A fresh copy of the rendered project whose commands run in this test's process."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the project's folder leaves with it
    return make_workspace(rendered_template, empty_store, tmp_path)


@pytest.fixture(scope="session")
def forked_cli_server() -> Iterator[ForkedCli]:
    """One server (per test process) that forks a child per ``serotiny`` command: each command
    is a process of its own, with the exit status and output a user would see, without a fresh
    interpreter's imports of torch, Lightning and MLflow (see tests/forked_cli.py). Not for
    commands that start processes of their own (DDP) or are signalled."""
    server = ForkedCli()
    yield server
    server.close()


@pytest.fixture
def forked_cli(project: Path, forked_cli_server: ForkedCli) -> Callable[..., CliResult]:
    """Run the serotiny CLI inside this test's project, as a forked process."""

    def run(*args: str, **env: str) -> CliResult:
        return forked_cli_server.run(*args, cwd=project, project=project, **env)

    return run


@pytest.fixture
def cli(project: Path) -> Callable[..., CliResult]:
    """Run the serotiny CLI inside this test's project."""

    def run(*args: str, **kwargs: object) -> CliResult:
        return run_cli(*args, cwd=project, project=project, **kwargs)  # type: ignore[arg-type]

    return run


# First: pytest-xdist reads the groups in its own hook of the same name, on each worker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), keep the tests that share a module-scoped
    fixture (a project trained once for the module, say) on one worker, so that the
    fixture is made once rather than once per worker."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else ()
        if any(d.scope == "module" for defs in definitions for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
