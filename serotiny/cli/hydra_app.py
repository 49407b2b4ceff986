"""Running one of serotiny's operations as a Hydra application.

We go through ``hydra.main`` (not the compose API) so that everything Hydra users expect
keeps working: ``--multirun``, sweeper and launcher plugins, ``--cfg job``, ``--help``,
output folders. serotiny's packaged configs join the search path through an override on
this command only, never through a global SearchPathPlugin, so they cannot leak into
other Hydra apps installed in the same environment.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from serotiny.cli.errors import fail, show_tracebacks, user_errors_exit_cleanly
from serotiny.cli.job_files import redact_job_files
from serotiny.cli.overrides import check_composes
from serotiny.cli.project import find_project
from serotiny.cli.quiet import quiet_known_noise
from serotiny.cli.relaunch import leave_for_extra_ranks, relaunched_config_dir
from serotiny.cluster import slurm_job, srun_task_rank
from serotiny.commands import CONFIG_NAMES, run_command
from serotiny.errors import ProjectNotFoundError
from serotiny.settings.schema import register_settings

OPERATIONS = ("train", "test", "predict", "validate", "sync", "runs", "register")
PACKAGED_CONFIGS = "pkg://serotiny.config"
PROJECT_ROOT_ENV = "SEROTINY_PROJECT_ROOT"
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--shell-completion", "-sc", "--info", "-i"}
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name"}
_FLAGS_WITH_VALUE |= {"-cn", "--config-dir", "-cd", "--experimental-rerun"}


def split_arguments(arguments: list[str]) -> tuple[list[str], list[str]]:
    """Separate Hydra's command-line flags from its overrides."""
    flags: list[str] = []
    overrides: list[str] = []
    pending_value = False
    for argument in arguments:
        if pending_value:
            flags.append(argument)
            pending_value = False
        elif (
            argument.startswith("-")
            and not argument.startswith("--")
            or argument in (_HELP_FLAGS | {"--multirun", "--resolve", "--run"})
        ) or argument.startswith("--"):
            flags.append(argument)
            pending_value = argument in _FLAGS_WITH_VALUE
        else:
            overrides.append(argument)
    return flags, overrides


#: Hydra's flags that take no value (the help flags besides).
_PLAIN_FLAGS = {"--multirun", "-m", "--resolve", "--run", "-r", "--version"}


def check_flags(flags: list[str]) -> None:
    """One line for a flag Hydra does not have (its own parser would print its usage too)."""
    known = _HELP_FLAGS | _PLAIN_FLAGS | _FLAGS_WITH_VALUE
    pending_value = False
    for flag in flags:
        name = flag.split("=", 1)[0]
        if pending_value or name in known:
            pending_value = flag in _FLAGS_WITH_VALUE
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        fail(f"unknown flag {name}{hint}; overrides are key=value, flags are Hydra's (--help)")


def pop_option(arguments: list[str], name: str) -> str | None:
    """Remove ``name VALUE`` or ``name=VALUE`` from ``arguments`` and return VALUE."""
    for index, argument in enumerate(arguments):
        if argument == name:
            if index + 1 >= len(arguments):
                fail(f"{name} needs a value")
            value = arguments[index + 1]
            del arguments[index : index + 2]
            return value
        if argument.startswith(name + "="):
            del arguments[index]
            return argument.split("=", 1)[1]
    return None


def with_packaged_search_path(overrides: list[str]) -> list[str]:
    """Add serotiny's packaged configs to ``hydra.searchpath``, keeping any the user gave."""
    for index, override in enumerate(overrides):
        key = override.lstrip("+").split("=", 1)[0]
        if key == "hydra.searchpath":
            value = override.split("=", 1)[1].strip()
            inner = value[1:-1].strip() if value.startswith("[") else value
            merged = f"{inner},{PACKAGED_CONFIGS}" if inner else PACKAGED_CONFIGS
            return [*overrides[:index], f"hydra.searchpath=[{merged}]", *overrides[index + 1 :]]
    return [*overrides, f"hydra.searchpath=[{PACKAGED_CONFIGS}]"]


def resolve_config_dir(arguments: list[str]) -> tuple[Path, Path]:
    """Return (config dir, project root) from ``--config-dir`` or the enclosing project."""
    explicit = pop_option(arguments, "--config-dir")
    if explicit is None:
        explicit = relaunched_config_dir()
    if explicit is not None:
        config_dir = Path(explicit).expanduser().resolve()
        if not config_dir.is_dir():
            fail(f"--config-dir {config_dir} is not a folder")
        try:
            root = find_project(config_dir).root
        except ProjectNotFoundError:  # a bare config dir outside any project is fine
            root = Path.cwd().resolve()
        return config_dir, root
    project = find_project()
    return project.config_dir, project.root


def with_extra_rank_outputs_aside(flags: list[str], overrides: list[str]) -> list[str]:
    """Keep the extra ranks that SLURM's srun starts out of the project's output folders.

    Each task srun starts runs the whole command and composes its own config, so each
    would make its own timestamped output folder: a known trap with Hydra. Rank 0's folder
    is the run's; the extra ranks write their Hydra log to a folder of their own under the
    node's temporary directory, and train with rank 0's folder, which its run records.
    """
    rank = srun_task_rank()
    keys = {override.lstrip("+~").split("=", 1)[0] for override in overrides}
    if not rank or "--multirun" in flags or "-m" in flags or "hydra.run.dir" in keys:
        return overrides
    job = slurm_job()
    step = job.step if job is not None else "job.step"
    folder = Path(tempfile.gettempdir()) / f"serotiny-{step}-rank{rank}"
    return [*overrides, f"hydra.run.dir={folder}", "hydra.output_subdir=null"]


def run_operation(operation: str, arguments: list[str]) -> None:
    """Run ``serotiny <operation> <arguments>`` through ``hydra.main``."""
    arguments = list(arguments)
    config_dir, root = resolve_config_dir(arguments)
    config_name = operation
    if not (config_dir / f"{operation}.yaml").is_file():
        config_name = CONFIG_NAMES.get(operation, operation)
        if not (config_dir / f"{config_name}.yaml").is_file():
            fail(f"{config_dir} has no {config_name}.yaml: this project cannot '{operation}'")
    # Every rank of a distributed job and every job of a sweep sees the same root.
    os.environ.setdefault(PROJECT_ROOT_ENV, str(root))

    register_settings()
    flags, overrides = split_arguments(arguments)
    check_flags(flags)
    overrides = with_extra_rank_outputs_aside(flags, with_packaged_search_path(overrides))
    if not _HELP_FLAGS.intersection(flags):
        check_composes(
            config_dir, config_name, overrides, operation, "--multirun" in flags or "-m" in flags
        )

    import hydra

    def task(cfg: DictConfig) -> Any:
        quiet_known_noise()  # again: a cluster job starts here, not in main()
        redact_job_files()
        with user_errors_exit_cleanly():
            return run_command(operation, cfg)

    leave_for_extra_ranks(operation, str(config_dir))
    if not any(o.startswith("hydra.job.name=") for o in overrides):
        overrides.append(f"hydra.job.name={operation}")
    sys.argv = [sys.argv[0], *flags, *overrides]
    if show_tracebacks():
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    hydra.main(config_path=str(config_dir), config_name=config_name, version_base="1.3")(task)()
