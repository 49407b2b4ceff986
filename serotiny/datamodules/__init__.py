"""Lightning datamodules. ``ManifestDatamodule`` is imported on first use, so that the
Lightning-free parts (splits, checks) load without Lightning's ~6 s import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serotiny.datamodules.manifest_datamodule import ManifestDatamodule

__all__ = ["ManifestDatamodule"]


def __getattr__(name: str) -> Any:
    if name == "ManifestDatamodule":
        from serotiny.datamodules.manifest_datamodule import ManifestDatamodule

        return ManifestDatamodule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
