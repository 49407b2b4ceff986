"""Translating the keys of projects made by the original serotiny template.

Projects rendered from ``AllenCellModeling/serotiny-project-cookiecutter`` build their
configs on ``defaults/...`` configs that serotiny ships again (``serotiny/config/defaults``),
and use that era's keys: ``trainer.gpus``, ``trainer.logger: []``, ``mlflow.autolog.*``,
``mlflow.run_id``, ``mode``, ``logs_root``, ``log_level``. :func:`translate_legacy_keys` turns a
composed config that holds them into one that today's commands read, with one note per key
the user set, so that such projects run unchanged and learn which lines they may change.

The table :data:`TRANSLATORS` holds one small function per legacy key; a config without any
of them is returned untouched. Nothing here imports Lightning or MLflow.

Example::

    translation = translate_legacy_keys(cfg, "train")
    for note in translation.notes:
        log.info("%s", note)
    apply_log_levels(translation.log_levels)
    cfg = translation.config
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from serotiny.errors import SerotinyUserError

DEFAULT_LOG_LEVEL = "INFO"
OUTPUTS_FOLDER = "outputs"
# The original's autolog options, and what serotiny does in their place.
_AUTOLOG_NOTES = {
    "log_every_n_epoch": "dropped: the model's epoch metrics are logged every epoch",
    "log_models": "dropped: a run always stores its best and last checkpoints, which resume needs",
    "disable": "dropped: every serotiny run is tracked in MLflow",
}


class LegacyKeyError(SerotinyUserError):
    """A legacy key holds a value that has no meaning today."""


@dataclass(frozen=True)
class LegacyNote:
    """What happened to one legacy key the config set."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(frozen=True)
class LegacyTranslation:
    """The translated config, a note per translated key, and the log levels to apply."""

    config: DictConfig
    notes: tuple[LegacyNote, ...] = ()
    #: logger name ("" for the root logger) -> level name, from ``log_level``
    log_levels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Work:
    """A translation under way: plain resolved data, changed in place by the translators."""

    data: dict[str, Any]
    operation: str
    notes: list[LegacyNote] = field(default_factory=list)
    log_levels: dict[str, str] = field(default_factory=dict)

    def note(self, key: str, message: str) -> None:
        self.notes.append(LegacyNote(key, message))

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}


def _show(value: Any) -> str:
    """A value as YAML would write it inline (null, true, "text", [0, 1])."""
    return json.dumps(value, default=str)


def _translate_mode(work: _Work) -> None:
    mode = work.data.pop("mode")
    expected = "train" if work.operation == "validate" else work.operation
    if mode != expected:
        work.note("mode", f"'{mode}' ignored: the command (serotiny {work.operation}) decides")


def _translate_logs_root(work: _Work) -> None:
    logs_root = str(work.data.pop("logs_root"))
    root = str(work.section("paths").get("root") or ".")
    if logs_root.rstrip("/") != f"{root.rstrip('/')}/{OUTPUTS_FOLDER}":
        work.note(
            "logs_root",
            f"'{logs_root}' holds this job's output folder (hydra.run.dir in defaults/hydra); "
            "dropped from the run's config",
        )


