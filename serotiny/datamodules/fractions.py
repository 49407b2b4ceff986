"""Splitting a manifest that has no split column by fractions, e.g. 80/10/10.

The rows are shuffled from a seed and cut to the fractions by scikit-learn's splitters:
``train_test_split`` (optionally stratified), ``GroupShuffleSplit`` when a subject's rows
must stay in one split, and ``StratifiedGroupKFold`` when both. Counts are rounded by the
largest remainder, so each split gets the floor or the ceiling of its share. The caller
hands the rows over in a canonical order (sorted by id, see ``row_splits``), which is what
makes the split a function of the manifest's content and the seed, not of its row order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serotiny.datamodules.splits import SPLITS, canonical_split
from serotiny.errors import ManifestError

# How far the fractions' sum may be from 1 (to allow 1/3 + 1/3 + 1/3 written as decimals).
SUM_TOLERANCE = 1e-3
# With both group_column and stratify_column, splits are made of whole folds: at most this
# many, the fewest that meet the fractions (0.8/0.1/0.1 takes 10 folds; 0.7/0.15/0.15, 20).
MAX_FOLDS = 20

_EXAMPLE = "e.g. {train: 0.8, valid: 0.1, test: 0.1}"


@dataclass(frozen=True)
class SplitFractions:
    """The share of rows (or of groups) each split gets, and how rows are drawn.

    Args:
        fractions: split (``train``, ``val``, ``test``) -> fraction; splits left out get 0.
        seed: the same seed and manifest content give the same split.
        stratify_column: keep this column's class proportions alike in every split.
        group_column: keep rows sharing this column's value in one split; the fractions then
            count groups, so the share of rows follows as far as group sizes allow.
    """

    fractions: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    stratify_column: str | None = None
    group_column: str | None = None

    @classmethod
    def from_config(
        cls,
        value: Any,
        seed: int | None = None,
        stratify_column: str | None = None,
        group_column: str | None = None,
    ) -> SplitFractions | None:
        """Check ``split_fractions`` from a config (``None``: not splitting by fractions)."""
        if value is None or isinstance(value, SplitFractions):
            return value
        if not isinstance(value, Mapping) or not value:
            raise ManifestError(
                f"split_fractions: {value!r} is not a mapping of split -> fraction; give one, "
                f"{_EXAMPLE}"
            )
        fractions: dict[str, float] = {}
        for name, raw in value.items():
            split = canonical_split(name)
            if split is None:
                raise ManifestError(
                    f"split_fractions: {name!r} is not a split; use train, valid (or val, "
                    f"validation) and test, {_EXAMPLE}"
                )
            if split in fractions:
                raise ManifestError(
                    f"split_fractions: {name!r} names the {split!r} split a second time; "
                    "give each split once"
                )
            fractions[split] = _fraction(name, raw)
        total = sum(fractions.values())
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ManifestError(
                f"split_fractions add up to {total:g}, not 1; change them so they do, {_EXAMPLE}"
            )
        return cls(
            {split: fractions.get(split, 0.0) / total for split in SPLITS},
            int(seed or 0),
            stratify_column,
            group_column,
        )

    def columns(self) -> list[str]:
        """The manifest columns this split reads."""
        return [c for c in (self.stratify_column, self.group_column) if c is not None]


def _fraction(name: object, raw: object) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ManifestError(
            f"split_fractions: {name}={raw!r} is not a fraction; give a number from 0 to 1"
        )
    return value


def split_counts(total: int, fractions: Mapping[str, float]) -> list[int]:
    """How many of ``total`` rows (or groups) each split gets, in ``SPLITS`` order.

    Largest-remainder rounding: each count is the floor or the ceiling of its exact share,
    and the counts add up to ``total``.
    """
    # Rounded first, so that 0.29 * 100 = 28.999999999999996 counts as 29.
    exact = [round(fractions.get(split, 0.0) * total, 9) for split in SPLITS]
    counts = [math.floor(share) for share in exact]
    by_remainder = sorted(range(len(SPLITS)), key=lambda i: counts[i] - exact[i])
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    return counts


def _empty_split(counts: list[int], fractions: Mapping[str, float]) -> str | None:
    """The first split with a fraction above 0 that gets nothing, if any."""
    for split, count in zip(SPLITS, counts, strict=True):
        if count == 0 and fractions.get(split, 0.0) > 0:
            return split
    return None


def assign_fractions(
    num_rows: int,
    split: SplitFractions,
    stratify: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """The split of each of ``num_rows`` rows as an index into ``SPLITS`` (0 train, ...).

    ``stratify`` and ``groups`` hold each row's class and group (no missing values).
    """
    if groups is not None and stratify is not None:
        return _by_stratified_group_folds(split, stratify, groups)
    positions = np.arange(num_rows)
    units = len(np.unique(groups)) if groups is not None else num_rows
    counts = split_counts(units, split.fractions)
    empty = _empty_split(counts, split.fractions)
    if empty is not None:
        unit = "groups" if groups is not None else "rows"
        raise ManifestError(
            f"split_fractions: {empty}={split.fractions[empty]:g} of {units} {unit} leaves the "
            f"{empty!r} split empty; add {unit}, raise its fraction, or set it to 0"
        )
    codes = np.zeros(num_rows, dtype=np.int8)
    rest = positions
    # Test first, then val from what is left; train keeps the remainder.
    for code in (2, 1):
        if counts[code] == 0:
            continue
        kept = sum(counts[:code])
        rest, taken = _split_off(rest, counts[code], kept, split, stratify, groups)
        codes[taken] = code
    return codes


def _split_off(
    rows: np.ndarray,
    size: int,
    kept: int,
    split: SplitFractions,
    stratify: np.ndarray | None,
    groups: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``size`` rows (or groups) from ``rows``, keeping ``kept``: (kept rows, drawn rows)."""
    # Imported here: sklearn.model_selection takes ~1.2 s to import, which checking a
    # manifest with a split column (serotiny validate) should not pay.
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if kept == 0:
        return rows[:0], rows
    if groups is not None:
        splitter = GroupShuffleSplit(
            n_splits=1, test_size=size, train_size=kept, random_state=split.seed
        )
        keep, take = next(splitter.split(rows, groups=groups[rows]))
        return rows[keep], rows[take]
    labels = stratify[rows] if stratify is not None else None
    try:
        keep_rows, taken = train_test_split(
            rows, test_size=size, train_size=kept, random_state=split.seed, stratify=labels
        )
    except ValueError as error:
        raise ManifestError(
            f"split_fractions: cannot stratify {len(rows)} rows by stratify_column="
            f"{split.stratify_column!r} ({str(error).splitlines()[0].rstrip('.')}); use "
            "larger fractions, fewer classes, or no stratify_column"
        ) from None
    return np.asarray(keep_rows), np.asarray(taken)


