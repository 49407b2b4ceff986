"""Splitting a manifest by fractions: counts, seeds, groups, strata, row order, saved
assignments, cross-validation, errors, and the template's worked example."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from serotiny.datamodules import ManifestDatamodule
from serotiny.datamodules.fractions import SplitFractions, assign_fractions, split_counts
from serotiny.datamodules.manifest_data import ManifestData
from serotiny.errors import ManifestError
from serotiny.io.dataframe.loaders import LoadColumn, LoadColumns

FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
MODES = [
    {},
    {"stratify_column": "label"},
    {"group_column": "subject"},
    {"stratify_column": "label", "group_column": "subject"},
]


def manifest(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """No split column; subjects of 4 rows; labels 60/30/10 %, constant within a subject."""
    generator = np.random.default_rng(seed)
    subjects = -(-rows // 4)
    subject_label = generator.choice(3, size=subjects, p=[0.6, 0.3, 0.1])
    return pd.DataFrame(
        {
            "id": [f"cell_{i:05d}" for i in range(rows)],
            "subject": [f"s{i // 4:04d}" for i in range(rows)],
            "label": subject_label[np.arange(rows) // 4],
            "feature_0": generator.normal(size=rows),
        }
    )


def data(table: pd.DataFrame | Path, **options: object) -> ManifestData:
    options.setdefault("split_fractions", FRACTIONS)
    return ManifestData(
        table,
        {"x": LoadColumns(startswith="feature_"), "id": LoadColumn("id")},
        id_column="id",
        **options,  # type: ignore[arg-type]
    )


def split_of(source: ManifestData) -> dict[str, str | None]:
    """id -> split (None: in no split)."""
    table = source.assignment()
    return dict(zip(table["id"].to_pylist(), table["split"].to_pylist(), strict=True))


def in_split(assignment: dict[str, str | None], split: str) -> set[str]:
    return {key for key, value in assignment.items() if value == split}


# Counts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [10, 37, 100, 999])
@pytest.mark.parametrize(
    "fractions",
    [
        FRACTIONS,
        {"train": 0.7, "val": 0.15, "test": 0.15},
        {"training": 2 / 3, "validation": 1 / 3},
    ],
)
def test_each_split_gets_the_floor_or_ceiling_of_its_share(rows: int, fractions: dict) -> None:
    split = SplitFractions.from_config(fractions, seed=1)
    assert split is not None
    codes = assign_fractions(rows, split)
    counts = np.bincount(codes, minlength=3)
    assert counts.sum() == rows
    for code, name in enumerate(("train", "val", "test")):
        share = split.fractions[name] * rows
        assert math.floor(share - 1e-9) <= counts[code] <= math.ceil(share + 1e-9), (name, counts)
    assert list(counts) == split_counts(rows, split.fractions)


def test_the_manifest_is_split_in_the_stated_fractions() -> None:
    assignment = split_of(data(manifest(200), split_seed=5))
    assert Counter(assignment.values()) == {"train": 160, "val": 20, "test": 20}


# Seeds and row order -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_split_other_seed_another(mode: dict) -> None:
    table = manifest()
    first = split_of(data(table, split_seed=7, **mode))
    assert split_of(data(table, split_seed=7, **mode)) == first
    assert split_of(data(table, split_seed=8, **mode)) != first


@pytest.mark.parametrize("mode", MODES)
def test_a_shuffled_manifest_gives_each_id_the_same_split(mode: dict) -> None:
    table = manifest()
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not shuffled["id"].equals(table["id"])
    assert split_of(data(shuffled, split_seed=11, **mode)) == split_of(
        data(table, split_seed=11, **mode)
    )


# Groups and strata -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [m for m in MODES if "group_column" in m])
def test_grouped_split_keeps_every_subject_in_one_split(mode: dict) -> None:
    table = manifest(400)
    assignment = split_of(data(table, split_seed=2, **mode))
    splits_of_subject = table.groupby("subject")["id"].agg(lambda ids: {assignment[i] for i in ids})
    assert all(len(splits) == 1 for splits in splits_of_subject), "a subject spans splits"
    # The fractions count subjects: 100 subjects -> 80/10/10 (each of 4 rows).
    if "stratify_column" not in mode:
        assert Counter(assignment.values()) == {"train": 320, "val": 40, "test": 40}


def test_stratified_split_keeps_class_proportions() -> None:
    table = manifest(400)
    assignment = split_of(data(table, split_seed=4, stratify_column="label"))
    label_of = dict(zip(table["id"], table["label"], strict=True))
    overall = Counter(table["label"])
    for split, size in (("train", 320), ("val", 40), ("test", 40)):
        labels = Counter(label_of[i] for i in in_split(assignment, split))
        assert sum(labels.values()) == size
        for label, count in overall.items():
            assert abs(labels[label] - count * size / len(table)) <= 1, (split, labels)


def test_stratified_groups_keep_proportions_roughly_and_groups_whole() -> None:
    table = manifest(800)  # 200 subjects; a label per subject
    assignment = split_of(
        data(table, split_seed=4, stratify_column="label", group_column="subject")
    )
    label_of = dict(zip(table["id"], table["label"], strict=True))
    overall = np.bincount(table["label"], minlength=3) / len(table)
    for split in ("train", "val", "test"):
        labels = np.bincount([label_of[i] for i in in_split(assignment, split)], minlength=3)
        assert np.abs(labels / labels.sum() - overall).max() < 0.05, (split, labels)
    counts = Counter(assignment.values())
    assert counts["val"] == counts["test"] == 80 and counts["train"] == 640  # 10 whole folds


# Saved assignments -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_saved_assignment_gives_the_same_rows_though_the_manifest_grew(
    tmp_path: Path, suffix: str
) -> None:
    table = manifest(200)
    saved = data(table, split_seed=1).save_assignment(tmp_path / f"assignment{suffix}")
    original = split_of(data(table, split_seed=1))
    # The manifest gains rows and is reordered: drawing again would move some ids.
    grown = manifest(260).sample(frac=1.0, random_state=9).reset_index(drop=True)
    redrawn = split_of(data(grown, split_seed=1))
    assert any(redrawn[key] != split for key, split in original.items())
    reused = data(grown, split_seed=1, split_assignment=saved)
    again = split_of(reused)
    assert {k: again[k] for k in original} == original
    new_ids = set(grown["id"]) - set(table["id"])
    assert len(new_ids) == 60 and all(again[i] is None for i in new_ids)
    # New rows are in no split, but a whole-manifest predict still covers every row.
    reused.validate("fit")
    assert len(reused.split_rows("train")) == 160
    assert len(reused.split_rows("predict")) == 260


def test_assignment_whose_ids_left_the_manifest_is_refused(tmp_path: Path) -> None:
    saved = data(manifest(200)).save_assignment(tmp_path / "assignment.csv")
    with pytest.raises(ManifestError, match=r"20 listed id\(s\) are not in the manifest") as error:
        data(manifest(180), split_assignment=saved).validate()
    assert "\n" not in str(error.value)


def test_assignment_without_id_column_matches_rows_by_position(tmp_path: Path) -> None:
    loaders = {"x": LoadColumns(startswith="feature_")}
    first = ManifestData(manifest(100), loaders, split_fractions=FRACTIONS, split_seed=3)
    saved = first.save_assignment(tmp_path / "assignment.csv")
    assert list(pd.read_csv(saved).columns) == ["row", "split"]
    grown = ManifestData(manifest(120), loaders, split_assignment=saved)
    before, after = first.assignment().to_pandas(), grown.assignment().to_pandas()
    assert after["split"][:100].tolist() == before["split"].tolist()
    assert after["split"][100:].isna().all()


def test_datamodule_saves_and_reuses_its_assignment(tmp_path: Path) -> None:
    table = manifest(120)
    loaders = {"x": LoadColumns(startswith="feature_"), "id": LoadColumn("id")}
    module = ManifestDatamodule(
        table, loaders, id_column="id", split_fractions=FRACTIONS, split_seed=5, batch_size=200
    )
    module.setup("fit")
    frame = module.split_assignment_table()
    assert list(frame.columns) == ["id", "split"] and len(frame) == 120
    path = module.save_split_assignment(tmp_path / "run" / "split_assignment.csv")
    # A test command: the same data config, another seed, but the run's assignment handed back.
    tester = ManifestDatamodule(
        table.iloc[::-1], loaders, id_column="id", split_fractions=FRACTIONS, split_seed=99
    )
    tester.use_split_assignment(path)
    tester.setup("test")
    (batch,) = list(tester.test_dataloader())
    assert set(batch["id"]) == set(frame.loc[frame["split"] == "test", "id"])


# Cross-validation --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [{}, {"stratify_column": "label", "group_column": "subject"}])
def test_folds_are_drawn_over_train_and_val_and_test_stays_out(mode: dict) -> None:
    table = manifest(240)
    plain = split_of(data(table, split_seed=1, **mode))
    test_ids = in_split(plain, "test")
    pool = in_split(plain, "train") | in_split(plain, "val")
    held_out = []
    for fold in range(3):
        cv = {"folds": 3, "fold": fold, "seed": 2}
        folded = split_of(data(table, split_seed=1, cross_validation=cv, **mode))
        assert in_split(folded, "test") == test_ids
        assert in_split(folded, "train") | in_split(folded, "val") == pool
        assert not in_split(folded, "train") & in_split(folded, "val")
        held_out.append(in_split(folded, "val"))
        # Row order does not change a fold, and a fold run's saved assignment rebuilds it.
        shuffled = table.sample(frac=1.0, random_state=fold).reset_index(drop=True)
        assert split_of(data(shuffled, split_seed=1, cross_validation=cv, **mode)) == folded
    assert set().union(*held_out) == pool and sum(map(len, held_out)) == len(pool)


def test_a_fold_resumed_from_its_saved_assignment_keeps_its_rows(tmp_path: Path) -> None:
    table = manifest(240)
    cv = {"folds": 3, "fold": 1, "seed": 2}
    fold_run = data(table, split_seed=1, cross_validation=cv)
    saved = fold_run.save_assignment(tmp_path / "split_assignment.parquet")
    grown = manifest(300).sample(frac=1.0, random_state=5).reset_index(drop=True)
    resumed = split_of(data(grown, split_seed=1, cross_validation=cv, split_assignment=saved))
    original = split_of(fold_run)
    assert {k: resumed[k] for k in original} == original


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"split_fractions": {"train": 0.8, "valid": 0.3}}, "split_fractions add up to 1.1, not 1"),
        ({"split_fractions": {"train": 1.2, "test": -0.2}}, "test=-0.2 is not a fraction"),
        ({"split_fractions": {"train": "most", "test": 0.2}}, "train='most' is not a fraction"),
        ({"split_fractions": {"train": 0.9, "holdup": 0.1}}, "'holdup' is not a split"),
        ({"split_fractions": {"train": 0.8, "val": 0.1, "valid": 0.1}}, "'valid' names the"),
        ({"split_fractions": [0.8, 0.2]}, "is not a mapping of split -> fraction"),
        ({"split_fractions": None, "group_column": "subject"}, "group_column is set but"),
        ({"split_fractions": None, "stratify_column": "label"}, "stratify_column is set but"),
    ],
)
def test_bad_fraction_settings_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message) as error:
        data(manifest(20), **options)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (5, {}, r"test=0.1 of 5 rows leaves the 'test' split empty; add rows"),
        (8, {"group_column": "subject"}, r"of 2 groups leaves the 'val' split empty"),
        (12, {"stratify_column": "label"}, r"cannot stratify .* by stratify_column='label'"),
        (
            8,
            {"stratify_column": "label", "group_column": "subject"},
            r"2 groups in group_column cannot fill 3 splits",
        ),
        (40, {"stratify_column": "nope"}, r"column 'nope': missing column \(needed by strat"),
    ],
)
def test_datasets_too_small_or_wrong_for_the_fractions_are_one_line_errors(
    rows: int, options: dict, message: str
) -> None:
    with pytest.raises(ManifestError, match=message) as error:
        data(manifest(rows), **options).validate()
    assert "\n" not in str(error.value)


def test_missing_group_values_are_reported_with_their_rows() -> None:
    table = manifest(40)
    table.loc[[3, 7], "subject"] = None
    with pytest.raises(ManifestError, match=r"'subject': missing value .* at rows 3, 7"):
        data(table, group_column="subject").validate()


def test_a_zero_fraction_leaves_its_split_empty_and_says_so() -> None:
    module = data(manifest(40), split_fractions={"train": 0.75, "test": 0.25})
    with pytest.raises(ManifestError, match="split_fractions gives the 'val' split no rows"):
        module.validate()
    assert len(module.split_rows("test")) == 10


def test_fractions_ignore_the_split_column_and_refuse_a_folder(tmp_path: Path) -> None:
    table = manifest(40)
    table["split"] = "train"  # would leave val and test empty if it were used
    assert Counter(split_of(data(table)).values()) == {"train": 32, "val": 4, "test": 4}
    for name in ("train", "valid"):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(ManifestError, match="is a folder of split files"):
        data(tmp_path)


# The template's worked example ------------------------------------------------------------


def test_template_fractions_config_splits_the_demo_manifest(
    rendered_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEROTINY_PROJECT_ROOT", str(rendered_template))
    config_dir = rendered_template / "a_tiny_project" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        # As serotiny's commands compose it: with serotiny's packaged configs on the path.
        cfg = compose(
            "train", overrides=["data=fractions", "hydra.searchpath=[pkg://serotiny.config]"]
        )
    module = hydra.utils.instantiate(cfg.data)
    module.setup("fit")
    frame = module.split_assignment_table()
    assert Counter(frame["split"]) == {"train": 240, "val": 30, "test": 30}
    demo = pd.read_csv(rendered_template / "data" / "manifest.csv")
    # The demo's own split column (70/15/15) is not what decided these splits.
    assert Counter(demo["split"]) != Counter(frame["split"].replace({"val": "valid"}))
    batch = next(iter(module.train_dataloader()))
    assert batch["x"].shape[1] == 8
