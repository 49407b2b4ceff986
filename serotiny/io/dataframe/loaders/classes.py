"""Class labels (integers or strings) as class indices, optionally one-hot."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from serotiny.io.dataframe.checks import ManifestProblem, missing_rows, problem_at_rows
from serotiny.io.dataframe.loaders.base import ArrayLoader
from serotiny.io.dataframe.readers import ManifestTable


class LoadClass(ArrayLoader):
    """A label column as class indices: int64 of shape ``(batch,)``, or float32 one-hot
    ``(batch, num_classes)`` when ``one_hot`` is true.

    - ``classes`` given: a label's index is its position in that list (labels are compared as
      text, so ``classes: [a, b]`` and ``classes: [0, 1]`` both work from YAML).
    - otherwise integer labels are the indices themselves (``0 <= label < num_classes``) and
      text labels are numbered in sorted order over the whole manifest, so every split agrees.

    ``num_classes`` defaults to the number of classes found; a label outside it is a manifest
    problem.
    """

    def __init__(
        self,
        column: str,
        num_classes: int | None = None,
        one_hot: bool = False,
        classes: Sequence[str | int] | None = None,
    ) -> None:
        self.column = column
        self.num_classes = num_classes
        self.one_hot = one_hot
        self.classes = [str(label) for label in classes] if classes is not None else None
        if self.classes is not None and num_classes is not None and num_classes < len(classes):
            raise ValueError(
                f"LoadClass({column!r}): num_classes={num_classes} is less than the "
                f"{len(self.classes)} classes listed"
            )

    def columns(self, available: Sequence[str]) -> list[str]:
        return [self.column]

    def numeric_columns(self, available: Sequence[str]) -> list[str]:
        return []  # text labels are fine; _labels checks the values itself

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        problems = super().problems(manifest)
        if problems:
            return problems
        values = manifest.column(self.column)
        missing = missing_rows(values)
        if len(missing):
            return [self._problem(manifest, missing, "missing label", "fill it in or drop the row")]
        indices, known = self._indices(values)
        bad = np.flatnonzero(~known)
        if len(bad):
            return [
                self._problem(
                    manifest,
                    bad,
                    f"label {values[int(bad[0])].as_py()!r} "
                    + (
                        "is not in `classes`"
                        if self.classes is not None
                        else "is not a class index"
                    ),
                    self._fix(),
                )
            ]
        limit = self.num_classes
        if limit is not None and len(indices) and int(indices.max()) >= limit:
            rows = np.flatnonzero(indices >= limit)
            label = values[int(rows[0])].as_py()
            return [
                self._problem(
                    manifest,
                    rows,
                    f"label {label!r} is class {int(indices[rows[0]])}, beyond num_classes={limit}",
                    self._fix(),
                )
            ]
        return []

    def _fix(self) -> str:
        if self.classes is not None:
            return "add the label to `classes` or fix the row"
        return "use labels 0..num_classes-1, raise num_classes, or list `classes`"

    def _problem(self, manifest: ManifestTable, rows: np.ndarray, what: str, fix: str):
        return problem_at_rows(manifest, self.column, rows, f"{what} (for {self!r})", fix)

    def _indices(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Class index per row and whether the row's label is a valid class at all."""
        if self.classes is not None:
            text = values if _is_text(values.type) else pc.cast(values, pa.string())
            found = pc.index_in(text, value_set=pa.array(self.classes, pa.string()))
            indices = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            return indices, indices >= 0
        if _is_text(values.type):
            encoded = pc.dictionary_encode(values)
            labels = encoded.dictionary.to_pylist()
            order = np.argsort(np.array(labels, dtype=object), kind="stable")
            rank = np.empty(len(labels), dtype=np.int64)
            rank[order] = np.arange(len(labels))
            indices = rank[encoded.indices.to_numpy(zero_copy_only=False)]
            return indices, np.ones(len(indices), dtype=bool)
        numbers = values.to_numpy(zero_copy_only=False)
        if not pa.types.is_integer(values.type):
            numbers = numbers.astype(np.float64)
        integral = (numbers == np.round(numbers)) & (numbers >= 0)
        return np.where(integral, numbers, -1).astype(np.int64), integral

    def class_names(self, manifest: ManifestTable) -> list[str]:
        """The label of each class index, in order (index ``i`` is ``class_names[i]``)."""
        if self.classes is not None:
            return list(self.classes)
        values = manifest.column(self.column)
        if _is_text(values.type):
            return sorted(pc.unique(values).to_pylist())
        return [str(index) for index in range(self._count(manifest))]

    def _count(self, manifest: ManifestTable) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if self.classes is not None:
            return len(self.classes)
        indices, _ = self._indices(manifest.column(self.column))
        return int(indices.max()) + 1 if len(indices) else 0

    def to_array(self, manifest: ManifestTable) -> np.ndarray:
        indices, _ = self._indices(manifest.column(self.column))
        if not self.one_hot:
            return indices
        one_hot = np.zeros((len(indices), self._count(manifest)), dtype=np.float32)
        one_hot[np.arange(len(indices)), indices] = 1.0
        return one_hot

    @property
    def dtype(self) -> torch.dtype:  # type: ignore[override]
        return torch.float32 if self.one_hot else torch.int64


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
