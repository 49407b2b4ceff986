"""File loaders that read in two steps, decode then convert, so the decoding can be cached.

:meth:`DecodingLoader.decode` turns a file into a numpy array and depends on the file alone
(plus the decoder's own settings): that is the slow part, and the part a
:class:`~serotiny.io.dataframe.loaders.DecodedCache` keeps when the loader is
given a ``cache_dir``. :meth:`DecodingLoader.convert` then makes the array a batch entry
(channel selection, dtype, a transform) every time, so the cache holds one entry per file
however the loaders that read it are configured, and random augmentations stay random.

Batches convert in one step where they can (:meth:`DecodingLoader.convert_batch`): the
decoded arrays are stacked as they are (e.g. ``uint8``) and cast once, which is cheaper than
casting each image and then stacking the larger results.

Example, a loader of ``.npz`` files::

    class LoadNpz(DecodingLoader):
        def __init__(self, column: str, key: str, cache_dir: str | None = None):
            self.column, self.key, self.cache_dir = column, key, cache_dir

        def decode(self, path):
            with np.load(path) as archive:
                return archive[self.key]

        def decoder_tag(self):
            return f"LoadNpz/{self.key}"  # the key changes what decode returns

        def convert(self, array):
            return torch.from_numpy(np.array(array, dtype=np.float32))
"""

from __future__ import annotations

import functools
import math
import os
import secrets
import weakref
from abc import abstractmethod
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import get_worker_info

from serotiny.errors import ManifestError
from serotiny.io.dataframe.loaders.base import (
    FILE_READ_ERRORS,
    BoundLoader,
    FileBound,
    FileLoader,
    collate_files,
    unreadable_file,
)
from serotiny.io.dataframe.loaders.decoded_cache import DecodedCache
from serotiny.io.dataframe.readers import ManifestTable


class DecodingLoader(FileLoader):
    """A :class:`~serotiny.io.dataframe.loaders.FileLoader` split into :meth:`decode` and
    :meth:`convert`, with an optional cache of decoded arrays in ``cache_dir``.

    Subclasses implement :meth:`decode` and :meth:`convert`, set ``cache_dir`` (None: no
    cache) and override :meth:`decoder_tag` when a setting changes what :meth:`decode`
    returns. A relative ``cache_dir`` is taken from the current folder when the loader is
    bound.
    """

    cache_dir: str | None = None

    @abstractmethod
    def decode(self, path: str) -> Any:
        """The file at ``path`` as an array (a numpy array is what the cache can keep)."""

    @abstractmethod
    def convert(self, array: Any) -> Any:
        """One batch entry from a decoded array (which may be read-only: copy before writing)."""

    def check(self, path: str, array: Any) -> None:
        """Raise if ``array``, decoded from ``path``, cannot be converted (nothing by default).

        Called on every decoded array, cached or not, so errors name the file."""

    def cacheable(self, path: str) -> bool:
        """Whether decoding ``path`` is worth caching (all files by default)."""
        return True

    def converts_anywhere(self) -> bool:
        """Whether :meth:`convert_batch` may run in the main process rather than in a
        DataLoader worker (see ``DecodedBound.reference``): true when it is cheap and
        deterministic. False by default; LoadImage and LoadTensor say true without a
        transform."""
        return False

    def decoder_tag(self) -> str:
        """What, besides the file, determines :meth:`decode`'s output; part of the cache key."""
        return type(self).__qualname__

    def convert_batch(self, arrays: list[Any]) -> Any:
        """A batch from decoded arrays; by default each converted, then collated."""
        return collate_files(self, [self.convert(array) for array in arrays])

    def read(self, path: str) -> Any:
        array = self.decode(path)
        self.check(path, array)
        return self.convert(array)

    def bind(self, manifest: ManifestTable) -> BoundLoader:
        cache = None
        if self.cache_dir is not None:
            cache = DecodedCache(os.fspath(self.cache_dir))
            cache.prepare()
        return DecodedBound(manifest.column(self.column), manifest.base_dir, self, cache)


class DecodedBound(FileBound):
    """The files of one manifest column, decoded through the loader's cache when it has one."""

    loader: DecodingLoader

    def __init__(
        self,
        paths: pa.Array,
        base_dir: os.PathLike[str] | str,
        loader: DecodingLoader,
        cache: DecodedCache | None,
    ) -> None:
        super().__init__(paths, base_dir, loader)
        self.cache = cache
        self.tag = loader.decoder_tag()
        #: Which rows this process has read from the cache by reference (see
        #: :meth:`read_in_memory`), found again through ``token`` when a batch arrives.
        self.arrived = np.zeros(len(paths), dtype=bool)
        self.token = secrets.token_hex(8)
        _ARRIVED[self.token] = self.arrived

    def decoded(self, path: str) -> Any:
        """``path`` decoded: from the cache when there is one, else from the file."""
        try:
            if self.cache is None or not self.loader.cacheable(path):
                array = self.loader.decode(path)
            else:
                array = self.cache.load(path, self.tag, self.loader.decode)
        except ManifestError:
            raise
        except FILE_READ_ERRORS as error:
            raise unreadable_file(self.loader, path, error) from error
        self.loader.check(path, array)
        return array

    def item(self, row: int) -> Any:
        return self.loader.convert(self.decoded(self.path(row)))

    def batch(self, rows: np.ndarray) -> Any:
        return self.loader.convert_batch([self.decoded(path) for path in self.batch_paths(rows)])

    def reference(self, rows: np.ndarray) -> CachedBatch | None:
        """``rows`` as their cache entries, once each is there (decoded and stored if it was
        not), or None without a cache, when the loader converts on its own process only
        (e.g. a random transform) or when a file cannot be cached."""
        if self.cache is None or not self.loader.converts_anywhere():
            return None
        paths = self.batch_paths(rows)
        for path in paths:
            if not (
                self.loader.cacheable(path)
                and self.cache.ensure(path, self.tag, self.loader.decode)
            ):
                return None
        return CachedBatch(self.cache.folder, self.tag, paths, self.loader, self.token, rows)

    def read_in_memory(self, rows: np.ndarray) -> bool:
        """Whether this process has read every file of ``rows`` from its cache entry (sent by
        reference from workers): their batches are then cheapest read here, without workers."""
        if self.cache is None or not self.loader.converts_anywhere():
            return False
        return bool(self.arrived[rows].all())


