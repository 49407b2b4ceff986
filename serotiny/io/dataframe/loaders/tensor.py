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
from serotiny.io.dataframe.loaders.base import FileLoader, as_torch_dtype, owned_tensor
from serotiny.io.dataframe.readers import ManifestTable

TENSOR_SUFFIXES = (".npy", ".pt", ".pth")


def read_tensor(path: str) -> torch.Tensor:
    """Read a ``.npy`` file (no pickled objects) or a ``.pt`` file holding one tensor.

    ``.pt`` files load with ``weights_only=True``: a manifest can point anywhere, and unpickling
    an arbitrary file can run arbitrary code.
    """
    if path.lower().endswith(".npy"):
        return owned_tensor(np.load(path, allow_pickle=False))
    value = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{path}: holds a {type(value).__name__}, expected one tensor")
    return value


class LoadTensor(FileLoader):
    """Tensors from a column of ``.npy`` / ``.pt`` file paths.

    Args:
        column: the column of file paths (relative paths are read from the manifest's folder).
        dtype: cast each tensor to this dtype (kept as saved when omitted).
        transform: a callable applied to each tensor.
    """

    def __init__(
        self,
        column: str,
        dtype: str | torch.dtype | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        self.column = column
        self.dtype = as_torch_dtype(dtype)
        self.transform = transform

    def read(self, path: str) -> Any:
        tensor = read_tensor(path)
        if self.dtype is not None:
            tensor = tensor.to(self.dtype)
        return self.transform(tensor) if self.transform is not None else tensor

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
