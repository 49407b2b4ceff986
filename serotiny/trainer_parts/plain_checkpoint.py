"""Checkpoints that a safe reader opens: plain data and tensors, whatever a model's
hyperparameters hold.

Lightning stores a model's ``save_hyperparameters()`` in every checkpoint. Projects commonly
pass objects there: an optimizer as a Hydra partial (``_partial_: true``), a network or a
loss module, an enum. ``torch.load(weights_only=True)`` refuses to unpickle such objects,
so test, predict, notebooks and resumes could not open the run's checkpoints without
unpickling code that came with them. serotiny never needs those values back: it rebuilds a
model from the run's stored config and loads only its weights and states. So before a
checkpoint is written, each hyperparameter that is not plain data (``None``, booleans,
numbers, strings, bytes, tensors, and lists, tuples, sets and dicts of them) is kept as its
text (``repr``), and the checkpoint says which under :data:`AS_TEXT_KEY`.

What else a checkpoint holds (a model's or callback's own ``on_save_checkpoint`` state) is
checked once the file is written: objects a safe load would refuse are one line naming
``checkpoint.trusted``, the setting with which a project trusts its own checkpoints (they
are then kept as they are and unpickled in full). A model's own state is checked before the
run exists too (:func:`refuse_unsafe_model_state`), so that mistake leaves no run behind.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from serotiny.trainer_parts.checkpoint_files import (
    TRUST_HINT,
    UnsafeCheckpointError,
    unsafe_globals,
)

#: The checkpoint entries Lightning fills from ``save_hyperparameters()`` (a model's and a
#: datamodule's), and the type it records when they are an OmegaConf container.
HYPERPARAMETER_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")
HYPERPARAMETER_TYPE_KEYS = ("hparams_type", "datamodule_hparams_type")
#: Where a checkpoint lists the hyperparameters kept as text (dotted paths).
AS_TEXT_KEY = "serotiny_hyper_parameters_as_text"
#: Longest text kept for one value (a module's repr can be long; it is only a note).
MAX_TEXT = 10_000

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_PLAIN_TORCH = (torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype, torch.device)


def _text(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that fails still must not stop the checkpoint
        text = f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text[:MAX_TEXT]


def plain_value(value: Any, path: str, as_text: list[str]) -> Any:
    """``value`` as plain data: containers rebuilt from their plain items, anything else
    that a safe load would refuse as its text (its dotted ``path`` noted in ``as_text``).

    Types are matched exactly: a ``str`` or ``int`` subclass (an enum) pickles as its
    class, which a safe load refuses.
    """
    kind = type(value)
    if kind in _PLAIN or kind in _PLAIN_TORCH:
        return value
    if kind.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()  # a NumPy scalar: its Python number
    try:
        if isinstance(value, Mapping):  # dict, OrderedDict, AttributeDict, DictConfig
            return {
                plain_value(key, path, as_text): plain_value(item, f"{path}.{key}", as_text)
                for key, item in value.items()
            }
        if kind in (list, tuple, set) or (
            isinstance(value, Sequence) and not isinstance(value, str | bytes)
        ):
            items = [plain_value(item, f"{path}[{i}]", as_text) for i, item in enumerate(value)]
            return kind(items) if kind in (tuple, set) else items
    except Exception:  # a container whose items cannot be read (a missing ??? value)
        pass
    as_text.append(path)
    return _text(value)


def make_hyperparameters_plain(checkpoint: dict[str, Any]) -> list[str]:
    """Turn the checkpoint's hyperparameters into plain data in place (see the module doc);
    return the dotted paths kept as text, also stored under :data:`AS_TEXT_KEY`."""
    as_text: list[str] = []
    for key in HYPERPARAMETER_KEYS:
        if key in checkpoint:
            checkpoint[key] = plain_value(checkpoint[key], key, as_text)
    for key in HYPERPARAMETER_TYPE_KEYS:
        if key in checkpoint and not isinstance(checkpoint[key], str):
            # Lightning reads a type given as text as its own AttributeDict.
            kind = checkpoint[key]
            checkpoint[key] = (
                f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', kind)}"
            )
    if as_text:
        checkpoint[AS_TEXT_KEY] = as_text
    return as_text


def refuse_unsafe_checkpoint(path: Path) -> None:
    """Raise :class:`UnsafeCheckpointError` (one line) if the checkpoint just written at
    ``path`` holds objects a safe load would refuse (reads only its pickled structure, not
    its tensors)."""
    refused = unsafe_globals(path)
    if refused:
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise UnsafeCheckpointError(
            f"the checkpoint holds objects a safe load refuses ({shown}), stored by the "
            "model's or a callback's on_save_checkpoint (or state_dict): store plain data "
            f"and tensors there; {TRUST_HINT}"
        )


def refuse_unsafe_model_state(model: pl.LightningModule, where: str) -> None:
    """Raise :class:`UnsafeCheckpointError` (one line naming ``where``) if the model's own
    ``on_save_checkpoint`` stores objects a safe load would refuse; checked before training,
    on what the hook stores for the model as built (a hook that needs a Trainer is left to
    the check of the written file)."""
    stored: dict[str, Any] = {}
    try:
        model.on_save_checkpoint(stored)
        buffer = io.BytesIO()
        torch.save(stored, buffer)
        buffer.seek(0)
        refused = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(buffer))
    except Exception:  # the hook needs a Trainer (or state training makes): checked later
        return
    if refused:
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise UnsafeCheckpointError(
            f"{where}: on_save_checkpoint stores objects a safe load refuses ({shown}): "
            f"store plain data and tensors in the checkpoint; {TRUST_HINT}"
        )
