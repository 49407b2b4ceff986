"""Regenerate the screenshots of MLflow's UI that docs/getting_started.md shows.

In a project rendered from the template in a temporary folder, runs the commands of
docs/getting_started.md (`serotiny train`, then `serotiny predict`, for the run 'first' of
the experiment 'tiny'), starts `mlflow server` on the project's own SQLite store, opens the
run's page in headless Chromium (Debian's `chromium`, driven by Playwright: the dev extra),
checks what tests/test_mlflow_ui.py checks, so that a screenshot never shows a half-loaded
page, and writes:

    docs/images/mlflow_ui_metrics.png   the run's "Model metrics" tab
    docs/images/mlflow_ui_plots.png     its "Artifacts" tab on plots/confusion_matrix.png

Usage: .venv/bin/python scripts/mlflow_ui_screenshot.py [--chromium PATH] [--output DIR]
(Chromium from `scripts/services/up chromium`, or /usr/bin/chromium.) About a minute.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the tests' helpers: the same checks

from cli_helpers import render_project, run_cli  # noqa: E402
from mlflow_ui import RunPage, chromium_browser  # noqa: E402
from PIL import Image  # noqa: E402
from services import MlflowServer, service_facts  # noqa: E402

EXPERIMENT, RUN = "tiny", "first"
NAMES = (f"++mlflow.experiment_name={EXPERIMENT}", f"++mlflow.run_name={RUN}")
# A laptop's window: wide enough for three charts a row, tall enough for the second row
# (val_loss's chart); the artifacts tab needs less height for the confusion matrix.
VIEWPORT = {"width": 1200, "height": 1000}
PLOTS_VIEWPORT = {"width": 1200, "height": 760}


def make_run(folder: Path) -> Path:
    """A project in ``folder`` with the run of getting_started.md, trained and predicted."""
    project = render_project(folder)
    for command in (("train", "++seed=1337", "++trainer.max_epochs=10"), ("predict",)):
        print(f"serotiny {' '.join((*command, *NAMES))}", flush=True)
        result = run_cli(*command, *NAMES, cwd=project)
        if result.returncode != 0:
            sys.exit(f"serotiny {command[0]} failed:\n{result.output[-3000:]}")
    return project


def save_png(data: bytes, path: Path) -> None:
    """Write a screenshot as a compressed PNG (the docs keep every image small)."""
    with Image.open(io.BytesIO(data)) as image:
        image.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def screenshot(project: Path, chromium: Path, output: Path) -> None:
    """Serve the project's store, check the run's page, and take its screenshots."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no experiment {EXPERIMENT!r}"
    (run,) = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{RUN}'")
    points = len(client.get_metric_history(run.info.run_id, "val_loss"))
    plots = Path(urlsplit(run.info.artifact_uri).path) / "plots"
    server = MlflowServer(client.tracking_uri, project / "server-artifacts", project / "ui.log")
    server.start()
    try:
        with chromium_browser(chromium) as browser:
            ids = (experiment.experiment_id, run.info.run_id)
            page = RunPage(browser, server.uri, *ids, viewport=VIEWPORT)
            page.open("model-metrics")
            page.wait_for_title(RUN)
            page.wait_for_chart("val_loss", points)
            save_png(page.page.screenshot(animations="disabled"), output / "mlflow_ui_metrics.png")
            page = RunPage(browser, server.uri, *ids, viewport=PLOTS_VIEWPORT)
            page.open("artifacts/plots/confusion_matrix.png")
            with Image.open(plots / "confusion_matrix.png") as logged:
                assert page.wait_for_image("plots/confusion_matrix.png") == logged.size
            page.wait_for_tree_to_settle()
            save_png(page.page.screenshot(animations="disabled"), output / "mlflow_ui_plots.png")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    found = service_facts().get("SEROTINY_CHROMIUM") or shutil.which("chromium")
    parser.add_argument("--chromium", type=Path, default=found, help="Chromium's executable")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "images")
    arguments = parser.parse_args()
    if arguments.chromium is None:
        sys.exit("no Chromium: run `scripts/services/up chromium` or give --chromium")
    arguments.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serotiny-ui-") as folder:
        screenshot(make_run(Path(folder)), arguments.chromium, arguments.output.resolve())


if __name__ == "__main__":
    main()
