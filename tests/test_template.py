"""The cookiecutter template renders an installable, runnable project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import PACKAGE, REPO_ROOT, cli_env, run_cli
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

GROUPS = ("data", "model", "trainer", "trainer/callbacks", "mlflow", "experiment")


def test_prompts_are_name_package_and_description() -> None:
    questions = json.loads((REPO_ROOT / "project-template" / "cookiecutter.json").read_text())
    assert list(questions)[:3] == ["project_name", "package_name", "project_description"]
    assert "cookiecutter.project_name" in questions["package_name"]  # derived by default


def test_rendered_layout(rendered_template: Path) -> None:
    root = rendered_template
    assert root.name == PACKAGE
    assert (root / ".serotiny").read_text().strip().endswith(f"package = {PACKAGE}")
    config = root / PACKAGE / "config"
    for group in GROUPS:
        assert (config / group / "default.yaml").is_file(), group
    for top in ("train", "test", "predict"):
        assert (config / f"{top}.yaml").is_file()
    for module in ("__init__", "models", "datamodules", "callbacks"):
        assert (root / PACKAGE / f"{module}.py").is_file()
    for name in ("README.md", "pyproject.toml", "setup.py", "MANIFEST.in"):
        assert (root / name).is_file()


def test_demo_manifest_is_made_at_render_time(rendered_template: Path) -> None:
    import pandas as pd

    manifest = pd.read_csv(rendered_template / "data" / "manifest.csv")
    assert len(manifest) == 300
    assert manifest["id"].is_unique
    assert set(manifest["split"]) == {"train", "valid", "test"}
    assert set(manifest["label"]) == {0, 1, 2}
    assert len([c for c in manifest.columns if c.startswith("feature_")]) == 8


def test_invalid_package_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(REPO_ROOT / "project-template"),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"project_name": "x", "package_name": "not-valid!"},
        )
    assert not any(tmp_path.iterdir())


def test_serotiny_new_renders_a_project(tmp_path: Path) -> None:
    result = run_cli(
        "new",
        "--output-dir",
        str(tmp_path),
        "--no-input",
        "--project_name=Other Thing",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.output
    assert (tmp_path / "other_thing" / ".serotiny").is_file()
    assert (tmp_path / "other_thing" / "other_thing" / "config" / "train.yaml").is_file()


@pytest.mark.slow
def test_pip_install_then_train_from_a_subfolder(project: Path, tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    install = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(project)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    try:
        env = cli_env()  # no PYTHONPATH: the package must be importable because it is installed
        imported = subprocess.run(
            [sys.executable, "-c", f"import {PACKAGE}.models as m; print(m.__file__)"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.strip().startswith(str(project))
        nested = project / "notebooks" / "deep"
        nested.mkdir(parents=True)
        completed = subprocess.run(
            [
                str(Path(sys.executable).parent / "serotiny"),
                "train",
                "model=linear",
                "++trainer.max_epochs=1",
                "++mlflow.run_name=installed",
            ],
            cwd=nested,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr
        assert (project / "mlruns.db").is_file()  # the store is the project's, not the cwd's
        assert not (nested / "mlruns.db").exists()
    finally:
        subprocess.run([*pip, "uninstall", "--quiet", "-y", PACKAGE], capture_output=True)
