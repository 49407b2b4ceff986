"""Collecting ``predict_step`` outputs into one table, a row per manifest row."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from serotiny.errors import SerotinyUserError

FORMATS = ("parquet", "csv")


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _columns(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """One column for a (B,) output, ``name_0 .. name_K-1`` for a (B, K) one."""
    if values.ndim <= 1:
        return {name: values.reshape(-1)}
    flat = values.reshape(values.shape[0], -1)
    return {f"{name}_{index}": flat[:, index] for index in range(flat.shape[1])}


class PredictionCollector(pl.Callback):
    """Gathers each predict batch's outputs, keyed by the batch's id values.

    Args:
        id_key: the batch key holding row ids; rows are numbered in order when absent.
    """

    def __init__(self, id_key: str = "id") -> None:
        self.id_key = id_key
        self.frames: list[pd.DataFrame] = []
        self._rows_seen = 0

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, Mapping):
            outputs = {"prediction": outputs}
        columns: dict[str, np.ndarray] = {}
        for name, value in outputs.items():
            columns.update(_columns(str(name), _as_array(value)))
        size = len(next(iter(columns.values())))
        if isinstance(batch, Mapping) and self.id_key in batch:
            ids = _as_array(batch[self.id_key]).reshape(-1)
        else:
            ids = np.arange(self._rows_seen, self._rows_seen + size)
        self._rows_seen += size
        self.frames.append(pd.DataFrame({self.id_key: ids, **columns}))

    def table(self) -> pd.DataFrame:
        """All predictions so far, one row per predicted sample."""
        if not self.frames:
            return pd.DataFrame({self.id_key: []})
        return pd.concat(self.frames, ignore_index=True)


def write_table(table: pd.DataFrame, folder: Path, file_format: str) -> Path:
    """Write ``table`` as ``predictions.<format>`` in ``folder`` (atomically)."""
    if file_format not in FORMATS:
        raise SerotinyUserError(
            f"predictions.format '{file_format}' is not supported; choose one of {FORMATS}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions.{file_format}"
    temporary = folder / f".predictions.{file_format}.partial"
    if file_format == "parquet":
        table.to_parquet(temporary, index=False)
    else:
        table.to_csv(temporary, index=False)
    temporary.replace(path)
    return path
