"""Read manifests (CSV, gzipped CSV, Parquet, or a pandas DataFrame) into pyarrow tables.

Manifests stay pyarrow tables rather than pandas DataFrames: numeric columns then reach
numpy without a conversion pass, and a worker process that inherits the table never touches
per-row Python objects (whose reference counts would defeat copy-on-write).
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from serotiny.errors import ManifestError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_SUFFIXES = (".csv.gz", ".csv", ".parquet")

# pyarrow names the first column it failed to convert; we retry that column as text so the
# manifest checks can name the offending rows instead of failing on the whole file.
_CSV_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error")


@dataclass(frozen=True)
class SourceSpan:
    """Rows ``start:stop`` of a manifest came from ``file``, which had ``columns``."""

    file: str
    start: int
    stop: int
    columns: frozenset[str]


@dataclass
class ManifestTable:
    """A manifest as a pyarrow table, plus where its rows came from.

    ``positions`` maps the rows of a view (see :meth:`take`) back to rows of the whole
    manifest, so a problem found in a view is still reported with the file's own row numbers.
    """

    table: pa.Table
    sources: tuple[SourceSpan, ...]
    base_dir: Path
    positions: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def name(self) -> str:
        """The manifest's files, for messages."""
        return ", ".join(dict.fromkeys(source.file for source in self.sources))

    def column(self, name: str) -> pa.Array:
        """One column as a single contiguous pyarrow array."""
        return self.table.column(name).combine_chunks()

    def take(self, rows: np.ndarray) -> ManifestTable:
        """A view with only ``rows`` (positions in this table), keeping file row numbers."""
        rows = np.asarray(rows, dtype=np.int64)
        positions = rows if self.positions is None else self.positions[rows]
        return ManifestTable(
            self.table.take(pa.array(rows)), self.sources, self.base_dir, positions
        )

    def global_rows(self, rows: np.ndarray) -> np.ndarray:
        """Positions in the whole manifest of ``rows`` of this view."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows if self.positions is None else self.positions[rows]

    def sources_in_view(self) -> list[SourceSpan]:
        """The source files that contribute rows to this view."""
        if self.positions is None:
            return [s for s in self.sources if s.stop > s.start] or list(self.sources[:1])
        positions = self.positions
        return [
            source
            for source in self.sources
            if np.any((positions >= source.start) & (positions < source.stop))
        ]

    def locate(self, rows: np.ndarray) -> tuple[str, np.ndarray]:
        """The file holding the first of ``rows`` (view positions) and those rows' numbers in it.

        Row numbers count data rows from 0 (the header is not a row), as ``DataFrame.iloc`` does.
        """
        global_rows = np.sort(self.global_rows(rows))
        first = int(global_rows[0])
        for source in self.sources:
            if source.start <= first < source.stop:
                in_file = global_rows[(global_rows >= source.start) & (global_rows < source.stop)]
                return source.file, in_file - source.start
        return self.name, global_rows


def manifest_suffix(path: str | os.PathLike[str]) -> str | None:
    """The manifest format suffix of ``path`` (``.csv``, ``.csv.gz``, ``.parquet``), if any."""
    lowered = str(path).lower()
    return next((suffix for suffix in MANIFEST_SUFFIXES if lowered.endswith(suffix)), None)


def read_table(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """Read one manifest file with pyarrow; ``columns`` restricts what is read."""
    path = Path(path)
    suffix = manifest_suffix(path)
    if suffix is None:
        raise ManifestError(
            f"{path}: not a manifest file; use a .csv, .csv.gz or .parquet file, "
            "or a folder holding one such file per split"
        )
    if not path.is_file():
        raise ManifestError(f"{path}: manifest file not found; check the datamodule's `path`")
    available = _csv_header(path) if suffix != ".parquet" else _parquet_columns(path)
    if columns is not None:
        missing = [name for name in columns if name not in available]
        if missing:
            raise ManifestError(
                f"{path}: column {missing[0]!r} (asked for in `columns`) is not in the manifest; "
                f"its columns are {_shorten(available)}"
            )
    if suffix == ".parquet":
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    return _read_csv(path, available, columns)


def read_manifest(
    source: str | os.PathLike[str] | pd.DataFrame, columns: Sequence[str] | None = None
) -> ManifestTable:
    """Read a manifest file or wrap a DataFrame; relative paths in it resolve against its folder.

    A DataFrame has no folder, so its relative paths resolve against the working directory.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        table = read_table(path, columns)
        span = SourceSpan(str(path), 0, table.num_rows, frozenset(table.column_names))
        return ManifestTable(table, (span,), path.resolve().parent)
    table = dataframe_to_table(source, columns)
    span = SourceSpan("<DataFrame>", 0, table.num_rows, frozenset(table.column_names))
    return ManifestTable(table, (span,), Path.cwd())


