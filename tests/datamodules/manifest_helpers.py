"""Helpers shared by the manifest tests (a module, not conftest, so tests can import it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from serotiny.io.dataframe.loaders import LoadClass, LoadColumn, LoadColumns

# The reference template's data config, verbatim apart from the path.
TEMPLATE_CONFIG = """
_target_: serotiny.datamodules.ManifestDatamodule
path: {path}
batch_size: 32
num_workers: 0
split_column: split
loaders:
  x:
    _target_: serotiny.io.dataframe.loaders.LoadColumns
    startswith: feature_
  y:
    _target_: serotiny.io.dataframe.loaders.LoadClass
    column: label
    num_classes: 3
  id:
    _target_: serotiny.io.dataframe.loaders.LoadColumn
    column: id
"""


def make_frame(rows: int = 60, features: int = 8, seed: int = 0) -> pd.DataFrame:
    """id (str), split (train/valid/test), feature_0..N (float), label (int 0..2)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": [f"cell_{i:04d}" for i in range(rows)]})
    frame["split"] = np.array(["train", "valid", "test"])[np.arange(rows) % 3]
    for index in range(features):
        frame[f"feature_{index}"] = rng.normal(size=rows)
    frame["label"] = rng.integers(0, 3, rows)
    return frame


def standard_loaders() -> dict:
    return {
        "x": LoadColumns(startswith="feature_"),
        "y": LoadClass("label", num_classes=3),
        "id": LoadColumn("id"),
    }
