"""Split names, which rows belong to which split, and split folders.

Splits are canonical (``train``, ``val``, ``test``); the spellings people use for them are
aliases, matched case-insensitively. ``split_map`` maps any other value (or a split file's
name) to a split, or to ``null`` to leave those rows out of every split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serotiny.errors import ManifestError
from serotiny.io.dataframe.readers import (
    ManifestTable,
    concat_manifests,
    manifest_suffix,
    read_manifest,
)

SPLITS = ("train", "val", "test")

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "fit": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "validate": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "holdout": "test",
}

# A split_map value that sends rows to no split.
_EXCLUDED = ""


def canonical_split(name: object) -> str | None:
    """``train``, ``val`` or ``test`` for a split name or alias (any case), else None."""
    return SPLIT_ALIASES.get(str(name).strip().lower())


def split_lookup(split_map: Mapping[str, str | None] | None) -> dict[str, str]:
    """Raw split value -> canonical split (or ``""`` for "no split"), aliases included."""
    lookup = dict(SPLIT_ALIASES)
    for raw, target in (split_map or {}).items():
        if target is None or str(target).strip().lower() in ("", "none", "null"):
            lookup[str(raw).strip().lower()] = _EXCLUDED
            continue
        split = canonical_split(target)
        if split is None:
            raise ManifestError(
                f"split_map: {raw!r} maps to {target!r}, which is not a split; "
                f"map it to one of {', '.join(SPLITS)} (or null to leave those rows out)"
            )
        lookup[str(raw).strip().lower()] = split
    return lookup


@dataclass(frozen=True)
class SplitRows:
    """Row positions of each split, and the rows whose split value is unknown."""

    rows: dict[str, np.ndarray]
    unknown: np.ndarray


def assign_splits(values: pa.Array, split_map: Mapping[str, str | None] | None) -> SplitRows:
    """Assign every row to a split from its split-column value, vectorised over the column."""
    lookup = split_lookup(split_map)
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    encoded = pc.dictionary_encode(text)
    # One code per distinct value: 0..2 a split, 3 excluded, 4 unknown; nulls are unknown.
    codes_of_values = np.array(
        [_code(lookup.get(str(value).strip().lower())) for value in encoded.dictionary.to_pylist()]
        + [4],
        dtype=np.int8,
    )
    indices = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    codes = codes_of_values[indices]
    rows = {split: np.flatnonzero(codes == code) for code, split in enumerate(SPLITS)}
    return SplitRows(rows, np.flatnonzero(codes == 4))


def _code(split: str | None) -> int:
    if split is None:
        return 4
    return 3 if split == _EXCLUDED else SPLITS.index(split)


def accepted_values(split: str, split_map: Mapping[str, str | None] | None) -> list[str]:
    """The values that mean ``split``, for messages."""
    return [raw for raw, target in split_lookup(split_map).items() if target == split]


def find_split_files(folder: Path, split_map: Mapping[str, str | None] | None) -> dict[str, Path]:
    """The manifest file of each split in ``folder`` (``train.csv``, ``valid.parquet``, ...)."""
    lookup = split_lookup(split_map)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = manifest_suffix(path)
        if suffix is None or not path.is_file():
            continue
        split = lookup.get(path.name[: -len(suffix)].strip().lower())
        if not split:
            continue
        if split in found:
            raise ManifestError(
                f"{folder}: both {found[split].name} and {path.name} hold the {split!r} split; "
                "keep one file per split"
            )
        found[split] = path
    return found


def read_split_folder(
    folder: Path,
    split_column: str,
    split_map: Mapping[str, str | None] | None = None,
    columns: Sequence[str] | None = None,
) -> ManifestTable:
    """Read a folder with one manifest per split into one table with a ``split_column``."""
    files = find_split_files(folder, split_map)
    if not files:
        raise ManifestError(
            f"{folder}: no split files found; add train, valid and test files "
            "(.csv, .csv.gz or .parquet), e.g. train.csv"
        )
    parts = []
    for split in SPLITS:
        if split not in files:
            continue
        part = read_manifest(files[split], columns)
        # The file name decides the split; a split column inside the file would only disagree.
        table = part.table
        if split_column in table.column_names:
            table = table.drop_columns([split_column])
        labels = pa.repeat(pa.scalar(split, pa.string()), part.num_rows)
        part.table = table.append_column(split_column, labels)
        parts.append(part)
    return concat_manifests(parts, folder.resolve())
