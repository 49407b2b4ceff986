"""A user mistake ends in one clear line, exit status 2, and nothing left RUNNING."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import CliResult, run_cli, tracking_uri
from mlflow import MlflowClient


@pytest.fixture
def cli(forked_cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """This module's commands run as forked processes (see tests/forked_cli.py)."""
    return forked_cli


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("serotiny: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def no_run_is_running(project: Path) -> bool:
    if not (project / "mlruns.db").exists():
        return True
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments) if experiments else []
    return all(run.info.status != "RUNNING" for run in runs)


def test_outside_a_project(tmp_path: Path) -> None:
    result = run_cli("train", cwd=tmp_path)
    assert_one_line_error(result, "not inside a serotiny project", str(tmp_path.resolve()))


def test_unknown_group_option_lists_the_options(cli, project: Path) -> None:
    result = cli("train", "model=nope")
    assert_one_line_error(result, "model/nope", "default, linear, small_cnn, tabular_vae")
    assert no_run_is_running(project)


def test_malformed_override(cli) -> None:
    assert_one_line_error(cli("train", "trainer.max_epochs=[1"), "malformed override")


def test_unknown_key(cli) -> None:
    assert_one_line_error(cli("train", "trainer.max_epochz=3"), "trainer.max_epochz", "+")


def test_test_with_an_unknown_run_name(cli, project: Path) -> None:
    result = cli("test", "++mlflow.run_name=never-trained")
    assert_one_line_error(result, "never-trained")
    assert no_run_is_running(project)


def test_predict_needs_a_run_name(cli) -> None:
    assert_one_line_error(cli("predict"), "++mlflow.run_name")


@pytest.mark.slow
def test_a_model_that_cannot_be_built_leaves_no_run(cli, project: Path) -> None:
    result = cli("train", "++model._target_=no_such_module.Model", "++mlflow.run_name=bad")
    assert_one_line_error(result, "model", "no_such_module.Model")
    client = MlflowClient(tracking_uri=tracking_uri(project))
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert not experiments or not client.search_runs(experiments)


def test_debug_shows_the_traceback(cli) -> None:
    result = cli("--debug", "train", "model=nope")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("override", "meant"),
    [
        ("++resume.allow_config_chnage=true", "resume.allow_config_change"),
        ("++mlflow.runname=x", "mlflow.run_name"),
    ],
)
def test_a_misspelled_serotiny_setting_is_one_line(cli, project: Path, override, meant) -> None:
    result = cli("train", override)
    assert_one_line_error(result, override.lstrip("+").split("=")[0], meant)
    assert not (project / "mlruns.db").exists()  # stopped before anything was tracked
