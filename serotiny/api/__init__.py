"""serotiny in a notebook: trained models rebuilt from their MLflow runs.

``serotiny.ml_ops.mlflow_utils.load_model_from_checkpoint`` (the seed's import path) is the
same function as :func:`serotiny.api.load_model_from_checkpoint`.
"""

from __future__ import annotations

from serotiny.api.models_from_runs import load_model_from_checkpoint

__all__ = ["load_model_from_checkpoint"]
