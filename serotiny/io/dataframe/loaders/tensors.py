"""Tensors from loader data: dtypes named in YAML, and tensors that own their memory."""

from __future__ import annotations

import numpy as np
import torch

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "long": torch.int64,
    "bool": torch.bool,
}


def owned_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over a contiguous, writable copy of ``array`` unless it already is one.

    Arrays viewed straight from pyarrow are read-only; owning the memory instead lets the
    manifest table be freed once the loaders are bound.
    """
    if not (array.flags.writeable and array.flags.c_contiguous):
        array = np.array(array, order="C", copy=True)
    return torch.from_numpy(array)


def as_torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A torch dtype from a name as written in YAML (``float32``, ``torch.int64``) or a dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    return _DTYPES[name]
