"""Manifest checks: each problem is one line naming the file, the column and the first rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from manifest_helpers import make_frame, standard_loaders

from serotiny.datamodules import ManifestDatamodule
from serotiny.errors import ManifestError, SerotinyUserError
from serotiny.io.dataframe.loaders import LoadColumns, LoadImage, LoadTensor


def only_problem(datamodule: ManifestDatamodule, stage: str | None = None):
    """The single problem ``datamodule`` has, after checking that setup refuses it too."""
    problems = datamodule.problems(stage)
    assert len(problems) == 1, [p.message for p in problems]
    with pytest.raises(ManifestError) as error:
        datamodule.setup(stage or "fit")
    message = str(error.value)
    assert message == problems[0].message and "\n" not in message
    assert isinstance(error.value, SerotinyUserError) and isinstance(error.value, ValueError)
    return problems[0]


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_missing_loader_column(tmp_path):
    path = write(make_frame().drop(columns="label"), tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, standard_loaders()))
    assert problem.file == str(path) and problem.column == "label"
    assert "missing column (needed by LoadClass(column='label', num_classes=3))" in problem.message
    assert "'feature_0'" in problem.message  # lists what is there


def test_missing_split_column(tmp_path):
    path = write(make_frame().drop(columns="split"), tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, standard_loaders()))
    assert problem.column == "split" and "just_inference=True" in problem.message


def test_filter_selecting_no_columns(tmp_path):
    path = write(make_frame(), tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, {"x": LoadColumns(startswith="feat-")}))
    assert "LoadColumns(startswith='feat-') selects no columns" in problem.message


def test_unknown_split_values_name_first_rows(tmp_path):
    frame = make_frame()
    frame.loc[[5, 7, 8, 20, 30, 40, 50], "split"] = "tset"
    path = write(frame, tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, standard_loaders()))
    assert problem.rows == (5, 7, 8, 20, 30) and problem.num_rows == 7
    assert problem.message == (
        f"{path}: column 'split': unknown split value 'tset' at rows 5, 7, 8, 20, 30 (+2 more) "
        "(0-based); use train/valid/test (or aliases), or map it with split_map"
    )


def test_missing_split_value_is_unknown(tmp_path):
    frame = make_frame()
    frame.loc[3, "split"] = None
    problem = only_problem(ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders()))
    assert problem.rows == (3,) and "unknown split value" in problem.message


def test_empty_split_depends_on_stage(tmp_path):
    frame = make_frame()
    frame = frame[frame["split"] != "test"]
    datamodule = ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders())
    assert datamodule.problems("fit") == []
    datamodule.setup("fit")
    problem = only_problem(datamodule, "test")
    assert problem.column == "split"
    assert "no rows for the 'test' split" in problem.message and "testing" in problem.message
    datamodule.validate()  # no stage: what training needs; no test split is fine for that
    with pytest.raises(ManifestError, match="'test' split"):
        datamodule.validate("test")


def test_no_stage_requires_train_and_val(tmp_path):
    frame = make_frame()
    frame.loc[frame["split"] == "valid", "split"] = "test"
    datamodule = ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders())
    with pytest.raises(ManifestError, match="no rows for the 'val' split"):
        datamodule.validate()


def test_no_stage_checks_loaders_on_test_rows_too(tmp_path):
    frame = make_frame()
    frame.loc[frame.index[frame["split"] == "test"][0], "feature_3"] = np.nan
    datamodule = ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders())
    with pytest.raises(ManifestError, match="'feature_3'.*at row 2 "):
        datamodule.validate()


def test_empty_split_in_folder(tmp_path):
    frame = make_frame()
    frame[frame["split"] == "train"].to_csv(tmp_path / "train.csv", index=False)
    frame[frame["split"] == "valid"].iloc[:0].to_csv(tmp_path / "valid.csv", index=False)
    problem = only_problem(ManifestDatamodule(tmp_path, standard_loaders()), "fit")
    assert problem.file == str(tmp_path) and "no rows for the 'val' split" in problem.message
    assert "valid.csv" in problem.message


def test_folder_without_split_files(tmp_path):
    with pytest.raises(ManifestError, match="no split files found"):
        ManifestDatamodule(tmp_path, standard_loaders()).setup("fit")


def test_two_files_for_one_split(tmp_path):
    write(make_frame(), tmp_path / "val.csv")
    write(make_frame(), tmp_path / "valid.csv")
    with pytest.raises(ManifestError, match="both val.csv and valid.csv"):
        ManifestDatamodule(tmp_path, standard_loaders()).validate()


def test_nan_in_loaded_numeric_column(tmp_path):
    frame = make_frame()
    frame.loc[[11, 4], "feature_6"] = np.nan
    frame.loc[2, "unused_feature"] = np.nan  # not loaded: not a problem
    problem = only_problem(ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders()))
    assert problem.column == "feature_6" and problem.rows == (4, 11)
    assert "missing or NaN value" in problem.message


def test_non_numeric_text_in_numeric_column(tmp_path):
    path = tmp_path / "m.csv"
    write(make_frame(), path)
    lines = path.read_text().splitlines()
    # Far enough down that pyarrow has already decided the column is numeric.
    for row in (40, 45):
        fields = lines[row + 1].split(",")
        fields[3] = "n/a?"
        lines[row + 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    problem = only_problem(ManifestDatamodule(path, standard_loaders()))
    assert problem.column == "feature_1" and problem.rows == (40, 45)
    assert "non-numeric value 'n/a?'" in problem.message


def test_non_numeric_in_dataframe_object_column():
    frame = make_frame()
    frame["feature_2"] = frame["feature_2"].astype(object)
    frame.loc[7, "feature_2"] = "oops"
    problem = only_problem(ManifestDatamodule(frame, standard_loaders()))
    assert problem.file == "<DataFrame>" and problem.rows == (7,)


def test_label_out_of_range(tmp_path):
    frame = make_frame()
    frame.loc[9, "label"] = 3
    problem = only_problem(ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders()))
    assert problem.column == "label" and problem.rows == (9,)
    assert "beyond num_classes=3" in problem.message


@pytest.mark.parametrize("loader_class", [LoadImage, LoadTensor])
def test_missing_files(tmp_path, loader_class):
    frame = make_frame(rows=6)
    (tmp_path / "files").mkdir()
    for index in (0, 1, 3, 5):
        np.save(tmp_path / "files" / f"{index}.npy", np.zeros(2))
    frame["path"] = [f"files/{i}.npy" for i in range(6)]
    frame.loc[4, "path"] = ""
    path = write(frame, tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, {"p": loader_class("path")}))
    assert problem.column == "path" and problem.rows == (2, 4)
    assert "file 'files/2.npy' not found" in problem.message
    assert str(tmp_path) in problem.message  # says where relative paths are read from


def test_duplicate_ids(tmp_path):
    frame = make_frame()
    frame.loc[[12, 30], "id"] = "cell_0003"
    path = write(frame, tmp_path / "m.csv")
    assert ManifestDatamodule(path, standard_loaders()).problems() == []  # no id_column
    datamodule = ManifestDatamodule(path, standard_loaders(), id_column="id")
    assert datamodule.id_column == "id"
    problem = only_problem(datamodule)
    assert problem.rows == (3, 12, 30) and "duplicate id 'cell_0003'" in problem.message


def test_missing_id_column(tmp_path):
    path = write(make_frame(), tmp_path / "m.csv")
    problem = only_problem(ManifestDatamodule(path, standard_loaders(), id_column="cell_id"))
    assert problem.column == "cell_id" and "needed by id_column" in problem.message


def test_folder_problems_name_the_split_file_and_its_rows(tmp_path):
    frame = make_frame()
    frame.loc[frame.index[frame["split"] == "test"][3], "feature_0"] = np.nan
    for split in ("train", "valid", "test"):
        write(frame[frame["split"] == split], tmp_path / f"{split}.csv")
    problem = only_problem(ManifestDatamodule(tmp_path, standard_loaders()), "test")
    assert problem.file == str(tmp_path / "test.csv") and problem.rows == (3,)


def test_folder_file_missing_a_column_that_shared_loaders_need(tmp_path):
    frame = make_frame()
    write(frame[frame["split"] == "train"], tmp_path / "train.csv")
    write(frame[frame["split"] == "valid"], tmp_path / "valid.csv")
    write(frame[frame["split"] == "test"].drop(columns="label"), tmp_path / "test.csv")
    problem = only_problem(ManifestDatamodule(tmp_path, standard_loaders()))
    assert problem.file == str(tmp_path / "test.csv") and problem.column == "label"


def test_all_problems_listed_first_raised(tmp_path):
    frame = make_frame()
    frame.loc[1, "split"] = "?"
    frame.loc[2, "feature_0"] = np.nan
    frame.loc[3, "label"] = 7
    datamodule = ManifestDatamodule(write(frame, tmp_path / "m.csv"), standard_loaders())
    problems = datamodule.problems()
    assert [p.column for p in problems] == ["split", "feature_0", "label"]
    with pytest.raises(ManifestError, match=r"and 2 more manifest problem") as error:
        datamodule.validate()
    assert error.value.problems == problems


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.txt", "a,b\n1,2\n", "not a manifest file"),
        ("missing.csv", None, "manifest file not found"),
        ("ragged.csv", "a,b\n1,2\n3,4,5\n", "cannot be read as CSV"),
        ("empty.csv", "", "cannot be read as CSV"),
    ],
)
def test_unreadable_manifests(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError, match=message) as error:
        ManifestDatamodule(path, standard_loaders()).validate()
    assert str(path) in str(error.value)


def test_gzip_that_is_not_gzip(tmp_path):
    path = tmp_path / "m.csv.gz"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ManifestError, match="m.csv.gz"):
        ManifestDatamodule(path, standard_loaders()).validate()
    with gzip.open(path, "wt") as handle:
        make_frame().to_csv(handle, index=False)
    ManifestDatamodule(path, standard_loaders()).validate()


def test_bad_split_map_target():
    with pytest.raises(ManifestError, match="maps to 'training_set', which is not a split"):
        ManifestDatamodule(
            make_frame(), standard_loaders(), split_map={"a": "training_set"}
        ).validate()
