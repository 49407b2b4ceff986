"""A run whose splits were drawn from fractions keeps them: saved with the run, read back by
a resumed training, by test and by predict, even when the manifest has gained rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from inprocess import Workspace

from serotiny.commands.trained_run import open_trained_run

pytestmark = pytest.mark.slow
ARTIFACT = "data/split_assignment.csv"


def saved_assignment(workspace: Workspace, name: str) -> pd.DataFrame:
    run = workspace.run_named(name)
    path = workspace.client().download_artifacts(run.info.run_id, ARTIFACT)
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False)


def add_rows(manifest: Path, count: int) -> list[str]:
    """Append ``count`` rows (copies of the first ones, with new ids); return the new ids."""
    table = pd.read_csv(manifest)
    extra = table.head(count).copy()
    extra["id"] = [f"new{index}" for index in range(count)]
    pd.concat([table, extra]).to_csv(manifest, index=False)
    return list(extra["id"])


def test_the_run_keeps_its_fractional_splits(workspace: Workspace) -> None:
    name = ["++mlflow.run_name=fractions", "data=fractions", "++trainer.max_epochs=2"]
    workspace.run("train", *name)
    saved = saved_assignment(workspace, "fractions")
    manifest = pd.read_csv(workspace.root / "data" / "manifest.csv", dtype={"id": str})
    assert sorted(saved["id"]) == sorted(manifest["id"])
    assert saved["split"].value_counts().to_dict() == {"train": 240, "val": 30, "test": 30}

    new_ids = add_rows(workspace.root / "data" / "manifest.csv", 12)
    # test (and predict, which opens the run the same way) sees the run's rows in its splits.
    opened = open_trained_run(workspace.compose("test", *name))
    table = opened.datamodule.split_assignment_table().astype({"id": str}).fillna("")
    by_id = dict(zip(table["id"], table["split"], strict=True))
    assert all(by_id[row.id] == row.split for row in saved.itertuples())
    assert {by_id[new] for new in new_ids} == {""}, {by_id[new] for new in new_ids}

    # A resumed training reads the saved assignment back rather than drawing a new one
    # (which would have put the new rows in a split, and saved that).
    run = workspace.run_named("fractions")
    workspace.client().set_terminated(run.info.run_id, "FAILED")
    workspace.run("train", *name)
    assert workspace.run_named("fractions").info.status == "FINISHED"
    pd.testing.assert_frame_equal(saved_assignment(workspace, "fractions"), saved)


def test_other_data_is_split_its_own_way(workspace: Workspace) -> None:
    workspace.run("train", "++mlflow.run_name=own", "data=fractions", "++trainer.max_epochs=1")
    other = workspace.root / "data" / "other.csv"
    pd.read_csv(workspace.root / "data" / "manifest.csv").head(100).to_csv(other, index=False)
    opened = open_trained_run(
        workspace.compose("test", "++mlflow.run_name=own", "data=fractions", f"data.path={other}")
    )
    table = opened.datamodule.split_assignment_table()
    assert len(table) == 100 and set(table["split"]) == {"train", "val", "test"}
