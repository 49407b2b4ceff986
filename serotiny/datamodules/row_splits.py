"""Which rows of a manifest are in which split, from whichever source the config names.

In order of precedence, a row's split comes from:

1. ``just_inference``: every row is a test row (and predicted);
2. ``split_assignment``: a saved assignment (see ``assignment``), so a resumed, tested or
   predicting run sees the rows its training run saw;
3. ``split_fractions``: drawn from a seed (see ``fractions``), the split column unused;
4. the split column (or, for a folder manifest, the file each row came from).

Cross-validation then re-divides the train and val rows into folds; test rows stay held out.

Rows are handed to the seeded splitters sorted by ``id_column`` when there is one, so a
shuffled copy of a manifest puts each id in the same split and fold. Without an id column
the manifest's row order is part of what decides the split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serotiny.datamodules.assignment import ROW_KEY, apply_assignment
from serotiny.datamodules.folds import CrossValidation, assign_folds
from serotiny.datamodules.fractions import SplitFractions, assign_fractions
from serotiny.datamodules.splits import SPLITS, accepted_values, assign_splits
from serotiny.errors import ManifestError
from serotiny.io.dataframe.checks import (
    ManifestProblem,
    check_columns_present,
    missing_rows,
    problem_at_rows,
)
from serotiny.io.dataframe.readers import ManifestTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowSplit:
    """The rows of each split, the problems found on the way, and each row's key (its id, or
    its position without an id column) for the saved assignment."""

    rows: dict[str, np.ndarray]
    problems: list[ManifestProblem] = field(default_factory=list)
    keys: pa.Array | None = None


@dataclass
class RowSplitter:
    """How rows get their splits; see :class:`ManifestDatamodule` for the options."""

    split_column: str = "split"
    split_map: dict[str, str | None] | None = None
    fractions: SplitFractions | None = None
    assignment: Path | None = None
    id_column: str | None = None
    cross_validation: CrossValidation | None = None
    just_inference: bool = False
    from_folder: bool = False

    def __post_init__(self) -> None:
        if self.fractions is not None and self.from_folder:
            raise ManifestError(
                "split_fractions: the manifest is a folder of split files, which already say "
                "each row's split; point path at one manifest file, or drop split_fractions"
            )

    @property
    def key_name(self) -> str:
        """The assignment's key column: ``id_column``, else ``row``."""
        return self.id_column or ROW_KEY

    def uses_split_column(self) -> bool:
        return not (self.just_inference or self.assignment or self.fractions or self.from_folder)

    def columns(self) -> list[str]:
        """The columns splitting reads, to add to a ``columns`` selection."""
        needed = [self.id_column] if self.id_column else []
        if self.uses_split_column():
            needed.append(self.split_column)
        if self.fractions is not None and not self.just_inference:
            needed += self.fractions.columns()
        cv = self.cross_validation
        if cv is not None and not self.just_inference:
            needed += [c for c in (cv.stratify_column, cv.group_column) if c is not None]
        return list(dict.fromkeys(needed))

    def split(self, manifest: ManifestTable) -> RowSplit:
        """Assign every row of ``manifest``; problems are returned, not raised."""
        keys = self._keys(manifest)
        if self.just_inference:
            return RowSplit({"test": np.arange(manifest.num_rows, dtype=np.int64)}, [], keys)
        if self.assignment is not None:
            rows, new = apply_assignment(self.assignment, self.key_name, keys)
            if len(new):
                log.info(
                    "%d manifest rows are not in split_assignment %s: they are in no split",
                    len(new),
                    self.assignment,
                )
            problems: list[ManifestProblem] = []
        elif self.fractions is not None:
            rows, problems = self._fraction_rows(manifest)
        else:
            rows, problems = self._column_rows(manifest)
        if self.cross_validation is not None and not problems:
            rows.update(self._fold_rows(manifest, rows))
        return RowSplit(rows, problems, keys)

    def _keys(self, manifest: ManifestTable) -> pa.Array:
        if self.id_column is not None and self.id_column in manifest.column_names:
            return manifest.column(self.id_column)
        return pa.array(np.arange(manifest.num_rows, dtype=np.int64))

    def _canonical_order(self, manifest: ManifestTable, rows: np.ndarray) -> np.ndarray:
        """``rows`` sorted by id (row order without an id column), for the seeded splitters."""
        if self.id_column is None or self.id_column not in manifest.column_names:
            return np.sort(rows)
        ids = manifest.column(self.id_column).take(pa.array(rows, pa.int64()))
        return rows[pc.sort_indices(ids).to_numpy()]

    def _column_rows(
        self, manifest: ManifestTable
    ) -> tuple[dict[str, np.ndarray], list[ManifestProblem]]:
        if self.split_column not in manifest.column_names:
            problems = check_columns_present(
                manifest,
                [self.split_column],
                "split_column; or set split_fractions, or just_inference=True to predict",
            )
            return _no_rows(), problems
        assigned = assign_splits(manifest.column(self.split_column), self.split_map)
        problems = []
        if len(assigned.unknown):
            value = manifest.table.column(self.split_column)[int(assigned.unknown[0])]
            problems.append(
                problem_at_rows(
                    manifest,
                    self.split_column,
                    assigned.unknown,
                    f"unknown split value {value.as_py()!r}",
                    "use train/valid/test (or aliases), or map it with split_map",
                )
            )
        return assigned.rows, problems

    def _fraction_rows(
        self, manifest: ManifestTable
    ) -> tuple[dict[str, np.ndarray], list[ManifestProblem]]:
        fractions = self.fractions
        assert fractions is not None
        order = self._canonical_order(manifest, np.arange(manifest.num_rows, dtype=np.int64))
        values: dict[str, np.ndarray | None] = {}
        problems: list[ManifestProblem] = []
        for role, column in (
            ("stratify_column", fractions.stratify_column),
            ("group_column", fractions.group_column),
        ):
            found, trouble = _column_values(manifest, column, role, order)
            values[role], problems = found, problems + trouble
        if problems:
            return _no_rows(), problems
        try:
            codes_in_order = assign_fractions(
                len(order), fractions, values["stratify_column"], values["group_column"]
            )
        except ManifestError as error:
            raise ManifestError(f"{manifest.name}: {error}") from None
        codes = np.empty(manifest.num_rows, dtype=np.int8)
        codes[order] = codes_in_order
        return {split: np.flatnonzero(codes == code) for code, split in enumerate(SPLITS)}, []

    def _fold_rows(
        self, manifest: ManifestTable, rows: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Train and val rows of this fold: the train and val rows pooled, then re-split."""
        cv = self.cross_validation
        assert cv is not None
        pool = self._canonical_order(manifest, np.concatenate([rows["train"], rows["val"]]))

        def values(column: str | None, role: str) -> np.ndarray | None:
            if column is None:
                return None
            if column not in manifest.column_names:
                raise ManifestError(
                    f"{manifest.name}: cross_validation.{role}={column!r} is not a column "
                    f"(columns: {', '.join(manifest.column_names)})"
                )
            return np.asarray(manifest.column(column).to_numpy(zero_copy_only=False))[pool]

        folds = assign_folds(
            len(pool),
            cv.folds,
            stratify=values(cv.stratify_column, "stratify_column"),
            groups=values(cv.group_column, "group_column"),
            seed=cv.seed,
        )
        return {"train": np.sort(pool[folds != cv.fold]), "val": np.sort(pool[folds == cv.fold])}

    def no_rows_problem(self, manifest_name: str, split: str) -> list[ManifestProblem]:
        """The problem of an empty ``split`` (train, val or test), saying how to fill it."""
        if self.assignment is not None:
            return [
                ManifestProblem(
                    f"split_assignment {self.assignment}",
                    None,
                    f"no rows for the {split!r} split",
                    f"use an assignment saved from {manifest_name}",
                )
            ]
        if self.fractions is not None:
            if self.fractions.fractions[split] > 0:
                return []  # emptied by a problem already reported (a missing column, ...)
            return [
                ManifestProblem(
                    manifest_name,
                    None,
                    f"split_fractions gives the {split!r} split no rows",
                    f"give {split} a fraction above 0",
                )
            ]
        values = ", ".join(accepted_values(split, self.split_map)[:4])
        return [
            ManifestProblem(
                manifest_name,
                self.split_column,
                f"no rows for the {split!r} split",
                f"mark some rows with one of: {values} (or map your values with split_map)",
            )
        ]


def _no_rows() -> dict[str, np.ndarray]:
    return {split: np.empty(0, dtype=np.int64) for split in SPLITS}


def _column_values(
    manifest: ManifestTable, column: str | None, role: str, order: np.ndarray
) -> tuple[np.ndarray | None, list[ManifestProblem]]:
    """``column``'s values in ``order``, or the problem that stops splitting by it."""
    if column is None:
        return None, []
    problems = check_columns_present(manifest, [column], f"{role} of split_fractions")
    if problems:
        return None, problems
    values = manifest.column(column)
    missing = missing_rows(values)
    if len(missing):
        return None, [
            problem_at_rows(
                manifest,
                column,
                missing,
                f"missing value (the {role} of split_fractions)",
                "fill in a value or drop the row",
            )
        ]
    return np.asarray(values.to_numpy(zero_copy_only=False))[order], []
