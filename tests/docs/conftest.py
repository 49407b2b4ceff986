"""Fixtures for the documentation tests: pages followed once, in their own folders."""

from __future__ import annotations

import pytest
from doc_runner import FollowedPage, follow

# Pages that several tests check: each is followed once per test process.
SHARED_PAGES = ("tabular_tutorial", "sweeps_tutorial")


@pytest.fixture(scope="session")
def tabular_tutorial(tmp_path_factory: pytest.TempPathFactory) -> FollowedPage:
    """docs/tutorials/tabular.md, followed once: its run 'wine' also feeds the notebook."""
    return follow("tutorials/tabular.md", tmp_path_factory.mktemp("tabular"))


@pytest.fixture(scope="session")
def sweeps_tutorial(tmp_path_factory: pytest.TempPathFactory) -> FollowedPage:
    """docs/tutorials/sweeps.md, followed once: its sweep, then its cross-validation."""
    return follow("tutorials/sweeps.md", tmp_path_factory.mktemp("sweeps"))


# First: pytest-xdist reads the groups in its own hook of the same name, on each worker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), keep the tests of one shared page on one
    worker, so that the page is followed once rather than once per worker."""
    for item in items:
        for page in SHARED_PAGES:
            if page in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(page))
