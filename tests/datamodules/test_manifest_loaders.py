"""Each loader on real files and tables, including a project's own loader."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
import tifffile
import torch
from PIL import Image

from serotiny.datamodules import ManifestDatamodule
from serotiny.errors import ManifestError, SerotinyUserError
from serotiny.io.dataframe.loaders import (
    ArrayLoader,
    LoadClass,
    LoadColumn,
    LoadColumns,
    LoadImage,
    LoadTensor,
    MissingExtraError,
)
from serotiny.io.dataframe.readers import read_manifest


def bound_batch(loader, frame: pd.DataFrame, rows: Sequence[int]):
    """What ``loader`` yields for ``rows`` of ``frame``, through the same path training uses."""
    manifest = read_manifest(frame)
    assert loader.problems(manifest) == []
    return loader.bind(manifest).batch(np.asarray(rows, dtype=np.int64))


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a_1": [1.0, 2.0, 3.0],
            "a_2": [4.0, 5.0, 6.0],
            "b_1": [7, 8, 9],
            "mid_x_end": [0.5, 0.25, 0.125],
            "name": ["p", "q", "r"],
            "flag": [True, False, True],
        }
    )


def test_load_column_numbers_and_text(table):
    assert bound_batch(LoadColumn("b_1"), table, [2, 0]).tolist() == [9, 7]
    assert bound_batch(LoadColumn("b_1"), table, [0]).dtype == torch.int64
    floats = bound_batch(LoadColumn("a_1"), table, [1])
    assert floats.dtype == torch.float32 and floats.tolist() == [2.0]
    assert bound_batch(LoadColumn("a_1", dtype="float64"), table, [1]).dtype == torch.float64
    assert bound_batch(LoadColumn("name"), table, [2, 1]) == ["r", "q"]
    assert bound_batch(LoadColumn("flag"), table, [0, 1]).tolist() == [True, False]


def test_loader_called_on_one_row_like_a_function(table):
    row = table.iloc[1]
    assert LoadColumn("name")(row) == "q"
    assert LoadColumns(startswith="a_")(row).tolist() == [2.0, 5.0]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"columns": ["a_2", "b_1"]}, ["a_2", "b_1"]),
        ({"startswith": "a_"}, ["a_1", "a_2"]),
        ({"endswith": "_1"}, ["a_1", "b_1"]),
        ({"contains": "_x_"}, ["mid_x_end"]),
        ({"startswith": ["a_", "b_"], "excludes": "_2"}, ["a_1", "b_1"]),
        ({"regex": r"^[ab]_\d$"}, ["a_1", "a_2", "b_1"]),
        ({"excludes": ["name", "flag", "a_"]}, ["b_1", "mid_x_end"]),
        ({"startswith": "a", "endswith": "2"}, ["a_2"]),
    ],
)
def test_load_columns_selection(table, kwargs, expected):
    loader = LoadColumns(**kwargs)
    assert loader.columns(list(table.columns)) == expected
    batch = bound_batch(loader, table, [1, 2])
    assert batch.dtype == torch.float32
    np.testing.assert_allclose(batch.numpy(), table.loc[[1, 2], expected].to_numpy(float))


def test_load_columns_needs_a_selection():
    with pytest.raises(ValueError, match="needs `columns` or a filter"):
        LoadColumns()


def test_load_columns_dtype(table):
    assert bound_batch(LoadColumns(startswith="a_", dtype="float64"), table, [0]).dtype == (
        torch.float64
    )
    half = bound_batch(LoadColumns(startswith="a_", dtype="bfloat16"), table, [0])
    assert half.dtype == torch.bfloat16 and half.tolist() == [[1.0, 4.0]]


def test_load_class_integer_labels():
    frame = pd.DataFrame({"label": [2, 0, 1, 2]})
    assert bound_batch(LoadClass("label", num_classes=3), frame, [0, 1]).tolist() == [2, 0]
    one_hot = bound_batch(LoadClass("label", num_classes=4, one_hot=True), frame, [0, 2])
    assert one_hot.dtype == torch.float32
    assert one_hot.tolist() == [[0, 0, 1, 0], [0, 1, 0, 0]]
    # num_classes inferred from the labels when not given
    assert bound_batch(LoadClass("label", one_hot=True), frame, [1]).shape == (1, 3)


def test_load_class_string_labels_sorted_or_listed():
    frame = pd.DataFrame({"label": ["dog", "cat", "eel", "cat"]})
    assert bound_batch(LoadClass("label"), frame, [0, 1, 2]).tolist() == [1, 0, 2]
    listed = LoadClass("label", classes=["eel", "dog", "cat"])
    assert bound_batch(listed, frame, [0, 1, 2]).tolist() == [1, 2, 0]
    assert listed.class_names(read_manifest(frame)) == ["eel", "dog", "cat"]
    assert LoadClass("label").class_names(read_manifest(frame)) == ["cat", "dog", "eel"]


def test_load_class_listed_classes_match_integer_labels_as_text():
    frame = pd.DataFrame({"label": [10, 20, 10]})
    assert bound_batch(LoadClass("label", classes=[20, 10]), frame, [0, 1]).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("labels", "loader", "message"),
    [
        ([0, 1, 5], LoadClass("label", num_classes=3), "label 5 is class 5, beyond num_classes=3"),
        ([0, -1, 1], LoadClass("label"), "label -1 is not a class index"),
        ([0.0, 1.5, 1.0], LoadClass("label"), "label 1.5 is not a class index"),
        (["a", "b", "z"], LoadClass("label", classes=["a", "b"]), "label 'z' is not in `classes`"),
        (["a", None, "b"], LoadClass("label"), "missing label"),
        (["a", "b", "c"], LoadClass("label", num_classes=2), "beyond num_classes=2"),
    ],
)
def test_load_class_bad_labels(labels, loader, message):
    problems = loader.problems(read_manifest(pd.DataFrame({"label": labels})))
    assert len(problems) == 1
    assert message in problems[0].message and problems[0].column == "label"


def test_load_class_num_classes_below_classes_listed():
    with pytest.raises(ValueError, match="num_classes=1 is less than"):
        LoadClass("label", num_classes=1, classes=["a", "b"])


def test_load_image_png_jpeg_and_tiff(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=100)
    stack = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5)
    tifffile.imwrite(tmp_path / "stack.tiff", stack, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")

    png = LoadImage("path").read(str(tmp_path / "rgb.png"))
    assert png.shape == (3, 6, 5) and png.dtype == torch.float32
    np.testing.assert_array_equal(png.numpy(), np.moveaxis(rgb, -1, 0))
    assert LoadImage("path").read(str(tmp_path / "gray.png")).shape == (1, 6, 5)
    assert LoadImage("path").read(str(tmp_path / "rgb.jpg")).shape == (3, 6, 5)
    tiff = LoadImage("path", channels=[1], dtype="int32").read(str(tmp_path / "stack.tiff"))
    assert tiff.dtype == torch.int32 and tiff.tolist() == [stack[1].tolist()]
    np.testing.assert_array_equal(
        LoadImage("path", dtype="uint8").read(str(tmp_path / "rgb.tif")).numpy(),
        np.moveaxis(rgb, -1, 0),
    )


def test_load_image_channels_and_transform_through_datamodule(tmp_path):
    for index in range(6):
        image = np.full((4, 4, 3), index, dtype=np.uint8)
        image[..., 2] = 100 + index
        Image.fromarray(image).save(tmp_path / f"{index}.png")
    frame = pd.DataFrame(
        {"image": [f"{i}.png" for i in range(6)], "split": ["train", "valid", "test"] * 2}
    )
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    loader = LoadImage("image", channels=[2, 0], transform=lambda image: image[:, :2, :2] / 2)
    datamodule = ManifestDatamodule(
        tmp_path / "manifest.csv", {"image": loader}, batch_size=2, shuffle=False
    )
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))["image"]
    assert batch.shape == (2, 2, 2, 2)
    assert batch[:, 0, 0, 0].tolist() == [50.0, 51.5] and batch[:, 1, 0, 0].tolist() == [0, 1.5]


def test_load_image_shape_mismatch_names_the_fix(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "b.png")
    frame = pd.DataFrame({"image": [str(tmp_path / "a.png"), str(tmp_path / "b.png")]})
    with pytest.raises(RuntimeError, match="add a transform that crops or resizes"):
        bound_batch(LoadImage("image"), frame, [0, 1])


def test_microscopy_formats_need_bioio_with_clear_error(tmp_path):
    (tmp_path / "cells.czi").write_bytes(b"not really a czi")
    frame = pd.DataFrame({"image": [str(tmp_path / "cells.czi")]})
    loader = LoadImage("image")
    try:
        import bioio  # noqa: F401
    except ImportError:
        problems = loader.problems(read_manifest(frame))
        assert len(problems) == 1 and "pip install 'serotiny[bioio]'" in problems[0].message
        with pytest.raises(MissingExtraError) as error:
            loader.read(str(tmp_path / "cells.czi"))
        assert isinstance(error.value, SerotinyUserError) and isinstance(error.value, ImportError)
    else:  # pragma: no cover - only where the optional extra is installed
        pytest.skip("bioio is installed; the missing-extra path cannot be exercised")


def test_load_tensor_npy_and_pt(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(4, dtype=np.int16).reshape(2, 2))
    torch.save(torch.ones(2, 2, dtype=torch.float64), tmp_path / "b.pt")
    frame = pd.DataFrame({"t": [str(tmp_path / "a.npy"), str(tmp_path / "b.pt")]})
    batch = bound_batch(LoadTensor("t", dtype="float32"), frame, [0, 1])
    assert batch.dtype == torch.float32 and batch.tolist() == [[[0, 1], [2, 3]], [[1, 1], [1, 1]]]
    doubled = LoadTensor("t", transform=lambda tensor: tensor * 2).read(str(tmp_path / "b.pt"))
    assert doubled.dtype == torch.float64 and doubled.sum().item() == 8


def test_load_tensor_refuses_pickled_objects(tmp_path):
    torch.save({"obj": Fraction(1, 3)}, tmp_path / "evil.pt")  # any non-tensor global
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        LoadTensor("t").read(str(tmp_path / "evil.pt"))
    torch.save({"a": torch.ones(1)}, tmp_path / "dict.pt")
    with pytest.raises(TypeError, match="expected one tensor"):
        LoadTensor("t").read(str(tmp_path / "dict.pt"))


def test_load_tensor_unknown_suffix_is_a_problem(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"")
    problems = LoadTensor("t").problems(
        read_manifest(pd.DataFrame({"t": [str(tmp_path / "x.bin")]}))
    )
    assert "file suffix '.bin'" in problems[0].message


class LoadTextLength(ArrayLoader):
    """A project's own loader: the length of a text column, as the base class documents."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.dtype = torch.int64

    def columns(self, available):
        return [self.column]

    def numeric_columns(self, available):
        return []

    def to_array(self, manifest):
        return pc.utf8_length(manifest.column(self.column)).to_numpy()


def test_custom_loader_subclass_works_in_datamodule(tmp_path):
    frame = pd.DataFrame({"word": ["a", "bb", "ccc", "dddd"], "split": ["train"] * 2 + ["val"] * 2})
    datamodule = ManifestDatamodule(
        frame, {"length": LoadTextLength("word")}, batch_size=4, shuffle=False
    )
    datamodule.setup("fit")
    assert next(iter(datamodule.train_dataloader()))["length"].tolist() == [1, 2]
    with pytest.raises(ManifestError, match=r"'nope': missing column \(needed by LoadTextLength"):
        ManifestDatamodule(frame, {"length": LoadTextLength("nope")}).setup("fit")
