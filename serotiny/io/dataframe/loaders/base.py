"""The loader protocol: how a manifest's columns become one entry of every batch.

A loader is configuration (what to read, how); :meth:`Loader.bind` turns it, for one manifest,
into a :class:`BoundLoader` that holds the data and answers ``batch(rows)`` for an array of row
positions. Two kinds cover most needs, and a project adds its own by subclassing one of them:

- :class:`ArrayLoader`: values that live in the manifest itself (features, labels). They are
  extracted once into one contiguous tensor, and a batch is one indexing operation on it.
- :class:`FileLoader`: a column of file paths, read one file per item. This is the slow part of
  a pipeline, so it runs in the DataLoader's worker processes.

Example, a loader that yields the length of a text column::

    class LoadLength(ArrayLoader):
        def __init__(self, column: str):
            self.column = column
            self.dtype = torch.int64

        def columns(self, available):
            return [self.column]

        def to_array(self, manifest):
            return pc.utf8_length(manifest.column(self.column)).to_numpy()
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import default_collate

from serotiny.errors import ManifestError
from serotiny.io.dataframe.checks import (
    ManifestProblem,
    check_columns_present,
    check_files_exist,
    check_numeric,
)
from serotiny.io.dataframe.loaders.tensors import owned_tensor
from serotiny.io.dataframe.readers import ManifestTable, SourceSpan


class BoundLoader(ABC):
    """A loader's data for one manifest. Pickled into DataLoader workers, so it must hold only
    tensors, numpy arrays and pyarrow arrays: no per-row Python objects.

    ``in_memory`` is true when :meth:`batch` only indexes memory (no file reads): such batches
    are built in the main process, where a gather costs less than moving its result between
    processes.
    """

    in_memory: bool = False

    @abstractmethod
    def batch(self, rows: np.ndarray) -> Any:
        """The values of ``rows`` (positions in the bound manifest), already batched."""

    def item(self, row: int) -> Any:
        """The value of one row (used when a DataLoader fetches rows one at a time)."""
        return self.batch(np.array([row], dtype=np.int64))[0]

    def reference(self, rows: np.ndarray) -> Any | None:
        """A small picklable stand-in for ``batch(rows)`` that turns into that batch when
        unpickled, or None (the default) where the loader has none.

        A DataLoader worker may send this to the main process instead of the batch itself,
        when nothing but serotiny's own collate sees it in between.
        """
        return None

    def read_in_memory(self, rows: np.ndarray) -> bool:
        """Whether ``batch(rows)`` now only reads memory in this process: always for an
        in-memory loader; for a file loader, once this process has read every one of those
        files through :meth:`reference` (from a cache that the page cache keeps)."""
        return self.in_memory


class Loader(ABC):
    """Base class of all loaders. Subclass :class:`ArrayLoader` or :class:`FileLoader`."""

    # Attribute -> constructor argument, where they differ, for __repr__.
    _repr_names: dict[str, str] = {}

    @abstractmethod
    def columns(self, available: Sequence[str]) -> list[str]:
        """The manifest columns this loader reads, given the columns the manifest has."""

    @abstractmethod
    def bind(self, manifest: ManifestTable) -> BoundLoader:
        """Extract what this loader needs from ``manifest`` (called after :meth:`problems`)."""

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        """Problems that would stop this loader working on ``manifest``; none by default
        beyond missing columns. Override to add checks, calling ``super().problems``."""
        return check_columns_present(manifest, self.columns(manifest.column_names), repr(self))

    def __call__(self, row: Mapping[str, Any]) -> Any:
        """Load one manifest row given as a mapping (a dict or a pandas Series).

        Convenient in a notebook; training uses :meth:`bind` and whole batches instead.
        """
        table = pa.table({name: [value] for name, value in dict(row).items()})
        span = SourceSpan("<row>", 0, 1, frozenset(table.column_names))
        return self.bind(ManifestTable(table, (span,), Path.cwd())).item(0)

    def __repr__(self) -> str:
        # Only what differs from the defaults, so messages name a loader the way YAML wrote it.
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        params = []
        for name, value in vars(self).items():
            if name.startswith("_") or _same(value, defaults.get(name, inspect.Parameter.empty)):
                continue
            params.append(f"{self._repr_names.get(name, name)}={_show(value)}")
        return f"{type(self).__name__}({', '.join(params)})"


def _same(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return value is None or value == () or value is False
    try:
        return (
            bool(value == default) or _show(value) == _show(default) or (not value and not default)
        )
    except (TypeError, ValueError, RuntimeError):
        return False


def _show(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return repr(str(value).removeprefix("torch."))
    if isinstance(value, tuple | list) and len(value) == 1:
        return _show(value[0])
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return repr(value)


class TensorBound(BoundLoader):
    """A contiguous tensor whose first axis is the manifest's rows."""

    in_memory = True

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values

    def batch(self, rows: np.ndarray) -> torch.Tensor:
        # One gather per batch, no per-row Python work. index_select measured ~3x faster than
        # ``values[index]``, which goes through torch's general advanced-indexing machinery.
        return torch.index_select(self.values, 0, torch.from_numpy(rows))

    def item(self, row: int) -> torch.Tensor:
        return self.values[row]


