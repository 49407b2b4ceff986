"""Which loaders each split uses: one mapping for all splits, or one mapping per split.

Accepts loaders already built (Hydra's default recursive instantiation), specs still holding
``_target_`` (``_recursive_: false``), or a mix of both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serotiny.datamodules.splits import canonical_split
from serotiny.errors import ManifestError
from serotiny.io.dataframe.loaders.base import Loader

PREDICT = "predict"


def build_loader(name: str, spec: Any) -> Loader:
    """A loader from a built loader or a ``_target_`` spec; fails loudly on anything else."""
    if isinstance(spec, Loader):
        return spec
    if isinstance(spec, Mapping) and "_target_" in spec:
        from hydra.utils import instantiate  # only needed for un-instantiated specs

        built = instantiate(spec)
        if isinstance(built, Loader):
            return built
        spec = built
    raise ManifestError(
        f"datamodule loaders: {name!r} is a {type(spec).__name__}, not a loader; give a "
        "serotiny.io.dataframe.loaders class (e.g. _target_: "
        "serotiny.io.dataframe.loaders.LoadColumns) or a subclass of Loader"
    )


def _is_per_split(loaders: Mapping[str, Any]) -> bool:
    # Per-split when every key names a split and every value is itself a mapping of loaders
    # (not a loader, nor a spec with a _target_).
    return bool(loaders) and all(
        (canonical_split(key) is not None or str(key).lower() == PREDICT)
        and isinstance(value, Mapping)
        and "_target_" not in value
        for key, value in loaders.items()
    )


class LoaderPlan:
    """The loaders of every split. ``shared`` is true when one mapping serves all splits."""

    def __init__(self, loaders: Mapping[str, Any]) -> None:
        if not isinstance(loaders, Mapping) or not loaders:
            raise ManifestError(
                "datamodule loaders: expected a mapping of batch keys to loaders "
                "(e.g. x: {_target_: serotiny.io.dataframe.loaders.LoadColumns, ...}), "
                f"got {loaders!r}"
            )
        self.shared = not _is_per_split(loaders)
        self._by_split: dict[str, dict[str, Loader]] = {}
        if self.shared:
            built = {str(name): build_loader(str(name), spec) for name, spec in loaders.items()}
            self._by_split["all"] = built
            return
        for key, mapping in loaders.items():
            split = canonical_split(key) or PREDICT
            if split in self._by_split:
                raise ManifestError(
                    f"datamodule loaders: split {split!r} is given twice (as {key!r}); "
                    "give each split once"
                )
            self._by_split[split] = {
                str(name): build_loader(f"{key}.{name}", spec) for name, spec in mapping.items()
            }

    def for_split(self, split: str) -> dict[str, Loader]:
        """The loaders of ``split`` (``predict`` falls back to the ``test`` loaders)."""
        if self.shared:
            return self._by_split["all"]
        if split == PREDICT and PREDICT not in self._by_split:
            split = "test"
        if split not in self._by_split:
            raise ManifestError(
                f"datamodule loaders: no loaders for split {split!r}; add `loaders.{split}` "
                f"(given: {', '.join(self._by_split)}) or use one mapping for every split"
            )
        return self._by_split[split]

    def has(self, split: str) -> bool:
        """Whether ``split`` has loaders (``predict`` through its ``test`` fallback too)."""
        if self.shared:
            return True
        return split in self._by_split or (split == PREDICT and "test" in self._by_split)

    def unit(self, split: str) -> str:
        """The key under which ``split``'s loaders are checked and bound: splits that share
        loaders share one binding of the whole manifest."""
        return "all" if self.shared else split
