"""Known noise, hidden by default: each message by its text and where it comes from.

serotiny's commands print serotiny's own messages and the useful ones of Lightning and
MLflow (the devices used, why training stopped, ...). The messages below say nothing to a
serotiny user, and a new user cannot tell them from serotiny's, so they are dropped, each
matched by its text *and* the logger or module that emits it, never by silencing a whole
logger (anything else the same logger says still prints):

* Lightning's "💡 Tip: For seamless cloud logging ... litlogger" and "💡 Tip: For seamless
  cloud uploads ... litmodels" (logger ``lightning.pytorch.utilities.rank_zero``, or
  ``pytorch_lightning``'s or ``lightning.fabric``'s when one of those was imported last):
  adverts for Lightning's own cloud products, printed by every Trainer; serotiny tracks in
  MLflow.
* "`isinstance(treespec, LeafSpec)` is deprecated" (a ``FutureWarning`` that torch raises
  inside ``lightning.pytorch.utilities._pytree``): Lightning's code, not the user's, uses
  the deprecated class; nothing a user can do about it.
* "The `srun` command is available on your system but is not used" (a warning from
  ``lightning.fabric.plugins.environments.slurm``), outside a SLURM job only: Lightning
  says it on any machine where SLURM is installed, for every command run on a login node.
  Inside a job (``SLURM_JOB_ID`` set) it can be right, and is kept.
* "Creating initial MLflow database tables..." and "Updating database tables" (logger
  ``mlflow.store.db.utils``): MLflow making or migrating a SQLite store, which serotiny
  does on first use of a project's store; there is nothing to act on.

``--verbose`` (``SEROTINY_VERBOSE=1`` in the environment, which DDP ranks and cluster jobs
inherit) shows them all again, and serotiny's own debug messages.

:func:`quiet_known_noise` is called where each process of a command starts serotiny's code:
the console script's ``main`` (the command, and each DDP rank Lightning starts again
through it) and the Hydra task function (also where a submitit job on a cluster starts).
It imports neither Lightning nor MLflow: filters name loggers and modules by their names.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass

VERBOSE_ENV = "SEROTINY_VERBOSE"


@dataclass(frozen=True)
class LoggedNoise:
    """A log message to drop: records of ``logger`` whose message matches ``message``."""

    logger: str
    message: str


@dataclass(frozen=True)
class WarnedNoise:
    """A warning to drop: ``message`` (matched from its start) warned from ``module``."""

    module: str
    message: str
    category: type[Warning] = Warning


#: The loggers Lightning's rank-zero messages may come from: each of these packages, when
#: imported, points ``lightning_utilities``' rank-zero logging at its own logger, so the last
#: one imported speaks (a project whose callback imports ``pytorch_lightning`` makes it that).
LIGHTNING_RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "pytorch_lightning.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)
LIGHTNING_ADVERT = r"💡 Tip: .*\blit(logger|models)\b"
LOGGED_NOISE = (
    *(LoggedNoise(name, LIGHTNING_ADVERT) for name in LIGHTNING_RANK_ZERO_LOGGERS),
    LoggedNoise("mlflow.store.db.utils", r"Creating initial MLflow database tables"),
    LoggedNoise("mlflow.store.db.utils", r"Updating database tables$"),
)
WARNED_NOISE = (
    WarnedNoise(
        r"lightning\.pytorch\.utilities\._pytree$",
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
    ),
)
#: Kept inside a SLURM job, where it may be right (see the module's docstring).
SRUN_HINT = WarnedNoise(
    r"lightning\.fabric\.plugins\.environments\.slurm$",
    r"The `srun` command is available on your system but is not used",
)


def verbose() -> bool:
    """Whether the user asked to see everything (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV) == "1"


class DropNoise(logging.Filter):
    """Drops the records of one logger whose message matches one of ``patterns``."""

    def __init__(self, patterns: list[str]) -> None:
        super().__init__()
        self.patterns = [re.compile(pattern) for pattern in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in self.patterns)


def quiet_known_noise() -> None:
    """Hide the known noise in this process, or, with ``--verbose``, show it and serotiny's
    debug messages. Safe to call more than once, either way."""
    for name in {noise.logger for noise in LOGGED_NOISE}:
        logger = logging.getLogger(name)
        for installed in [f for f in logger.filters if isinstance(f, DropNoise)]:
            logger.removeFilter(installed)
    show = verbose()
    # filterwarnings replaces an identical entry and puts the new one first, so the latest
    # call wins: "default" (shown, as Python would) undoes an earlier "ignore".
    in_slurm_job = bool(os.environ.get("SLURM_JOB_ID"))
    warned = [*WARNED_NOISE, *([] if in_slurm_job and not show else [SRUN_HINT])]
    for noise in warned:
        action = "default" if show else "ignore"
        warnings.filterwarnings(action, noise.message, noise.category, noise.module)
    if show:
        logging.getLogger("serotiny").setLevel(logging.DEBUG)
        return
    by_logger: dict[str, list[str]] = {}
    for noise in LOGGED_NOISE:
        by_logger.setdefault(noise.logger, []).append(noise.message)
    for name, patterns in by_logger.items():
        logging.getLogger(name).addFilter(DropNoise(patterns))
