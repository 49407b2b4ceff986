"""The operations serotiny runs on a composed config: train, test, predict, validate.

Imports are deferred to the operation actually run, so that importing this package stays
cheap; lightning and mlflow are loaded only by the operations that need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

# operation name -> "module:function" implementing it
OPERATIONS = {
    "train": "serotiny.ml_ops.train:train",
    "test": "serotiny.ml_ops.evaluate:test",
    "predict": "serotiny.ml_ops.predict:predict",
    "validate": "serotiny.ml_ops.validate:validate",
}


def run_operation(operation: str, cfg: DictConfig) -> Any:
    """Run ``operation`` (one of :data:`OPERATIONS`) on the composed config ``cfg``."""
    module_name, function_name = OPERATIONS[operation].split(":")
    return getattr(import_module(module_name), function_name)(cfg)
