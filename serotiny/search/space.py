"""A search space written in Hydra's sweep syntax, as Optuna distributions.

``hydra.sweeper.params`` (and sweep overrides on the command line) say what to search:

===================================  ===============================================
``interval(0.0005, 0.05)``           a float drawn uniformly
``int(interval(1, 4))``              an int drawn uniformly, both ends included
``tag(log, interval(1e-4, 1e-1))``   on a log scale (ints too)
``range(16, 129, 16)``               an int (or float) on a grid; ``stop`` excluded,
                                     as in Hydra's and Python's ``range``
``choice(adam, sgd)``                one of the values (``shuffle(range(...))`` too)
``0.1`` (no sweep)                   a value every trial gets
===================================  ===============================================

The values a trial draws go back to Hydra as ordinary overrides (``model.optimizer.lr=
0.0123``), so a trial composes exactly as the same command typed by hand would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from serotiny.errors import SerotinyUserError


class SearchSpaceError(SerotinyUserError):
    """A search space entry that cannot be searched."""


@dataclass(frozen=True)
class SearchSpace:
    """What Optuna draws (``distributions``, by override key, e.g. ``model.optimizer.lr`` or
    ``++trainer.gradient_clip_val``) and what every trial gets as is (``fixed``: the whole
    override, by key)."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)


def _interval(key: str, value: IntervalSweep) -> BaseDistribution:
    log = "log" in value.tags
    if isinstance(value.start, int) and isinstance(value.end, int):
        return IntDistribution(value.start, value.end, log=log)
    return FloatDistribution(float(value.start), float(value.end), log=log)


def _range(key: str, override: Override, value: RangeSweep) -> BaseDistribution:
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if value.shuffle:  # a shuffled range is a set of choices, as in Hydra's own sweeper
        return CategoricalDistribution(values)
    if not values:
        raise SearchSpaceError(f"hydra.sweeper.params.{key}: {override.input_line} is empty")
    step = abs(value.step)
    if all(isinstance(item, int) for item in values):
        return IntDistribution(min(values), max(values), step=int(step))
    return FloatDistribution(float(min(values)), float(max(values)), step=float(step))


def distribution(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of a sweep override; None for a plain value."""
    key = override.get_key_element()
    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep():
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        return _range(key, override, value)
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        return _interval(key, value)
    raise SearchSpaceError(f"{key}: {override.input_line} is not a sweep Optuna can search")


def search_space(params: Mapping[str, Any] | None, arguments: Iterable[str]) -> SearchSpace:
    """Parse ``hydra.sweeper.params`` and the command line's overrides into a search space.

    Command-line overrides come last, so ``model.optimizer.lr=0.01`` on the command line
    fixes a value that ``params`` would search.
    """
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    lines += list(arguments)
    parser = OverridesParser.create()
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for line in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as error:
            raise SearchSpaceError(f"search space entry '{line}': {error}") from error
        key = override.get_key_element()
        found = distribution(override)
        for earlier in [*distributions, *fixed]:  # a later entry for a key replaces it
            if earlier.lstrip("+") == key.lstrip("+"):
                distributions.pop(earlier, None)
                fixed.pop(earlier, None)
        if found is None:
            fixed[key] = line
        else:
            distributions[key] = found
    return SearchSpace(distributions, fixed)


def format_value(value: Any) -> str:
    """A drawn value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def trial_overrides(space: SearchSpace, drawn: Mapping[str, Any]) -> list[str]:
    """The overrides that make one trial: the drawn values, then the fixed ones."""
    overrides = [f"{key}={format_value(value)}" for key, value in drawn.items()]
    return overrides + list(space.fixed.values())
