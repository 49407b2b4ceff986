"""Checking Hydra overrides and serotiny's settings before a job starts, so mistakes end in
one clear line.

Hydra's own error reporting prints several lines and exits 1; serotiny's contract is one
line and exit 2. We therefore compose the config once up front with Hydra's compose API
and translate whatever it raises. A composition is always of one job: sweep overrides
(``seed=1,2``) are checked with their first values, and then each other value in turn.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import DictConfig

from serotiny.cli.job_checks import check_job
from serotiny.errors import SerotinyUserError
from serotiny.settings.legacy import translate_legacy_keys
from serotiny.settings.reading import check_settings


class ConfigError(SerotinyUserError):
    """The requested configuration cannot be composed."""


#: At most this many more compositions check the other values of sweep overrides.
MAX_SWEEP_VALUE_CHECKS = 8


def _sweep_values(overrides: list[str]) -> list[list[str]]:
    """Each override as the values a job of it gets: one for a plain override, each value
    of a sweep (``seed=1,2``), none for a sweep without listed values (an interval)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for text in overrides:
        try:
            parser.parse_override(text)
        except HydraException as error:
            raise ConfigError(
                f"malformed override '{text}': {error} (see Hydra's override grammar)"
            ) from error
    values: list[list[str]] = []
    for override, text in zip(parser.parse_overrides(overrides), overrides, strict=True):
        if not override.is_sweep_override():
            values.append([text])
            continue
        try:
            listed = list(override.sweep_string_iterator())
        except Exception:  # intervals etc. have no values to list: skip the check
            listed = []
        values.append([f"{override.get_key_element()}={value}" for value in listed])
    return values


def _jobs_to_check(overrides: list[str]) -> list[list[str]]:
    """The overrides of the sweep's first job, then of jobs that each change one sweep
    override to another of its values (at most :data:`MAX_SWEEP_VALUE_CHECKS`), so that a
    bad value late in a sweep stops it before its first job trains."""
    values = _sweep_values(overrides)
    first = [listed[0] for listed in values if listed]
    jobs = [first]
    for index, listed in enumerate(values):
        if not listed:
            continue
        position = sum(1 for earlier in values[:index] if earlier)
        for other in listed[1:]:
            if len(jobs) > MAX_SWEEP_VALUE_CHECKS:
                return jobs
            jobs.append([*first[:position], other, *first[position + 1 :]])
    return jobs


def check_composes(
    config_dir: Path,
    config_name: str,
    overrides: list[str],
    operation: str,
    multirun: bool = False,
) -> None:
    """Compose ``config_name`` with ``overrides`` for ``operation``; raise a one-line error
    (:class:`ConfigError`, or a settings error) if it fails or a setting is wrong, and check
    the job as :mod:`serotiny.cli.job_checks` does (``multirun``: Hydra's ``--multirun``).
    A sweep is checked with its first job's values and then, one sweep override at a time,
    with its other values (:func:`_jobs_to_check`)."""
    for job in _jobs_to_check(overrides):
        check_job_composes(config_dir, config_name, job, operation, multirun)


def check_job_composes(
    config_dir: Path, config_name: str, overrides: list[str], operation: str, multirun: bool
) -> None:
    """:func:`check_composes` for one job's overrides (no sweeps)."""
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir), version_base="1.3", job_name=config_name):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as error:
        from serotiny.cli.errors import one_line

        head = one_line(str(error).split("Available options", 1)[0])
        options = ", ".join(sorted(error.options or [])) or "none"
        raise ConfigError(
            f"{head} (config dir {config_dir}); available options: {options}"
        ) from error
    except (HydraException, OmegaConfBaseException) as error:
        cause = error.__cause__
        detail = ""
        if isinstance(cause, OmegaConfBaseException):
            detail = f" ({str(cause).splitlines()[0]})"
        raise ConfigError(f"{error}{detail} (config dir {config_dir})") from error
    except yaml.YAMLError as error:
        raise ConfigError(yaml_message(error)) from error
    finally:
        GlobalHydra.instance().clear()
    check_job_settings(cfg, operation, multirun)


def yaml_message(error: Exception) -> str:
    """One line for a config file that is not valid YAML: the file, line, column and why."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return f"a config file is not valid YAML: {problem}"
    return (
        f"config file {mark.name} is not valid YAML: {problem} at line {mark.line + 1}, "
        f"column {mark.column + 1}; fix the file"
    )


def check_job_settings(cfg: DictConfig, operation: str, multirun: bool = False) -> None:
    """serotiny's settings in the composed ``cfg`` (with Hydra's node), checked before the job
    exists: a legacy project's keys translated first, interpolations of Hydra's job values
    (``${hydra:runtime.output_dir}``) answered with a stand-in folder, nothing written; then
    the checks of :func:`serotiny.cli.job_checks.check_job`."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = tempfile.gettempdir()
    HydraConfig.instance().set_config(cfg)
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        try:
            translated = translate_legacy_keys(job, operation).config
        except OmegaConfBaseException as error:
            key = getattr(error, "full_key", None) or "the config"
            raise ConfigError(f"cannot resolve '{key}': {str(error).splitlines()[0]}") from error
        check_settings(translated)
        check_job(cfg, translated, operation, multirun)
    finally:
        HydraConfig.instance().cfg = None
