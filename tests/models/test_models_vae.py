"""TabularVAE from the getting-started guide's model config, trained for real."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from model_helpers import from_yaml, loader

from serotiny.models import TabularVAE

# Verbatim from shared/seeds/serotiny-getting-started.rst ("The model config group").
SEED_YAML = """
_target_: serotiny.models.TabularVAE
x_dim: 100
latent_dim: 16
hidden_layers: [32, 32, 32]
x_label: "x"
optimizer:
  _partial_: true
  _target_: torch.optim.Adam
  lr: 1e-3
"""


def low_rank_rows(n: int = 256, seed: int = 0) -> torch.Tensor:
    """100 features driven by 4 latent factors: structure a VAE can compress."""
    generator = torch.Generator().manual_seed(seed)
    factors = torch.randn(n, 4, generator=generator)
    mixing = torch.randn(4, 100, generator=generator) / 2
    return factors @ mixing + 0.1 * torch.randn(n, 100, generator=generator)


def test_seed_config_builds_and_hparams_are_primitive():
    model = from_yaml(SEED_YAML)
    assert isinstance(model, TabularVAE)
    assert dict(model.hparams) == {
        "x_dim": 100,
        "latent_dim": 16,
        "hidden_layers": [32, 32, 32],
        "x_label": "x",
        "beta": 1.0,
        "scheduler_monitor": "val_loss",
    }
    assert type(model.hparams["hidden_layers"]) is list  # not omegaconf's ListConfig


def test_seed_config_trains_and_logs_loss_terms(make_trainer):
    model = from_yaml(SEED_YAML)
    x = low_rank_rows()
    train = loader(batch_size=8, shuffle=True, x=x[:200])
    val = loader(x=x[200:])
    trainer = make_trainer(max_epochs=10)
    before = trainer.validate(model, val, verbose=False)[0]
    trainer.fit(model, train, val)
    after = trainer.callback_metrics
    assert {
        "train_loss",
        "train_reconstruction_loss",
        "train_kl_divergence",
        "val_loss",
        "val_reconstruction_loss",
        "val_kl_divergence",
    } <= set(after)
    assert after["val_loss"] < 0.8 * before["val_loss"]
    torch.testing.assert_close(
        after["val_loss"], after["val_reconstruction_loss"] + after["val_kl_divergence"]
    )
    tested = trainer.test(model, val, verbose=False)[0]
    assert set(tested) == {"test_loss", "test_reconstruction_loss", "test_kl_divergence"}


def test_checkpoint_is_weights_only_and_predictions_match(make_trainer, tmp_path):
    model = from_yaml(SEED_YAML, beta=0.5)
    x = low_rank_rows(n=64)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints")
    trainer = make_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, loader(shuffle=True, x=x))

    state = torch.load(checkpoint.best_model_path, weights_only=True)
    assert state["hyper_parameters"]["beta"] == 0.5
    restored = from_yaml(SEED_YAML, beta=0.5)
    restored.load_state_dict(state["state_dict"])

    expected = make_trainer().predict(model, loader(batch_size=10, x=x[:10]))[0]
    actual = make_trainer().predict(restored, loader(batch_size=10, x=x[:10]))[0]
    assert set(actual) == {"latent_mean", "reconstruction_error"}
    assert actual["latent_mean"].shape == (10, 16)
    assert actual["reconstruction_error"].shape == (10,)
    assert (actual["reconstruction_error"] >= 0).all()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def test_predict_accepts_float64_and_extra_batch_keys(make_trainer):
    model = TabularVAE(
        x_dim=6,
        latent_dim=2,
        hidden_layers=[],
        x_label="cells",
        optimizer=lambda parameters: torch.optim.SGD(parameters, lr=0.1),
    )
    batch = loader(batch_size=5, cells=torch.randn(5, 6).double(), id=torch.arange(5))
    output = make_trainer().predict(model, batch)[0]
    assert output["latent_mean"].shape == (5, 2)
    assert output["latent_mean"].dtype == torch.float32