def _by_stratified_group_folds(
    split: SplitFractions, stratify: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Stratify groups: cut them into K folds that share the classes alike, give each split
    whole folds in proportion to its fraction."""
    from sklearn.model_selection import StratifiedGroupKFold  # ~1.2 s: only when used

    num_groups = len(np.unique(groups))
    folds = fold_count(split.fractions, num_groups)
    counts = split_counts(folds, split.fractions)
    empty = _empty_split(counts, split.fractions)
    if empty is not None:
        raise ManifestError(
            f"split_fractions: {empty}={split.fractions[empty]:g} is too small to hold one of "
            f"{folds} folds of {num_groups} groups (group_column with stratify_column splits "
            f"whole folds); raise it to at least {1 / folds:.2g}"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=split.seed)
    fold_of = np.empty(len(groups), dtype=np.int64)
    with warnings.catch_warnings():
        # "The least populated class has only N members": stratified as far as possible.
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held) in enumerate(splitter.split(groups, stratify, groups)):
            fold_of[held] = fold
    # Which folds go to which split is drawn from the seed too.
    slots = np.repeat(np.arange(len(SPLITS), dtype=np.int8), counts)
    code_of_fold = slots[np.random.default_rng(split.seed).permutation(folds)]
    return code_of_fold[fold_of]


def fold_count(fractions: Mapping[str, float], num_groups: int) -> int:
    """The fewest folds (2 to ``MAX_FOLDS``, at most one per group) whose whole-fold shares
    come closest to ``fractions``."""
    needed = sum(1 for value in fractions.values() if value > 0)
    most = min(MAX_FOLDS, num_groups)
    if most < max(needed, 2):
        raise ManifestError(
            f"split_fractions: {num_groups} groups in group_column cannot fill {needed} splits; "
            "add groups or give fewer splits a fraction"
        )

    def error(folds: int) -> float:
        return max(abs(round(f * folds) / folds - f) for f in fractions.values() if f > 0)

    candidates = [k for k in range(max(needed, 2), most + 1) if error(k) <= 1e-9]
    return candidates[0] if candidates else min(range(max(needed, 2), most + 1), key=error)