class ArrayLoader(Loader):
    """A loader of values stored in the manifest, extracted once into one tensor.

    Subclasses implement :meth:`columns` and :meth:`to_array`; ``numeric_columns`` lists the
    columns to check for text and NaN values (all of :meth:`columns` by default).
    """

    dtype: torch.dtype | None = None

    @abstractmethod
    def to_array(self, manifest: ManifestTable) -> np.ndarray:
        """An array with one entry (scalar or array) per manifest row."""

    def numeric_columns(self, available: Sequence[str]) -> list[str]:
        """Columns whose values must all be numbers."""
        return self.columns(available)

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        problems = super().problems(manifest)
        if problems:
            return problems
        for column in self.numeric_columns(manifest.column_names):
            problems += check_numeric(manifest, column, repr(self))
        return problems

    def bind(self, manifest: ManifestTable) -> BoundLoader:
        values = owned_tensor(self.to_array(manifest))
        if self.dtype is not None and values.dtype != self.dtype:
            values = values.to(self.dtype)
        return TensorBound(values)


class FileBound(BoundLoader):
    """File paths as one pyarrow array (offsets and bytes, not a list of Python strings)."""

    def __init__(self, paths: pa.Array, base_dir: Path, loader: FileLoader) -> None:
        self.paths = paths
        self.base_dir = os.fspath(base_dir)
        self.loader = loader

    def path(self, row: int) -> str:
        """The full path of ``row``'s file (relative paths resolve against the manifest)."""
        return self.full_path(self.paths[row].as_py())

    def batch_paths(self, rows: np.ndarray) -> list[str]:
        """The full paths of ``rows``' files: one pyarrow take, not one scalar per row."""
        return [self.full_path(path) for path in self.paths.take(rows).to_pylist()]

    def full_path(self, path: str) -> str:
        """``path`` as read from the manifest, resolved against the manifest's folder."""
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def item(self, row: int) -> Any:
        return read_file(self.loader, self.path(row))

    def batch(self, rows: np.ndarray) -> Any:
        return collate_files(
            self.loader, [read_file(self.loader, path) for path in self.batch_paths(rows)]
        )


#: What reading a damaged or vanished file raises: OSError (pillow's unidentified or truncated
#: image, a file gone), ValueError (tifffile, numpy), SyntaxError (pillow's broken PNG
#: chunks), EOFError (a file cut short).
FILE_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError)


def unreadable_file(loader: Loader, path: str, error: BaseException) -> ManifestError:
    """The one-line error for a file of the manifest that ``loader`` cannot read."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return ManifestError(
        f"{path}: cannot be read by {loader!r} ({type(error).__name__}: {reason}); replace "
        "the file or drop its row from the manifest"
    )


def read_file(loader: FileLoader, path: str) -> Any:
    """``loader.read(path)``, its read errors turned into one line naming the file."""
    try:
        return loader.read(path)
    except ManifestError:
        raise
    except FILE_READ_ERRORS as error:
        raise unreadable_file(loader, path, error) from error


def collate_files(loader: Loader, items: list[Any]) -> Any:
    """``items`` (one per file) batched by ``default_collate``, with a message that names the
    fix when the files' shapes differ."""
    try:
        return default_collate(items)
    except RuntimeError as error:
        shapes = sorted({tuple(getattr(item, "shape", ())) for item in items})
        raise RuntimeError(
            f"{loader!r}: cannot stack files of shapes {shapes} into one batch "
            f"({error}); add a transform that crops or resizes them to one shape"
        ) from error


class FileLoader(Loader):
    """A loader that reads, per row, the file named in ``column``.

    Subclasses implement :meth:`read`. Relative paths resolve against the manifest's folder.
    A loader whose reading is decoding (images, pickled tensors) subclasses
    :class:`~serotiny.io.dataframe.loaders.DecodingLoader` instead, which can cache it.
    """

    column: str

    @abstractmethod
    def read(self, path: str) -> Any:
        """Read one file into a tensor (or anything ``default_collate`` can batch)."""

    def columns(self, available: Sequence[str]) -> list[str]:
        return [self.column]

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        problems = super().problems(manifest)
        return problems or check_files_exist(manifest, self.column, repr(self))

    def bind(self, manifest: ManifestTable) -> BoundLoader:
        return FileBound(manifest.column(self.column), manifest.base_dir, self)


def text_or_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """One string or a list of strings (a Hydra ListConfig included) as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)
