"""``serotiny validate``: check the composed data config's manifest, train nothing."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from serotiny.ml_ops.instantiators import instantiate_datamodule
from serotiny.ml_ops.run_context import prepare_config

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> bool:
    """Build the datamodule and run its manifest checks; raise on the first problem."""
    cfg = prepare_config(cfg)
    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
        print(f"ok: {type(datamodule).__name__} passed its checks")
    else:
        print(f"{type(datamodule).__name__} has no checks (no validate() method)")
    return True
