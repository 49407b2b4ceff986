"""The seed's import path for loading trained models, and the run lookups docs show beside it.

Kept so that ``from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint`` works as
the getting-started guide writes it. The functions live in :mod:`serotiny.api` (models from
runs) and :mod:`serotiny.tracking` (the store and run names).
"""

from __future__ import annotations

from serotiny.api.models_from_runs import (
    build_model_from_run,
    load_model_from_checkpoint,
)
from serotiny.tracking.artifacts import download_checkpoint, load_run_config
from serotiny.tracking.run_names import find_runs_by_name, get_run_by_name, resolve_run_id
from serotiny.tracking.store import connect, get_or_create_experiment

__all__ = [
    "build_model_from_run",
    "connect",
    "download_checkpoint",
    "find_runs_by_name",
    "get_or_create_experiment",
    "get_run_by_name",
    "load_model_from_checkpoint",
    "load_run_config",
    "resolve_run_id",
]
