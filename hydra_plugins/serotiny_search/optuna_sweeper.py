"""Where Hydra finds serotiny's Optuna sweeper.

Hydra builds sweepers only from classes under the ``hydra_plugins`` namespace, and imports
every module there whenever any Hydra application starts. So this module is small and
cheap to import: Optuna, MLflow and the search itself load only when a search is set up,
in :class:`serotiny.search.sweeper.OptunaSweeper`, which does the work. A mistake in the
search's settings ends like any other serotiny user error: one line, exit status 2
(Hydra would otherwise print its own report and exit 1).
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from serotiny.cli.errors import user_errors_exit_cleanly


class OptunaSweeper(Sweeper):
    """Hydra's handle on :class:`serotiny.search.sweeper.OptunaSweeper` (same settings)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.sweeper: Sweeper | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Build serotiny's sweeper with the settings Hydra gave and set it up."""
        from serotiny.search.sweeper import OptunaSweeper as SerotinySweeper

        with user_errors_exit_cleanly():
            self.sweeper = SerotinySweeper(**self.settings)
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        """Run the search (see :meth:`serotiny.search.sweeper.OptunaSweeper.sweep`)."""
        assert self.sweeper is not None, "setup() comes first"
        with user_errors_exit_cleanly():
            return self.sweeper.sweep(arguments)
