"""Manifests written to each test's own tmp_path; a count of the epochs run through workers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from manifest_helpers import make_frame
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def manifest_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def worker_epochs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the epochs torch runs through worker processes (its multi-process iterator is
    made once per epoch without persistent workers)."""
    made: list[int] = []
    original = _MultiProcessingDataLoaderIter.__init__

    def counted(self, loader) -> None:
        made.append(loader.num_workers)
        original(self, loader)

    monkeypatch.setattr(_MultiProcessingDataLoaderIter, "__init__", counted)
    return made
