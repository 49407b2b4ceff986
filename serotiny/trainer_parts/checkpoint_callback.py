"""Checkpoints that are complete, atomic, and handed to the run's store.

* **When**: at the start of every epoch after the first, and when training ends, rather
  than at the end of an epoch as Lightning's ``ModelCheckpoint`` does. At those points the
  previous epoch is wholly done: its train metrics are logged, schedulers stepped and loop
  progress counted, so resuming from the checkpoint continues exactly where an
  uninterrupted run would be. A SIGTERM (or a first Ctrl-C, see ``graceful_stop.py``) also
  saves a ``last`` checkpoint at the batch boundary where training stopped.
* **How**: each file is written to a temporary name and renamed into place, so a crash
  mid-write never leaves a truncated checkpoint; then it is handed to a sink (serotiny's
  stores it in the run under ``checkpoints/`` as ``best.ckpt`` / ``last.ckpt``), and only
  then are the metrics logged since the previous checkpoint committed (see
  ``journal_logger.py``).
* **What**: plain data and tensors, which a safe ``torch.load(weights_only=True)`` reads:
  hyperparameters that are objects are kept as their text, and a checkpoint that still holds
  objects (a model's own ``on_save_checkpoint`` state) is refused in one line, unless the
  project trusts its checkpoints (``checkpoint.trusted``; see ``plain_checkpoint.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol
from weakref import proxy

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from serotiny.trainer_parts.loop_state import start_new_epoch_in_loop_state
from serotiny.trainer_parts.plain_checkpoint import (
    make_hyperparameters_plain,
    refuse_unsafe_checkpoint,
)

PENDING_METRICS_KEY = "serotiny_pending_metrics"


class CheckpointSink(Protocol):
    """Where a saved checkpoint file goes next (serotiny's run journal)."""

    def checkpoint_saved(self, path: Path) -> None:
        """Keep the checkpoint just written at ``path`` (it may be overwritten later)."""


class RunCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` keeping ``best.ckpt`` and ``last.ckpt``, each handed to a sink.

    Args:
        sink: receives every checkpoint once it is complete on disk (serotiny's run journal,
            which stores it in the run's MLflow artifacts); None on the extra ranks of a
            distributed training, which write the files but record nothing.
        dirpath: local folder for the checkpoint files.
        monitor: metric deciding the best checkpoint (``None``: keep only ``last``).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        trusted: the project trusts its checkpoints (``checkpoint.trusted``): they are
            written as Lightning makes them, whatever objects they hold.
        **kwargs: anything else ``ModelCheckpoint`` accepts.
    """

    CHECKPOINT_NAME_LAST = "last"

    def __init__(
        self,
        sink: CheckpointSink | None,
        dirpath: str | Path,
        monitor: str | None = "val_loss",
        mode: str = "min",
        trusted: bool = False,
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
        self.sink = sink
        self.trusted = trusted
        self._at_epoch_start = False
        #: Save again at the first opportunity after resuming (see ``on_load_checkpoint``).
        self.rewrite_after_resume = False

    # -- when to save ---------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        return  # saved at the next epoch's start instead, once the epoch is wholly done

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        return  # likewise

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._at_epoch_start = True
            try:
                self.save_epoch_boundary(trainer)
            finally:
                self._at_epoch_start = False

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save_epoch_boundary(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning raises SIGTERMException only at a batch boundary, where the state is
        # consistent; any other exception may have struck mid-step, so nothing is saved.
        # Nor after an epoch's last training batch: a resume from there would skip that
        # epoch's validation (its metrics would be missing); the epoch-start checkpoint
        # before it resumes to the same result.
        if (
            isinstance(exception, SIGTERMException)
            and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            and not self._should_skip_saving_checkpoint(trainer)
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def ensure_saved(self, trainer: pl.Trainer) -> None:
        """Write ``last`` for the trainer's current state if the run does not hold it yet.

        Resuming from a checkpoint of a run that had already reached its end trains nothing
        and calls no hooks; a ``last`` that was unreadable would otherwise stay so.
        """
        if self.rewrite_after_resume and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def save_epoch_boundary(self, trainer: pl.Trainer) -> None:
        """Save ``best`` (if improved) and ``last`` for the step training has reached."""
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    # -- how to save ------------------------------------------------------------------------
    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        temporary = f"{filepath}.partial"
        saved_at_this_step = self._saved_at_this_step(trainer, filepath)
        if saved_at_this_step is None:
            trainer.save_checkpoint(temporary, self.save_weights_only)
        if trainer.is_global_zero:
            if saved_at_this_step is not None:
                # last and best at the same step are the same checkpoint: one write, two names.
                os.link(saved_at_this_step, temporary)
            elif not self.trusted:
                self._refuse_unsafe(temporary)
            os.replace(temporary, filepath)
        trainer.strategy.barrier("serotiny_checkpoint_rename")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero and self.sink is not None:
            self.sink.checkpoint_saved(Path(filepath))
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    @staticmethod
    def _refuse_unsafe(temporary: str) -> None:
        try:
            refuse_unsafe_checkpoint(Path(temporary))
        except Exception:
            Path(temporary).unlink(missing_ok=True)  # nothing half-written stays behind
            raise

    def _saved_at_this_step(self, trainer: pl.Trainer, filepath: str) -> str | None:
        """The checkpoint file already written at the trainer's current step, if another."""
        saved = self._last_checkpoint_saved
        if (
            saved
            and saved != filepath
            and self._last_global_step_saved == trainer.global_step
            and os.path.isfile(saved)
        ):
            return saved
        return None

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        # last.ckpt is what a resume starts from: metrics up to here are now safe to keep.
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                commit = getattr(logger, "commit", None)
                if commit is not None:
                    commit()

    # -- resume -----------------------------------------------------------------------------
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if not self.trusted:
            make_hyperparameters_plain(checkpoint)
        if self._at_epoch_start:
            start_new_epoch_in_loop_state(checkpoint.get("loops", {}).get("fit_loop", {}))
        # The metrics this checkpoint commits travel with it (see journal_logger.py).
        checkpoint[PENDING_METRICS_KEY] = [
            pending for logger in trainer.loggers for pending in getattr(logger, "pending", list)()
        ]

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        for logger in trainer.loggers:
            if hasattr(logger, "commit_again"):
                logger.commit_again(checkpoint.get(PENDING_METRICS_KEY, []))
        # The step we resume from is saved already: do not write it again at once, unless
        # it came from a fallback (the newest checkpoint was unreadable and must be replaced).
        if not self.rewrite_after_resume:
            self._last_global_step_saved = int(checkpoint.get("global_step", 0))
