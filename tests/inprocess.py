"""Running serotiny's commands inside the test process, the lightning-hydra-template way.

A test composes the project's config with Hydra's compose API (the same config tree, the
same packaged search path and settings the CLI uses) and calls the command's function.
That skips a fresh interpreter's imports of torch, Lightning and MLflow (several seconds per
command on 2 cores); subprocesses stay for tests whose subject is the command line itself:
exit codes, signals, DDP ranks, servers.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from cli_helpers import PACKAGE, tracking_uri
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig

from serotiny.cli.hydra_app import with_packaged_search_path
from serotiny.commands import run_command
from serotiny.settings.schema import register_settings
from serotiny.tracking.store import connect

# Commands whose config is another command's (the CLI's rule too).
CONFIG_NAMES = {"validate": "train", "cross_validate": "train", "register": "train"}


def forget_project_modules() -> None:
    """Drop the project package imported by an earlier test (each test has its own copy)."""
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


class Workspace:
    """A project copy in which commands run in this test's process.

    Each command gets an output folder of its own under ``outputs``, as the CLI gives it one.
    """

    def __init__(self, root: Path, outputs: Path) -> None:
        self.root = root
        self.outputs = outputs
        self._numbers = itertools.count()

    @property
    def uri(self) -> str:
        """The project's embedded tracking URI."""
        return tracking_uri(self.root)

    def compose(self, command: str, *overrides: str) -> DictConfig:
        """The config ``serotiny <command> <overrides>`` would run on."""
        register_settings()
        folder = self.outputs / f"{command}-{next(self._numbers)}"
        arguments = with_packaged_search_path(
            [*overrides, f"++paths.root={self.root}", f"++paths.output_dir={folder}"]
        )
        GlobalHydra.instance().clear()
        config_dir = str(self.root / PACKAGE / "config")
        with initialize_config_dir(config_dir, version_base="1.3", job_name=command):
            return compose(CONFIG_NAMES.get(command, command), overrides=arguments)

    def run(self, command: str, *overrides: str) -> Any:
        """Run ``serotiny <command> <overrides>``; return what the command returns.

        Logs at INFO, as Hydra's job logging does under the CLI (``caplog`` sees them).
        """
        logging.getLogger().setLevel(logging.INFO)
        return run_command(command, self.compose(command, *overrides))

    def client(self) -> MlflowClient:
        """A client on the project's store (made under the store's lock, as serotiny does)."""
        return connect(self.uri)

    def runs(self, experiment: str = "default") -> dict[str, Run]:
        """The experiment's runs by name (empty when the experiment does not exist)."""
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return {}
        return {run.info.run_name: run for run in client.search_runs([found.experiment_id])}

    def run_named(self, name: str, experiment: str = "default") -> Run:
        """The one run called ``name``."""
        runs = self.runs(experiment)
        assert name in runs, sorted(runs)
        return runs[name]


def make_workspace(template: Path, store: Path, tmp_path: Path) -> Workspace:
    """A fresh copy of ``template`` with an empty, ready store (its schema made once)."""
    root = tmp_path / PACKAGE
    shutil.copytree(template, root)
    shutil.copy(store, root / "mlruns.db")
    forget_project_modules()
    sys.path.insert(0, str(root))
    return Workspace(root, tmp_path / "outputs")
