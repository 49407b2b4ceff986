"""Turning exceptions into the one-line messages the CLI promises.

Only cheap imports at module level: this runs on every error path, including ``--help``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from serotiny.errors import SerotinyUserError, TrackingIncomplete

EXIT_USER_ERROR = 2
EXIT_TRACKING_INCOMPLETE = 3
_HYDRA_NOISE = (
    "Set the environment variable HYDRA_FULL_ERROR=1",
    "See https://hydra.cc/docs",
)


def one_line(text: str) -> str:
    """Squash a multi-line message into one line, dropping Hydra's boilerplate hints."""
    parts = [
        line.strip()
        for line in str(text).splitlines()
        if line.strip() and not line.strip().startswith(_HYDRA_NOISE)
    ]
    return " ".join(parts).replace(": ;", ":")


def show_tracebacks() -> bool:
    """Whether the user asked to see full tracebacks instead of one-line errors."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("SEROTINY_DEBUG") == "1"


def fail(message: str) -> None:
    """Print ``serotiny: error: <message>`` on stderr and exit with status 2."""
    sys.stderr.write(f"serotiny: error: {one_line(message)}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USER_ERROR)


@contextmanager
def user_errors_exit_cleanly() -> Iterator[None]:
    """Turn :class:`SerotinyUserError` raised inside the block into a one-line exit 2, and
    :class:`TrackingIncomplete` into a one-line exit 3."""
    try:
        yield
    except SerotinyUserError as error:
        if show_tracebacks():
            raise
        fail(str(error))
    except TrackingIncomplete as incomplete:
        sys.stderr.write(f"serotiny: {one_line(str(incomplete))}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_TRACKING_INCOMPLETE) from incomplete
