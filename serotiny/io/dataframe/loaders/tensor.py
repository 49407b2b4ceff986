"""Arrays saved one per file (``.npy`` or ``.pt``) and named in a manifest column."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch

from serotiny.io.dataframe.checks import ManifestProblem, problem_at_rows
from serotiny.io.dataframe.loaders.decoding import DecodingLoader, same_layout, stack_as
from serotiny.io.dataframe.loaders.tensors import as_torch_dtype, owned_tensor
from serotiny.io.dataframe.readers import ManifestTable

TENSOR_SUFFIXES = (".npy", ".pt", ".pth")


def read_tensor(path: str) -> torch.Tensor:
    """Read a ``.npy`` file (no pickled objects) or a ``.pt`` file holding one tensor.

    ``.pt`` files load with ``weights_only=True``: a manifest can point anywhere, and unpickling
    an arbitrary file can run arbitrary code.
    """
    value = decode_tensor(path)
    return owned_tensor(value) if isinstance(value, np.ndarray) else value


def decode_tensor(path: str) -> np.ndarray | torch.Tensor:
    """A ``.npy`` or ``.pt`` file's array, as numpy where numpy has its dtype (so the decoded
    cache can keep it); a tensor of another dtype (e.g. ``bfloat16``) stays a tensor."""
    if path.lower().endswith(".npy"):
        return np.load(path, allow_pickle=False)
    value = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{path}: holds a {type(value).__name__}, expected one tensor")
    try:
        return value.numpy(force=True)
    except TypeError:
        return value


class LoadTensor(DecodingLoader):
    """Tensors from a column of ``.npy`` / ``.pt`` file paths.

    Args:
        column: the column of file paths (relative paths are read from the manifest's folder).
        dtype: cast each tensor to this dtype (kept as saved when omitted).
        transform: a callable applied to each tensor.
        cache_dir: keep the arrays of ``.pt`` files in this folder, as for
            :class:`~serotiny.io.dataframe.loaders.LoadImage` (``.npy`` files are read as
            they are: they cost no more to read than a cache entry). Tensors of dtypes numpy
            lacks (e.g. ``bfloat16``) are always read from their files. Off (None) by default.
    """

    def __init__(
        self,
        column: str,
        dtype: str | torch.dtype | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.column = column
        self.dtype = as_torch_dtype(dtype)
        self.transform = transform
        self.cache_dir = cache_dir

    def decode(self, path: str) -> np.ndarray | torch.Tensor:
        return decode_tensor(path)

    def cacheable(self, path: str) -> bool:
        return not path.lower().endswith(".npy")

    def decoder_tag(self) -> str:
        return "LoadTensor"

    def convert(self, array: np.ndarray | torch.Tensor) -> Any:
        tensor = owned_tensor(array) if isinstance(array, np.ndarray) else array
        if self.dtype is not None:
            tensor = tensor.to(self.dtype)
        return self.transform(tensor) if self.transform is not None else tensor

    def converts_anywhere(self) -> bool:
        return self.transform is None

    def convert_batch(self, arrays: list[np.ndarray | torch.Tensor]) -> Any:
        if self.transform is not None or not same_layout(arrays):
            return super().convert_batch(arrays)
        return stack_as(arrays, self.dtype)

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        problems = super().problems(manifest)
        if problems:
            return problems
        paths = manifest.column(self.column)
        lowered = pc.utf8_lower(paths)
        known = reduce(pc.or_, [pc.ends_with(lowered, suffix) for suffix in TENSOR_SUFFIXES])
        rows = np.flatnonzero(~known.fill_null(False).to_numpy(zero_copy_only=False))
        if not len(rows):
            return []
        suffix = Path(paths[int(rows[0])].as_py()).suffix or "(none)"
        return [
            problem_at_rows(
                manifest,
                self.column,
                rows,
                f"file suffix {suffix!r} is not one of {', '.join(TENSOR_SUFFIXES)}",
                "save the arrays with numpy.save or torch.save, or use another loader",
            )
        ]
