"""Checks of a composed job that need no Lightning and no MLflow, made before Hydra starts it.

Each finds a mistake that would otherwise surface later as a traceback: an interpolation of a
key that does not exist (``${model.input_size}``) when the command resolves its config; an
output folder that cannot be made when Hydra makes it; a tracking store that cannot be used
when the command opens its run (see :mod:`serotiny.tracking.store_health`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    InterpolationKeyError,
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from serotiny.errors import SerotinyUserError
from serotiny.io.folders import folder_problem
from serotiny.settings.reading import SettingsError, read_settings
from serotiny.tracking.store_health import check_store

#: Commands that open or read runs in the tracking store.
TRACKED_OPERATIONS = ("train", "test", "predict", "register", "sync", "runs")


class JobCheckError(SerotinyUserError):
    """The composed job would fail as it starts: a key it refers to is missing, or a folder
    or store it needs cannot be written."""


def check_resolves(job: DictConfig) -> None:
    """Every interpolation of the job's config finds its key, and no value is left ``???``.

    Other resolution errors (a resolver's own) are left to the command, which resolves the
    config with the job's real values and reports them in one line too.
    """
    try:
        OmegaConf.to_container(job, resolve=True, throw_on_missing=True)
    except (InterpolationKeyError, InterpolationToMissingValueError) as error:
        key = getattr(error, "full_key", None) or "the config"
        reason = str(error).splitlines()[0]
        raise JobCheckError(
            f"cannot resolve '{key}': {reason}; add the missing key or fix the interpolation"
        ) from None
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or "a key"
        raise JobCheckError(
            f"'{key}' must be given (it is ??? in the config); set it, e.g. ++{key}=VALUE"
        ) from None
    except OmegaConfBaseException:
        return  # a resolver's own error, which may need the job's real values: left to it


def output_folder_of(cfg: DictConfig, multirun: bool) -> tuple[str, Path] | None:
    """The Hydra output folder the job will make (``hydra.run.dir``, or ``hydra.sweep.dir``
    for a multirun) and its key, or None when it does not resolve outside the job."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except OmegaConfBaseException:
        return None
    return (key, Path(str(value)).expanduser()) if value else None


def check_output_folder(cfg: DictConfig, multirun: bool) -> None:
    """Hydra can make the job's output folder (where it writes its log and ``.hydra/``)."""
    found = output_folder_of(cfg, multirun)
    if found is None:
        return
    key, folder = found
    problem = folder_problem(folder)
    if problem is not None:
        raise JobCheckError(
            f"cannot make the output folder {folder} ({key}): {problem}; choose a writable "
            f"folder with {key}=PATH"
        )


def check_job(cfg: DictConfig, job: DictConfig, operation: str, multirun: bool) -> None:
    """The checks above, for ``operation`` on the composed ``cfg`` (with Hydra's node) whose
    job part is ``job``; Hydra's config must be set (``HydraConfig``) while they run."""
    check_resolves(job)
    if operation in TRACKED_OPERATIONS:
        try:
            uri = read_settings(job).mlflow.tracking_uri
        except SettingsError:
            uri = None  # settings that resolve only in the job: the command checks its store
        if uri is not None:
            check_store(uri)
    check_output_folder(cfg, multirun)