def _level_name(key: str, value: Any) -> str:
    names = logging.getLevelNamesMapping()
    if isinstance(value, int) and not isinstance(value, bool):
        return logging.getLevelName(value)
    if isinstance(value, str) and value.upper() in names:
        return value.upper()
    raise LegacyKeyError(
        f"{key}: {_show(value)} is not a logging level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )


def _translate_log_level(work: _Work) -> None:
    value = work.data.pop("log_level")
    if value is None:
        return
    if isinstance(value, Mapping):  # the original also took {logger name: level}
        levels = {str(name): _level_name(f"log_level.{name}", v) for name, v in value.items()}
    else:
        levels = {"": _level_name("log_level", value)}
    if levels == {"": DEFAULT_LOG_LEVEL}:
        return  # what Hydra's job logging does anyway
    work.log_levels.update(levels)
    shown = ", ".join(f"{name or 'root'}={level}" for name, level in levels.items())
    work.note("log_level", f"applied to the loggers ({shown})")


def _devices_from_gpus(gpus: Any) -> Any:
    if isinstance(gpus, bool) or not isinstance(gpus, int | str | list):
        raise LegacyKeyError(
            f"trainer.gpus: {_show(gpus)} is not a GPU count or list; "
            "set trainer.accelerator and trainer.devices instead"
        )
    return gpus


def _translate_gpus(work: _Work) -> None:
    trainer = work.data["trainer"]
    gpus = trainer.pop("gpus")
    if trainer.get("accelerator") is not None:
        if gpus is not None:
            work.note("trainer.gpus", f"{_show(gpus)} ignored: trainer.accelerator is set")
        return
    devices = _devices_from_gpus(gpus) if gpus is not None else 0
    on_cpu = devices in (0, "0", [])
    trainer["accelerator"] = "cpu" if on_cpu else "gpu"
    trainer.setdefault("devices", 1 if on_cpu else devices)
    shown = f"accelerator: {trainer['accelerator']}, devices: {_show(trainer['devices'])}"
    work.note("trainer.gpus", f"{_show(gpus)} -> {shown} (write these instead of gpus)")


def _translate_logger(work: _Work) -> None:
    logger = work.data["trainer"].pop("logger")
    if logger in (None, False, [], {}):
        work.note(
            "trainer.logger", f"{_show(logger)} dropped: serotiny logs every run to MLflow itself"
        )
    else:
        work.note(
            "trainer.logger",
            "dropped: serotiny owns the Trainer's logger (MLflow); log from your module instead",
        )


def _translate_autolog(work: _Work) -> None:
    autolog = work.data["mlflow"].pop("autolog")
    trainer = work.section("trainer")
    for name, value in (autolog or {}).items():
        if value is None:
            continue  # unset, as in serotiny's defaults/mlflow/default
        key = f"mlflow.autolog.{name}"
        if name == "log_every_n_step" and "log_every_n_steps" not in trainer:
            trainer["log_every_n_steps"] = value
            work.note(key, f"{_show(value)} -> trainer.log_every_n_steps: {_show(value)}")
        else:
            message = _AUTOLOG_NOTES.get(name, "dropped: serotiny logs through its own logger")
            work.note(key, f"{_show(value)} {message}")


def _translate_tracking_uri(work: _Work) -> None:
    mlflow = work.data["mlflow"]
    root = str(work.section("paths").get("root") or ".")
    mlflow["tracking_uri"] = f"sqlite:///{root}/mlruns.db"
    work.note("mlflow.tracking_uri", f"unset -> {mlflow['tracking_uri']} (the embedded store)")


def _translate_params_to_log(work: _Work) -> None:
    if work.data["mlflow"].pop("params_to_log") is not None:
        work.note("mlflow.params_to_log", "dropped: every config value is logged as a param")


def _translate_run_id(work: _Work) -> None:
    mlflow = work.data["mlflow"]
    run_id = mlflow["run_id"]
    if work.operation == "train":
        raise LegacyKeyError(
            f"mlflow.run_id={run_id}: serotiny train resumes a run by its name, not its id; "
            "drop mlflow.run_id and give ++mlflow.run_name=<that run's name>"
        )
    if mlflow.get("run_name"):
        work.note("mlflow.run_id", f"selects run {run_id}; mlflow.run_name is not used")


def _present(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    return isinstance(node, DictConfig) and leaf in node


def _value(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


_PROBES: dict[str, Callable[[DictConfig, str], bool]] = {
    "present": lambda cfg, key: _present(cfg, key),
    "set": lambda cfg, key: _present(cfg, key) and _value(cfg, key) is not None,
    "unset": lambda cfg, key: _present(cfg, key) and _value(cfg, key) in (None, ""),
}

#: legacy key -> (when the composed config calls for a translation, the translation)
TRANSLATORS: dict[str, tuple[str, Callable[[_Work], None]]] = {
    "mode": ("present", _translate_mode),
    "logs_root": ("present", _translate_logs_root),
    "log_level": ("present", _translate_log_level),
    "trainer.gpus": ("present", _translate_gpus),
    "trainer.logger": ("present", _translate_logger),
    "mlflow.autolog": ("present", _translate_autolog),
    "mlflow.tracking_uri": ("unset", _translate_tracking_uri),
    "mlflow.params_to_log": ("present", _translate_params_to_log),
    "mlflow.run_id": ("set", _translate_run_id),
}


def translate_legacy_keys(cfg: DictConfig, operation: str) -> LegacyTranslation:
    """Translate the original serotiny's keys in the composed ``cfg`` for ``operation``.

    Args:
        cfg: the config as Hydra composed it (not changed).
        operation: the command running it: ``train``, ``test``, ``predict`` or ``validate``.

    Returns:
        ``cfg`` itself when it holds no legacy key; otherwise a resolved copy with the keys
        translated or dropped, a note for each key the user set, and the log levels that
        ``log_level`` asks for (see :func:`apply_log_levels`).

    Raises:
        LegacyKeyError: a legacy key holds a value with no meaning today (e.g.
            ``mlflow.run_id`` given to ``serotiny train``).

    Example::

        >>> cfg = OmegaConf.create({"trainer": {"gpus": 2}})
        >>> [str(n) for n in translate_legacy_keys(cfg, "train").notes]
        ['trainer.gpus: 2 -> accelerator: gpu, devices: 2 (write these instead of gpus)']
    """
    wanted = [
        translate for key, (probe, translate) in TRANSLATORS.items() if _PROBES[probe](cfg, key)
    ]
    if not wanted:
        return LegacyTranslation(cfg)
    # Resolved first: dropped keys (logs_root, mode) may be interpolated by others.
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    work = _Work(data, operation)
    for translate in wanted:
        translate(work)
    return LegacyTranslation(OmegaConf.create(work.data), tuple(work.notes), work.log_levels)


def apply_log_levels(levels: Mapping[str, str]) -> None:
    """Set each named logger's level (``""`` is the root logger), as ``log_level`` asked."""
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
