"""The MLflow tracking store: a client on it, its lock, and experiments with their artifacts.

serotiny's embedded default is a SQLite store inside the project (MLflow 3 refuses a plain
``./mlruns`` file store); an ``http(s)://`` MLflow server works the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient

from serotiny.errors import RunLookupError, SerotinyUserError
from serotiny.settings.secrets import redact
from serotiny.tracking import SQLITE_PREFIX

STORE_LOCK_TIMEOUT_SECONDS = 300
HTTP_PREFIXES = ("http://", "https://")
HEALTH_TIMEOUT_SECONDS = 5.0


class TrackingUnavailableError(SerotinyUserError):
    """The tracking URI names no store serotiny can use now (unreachable, damaged, unknown)."""


def connect(tracking_uri: str) -> MlflowClient:
    """An MLflow client on ``tracking_uri``, checked to answer: one clear line if not.

    ``sqlite:///...`` (the embedded default), ``http(s)://...`` (an MLflow server) or a
    database URI MLflow supports (``postgresql://...``). A SQLite store is created (schema
    and migrations) before the client is returned, under the store's lock: two processes
    creating one store at once (sweep jobs, DDP ranks, a test reading the store while a
    command makes it) corrupt each other's migration.
    """
    # Progress bars for single small artifacts only clutter the CLI's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    check_uri_form(tracking_uri)
    if tracking_uri.startswith(HTTP_PREFIXES):
        check_server_answers(tracking_uri)
    try:
        with store_lock(tracking_uri):
            client = MlflowClient(tracking_uri=tracking_uri)
            if not tracking_uri.startswith(HTTP_PREFIXES):
                client.search_experiments(max_results=1)  # makes or opens the store now
    except SerotinyUserError:
        raise
    except Exception as error:  # what MLflow and the database say is wrong with the store
        raise TrackingUnavailableError(
            f"cannot use the tracking store {redacted_uri(tracking_uri)}: "
            f"{_first_line(error)}; check ++mlflow.tracking_uri"
        ) from error
    return client


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def check_uri_form(tracking_uri: str) -> None:
    """Refuse, in one line, a URI MLflow 3 cannot track to (a plain folder, an unknown scheme)."""
    scheme = tracking_uri.split("://", 1)[0] if "://" in tracking_uri else ""
    if not scheme or scheme == "file":
        raise TrackingUnavailableError(
            f"tracking_uri {redacted_uri(tracking_uri)!r} is a folder; MLflow 3 tracks to a "
            "database: use sqlite:///<folder>/mlruns.db (the default) or an http:// server"
        )
    known = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
    if scheme.split("+", 1)[0] not in known:
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


def is_locked_store(tracking_uri: str) -> bool:
    """Whether :func:`store_lock` really locks this store (a SQLite file on this machine)."""
    return tracking_uri.startswith(SQLITE_PREFIX)


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold the lock of a SQLite store (a file next to the database); no-op for a server.

    Processes on one machine take it around the read-then-write steps that must not
    interleave: migrating a new store, and deciding what a run name means, then creating
    or reopening that run.
    """
    if not tracking_uri.startswith(SQLITE_PREFIX):
        yield
        return
    from filelock import FileLock

    database = Path(tracking_uri[len(SQLITE_PREFIX) :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock", timeout=STORE_LOCK_TIMEOUT_SECONDS):
        yield


def redacted_uri(client_or_uri: MlflowClient | str) -> str:
    """The tracking URI with any ``user:password@`` hidden, for messages."""
    uri = client_or_uri if isinstance(client_or_uri, str) else client_or_uri.tracking_uri
    return str(redact(uri))


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where artifacts go by default: next to a SQLite store, or wherever a server decides.

    An experiment created without an explicit location puts artifacts under ``./mlruns``
    of whatever the current directory is, so for SQLite we always give one.
    """
    if tracking_uri.startswith(SQLITE_PREFIX):
        database = Path(tracking_uri[len(SQLITE_PREFIX) :])
        return (database.parent / "mlartifacts").resolve().as_uri()
    return None


def get_or_create_experiment(
    client: MlflowClient, name: str, artifact_location: str | None = None
) -> str:
    """The id of experiment ``name``, creating it (with an artifact location) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise RunLookupError(
                f"MLflow experiment '{name}' is deleted; restore it or choose another "
                "++mlflow.experiment_name"
            )
        return experiment.experiment_id
    location = artifact_location or default_artifact_location(client.tracking_uri)
    if location and "://" not in location:
        location = Path(location).expanduser().resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process (a sweep job, a DDP rank) may have created it meanwhile.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
