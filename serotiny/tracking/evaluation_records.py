"""Where a run keeps a test or a prediction on some data, and the record of what made it.

A trained run can be tested and can predict on the data it was trained on and on any other
data. Results on different data are kept side by side in the run, never over each other:

=============  =================================  ===========================================
data           test metrics                       predictions
=============  =================================  ===========================================
the run's own  ``test_accuracy`` (as the model    ``predictions/predictions.parquet``
               logs it)
other, ``L``   ``L/test_accuracy``                ``predictions/L/predictions.parquet``
=============  =================================  ===========================================

Beside each set lies ``lineage.json`` (``test/lineage.json``, ``test/L/lineage.json``,
``predictions/lineage.json``, ``predictions/L/lineage.json``): the resolved data config,
each manifest's SHA-256, the checkpoint used (which one, its step, its SHA-256) and what came
out (the metrics, or the number of rows). A repeated test or predict on the same data
replaces its own set and record, and nothing else.

**The run's own data** is data whose identity (:func:`data_identity`) equals the identity of
the data the run trained on. The identity is the resolved data config less the settings that
only change how rows are loaded (:data:`LOADING_ONLY_KEYS`: batch size, workers, ...), with
the manifest's path replaced by each manifest file's name and SHA-256. On the training side
the config is the run's stored ``config/train.yaml`` and the hashes are the ones recorded
when it trained (tags ``serotiny.manifest.N.sha256``): a manifest edited since is other data,
and so is the same manifest split differently (another ``split_seed``, say).

**The label** ``L`` of other data is ``<manifest name>-<first 8 hex digits of the identity's
hash>``, e.g. ``manifest_subset-3f9a01c2``: the same data gets the same label every time,
other data another one. The label is also a section of the run's metrics in MLflow's UI.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig

from serotiny.settings.config_data import config_hash, resolved_container
from serotiny.tracking.provenance import MANIFEST_SUFFIXES, file_sha256, manifest_files

TEST_ARTIFACT_DIR = "test"
PREDICTIONS_ARTIFACT_DIR = "predictions"
LINEAGE_FILE = "lineage.json"
# Data config keys that change how rows are loaded, never which rows or what they hold.
LOADING_ONLY_KEYS = frozenset(
    {
        "batch_size",
        "num_workers",
        "pin_memory",
        "persistent_workers",
        "prefetch_factor",
        "multiprocessing_context",
        "gather_in_workers",
        "cache_dir",
        # training only: the order and the last batch of the train split
        "shuffle",
        "drop_last",
    }
)
_MANIFEST_TAG = re.compile(r"^serotiny\.manifest\.(\d+)\.(path|sha256)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
LABEL_HASH_LENGTH = 8


@dataclass(frozen=True)
class ManifestFile:
    """A manifest file and the SHA-256 of its bytes."""

    path: str
    sha256: str


@dataclass(frozen=True)
class EvaluatedData:
    """The data a test or a prediction runs on, and where its results go in the run.

    ``label`` is None for the run's own data (see the module doc).
    """

    label: str | None
    fingerprint: str
    manifests: tuple[ManifestFile, ...]
    config: dict[str, Any]

    @property
    def own(self) -> bool:
        """Whether this is the data the run was trained on."""
        return self.label is None

    def artifact_dir(self, base: str) -> str:
        """``base`` for the run's own data, ``base/<label>`` for other data."""
        return base if self.label is None else f"{base}/{self.label}"

    def metric_name(self, name: str) -> str:
        """``name`` for the run's own data, ``<label>/name`` for other data."""
        return name if self.label is None else f"{self.label}/{name}"

    def describe(self) -> str:
        """Which data this is, for a log line."""
        return "the run's own data" if self.label is None else f"other data '{self.label}'"


@dataclass(frozen=True)
class CheckpointUsed:
    """A checkpoint a test or a prediction used: which run's, which file, from which step."""

    run_id: str
    artifact: str
    step: int | None
    epoch: int | None
    sha256: str


def current_manifests(data_config: DictConfig) -> tuple[ManifestFile, ...]:
    """The manifest files the data config reads now, with their hashes."""
    return tuple(ManifestFile(str(path), file_sha256(path)) for path in manifest_files(data_config))


def trained_manifests(run: Run) -> tuple[ManifestFile, ...]:
    """The manifest files recorded when the run trained (its reproducibility tags)."""
    found: dict[str, dict[str, str]] = {}
    for key, value in run.data.tags.items():
        match = _MANIFEST_TAG.match(key)
        if match:
            found.setdefault(match.group(1), {})[match.group(2)] = value
    return tuple(
        ManifestFile(entry["path"], entry["sha256"])
        for _, entry in sorted(found.items(), key=lambda item: int(item[0]))
        if {"path", "sha256"} <= set(entry)
    )


def data_identity(config: Mapping[str, Any], manifests: Iterable[ManifestFile]) -> dict[str, Any]:
    """What makes data the same data: see the module doc.

    Without manifest files (a datamodule that reads something else) the path stays in.
    """
    files = sorted((Path(m.path).name, m.sha256) for m in manifests)
    kept = {key: value for key, value in config.items() if key not in LOADING_ONLY_KEYS}
    if files:
        kept.pop("path", None)
    return {"config": kept, "manifests": files}


def data_label(config: Mapping[str, Any], fingerprint: str) -> str:
    """``<manifest name>-<hash>``: the manifest's file name less its suffix, or its folder's."""
    raw = config.get("path")
    name = "data"
    if isinstance(raw, str) and raw:
        name = Path(raw).name
        for suffix in MANIFEST_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
    name = _UNSAFE.sub("_", name).strip("._") or "data"
    return f"{name}-{fingerprint[:LABEL_HASH_LENGTH]}"


def evaluated_data(run: Run, training_config: DictConfig, data_config: DictConfig) -> EvaluatedData:
    """Which data ``data_config`` is to ``run``: its own (label None) or other data."""
    config = resolved_container(data_config)
    manifests = current_manifests(data_config)
    fingerprint = config_hash(data_identity(config, manifests))
    trained_config = resolved_container(training_config.get("data") or DictConfig({}))
    trained = config_hash(data_identity(trained_config, trained_manifests(run)))
    label = None if fingerprint == trained else data_label(config, fingerprint)
    return EvaluatedData(label, fingerprint, manifests, config)


def lineage_record(
    command: str,
    data: EvaluatedData,
    checkpoints: Iterable[CheckpointUsed],
    results: Mapping[str, Any],
) -> dict[str, Any]:
    """What ``lineage.json`` holds: which data, which checkpoints, and what came out."""
    return {
        "command": command,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "own_data": data.own,
            "label": data.label,
            "fingerprint": data.fingerprint,
            "manifests": [asdict(manifest) for manifest in data.manifests],
            "config": data.config,
        },
        "checkpoints": [asdict(checkpoint) for checkpoint in checkpoints],
        **results,
    }


def log_lineage(
    client: MlflowClient, run_id: str, artifact_dir: str, record: Mapping[str, Any]
) -> None:
    """Keep ``record`` as ``<artifact_dir>/lineage.json`` in the run (replacing an older one)."""
    with tempfile.TemporaryDirectory(prefix="serotiny-lineage-") as folder:
        path = Path(folder) / LINEAGE_FILE
        path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        client.log_artifact(run_id, str(path), artifact_dir)
