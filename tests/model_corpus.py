"""A corpus of project-style LightningModules: the ways Lightning and Hydra users write them.

serotiny's promises (rerun the same command and it resumes bit for bit; test, predict and
``load_model_from_checkpoint`` use the run's checkpoint) must hold for any reasonable model a
project brings, not only for serotiny's reference models. :func:`add_model_corpus` writes
the corpus into a rendered project as its own ``corpus_models.py`` would be, with a config
for each model in ``config/model/`` and a ``trainer/callbacks=corpus`` option whose callback
kills its own training process with SIGKILL once a checkpoint is stored, when the
environment asks it to (so the interrupted and the uninterrupted runs share one config).

Each model is tiny (the demo manifest: 8 features, 3 classes) and predicts
``{"prediction", "logits"}`` per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cli_helpers import PACKAGE

#: The environment variable that arms the corpus's SIGKILL callback: the folder whose
#: ``checkpoints/last.ckpt`` (anywhere below it) must exist before the process kills itself.
SIGKILL_ENV = "CORPUS_SIGKILL_ONCE_STORED"

MODELS = '''"""Project models, written as users write them (partials in hparams, nested networks,
modules given to __init__, custom checkpoint state, manual optimization)."""

from __future__ import annotations

import os
import signal
import time
from fractions import Fraction
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """A network built by Hydra from a nested config and handed to a model."""

    def __init__(self, in_features: int, hidden: list, out_features: int, activation: nn.Module):
        super().__init__()
        layers, width = [], in_features
        for size in hidden:
            layers += [nn.Linear(width, size), activation]
            width = size
        self.layers = nn.Sequential(*layers, nn.Linear(width, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ClassifierSteps(pl.LightningModule):
    """The steps the corpus shares: a classifier over batch["x"], labels batch["y"]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())

    def loss(self, batch: dict, stage: str) -> torch.Tensor:
        loss = F.cross_entropy(self(batch["x"]), batch["y"])
        self.log(f"{stage}_loss", loss, on_epoch=True, on_step=False)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.loss(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.loss(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.loss(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        logits = self(batch["x"])
        return {"prediction": logits.argmax(dim=1), "logits": logits}


class PartialOptimizer(ClassifierSteps):
    """(1) Optimizer and scheduler as Hydra partials, kept by save_hyperparameters()."""

    def __init__(self, in_features: int, num_classes: int, hidden: int, optimizer, scheduler):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def configure_optimizers(self):
        optimizer = self.hparams.optimizer(params=self.parameters())
        scheduler = self.hparams.scheduler(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"},
        }


class NestedNetwork(ClassifierSteps):
    """(2) A network and a loss built by Hydra from nested configs; save_hyperparameters()
    keeps the modules themselves (Lightning only warns)."""

    def __init__(self, network: nn.Module, loss: nn.Module, lr: float):
        super().__init__()
        self.save_hyperparameters()
        self.net = network
        self.criterion = loss

    def loss(self, batch: dict, stage: str) -> torch.Tensor:
        loss = self.criterion(self(batch["x"]), batch["y"])
        self.log(f"{stage}_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class IgnoredNetwork(ClassifierSteps):
    """(3) save_hyperparameters(ignore=["network"]) with a module argument."""

    def __init__(self, network: nn.Module, lr: float = 0.05, momentum: float = 0.9):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.net = network

    def configure_optimizers(self):
        return torch.optim.SGD(
            self.parameters(), lr=self.hparams.lr, momentum=self.hparams.momentum
        )


class NoHyperparameters(ClassifierSteps):
    """(4) No save_hyperparameters at all."""

    def __init__(self, in_features: int, num_classes: int, lr: float = 0.01):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(in_features, 12), nn.Tanh(), nn.Linear(12, num_classes))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


class OwnCheckpointState(ClassifierSteps):
    """(5) Input statistics kept as plain attributes (not buffers), stored and restored by
    its own on_save_checkpoint / on_load_checkpoint, and used by forward."""

    def __init__(self, in_features: int, num_classes: int, lr: float = 0.02):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(in_features, num_classes)
        self.feature_sum = torch.zeros(in_features)
        self.rows_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.rows_seen:
            x = x - (self.feature_sum / self.rows_seen).to(x.device)
        return self.net(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.feature_sum = self.feature_sum + batch["x"].float().sum(dim=0).detach().cpu()
        self.rows_seen += len(batch["x"])
        return self.loss(batch, "train")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["feature_stats"] = {"sum": self.feature_sum.clone(), "rows": self.rows_seen}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        stats = checkpoint["feature_stats"]
        self.feature_sum, self.rows_seen = stats["sum"].clone(), int(stats["rows"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class ManualTwoOptimizers(ClassifierSteps):
    """(6) Manual optimization: two optimizers (body and head) and a scheduler it steps."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 16):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.float()))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        body, head = self.optimizers()
        body.zero_grad()
        head.zero_grad()
        loss = self.loss(batch, "train")
        self.manual_backward(loss)
        body.step()
        head.step()
        return loss

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()

    def configure_optimizers(self):
        body = torch.optim.SGD(self.body.parameters(), lr=0.05, momentum=0.5)
        head = torch.optim.Adam(self.head.parameters(), lr=0.01)
        return [body, head], [torch.optim.lr_scheduler.StepLR(body, step_size=1, gamma=0.7)]


class StoresObjects(ClassifierSteps):
    """(needs checkpoint.trusted) Keeps an object, not plain data, in its checkpoints."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.net = nn.Linear(in_features, num_classes)
        self.batches = Fraction(0)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.batches += Fraction(1, 7)
        return self.loss(batch, "train")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["batches"] = self.batches

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.batches = checkpoint["batches"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class CountsInFractions(pl.Callback):
    """(needs checkpoint.trusted) A callback whose state is an object, not plain data."""

    def __init__(self) -> None:
        self.batches = Fraction(0)

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.batches += Fraction(1, 3)

    def state_dict(self) -> dict:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches = state_dict["batches"]


class SigkillOnceStored(pl.Callback):
    """Kills this process with SIGKILL, as a node crash would, at a training batch of the
    given epoch, once the run stores a checkpoint; only when CORPUS_SIGKILL_ONCE_STORED
    names the folder the run's artifacts go to."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        artifacts = os.environ.get("CORPUS_SIGKILL_ONCE_STORED")
        if not artifacts or (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        deadline = time.monotonic() + 120
        while not list(Path(artifacts).rglob("checkpoints/last.ckpt")):
            assert time.monotonic() < deadline, "no checkpoint was stored"
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
'''

_MODEL = f"{PACKAGE}.corpus_models"

CONFIGS = {
    "partial_optimizer": f"""
_target_: {_MODEL}.PartialOptimizer
in_features: 8
num_classes: 3
hidden: 16
optimizer:
  _partial_: true
  _target_: torch.optim.Adam
  lr: 0.01
scheduler:
  _partial_: true
  _target_: torch.optim.lr_scheduler.ReduceLROnPlateau
  factor: 0.5
  patience: 0
""",
    "nested_network": f"""
_target_: {_MODEL}.NestedNetwork
network:
  _target_: {_MODEL}.MLP
  in_features: 8
  hidden: [16, 8]
  out_features: 3
  activation:
    _target_: torch.nn.Tanh
loss:
  _target_: torch.nn.CrossEntropyLoss
  label_smoothing: 0.1
lr: 0.01
""",
    "ignored_network": f"""
_target_: {_MODEL}.IgnoredNetwork
network:
  _target_: torch.nn.Sequential
  _args_:
    - _target_: torch.nn.Linear
      in_features: 8
      out_features: 16
    - _target_: torch.nn.ReLU
    - _target_: torch.nn.Linear
      in_features: 16
      out_features: 3
lr: 0.05
momentum: 0.9
""",
    "no_hyperparameters": f"""
_target_: {_MODEL}.NoHyperparameters
in_features: 8
num_classes: 3
lr: 0.01
""",
    "own_checkpoint_state": f"""
_target_: {_MODEL}.OwnCheckpointState
in_features: 8
num_classes: 3
lr: 0.02
""",
    "manual_two_optimizers": f"""
_target_: {_MODEL}.ManualTwoOptimizers
in_features: 8
num_classes: 3
hidden: 16
""",
    # Not in CORPUS: a model that needs its project to trust its checkpoints.
    "stores_objects": f"""
_target_: {_MODEL}.StoresObjects
in_features: 8
num_classes: 3
""",
}


@dataclass(frozen=True)
class CorpusModel:
    """A model of the corpus: its config name (``model=corpus_<name>``) and what a model
    loaded in a notebook must show beyond its predictions."""

    name: str
    #: Checks a loaded model against the checkpoint it came from (its contents).
    check_loaded: Callable[[object, dict], None] = field(default=lambda model, state: None)

    @property
    def override(self) -> str:
        return f"model=corpus_{self.name}"


def _own_state_restored(model: object, state: dict) -> None:
    stats = state["feature_stats"]
    assert stats["rows"] > 0
    assert model.rows_seen == stats["rows"]  # type: ignore[attr-defined]
    assert model.feature_sum.equal(stats["sum"])  # type: ignore[attr-defined]


CORPUS = [
    CorpusModel("partial_optimizer"),
    CorpusModel("nested_network"),
    CorpusModel("ignored_network"),
    CorpusModel("no_hyperparameters"),
    CorpusModel("own_checkpoint_state", _own_state_restored),
    CorpusModel("manual_two_optimizers"),
]


def add_model_corpus(project: Path, kill_epoch: int = 2, kill_batch: int = 1) -> None:
    """Write the corpus into ``project``: ``corpus_models.py``, ``config/model/corpus_*``,
    ``config/trainer/callbacks/corpus.yaml`` (the SIGKILL callback, armed by
    :data:`SIGKILL_ENV`) and ``corpus_objects.yaml`` (a callback keeping an object)."""
    package = project / PACKAGE
    (package / "corpus_models.py").write_text(MODELS)
    for name, text in CONFIGS.items():
        (package / "config" / "model" / f"corpus_{name}.yaml").write_text(text.lstrip())
    callbacks = package / "config" / "trainer" / "callbacks"
    (callbacks / "corpus.yaml").write_text(
        f"- _target_: {_MODEL}.SigkillOnceStored\n  epoch: {kill_epoch}\n  batch: {kill_batch}\n"
    )
    (callbacks / "corpus_objects.yaml").write_text(f"- _target_: {_MODEL}.CountsInFractions\n")
