"""serotiny's own settings: typed, every default in one place, and a misspelled key is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from inprocess import Workspace
from omegaconf import OmegaConf

from serotiny.settings.reading import SettingsError, check_settings, read_settings
from serotiny.settings.schema import (
    SECTIONS,
    CheckpointChoice,
    MonitorMode,
    Settings,
)


def config(**sections: object) -> OmegaConf:
    base = {"paths": {"root": "/project", "output_dir": "/project/out"}}
    return OmegaConf.create({**base, **sections})


def test_defaults_fill_in_and_interpolations_resolve_against_the_whole_config() -> None:
    settings = read_settings(
        config(model={"name": "mlp"}, seed=3, mlflow={"run_name": "${model.name}_${seed}"})
    )
    assert isinstance(settings, Settings)
    assert settings.mlflow.run_name == "mlp_3"
    assert settings.mlflow.tracking_uri == "sqlite:////project/mlruns.db"
    assert settings.resume.stale_after_seconds == 90.0
    assert settings.checkpoint.mode is MonitorMode.min
    assert settings.checkpoint.use is CheckpointChoice.best
    assert settings.seed == 3 and settings.print_config is True


@pytest.mark.parametrize(
    ("sections", "fragments"),
    [
        (
            {"resume": {"allow_config_chnage": True}},
            ["resume.allow_config_chnage", "allow_config_change"],
        ),
        ({"mlflow": {"runname": "x"}}, ["mlflow.runname", "mlflow.run_name"]),
        ({"cv": {"fold": 3}}, ["cv.fold", "cv.folds"]),
        ({"mlfow": {"run_name": "x"}}, ["'mlfow'", "'mlflow'"]),
        ({"resume": {"heartbeat_seconds": "often"}}, ["resume.heartbeat_seconds", "'often'"]),
        ({"checkpoint": {"mode": "biggest"}}, ["checkpoint.mode", "min, max"]),
        ({"seed": "abc"}, ["seed", "'abc'"]),
        ({"cv": 5}, ["'cv' must be a mapping"]),
        ({"mlflow": {"run_name": "${model.input_size}"}}, ["mlflow.run_name", "model.input_size"]),
    ],
)
def test_mistakes_are_one_line_naming_the_key(sections: dict, fragments: list[str]) -> None:
    with pytest.raises(SettingsError) as error:
        read_settings(config(**sections))
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_checking_leaves_interpolations_for_the_job() -> None:
    # Before a job exists, `${hydra:...}` cannot resolve; the keys are checked all the same.
    check_settings(config(mlflow={"run_name": "trial_${hydra:job.num}"}))
    with pytest.raises(SettingsError, match="mlflow.runname"):
        check_settings(config(mlflow={"runname": "trial_${hydra:job.num}"}))


def test_the_earlier_checkpoint_form_of_test_and_predict_is_read_as_checkpoint_use() -> None:
    assert read_settings(config(checkpoint="last")).checkpoint.use is CheckpointChoice.last


def test_every_section_is_in_the_composed_config_with_its_defaults(workspace: Workspace) -> None:
    for command in ("train", "test", "predict"):
        cfg = workspace.compose(command)
        assert set(SECTIONS) <= set(cfg), command
        assert cfg.resume.heartbeat_seconds == 30.0
    assert workspace.compose("train", "++cv.folds=3").cv.folds == 3


def test_a_config_file_with_an_unknown_setting_does_not_compose(workspace: Workspace) -> None:
    mlflow = workspace.root / "a_tiny_project" / "config" / "mlflow" / "default.yaml"
    mlflow.write_text(mlflow.read_text() + "runname: oops\n")
    with pytest.raises(Exception, match="runname"):
        workspace.compose("train")


def test_the_schema_is_documented_field_by_field() -> None:
    source = (Path(__file__).parents[1] / "serotiny" / "settings" / "schema.py").read_text()
    for section in SECTIONS.values():
        assert section.__doc__ and f"class {section.__name__}" in source
