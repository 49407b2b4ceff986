"""serotiny's commands, one module each, run on a composed config.

:data:`COMMANDS` is the table the CLI dispatches through. Each command is imported when it
runs, so that a command that trains nothing (``validate``) never pays for Lightning or MLflow.
``serotiny train`` with ``cv.folds`` set runs :mod:`~serotiny.commands.cross_validate`,
which trains each fold through :mod:`~serotiny.commands.train`.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from omegaconf import DictConfig

from serotiny.settings.legacy import apply_log_levels, translate_legacy_keys

log = logging.getLogger(__name__)

# command name -> "module:function" implementing it
COMMANDS = {
    "train": "serotiny.commands.train:train",
    "cross_validate": "serotiny.commands.cross_validate:cross_validate",
    "test": "serotiny.commands.test:test",
    "predict": "serotiny.commands.predict:predict",
    "validate": "serotiny.commands.validate:validate",
    "sync": "serotiny.commands.sync:sync",
    "runs": "serotiny.commands.runs:runs",
    "register": "serotiny.commands.register:register",
}
# Commands that run on another command's config (the project's train.yaml), when the project
# has no config of their own name.
CONFIG_NAMES = {
    "validate": "train",
    "cross_validate": "train",
    "sync": "train",
    "runs": "train",
    "register": "train",
}


def command_for(name: str, cfg: DictConfig) -> str:
    """The command that runs ``serotiny <name>`` on ``cfg``: ``train`` with folds is a
    cross-validation."""
    if name == "train" and (cfg.get("cv") or {}).get("folds"):
        return "cross_validate"
    return name


def run_command(name: str, cfg: DictConfig) -> Any:
    """Run ``serotiny <name>`` on the composed config ``cfg``; return what the command returns.

    A project made by the original serotiny template may use that era's keys: they are
    translated first, with a note each (see :mod:`serotiny.settings.legacy`).
    """
    translation = translate_legacy_keys(cfg, name)
    for note in translation.notes:
        log.info("legacy key %s", note)
    apply_log_levels(translation.log_levels)
    cfg = translation.config
    module_name, function_name = COMMANDS[command_for(name, cfg)].split(":")
    return getattr(import_module(module_name), function_name)(cfg)
