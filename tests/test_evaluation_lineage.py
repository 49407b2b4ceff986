"""Test and predict on data other than the run's own: kept beside the run's own results,
never over them, each with its lineage (data config, manifest hashes, checkpoint); and test
and predict on several processes (DDP, through the CLI): each row predicted once, or refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from cli_helpers import run_cli
from inprocess import Workspace, make_workspace
from mlflow import MlflowClient

from serotiny.commands.trained_run import SeveralProcessesError
from serotiny.tracking.artifacts import load_run_config
from serotiny.tracking.evaluation_records import evaluated_data
from serotiny.tracking.provenance import file_sha256
from serotiny.trainer_parts.prediction_writer import MissingIdError

pytestmark = pytest.mark.slow
NAME = "lineage"
RUN = f"++mlflow.run_name={NAME}"
LABEL = re.compile(r"^subset-[0-9a-f]{8}$")


@pytest.fixture(scope="module")
def trained(
    rendered_template: Path, empty_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """A project with one trained run, and a second manifest: every 14th row of the demo's
    (22 rows, an even share for no number of processes above one)."""
    workspace = make_workspace(rendered_template, empty_store, tmp_path_factory.mktemp("lineage"))
    workspace.run("train", RUN, "++trainer.max_epochs=2")
    manifest = pd.read_csv(workspace.root / "data" / "manifest.csv")
    manifest.iloc[::14].to_csv(workspace.root / "data" / "subset.csv", index=False)
    return workspace


def subset(workspace: Workspace) -> Path:
    return workspace.root / "data" / "subset.csv"


def artifacts(client: MlflowClient, run_id: str, folder: str) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id, folder)}


def read_json(client: MlflowClient, run_id: str, artifact: str, into: Path) -> dict[str, Any]:
    return json.loads(Path(client.download_artifacts(run_id, artifact, str(into))).read_text())


def check_checkpoint(client: MlflowClient, run_id: str, used: dict[str, Any], into: Path) -> None:
    """The lineage names the run's best checkpoint, with its real step and hash."""
    assert used["run_id"] == run_id and used["artifact"] == "checkpoints/best.ckpt"
    path = Path(client.download_artifacts(run_id, used["artifact"], str(into)))
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert used["step"] == state["global_step"] > 0
    assert used["epoch"] == state["epoch"]
    assert used["sha256"] == file_sha256(path)


def test_predictions_on_a_second_manifest_sit_beside_the_runs_own(
    trained: Workspace, tmp_path: Path
) -> None:
    manifest = pd.read_csv(trained.root / "data" / "manifest.csv")
    second = pd.read_csv(subset(trained))
    trained.run("predict", RUN)
    trained.run("predict", RUN, f"++data.path={subset(trained)}")
    client, run_id = trained.client(), trained.run_named(NAME).info.run_id

    stored = artifacts(client, run_id, "predictions")
    (label_dir,) = [path for path in stored if Path(path).name.startswith("subset-")]
    label = Path(label_dir).name
    assert LABEL.match(label), label
    assert {"predictions/predictions.parquet", "predictions/lineage.json"} < stored
    assert artifacts(client, run_id, label_dir) == {
        f"{label_dir}/predictions.parquet",
        f"{label_dir}/lineage.json",
    }
    own = pd.read_parquet(client.download_artifacts(run_id, "predictions/predictions.parquet"))
    other = pd.read_parquet(client.download_artifacts(run_id, f"{label_dir}/predictions.parquet"))
    assert list(own["id"]) == list(manifest["id"])  # 300 rows, in manifest order
    assert list(other["id"]) == list(second["id"])  # 22 rows, in its own order

    own_lineage = read_json(client, run_id, "predictions/lineage.json", tmp_path / "own")
    other_lineage = read_json(client, run_id, f"{label_dir}/lineage.json", tmp_path / "other")
    assert own_lineage["data"]["own_data"] is True and own_lineage["data"]["label"] is None
    assert other_lineage["data"]["own_data"] is False and other_lineage["data"]["label"] == label
    assert (own_lineage["rows"], other_lineage["rows"]) == (300, 22)
    assert other_lineage["file"] == f"{label_dir}/predictions.parquet"
    assert other_lineage["data"]["config"]["path"] == str(subset(trained))
    assert own_lineage["data"]["manifests"] == [
        {
            "path": str(trained.root / "data" / "manifest.csv"),
            "sha256": file_sha256(trained.root / "data" / "manifest.csv"),
        }
    ]
    assert other_lineage["data"]["manifests"] == [
        {"path": str(subset(trained)), "sha256": file_sha256(subset(trained))}
    ]
    for lineage in (own_lineage, other_lineage):
        (used,) = lineage["checkpoints"]
        check_checkpoint(client, run_id, used, tmp_path / "ckpt")

    # The same predict again replaces that data's own set, and nothing else.
    trained.run("predict", RUN, f"++data.path={subset(trained)}", "++data.batch_size=5")
    assert artifacts(client, run_id, "predictions") == stored
    again = read_json(client, run_id, f"{label_dir}/lineage.json", tmp_path / "again")
    assert again["data"]["label"] == label and again["rows"] == 22
    assert pd.read_parquet(
        client.download_artifacts(run_id, "predictions/predictions.parquet")
    ).equals(own)


