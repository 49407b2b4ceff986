"""A composed config as data: resolved, with targets normalised, flattened and hashed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from serotiny.settings.secrets import redact

# Configs written for the standalone `pytorch_lightning` package (the getting-started guide
# uses them) name classes that live under `lightning.pytorch` in the unified package we
# train with. Instances of the two are not interchangeable, so we point such targets at
# the package the Trainer comes from.
_TARGET_ALIASES = {"pytorch_lightning.": "lightning.pytorch."}


def normalize_targets(cfg: DictConfig) -> DictConfig:
    """A resolved copy of ``cfg``: ``pytorch_lightning.X`` targets become ``lightning.pytorch.X``.

    Returns a new config; ``cfg`` itself is left as it was.
    """

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: rewrite(value) for key, value in node.items()}
            target = out.get("_target_")
            if isinstance(target, str):
                for old, new in _TARGET_ALIASES.items():
                    if target.startswith(old):
                        out["_target_"] = new + target[len(old) :]
            return out
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    container = OmegaConf.to_container(cfg, resolve=True)
    return OmegaConf.create(rewrite(container))


def resolved_container(cfg: DictConfig | ListConfig) -> Any:
    """The config as plain Python data, interpolations resolved and credentials redacted."""
    return redact(OmegaConf.to_container(cfg, resolve=True))


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted.key, leaf)`` pairs, lists indexed by position (``a.0.b``)."""
    if isinstance(data, Mapping):
        if not data and prefix:
            yield prefix, "{}"
        for key, value in data.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list | tuple):
        if not data and prefix:
            yield prefix, "[]"
        for index, value in enumerate(data):
            yield from flatten(value, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, data


def config_hash(data: Any) -> str:
    """A stable SHA-256 of plain config data (key order does not matter)."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def differing_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two flattened configs."""
    keys = set(old) | set(new)
    return sorted(key for key in keys if str(old.get(key)) != str(new.get(key)))
