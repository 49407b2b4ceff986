"""The first batch of a split, taken without disturbing the loader training will use.

A DataLoader's iterator draws from torch's generator, starts worker processes and (for
``ManifestDatamodule``'s resumable loader) fixes the training order: iterating it to look at
one batch would change what training then sees. The first batch is instead gathered
straight from the loader's dataset, rows ``0..batch_size-1`` in this process, and collated
with the loader's own ``collate_fn``, as the loader would collate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset


def first_batch(loader: Any) -> Any | None:
    """The batch of the first ``batch_size`` rows of ``loader``'s dataset, or None where that
    cannot be taken aside (not a DataLoader, an iterable or empty dataset, a custom batch
    sampler): the check that wanted it is then skipped."""
    if not isinstance(loader, DataLoader):
        return None
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset):
        return None
    try:
        size = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        return None
    if size == 0:
        return None
    if loader.batch_size is None:
        if loader.batch_sampler is not None:
            return None  # a batch sampler of its own: its batches are its business
        return loader.collate_fn(dataset[0])
    indices = list(range(min(loader.batch_size, size)))
    getitems = getattr(dataset, "__getitems__", None)
    items = getitems(indices) if getitems is not None else [dataset[i] for i in indices]
    return loader.collate_fn(items)


def describe(batch: Any, limit: int = 6) -> str:
    """A short account of a batch's keys, dtypes and shapes, for messages."""
    if isinstance(batch, Mapping):
        parts = [f"{key} {_describe_value(value)}" for key, value in list(batch.items())[:limit]]
        more = ", ..." if len(batch) > limit else ""
        return "{" + ", ".join(parts) + more + "}"
    if isinstance(batch, Sequence) and not isinstance(batch, str):
        parts = [_describe_value(value) for value in list(batch)[:limit]]
        return "[" + ", ".join(parts) + (", ..." if len(batch) > limit else "") + "]"
    return _describe_value(batch)


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {tuple(value.shape)}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def non_finite_entry(batch: Any, prefix: str = "") -> str | None:
    """The key (``x``, ``images.0``) of the first floating tensor in ``batch`` that holds a
    NaN or an infinity, or None."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
            return prefix or "the batch"
        return None
    if isinstance(batch, Mapping):
        entries: list[tuple[str, Any]] = [(str(key), value) for key, value in batch.items()]
    elif isinstance(batch, Sequence) and not isinstance(batch, str):
        entries = [(str(index), value) for index, value in enumerate(batch)]
    else:
        return None
    for key, value in entries:
        found = non_finite_entry(value, f"{prefix}.{key}" if prefix else key)
        if found is not None:
            return found
    return None
