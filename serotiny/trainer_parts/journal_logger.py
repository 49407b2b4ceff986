"""The logger of a serotiny training: Lightning's metrics and hyperparameters, into the run's
journal, committed with each checkpoint.

* **Never waits on MLflow.** Everything goes to the run's local journal
  (``serotiny.tracking.journal``), which a background worker sends to MLflow; an MLflow server
  that goes away slows nothing.
* **Metrics are committed together with checkpoints.** They are held in memory, stored
  inside each checkpoint, and committed to the journal right after the checkpoint is. A
  resume commits those of its checkpoint again, stamped as they were first logged, which
  MLflow keeps once. So the stored history always ends exactly where the latest checkpoint
  does, never holds a step twice, and misses none. (The MLflow UI therefore updates once per
  checkpoint, i.e. once per epoch.)
* **A resume from an older checkpoint repeats no step.** When the newest checkpoint could not
  be read and training resumes from the one before, the epochs between them are trained
  again, but their metrics are in MLflow already: the steps up to each metric's last
  committed step (``committed_steps``) are not logged again.
* **It never sets the run's final status**: serotiny does, once the final checkpoint is
  committed, and tells a SIGTERM (KILLED) from a crash (FAILED).
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any, Protocol

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from serotiny.tracking.journal import now_ms

#: A metric entry as held and stored in checkpoints: values, step, and when it was logged.
Pending = tuple[dict[str, float], int, int]
MAX_PARAM_LENGTH = 6000


class MetricsJournal(Protocol):
    """Where committed metrics and params go (serotiny's run journal)."""

    def metrics(self, values: Mapping[str, float], step: int, timestamp: int | None = None) -> None:
        """Metric values at a step."""

    def params(self, values: Mapping[str, Any]) -> None:
        """Params of the run."""

    def commit(self) -> None:
        """Make what was recorded so far sendable."""


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name[:250]] = str(value)[:MAX_PARAM_LENGTH]
    return flat


class JournalLogger(Logger):
    """A Lightning logger writing to a run's journal.

    Args:
        journal: the run's journal (None on the extra ranks of a distributed training, which
            record nothing).
        run_id: the MLflow run (the logger's version).
        buffered: hold metrics until :meth:`commit` (True), or commit each at once (False,
            e.g. when checkpointing is off and there is nothing to commit with).
        committed_steps: metric name -> the last step the run already holds for it (a resume
            from an older checkpoint than the newest committed one): values at those steps
            or before are not logged again.
    """

    def __init__(
        self,
        journal: MetricsJournal | None,
        run_id: str,
        buffered: bool = True,
        committed_steps: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.journal = journal
        self.run_id = run_id
        self.buffered = buffered
        self.committed_steps = dict(committed_steps or {})
        self._pending: list[Pending] = []

    @property
    def name(self) -> str:
        return "serotiny"

    @property
    def version(self) -> str:
        return self.run_id

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        if self.journal is not None and values:
            self.journal.params(_flat(values))

    def _new(self, metrics: Mapping[str, float], step: int) -> dict[str, float]:
        """The values of ``metrics`` at ``step`` that the run does not hold yet."""
        committed = self.committed_steps
        return {k: float(v) for k, v in metrics.items() if step > committed.get(k, -1)}

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = self._new(metrics, step or 0)
        if values:
            self._pending.append((values, step or 0, now_ms()))
        if not self.buffered:
            self.commit()

    @rank_zero_only
    def commit(self) -> None:
        """Commit the held metrics to the journal (call once a checkpoint is stored)."""
        pending, self._pending = self._pending, []
        if self.journal is None:
            return
        for values, step, timestamp in pending:
            self.journal.metrics(values, step, timestamp)
        self.journal.commit()

    def pending(self) -> list[Pending]:
        """The metrics logged since the last commit (stored in the next checkpoint)."""
        return [(dict(values), step, stamp) for values, step, stamp in self._pending]

    @rank_zero_only
    def commit_again(self, pending: list[Pending]) -> None:
        """Commit a checkpoint's metrics once more, as first stamped: MLflow keeps them once,
        and a crash between a checkpoint and its metrics loses none."""
        if self.journal is None or not pending:
            return
        for entry in pending:
            if len(entry) == 3:  # earlier checkpoints stored no time: nothing safe to repeat
                values, step, timestamp = entry
                values = self._new(values, step)
                if values:
                    self.journal.metrics(values, step, timestamp)
        self.journal.commit()

    def finalize(self, status: str) -> None:
        # The run's status is serotiny's to set; a successful end commits what is left.
        if status == "success":
            self.commit()
