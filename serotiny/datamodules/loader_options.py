"""The options of ``ManifestDatamodule`` that reach torch's ``DataLoader``, checked when the
datamodule is built.

``batch_size``, ``num_workers`` and every extra keyword go to a ``DataLoader`` only when
training asks for its first batch: a misspelled option (``batchsize``) or a batch size of 0
would end a run that had already been opened, with a torch traceback. Checked here, they end
in one line before anything starts.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from torch.utils.data import DataLoader

from serotiny.errors import SerotinyUserError

# DataLoader arguments the datamodule sets itself, for each split's loader.
_SET_BY_THE_DATAMODULE = frozenset(
    {"dataset", "batch_size", "shuffle", "drop_last", "num_workers", "pin_memory"}
    | {"batch_sampler", "sampler"}
)


class DataOptionError(SerotinyUserError, ValueError):
    """A datamodule option is unknown, or of the wrong kind or range."""


def dataloader_options() -> list[str]:
    """The DataLoader arguments a datamodule config may add (``persistent_workers``, ...)."""
    names = inspect.signature(DataLoader.__init__).parameters
    return [name for name in names if name != "self" and name not in _SET_BY_THE_DATAMODULE]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_loader_options(
    owner: str,
    own_options: Iterable[str],
    batch_size: Any,
    num_workers: Any,
    extra: Mapping[str, Any],
) -> None:
    """Raise :class:`DataOptionError` for a batch size that is not a positive whole number,
    a negative or fractional ``num_workers``, or an extra option DataLoader does not take.

    ``owner`` names the datamodule class in messages; ``own_options`` are its own arguments
    (offered, with DataLoader's, when an unknown name looks like a misspelling).
    """
    if not _is_int(batch_size) or batch_size < 1:
        raise DataOptionError(
            f"{owner}: batch_size={batch_size!r}; it must be a whole number of rows, 1 or more"
        )
    if not _is_int(num_workers) or num_workers < 0:
        raise DataOptionError(
            f"{owner}: num_workers={num_workers!r}; it must be a whole number, 0 (batches "
            "made in the main process) or more"
        )
    accepted = dataloader_options()
    for name in extra:
        if name in accepted:
            continue
        known = [*own_options, *accepted]
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataOptionError(
            f"{owner} has no option '{name}'{hint}; besides its own options it takes "
            f"DataLoader's: {', '.join(accepted)}"
        )
