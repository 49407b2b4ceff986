"""The documentation builds offline with no warning (nitpicky, warnings as errors)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env
from doc_runner import DOCS

from serotiny.cli.main import COMMANDS

pytestmark = pytest.mark.slow


def build(output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-b", "html", "-q"]
        + ["-d", str(output / "doctrees"), str(DOCS), str(output / "html")],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )


def text_of(page: Path) -> str:
    """A page's text, tags removed and whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.read_text())).split())


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    completed = build(tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "WARNING" not in completed.stderr, completed.stderr
    site = tmp_path / "html"

    # The CLI reference is rendered from the code: every command, with its docstring.
    cli = text_of(site / "cli.html")
    for name, function in COMMANDS.items():
        assert f"serotiny {name}" in cli
        first_line = (function.__doc__ or "").strip().splitlines()[0]
        assert " ".join(first_line.split()) in cli
    assert "debug=fast" in cli and "trainer=cpu" in cli  # the packaged config options

    # The API pages document the public import paths.
    api = {page: (site / "api" / f"{page}.html").read_text() for page in ("models", "loaders")}
    for name in ("BasicModel", "MLP", "SmallCNN", "TabularVAE"):
        assert f'id="serotiny.models.{name}"' in api["models"]
    for name in ("LoadColumns", "LoadClass", "LoadImage"):
        assert f'id="serotiny.io.dataframe.loaders.{name}"' in api["loaders"]
    datamodules = (site / "api" / "datamodules.html").read_text()
    assert 'id="serotiny.datamodules.ManifestDatamodule"' in datamodules
    mlflow_utils = (site / "api" / "mlflow_utils.html").read_text()
    assert 'id="serotiny.ml_ops.mlflow_utils.load_model_from_checkpoint"' in mlflow_utils

    # The project tree is listed from a project rendered during the build.
    started = text_of(site / "getting_started.html")
    assert "├── .serotiny" in started and "manifest.csv" in started
    # The MLflow UI screenshots (scripts/mlflow_ui_screenshot.py) are shipped with the site.
    page = (site / "getting_started.html").read_text()
    for image in ("mlflow_ui_metrics.png", "mlflow_ui_plots.png"):
        assert f'src="_images/{image}"' in page and (site / "_images" / image).is_file()
    # The notebook is part of the site, shown as stored (not executed by the build).
    assert (site / "notebooks" / "load_a_trained_model.html").is_file()
    # Offline: nothing on any page is loaded from another host.
    remote = re.compile(r"<(img|script|link)[^>]+(src|href)=\"https?://")
    for page in site.rglob("*.html"):
        assert not remote.search(page.read_text()), page
