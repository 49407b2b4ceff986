"""K-fold assignment of manifest rows, optionally stratified and grouped.

Cross-validation needs each row of the training pool in exactly one fold; stratifying by
a label keeps class proportions alike across folds, and grouping by a subject id keeps all
rows of one subject in one fold, so that a model is never validated on a subject it was
trained on. scikit-learn's splitters do the assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serotiny.errors import ManifestError


@dataclass(frozen=True)
class CrossValidation:
    """Which fold of how many, and how rows are assigned to folds.

    Args:
        folds: number of folds (at least 2).
        fold: the fold held out for validation, 0-based.
        stratify_column: keep this column's class proportions alike across folds.
        group_column: keep rows sharing this column's value in one fold.
        seed: shuffles rows before assigning them (the same seed, the same folds).
    """

    folds: int
    fold: int
    stratify_column: str | None = None
    group_column: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ManifestError(f"cross-validation needs at least 2 folds, got folds={self.folds}")
        if not 0 <= self.fold < self.folds:
            raise ManifestError(
                f"cross-validation fold={self.fold} is out of range for folds={self.folds} "
                f"(use 0 to {self.folds - 1})"
            )

    @classmethod
    def from_config(cls, value: Any) -> CrossValidation | None:
        """Build from a mapping (``None`` or ``folds`` unset: no cross-validation)."""
        if value is None or isinstance(value, CrossValidation):
            return value
        options = dict(value)
        if not options.get("folds"):
            return None
        return cls(
            folds=int(options["folds"]),
            fold=int(options.get("fold") or 0),
            stratify_column=options.get("stratify_column"),
            group_column=options.get("group_column"),
            seed=int(options.get("seed") or 0),
        )


def assign_folds(
    num_rows: int,
    folds: int,
    stratify: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The fold (0..folds-1) of each of ``num_rows`` rows."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    positions = np.arange(num_rows)
    if groups is not None and len(np.unique(groups)) < folds:
        raise ManifestError(
            f"cannot make {folds} folds from {len(np.unique(groups))} groups; use fewer folds"
        )
    if stratify is not None and groups is not None:
        splitter: Any = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(positions, stratify, groups)
    elif stratify is not None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(positions, stratify)
    elif groups is not None:
        # GroupKFold has no shuffle: shuffle the group labels' order instead.
        unique = np.unique(groups)
        order = np.random.default_rng(seed).permutation(len(unique))
        relabel = dict(zip(unique.tolist(), order.tolist(), strict=True))
        shuffled = np.array([relabel[g] for g in groups.tolist()])
        splits = GroupKFold(n_splits=folds).split(positions, groups=shuffled)
    else:
        if num_rows < folds:
            raise ManifestError(f"cannot make {folds} folds from {num_rows} rows; use fewer folds")
        splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(positions)
    assignment = np.full(num_rows, -1, dtype=np.int64)
    for fold, (_, held_out) in enumerate(splits):
        assignment[held_out] = fold
    return assignment
