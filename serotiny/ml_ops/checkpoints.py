"""Checkpoints that are written atomically and stored in the MLflow run.

Each save goes to a temporary file first and is renamed into place, so a crash mid-write
never leaves a truncated ``last.ckpt``; then it is uploaded to the run under
``checkpoints/`` as ``best.ckpt`` / ``last.ckpt``, which is where resume, ``serotiny test``
and ``load_model_from_checkpoint`` look for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from serotiny.ml_ops.mlflow_utils import CHECKPOINT_ARTIFACT_DIR


class MLflowModelCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` keeping ``best.ckpt`` and ``last.ckpt``, mirrored to MLflow.

    Args:
        tracking_uri: MLflow tracking URI of the run.
        run_id: the run the checkpoints belong to.
        dirpath: local folder for the checkpoint files.
        monitor: metric deciding the best checkpoint (``None``: keep only ``last``).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        **kwargs: anything else ``ModelCheckpoint`` accepts.
    """

    CHECKPOINT_NAME_LAST = "last"

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        dirpath: str | Path,
        monitor: str | None = "val_loss",
        mode: str = "min",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dirpath=str(dirpath),
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1 if monitor else 0,
            save_last=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
            **kwargs,
        )
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        temporary = f"{filepath}.partial"
        trainer.save_checkpoint(temporary, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(temporary, filepath)
        trainer.strategy.barrier("serotiny_checkpoint_rename")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
            self.client.log_artifact(self.run_id, filepath, CHECKPOINT_ARTIFACT_DIR)
