"""Images named in a manifest column: PNG/JPEG through pillow, TIFF through tifffile, and
microscopy formats (CZI, ND2, LIF, OME-Zarr, ...) through the optional Allen Cell ``bioio``."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serotiny.errors import SerotinyUserError
from serotiny.io.dataframe.checks import ManifestProblem
from serotiny.io.dataframe.loaders.decoding import DecodingLoader, same_layout, stack_as
from serotiny.io.dataframe.loaders.image_headers import check_image_headers
from serotiny.io.dataframe.loaders.tensors import as_torch_dtype, owned_tensor
from serotiny.io.dataframe.readers import ManifestTable

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TIFF_SUFFIXES = (".tif", ".tiff")
BIOIO_INSTALL = "pip install 'serotiny[bioio]' plus the format's plugin (e.g. bioio-czi)"


class MissingExtraError(SerotinyUserError, ImportError):
    """An optional dependency needed for this input is not installed."""


def load_bioio() -> Any:
    """Import ``bioio`` on first use, so that only projects that read microscopy formats need it."""
    try:
        return importlib.import_module("bioio")
    except ImportError:
        raise MissingExtraError(
            f"reading microscopy formats needs the optional bioio package; {BIOIO_INSTALL}"
        ) from None


def reader_for(path: str, reader: str = "auto") -> str:
    """Which reader reads ``path``: ``pillow``, ``tifffile`` or ``bioio``."""
    if reader != "auto":
        return reader
    lowered = path.lower()
    if lowered.endswith(".ome.tif") or lowered.endswith(".ome.tiff"):
        return "tifffile"
    if lowered.endswith(PILLOW_SUFFIXES):
        return "pillow"
    if lowered.endswith(TIFF_SUFFIXES):
        return "tifffile"
    return "bioio"


def read_channels_first(path: str, reader: str = "auto", bioio_dims: str = "CZYX") -> np.ndarray:
    """Read an image as an array whose first axis is channels (one channel for grayscale)."""
    kind = reader_for(path, reader)
    if kind == "pillow":
        from PIL import Image

        with Image.open(path) as image:
            array = np.asarray(image)
        return array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    if kind == "tifffile":
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            array, axes = series.asarray(), series.axes
        # TIFF records its axes: samples (S, e.g. RGB) or channels (C) become the first axis.
        for channel_axis in ("C", "S"):
            if channel_axis in axes:
                return np.moveaxis(array, axes.index(channel_axis), 0)
        return array[np.newaxis]
    if kind == "bioio":
        image = load_bioio().BioImage(path)
        return np.asarray(image.get_image_data(bioio_dims))
    raise ValueError(f"unknown image reader {reader!r}; use auto, pillow, tifffile or bioio")


class LoadImage(DecodingLoader):
    """Images from a column of file paths, as tensors of shape ``(channels, ...)``.

    Args:
        column: the column of image paths (relative paths are read from the manifest's folder).
        channels: channel indices to keep, in order (all channels when omitted).
        dtype: the tensor dtype (values are cast, not rescaled).
        transform: a callable applied to each image tensor after channel selection, e.g. a
            ``torchvision.transforms.v2`` pipeline given as a Hydra ``_target_``.
        reader: ``auto`` (by file suffix), ``pillow``, ``tifffile`` or ``bioio``.
        bioio_dims: the dimension order asked of bioio (``CZYX`` gives 3D stacks; ``CYX`` 2D).
        cache_dir: keep decoded images in this folder (see
            :class:`~serotiny.io.dataframe.loaders.DecodedCache`), e.g.
            ``${paths.root}/cache/images``; from the second epoch on, and in later runs, an
            image is read back instead of decoded. Off (None) by default.
    """

    def __init__(
        self,
        column: str,
        channels: Sequence[int] | None = None,
        dtype: str | torch.dtype = "float32",
        transform: Callable[[torch.Tensor], Any] | None = None,
        reader: str = "auto",
        bioio_dims: str = "CZYX",
        cache_dir: str | None = None,
    ) -> None:
        self.column = column
        self.channels = [int(channel) for channel in channels] if channels is not None else None
        self.dtype = as_torch_dtype(dtype)
        self.transform = transform
        self.reader = reader
        self.bioio_dims = bioio_dims
        self.cache_dir = cache_dir

    def decode(self, path: str) -> np.ndarray:
        return read_channels_first(path, self.reader, self.bioio_dims)

    def decoder_tag(self) -> str:
        # ``auto`` picks a reader by suffix, and the path is part of the key already.
        return f"LoadImage/{self.reader}/{self.bioio_dims}"

    def check(self, path: str, array: np.ndarray) -> None:
        if self.channels is not None and max(self.channels, default=-1) >= array.shape[0]:
            raise IndexError(
                f"{path}: has {array.shape[0]} channel(s), {self!r} asks for {self.channels}"
            )

    def convert(self, array: np.ndarray) -> Any:
        if self.channels is not None:
            array = array[self.channels]
        if array.dtype == np.uint16:
            array = array.astype(np.int32)  # torch has no uint16 arithmetic worth using
        image = owned_tensor(array).to(self.dtype)
        return self.transform(image) if self.transform is not None else image

    def converts_anywhere(self) -> bool:
        return self.transform is None

    def convert_batch(self, arrays: list[np.ndarray]) -> Any:
        if self.transform is not None or not same_layout(arrays):
            return super().convert_batch(arrays)
        # The same steps as convert, on the whole batch: stacking the decoded (often uint8)
        # arrays and casting once costs less than casting each image and stacking the results.
        # A uint16 image is cast straight to the dtype: the values are those of convert's
        # route through int32.
        if self.channels is not None:
            arrays = [array[self.channels] for array in arrays]
        return stack_as(arrays, self.dtype)

    def problems(self, manifest: ManifestTable) -> list[ManifestProblem]:
        problems = super().problems(manifest) or check_image_headers(
            manifest, self.column, repr(self)
        )
        if problems:
            return problems
        suffixes = {Path(path).suffix.lower() for path in _unique(manifest, self.column)}
        needs_bioio = sorted(s for s in suffixes if reader_for(f"x{s}", self.reader) == "bioio")
        if needs_bioio and importlib.util.find_spec("bioio") is None:
            return [
                ManifestProblem(
                    manifest.name,
                    self.column,
                    f"{', '.join(needs_bioio)} images need the optional bioio package",
                    BIOIO_INSTALL,
                )
            ]
        return []


def _unique(manifest: ManifestTable, column: str) -> list[str]:
    import pyarrow.compute as pc

    return [path for path in pc.unique(manifest.column(column)).to_pylist() if path]
