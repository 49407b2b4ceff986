"""Reading serotiny's settings out of a composed config, with one-line errors for mistakes.

:func:`check_settings` runs before a command starts (interpolations left as they are), so a
misspelled key such as ``++resume.allow_config_chnage=true`` stops the command at once;
:func:`read_settings` gives a command its :class:`~serotiny.settings.schema.Settings`, typed,
with every default filled in and interpolations resolved against the whole config.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from serotiny.errors import SerotinyUserError
from serotiny.settings.schema import SECTIONS, CheckpointChoice, RunValues, Settings

log = logging.getLogger(__name__)


class SettingsError(SerotinyUserError):
    """A serotiny setting is unknown, misspelled, of the wrong type or cannot be resolved."""


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _earlier_form(name: str, node: Any) -> Any:
    """A section written the way serotiny's earlier templates wrote it, in today's form.

    Earlier ``test.yaml``/``predict.yaml`` said ``checkpoint: best`` for the checkpoint to
    use, where ``train.yaml`` said ``checkpoint: {monitor, mode}``; one key now means one thing.
    """
    if name == "checkpoint" and node in {choice.value for choice in CheckpointChoice}:
        log.info("'checkpoint: %s' is read as 'checkpoint.use: %s'", node, node)
        return {"use": node}
    return node


def _section_data(cfg: DictConfig, name: str) -> dict[str, Any]:
    """The section as written (interpolations kept), its keys checked against the schema."""
    known = [f.name for f in fields(SECTIONS[name])]
    node = _earlier_form(name, cfg.get(name))
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if not isinstance(node, dict):
        raise SettingsError(
            f"'{name}' must be a mapping of settings ({', '.join(known)}), got {node!r}"
        )
    for key in node:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{name}.{close[0]}'?)" if close else ""
            raise SettingsError(
                f"unknown setting '{name}.{key}'{hint}; '{name}' takes {', '.join(known)}"
            )
    return node


def _check_misspelled_sections(cfg: DictConfig) -> None:
    for key in cfg:
        if key in SECTIONS or not isinstance(cfg.get(key), DictConfig):
            continue
        close = difflib.get_close_matches(str(key), list(SECTIONS), n=1, cutoff=0.8)
        if close:
            raise SettingsError(
                f"unknown config section '{key}' (did you mean serotiny's '{close[0]}'?)"
            )


def _typed(schema: Any, data: dict[str, Any], where: str = "") -> DictConfig:
    try:
        merged = OmegaConf.merge(schema, data)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or getattr(error, "key", None) or where
        raise SettingsError(f"setting '{key}': {_first_line(error)}") from error
    assert isinstance(merged, DictConfig)
    return merged


def _schema() -> DictConfig:
    return OmegaConf.create({name: OmegaConf.structured(cls) for name, cls in SECTIONS.items()})


def check_settings(cfg: DictConfig) -> None:
    """Raise :class:`SettingsError` for an unknown key or a wrongly typed value.

    Interpolations (``${paths.root}``) are not resolved, so this runs before a job exists.
    """
    _check_misspelled_sections(cfg)
    _typed(_schema(), {name: _section_data(cfg, name) for name in SECTIONS})
    values = {key: cfg.get(key) for key in (f.name for f in fields(RunValues)) if key in cfg}
    _typed(OmegaConf.structured(RunValues), values)


def read_settings(cfg: DictConfig) -> Settings:
    """serotiny's settings from the composed config ``cfg``, resolved and typed.

    Interpolations resolve against the whole config, so ``run_name: ${model.name}_${seed}``
    and the default ``tracking_uri`` (``sqlite:///${paths.root}/mlruns.db``) work.
    """
    check_settings(cfg)
    context = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(context, dict)
    context.update({name: _section_data(cfg, name) for name in SECTIONS})
    full = _typed(_schema(), context)
    try:
        sections = {name: OmegaConf.to_object(full[name]) for name in SECTIONS}
        values = {f.name: full.get(f.name, f.default) for f in fields(RunValues)}
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        raise SettingsError(f"cannot resolve '{key}': {_first_line(error)}") from error
    run_values = OmegaConf.to_object(_typed(OmegaConf.structured(RunValues), values))
    assert isinstance(run_values, RunValues)
    return Settings(
        **sections,
        seed=run_values.seed,
        print_config=run_values.print_config,
        preflight=run_values.preflight,
    )
