"""The seed's public face: ``serotiny.ml_ops.mlflow_utils.load_model_from_checkpoint``.

serotiny's machinery lives in layers of its own (see ``docs/architecture.md``): the commands
in :mod:`serotiny.commands`, everything MLflow in :mod:`serotiny.tracking`, what plugs into
Lightning's Trainer in :mod:`serotiny.trainer_parts`, the notebook API in :mod:`serotiny.api`.
This package keeps the import paths that existing projects and notebooks use.
"""
