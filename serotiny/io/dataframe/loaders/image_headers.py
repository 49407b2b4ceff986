"""Image files that are not what their name says, found before training instead of during it.

A file saved under ``.png`` that holds an HTML error page, an empty file left by a failed
copy, a TIFF renamed to ``.jpg``: each would stop a training at whatever batch first reads
it, after a run was opened and epochs were spent. Its first bytes tell, at the price of one
small read per file (next to the ``stat`` that the existence check already pays), so the
manifest checks look at them. A file cut short after a valid start still decodes only in
training; the loader then names it (``FileBound``'s read errors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from serotiny.io.dataframe.checks import ManifestProblem, problem_at_rows
from serotiny.io.dataframe.readers import ManifestTable

_HEAD_BYTES = 16

# Suffix -> (format, the first bytes any such file starts with).
_SIGNATURES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".png": ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("JPEG", (b"\xff\xd8\xff",)),
    ".jpeg": ("JPEG", (b"\xff\xd8\xff",)),
    ".bmp": ("BMP", (b"BM",)),
    ".gif": ("GIF", (b"GIF87a", b"GIF89a")),
    ".tif": ("TIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ".tiff": ("TIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
}


def _wrong_start(path: str) -> str | None:
    """Why ``path`` is not the image its suffix names (None: it starts as one should, or its
    format has no signature here)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".webp":
        kind, starts = "WebP", ()
    elif suffix in _SIGNATURES:
        kind, starts = _SIGNATURES[suffix]
    else:
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as error:
        return f"cannot be opened ({error.strerror or error})"
    if not head:
        return "is empty"
    if suffix == ".webp":
        good = head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    else:
        good = head.startswith(starts)
    return None if good else f"is not a {kind} image (it starts with {head!r})"


def check_image_headers(
    manifest: ManifestTable, column: str, needed_by: str
) -> list[ManifestProblem]:
    """Files of ``column`` whose first bytes are not those of the image format their suffix
    names (PNG, JPEG, BMP, GIF, WebP, TIFF; other formats are not looked at)."""
    values = manifest.column(column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return []  # check_files_exist reports a column that holds no paths
    encoded = values.dictionary_encode()
    reasons = [
        _wrong_start(path if Path(path).is_absolute() else str(manifest.base_dir / path))
        if path
        else None
        for path in encoded.dictionary.to_pylist()
    ]
    bad_codes = np.array([reason is not None for reason in reasons] + [False], dtype=bool)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(bad_codes[codes])
    if not len(rows):
        return []
    first = int(rows[0])
    path = values[first].as_py()
    return [
        problem_at_rows(
            manifest,
            column,
            rows,
            f"file {path!r} {reasons[int(codes[first])]} (read by {needed_by})",
            "replace the file with a readable image or drop the row",
        )
    ]
