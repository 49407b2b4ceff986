"""What a new training run records about itself: params, its resolved config, provenance.

The run alone must be enough to rebuild its model and to tell how it was made: the resolved
config (``config/train.yaml``), its flattened params, and the reproducibility record.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Param, RunTag
from omegaconf import DictConfig, OmegaConf

from serotiny.settings.config_data import config_hash, flatten, resolved_container
from serotiny.settings.secrets import redact
from serotiny.tracking.artifacts import CONFIG_ARTIFACT
from serotiny.tracking.provenance import record_tags, reproducibility_record

CONFIG_HASH_TAG = "serotiny.config_hash"
OPERATION_TAG = "serotiny.operation"
# Sections that say where and under which name a run is tracked, not what it trains.
UNHASHED_SECTIONS = ("mlflow", "paths", "resume", "search")
# Settings that say how a run's files are read, not what it trains: a run trained before
# one existed, or resumed with it changed, is the same training.
UNHASHED_SETTINGS = {"checkpoint": ("trusted",)}
#: On a run trained with ``checkpoint.trusted: true``: its checkpoints may hold objects, and
#: test, predict and notebooks unpickle them in full without being told again.
TRUSTED_CHECKPOINTS_TAG = "serotiny.checkpoints_trusted"
MLFLOW_PARAM_BATCH = 100
MLFLOW_PARAM_MAX_LENGTH = 6000
MLFLOW_TAG_MAX_LENGTH = 5000


def training_identity(cfg: DictConfig) -> dict[str, Any]:
    """The part of the resolved config that defines what is trained (hashed for drift)."""
    container = resolved_container(cfg)
    identity = {key: value for key, value in container.items() if key not in UNHASHED_SECTIONS}
    for section, names in UNHASHED_SETTINGS.items():
        if isinstance(identity.get(section), dict):
            identity[section] = {k: v for k, v in identity[section].items() if k not in names}
    return identity


def training_hash(cfg: DictConfig) -> str:
    """The hash of :func:`training_identity`: equal hashes train the same thing."""
    return config_hash(training_identity(cfg))


def log_new_run_contents(client: MlflowClient, run_id: str, cfg: DictConfig, root: Path) -> None:
    """Log flattened params, the resolved config and the reproducibility record of a run.

    ``root`` is the project's folder, whose git state the record notes.
    """
    container = resolved_container(cfg)
    record = reproducibility_record(cfg, root, training_hash(cfg))
    tags = [
        RunTag(key, value[:MLFLOW_TAG_MAX_LENGTH]) for key, value in record_tags(record).items()
    ]
    client.log_batch(run_id, tags=tags)  # one request, not one per tag
    params = [
        Param(key[:250], str(value)[:MLFLOW_PARAM_MAX_LENGTH])
        for key, value in flatten(container)
        if not key.startswith(("paths.", "resume."))
    ]
    for start in range(0, len(params), MLFLOW_PARAM_BATCH):
        client.log_batch(run_id, params=params[start : start + MLFLOW_PARAM_BATCH])
    with tempfile.TemporaryDirectory(prefix="serotiny-config-") as folder:
        path = Path(folder) / Path(CONFIG_ARTIFACT).name
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(container)))
        client.log_artifact(run_id, str(path), str(Path(CONFIG_ARTIFACT).parent))
        record_path = Path(folder) / "reproducibility.json"
        record_path.write_text(json.dumps(redact(record), indent=2, sort_keys=True))
        client.log_artifact(run_id, str(record_path))


def trusts_checkpoints(client: MlflowClient, run_id: str) -> bool:
    """Whether the run was trained with ``checkpoint.trusted: true`` (its tag says so)."""
    return client.get_run(run_id).data.tags.get(TRUSTED_CHECKPOINTS_TAG) == "true"
