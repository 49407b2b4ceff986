"""A run's page in MLflow's own UI, opened in headless Chromium through Playwright.

Shared by tests/test_mlflow_ui.py, which checks what a serotiny run looks like there, and
scripts/mlflow_ui_screenshot.py, which takes the screenshots the docs show (after the same
checks, so that a screenshot never shows a half-loaded page).

MLflow 3's UI is a React app that fetches everything after the page loads: every check
waits for its element with a deadline (Playwright's auto-waiting), never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright
from services import CHROMIUM_FLAGS

# What the UI fetches and draws on a shared 2-core machine may take a while; a page that
# is broken never shows what it waits for, so the deadline only costs time on failure.
DEADLINE_MS = 60_000
# The UI's own choices, kept in the browser's localStorage: show the "Model training" view
# of an experiment (not the GenAI one), and keep the assistant panel closed, as a user who
# had dismissed it would see the page. They change how the page looks, not what it holds.
UI_STATE = {
    "mlflow.workflowType_v1": '"machine_learning"',
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}
# True once the last entry of the page's main lists keeps its place over a few frames.
_TREE_STILL = """() => new Promise(done => {
  const entry = [...document.querySelectorAll("main li")].pop();
  if (!entry) return done(false);
  const top = entry.getBoundingClientRect().top;
  const later = () => done(entry.isConnected && entry.getBoundingClientRect().top === top);
  requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(later)));
})"""
# Playwright passes its own --headless flag (and its own fresh profile).
_FLAGS = [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]


@contextmanager
def chromium_browser(executable: Path) -> Iterator[Browser]:
    """Headless Chromium at ``executable`` (Debian's, never a browser Playwright downloads),
    started with the flags these machines need; closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


class RunPage:
    """One run's page in the MLflow UI served at ``base_url``."""

    def __init__(
        self, browser: Browser, base_url: str, experiment_id: str, run_id: str, **context: object
    ) -> None:
        """``context``: Playwright's browser-context options (``viewport=...``)."""
        browser_context = browser.new_context(**context)  # type: ignore[arg-type]
        script = "".join(f"localStorage.setItem({k!r}, {v!r});" for k, v in UI_STATE.items())
        browser_context.add_init_script(script)
        browser_context.set_default_timeout(DEADLINE_MS)
        self.page: Page = browser_context.new_page()
        self.url = f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def open(self, tab: str = "") -> None:
        """Go to the run's page, on ``tab`` (``model-metrics``, ``artifacts/<path>``)."""
        self.page.goto(f"{self.url}/{tab}" if tab else self.url)

    def wait_for_title(self, run_name: str) -> None:
        """Wait until the page's heading is the run's name."""
        expect(self.page.get_by_role("heading", name=run_name, exact=True)).to_be_visible(
            timeout=DEADLINE_MS
        )

    def metric_shown(self, key: str) -> float:
        """The value the overview's metrics table shows for ``key`` (waits for the row)."""
        # The row whose first cell is the key (parameters' values may be "val_loss" too).
        row = self.page.locator(
            f'xpath=//*[@role="row"][*[@role="cell"][1][normalize-space(.)="{key}"]]'
        )
        expect(row).to_have_count(1, timeout=DEADLINE_MS)
        cells = row.get_by_role("cell").all_inner_texts()
        return float(cells[-1])

    def wait_for_chart(self, key: str, points: int) -> None:
        """Wait until the model-metrics tab draws ``key``'s chart with ``points`` points."""
        title = self.page.locator(f'h4[title="{key}"]')
        card = self.page.get_by_test_id("experiment-view-compare-runs-card").filter(has=title)
        expect(card).to_have_count(1, timeout=DEADLINE_MS)
        # The chart is a Plotly SVG: one marker per logged value on its line.
        expect(card.locator(".js-plotly-plot .scatterlayer .trace .points path")).to_have_count(
            points, timeout=DEADLINE_MS
        )

    def select_artifact(self, name: str) -> None:
        """Click ``name`` in the artifacts tab's tree, as a user does (the tab does not
        follow a change of the address's artifact path alone)."""
        self.page.get_by_role("listitem").get_by_text(name, exact=True).click()

    def wait_for_tree_to_settle(self) -> None:
        """Wait until the artifacts tab's tree stops moving (it animates a folder opening,
        in script, which no screenshot option stops): its last entry stays put."""
        self.page.wait_for_function(_TREE_STILL)

    def wait_for_image(self, artifact_path: str) -> tuple[int, int]:
        """Wait until the artifacts tab shows the image ``artifact_path`` loaded; return its
        decoded size (naturalWidth, naturalHeight)."""
        image = self.page.locator(f'img[alt="{artifact_path}"]')
        expect(image).to_be_visible(timeout=DEADLINE_MS)
        handle = image.element_handle()
        self.page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=handle)
        width, height = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        return int(width), int(height)
