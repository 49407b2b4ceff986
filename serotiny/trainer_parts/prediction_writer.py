"""Collecting ``predict_step`` outputs into one table, a row per manifest row, keyed by its id.

Under several processes (``trainer=ddp``) each rank predicts a share of the rows: Lightning
gives rank ``r`` of ``W`` the rows at positions ``r, r + W, r + 2W, ...`` of the predict
set, without repeating any (its ``UnrepeatedDistributedSampler``). At the end of predicting,
rank 0 gathers every rank's rows, puts them back in the predict set's order by those
positions and keeps each id once, so the table is the same as one process would make; only
rank 0 holds it (and writes it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from serotiny.errors import SerotinyUserError

log = logging.getLogger(__name__)
FORMATS = ("parquet", "csv")
# A column kept while collecting: a row's position in the predict set (dropped on output).
_POSITION = "__serotiny_position__"


class MissingIdError(SerotinyUserError):
    """Predict batches carry no row ids, so predictions could not be told apart."""


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
        id_key: the batch key holding each row's id (a loader of the data config, e.g.
            ``id: {_target_: serotiny.io.dataframe.loaders.LoadColumn, column: id}``). A
            batch without it is an error: a prediction must say which row it is for.
    """

    def __init__(self, id_key: str = "id") -> None:
        self.id_key = id_key
        self.frames: list[pd.DataFrame] = []
        self._rows_seen = 0
        self._gathered: pd.DataFrame | None = None

    def _ids(self, batch: Any, outputs: Mapping[str, Any]) -> np.ndarray:
        """The batch's row ids (or, failing that, ids the model returned with its outputs)."""
        for source in (batch, outputs):
            if isinstance(source, Mapping) and self.id_key in source:
                return _as_array(source[self.id_key]).reshape(-1)
        keys = sorted(map(str, batch)) if isinstance(batch, Mapping) else type(batch).__name__
        raise MissingIdError(
            f"predict batches have no '{self.id_key}' key (they have {keys}): add a loader "
            f"named '{self.id_key}' for the manifest's id column to the data config's loaders, "
            "or set ++predictions.id_key=<the batch key holding each row's id>"
        )

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
            if str(name) != self.id_key:
                columns.update(_columns(str(name), _as_array(value)))
        ids = self._ids(batch, outputs)
        seen = np.arange(self._rows_seen, self._rows_seen + len(ids))
        self._rows_seen += len(ids)
        # Rank r's k-th row is row r + k * W of the predict set (see the module doc).
        positions = seen * trainer.world_size + trainer.global_rank
        self.frames.append(pd.DataFrame({_POSITION: positions, self.id_key: ids, **columns}))

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Several processes: every rank's rows go to rank 0."""
        if trainer.world_size < 2 or not (dist.is_available() and dist.is_initialized()):
            return
        local = self._local()
        gathered: list[Any] | None = [None] * trainer.world_size if trainer.is_global_zero else None
        dist.gather_object(local, gathered, dst=0)
        if gathered is not None:
            self._gathered = self._merged(gathered)

    def _local(self) -> pd.DataFrame:
        if not self.frames:
            return pd.DataFrame({_POSITION: [], self.id_key: []})
        return pd.concat(self.frames, ignore_index=True)

    def _merged(self, frames: list[Any]) -> pd.DataFrame:
        """The ranks' rows in predict-set order, each id once."""
        table = pd.concat(frames, ignore_index=True).sort_values(_POSITION, kind="stable")
        unique = table.drop_duplicates(subset=[self.id_key], keep="first")
        if len(unique) < len(table):
            log.warning(
                "predictions: %d rows predicted by more than one process were kept once",
                len(table) - len(unique),
            )
        return unique

    def table(self) -> pd.DataFrame:
        """All predictions, one row per predicted sample, in predict-set order.

        Under several processes, rank 0's table holds every rank's rows (after predicting).
        """
        table = self._gathered if self._gathered is not None else self._local()
        return table.drop(columns=[_POSITION]).reset_index(drop=True)


def write_table(table: pd.DataFrame, folder: Path, file_format: str) -> Path:
    """Write ``table`` as ``predictions.<format>`` in ``folder`` (atomically)."""
    if file_format not in FORMATS:
        raise SerotinyUserError(
            f"predictions.format '{file_format}' is not supported; choose one of {FORMATS}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions.{file_format}"
    # A name of this process's own: no other process can replace it under us.
    temporary = folder / f".predictions.{file_format}.{os.getpid()}.partial"
    if file_format == "parquet":
        table.to_parquet(temporary, index=False)
    else:
        table.to_csv(temporary, index=False)
    temporary.replace(path)
    return path
