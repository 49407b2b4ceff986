"""Whether a tracking URI can work, told in one line and in seconds, before MLflow is imported.

The CLI asks these before a command starts (a server that does not answer would otherwise
keep MLflow's client retrying for minutes, and a training would build its model first);
``store.connect`` asks them again for anyone who connects from Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from serotiny.errors import SerotinyUserError
from serotiny.settings.secrets import redact
from serotiny.tracking import SQLITE_PREFIX

HTTP_PREFIXES = ("http://", "https://")
HEALTH_TIMEOUT_SECONDS = 5.0
KNOWN_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def redacted_uri(tracking_uri: str) -> str:
    """The URI with any ``user:password@`` hidden, for messages."""
    return str(redact(tracking_uri))


class TrackingUnavailableError(SerotinyUserError):
    """The tracking URI names no store serotiny can use now (unreachable, damaged, unknown)."""


def check_uri_form(tracking_uri: str) -> None:
    """Refuse, in one line, a URI MLflow 3 cannot track to (a plain folder, an unknown scheme)."""
    scheme = tracking_uri.split("://", 1)[0] if "://" in tracking_uri else ""
    if not scheme or scheme == "file":
        raise TrackingUnavailableError(
            f"tracking_uri {redacted_uri(tracking_uri)!r} is a folder; MLflow 3 tracks to a "
            "database: use sqlite:///<folder>/mlruns.db (the default) or an http:// server"
        )
    if scheme.split("+", 1)[0] not in KNOWN_SCHEMES:
        raise TrackingUnavailableError(
            f"tracking_uri {redacted_uri(tracking_uri)!r}: MLflow cannot track to '{scheme}://';"
            " use sqlite:///<folder>/mlruns.db or http://<server>"
        )
    if scheme == "sqlite":
        folder = Path(tracking_uri[len(SQLITE_PREFIX) :]).parent
        _check_folder_writable(folder, tracking_uri)


def _check_folder_writable(folder: Path, tracking_uri: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrackingUnavailableError(
            f"cannot make the folder of the tracking store {redacted_uri(tracking_uri)}: "
            f"{error.strerror}; check ++mlflow.tracking_uri"
        ) from error
    if not os.access(folder, os.W_OK):
        raise TrackingUnavailableError(
            f"the folder of the tracking store {redacted_uri(tracking_uri)} is not writable; "
            "choose another ++mlflow.tracking_uri"
        )


def check_server_answers(tracking_uri: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Ask the MLflow server's ``/health`` once, without retries; one clear line if it does
    not answer (instead of MLflow's minutes of retries and a traceback)."""
    import requests

    url = f"{tracking_uri.rstrip('/')}/health"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        reason = (
            "it refused the connection"
            if isinstance(error, requests.ConnectionError)
            else f"no answer within {timeout:.0f} s"
        )
        raise TrackingUnavailableError(
            f"the MLflow server at {redacted_uri(tracking_uri)} does not answer ({reason}); "
            "start it (mlflow server ...) or check ++mlflow.tracking_uri"
        ) from error
    if response.status_code != 200:
        raise TrackingUnavailableError(
            f"{redacted_uri(tracking_uri)} answered {response.status_code} to /health: is it "
            "an MLflow server? check ++mlflow.tracking_uri"
        )


def check_tracking_uri(tracking_uri: str) -> None:
    """Everything that can be told about a tracking URI without MLflow: its form, its
    SQLite folder, and whether its server answers."""
    check_uri_form(tracking_uri)
    if tracking_uri.startswith(HTTP_PREFIXES):
        check_server_answers(tracking_uri)
