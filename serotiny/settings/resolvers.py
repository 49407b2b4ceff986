"""OmegaConf resolvers serotiny's configs use, e.g. in the output folder of every command.

``${serotiny.job_label:}`` names what a command works on (the run's name or registered
model, else the model's class), so that ``outputs/train/<time>_<label>_<token>`` says what ran;
``${serotiny.unique:}`` is a short random token, the same everywhere in one job, so that
two commands started in the same second never share a folder.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from omegaconf import DictConfig, OmegaConf

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str, limit: int = 60) -> str:
    return _UNSAFE.sub("-", text).strip("-")[:limit] or "run"


def job_label(*, _root_: DictConfig) -> str:
    """The run's name when one is given (or a registered model's version, ``cells-champion``
    for ``models:/cells@champion``), else the short class name of the model."""
    run_name = OmegaConf.select(_root_, "mlflow.run_name", default=None)
    if run_name:
        return _safe(str(run_name))
    run_id = str(OmegaConf.select(_root_, "mlflow.run_id", default=None) or "")
    if run_id.startswith("models:/"):
        return _safe(run_id.removeprefix("models:/"))
    target = OmegaConf.select(_root_, "model._target_", default=None)
    return _safe(str(target).rsplit(".", 1)[-1]) if target else "job"


def unique_token() -> str:
    """Six random hex digits (cached per config, so one job sees one token)."""
    return secrets.token_hex(3)


# name -> (function, whether its value is cached: a token must stay the same within a job)
_RESOLVERS: dict[str, tuple[Any, bool]] = {
    "serotiny.job_label": (job_label, False),
    "serotiny.unique": (unique_token, True),
}


def register_resolvers() -> None:
    """Register serotiny's resolvers with OmegaConf (again is harmless)."""
    for name, (function, cached) in _RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=cached)