def test_test_on_a_second_manifest_keeps_the_runs_own_metrics(
    trained: Workspace, tmp_path: Path
) -> None:
    own = trained.run("test", RUN)
    other = trained.run("test", RUN, f"++data.path={subset(trained)}")
    client, run = trained.client(), trained.run_named(NAME)
    run_id = run.info.run_id

    assert set(own) == {"test_accuracy", "test_loss"}
    (label,) = {name.split("/")[0] for name in other}
    assert LABEL.match(label) and set(other) == {f"{label}/test_accuracy", f"{label}/test_loss"}
    for name, value in {**own, **other}.items():
        assert run.data.metrics[name] == pytest.approx(value)
    # The run's own test metrics were logged once, by the test on its own data.
    assert len(client.get_metric_history(run_id, "test_accuracy")) == 1

    assert artifacts(client, run_id, "test") == {"test/lineage.json", f"test/{label}"}
    own_lineage = read_json(client, run_id, "test/lineage.json", tmp_path / "own")
    other_lineage = read_json(client, run_id, f"test/{label}/lineage.json", tmp_path / "other")
    assert own_lineage["metrics"] == pytest.approx(own)
    assert other_lineage["metrics"] == pytest.approx(other)
    assert other_lineage["data"]["manifests"][0]["sha256"] == file_sha256(subset(trained))
    check_checkpoint(client, run_id, other_lineage["checkpoints"][0], tmp_path / "ckpt")


def which_data(workspace: Workspace, *overrides: str) -> str | None:
    """The label the data of ``serotiny predict <overrides>`` gets (None: the run's own)."""
    client = workspace.client()
    run = workspace.run_named(NAME)
    config = workspace.compose("predict", RUN, *overrides)
    return evaluated_data(run, load_run_config(client, run.info.run_id), config.data).label


def test_which_data_is_the_runs_own(trained: Workspace, tmp_path: Path) -> None:
    manifest = trained.root / "data" / "manifest.csv"
    # The same data config and manifest, loaded differently: the run's own data.
    assert which_data(trained) is None
    assert which_data(trained, "++data.batch_size=7", "++data.num_workers=1") is None
    copy = tmp_path / "moved" / "manifest.csv"
    copy.parent.mkdir()
    copy.write_bytes(manifest.read_bytes())
    assert which_data(trained, f"++data.path={copy}") is None

    # The same manifest split another way, or a manifest changed since training: other data.
    split_otherwise = which_data(trained, "data=fractions")
    assert split_otherwise is not None and split_otherwise.startswith("manifest-")
    edited = pd.read_csv(manifest)
    edited.loc[0, "feature_0"] += 1.0
    edited.to_csv(copy, index=False)
    changed = which_data(trained, f"++data.path={copy}")
    assert changed is not None and changed.startswith("manifest-") and changed != split_otherwise
    # A label is stable: the same data gets the same one every time.
    assert which_data(trained, f"++data.path={copy}") == changed
    assert LABEL.match(which_data(trained, f"++data.path={subset(trained)}") or "")


