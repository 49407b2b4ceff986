"""Whether a tracking store can be used, checked before a command opens a run in it.

MLflow reports an unusable store from deep inside SQLAlchemy or its store registry, after a
command has started: a tracking URI of an unknown kind, a plain folder (MLflow 3 keeps runs
in a database), a SQLite file in a folder that cannot be written or made, a file that is no
database or was cut short. Each is one line here instead, before anything is written.

Light on purpose (``sqlite3`` and ``pathlib``, no MLflow): the command line checks the store
before Lightning or MLflow are imported.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from serotiny.errors import SerotinyUserError
from serotiny.io.folders import folder_problem
from serotiny.settings.secrets import redact
from serotiny.tracking import SQLITE_PREFIX

#: The kinds of tracking URI MLflow has a store for (``postgresql+psycopg`` is postgresql).
KNOWN_SCHEMES = frozenset(
    {"sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc"}
    | {"uc", "file"}
)
#: URIs that are a scheme alone (Databricks' workspace from its configuration).
_BARE_URIS = frozenset({"databricks", "databricks-uc", "uc"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9.+-]*):")
_SQLITE_MAGIC = b"SQLite format 3\x00"
FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"
HTTP_PREFIXES = ("http://", "https://")
HEALTH_TIMEOUT_SECONDS = 5.0


class TrackingStoreError(SerotinyUserError):
    """The tracking store cannot be used: an unknown URI, a store that cannot be written, or
    a server that does not answer."""


def _file_store_allowed() -> bool:
    return os.environ.get(FILE_STORE_ENV, "").strip().lower() in ("true", "1")


def check_tracking_uri(uri: str) -> None:
    """Raise :class:`TrackingStoreError` for a URI MLflow has no store for, or a plain folder
    (MLflow 3 refuses its old file store unless ``MLFLOW_ALLOW_FILE_STORE=true``)."""
    shown = redact(uri)
    if uri in _BARE_URIS:
        return
    match = _SCHEME.match(uri)
    scheme = match.group(1).lower().split("+", 1)[0] if match else ""
    if scheme in ("", "file"):
        if _file_store_allowed():
            return
        folder = uri.removeprefix("file://").removeprefix("file:") or "."
        raise TrackingStoreError(
            f"mlflow.tracking_uri '{shown}' is a folder, and MLflow 3 keeps runs in a "
            f"database: use ++mlflow.tracking_uri=sqlite:///{Path(folder) / 'mlruns.db'} "
            f"(or an http(s):// server; {FILE_STORE_ENV}=true keeps the old file store)"
        )
    if scheme not in KNOWN_SCHEMES:
        raise TrackingStoreError(
            f"mlflow.tracking_uri '{shown}': MLflow has no store for '{scheme}:' URIs; use "
            "sqlite:///PATH/mlruns.db (the default, in the project) or http(s)://HOST:PORT"
        )


def check_store(uri: str) -> None:
    """Raise :class:`TrackingStoreError` if the store at ``uri`` cannot be used: the URI as
    :func:`check_tracking_uri` checks it; for a SQLite store, its folder and file; for a
    server, whether it answers (within seconds, not after MLflow's minutes of retries)."""
    check_tracking_uri(uri)
    if uri.startswith(SQLITE_PREFIX):
        check_sqlite_store(Path(uri[len(SQLITE_PREFIX) :]).expanduser())
    elif uri.startswith(HTTP_PREFIXES):
        check_server_answers(uri)


def check_server_answers(uri: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Ask the MLflow server's ``/health`` once, without retries; one line if it does not
    answer, or answers as no MLflow server would."""
    import requests  # light, but only a server needs it

    shown = redact(uri)
    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.RequestException as error:
        refused = isinstance(error, requests.ConnectionError)
        reason = "it refused the connection" if refused else f"no answer within {timeout:.0f} s"
        raise TrackingStoreError(
            f"the MLflow server at {shown} does not answer ({reason}); start it "
            "(mlflow server ...) or check ++mlflow.tracking_uri"
        ) from None
    if response.status_code != 200:
        raise TrackingStoreError(
            f"{shown} answered {response.status_code} to /health: is it an MLflow server? "
            "check ++mlflow.tracking_uri"
        )


def check_sqlite_store(database: Path) -> None:
    """The database's folder can be written (or made), and the file, if there is one, is a
    whole SQLite database."""
    problem = folder_problem(database.parent)
    if problem is not None:
        raise TrackingStoreError(
            f"cannot write the tracking store {database}: {problem}; choose a writable "
            "place with ++mlflow.tracking_uri=sqlite:///PATH/mlruns.db"
        )
    if database.is_dir():
        raise TrackingStoreError(
            f"the tracking store {database} is a folder, not a SQLite file; point "
            "++mlflow.tracking_uri at a file, e.g. sqlite:///" + str(database / "mlruns.db")
        )
    if not database.exists() or database.stat().st_size == 0:
        return  # MLflow makes a new store there
    problem = sqlite_problem(database)
    if problem is not None:
        raise TrackingStoreError(
            f"the tracking store {database} {problem}; restore it from a backup, or move it "
            "aside to start a new store (its runs are then not found)"
        )


def sqlite_problem(database: Path) -> str | None:
    """Why ``database`` is not a usable SQLite database, or None when it is."""
    with open(database, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        return f"is not a SQLite database (it starts with {head!r})"
    try:
        # SQLite finds a file cut short as it reads the schema: the header names more pages.
        connection = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=60)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return f"is damaged ({error})"
    return None
