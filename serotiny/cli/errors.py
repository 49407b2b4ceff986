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


def from_worker(text: str) -> str:
    """The message of an error raised in a DataLoader worker process.

    torch raises it again in the main process with a message that wraps the worker's
    traceback (``Caught ManifestError in DataLoader worker process 0. Original Traceback
    ...``); its last line, ``module.Class: message``, holds what the user must read.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not (lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]):
        return text
    last = lines[-1].strip()
    kind, separator, message = last.partition(": ")
    return message if separator and kind.replace(".", "").replace("_", "").isalnum() else last


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
        fail(from_worker(str(error)))
    except TrackingIncomplete as incomplete:
        sys.stderr.write(f"serotiny: {one_line(str(incomplete))}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_TRACKING_INCOMPLETE) from incomplete
