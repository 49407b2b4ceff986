"""K-fold cross-validation with restart per fold, and ensembles of the fold models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import (
    add_slow_callback,
    cli_env,
    has_checkpoint,
    kill_group,
    run_cli,
    start_cli,
    tracking_uri,
    wait_until,
)
from mlflow import MlflowClient

from serotiny.ml_ops.mlflow_utils import connect

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


def by_name(project: Path) -> dict:
    client = connect(tracking_uri(project))
    experiment = client.get_experiment_by_name("default")
    if experiment is None:
        return {}
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


@pytest.fixture
def cv_project(project: Path) -> Path:
    add_slow_callback(project, seconds=0.04)
    return project


def test_cross_validation_resumes_then_ensembles(cv_project: Path, tmp_path: Path) -> None:
    project = cv_project
    log = tmp_path / "cv.log"
    process = start_cli(*command("cv"), project=project, log=log)
    client = MlflowClient(tracking_uri(project))
    # Interrupt during fold 2 (index 1), after its first checkpoint.
    wait_until(lambda: has_checkpoint(client, by_name(project).get("cv-fold1")), process, log)
    kill_group(process)
    before = by_name(project)
    assert before["cv-fold0"].info.status == "FINISHED"
    assert before["cv-fold1"].info.status == "RUNNING"
    assert "cv-fold2" not in before

    again = run_cli(*command("cv"), cwd=project)
    assert again.returncode == 0, again.output
    assert "'cv-fold0'" in again.output and "already finished" in again.output
    assert "resuming run 'cv-fold1'" in again.output
    after = by_name(project)
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
    tested = run_cli("test", "++mlflow.run_name=cv", cwd=project)
    assert tested.returncode == 0, tested.output
    parent = by_name(project)["cv"]
    assert parent.data.metrics["test_accuracy"] > 0.8
    for fold in range(FOLDS):
        assert f"fold{fold}_test_accuracy" in parent.data.metrics
        assert "test_accuracy" in by_name(project)[f"cv-fold{fold}"].data.metrics
    predicted = run_cli("predict", "++mlflow.run_name=cv", cwd=project)
    assert predicted.returncode == 0, predicted.output
    client = MlflowClient(tracking_uri(project))
    table = pd.read_parquet(
        client.download_artifacts(parent.info.run_id, "predictions/predictions.parquet")
    )

    # The ensemble's outputs are the mean of the fold models' outputs.
    code = f"""
import json, torch, pandas as pd
from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint
uri = {tracking_uri(project)!r}
manifest = pd.read_csv({str(project / "data" / "manifest.csv")!r})
x = torch.tensor(manifest.filter(like="feature_").to_numpy(), dtype=torch.float32)
folds = [load_model_from_checkpoint(uri, run_name=f"cv-fold{{i}}", experiment_name="default")
         for i in range({FOLDS})]
ensemble = load_model_from_checkpoint(uri, run_name="cv", experiment_name="default")
with torch.no_grad():
    mean = torch.stack([m.predict_step({{"x": x}}, 0)["probability"] for m in folds]).mean(0)
    together = ensemble.predict_step({{"x": x}}, 0)["probability"]
print(json.dumps({{"ids": manifest["id"].tolist(), "mean": mean.tolist(),
                  "ensemble": together.tolist(), "type": type(ensemble).__name__}}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(project),
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert loaded["type"] == "EnsembleModule"
    np.testing.assert_allclose(loaded["ensemble"], loaded["mean"], rtol=1e-6, atol=1e-7)
    written = table.set_index("id").loc[loaded["ids"]]
    probabilities = written[[f"probability_{k}" for k in range(3)]].to_numpy()
    np.testing.assert_allclose(probabilities, loaded["mean"], rtol=1e-5, atol=1e-6)


def test_cross_validation_on_several_processes_is_refused(cli, project: Path) -> None:
    result = cli("train", "trainer=ddp", "trainer.accelerator=cpu", "++cv.folds=2")
    assert result.returncode == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert "cv.folds" in line and "devices=2" in line
    assert "Traceback" not in result.output
    assert not (project / "mlruns.db").exists()  # refused before any run was opened
