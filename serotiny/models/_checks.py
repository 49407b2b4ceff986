"""Constructor argument checks shared by the models, with one error type for all of them.

The checks run when Hydra builds a model, so a wrong config fails before any training starts,
with a message that names the argument and what it should be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from serotiny.errors import SerotinyUserError


class ModelConfigError(SerotinyUserError, ValueError):
    """A model was configured with arguments it cannot work with.

    A ``ValueError`` for library users, and a :class:`~serotiny.errors.SerotinyUserError`
    so the CLI reports it as one line instead of a traceback.
    """


def positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is a whole number >= 1 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def positive_int_tuple(
    owner: str, name: str, values: Any, allow_empty: bool = True
) -> tuple[int, ...]:
    """A sequence of positive ints (Hydra hands lists over as ``ListConfig``) as a plain tuple."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ModelConfigError(
            f"{owner}: {name} must be a list of positive integers, got {values!r}"
        )
    result = tuple(positive_int(owner, f"each of {name}", value) for value in values)
    if not result and not allow_empty:
        raise ModelConfigError(f"{owner}: {name} must not be empty")
    return result


def label(owner: str, name: str, value: Any) -> str:
    """A batch key: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ModelConfigError(
            f"{owner}: {name} must be a non-empty string naming a batch key, got {value!r}"
        )
    return value


def factory(
    owner: str, name: str, value: Any, takes: str, optional: bool = False
) -> Callable | None:
    """A callable such as ``functools.partial(torch.optim.Adam, lr=1e-3)``.

    An already-built object here almost always means the config lacks ``_partial_: true``,
    so the message says so.
    """
    if value is None and optional:
        return None
    if not callable(value):
        raise ModelConfigError(
            f"{owner}: {name} must be a callable taking {takes} (in YAML: `_partial_: true` "
            f"next to its `_target_`), got {type(value).__name__}"
        )
    return value
