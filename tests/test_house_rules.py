"""The house rules of docs/architecture.md, checked: small modules and functions, layers
that import only downward (import-linter), and a broken layer caught."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "serotiny"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_function_is_over_50_lines() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO_ROOT)}:{node.name}"] = lines
    assert not long, long


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on the ``serotiny`` package found under ``root``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contract_holds() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("tracking/store.py", "serotiny.commands.train"),  # tracking -> the commands above it
        ("datamodules/splits.py", "serotiny.tracking.store"),  # the library -> MLflow code
        ("tracking/outcome.py", "lightning.pytorch"),  # tracking -> Lightning
    ],
)
def test_an_import_against_the_layers_is_caught(tmp_path: Path, module: str, upward: str) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "serotiny", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    broken = copy / "serotiny" / module
    broken.write_text(broken.read_text() + f"\nimport {upward}  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert upward.split(".")[0] in result.stdout and broken.stem in result.stdout
