"""Where an operation writes locally, and the config it runs on."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from serotiny.ml_ops.config_utils import normalize_targets

log = logging.getLogger(__name__)


def output_dir() -> Path:
    """The job's output folder: Hydra's when run by the CLI, else ``./outputs``."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    folder = Path("outputs").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare_config(cfg: DictConfig) -> DictConfig:
    """Resolve interpolations (once, in the job) and normalise ``_target_`` names."""
    tidy_logging()
    return normalize_targets(cfg)


def tidy_logging() -> None:
    """Let Lightning's messages go through the job's logging once, not twice.

    Lightning gives its loggers a console handler of their own when it is imported; under
    Hydra, which already configured the root logger, every message would print twice.
    """
    root = logging.getLogger()
    if not root.handlers:
        return
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def print_config_tree(cfg: DictConfig) -> None:
    """Show the resolved config as a tree before a run, so what runs is what was meant."""
    from omegaconf import OmegaConf
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    from serotiny.ml_ops.config_utils import redact

    container = redact(OmegaConf.to_container(cfg, resolve=True))
    tree = Tree("[bold]config[/bold]", guide_style="dim")
    for key, value in container.items():
        branch = tree.add(f"[bold]{key}[/bold]")
        if isinstance(value, dict | list):
            branch.add(Syntax(OmegaConf.to_yaml(OmegaConf.create(value)).rstrip(), "yaml"))
        else:
            branch.add(repr(value))
    Console(stderr=True).print(tree)
