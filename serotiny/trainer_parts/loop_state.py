"""Lightning's loop counters as they must be stored in a checkpoint taken at an epoch's start.

serotiny saves its checkpoints at the start of an epoch (see ``checkpoint_callback.py``), a
point where Lightning's own counters still describe the previous epoch; a resume from such a
checkpoint must see them as they will be once the new epoch has begun.
"""

from __future__ import annotations

from typing import Any


def _zero_current_counters(progress: Any) -> None:
    if isinstance(progress, dict):
        for key, value in progress.items():
            if key == "current" and isinstance(value, dict):
                for counter in value:
                    value[counter] = 0
            else:
                _zero_current_counters(value)


def start_new_epoch_in_loop_state(fit_loop_state: dict[str, Any]) -> None:
    """Make a checkpoint taken at an epoch's start look as Lightning's loops do then.

    At ``on_train_epoch_start`` Lightning has not yet reset the per-epoch ("current")
    batch counters; they still count the previous epoch, so a resume would take the new
    epoch as already run. Lightning resets them, and the per-epoch validation total, as the
    epoch's first step; we store the checkpoint as it will be after that reset. Lightning
    also adds one to the logging step counter when it restarts (it assumes checkpoints are
    taken before the last batch's increment), so the stored counter is one less.
    """
    counters = fit_loop_state.get("epoch_loop.state_dict", {})
    if "_batches_that_stepped" in counters:
        counters["_batches_that_stepped"] -= 1
    for key, value in fit_loop_state.items():
        if not key.startswith("epoch_loop."):
            continue
        if key == "epoch_loop.val_loop.batch_progress":
            for counter in value.get("total", {}):
                value["total"][counter] = 0
        _zero_current_counters(value)
        if isinstance(value, dict) and "is_last_batch" in value:
            value["is_last_batch"] = False