def concat_manifests(parts: Sequence[ManifestTable], base_dir: Path) -> ManifestTable:
    """Stack manifests (e.g. one per split); a column missing from one file is null there."""
    tables = [part.table for part in parts]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        files = ", ".join(part.name for part in parts)
        raise ManifestError(
            f"{files}: the split files disagree on a column's type ({_first_line(error)}); "
            "make each column hold the same kind of value in every file"
        ) from None
    sources, offset = [], 0
    for part in parts:
        for span in part.sources:
            sources.append(
                SourceSpan(span.file, span.start + offset, span.stop + offset, span.columns)
            )
        offset += part.num_rows
    return ManifestTable(table, tuple(sources), base_dir)


def dataframe_to_table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pa.Table:
    """Convert a DataFrame to pyarrow, turning columns of mixed Python objects into text."""
    if columns is not None:
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise ManifestError(
                f"<DataFrame>: column {missing[0]!r} (asked for in `columns`) is not in it; "
                f"its columns are {_shorten([str(c) for c in frame.columns])}"
            )
        frame = frame[list(columns)]
    arrays, names = [], []
    for name in frame.columns:
        series = frame[name]
        try:
            array = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed objects (say numbers and strings) become text; the numeric checks then
            # point at the rows that do not parse, which is the useful report.
            array = pa.array([None if _is_missing(v) else str(v) for v in series], pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.table(arrays, names=names)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _read_csv(path: Path, header: list[str], columns: Sequence[str] | None) -> pa.Table:
    column_types: dict[str, pa.DataType] = {}
    for _ in range(len(header) + 1):
        convert = pacsv.ConvertOptions(
            include_columns=list(columns) if columns is not None else None,
            column_types=column_types,
        )
        try:
            return pacsv.read_csv(path, convert_options=convert)
        except pa.ArrowInvalid as error:
            match = _CSV_CONVERSION_ERROR.search(str(error))
            if match is None or int(match.group(1)) >= len(header):
                raise ManifestError(
                    f"{path}: cannot be read as CSV ({_first_line(error)}); check it is "
                    "comma-separated with one header row and the same number of fields per row"
                ) from None
            column_types[header[int(match.group(1))]] = pa.string()
    raise ManifestError(f"{path}: cannot be read as CSV; check its format")  # pragma: no cover


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ManifestError(
            f"{path}: cannot read the CSV header ({_first_line(error)}); "
            "check the file is a UTF-8 CSV (gzipped only if it ends in .gz)"
        ) from None


def _parquet_columns(path: Path) -> list[str]:
    """The columns of a Parquet file, or one line saying why it is not one."""
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as error:
        with open(path, "rb") as handle:
            start = handle.read(512)
        looks_like_text = bool(start) and b"\0" not in start and start.isascii()
        hint = (
            "it looks like a text (CSV?) file: name it .csv"
            if looks_like_text
            else "write it again with pandas' to_parquet or pyarrow"
        )
        raise ManifestError(
            f"{path}: cannot be read as Parquet ({_first_line(error)}); {hint}"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _shorten(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