class CachedBatch:
    """A batch that travels between processes as the paths of its files and becomes the batch
    itself when unpickled, read from the decoded cache.

    Sending a batch of 64 float32 96x96 RGB images from a DataLoader worker puts 7 MB in a
    new shared-memory segment, which torch fills in advance: 5-6 ms here (page faults at about
    3 us a page on these virtual machines), more than reading the 64 images back from the
    cache (about 2 ms). The cache is already shared through the page cache, so a worker
    makes sure the entries exist and the main process reads them.
    """

    __slots__ = ("folder", "tag", "paths", "loader", "token", "rows")

    def __init__(
        self,
        folder: str,
        tag: str,
        paths: list[str],
        loader: DecodingLoader,
        token: str,
        rows: np.ndarray,
    ) -> None:
        self.folder = folder
        self.tag = tag
        self.paths = paths
        self.loader = loader
        self.token = token  # the bound loader's, so that it learns the rows have arrived
        self.rows = rows

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        arguments = (self.folder, self.tag, self.paths, self.loader, self.token, self.rows)
        return read_cached_batch, arguments


# One cache object per folder and process, so its parsed headers are kept between batches.
_CACHES: dict[str, DecodedCache] = {}
# Each bound loader's rows read by reference in this process, by its token; held weakly, so
# an entry goes with its bound loader.
_ARRIVED: weakref.WeakValueDictionary[str, np.ndarray] = weakref.WeakValueDictionary()


def read_cached_batch(
    folder: str,
    tag: str,
    paths: list[str],
    loader: DecodingLoader,
    token: str,
    rows: np.ndarray,
) -> Any:
    """The batch of ``paths``, read through the cache in ``folder`` (a file whose entry has
    gone or is damaged is decoded again); ``rows`` of the bound loader ``token`` are
    marked as arrived."""
    cache = _CACHES.get(folder) or _CACHES.setdefault(folder, DecodedCache(folder))
    arrays = []
    for path in paths:
        array = cache.load(path, tag, loader.decode)
        loader.check(path, array)
        arrays.append(array)
    arrived = _ARRIVED.get(token)
    if arrived is not None:  # None: its bound loader is gone
        arrived[rows] = True
    return loader.convert_batch(arrays)


def same_layout(arrays: list[Any]) -> bool:
    """Whether ``arrays`` are all numpy arrays of one shape and dtype (so they stack as is)."""
    if not arrays or not isinstance(arrays[0], np.ndarray):
        return False
    first = arrays[0]
    return all(
        isinstance(array, np.ndarray) and array.shape == first.shape and array.dtype == first.dtype
        for array in arrays
    )


def stack_as(arrays: list[np.ndarray], dtype: torch.dtype | None) -> torch.Tensor:
    """``arrays`` (one shape and dtype) stacked into one tensor of ``dtype`` (theirs if None).

    numpy stacks and casts: it runs on one thread, whereas torch would spread a cast this
    size over its intra-op threads, which measured several times slower than one thread on
    a busy 2-core machine.
    """
    batch = np.stack(arrays)
    if dtype is None:
        dtype = torch.from_numpy(batch[:0]).dtype
    if numpy_dtype(dtype) is None:  # e.g. bfloat16
        return torch.from_numpy(batch).to(dtype)
    out = new_batch_tensor(batch.shape, dtype)
    np.copyto(out.numpy(), batch, casting="unsafe")
    return out


def new_batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialized tensor for a batch, in shared memory when in a DataLoader worker.

    As ``default_collate`` makes its batches (``collate_tensor_fn``): a worker's batch goes
    to the main process in shared memory, and is otherwise copied there when pickled.
    """
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    prototype = torch.empty(0, dtype=dtype)
    try:
        storage = prototype._typed_storage()._new_shared(math.prod(shape), device="cpu")
    except AttributeError:  # torch's private API moved: fall back to the copy
        return torch.empty(shape, dtype=dtype)
    return prototype.new(storage).resize_(shape)


@functools.cache
def numpy_dtype(dtype: torch.dtype) -> np.dtype | None:
    """The numpy dtype of ``dtype``, or None where numpy has none (bfloat16, float8, ...)."""
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except TypeError:
        return None
