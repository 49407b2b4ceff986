"""Cross-validation folds of a manifest: disjoint, covering, stratified, grouped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serotiny.datamodules import ManifestDatamodule
from serotiny.datamodules.folds import CrossValidation, assign_folds
from serotiny.errors import ManifestError
from serotiny.io.dataframe.loaders import LoadColumn, LoadColumns


def manifest(rows: int = 120) -> pd.DataFrame:
    generator = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "subject": [f"s{i // 4}" for i in range(rows)],
            "label": generator.integers(0, 3, rows),
            "feature_0": generator.normal(size=rows),
            "split": [
                "test" if i % 6 == 0 else ("valid" if i % 6 == 1 else "train") for i in range(rows)
            ],
        }
    )


def ids(module: ManifestDatamodule, split: str) -> set[str]:
    return set(module.data.manifest.take(module.data.split_rows(split)).table["id"].to_pylist())


def module(table: pd.DataFrame, fold: int, **cv: object) -> ManifestDatamodule:
    return ManifestDatamodule(
        table,
        loaders={"x": LoadColumns(startswith="feature_"), "id": LoadColumn(column="id")},
        cross_validation={"folds": 3, "fold": fold, **cv},
    )


@pytest.mark.parametrize(
    "cv",
    [
        {},
        {"stratify_column": "label"},
        {"group_column": "subject"},
        {"stratify_column": "label", "group_column": "subject"},
    ],
)
def test_folds_partition_the_train_and_val_pool(cv: dict) -> None:
    table = manifest()
    pool = set(table.loc[table["split"] != "test", "id"])
    held_out = [ids(module(table, fold, **cv), "val") for fold in range(3)]
    assert set().union(*held_out) == pool
    assert sum(len(part) for part in held_out) == len(pool)
    for fold in range(3):
        split = module(table, fold, **cv)
        assert ids(split, "train") | ids(split, "val") == pool
        assert not ids(split, "train") & ids(split, "val")
        assert ids(split, "test") == set(table.loc[table["split"] == "test", "id"])
    if "group_column" in cv:
        subject_of = dict(zip(table["id"], table["subject"], strict=True))
        subjects = [{subject_of[i] for i in part} for part in held_out]
        for a in range(3):
            for b in range(a + 1, 3):
                assert not subjects[a] & subjects[b], "a subject sits in two folds"


def test_stratified_folds_keep_class_proportions() -> None:
    labels = np.array([0] * 60 + [1] * 30)
    folds = assign_folds(len(labels), 3, stratify=labels, seed=1)
    for fold in range(3):
        assert (labels[folds == fold] == 1).sum() == 10


def test_bad_fold_settings_are_clear_errors() -> None:
    with pytest.raises(ManifestError, match="fold=3 is out of range"):
        CrossValidation(folds=3, fold=3)
    with pytest.raises(ManifestError, match="at least 2 folds"):
        CrossValidation(folds=1, fold=0)
    with pytest.raises(ManifestError, match="'nope' is not a column"):
        ids(module(manifest(), 0, group_column="nope"), "train")
