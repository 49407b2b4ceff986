"""docs/tutorials/registry.md, followed command by command; then what it promises, checked
in MLflow's registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import tracking_uri
from doc_runner import follow, run_id_in

from serotiny.ml_ops.mlflow_utils import connect, get_run_by_name

pytestmark = pytest.mark.slow


def test_registering_models(tmp_path: Path) -> None:
    page = follow("tutorials/registry.md", tmp_path)
    client = connect(tracking_uri(page.project))
    first = get_run_by_name(client, "default", "first")
    second = get_run_by_name(client, "default", "second")
    cv = get_run_by_name(client, "default", "cv")

    versions = {
        int(version.version): version for version in client.search_model_versions("name = 'cells'")
    }
    assert sorted(versions) == [1, 2, 3]  # the folds are no versions of their own
    assert versions[1].run_id == first.info.run_id
    assert versions[2].run_id == second.info.run_id
    assert versions[3].run_id == cv.info.run_id
    assert versions[3].tags["serotiny.ensemble"] == "true"
    aliases = client.get_registered_model("cells").aliases
    assert {alias: int(version) for alias, version in aliases.items()} == {
        "champion": 2,
        "ensemble": 3,
    }

    # `serotiny test` by the alias logged to the run the alias named then; predict by the
    # moved alias stored its table in the other run.
    tested = page.output_of("serotiny test")
    assert run_id_in(tested, "first") == first.info.run_id
    assert "test_accuracy" in first.data.metrics
    assert "test_accuracy" not in second.data.metrics
    predicted = {item.path for item in client.list_artifacts(second.info.run_id, "predictions")}
    assert "predictions/predictions.parquet" in predicted
    assert client.list_artifacts(first.info.run_id, "predictions") == []
