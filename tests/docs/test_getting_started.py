"""Getting started, followed command by command in a new folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import tracking_uri
from doc_runner import follow

from serotiny.ml_ops.mlflow_utils import connect, get_run_by_name

pytestmark = pytest.mark.slow


def test_getting_started_as_written(tmp_path: Path) -> None:
    page = follow("getting_started.md", tmp_path)
    assert "Would install a_tiny_project-0.1.0" in page.output_of("pip install -e")
    project = page.project
    callbacks = project / "a_tiny_project" / "config" / "trainer" / "callbacks" / "guide.yaml"
    assert callbacks.is_file()

    client = connect(tracking_uri(project))
    run = get_run_by_name(client, "tiny", "first")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["seed"] == "1337"
    assert params["model._target_"] == "serotiny.models.BasicModel"
    assert params["trainer.max_epochs"] == "10"
    # The demo data is three well separated blobs: the trained MLP gets most of them.
    assert run.data.metrics["test_accuracy"] > 0.8
    checkpoints = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert checkpoints == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}
