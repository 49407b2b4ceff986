"""Loaders: how manifest columns become the entries of a batch (see :mod:`.base` to write one)."""

from __future__ import annotations

from serotiny.io.dataframe.loaders.base import ArrayLoader, BoundLoader, FileLoader, Loader
from serotiny.io.dataframe.loaders.classes import LoadClass
from serotiny.io.dataframe.loaders.columns import LoadColumn, LoadColumns
from serotiny.io.dataframe.loaders.decoded_cache import DecodedCache
from serotiny.io.dataframe.loaders.decoding import DecodingLoader
from serotiny.io.dataframe.loaders.image import LoadImage, MissingExtraError
from serotiny.io.dataframe.loaders.tensor import LoadTensor

__all__ = [
    "ArrayLoader",
    "BoundLoader",
    "DecodedCache",
    "DecodingLoader",
    "FileLoader",
    "LoadClass",
    "LoadColumn",
    "LoadColumns",
    "LoadImage",
    "LoadTensor",
    "Loader",
    "MissingExtraError",
]
