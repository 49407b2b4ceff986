"""The manifest behind a ManifestDatamodule: read, split, checked and bound, without Lightning.

Kept apart from the LightningDataModule so that checking a manifest (``serotiny validate``)
costs pyarrow and torch, not the ~6 s import of Lightning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from serotiny.datamodules.assignment import assignment_table, write_assignment
from serotiny.datamodules.dataset import ManifestDataset
from serotiny.datamodules.folds import CrossValidation
from serotiny.datamodules.fractions import SplitFractions
from serotiny.datamodules.loader_plan import PREDICT, LoaderPlan
from serotiny.datamodules.row_splits import RowSplitter
from serotiny.datamodules.splits import SPLITS, canonical_split, read_split_folder
from serotiny.errors import ManifestError
from serotiny.io.dataframe.checks import (
    ManifestProblem,
    check_columns_present,
    check_unique,
    raise_if_any,
)
from serotiny.io.dataframe.loaders.base import BoundLoader
from serotiny.io.dataframe.readers import ManifestTable, read_manifest

if TYPE_CHECKING:
    import pandas as pd

# The splits each Lightning stage iterates; ``predict`` is the whole manifest unless
# ``predict_split`` names a split.
STAGE_SPLITS: dict[str, tuple[str, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": (PREDICT,),
}


def _check_fraction_options(
    split_fractions: Mapping[str, float] | None,
    stratify_column: str | None,
    group_column: str | None,
) -> None:
    if split_fractions is None and (stratify_column or group_column):
        raise ManifestError(
            f"{'stratify_column' if stratify_column else 'group_column'} is set but "
            "split_fractions is not: set split_fractions to split by fractions, or drop it"
        )


def _predict_split(predict_split: str | None) -> str | None:
    if predict_split is None:
        return None
    split = canonical_split(predict_split)
    if split is None:
        raise ManifestError(
            f"predict_split={predict_split!r}: use one of {', '.join(SPLITS)}, "
            "or leave it unset to predict on the whole manifest"
        )
    return split


class ManifestData:
    """A manifest's splits and their datasets; see :class:`ManifestDatamodule` for arguments."""

    def __init__(
        self,
        path: str | os.PathLike[str] | pd.DataFrame,
        loaders: Mapping[str, Any],
        split_column: str | None = "split",
        split_map: Mapping[str, str | None] | None = None,
        columns: Sequence[str] | None = None,
        just_inference: bool = False,
        id_column: str | None = None,
        predict_split: str | None = None,
        cross_validation: CrossValidation | Mapping[str, Any] | None = None,
        split_fractions: Mapping[str, float] | None = None,
        split_seed: int | None = None,
        stratify_column: str | None = None,
        group_column: str | None = None,
        split_assignment: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = path if not isinstance(path, str | os.PathLike) else Path(path).expanduser()
        self.plan = LoaderPlan(loaders)
        self.columns = list(columns) if columns is not None else None
        self.just_inference = just_inference
        self.id_column = id_column
        _check_fraction_options(split_fractions, stratify_column, group_column)
        self.splitter = RowSplitter(
            split_column=split_column or "split",
            split_map=dict(split_map) if split_map else None,
            fractions=SplitFractions.from_config(
                split_fractions, split_seed, stratify_column, group_column
            ),
            assignment=Path(split_assignment).expanduser() if split_assignment else None,
            id_column=id_column,
            cross_validation=CrossValidation.from_config(cross_validation),
            just_inference=just_inference,
            from_folder=self.is_folder,
        )
        self.predict_split = _predict_split(predict_split)
        self._manifest: ManifestTable | None = None
        self._keys: pa.Array | None = None
        self._split_rows: dict[str, np.ndarray] = {}
        self._manifest_problems: list[ManifestProblem] = []
        self._unit_problems: dict[str, list[ManifestProblem]] = {}
        self._bound: dict[str, dict[str, BoundLoader]] = {}

    @property
    def is_folder(self) -> bool:
        return isinstance(self.path, Path) and self.path.is_dir()

    # Reading and splitting -----------------------------------------------------------------

    @property
    def manifest(self) -> ManifestTable:
        """The whole manifest, read on first use."""
        if self._manifest is None:
            self._manifest = self._read()
            self._split()
        return self._manifest

    def _read(self) -> ManifestTable:
        columns = self.columns
        if columns is not None:
            columns = list(dict.fromkeys([*columns, *self.splitter.columns()]))
        if self.is_folder:
            splitter = self.splitter
            return read_split_folder(self.path, splitter.split_column, splitter.split_map, columns)
        return read_manifest(self.path, columns)

    def _split(self) -> None:
        manifest = self._manifest
        assert manifest is not None
        split = self.splitter.split(manifest)
        self._split_rows, self._keys = split.rows, split.keys
        problems = list(split.problems)
        everything = np.arange(manifest.num_rows, dtype=np.int64)
        self._split_rows[PREDICT] = (
            everything if self.predict_split is None else self._split_rows[self.predict_split]
        )
        if self.id_column is not None:
            problems += check_columns_present(manifest, [self.id_column], "id_column") or (
                check_unique(manifest, self.id_column)
            )
        self._manifest_problems = problems

    def split_rows(self, split: str) -> np.ndarray:
        """Positions in the manifest of the rows of ``split`` (or ``predict``)."""
        self.manifest  # noqa: B018  (reads the manifest on first use)
        if self.just_inference and split in ("train", "val"):
            raise ManifestError(
                f"{self._name()}: this datamodule has just_inference=True, so it has no "
                f"{split!r} split; set just_inference=False and give a split_column to train"
            )
        return self._split_rows[split]

    # The split assignment ------------------------------------------------------------------

    def assignment(self) -> pa.Table:
        """Each row's key (``id_column``, or ``row`` position) and split (null: none)."""
        self.manifest  # noqa: B018
        rows = {split: self._split_rows.get(split, np.empty(0, np.int64)) for split in SPLITS}
        return assignment_table(self._keys, self.splitter.key_name, rows)

    def save_assignment(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`assignment` to ``path`` (``.csv`` or ``.parquet``)."""
        return write_assignment(self.assignment(), path)

    def use_assignment(self, path: str | os.PathLike[str]) -> None:
        """Take every row's split from a saved assignment from now on (re-reading the
        manifest if it was read)."""
        self.splitter.assignment = Path(path).expanduser()
        self._manifest, self._keys, self._split_rows = None, None, {}
        self._manifest_problems, self._unit_problems, self._bound = [], {}, {}

    # Checking ------------------------------------------------------------------------------

    def problems(self, stage: str | None = None) -> list[ManifestProblem]:
        """Every problem that would stop ``stage``, without raising.

        With no stage: what any use needs (no manifest-level problem, non-empty ``train`` and
        ``val`` splits unless ``just_inference``) and every configured loader working on every
        split that has rows. An empty or unconfigured ``test`` split is then not a problem; it
        is one for the ``test`` stage.
        """
        problems = list(self._manifest_problems_now())
        for split in self._splits(stage):
            if stage is not None or split in self._required_without_stage():
                problems += self._empty_split_problem(split)
            elif not (self.plan.has(split) and len(self._rows_if_any(split))):
                continue
            problems += self._problems_of_unit(split)
        return list(dict.fromkeys(problems))

    def _required_without_stage(self) -> tuple[str, ...]:
        return (PREDICT,) if self.just_inference else ("train", "val")

    def _rows_if_any(self, split: str) -> np.ndarray:
        self.manifest  # noqa: B018
        return self._split_rows.get(split, np.empty(0, dtype=np.int64))

    def validate(self, stage: str | None = None) -> None:
        """Raise :class:`ManifestError` (one line) for the first problem ``problems`` finds."""
        raise_if_any(self.problems(stage))

    def _manifest_problems_now(self) -> list[ManifestProblem]:
        self.manifest  # noqa: B018
        return self._manifest_problems

    def _splits(self, stage: str | None) -> tuple[str, ...]:
        if stage is None:
            return (PREDICT,) if self.just_inference else (*SPLITS, PREDICT)
        if stage not in STAGE_SPLITS:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_SPLITS)}")
        return STAGE_SPLITS[stage]

    def _empty_split_problem(self, split: str) -> list[ManifestProblem]:
        if split == PREDICT and self.predict_split is None:
            split_name, rows = "whole manifest", self.split_rows(PREDICT)
        else:
            split_name = self.predict_split if split == PREDICT else split
            rows = self.split_rows(split_name)
        if len(rows):
            return []
        if self.is_folder:
            file_name = "valid" if split_name == "val" else split_name
            return [
                ManifestProblem(
                    str(self.path),
                    None,
                    f"no rows for the {split_name!r} split",
                    f"add a non-empty file for it, e.g. {file_name}.csv",
                )
            ]
        if self.just_inference or split == PREDICT and self.predict_split is None:
            return [ManifestProblem(self._name(), None, "the manifest has no rows", "add rows")]
        if self.splitter.uses_split_column() and (
            self.splitter.split_column not in self.manifest.column_names
        ):
            return []  # already reported as a missing column
        return self.splitter.no_rows_problem(self._name(), split_name)

    def _unit_view(self, split: str) -> ManifestTable:
        manifest = self.manifest
        return manifest if self.plan.shared else manifest.take(self.split_rows(split))

    def _problems_of_unit(self, split: str) -> list[ManifestProblem]:
        unit = self.plan.unit(split)
        if unit not in self._unit_problems:
            view = self._unit_view(split)
            problems: list[ManifestProblem] = []
            for loader in self.plan.for_split(split).values():
                problems += loader.problems(view)
            self._unit_problems[unit] = problems
        return self._unit_problems[unit]

    # Datasets ------------------------------------------------------------------------------

    def prepare(self, stage: str | None) -> None:
        """Check everything ``stage`` needs, then extract its loaders' data once."""
        self.validate(stage)
        for split in self._splits(stage):
            unit = self.plan.unit(split)
            if unit not in self._bound:
                view = self._unit_view(split)
                loaders = self.plan.for_split(split)
                self._bound[unit] = {name: loader.bind(view) for name, loader in loaders.items()}
        self._release_table_when_done()

    def _release_table_when_done(self) -> None:
        # Once every split's loaders hold their own arrays the table is dead weight (often the
        # largest object in the process), so keep only its schema and where rows came from.
        manifest = self._manifest
        if manifest is None or manifest.num_rows == 0:
            return
        if all(self.plan.unit(split) in self._bound for split in self._splits(None)):
            empty = manifest.table.schema.empty_table()
            self._manifest = ManifestTable(empty, manifest.sources, manifest.base_dir)

    def dataset(self, split: str) -> ManifestDataset:
        """The dataset of ``split`` (``train``, ``val``, ``test`` or ``predict``)."""
        unit = self.plan.unit(split)
        if unit not in self._bound:
            stage = {"train": "fit", "val": "validate", "test": "test"}.get(split, "predict")
            self.prepare(stage)
        rows = self.split_rows(split)
        return ManifestDataset(self._bound[unit], rows if self.plan.shared else None, len(rows))

    def _name(self) -> str:
        return self._manifest.name if self._manifest is not None else str(self.path)
