"""A project laid out the way the original serotiny template laid one out, for tests.

Written for these tests (not copied from AllenCellModeling/serotiny-project-cookiecutter):
a ``.serotiny`` marker holding the bare package name; ``train.yaml``, ``test.yaml`` and
``predict.yaml`` built on ``defaults/<op>@_here_`` and ``hydra@hydra``; ``mlflow`` and
``trainer`` configs inheriting from ``/defaults/...``; that era's keys (``gpus``,
``pytorch_lightning.Trainer``, ``logger: []``, ``autolog``). The data is scikit-learn's
bundled iris table (offline) as a manifest, the model serotiny's TabularVAE.
"""

from __future__ import annotations

from pathlib import Path

LEGACY_PACKAGE = "old_project"
LEGACY_EXPERIMENT = "legacy_experiment"
MANIFEST_ROWS = 150

OPERATION_CONFIG = """\
defaults:
  - defaults/{operation}@_here_
  - model: default
  - data: default
  - mlflow: default
  - trainer: default
  - hydra@hydra
  - _self_

hydra: {{}}
"""

CONFIGS = {
    "hydra.yaml": "",
    "mlflow/default.yaml": f"""\
defaults:
  - /defaults/mlflow/default@_here_ # inherit serotiny's mlflow config

experiment_name: {LEGACY_EXPERIMENT}
autolog:
  log_every_n_epoch: 1
  log_models: True
""",
    "trainer/default.yaml": """\
defaults:
  - /defaults/trainer/default@_here_ # inherit serotiny's trainer config
  - callbacks: default

_target_: pytorch_lightning.Trainer
max_epochs: 3
gpus:
enable_checkpointing: True
logger: []
""",
    "trainer/callbacks/default.yaml": """\
- _target_: old_project.callbacks.RecordEpochs
  path: ${paths.root}/epochs_seen.txt
""",
    "model/default.yaml": """\
defaults:
  - /defaults/model/vae/tabular_vae@_here_

x_dim: 4
latent_dim: 2
hidden_layers: [16]
x_label: x
""",
    "model/old_style.yaml": "_target_: old_project.models.OldStyleModel\n",
    "data/default.yaml": """\
_target_: serotiny.datamodules.ManifestDatamodule
path: ${paths.root}/data/manifest.csv
batch_size: 16
num_workers: 0
split_column: split
id_column: id
loaders:
  x:
    _target_: serotiny.io.dataframe.loaders.LoadColumns
    startswith: feature_
  id:
    _target_: serotiny.io.dataframe.loaders.LoadColumn
    column: id
""",
}

# Project code written against the standalone pytorch_lightning package, as that era's was.
CALLBACKS = '''\
import pytorch_lightning as pl


class RecordEpochs(pl.Callback):
    """Appends a line to ``path`` at the end of every training epoch."""

    def __init__(self, path):
        self.path = path

    def on_train_epoch_end(self, trainer, pl_module):
        with open(self.path, "a") as file:
            file.write(f"{trainer.current_epoch}\\n")
'''

MODELS = """\
import pytorch_lightning as pl
import torch


class OldStyleModel(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)
"""


def write_manifest(path: Path) -> None:
    """The iris table as a manifest: id, split, feature_0..3 (150 rows, read offline)."""
    import pandas as pd
    from sklearn.datasets import load_iris

    features = load_iris().data
    splits = ["train", "train", "train", "valid", "test"]
    table = pd.DataFrame(
        {
            "id": [f"flower_{index:03d}" for index in range(len(features))],
            "split": [splits[index % len(splits)] for index in range(len(features))],
        }
    )
    for column in range(features.shape[1]):
        table[f"feature_{column}"] = features[:, column]
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def write_legacy_project(root: Path) -> Path:
    """Write the project under ``root`` (its root folder) and return ``root``."""
    package = root / LEGACY_PACKAGE
    config = package / "config"
    config.mkdir(parents=True)
    (root / ".serotiny").write_text(f"{LEGACY_PACKAGE}\n")
    (package / "__init__.py").write_text("")
    (package / "callbacks.py").write_text(CALLBACKS)
    (package / "models.py").write_text(MODELS)
    (config / "__init__.py").write_text("")
    for operation in ("train", "test", "predict"):
        (config / f"{operation}.yaml").write_text(OPERATION_CONFIG.format(operation=operation))
    for name, text in CONFIGS.items():
        (config / name).parent.mkdir(parents=True, exist_ok=True)
        (config / name).write_text(text)
    write_manifest(root / "data" / "manifest.csv")
    return root
