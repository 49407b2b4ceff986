"""Keeping a training's checkpoints in its MLflow run (``checkpoints/best.ckpt``, ``last.ckpt``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from serotiny.tracking.artifacts import CHECKPOINT_ARTIFACT_DIR


class RunCheckpointStore:
    """Uploads each checkpoint a training saves into the run's artifacts.

    Picklable (the client is made on first use), as everything a Trainer holds should be.
    """

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def checkpoint_saved(self, path: Path) -> None:
        """Store the checkpoint file at ``path`` under the run's ``checkpoints/``."""
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        self._client.log_artifact(self.run_id, str(path), CHECKPOINT_ARTIFACT_DIR)
