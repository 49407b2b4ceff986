"""Projects made by the original serotiny template run unchanged (issue 15).

The project is laid out as that template laid one out (see ``legacy_project.py``) and is
driven through the CLI with that era's command lines: ``mlflow.run_name=...`` and
``mlflow.run_id=...`` without ``++``, since serotiny's ``defaults/`` configs declare them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import CliResult, run_cli
from legacy_project import LEGACY_EXPERIMENT, MANIFEST_ROWS, write_legacy_project
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
EPOCHS = 3  # trainer/default.yaml of the legacy project
RUN_NAME = "legacy_run"


class LegacyProject:
    """A legacy project in which one run has been trained, tested and predicted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns.db'}")
        self.results: dict[str, CliResult] = {}
        self.elsewhere = root.parent / "elsewhere_logs"

    def cli(self, *args: str) -> CliResult:
        return run_cli(*args, cwd=self.root, project=self.root)

    def runs(self) -> list:  # type: ignore[type-arg]
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        return self.client.search_runs(experiments)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> LegacyProject:
    project = LegacyProject(write_legacy_project(tmp_path_factory.mktemp("legacy") / "old"))
    steps = {
        "train": ("train", f"mlflow.run_name={RUN_NAME}"),
        "test": ("test",),
        "predict": ("predict", f"logs_root={project.elsewhere}"),
    }
    for step, args in steps.items():
        if step != "train":  # the original selected a trained run by its id
            args = (*args, f"mlflow.run_id={project.runs()[0].info.run_id}")
        result = project.cli(*args)
        assert result.returncode == 0, result.output
        project.results[step] = result
    return project


def test_train_test_and_predict_share_one_finished_run(legacy: LegacyProject) -> None:
    runs = legacy.runs()
    assert [run.info.run_name for run in runs] == [RUN_NAME]
    run = runs[0]
    assert run.info.status == "FINISHED"
    experiment = legacy.client.get_experiment(run.info.experiment_id)
    assert experiment.name == LEGACY_EXPERIMENT
    assert len(legacy.client.get_metric_history(run.info.run_id, "val_loss")) == EPOCHS
    assert {"test_loss", "test_reconstruction_loss"} <= set(run.data.metrics)
    names = {a.path for a in legacy.client.list_artifacts(run.info.run_id, "checkpoints")}
    assert names == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}


def test_predictions_are_stored_in_the_run(legacy: LegacyProject) -> None:
    run_id = legacy.runs()[0].info.run_id
    stored = sorted(a.path for a in legacy.client.list_artifacts(run_id, "predictions"))
    assert stored == ["predictions/lineage.json", "predictions/predictions.parquet"]
    table = pd.read_parquet(legacy.client.download_artifacts(run_id, stored[1]))
    assert len(table) == MANIFEST_ROWS
    assert table["id"].iloc[0] == "flower_000"


def test_the_era_keys_are_translated_in_the_run(legacy: LegacyProject) -> None:
    params = legacy.runs()[0].data.params
    assert params["trainer._target_"] == "lightning.pytorch.Trainer"
    assert params["trainer.accelerator"] == "cpu"
    assert params["trainer.devices"] == "1"
    assert params["model._target_"] == "serotiny.models.TabularVAE"
    for dropped in ("trainer.gpus", "trainer.logger", "mode", "logs_root", "log_level"):
        assert dropped not in params
    assert not [key for key in params if key.startswith("mlflow.autolog")]
    output = legacy.results["train"].output
    assert "trainer.gpus: null -> accelerator: cpu, devices: 1" in output
    assert "trainer.logger: [] dropped" in output
    assert "mlflow.autolog.log_models: true dropped" in output


def test_tracking_and_outputs_stay_inside_the_project(legacy: LegacyProject) -> None:
    assert (legacy.root / "mlruns.db").is_file()
    assert legacy.runs()[0].info.artifact_uri.startswith((legacy.root / "mlartifacts").as_uri())
    assert len(list((legacy.root / "outputs" / "train").iterdir())) >= 1
    assert len(list((legacy.root / "outputs" / "test").iterdir())) >= 1
    # logs_root moves the output folders, as it did in the original.
    assert list((legacy.elsewhere / "predict").glob("*/predictions/predictions.parquet"))
    assert not (legacy.root / "outputs" / "predict").exists()


def test_a_pytorch_lightning_callback_of_the_project_runs(legacy: LegacyProject) -> None:
    epochs = (legacy.root / "epochs_seen.txt").read_text().split()
    assert epochs == [str(epoch) for epoch in range(EPOCHS)]


def test_a_pytorch_lightning_model_class_gets_one_line_saying_what_to_change(
    tmp_path: Path,
) -> None:
    root = write_legacy_project(tmp_path / "old")
    result = run_cli("train", "model=old_style", "mlflow.run_name=x", cwd=root, project=root)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert len(lines) == 1, result.stderr
    assert "old_project.models.OldStyleModel" in lines[0]
    assert "pytorch_lightning.LightningModule" in lines[0]
    assert str(root / "old_project" / "models.py") in lines[0]
    assert "import lightning.pytorch as pl" in lines[0]
    assert not (root / "mlruns.db").exists() or not LegacyProject(root).runs()
