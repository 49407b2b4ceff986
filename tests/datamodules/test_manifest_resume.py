"""A training run stopped mid-epoch resumes with the batches an uninterrupted run would see."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from manifest_helpers import make_frame, standard_loaders

from serotiny.datamodules import ManifestDatamodule
from serotiny.datamodules.resumable import ResumableDataLoader


class Recorder(pl.LightningModule):
    """A linear classifier whose weights depend on the exact order of its batches."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)
        self.seen: list[list[str]] = []

    def training_step(self, batch, batch_index):
        self.seen.append(batch["id"])
        return torch.nn.functional.cross_entropy(self.linear(batch["x"]), batch["y"])

    def validation_step(self, batch, batch_index):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class StopAt(pl.Callback):
    """Acts like a SIGTERM after ``step`` optimizer steps, saving a checkpoint as it stops."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            # Lightning handles SIGTERM during fit: it stops at the end of this batch.
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path)


def fit(datamodule, tmp_path, callbacks=(), ckpt_path=None) -> Recorder:
    pl.seed_everything(11)
    model = Recorder()
    trainer = pl.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("stop_step", [4, 6, 7])  # mid epoch 2, its end, and the next start
def test_mid_epoch_resume_sees_the_same_batches(tmp_path, stop_step):
    frame = make_frame(rows=48)  # 16 train rows: 3 batches of 6 per epoch, the last short
    straight = fit(ManifestDatamodule(frame, standard_loaders(), batch_size=6), tmp_path)

    checkpoint = tmp_path / "stopped.ckpt"
    with pytest.raises(SIGTERMException):
        fit(
            ManifestDatamodule(frame, standard_loaders(), batch_size=6),
            tmp_path,
            callbacks=[StopAt(stop_step, checkpoint)],
        )
    resumed = fit(
        ManifestDatamodule(frame, standard_loaders(), batch_size=6), tmp_path, ckpt_path=checkpoint
    )
    assert resumed.seen == straight.seen[stop_step:]
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0)


def test_state_dict_outside_a_trainer_counts_yielded_batches():
    frame = make_frame(rows=60)
    datamodule = ManifestDatamodule(frame, standard_loaders(), batch_size=3)
    torch.manual_seed(0)
    loader = datamodule.train_dataloader()
    iterator = iter(loader)
    first = [next(iterator)["id"] for _ in range(2)]
    state = loader.state_dict()
    assert state["batches"] == 2 and state["epoch"] == 0
    rest = [batch["id"] for batch in iterator]

    again = ManifestDatamodule(frame, standard_loaders(), batch_size=3).train_dataloader()
    again.load_state_dict(state)
    assert [batch["id"] for batch in again] == rest
    assert len(first) + len(rest) == len(loader)
    # The finished epoch's state starts the next epoch afresh, in the next order.
    finished = loader.state_dict()
    assert finished["batches"] == len(loader)
    next_epoch = [batch["id"] for batch in loader]
    fresh = ManifestDatamodule(frame, standard_loaders(), batch_size=3).train_dataloader()
    fresh.load_state_dict(finished)
    assert [batch["id"] for batch in fresh] == next_epoch


def test_unshuffled_training_order_resumes_too():
    frame = make_frame(rows=30)
    loader = ManifestDatamodule(
        frame, standard_loaders(), batch_size=4, shuffle=False
    ).train_dataloader()
    iterator = iter(loader)
    next(iterator)
    again = ManifestDatamodule(
        frame, standard_loaders(), batch_size=4, shuffle=False
    ).train_dataloader()
    again.load_state_dict(loader.state_dict())
    assert [b["id"] for b in again] == [b["id"] for b in iterator]


def test_changed_split_restarts_the_epoch(caplog):
    loader = ManifestDatamodule(
        make_frame(rows=30), standard_loaders(), batch_size=4
    ).train_dataloader()
    iterator = iter(loader)
    next(iterator)
    state = loader.state_dict()
    smaller = ManifestDatamodule(
        make_frame(rows=27), standard_loaders(), batch_size=4
    ).train_dataloader()
    smaller.load_state_dict(state)
    assert sum(len(b["id"]) for b in smaller) == 9  # the whole (new) split
    assert "restarting the interrupted epoch" in caplog.text


def test_lightning_can_inject_its_distributed_sampler():
    # Under DDP Lightning rebuilds the training loader with a DistributedSampler, from the
    # arguments it captured when the loader was made; this is that rebuild.
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import DataLoader, DistributedSampler

    datamodule = ManifestDatamodule(make_frame(rows=60), standard_loaders(), batch_size=4)
    with _replace_dunder_methods(DataLoader, "dataset"):
        loader = datamodule.train_dataloader()
    sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=1, shuffle=True)
    rebuilt = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
    assert isinstance(rebuilt, ResumableDataLoader) and rebuilt.sampler is sampler
    ids = [i for batch in rebuilt for i in batch["id"]]
    assert len(ids) == 10 and len(set(ids)) == 10


class SaveAt(pl.Callback):
    """Writes a checkpoint from one hook at one point of an uninterrupted run."""

    def __init__(self, hook: str, step: int, path) -> None:
        self.hook, self.step, self.path = hook, step, path
        setattr(self, hook, self._save)

    def _save(self, trainer, *args, **kwargs) -> None:
        if trainer.global_step == self.step and not self.path.exists():
            trainer.save_checkpoint(self.path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hook", "step"),
    [
        ("on_train_batch_end", 4),  # mid-epoch, before Lightning counts the batch completed
        ("on_train_batch_end", 3),  # on an epoch's last batch
        ("on_train_epoch_end", 3),  # where ModelCheckpoint saves by default
    ],
)
def test_resume_from_checkpoints_saved_at_any_hook(tmp_path, hook, step):
    frame = make_frame(rows=48)
    checkpoint = tmp_path / "saved.ckpt"
    straight = fit(
        ManifestDatamodule(frame, standard_loaders(), batch_size=6),
        tmp_path,
        callbacks=[SaveAt(hook, step, checkpoint)],
    )
    resumed = fit(
        ManifestDatamodule(frame, standard_loaders(), batch_size=6), tmp_path, ckpt_path=checkpoint
    )
    assert resumed.seen == straight.seen[step:]
