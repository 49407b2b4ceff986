"""Property tests: random manifests (columns, dtypes, split spellings, formats) load exactly,
and injected faults are reported at exactly the rows they were put in."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serotiny.datamodules import ManifestDatamodule
from serotiny.io.dataframe.loaders import LoadColumn, LoadColumns

SPELLINGS = {
    "train": ["train", "Training", "TRAIN", "fit"],
    "val": ["val", "valid", "Validation", "dev"],
    "test": ["test", "Testing", "holdout"],
}
NUMERIC_DTYPES = ["int8", "int32", "int64", "float32", "float64", "bool"]
FORMATS = ["csv", "csv.gz", "parquet", "frame"]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter = itertools.count()


@st.composite
def manifests(draw) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """A manifest with an id, a split column in random spellings and random numeric columns."""
    rows = draw(st.integers(3, 40))
    splits = ["train", "val", "test"] + draw(
        st.lists(st.sampled_from(["train", "val", "test"]), min_size=rows - 3, max_size=rows - 3)
    )
    order = draw(st.permutations(range(rows)))
    splits = [splits[i] for i in order]
    frame = pd.DataFrame({"id": [f"row-{i}" for i in range(rows)]})
    frame["split"] = [draw(st.sampled_from(SPELLINGS[split])) for split in splits]
    dtypes = draw(st.lists(st.sampled_from(NUMERIC_DTYPES), min_size=1, max_size=6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for index, dtype in enumerate(dtypes):
        if dtype == "bool":
            values = rng.integers(0, 2, rows).astype(bool)
        elif dtype.startswith("int"):
            values = rng.integers(-100, 100, rows).astype(dtype)
        else:
            values = (rng.normal(size=rows) * 1000).astype(dtype)
        frame[f"num_{index}"] = values
    if draw(st.booleans()):
        frame["note"] = [draw(st.sampled_from(["a", "b b", "c,d"])) for _ in range(rows)]
    by_split = {split: [i for i, s in enumerate(splits) if s == split] for split in SPELLINGS}
    return frame, by_split


def store(frame: pd.DataFrame, tmp_path: Path, fmt: str) -> Path | pd.DataFrame:
    if fmt == "frame":
        return frame
    folder = tmp_path / f"example_{next(_counter)}"
    folder.mkdir()
    path = folder / f"manifest.{fmt}"
    frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
    return path


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if name.startswith("num_")]


@SETTINGS
@given(
    example=manifests(),
    fmt=st.sampled_from(FORMATS),
    batch_size=st.integers(1, 16),
)
def test_random_manifests_load_every_split_exactly(tmp_path, example, fmt, batch_size):
    frame, by_split = example
    loaders = {"x": LoadColumns(startswith="num_"), "id": LoadColumn("id")}
    datamodule = ManifestDatamodule(
        store(frame, tmp_path, fmt), loaders, batch_size=batch_size, shuffle=True
    )
    datamodule.setup("fit")
    datamodule.setup("test")
    datamodule.setup("predict")
    expected_x = frame[numeric_columns(frame)].to_numpy(dtype=np.float64).astype(np.float32)
    for split, loader in [
        ("train", datamodule.train_dataloader()),
        ("val", datamodule.val_dataloader()),
        ("test", datamodule.test_dataloader()),
        ("predict", datamodule.predict_dataloader()),
    ]:
        ids, features = [], []
        for batch in loader:
            assert len(batch["id"]) <= batch_size and batch["x"].dtype == torch.float32
            ids += batch["id"]
            features.append(batch["x"])
        rows = [int(i.removeprefix("row-")) for i in ids]
        if split == "predict":
            assert rows == list(range(len(frame)))  # whole manifest, in order
        else:
            assert sorted(rows) == by_split[split]
        np.testing.assert_array_equal(torch.cat(features).numpy(), expected_x[rows])


@SETTINGS
@given(example=manifests(), data=st.data())
def test_single_rows_match_batched_rows(example, data):
    frame, _ = example
    datamodule = ManifestDatamodule(
        frame, {"x": LoadColumns(startswith="num_"), "id": LoadColumn("id")}
    )
    datamodule.setup("predict")
    dataset = datamodule.predict_dataloader().dataset
    indices = data.draw(st.lists(st.integers(-len(frame), len(frame) - 1), min_size=1, max_size=8))
    batch = dataset.__getitems__(indices)
    for position, index in enumerate(indices):
        row = dataset[index]
        assert row["id"] == batch["id"][position]
        assert torch.equal(row["x"], batch["x"][position])


@SETTINGS
@given(example=manifests(), fmt=st.sampled_from(FORMATS), data=st.data())
def test_nan_rows_are_reported_exactly(tmp_path, example, fmt, data):
    frame, _ = example
    column = data.draw(st.sampled_from(numeric_columns(frame)))
    bad = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=10)))
    frame[column] = frame[column].astype("float64")
    frame.loc[bad, column] = np.nan
    datamodule = ManifestDatamodule(
        store(frame, tmp_path, fmt), {"x": LoadColumns(startswith="num_")}
    )
    problems = datamodule.problems("fit")
    assert len(problems) == 1
    assert problems[0].column == column
    assert problems[0].rows == tuple(bad[:5]) and problems[0].num_rows == len(bad)


@SETTINGS
@given(example=manifests(), fmt=st.sampled_from(FORMATS), data=st.data())
def test_unknown_split_rows_are_reported_exactly(tmp_path, example, fmt, data):
    frame, _ = example
    bad = sorted(data.draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=10)))
    frame.loc[bad, "split"] = data.draw(st.sampled_from(["tran", "validate-me", "x", "TESTS"]))
    datamodule = ManifestDatamodule(store(frame, tmp_path, fmt), {"id": LoadColumn("id")})
    unknown = [p for p in datamodule.problems() if "unknown split value" in p.message]
    assert len(unknown) == 1 and unknown[0].rows == tuple(bad[:5])
    assert unknown[0].num_rows == len(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_strategy_covers_each_format(tmp_path, fmt):
    frame = pd.DataFrame({"id": ["a"], "split": ["train"], "num_0": [1.5]})
    source = store(frame, tmp_path, fmt)
    datamodule = ManifestDatamodule(source, {"x": LoadColumns(startswith="num_")})
    assert datamodule.problems("predict") == []
