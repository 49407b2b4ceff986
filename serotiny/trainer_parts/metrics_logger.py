"""The MLflow logger of a serotiny training run.

Two differences from Lightning's ``MLFlowLogger``:

* Metrics are committed together with checkpoints. They are buffered in memory, stored
  inside each checkpoint, and written to MLflow right after the checkpoint reaches the run.
  A crash between the upload and the write is repaired on resume: the checkpoint's metrics
  that MLflow lacks are written then. So the stored history always ends exactly where the
  latest checkpoint does, never holds a step twice, and misses none. (The MLflow UI
  therefore updates once per checkpoint, i.e. once per epoch.)
* It never sets the run's final status: serotiny does, after the final checkpoint is
  uploaded, and it tells a SIGTERM (KILLED) from a crash (FAILED).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from serotiny.tracking.metric_history import logged_steps


class CheckpointCommittedMLFlowLogger(MLFlowLogger):
    """An ``MLFlowLogger`` whose metrics become durable with each checkpoint.

    Args:
        buffered: hold metrics until :meth:`commit` (True), or write them at once (False,
            e.g. when checkpointing is disabled and there is nothing to commit with).
        **kwargs: passed to ``MLFlowLogger``.
    """

    def __init__(self, buffered: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buffered = buffered
        self._pending: list[tuple[dict[str, float], int | None]] = []

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.buffered:
            super().log_metrics(metrics, step)
            return
        self._pending.append((dict(metrics), step))

    @rank_zero_only
    def commit(self) -> None:
        """Write the buffered metrics to the run (call once a checkpoint is stored)."""
        pending, self._pending = self._pending, []
        for metrics, step in pending:
            super().log_metrics(metrics, step)

    def pending(self) -> list[tuple[dict[str, float], int | None]]:
        """The metrics logged since the last commit (stored in the next checkpoint)."""
        return [(dict(metrics), step) for metrics, step in self._pending]

    @rank_zero_only
    def commit_missing(self, pending: list[tuple[dict[str, float], int | None]]) -> None:
        """Write those of a checkpoint's ``pending`` metrics that the run does not hold yet."""
        keys = {key for metrics, _ in pending for key in metrics}
        logged = logged_steps(self.experiment, self.run_id, keys)
        missing: list[tuple[dict[str, float], int | None]] = []
        for metrics, step in pending:
            absent = {k: v for k, v in metrics.items() if (step or 0) not in logged[k]}
            if absent:
                missing.append((absent, step))
        for metrics, step in missing:
            super().log_metrics(metrics, step)

    def discard(self) -> None:
        """Forget metrics logged since the last checkpoint (they will be logged again)."""
        self._pending = []

    def finalize(self, status: str = "success") -> None:
        # The run's status is serotiny's to set; a successful end commits what is left.
        if status == "success":
            self.commit()
