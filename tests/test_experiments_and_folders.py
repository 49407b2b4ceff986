"""Experiment configs work for every command, and every command's output folder is its own
and says what ran."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import PACKAGE
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from inprocess import Workspace
from omegaconf import OmegaConf

from serotiny.cli.hydra_app import with_packaged_search_path
from serotiny.settings.schema import register_settings

pytestmark = pytest.mark.slow


def test_an_experiment_runs_train_test_and_predict(workspace: Workspace) -> None:
    # The example experiment sets checkpoint.monitor and mode: one meaning in every command.
    for command in ("train", "test", "predict"):
        workspace.run(command, "experiment=example", "++mlflow.run_name=exp")
    run = workspace.run_named("exp", "example")
    assert run.info.status == "FINISHED"
    assert run.data.params["checkpoint.monitor"] == "val_accuracy"
    assert {"test_accuracy", "val_accuracy"} <= set(run.data.metrics)
    artifacts = {a.path for a in workspace.client().list_artifacts(run.info.run_id, "predictions")}
    assert artifacts == {"predictions/predictions.parquet", "predictions/lineage.json"}


def run_folder(project: Path, command: str, *overrides: str) -> str:
    """The output folder ``serotiny <command>`` would get (Hydra's run.dir, resolved)."""
    register_settings()
    GlobalHydra.instance().clear()
    config_dir = str(project / PACKAGE / "config")
    name = "train" if command == "validate" else command
    arguments = with_packaged_search_path([*overrides, f"hydra.job.name={command}"])
    with initialize_config_dir(config_dir, version_base="1.3", job_name=command):
        cfg = compose(name, overrides=arguments, return_hydra_config=True)
    return str(OmegaConf.select(cfg, "hydra.run.dir"))


def test_folders_say_what_ran(rendered_template: Path) -> None:
    trained = run_folder(rendered_template, "train", "model=tabular_vae")
    assert "/outputs/train/" in trained and trained.split("/")[-1].count("_TabularVAE_") == 1
    for command in ("train", "test", "predict"):
        named = run_folder(rendered_template, command, "++mlflow.run_name=first try")
        assert f"/outputs/{command}/" in named and "_first-try_" in named


def test_commands_started_in_the_same_second_get_folders_of_their_own(
    rendered_template: Path,
) -> None:
    folders = {run_folder(rendered_template, "train") for _ in range(5)}
    assert len(folders) == 5
    assert len({folder.rsplit("_", 1)[0] for folder in folders}) <= 2  # the same second, mostly
