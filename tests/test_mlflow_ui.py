"""A serotiny run looks right in MLflow's own UI, checked in a real (headless) browser.

A short training and a prediction in a project, then ``mlflow server`` on the project's
SQLite store, and the run's page in headless Chromium: its name, its metrics, the chart of
its monitored metric and the images serotiny logs under ``plots/``, each checked in the
rendered page (text, the chart's SVG, images decoded by the browser), not in pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from inprocess import Workspace
from PIL import Image
from services import MlflowServer, service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

RUN = "looked_at"
EPOCHS = 3


@pytest.fixture
def browser(chromium: Path) -> Iterator[Browser]:
    """Headless Chromium driven by Playwright (skipped, with the reason, where either is
    missing; a failure where ``SEROTINY_REQUIRE_SERVICES`` names chromium)."""
    try:
        from mlflow_ui import chromium_browser
    except ImportError as error:
        service_missing("chromium", f"Playwright cannot be imported ({error}); `.[dev]` has it")
    with chromium_browser(chromium) as browser:
        yield browser


@pytest.fixture
def ui_server(workspace: Workspace, tmp_path: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` on the workspace's own store (started by the test, once its runs
    are in), stopped at teardown."""
    folder = tmp_path / "ui-server"
    server = MlflowServer(workspace.uri, folder / "artifacts", tmp_path / "ui-server.log")
    try:
        yield server
    finally:
        server.stop()


def test_a_run_shows_its_name_metrics_chart_and_plots_in_the_mlflow_ui(
    workspace: Workspace, browser: Browser, ui_server: MlflowServer
) -> None:
    from mlflow_ui import RunPage

    workspace.run("train", f"++mlflow.run_name={RUN}", f"++trainer.max_epochs={EPOCHS}")
    workspace.run("predict", f"++mlflow.run_name={RUN}")
    run = workspace.run_named(RUN)
    val_losses = workspace.client().get_metric_history(run.info.run_id, "val_loss")
    assert len(val_losses) == EPOCHS
    plots = Path(urlsplit(run.info.artifact_uri).path) / "plots"
    ui_server.start()

    page = RunPage(browser, ui_server.uri, run.info.experiment_id, run.info.run_id)
    page.open()
    page.wait_for_title(RUN)
    shown = page.metric_shown("val_loss")
    assert shown == pytest.approx(run.data.metrics["val_loss"], rel=1e-9)

    page.open("model-metrics")
    page.wait_for_chart("val_loss", points=len(val_losses))

    page.open("artifacts/plots/loss_curves.png")
    for name in ("loss_curves.png", "confusion_matrix.png"):
        page.select_artifact(name)
        # Decoded by the browser at the size serotiny drew it: the image itself, not a
        # broken-image icon or a placeholder.
        with Image.open(plots / name) as logged:
            assert page.wait_for_image(f"plots/{name}") == logged.size
