"""The CLI's entry points answer fast and without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import cli_env, run_cli


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("train", "test", "predict", "validate", "new"):
        assert command in result.stdout


def test_help_imports_neither_torch_nor_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from serotiny.cli.main import main\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'lightning', 'mlflow', 'pandas') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_python_dash_m_serotiny_prints_the_version(tmp_path: Path) -> None:
    import serotiny

    result = run_cli("version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == serotiny.__version__


def test_train_help_is_hydras_app_help(project: Path) -> None:
    result = run_cli("train", "--help", cwd=project)
    assert result.returncode == 0
    # Hydra's app help lists the project's config groups and their options.
    assert "model: default, linear, small_cnn, tabular_vae" in result.stdout
