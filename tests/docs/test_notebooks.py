"""The notebook in docs/notebooks, executed by a real kernel against a run trained here."""

from __future__ import annotations

import base64
import io
import os
import re

import nbformat
import pytest
from cli_helpers import cli_env, tracking_uri
from doc_runner import DOCS, FollowedPage
from nbclient import NotebookClient
from PIL import Image

from serotiny.ml_ops.mlflow_utils import connect, get_run_by_name

pytestmark = pytest.mark.slow
NOTEBOOK = DOCS / "notebooks" / "load_a_trained_model.ipynb"


def test_notebooks_are_stored_without_outputs() -> None:
    for path in sorted((DOCS / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def png_outputs(cell: nbformat.NotebookNode) -> list[Image.Image]:
    images = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data:
            images.append(Image.open(io.BytesIO(base64.b64decode(data["image/png"]))))
    return images


def test_load_a_trained_model_notebook(
    tabular_tutorial: FollowedPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tabular_tutorial.project
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel gets the environment the CLI runs get (no MLFLOW_* or SEROTINY_* leaking in).
    clean = cli_env(project)
    for name in set(os.environ) - set(clean):
        monkeypatch.delenv(name)
    for name, value in clean.items():
        monkeypatch.setenv(name, value)
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(project)}},  # started in the project folder
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(
        output.get("text", "") for cell in code for output in cell.outputs if "text" in output
    )
    assert "wine FINISHED BasicModel" in text
    match = re.search(r"(\d+) test wines, accuracy (\d\.\d+)", text)
    assert match, text
    run = get_run_by_name(connect(tracking_uri(project)), "default", "wine")
    # The same best checkpoint on the same 35 test rows as `serotiny test`.
    assert int(match[1]) == 35
    assert float(match[2]) == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-3)

    shown = [image for cell in code for image in png_outputs(cell)]
    assert len(shown) == 2  # the confusion matrix and the loss curves, shown inline
    saved = {name: project / "outputs" / f"wine_{name}.png" for name in ("confusion", "curves")}
    with Image.open(saved["confusion"]) as confusion, Image.open(saved["curves"]) as curves:
        assert (confusion.format, confusion.size) == ("PNG", (500, 450))
        assert (curves.format, curves.size) == ("PNG", (700, 400))
