"""What a run stores besides metrics: its checkpoints and its resolved config.

A training run keeps ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt`` and the resolved
config it was trained with (``config/train.yaml``), so that the run alone rebuilds its model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import RunLookupError
from serotiny.io.progress import watch_file
from serotiny.tracking import CHECKPOINT_ARTIFACT_DIR

CONFIG_ARTIFACT = "config/train.yaml"
CHECKPOINT_NAMES = ("best", "last")
DATA_ARTIFACT_DIR = "data"


def list_artifact_paths(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    """The paths of the run's artifacts in ``folder`` (its top level when None)."""
    return {item.path for item in client.list_artifacts(run_id, folder)}


def list_checkpoints(client: MlflowClient, run_id: str) -> list[str]:
    """Artifact paths of the checkpoints stored in the run."""
    return [
        item.path
        for item in client.list_artifacts(run_id, CHECKPOINT_ARTIFACT_DIR)
        if item.path.endswith(".ckpt")
    ]


def download_checkpoint(client: MlflowClient, run_id: str, which: str, destination: Path) -> Path:
    """Download the run's ``best`` or ``last`` checkpoint into ``destination``; fall back to
    the other one.

    The run's best checkpoint may be missing when nothing was monitored; then the last one is
    the only model there is.
    """
    if which not in CHECKPOINT_NAMES:
        raise RunLookupError(f"unknown checkpoint '{which}': choose one of {CHECKPOINT_NAMES}")
    available = {
        i.path: i.file_size for i in client.list_artifacts(run_id, CHECKPOINT_ARTIFACT_DIR)
    }
    order = [which, *(name for name in CHECKPOINT_NAMES if name != which)]
    for name in order:
        artifact = f"{CHECKPOINT_ARTIFACT_DIR}/{name}.ckpt"
        if artifact in available:
            return download_with_progress(
                client, run_id, artifact, destination, available[artifact]
            )
    raise RunLookupError(
        f"run {run_id} has no checkpoint under '{CHECKPOINT_ARTIFACT_DIR}/'; "
        "was it trained with checkpointing enabled?"
    )


def download_with_progress(
    client: MlflowClient, run_id: str, artifact: str, destination: Path, size: int | None
) -> Path:
    """``client.download_artifacts`` of one file of ``size`` bytes into ``destination``,
    showing its progress when it takes a while (``serotiny.io.progress.watch_file``)."""
    destination.mkdir(parents=True, exist_ok=True)
    with watch_file(destination / artifact, size, f"downloading {artifact}"):
        return Path(client.download_artifacts(run_id, artifact, str(destination)))


def load_run_config(client: MlflowClient, run_id: str) -> DictConfig:
    """The resolved training config stored with the run."""
    with tempfile.TemporaryDirectory(prefix="serotiny-config-") as folder:
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except Exception as error:
            raise RunLookupError(
                f"run {run_id} has no '{CONFIG_ARTIFACT}' artifact; it was not trained by serotiny"
            ) from error
        config = OmegaConf.load(path)
    assert isinstance(config, DictConfig)
    return config


def download_if_present(
    client: MlflowClient, run_id: str, artifact: str, folder: Path
) -> Path | None:
    """Download ``artifact`` of the run into ``folder``; None when the run has no such file."""
    parent = str(Path(artifact).parent) if "/" in artifact else None
    if artifact not in list_artifact_paths(client, run_id, parent):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, artifact, str(folder)))
