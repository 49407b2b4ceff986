"""Checking Hydra overrides and serotiny's settings before a job starts, so mistakes end in
one clear line.

Hydra's own error reporting prints several lines and exits 1; serotiny's contract is one
line and exit 2. We therefore compose the config once up front with Hydra's compose API
and translate whatever it raises. Sweep overrides (``seed=1,2``) are checked with their
first value, since a composition is always of one job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import DictConfig

from serotiny.errors import SerotinyUserError
from serotiny.settings.legacy import translate_legacy_keys
from serotiny.settings.reading import check_settings
from serotiny.tracking.uri_checks import check_tracking_uri

# The commands that talk to MLflow (validate does not).
TRACKED_COMMANDS = ("train", "test", "predict", "sync", "runs")


class ConfigError(SerotinyUserError):
    """The requested configuration cannot be composed."""


def _first_value_of_sweeps(overrides: list[str]) -> list[str]:
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
    parsed = parser.parse_overrides(overrides)
    single: list[str] = []
    for override, text in zip(parsed, overrides, strict=True):
        if not override.is_sweep_override():
            single.append(text)
            continue
        try:
            first = next(iter(override.sweep_string_iterator()))
        except Exception:  # intervals etc. have no first value: skip the check
            continue
        single.append(f"{override.get_key_element()}={first}")
    return single


def check_composes(
    config_dir: Path, config_name: str, overrides: list[str], operation: str
) -> None:
    """Compose ``config_name`` with ``overrides`` for ``operation``; raise a one-line error
    (:class:`ConfigError`, or a settings error) if it fails or a setting is wrong."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    single_job = _first_value_of_sweeps(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir), version_base="1.3", job_name=config_name):
            cfg = compose(config_name, overrides=single_job, return_hydra_config=True)
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
    finally:
        GlobalHydra.instance().clear()
    check_job_settings(cfg, operation)


def check_job_settings(cfg: DictConfig, operation: str) -> None:
    """serotiny's settings in the composed ``cfg`` (with Hydra's node), checked before the job
    exists: a legacy project's keys translated first, interpolations of Hydra's job values
    (``${hydra:runtime.output_dir}``) answered with a stand-in folder, nothing written."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = tempfile.gettempdir()
    HydraConfig.instance().set_config(cfg)
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        translated = translate_legacy_keys(job, operation).config
        check_settings(translated)
        uri = OmegaConf.select(translated, "mlflow.tracking_uri", default=None)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        raise ConfigError(f"cannot resolve '{key}': {str(error).splitlines()[0]}") from error
    finally:
        HydraConfig.instance().cfg = None
    if operation in TRACKED_COMMANDS and uri is not None:
        # Before anything heavy is imported or built: a server that does not answer is one
        # line within seconds, not a model built and minutes of MLflow's retries.
        check_tracking_uri(str(uri))
