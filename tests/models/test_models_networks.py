"""MLP and SmallCNN: shapes, input handling, and a SmallCNN that learns sklearn digits."""

from __future__ import annotations

import pytest
import torch
from model_helpers import from_yaml, loader
from sklearn.datasets import load_digits

from serotiny.models import MLP, SmallCNN


def test_mlp_layers_activation_and_dropout():
    mlp = MLP(in_features=4, out_features=3, hidden_layers=[8, 5], activation="gelu", dropout=0.2)
    kinds = [type(layer).__name__ for layer in mlp.layers]
    assert kinds == ["Linear", "GELU", "Dropout", "Linear", "GELU", "Dropout", "Linear"]
    assert mlp(torch.randn(7, 4)).shape == (7, 3)
    # Image-shaped input is flattened.
    assert mlp(torch.randn(7, 1, 2, 2)).shape == (7, 3)


def test_mlp_without_hidden_layers_is_linear():
    mlp = MLP(3, 1, hidden_layers=[])
    assert [type(layer).__name__ for layer in mlp.layers] == ["Linear"]


def test_mlp_rejects_wrong_feature_count():
    with pytest.raises(ValueError, match="expects 4 input features per sample, got 5"):
        MLP(4, 2)(torch.randn(2, 5))


@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (6, 8, 8), (6, 64)])
def test_small_cnn_accepts_image_flat_and_channelless_input(shape):
    cnn = SmallCNN(in_channels=1, num_classes=10, image_size=8)
    assert cnn(torch.randn(*shape)).shape == (6, 10)


def test_small_cnn_rectangular_multichannel():
    cnn = SmallCNN(in_channels=3, num_classes=4, image_size=[8, 12], channels=[4, 4, 4])
    assert cnn(torch.randn(2, 3, 8, 12)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, 8, 12\)"):
        cnn(torch.randn(2, 3, 12, 8))


def test_small_cnn_learns_digits(make_trainer):
    model = from_yaml(
        """
        _target_: serotiny.models.BasicModel
        x_label: image
        y_label: digit
        num_classes: 10
        network:
          _target_: serotiny.models.SmallCNN
          in_channels: 1
          num_classes: 10
          image_size: 8
        loss:
          _target_: torch.nn.CrossEntropyLoss
        optimizer:
          _partial_: true
          _target_: torch.optim.Adam
          lr: 0.01
        """
    )
    digits = load_digits()
    # Flat pixel columns (as a manifest gives them), scaled to [0, 1]; 0.6k train, 0.2k val.
    images = torch.tensor(digits.data[:800] / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target[:800])
    train = loader(shuffle=True, image=images[:600], digit=labels[:600])
    val = loader(batch_size=200, image=images[600:], digit=labels[600:])
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, train, val)
    assert trainer.callback_metrics["val_accuracy"] > 0.8  # chance is 0.1
