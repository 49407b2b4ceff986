"""``serotiny validate``: check the composed data config's manifest, train nothing.

A check must answer fast, so for a ``ManifestDatamodule`` config the manifest is checked
through :class:`~serotiny.datamodules.manifest_data.ManifestData`, the part of the
datamodule that reads and checks tables, without importing Lightning. Other datamodules are
built in full and checked if they have a ``validate()`` method.
"""

from __future__ import annotations

import inspect
import logging

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from serotiny.commands.job_setup import start_job
from serotiny.datamodules.manifest_data import ManifestData

log = logging.getLogger(__name__)

MANIFEST_DATAMODULE_TARGETS = (
    "serotiny.datamodules.ManifestDatamodule",
    "serotiny.datamodules.manifest_datamodule.ManifestDatamodule",
)


def manifest_data_from_config(data: DictConfig) -> ManifestData:
    """The ``ManifestData`` a ``ManifestDatamodule`` config would make (no Lightning)."""
    accepted = set(inspect.signature(ManifestData).parameters)
    options = OmegaConf.to_container(data, resolve=True)
    assert isinstance(options, dict)
    kept = {key: value for key, value in options.items() if key in accepted}
    kept["loaders"] = instantiate(OmegaConf.create(kept.get("loaders") or {}))
    return ManifestData(**kept)


def validate(cfg: DictConfig) -> bool:
    """Run the data config's manifest checks; raise a one-line error on the first problem."""
    cfg, _ = start_job(cfg)
    if cfg.data.get("_target_") in MANIFEST_DATAMODULE_TARGETS:
        manifest_data_from_config(cfg.data).validate()
        print(f"ok: the manifest of data config '{cfg.data.get('path')}' passed its checks")
        return True
    # Lazy: only a datamodule other than serotiny's needs Lightning to be checked.
    from serotiny.trainer_parts.builders import instantiate_datamodule

    datamodule = instantiate_datamodule(cfg.data)
    if hasattr(datamodule, "validate"):
        datamodule.validate()
        print(f"ok: {type(datamodule).__name__} passed its checks")
    else:
        print(f"{type(datamodule).__name__} has no checks (no validate() method)")
    return True
