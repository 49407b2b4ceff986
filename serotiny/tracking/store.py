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
from serotiny.tracking.http import keep_credentials_off_the_screen
from serotiny.tracking.store_health import HTTP_PREFIXES, TrackingStoreError, check_store

STORE_LOCK_TIMEOUT_SECONDS = 300
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


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
    keep_credentials_off_the_screen(tracking_uri)
    check_store(tracking_uri)
    try:
        with store_lock(tracking_uri):
            client = MlflowClient(tracking_uri=tracking_uri)
            if not tracking_uri.startswith(HTTP_PREFIXES):
                client.search_experiments(max_results=1)  # makes or opens the store now
    except SerotinyUserError:
        raise
    except Exception as error:  # what MLflow and the database say is wrong with the store
        raise TrackingStoreError(
            f"cannot use the tracking store {redacted_uri(tracking_uri)}: "
            f"{_first_line(error)}; check ++mlflow.tracking_uri"
        ) from error
    return client


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


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
        # The kind tells MLflow 3's UI to open the experiment in its model-training view.
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
    except Exception:
        # Another process (a sweep job, a DDP rank) may have created it meanwhile.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
