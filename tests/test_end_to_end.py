"""`serotiny train`, `test` and `predict` on a generated project: one run trained, tested and
predicted (in this process), then what that run holds, and loading it in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import cli_env
from inprocess import Workspace, make_workspace
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
EPOCHS = 4


class TrainedProject:
    """A project in which one run, 'first', has been trained, tested and predicted."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.root = workspace.root
        self.client: MlflowClient = workspace.client()

    @property
    def run(self):  # type: ignore[no-untyped-def]
        runs = self.workspace.runs()
        assert list(runs) == ["first"], list(runs)
        return runs["first"]


@pytest.fixture(scope="module")
def trained(
    rendered_template: Path, empty_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedProject:
    workspace = make_workspace(rendered_template, empty_store, tmp_path_factory.mktemp("e2e"))
    for operation in ("train", "test", "predict"):
        workspace.run(operation, "++mlflow.run_name=first", f"++trainer.max_epochs={EPOCHS}")
    return TrainedProject(workspace)


def test_training_is_tracked_in_one_finished_run(trained: TrainedProject) -> None:
    run = trained.run
    assert run.info.run_name == "first"
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model._target_"] == "serotiny.models.BasicModel"
    assert params["trainer.max_epochs"] == str(EPOCHS)
    assert params["data.batch_size"] == "32"
    history = trained.client.get_metric_history(run.info.run_id, "val_loss")
    assert len(history) == EPOCHS
    steps = [metric.step for metric in history]
    assert steps == sorted(steps) and len(set(steps)) == EPOCHS


def test_resolved_config_and_checkpoints_are_artifacts(trained: TrainedProject) -> None:
    run_id = trained.run.info.run_id
    config = Path(trained.client.download_artifacts(run_id, "config/train.yaml"))
    text = config.read_text()
    assert "serotiny.models.BasicModel" in text
    assert "${" not in text  # resolved, not interpolations
    names = {a.path for a in trained.client.list_artifacts(run_id, "checkpoints")}
    assert names == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}


def test_artifacts_live_next_to_the_sqlite_store(trained: TrainedProject) -> None:
    artifact_uri = trained.run.info.artifact_uri
    assert artifact_uri.startswith((trained.root / "mlartifacts").as_uri())
    assert not (trained.root / "mlruns").exists()


def test_test_metrics_are_logged_to_the_run(trained: TrainedProject) -> None:
    metrics = trained.run.data.metrics
    assert "test_loss" in metrics
    # The demo data is three well separated blobs: a trained MLP gets most of them.
    assert metrics["test_accuracy"] > 0.8


def test_predictions_cover_every_manifest_row_by_id(trained: TrainedProject) -> None:
    run_id = trained.run.info.run_id
    path = trained.client.download_artifacts(run_id, "predictions/predictions.parquet")
    predictions = pd.read_parquet(path)
    manifest = pd.read_csv(trained.root / "data" / "manifest.csv")
    assert len(predictions) == len(manifest)
    assert set(predictions["id"]) == set(manifest["id"])
    assert {"prediction", "probability_0", "probability_1", "probability_2"} <= set(
        predictions.columns
    )
    merged = manifest.merge(predictions, on="id")
    assert (merged["prediction"] == merged["label"]).mean() > 0.8


def test_pictures_are_logged_beside_the_metrics(trained: TrainedProject, tmp_path: Path) -> None:
    from PIL import Image

    run_id = trained.run.info.run_id
    names = {a.path for a in trained.client.list_artifacts(run_id, "plots")}
    assert names == {"plots/loss_curves.png", "plots/confusion_matrix.png"}
    for name in names:
        with Image.open(trained.client.download_artifacts(run_id, name, str(tmp_path))) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 200


def test_a_finished_run_is_not_trained_twice(
    trained: TrainedProject, caplog: pytest.LogCaptureFixture
) -> None:
    before = trained.run
    value = trained.workspace.run(
        "train", "++mlflow.run_name=first", f"++trainer.max_epochs={EPOCHS}"
    )
    assert "already finished" in caplog.text
    assert value == before.data.metrics["val_loss"]  # what a sweeper would be told
    after = trained.run  # still exactly one run
    assert after.info.run_id == before.info.run_id
    history = trained.client.get_metric_history(after.info.run_id, "val_loss")
    assert len(history) == EPOCHS


def test_notebook_loading_in_a_fresh_process(trained: TrainedProject, tmp_path: Path) -> None:
    run_id = trained.run.info.run_id
    uri = trained.workspace.uri
    code = f"""
import json, torch, pandas as pd
from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint
model = load_model_from_checkpoint({uri!r}, {run_id!r})
by_name = load_model_from_checkpoint({uri!r}, run_name="first", experiment_name="default")
manifest = pd.read_csv({str(trained.root / "data" / "manifest.csv")!r})
x = torch.tensor(manifest.filter(like="feature_").to_numpy(), dtype=torch.float32)
with torch.no_grad():
    out = model.predict_step({{"x": x}}, 0)["prediction"].tolist()
    same = torch.equal(by_name.predict_step({{"x": x}}, 0)["prediction"], torch.tensor(out))
print(json.dumps({{"type": type(model).__name__, "ids": manifest["id"].tolist(),
                  "pred": out, "same": same}}))
"""
    # Run away from the project: the run alone must hold what is needed.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(TMPDIR=str(scratch)),
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    # No downloaded checkpoint left behind (torch keeps a cache of its own there).
    assert not list(scratch.glob("serotiny-*"))
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded["type"] == "BasicModel"
    assert loaded["same"] is True
    predictions = pd.read_parquet(
        trained.client.download_artifacts(run_id, "predictions/predictions.parquet")
    ).set_index("id")
    expected = predictions.loc[loaded["ids"], "prediction"].tolist()
    assert loaded["pred"] == expected
