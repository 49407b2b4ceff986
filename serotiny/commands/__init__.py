"""serotiny's commands, one module each, run on a composed config.

:data:`COMMANDS` is the table the CLI dispatches through. Each command is imported when it
runs, so that a command that trains nothing (``validate``) never pays for Lightning or MLflow.
``serotiny train`` with ``cv.folds`` set runs :mod:`~serotiny.commands.cross_validate`,
which trains each fold through :mod:`~serotiny.commands.train`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from omegaconf import DictConfig

# command name -> "module:function" implementing it
COMMANDS = {
    "train": "serotiny.commands.train:train",
    "cross_validate": "serotiny.commands.cross_validate:cross_validate",
    "test": "serotiny.commands.test:test",
    "predict": "serotiny.commands.predict:predict",
    "validate": "serotiny.commands.validate:validate",
}


def command_for(name: str, cfg: DictConfig) -> str:
    """The command that runs ``serotiny <name>`` on ``cfg``: ``train`` with folds is a
    cross-validation."""
    if name == "train" and (cfg.get("cv") or {}).get("folds"):
        return "cross_validate"
    return name


def run_command(name: str, cfg: DictConfig) -> Any:
    """Run ``serotiny <name>`` on the composed config ``cfg``; return what the command returns."""
    module_name, function_name = COMMANDS[command_for(name, cfg)].split(":")
    return getattr(import_module(module_name), function_name)(cfg)
