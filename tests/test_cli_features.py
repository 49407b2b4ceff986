"""Hydra features: multirun through the CLI; experiment configs, every template model and
a project's own classes through the commands (in this process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import tracking_uri
from inprocess import Workspace
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def runs_by_name(project: Path, experiment: str = "default") -> dict[str, object]:
    client = MlflowClient(tracking_uri=tracking_uri(project))
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return {run.info.run_name: run for run in client.search_runs([found.experiment_id])}


def test_multirun_with_interpolated_run_names(forked_cli, project: Path) -> None:
    result = forked_cli(
        "train",
        "--multirun",
        "seed=1,2",
        "++mlflow.run_name=sweep_${seed}",
        "++trainer.max_epochs=1",
    )
    assert result.returncode == 0, result.output
    runs = runs_by_name(project)
    assert set(runs) == {"sweep_1", "sweep_2"}
    assert {run.data.params["seed"] for run in runs.values()} == {"1", "2"}
    assert all(run.info.status == "FINISHED" for run in runs.values())


def test_every_model_config_of_the_template_trains(workspace: Workspace) -> None:
    folder = workspace.root / "a_tiny_project" / "config" / "model"
    configs = sorted(p.stem for p in folder.glob("*"))
    assert {"default", "small_cnn", "tabular_vae"} <= set(configs)
    for name in configs:
        workspace.run(
            "train", f"model={name}", f"++mlflow.run_name=model_{name}", "++trainer.max_epochs=2"
        )
    runs = workspace.runs()
    assert set(runs) == {f"model_{name}" for name in configs}
    for name, run in runs.items():
        assert run.info.status == "FINISHED", name
        assert "val_loss" in run.data.metrics, name
    cnn = runs["model_small_cnn"].data
    assert cnn.params["model.network._target_"] == "serotiny.models.SmallCNN"
    assert cnn.metrics["val_accuracy"] > 0.5  # three classes: better than chance


def test_experiment_config_overrides_groups_and_values(workspace: Workspace) -> None:
    workspace.run("train", "experiment=example", "++mlflow.run_name=exp", "++trainer.max_epochs=1")
    run = workspace.run_named("exp", "example")
    assert run.data.params["model.optimizer.lr"] == "0.005"


def test_seed_style_callbacks_and_a_project_model(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    # The getting-started guide's callback list, verbatim in form: a pytorch_lightning
    # target and a class from the project's own package.
    callbacks = workspace.root / PACKAGE_CONFIG / "trainer" / "callbacks" / "guide.yaml"
    callbacks.write_text(
        "- _target_: pytorch_lightning.callbacks.EarlyStopping\n"
        "  monitor: val_loss\n"
        "  patience: 5\n"
        "  min_delta: 0.1\n"
        "\n"
        "- _target_: a_tiny_project.callbacks.PrintEpoch\n"
        "  prefix: finished epoch\n"
    )
    workspace.run(
        "train",
        "model=linear",
        "trainer/callbacks=guide",
        "++seed=1337",
        "++trainer.max_epochs=2",
        "++trainer.enable_checkpointing=True",
        "++mlflow.run_name=guide",
    )
    assert "finished epoch 1 done" in capsys.readouterr().out
    run = workspace.run_named("guide")
    assert run.data.params["model._target_"] == "a_tiny_project.models.LinearClassifier"
    assert run.info.status == "FINISHED"


def test_the_template_vae_trains_and_predicts_latents(workspace: Workspace) -> None:
    import pandas as pd

    for operation in ("train", "predict"):
        workspace.run(
            operation, "model=tabular_vae", "++trainer.max_epochs=2", "++mlflow.run_name=vae"
        )
    run = workspace.run_named("vae")
    assert run.data.params["model._target_"] == "serotiny.models.TabularVAE"
    assert {"val_loss", "val_kl_divergence", "val_reconstruction_loss"} <= set(run.data.metrics)
    client = workspace.client()
    table = pd.read_parquet(
        client.download_artifacts(run.info.run_id, "predictions/predictions.parquet")
    )
    assert {"id", "latent_mean_0", "latent_mean_1", "reconstruction_error"} <= set(table.columns)
    assert len(table) == 300 and table["reconstruction_error"].ge(0).all()


def test_validate_imports_neither_lightning_nor_mlflow(project: Path) -> None:
    import subprocess
    import sys

    from cli_helpers import cli_env

    code = (
        "import sys\n"
        "from serotiny.cli.main import main\n"
        "main(['validate'])\n"
        "print([m for m in ('lightning', 'mlflow') if m in sys.modules])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=cli_env(project),
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert "passed its checks" in completed.stdout
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_validate_checks_the_manifest(forked_cli, project: Path) -> None:
    ok = forked_cli("validate")
    assert ok.returncode == 0, ok.output
    manifest = project / "data" / "manifest.csv"
    lines = manifest.read_text().splitlines()
    lines[5] = (
        lines[5]
        .replace(",train,", ",trian,")
        .replace(",valid,", ",trian,")
        .replace(",test,", ",trian,")
    )
    manifest.write_text("\n".join(lines) + "\n")
    bad = forked_cli("validate")
    assert bad.returncode == 2, bad.output
    assert "trian" in bad.stderr
    assert "Traceback" not in bad.stderr


PACKAGE_CONFIG = Path("a_tiny_project") / "config"
