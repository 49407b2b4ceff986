"""A reproducibility record for every training run.

What a person needs to redo a run months later: the resolved config and its hash, the
project's git commit and whether the tree had uncommitted changes, the versions of the
libraries that decide the numbers, a content hash of each manifest, the seed, the host.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("serotiny", "torch", "lightning", "mlflow", "hydra-core", "numpy", "pandas")
MANIFEST_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".tsv")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that decide a run's numbers, and Python's."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state(folder: Path) -> dict[str, str]:
    """The git commit of ``folder``'s repository and whether it has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "not a git repository", "dirty": "unknown"}
    return {"commit": commit, "dirty": str(dirty).lower()}


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_files(data_config: Any) -> Iterator[Path]:
    """Manifest files named by a data config's ``path`` (a file or a folder of splits)."""
    raw = data_config.get("path") if hasattr(data_config, "get") else None
    if not isinstance(raw, str):
        return
    path = Path(raw)
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from sorted(p for p in path.iterdir() if p.name.endswith(MANIFEST_SUFFIXES))


def reproducibility_record(cfg: Any, project_root: Path, config_hash: str) -> dict[str, Any]:
    """Everything needed to tell how a run was made (see the module doc)."""
    return {
        "config_hash": config_hash,
        "git": git_state(project_root),
        "versions": library_versions(),
        "manifests": {str(path): file_sha256(path) for path in manifest_files(cfg.get("data", {}))},
        "seed": cfg.get("seed"),
        "host": socket.gethostname(),
    }


def record_tags(record: dict[str, Any]) -> dict[str, str]:
    """The record flattened into MLflow tags (``serotiny.git.commit`` ...)."""
    tags = {
        "serotiny.git.commit": record["git"]["commit"],
        "serotiny.git.dirty": record["git"]["dirty"],
        "serotiny.seed": str(record["seed"]),
        "serotiny.host": record["host"],
    }
    tags.update({f"serotiny.version.{k}": v for k, v in record["versions"].items()})
    for index, (path, digest) in enumerate(sorted(record["manifests"].items())):
        tags[f"serotiny.manifest.{index}.path"] = path
        tags[f"serotiny.manifest.{index}.sha256"] = digest
    return tags
