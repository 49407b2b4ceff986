"""A run's split assignment: which row (by id) is in which split, saved and read back.

A split drawn from fractions depends on every row of the manifest, so a manifest that gains
rows would split differently next time. Saving the assignment with the run, and handing it
back to resume, test and predict, keeps their rows exactly the run's.

The table has two columns: the id column (the datamodule's ``id_column``; ``row``, the row's
position, when there is none) and ``split`` (``train``, ``val``, ``test``, or empty for a row
in no split). Reading it back:

- a manifest row whose id is not in the table (a row added since) is in no split: it is
  never trained, validated or tested on, though a whole-manifest predict still predicts it;
- an id of the table missing from the manifest (a row removed since) is an error, since the
  run's splits can then not be rebuilt.

Ids are matched as text, so ``7`` in a CSV file matches ``7`` in a Parquet manifest.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from serotiny.datamodules.splits import SPLITS, canonical_split
from serotiny.errors import ManifestError
from serotiny.io.dataframe.readers import manifest_suffix

# The file name the train command saves the assignment under, in the run's artifacts.
ASSIGNMENT_FILE = "split_assignment.csv"
# The key column when the datamodule has no id_column: rows are matched by position.
ROW_KEY = "row"
SPLIT_KEY = "split"


def assignment_table(keys: pa.Array, key_name: str, rows: dict[str, np.ndarray]) -> pa.Table:
    """The assignment of every row: ``key_name`` from ``keys``, and its split (null if none)."""
    codes = np.full(len(keys), len(SPLITS), dtype=np.int64)
    for code, split in enumerate(SPLITS):
        codes[rows.get(split, np.empty(0, dtype=np.int64))] = code
    names = pa.array([*SPLITS, None], pa.string())
    return pa.table({key_name: keys, SPLIT_KEY: names.take(pa.array(codes))})


def write_assignment(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` as CSV or Parquet, by ``path``'s suffix; returns the path."""
    path = Path(path)
    suffix = manifest_suffix(path)
    if suffix not in (".csv", ".parquet"):
        raise ManifestError(f"{path}: save a split assignment as .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


def read_assignment(path: str | os.PathLike[str], key_name: str) -> tuple[pa.Array, np.ndarray]:
    """The ids (as text) of a saved assignment and each one's split code (``len(SPLITS)``:
    in no split). Every problem is a one-line :class:`ManifestError` naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ManifestError(
            f"split_assignment: {path} not found; point it at a saved split_assignment.csv "
            "or .parquet"
        )
    table = _read(path, key_name)
    if key_name not in table.column_names or SPLIT_KEY not in table.column_names:
        raise ManifestError(
            f"split_assignment {path}: needs the columns {key_name!r} (the id_column) and "
            f"{SPLIT_KEY!r}, but has {table.column_names}; save it from a datamodule with the "
            "same id_column"
        )
    keys = pc.cast(table.column(key_name).combine_chunks(), pa.string())
    if len(pc.unique(keys)) != len(keys):
        counts = pc.value_counts(keys)
        twice = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"]
        raise ManifestError(
            f"split_assignment {path}: id {twice.as_py()!r} is listed more than once; "
            "give each id one split"
        )
    return keys, _split_codes(path, table.column(SPLIT_KEY).combine_chunks())


def _read(path: Path, key_name: str) -> pa.Table:
    suffix = manifest_suffix(path)
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix in (".csv", ".csv.gz"):
            # Ids read as text, so "007" stays "007"; empty split cells are "no split".
            convert = pacsv.ConvertOptions(
                column_types={key_name: pa.string(), SPLIT_KEY: pa.string()},
                strings_can_be_null=True,
            )
            return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as error:
        raise ManifestError(
            f"split_assignment {path}: cannot be read ({str(error).splitlines()[0]}); "
            "point it at a file saved by save_split_assignment"
        ) from None
    raise ManifestError(f"split_assignment {path}: use a .csv or .parquet file")


def _split_codes(path: Path, values: pa.Array) -> np.ndarray:
    encoded = pc.dictionary_encode(pc.cast(values, pa.string()))
    codes_of_values = []
    for value in encoded.dictionary.to_pylist():
        split = canonical_split(value) if value and value.strip() else None
        if split is None and value and value.strip():
            raise ManifestError(
                f"split_assignment {path}: unknown split {value!r}; use train, val, test, or "
                "leave it empty for a row in no split"
            )
        codes_of_values.append(len(SPLITS) if split is None else SPLITS.index(split))
    lookup = np.array([*codes_of_values, len(SPLITS)], dtype=np.int64)
    indices = encoded.indices.fill_null(len(codes_of_values)).to_numpy(zero_copy_only=False)
    return lookup[indices]


def apply_assignment(
    path: str | os.PathLike[str], key_name: str, manifest_keys: pa.Array
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of each split by a saved assignment, and the rows it does not list (new rows).

    ``manifest_keys`` are the manifest's ids (or row positions); ids the assignment lists but
    the manifest lacks are a one-line :class:`ManifestError`.
    """
    keys, codes = read_assignment(path, key_name)
    text = pc.cast(manifest_keys, pa.string())
    gone = pc.invert(pc.is_in(keys, value_set=text))
    if pc.any(gone).as_py():
        missing = keys.filter(gone)
        raise ManifestError(
            f"split_assignment {Path(path).expanduser()}: {len(missing)} listed id(s) are not "
            f"in the manifest's {key_name!r} column (first: {missing[0].as_py()!r}); the "
            "manifest lost rows since the assignment was saved: restore them or save a new one"
        )
    where = pc.index_in(text, value_set=keys)
    listed = pc.is_valid(where).to_numpy(zero_copy_only=False)
    positions = where.fill_null(0).to_numpy(zero_copy_only=False)
    code_of_row = np.where(listed, codes[positions] if len(codes) else len(SPLITS), len(SPLITS))
    rows = {split: np.flatnonzero(code_of_row == code) for code, split in enumerate(SPLITS)}
    return rows, np.flatnonzero(~listed)
