"""Manifests written to each test's own tmp_path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from manifest_helpers import make_frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def manifest_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    return path
