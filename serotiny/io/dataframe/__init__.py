"""Manifests: reading them (:mod:`.readers`), checking them (:mod:`.checks`) and turning their
columns into batches (:mod:`.loaders`, imported on its own because it needs torch)."""

from __future__ import annotations

from serotiny.io.dataframe.checks import ManifestProblem
from serotiny.io.dataframe.readers import ManifestTable, read_manifest, read_table

__all__ = ["ManifestProblem", "ManifestTable", "read_manifest", "read_table"]
