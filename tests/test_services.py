"""The services the suite relies on (tests/services.py) are real and do what they say."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from cli_helpers import REPO_ROOT
from mlflow import MlflowClient
from services import CHROMIUM_FLAGS, MlflowServer, SlurmCluster


def test_postgres_uri_is_a_fresh_database_of_its_own(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri) as connection:
        (name,) = connection.execute("SELECT current_database()").fetchone()
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        connection.execute("CREATE TABLE probe (value integer)")
        connection.execute("INSERT INTO probe VALUES (42)")
        assert connection.execute("SELECT value FROM probe").fetchall() == [(42,)]
    assert name.startswith("test_") and postgres_uri.endswith(f"/{name}")


def test_mlflow_server_keeps_runs_in_postgres_and_artifacts_in_its_folder(
    mlflow_postgres_server: MlflowServer, tmp_path: Path
) -> None:
    server = mlflow_postgres_server
    client = MlflowClient(tracking_uri=server.uri)
    experiment_id = client.create_experiment("probe")
    run = client.create_run(experiment_id, run_name="probe")
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    note = tmp_path / "note.txt"
    note.write_text("proxied")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)

    # The run is a row in PostgreSQL; the artifact went through the server to its folder.
    with psycopg.connect(server.backend_uri) as connection:
        rows = connection.execute(
            "SELECT name, status FROM runs WHERE run_uuid = %s", (run.info.run_id,)
        )
        assert rows.fetchall() == [("probe", "FINISHED")]
    stored = list(server.artifacts.rglob("note.txt"))
    assert [path.read_text() for path in stored] == ["proxied"]

    # Stopped and started again, on the same port and store.
    server.stop()
    assert not server.answers()
    server.start()
    again = MlflowClient(tracking_uri=server.uri).get_run(run.info.run_id)
    assert again.info.status == "FINISHED" and again.data.metrics == {"loss": 0.5}


def test_slurm_cluster_runs_a_batch_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    output = tmp_path / "job.out"
    submitted = subprocess.run(
        ["sbatch", "--wait", "--partition", slurm_cluster.partition, "--ntasks=1"]
        + ["--output", str(output), "--wrap", "echo job $SLURM_JOB_ID on $SLURM_JOB_PARTITION"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[-1]
    assert output.read_text().split() == ["job", job_id, "on", slurm_cluster.partition]
    assert slurm_cluster.cpus >= 1 and slurm_cluster.memory_mb >= 1


def test_chromium_renders_a_page_headless(chromium: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        rendered = subprocess.run(
            [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
            + ["data:text/html,<p id=probe>rendered</p><script>document.title='js'</script>"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert '<p id="probe">rendered</p>' in rendered.stdout
    assert "<title>js</title>" in rendered.stdout  # JavaScript ran


PROBE_TEST = """
def test_needs_postgres(postgres_server):
    pass
"""


@pytest.mark.parametrize("required", ["", "postgres"])
def test_a_missing_service_skips_unless_required(tmp_path: Path, required: str) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE_TEST)
    empty = tmp_path / "services.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEROTINY_")}
    env |= {
        "SEROTINY_SERVICES_ENV": str(empty),
        "SEROTINY_REQUIRE_SERVICES": required,
        "PYTHONPATH": str(REPO_ROOT / "tests"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "services", "-q", "-rsf", "-p", "no:cacheprovider"]
        + ["-p", "no:xdist", str(tmp_path / "test_probe.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if required:
        assert completed.returncode == 1, completed.stdout
        assert "postgres is required (SEROTINY_REQUIRE_SERVICES)" in completed.stdout
    else:
        assert completed.returncode == 0, completed.stdout
        assert "1 skipped" in completed.stdout
        assert "postgres is not available: SEROTINY_POSTGRES_URI is not set" in completed.stdout
    assert "scripts/services/up postgres" in completed.stdout
