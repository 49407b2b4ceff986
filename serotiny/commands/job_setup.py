"""What every command does first: resolve its config, read serotiny's settings, tidy logging.

Kept free of Lightning and MLflow imports at module level: ``serotiny validate`` starts here
and must answer fast.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from serotiny.errors import SerotinyUserError
from serotiny.settings.config_data import normalize_targets
from serotiny.settings.reading import read_settings
from serotiny.settings.schema import Settings
from serotiny.settings.secrets import redact
from serotiny.tracking.http import configure_http

log = logging.getLogger(__name__)


def start_job(cfg: DictConfig) -> tuple[DictConfig, Settings]:
    """The config resolved once (targets normalised) and serotiny's typed settings from it."""
    tidy_logging()
    settings = read_settings(cfg)
    configure_http(settings.mlflow.http_timeout_seconds, settings.mlflow.http_retries)
    try:
        resolved = normalize_targets(cfg)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        raise JobSetupError(f"cannot resolve '{key}': {str(error).splitlines()[0]}") from None
    return resolved, settings


class JobSetupError(SerotinyUserError):
    """The command's config does not resolve, or its folder cannot be made."""


def output_folder(settings: Settings) -> Path:
    """The command's own folder (``paths.output_dir``), made if missing."""
    folder = Path(settings.paths.output_dir).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise JobSetupError(
            f"cannot make the command's folder {folder} (paths.output_dir): "
            f"{error.strerror or error}; choose a writable ++paths.output_dir"
        ) from None
    return folder


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
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    container = redact(OmegaConf.to_container(cfg, resolve=True))
    tree = Tree("[bold]config[/bold]", guide_style="dim")
    for key, value in container.items():
        branch = tree.add(f"[bold]{key}[/bold]")
        if isinstance(value, dict | list):
            branch.add(Syntax(OmegaConf.to_yaml(OmegaConf.create(value)).rstrip(), "yaml"))
        else:
            branch.add(repr(value))
    Console(stderr=True).print(tree)
