"""K-fold cross-validation with restart per fold, and ensembles of the fold models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import add_slow_callback, has_checkpoint, kill_group, start_cli, wait_until
from inprocess import Workspace

from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint

pytestmark = pytest.mark.slow
FOLDS = 3


def command(name: str) -> list[str]:
    return [
        "train",
        f"++cv.folds={FOLDS}",
        "++cv.stratify_column=label",
        "trainer/callbacks=slow",
        "++trainer.max_epochs=3",
        f"++mlflow.run_name={name}",
    ]


def test_cross_validation_resumes_then_ensembles(
    workspace: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_slow_callback(workspace.root, seconds=0.04)
    log = tmp_path / "cv.log"
    # The CLI is killed (as a node crash would): that part runs in a process of its own.
    process = start_cli(*command("cv"), project=workspace.root, log=log)
    client = workspace.client()
    # Interrupt during fold 2 (index 1), after its first checkpoint.
    wait_until(lambda: has_checkpoint(client, workspace.runs().get("cv-fold1")), process, log)
    kill_group(process)
    before = workspace.runs()
    assert before["cv-fold0"].info.status == "FINISHED"
    assert before["cv-fold1"].info.status == "RUNNING"
    assert "cv-fold2" not in before

    workspace.run(*command("cv"))
    assert "'cv-fold0'" in caplog.text and "already finished" in caplog.text
    assert "resuming run 'cv-fold1'" in caplog.text
    after = workspace.runs()
    assert set(after) == {"cv", "cv-fold0", "cv-fold1", "cv-fold2"}
    parent = after["cv"]
    assert parent.info.status == "FINISHED"
    for fold in range(FOLDS):
        child = after[f"cv-fold{fold}"]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
    assert after["cv-fold0"].info.run_id == before["cv-fold0"].info.run_id
    assert after["cv-fold1"].info.run_id == before["cv-fold1"].info.run_id
    values = [after[f"cv-fold{fold}"].data.metrics["val_loss"] for fold in range(FOLDS)]
    assert parent.data.metrics["val_loss_mean"] == pytest.approx(np.mean(values))
    assert parent.data.metrics["val_loss_std"] == pytest.approx(np.std(values))

    # Ensemble test and predict on the parent run.
    workspace.run("test", "++mlflow.run_name=cv")
    parent = workspace.run_named("cv")
    assert parent.data.metrics["test_accuracy"] > 0.8
    for fold in range(FOLDS):
        assert f"fold{fold}_test_accuracy" in parent.data.metrics
        assert "test_accuracy" in workspace.run_named(f"cv-fold{fold}").data.metrics
    workspace.run("predict", "++mlflow.run_name=cv")
    table = pd.read_parquet(
        client.download_artifacts(parent.info.run_id, "predictions/predictions.parquet")
    )

    # The ensemble's outputs are the mean of the fold models' outputs.
    manifest = pd.read_csv(workspace.root / "data" / "manifest.csv")
    x = torch.tensor(manifest.filter(like="feature_").to_numpy(), dtype=torch.float32)
    folds = [
        load_model_from_checkpoint(workspace.uri, run_name=f"cv-fold{i}", experiment_name="default")
        for i in range(FOLDS)
    ]
    ensemble = load_model_from_checkpoint(workspace.uri, run_name="cv", experiment_name="default")
    with torch.no_grad():
        mean = torch.stack([m.predict_step({"x": x}, 0)["probability"] for m in folds]).mean(0)
        together = ensemble.predict_step({"x": x}, 0)["probability"]
    assert type(ensemble).__name__ == "EnsembleModule"
    np.testing.assert_allclose(together.numpy(), mean.numpy(), rtol=1e-6, atol=1e-7)
    written = table.set_index("id").loc[manifest["id"]]
    probabilities = written[[f"probability_{k}" for k in range(3)]].to_numpy()
    np.testing.assert_allclose(probabilities, mean.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_validation_on_several_processes_is_refused(forked_cli, project: Path) -> None:
    result = forked_cli("train", "trainer=ddp", "trainer.accelerator=cpu", "++cv.folds=2")
    assert result.returncode == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert "cv.folds" in line and "devices=2" in line
    assert "Traceback" not in result.output
    assert not (project / "mlruns.db").exists()  # refused before any run was opened
