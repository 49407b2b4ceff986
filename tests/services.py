"""Real services for the tests: PostgreSQL, an ``mlflow server`` on it, SLURM, Chromium.

``scripts/services/up`` installs and starts them and writes what the tests need to know
into an env file (``/var/tmp/serotiny-services/services.env``, or ``$SEROTINY_SERVICES_ENV``);
a variable of the same name in the environment wins over the file. A test that asks for a
service that is not there is skipped, with the reason and the command that starts it;
when ``SEROTINY_REQUIRE_SERVICES`` names the service (``.ci/run`` names them all), the test
fails instead, so that CI cannot pass by skipping.

Registered as a pytest plugin by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
from cli_helpers import cli_env, free_port

REQUIRE_ENV = "SEROTINY_REQUIRE_SERVICES"
ENV_FILE_ENV = "SEROTINY_SERVICES_ENV"
DEFAULT_ENV_FILE = Path("/var/tmp/serotiny-services/services.env")
SERVICES = ("postgres", "slurm", "chromium")


def service_facts() -> dict[str, str]:
    """What ``scripts/services/up`` wrote, overridden by the environment."""
    path = Path(os.environ.get(ENV_FILE_ENV) or DEFAULT_ENV_FILE)
    facts: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, separator, value = line.partition("=")
        if separator and not key.startswith("#"):
            facts[key.strip()] = value.strip()
    facts.update({k: v for k, v in os.environ.items() if k.startswith("SEROTINY_")})
    return facts


def required_services() -> set[str]:
    """The services that ``SEROTINY_REQUIRE_SERVICES`` (comma-separated) says must be up."""
    names = {name.strip() for name in os.environ.get(REQUIRE_ENV, "").split(",")}
    return names - {""}


def service_missing(service: str, reason: str) -> NoReturn:
    """Skip the test for want of ``service``, or fail it when the service is required."""
    start = f"start it with `scripts/services/up {service}`"
    if service in required_services():
        pytest.fail(f"{service} is required ({REQUIRE_ENV}) but {reason}; {start}", pytrace=False)
    pytest.skip(f"{service} is not available: {reason}; {start}")


# --- PostgreSQL ---------------------------------------------------------------------------


def _with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _administer(uri: str, statement: str) -> None:
    """Run one statement outside a transaction (as CREATE/DROP DATABASE must run)."""
    import psycopg

    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URI of the PostgreSQL server that ``scripts/services/up postgres`` started
    (its own database; use :func:`postgres_uri` for a fresh one)."""
    uri = service_facts().get("SEROTINY_POSTGRES_URI")
    if not uri:
        service_missing("postgres", "SEROTINY_POSTGRES_URI is not set")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        service_missing("postgres", "psycopg is not installed (serotiny's dev extra has it)")
    try:
        _administer(uri, "SELECT 1")
    except Exception as error:
        service_missing("postgres", f"{_redacted(uri)} does not answer ({error})".strip())
    return uri


@pytest.fixture
def postgres_uri(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    name = f"test_{secrets.token_hex(6)}"
    _administer(postgres_server, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(postgres_server, name)
    finally:
        # FORCE: a server or a killed command may still hold connections to it.
        _administer(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redacted(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


# --- an MLflow server on PostgreSQL ---------------------------------------------------------


# MLflow 3's server also starts a job runner (for its UI's scheduled jobs) that the tests
# never use and that makes every stop take seconds longer.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass
class MlflowServer:
    """``mlflow server`` on 127.0.0.1, its runs in PostgreSQL, artifacts proxied to a folder.

    ``stop()`` and ``start()`` take it away and bring it back on the same port and store,
    for tests of what a training does while its server is gone.
    """

    backend_uri: str
    artifacts: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        """The tracking URI to give serotiny (``++mlflow.tracking_uri=...``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until it answers ``/health``."""
        assert self.process is None, "already running"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server"]
        command += ["--backend-store-uri", self.backend_uri]
        command += ["--artifacts-destination", str(self.artifacts)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, env=cli_env(**SERVER_ENV), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mlflow server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.25)

    def answers(self) -> bool:
        """Whether the server answers its health check now."""
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (its store and artifacts stay)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def mlflow_postgres_server(postgres_uri: str, tmp_path: Path) -> Iterator[MlflowServer]:
    """A running ``mlflow server`` backed by a fresh PostgreSQL database, with proxied
    artifacts under this test's folder; stopped at teardown."""
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    server = MlflowServer(postgres_uri, folder / "artifacts", folder / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- SLURM --------------------------------------------------------------------------------


# Node states in which a node runs jobs (sinfo marks a node not responding with a "*").
NODE_UP = {"idle", "mixed", "allocated", "completing"}


@dataclass(frozen=True)
class SlurmCluster:
    """The single-node SLURM cluster that ``scripts/services/up slurm`` started."""

    partition: str
    cpus: int
    memory_mb: int


def _slurm_answer(*command: str) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if completed.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {completed.stderr.strip()}")
    return completed.stdout


def find_slurm_cluster() -> SlurmCluster | str:
    """The SLURM cluster if it answers (``scontrol ping``) with its node up (``sinfo``);
    else why not."""
    facts = service_facts()
    partition = facts.get("SEROTINY_SLURM_PARTITION")
    if not partition:
        return "SEROTINY_SLURM_PARTITION is not set"
    if shutil.which("sinfo") is None:
        return "SLURM's commands are not installed"
    try:
        if "is UP" not in _slurm_answer("scontrol", "ping"):
            return "slurmctld does not answer `scontrol ping`"
        states = _slurm_answer("sinfo", "-h", "-p", partition, "-o", "%T").split()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return str(error)
    if not any(state.rstrip("*") in NODE_UP for state in states):
        return f"partition {partition}'s node is {states or 'missing'}"
    return SlurmCluster(
        partition,
        int(facts.get("SEROTINY_SLURM_CPUS", "1")),
        int(facts.get("SEROTINY_SLURM_MEMORY_MB", "1024")),
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The SLURM cluster, checked to answer (``scontrol ping``) with its node up (``sinfo``)."""
    found = find_slurm_cluster()
    if isinstance(found, str):
        service_missing("slurm", found)
    return found


# --- Chromium -----------------------------------------------------------------------------

# What Chromium needs on these machines: as root, no sandbox; with no network, it must not
# try to reach Google's services (each attempt is refused, many at a time).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The path of a headless-capable Chromium (start it with :data:`CHROMIUM_FLAGS` and a
    fresh ``--user-data-dir``)."""
    path = service_facts().get("SEROTINY_CHROMIUM") or shutil.which("chromium")
    if not path:
        service_missing("chromium", "SEROTINY_CHROMIUM is not set and no chromium is on PATH")
    if not os.access(path, os.X_OK):
        service_missing("chromium", f"{path} is not an executable")
    return Path(path)


def pytest_report_header() -> str:
    """One line at the top of the run: which services the run requires."""
    required = ", ".join(sorted(required_services())) or "none (missing ones skip)"
    return f"services required: {required}"
