"""`make demo`: render a project from the template, install it, train, test and predict.

Runs the real CLI in a fresh project under ./demo-project and ends by saying where the
run, its metrics and its predictions are, and how to open the MLflow UI on them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_ROOT = REPO_ROOT / "demo-project"
RUN_NAME = "demo"
BIN = Path(sys.executable).parent


def step(title: str, *command: str, cwd: Path) -> None:
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def main() -> None:
    from cookiecutter.main import cookiecutter

    shutil.rmtree(DEMO_ROOT, ignore_errors=True)
    project = Path(
        cookiecutter(
            str(REPO_ROOT / "project-template"),
            no_input=True,
            output_dir=str(DEMO_ROOT),
            extra_context={"project_name": "Demo Project"},
        )
    )
    print(f"rendered {project}")
    step(
        "install",
        str(BIN / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(project),
        cwd=REPO_ROOT,
    )
    serotiny = str(BIN / "serotiny")
    step("train", serotiny, "train", f"++mlflow.run_name={RUN_NAME}", cwd=project)
    step("test", serotiny, "test", f"++mlflow.run_name={RUN_NAME}", cwd=project)
    step("predict", serotiny, "predict", f"++mlflow.run_name={RUN_NAME}", cwd=project)
    summarize(project)


def summarize(project: Path) -> None:
    from mlflow import MlflowClient

    from serotiny.ml_ops.mlflow_utils import get_run_by_name

    uri = f"sqlite:///{project / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=uri)
    run = get_run_by_name(client, "default", RUN_NAME)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run.data.metrics.items()))
    artifacts = run.info.artifact_uri.removeprefix("file://")
    print(
        f"""
=== done: run '{RUN_NAME}' is {run.info.status}
run id:       {run.info.run_id}
tracking URI: {uri}
metrics:      {metrics}
checkpoints:  {artifacts}/checkpoints/
predictions:  {artifacts}/predictions/predictions.parquet
MLflow UI:    cd {project} && {Path(sys.executable).parent / "mlflow"} ui --backend-store-uri {uri}
              then open http://127.0.0.1:5000
notebook:     from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint
              model = load_model_from_checkpoint("{uri}", "{run.info.run_id}")"""
    )


if __name__ == "__main__":
    main()
