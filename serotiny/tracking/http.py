"""How long serotiny's requests to an MLflow server may take, and how often they are retried.

MLflow's HTTP client retries 7 times with backoff factor 2 and waits 120 s for each answer:
an unreachable server blocks a call for about four minutes before it fails. serotiny's calls
want an answer within seconds: a command checks the server when it starts (and says so in
one line when it does not answer), and a training never waits on MLflow at all (its records
go through the run's journal, sent in the background, which tries again for as long as it
takes). MLflow reads these settings from the environment for every request; a value the
user set there wins over serotiny's.

Light on purpose (no MLflow import): every command sets these before anything talks to MLflow.
"""

from __future__ import annotations

import os

from serotiny.settings.secrets import has_credentials

TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"
RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
BACKOFF_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
SUPPRESS_URL_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
BACKOFF_FACTOR = 1  # MLflow reads an integer
# The variables serotiny set itself (so that a later command may set them again).
_OURS: dict[str, str] = {}


def configure_http(timeout_seconds: float, retries: int) -> None:
    """Give MLflow's requests ``timeout_seconds`` per try and ``retries`` quick retries,
    unless the user set MLflow's own variables."""
    wanted = {
        TIMEOUT_ENV: f"{max(1, round(timeout_seconds))}",
        RETRIES_ENV: f"{max(0, int(retries))}",
        BACKOFF_ENV: f"{BACKOFF_FACTOR}",
    }
    for name, value in wanted.items():
        if name in os.environ and os.environ[name] != _OURS.get(name):
            continue  # the user's own setting
        os.environ[name] = _OURS[name] = value


def keep_credentials_off_the_screen(tracking_uri: str) -> None:
    """MLflow prints "View run ... at: <the tracking URI>/..." when a run ends on a server,
    password and all; with credentials in the URI, serotiny turns that line off (its own
    messages show the URI redacted)."""
    if has_credentials(tracking_uri):
        os.environ[SUPPRESS_URL_ENV] = "true"
