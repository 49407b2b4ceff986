"""Errors that mean "the user asked for something wrong", as opposed to a bug.

The CLI turns any :class:`SerotinyUserError` into one clear line on stderr and exit
status 2 (no traceback unless ``--debug`` or ``HYDRA_FULL_ERROR=1``). Library code
(datamodules, loaders, models) raises these too, so it never has to know about the CLI.
"""

from __future__ import annotations


class SerotinyUserError(Exception):
    """A mistake in input or configuration that the user can fix.

    The message must fit on one line and name what is wrong and where
    (file, column, row, option) and, where possible, what to do about it.
    """


class ManifestError(SerotinyUserError, ValueError):
    """A manifest (a table of features and file paths) is unusable as configured."""


class ProjectNotFoundError(SerotinyUserError):
    """The command was run outside a serotiny project."""


class RunLookupError(SerotinyUserError):
    """A run name or id does not identify exactly one usable MLflow run."""


class TrackingIncomplete(Exception):
    """A command did its work, but part of what it recorded has not reached MLflow yet.

    Not a mistake: the records are safe on disk, and ``serotiny sync`` (or rerunning the
    command) sends them. The CLI says so in one line and exits with status 3.
    """
