"""Manifest checks: each finds one kind of problem and reports it as one line.

Checks work on whole columns with pyarrow/numpy, so checking a million-row manifest costs
about as much as reading it. Every problem names the file, the column, the first offending
rows (counted from 0, header excluded, as ``DataFrame.iloc`` does) and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serotiny.errors import ManifestError
from serotiny.io.dataframe.readers import ManifestTable
from serotiny.io.progress import track

_ROWS_SHOWN = 5

# What pyarrow's CSV reader itself accepts as a number, so a text column that fails this
# holds at least one value a user must fix.
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity|nan)\s*$"


@dataclass(frozen=True)
class ManifestProblem:
    """One problem with a manifest; :attr:`message` is its one-line report."""

    file: str
    column: str | None
    what: str
    fix: str
    rows: tuple[int, ...] = ()
    num_rows: int = 0

    @property
    def message(self) -> str:
        where = self.file if self.column is None else f"{self.file}: column {self.column!r}"
        rows = ""
        if self.rows:
            shown = ", ".join(str(row) for row in self.rows)
            more = (
                f" (+{self.num_rows - len(self.rows)} more)"
                if self.num_rows > len(self.rows)
                else ""
            )
            rows = f" at row{'s' if self.num_rows > 1 else ''} {shown}{more} (0-based)"
        return f"{where}: {self.what}{rows}; {self.fix}"

    def __str__(self) -> str:
        return self.message


def problem_at_rows(
    manifest: ManifestTable, column: str | None, rows: np.ndarray, what: str, fix: str
) -> ManifestProblem:
    """A problem at ``rows`` of ``manifest`` (a view's positions), in its file's numbering."""
    file, in_file = manifest.locate(rows)
    return ManifestProblem(
        file, column, what, fix, tuple(int(r) for r in in_file[:_ROWS_SHOWN]), len(in_file)
    )


def raise_if_any(problems: Sequence[ManifestProblem]) -> None:
    """Raise :class:`ManifestError` for the first problem, counting the others on the same line."""
    if not problems:
        return
    message = problems[0].message
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more manifest problem(s); fix this one first)"
    error = ManifestError(message)
    error.problems = list(problems)  # type: ignore[attr-defined]  # all of them, for a full report
    raise error


def check_columns_present(
    manifest: ManifestTable, columns: Iterable[str], needed_by: str
) -> list[ManifestProblem]:
    """Columns missing from any file that contributes rows to ``manifest``."""
    problems = []
    for column in dict.fromkeys(columns):
        for source in manifest.sources_in_view():
            if column not in source.columns:
                problems.append(
                    ManifestProblem(
                        source.file,
                        column,
                        f"missing column (needed by {needed_by})",
                        f"add it, or fix the name; the columns are {_names(source.columns)}",
                    )
                )
                break
    return problems


def check_numeric(manifest: ManifestTable, column: str, needed_by: str) -> list[ManifestProblem]:
    """Text that is not a number, or missing/NaN values, in a column loaded as numbers."""
    values = manifest.table.column(column)
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # Blank cells are missing values (reported below), not text.
        blank = pc.equal(pc.utf8_trim_whitespace(values), "")
        bad = pc.and_(
            pc.invert(pc.match_substring_regex(values, _NUMBER, ignore_case=True)), pc.invert(blank)
        )
        rows = np.flatnonzero(bad.fill_null(False).to_numpy(zero_copy_only=False))
        if len(rows):
            sample = values[int(rows[0])].as_py()  # ChunkedArray indexes like an array
            return [
                problem_at_rows(
                    manifest,
                    column,
                    rows,
                    f"non-numeric value {sample!r} (loaded as numbers by {needed_by})",
                    "replace it with a number or drop the row",
                )
            ]
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and not (
        pa.types.is_boolean(kind) or pa.types.is_null(kind)
    ):
        return [
            ManifestProblem(
                manifest.name,
                column,
                f"holds {kind} values, not numbers (loaded as numbers by {needed_by})",
                "load it with LoadColumn instead, or convert it to numbers",
            )
        ]
    missing = missing_rows(values)
    if len(missing):
        return [
            problem_at_rows(
                manifest,
                column,
                missing,
                f"missing or NaN value (loaded as numbers by {needed_by})",
                "fill in a value or drop the row",
            )
        ]
    return check_finite(manifest, column, needed_by)


def check_finite(manifest: ManifestTable, column: str, needed_by: str) -> list[ManifestProblem]:
    """Infinite values in a column loaded as numbers: training on them gives NaN losses."""
    values = manifest.table.column(column)
    infinite = infinite_rows(values)
    if not len(infinite):
        return []
    return [
        problem_at_rows(
            manifest,
            column,
            infinite,
            f"infinite value {values[int(infinite[0])].as_py()!r} (loaded as numbers by "
            f"{needed_by}; training on it gives NaN losses)",
            "replace it with a finite number or drop the row",
        )
    ]


def infinite_rows(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows holding an infinity, in a floating or numeric-text column."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        infinite = pc.match_substring_regex(text, r"^[-+]?inf(inity)?$").fill_null(False)
    elif pa.types.is_floating(kind):
        infinite = pc.is_inf(values).fill_null(False)
        if not pc.any(infinite).as_py():  # the usual case: one pass, no row list
            return np.empty(0, dtype=np.int64)
    else:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(infinite.to_numpy(zero_copy_only=False))


def missing_rows(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Rows that are null, or NaN in a floating or numeric-text column."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        blank_or_nan = pc.is_in(text, value_set=pa.array(["", "nan"]))
        missing = pc.or_(pc.is_null(values), blank_or_nan.fill_null(False))
    elif pa.types.is_floating(kind):
        # Clean columns, the usual case, cost one vectorised pass and no row list.
        if values.null_count == 0 and not pc.any(pc.is_nan(values)).as_py():
            return np.empty(0, dtype=np.int64)
        missing = pc.is_null(values, nan_is_null=True)
    elif values.null_count == 0:
        return np.empty(0, dtype=np.int64)
    else:
        missing = pc.is_null(values)
    return np.flatnonzero(missing.to_numpy(zero_copy_only=False))


def check_files_exist(
    manifest: ManifestTable, column: str, needed_by: str
) -> list[ManifestProblem]:
    """Empty paths, or paths (relative ones against the manifest's folder) that do not exist."""
    values = manifest.column(column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return [
            ManifestProblem(
                manifest.name,
                column,
                f"holds {values.type} values, not file paths (read as files by {needed_by})",
                "point the loader at a column of file paths",
            )
        ]
    encoded = values.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    paths = encoded.dictionary.to_pylist()
    # One stat per file: minutes for a large manifest on a network file system, so shown.
    checked = track(paths, f"checking the files of column {column!r}", total=len(paths))
    exists = np.array(
        [bool(path) and _exists(manifest.base_dir, path) for path in checked]
        + [False],  # code -1 (a null path) never exists
        dtype=bool,
    )
    rows = np.flatnonzero(~exists[codes])
    if not len(rows):
        return []
    first = values[int(rows[0])].as_py()
    return [
        problem_at_rows(
            manifest,
            column,
            rows,
            f"file {first!r} not found" if first else "empty file path",
            f"fix the path (relative paths are read from {manifest.base_dir}) or drop the row",
        )
    ]


def check_unique(manifest: ManifestTable, column: str) -> list[ManifestProblem]:
    """Values that occur more than once in an id column."""
    values = manifest.column(column)
    encoded = values.dictionary_encode()
    codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    counts = np.bincount(codes, minlength=len(encoded.dictionary) + 1)
    rows = np.flatnonzero(counts[codes] > 1)
    if not len(rows):
        return []
    first = values[int(rows[0])].as_py()
    return [
        problem_at_rows(
            manifest,
            column,
            rows,
            f"duplicate id {first!r}",
            "make every id unique (or set id_column to a unique column)",
        )
    ]


def _exists(base_dir: Path, path: str) -> bool:
    return os.path.exists(path if os.path.isabs(path) else base_dir / path)


def _names(columns: Iterable[str], limit: int = 8) -> str:
    names = sorted(columns)
    shown = ", ".join(repr(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