def test_predict_without_row_ids_is_one_line_and_writes_nothing(workspace: Workspace) -> None:
    workspace.run("train", "++mlflow.run_name=noid", "++trainer.max_epochs=1")
    with pytest.raises(MissingIdError) as caught:
        workspace.run("predict", "++mlflow.run_name=noid", "++predictions.id_key=row")
    message = str(caught.value)
    assert "\n" not in message and "'row'" in message and "loaders" in message
    run_id = workspace.run_named("noid").info.run_id
    assert workspace.client().list_artifacts(run_id, "predictions") == []


def test_cross_validation_tested_on_other_data(workspace: Workspace, tmp_path: Path) -> None:
    name = "++mlflow.run_name=cvl"
    workspace.run("train", name, "++cv.folds=2", "++trainer.max_epochs=1")
    second = workspace.root / "data" / "half.csv"
    pd.read_csv(workspace.root / "data" / "manifest.csv").iloc[::2].to_csv(second, index=False)
    logged = workspace.run("test", name, f"++data.path={second}")
    (label,) = {metric.split("/")[0] for metric in logged}
    assert label.startswith("half-")
    parent = workspace.run_named("cvl")
    assert {f"{label}/test_accuracy", f"{label}/fold0_test_accuracy"} <= set(parent.data.metrics)
    assert "test_accuracy" not in parent.data.metrics
    for fold in range(2):
        fold_metrics = workspace.run_named(f"cvl-fold{fold}").data.metrics
        assert f"{label}/test_accuracy" in fold_metrics and "test_accuracy" not in fold_metrics
    client = workspace.client()
    lineage = read_json(client, parent.info.run_id, f"test/{label}/lineage.json", tmp_path)
    folds = [workspace.run_named(f"cvl-fold{fold}").info.run_id for fold in range(2)]
    assert [used["run_id"] for used in lineage["checkpoints"]] == folds


def test_predict_refuses_a_strategy_that_spawns_its_ranks(trained: Workspace) -> None:
    before = artifacts(trained.client(), trained.run_named(NAME).info.run_id, "predictions")
    spawn = ["trainer=ddp", "trainer.strategy=ddp_spawn", "trainer.accelerator=cpu"]
    with pytest.raises(SeveralProcessesError, match="trainer.strategy=ddp"):
        trained.run("predict", RUN, *spawn, f"++data.path={subset(trained)}")
    after = artifacts(trained.client(), trained.run_named(NAME).info.run_id, "predictions")
    assert after == before


def test_ddp_predict_writes_each_row_once_and_ddp_test_is_refused(
    trained: Workspace, tmp_path: Path
) -> None:
    odd = trained.root / "data" / "odd.csv"
    manifest = pd.read_csv(trained.root / "data" / "manifest.csv")
    manifest.iloc[14::14].to_csv(odd, index=False)  # 21 rows: 11 and 10 per rank
    ddp = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]
    result = run_cli("predict", RUN, *ddp, f"++data.path={odd}", cwd=trained.root, timeout=600)
    assert result.returncode == 0, result.output[-3000:]
    client, run_id = trained.client(), trained.run_named(NAME).info.run_id
    (label_dir,) = [path for path in artifacts(client, run_id, "predictions") if "/odd-" in path]
    table = pd.read_parquet(client.download_artifacts(run_id, f"{label_dir}/predictions.parquet"))
    assert list(table["id"]) == list(pd.read_csv(odd)["id"])  # each row once, in order
    lineage = read_json(client, run_id, f"{label_dir}/lineage.json", tmp_path)
    assert lineage["rows"] == 21 and lineage["processes"] == 2
    assert not list((trained.root / "outputs").rglob("*.partial"))

    metrics_before = trained.run_named(NAME).data.metrics
    refused = run_cli("test", RUN, *ddp, f"++data.path={odd}", cwd=trained.root, timeout=600)
    assert refused.returncode == 2, refused.output[-3000:]
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("serotiny: error")]
    assert "trainer.devices=1" in line and "Traceback" not in refused.output
    assert trained.run_named(NAME).data.metrics == metrics_before
