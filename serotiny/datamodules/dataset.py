"""A map-style Dataset that builds whole batches by indexing columns.

``torch.utils.data.DataLoader`` calls ``__getitems__`` with a batch of indices when a dataset
has it, so a batch is one gather per loader instead of ``batch_size`` row lookups and a
collate. Any sampler works, Lightning's ``DistributedSampler`` included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from serotiny.io.dataframe.loaders.base import BoundLoader


class ManifestDataset(Dataset):
    """Rows of a manifest as dicts keyed by loader name.

    Args:
        loaders: bound loaders, each holding its values for the rows it was bound on.
        rows: positions, in those bound values, of this dataset's rows (all of them if None).
        length: the number of rows when ``rows`` is None.
    """

    def __init__(
        self, loaders: Mapping[str, BoundLoader], rows: np.ndarray | None, length: int
    ) -> None:
        self.loaders = dict(loaders)
        # int64 numpy, not a list: a forked worker then shares these pages instead of copying
        # them as it touches one Python int after another.
        self.rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        self.length = length if rows is None else len(rows)
        #: In a worker, send a batch of cached files as their cache entries' paths, which the
        #: main process reads (``BoundLoader.reference``): cheaper than moving the decoded
        #: arrays through shared memory. Only serotiny's ``collate_batch`` passes them on.
        self.by_reference = False
        self._files_came_from_cache = False

    @property
    def in_memory(self) -> bool:
        """True when no loader reads files: batches are then cheapest in the main process."""
        return all(loader.in_memory for loader in self.loaders.values())

    def files_came_from_cache(self) -> bool:
        """True when this dataset reads files and this process has read every one of them
        from the decoded cache by reference (an epoch through workers filled it): its
        batches then only read memory here. Once true, it stays true. A dataset that reads
        no files answers False: whether its batches use workers is decided when its
        DataLoader is made (``ManifestDatamodule.num_workers_for``)."""
        if not self._files_came_from_cache and not self.in_memory:
            rows = self.rows if self.rows is not None else np.arange(self.length)
            self._files_came_from_cache = all(
                loader.read_in_memory(rows) for loader in self.loaders.values()
            )
        return self._files_came_from_cache

    def __len__(self) -> int:
        return self.length

    def _positions(self, indices: Sequence[int]) -> np.ndarray:
        positions = np.fromiter(indices, dtype=np.int64, count=len(indices))
        if self.rows is not None:
            return self.rows[positions]  # numpy checks bounds and counts negatives from the end
        if len(positions) and (positions.min() < 0 or positions.max() >= self.length):
            if positions.min() < -self.length or positions.max() >= self.length:
                raise IndexError(f"index out of range for a dataset of {self.length} rows")
            positions = positions % self.length
        return positions

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        positions = self._positions(indices)
        if self.by_reference and get_worker_info() is not None:
            return {name: _by_reference(loader, positions) for name, loader in self.loaders.items()}
        return {name: loader.batch(positions) for name, loader in self.loaders.items()}

    def __getitem__(self, index: int) -> dict[str, Any]:
        position = int(self._positions([index])[0])
        return {name: loader.item(position) for name, loader in self.loaders.items()}


def _by_reference(loader: BoundLoader, positions: np.ndarray) -> Any:
    """The loader's batch as a reference to its cache entries, or the batch itself."""
    reference = loader.reference(positions)
    return loader.batch(positions) if reference is None else reference


# Below this size a batch tensor leaving a worker is pickled by value through the pipe, which
# measured 1.7x (4 MiB) to 2.6x (64 KiB) faster here than torch's default of a shared-memory
# segment and a file descriptor handed over a socket for every tensor.
BY_VALUE_MAX_BYTES = 4 * 1024 * 1024


def _tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _ByValue:
    """A tensor that pickles as its numpy bytes and unpickles as a tensor again."""

    __slots__ = ("array",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.array = tensor.numpy()

    def __reduce__(self) -> tuple[Any, tuple[np.ndarray]]:
        return _tensor_from_numpy, (self.array,)


def _for_the_pipe(value: Any) -> Any:
    if (
        type(value) is torch.Tensor
        and value.device.type == "cpu"
        and value.dtype not in (torch.bfloat16, torch.complex32)
        and value.element_size() * value.numel() <= BY_VALUE_MAX_BYTES
    ):
        return _ByValue(value.contiguous())
    return value


def collate_batch(batch: Mapping[str, Any] | list[Any]) -> Any:
    """Collate that leaves a batch built by ``__getitems__`` alone and collates lists of rows.

    In a worker process, small tensors are marked to travel to the main process by value;
    they arrive as ordinary tensors.
    """
    collated = dict(batch) if isinstance(batch, Mapping) else default_collate(batch)
    if get_worker_info() is not None and isinstance(collated, dict):
        return {name: _for_the_pipe(value) for name, value in collated.items()}
    return collated
