"""How an extra DDP rank re-enters the CLI.

Lightning's DDP launcher re-executes this process once per extra rank, rebuilding the
command from ``sys.argv``, which must then hold Hydra's arguments only. The command and the
config folder travel to those ranks in the environment instead.
"""

from __future__ import annotations

import os

OPERATION_ENV = "SEROTINY_OPERATION"
CONFIG_DIR_ENV = "SEROTINY_CONFIG_DIR"


def leave_for_extra_ranks(operation: str, config_dir: str) -> None:
    """Rank 0: record the command and config folder the extra ranks will run with."""
    os.environ[OPERATION_ENV] = operation
    os.environ[CONFIG_DIR_ENV] = config_dir


def is_relaunched_rank() -> bool:
    """Whether this process is an extra rank that Lightning started for a serotiny job."""
    return bool(os.environ.get(OPERATION_ENV)) and int(os.environ.get("LOCAL_RANK", "0")) > 0


def relaunched_operation() -> str | None:
    """The command an extra DDP rank must run, or None in an ordinary process."""
    return os.environ.get(OPERATION_ENV) if is_relaunched_rank() else None


def relaunched_config_dir() -> str | None:
    """The config folder rank 0 used, for an extra rank; None in an ordinary process."""
    return os.environ.get(CONFIG_DIR_ENV) if is_relaunched_rank() else None
