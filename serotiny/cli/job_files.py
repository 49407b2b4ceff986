"""Keeping credentials out of the files Hydra writes for every job.

Hydra saves each job's composed config, its overrides and its own config under the job's
``.hydra/`` folder (and a sweep's under ``multirun.yaml``) before the job runs: a password in
``++mlflow.tracking_uri=http://user:secret@host`` or a ``+db.password=...`` would stay there
in plain text. The job rewrites them, redacted, before it does anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from serotiny.settings.secrets import redact, redact_override

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def _hide_overrides(node: Any) -> Any:
    """Every ``key=value`` string (an override, or Hydra's comma-joined ``override_dirname``)
    with its value redacted under its key."""
    if isinstance(node, dict):
        return {key: _hide_overrides(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_hide_overrides(value) for value in node]
    if isinstance(node, str) and "=" in node:
        return ",".join(redact_override(part) for part in node.split(","))
    return node


def redact_file(path: Path) -> None:
    """Rewrite one of Hydra's YAML files with credentials hidden (if it holds any)."""
    if not path.is_file():
        return
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    hidden = _hide_overrides(redact(loaded))
    if hidden != loaded:
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(hidden)))


def redact_job_files() -> None:
    """Redact the files Hydra wrote for the job now running (no-op outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    folders = []
    if hydra.output_subdir is not None:
        folders.append(Path(hydra.runtime.output_dir) / str(hydra.output_subdir))
    for folder in folders:
        for name in HYDRA_FILES:
            redact_file(folder / name)
    if hydra.mode is not None and str(hydra.mode).endswith("MULTIRUN"):
        redact_file(Path(str(hydra.sweep.dir)) / "multirun.yaml")
