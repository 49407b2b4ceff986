"""Fixtures for the documentation tests: pages followed once, in their own folders."""

from __future__ import annotations

import pytest
from doc_runner import FollowedPage, follow


@pytest.fixture(scope="session")
def tabular_tutorial(tmp_path_factory: pytest.TempPathFactory) -> FollowedPage:
    """docs/tutorials/tabular.md, followed once: its run 'wine' also feeds the notebook."""
    return follow("tutorials/tabular.md", tmp_path_factory.mktemp("tabular"))


@pytest.fixture(scope="session")
def sweeps_tutorial(tmp_path_factory: pytest.TempPathFactory) -> FollowedPage:
    """docs/tutorials/sweeps.md, followed once: its sweep, then its cross-validation."""
    return follow("tutorials/sweeps.md", tmp_path_factory.mktemp("sweeps"))
