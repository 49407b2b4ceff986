"""``serotiny register``: a trained run as a version of an MLflow registered model.

``serotiny register ++mlflow.run_name=x ++registry.name=cells ++registry.alias=champion``
registers run ``x``'s checkpoint (``checkpoint.use``; a cross-validation: its folds', as an
ensemble) as a version of the registered model ``cells`` and moves the alias ``champion``
to it; ``serotiny test ++mlflow.run_id=models:/cells@champion`` and
``load_model_from_checkpoint(uri, "models:/cells@champion")`` then load it. Registering
needs MLflow only: no Lightning is imported, so the command answers in a few seconds.
To register at the end of every training, set ``registry.register_after_training``
(:func:`serotiny.tracking.registry.register_if_configured`).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from serotiny.commands.job_setup import start_job
from serotiny.tracking.model_source import find_model_source
from serotiny.tracking.registry import (
    RegisteredVersion,
    RegistryError,
    log_registered,
    register_run,
)
from serotiny.tracking.store import connect

log = logging.getLogger(__name__)


def register(cfg: DictConfig) -> RegisteredVersion:
    """Register the run ``mlflow.run_name`` (or ``mlflow.run_id``) as a version of
    ``registry.name``, moving ``registry.alias`` to it; return the version.

    Only a FINISHED run is registered: a failed or running one's checkpoint may still change,
    and a version should stand for one fixed model.
    """
    cfg, settings = start_job(cfg)
    name = settings.registry.name
    if not name:
        raise RegistryError(
            "which registered model? give its name with ++registry.name=NAME (made on first use)"
        )
    client = connect(settings.mlflow.tracking_uri)
    source = find_model_source(client, settings)
    run = source.run
    if run.info.status != "FINISHED":
        raise RegistryError(
            f"run '{run.info.run_name}' ({run.info.run_id}) is {run.info.status}, not FINISHED: "
            "finish its training (rerun serotiny train with its name) before registering it"
        )
    version = register_run(client, run, name, settings.registry.alias, source.checkpoint)
    log_registered(run, version, settings.registry.alias)
    return version
