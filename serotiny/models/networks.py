"""Plain ``nn.Module`` networks to plug into the reference LightningModules.

They are small on purpose: good defaults for tabular data and small images, and a starting
point to copy into a project when something bigger is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serotiny.models._checks import ModelConfigError, positive_int, positive_int_tuple

# Names usable in YAML (``activation: gelu``) rather than class paths, to keep configs short.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def _activation(owner: str, name: str) -> type[nn.Module]:
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ModelConfigError(
            f"{owner}: unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name.lower()]


class MLP(nn.Module):
    """A fully connected network: ``Linear -> activation -> dropout`` per hidden layer.

    Args:
        in_features: number of input features. Inputs of shape ``(B, ...)`` are flattened, so
            a ``(B, 1, 8, 8)`` image works with ``in_features: 64``.
        out_features: size of the output, e.g. the number of classes (logits, no softmax).
        hidden_layers: width of each hidden layer; empty for a linear model.
        activation: one of ``relu, leaky_relu, gelu, silu, elu, tanh, sigmoid``.
        dropout: dropout probability after each hidden activation, in ``[0, 1)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_layers: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_features = positive_int(owner, "in_features", in_features)
        self.out_features = positive_int(owner, "out_features", out_features)
        widths = positive_int_tuple(owner, "hidden_layers", hidden_layers)
        activation_class = _activation(owner, activation)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, int | float)
            or not 0 <= dropout < 1
        ):
            raise ModelConfigError(f"{owner}: dropout must be a number in [0, 1), got {dropout!r}")

        layers: list[nn.Module] = []
        previous = self.in_features
        for width in widths:
            layers += [nn.Linear(previous, width), activation_class()]
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            previous = width
        layers.append(nn.Linear(previous, self.out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` (or anything flattening to it) -> ``(B, out_features)``."""
        x = x.flatten(start_dim=1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"MLP expects {self.in_features} input features per sample, got {x.shape[1]}"
            )
        return self.layers(x)


class SmallCNN(nn.Module):
    """A small convolutional classifier for small images (e.g. 8x8 sklearn digits).

    Each entry of ``channels`` adds a ``3x3 conv -> BatchNorm -> ReLU -> 2x2 max-pool`` stage,
    halving the image; a linear layer maps the result to ``num_classes`` logits.

    Inputs may be ``(B, C, H, W)``, ``(B, H, W)`` when ``in_channels`` is 1, or flat
    ``(B, C*H*W)``, as a manifest of pixel columns yields.

    Args:
        in_channels: image channels.
        num_classes: number of output logits.
        image_size: ``H`` (square) or ``[H, W]``; each side must survive the halvings, i.e. be
            at least ``2 ** len(channels)``.
        channels: output channels of each convolution stage.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        channels: Sequence[int] = (16, 32),
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_channels = positive_int(owner, "in_channels", in_channels)
        self.num_classes = positive_int(owner, "num_classes", num_classes)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        size = positive_int_tuple(owner, "image_size", image_size)
        if len(size) != 2:
            raise ModelConfigError(f"{owner}: image_size must be H or [H, W], got {image_size!r}")
        self.image_size: tuple[int, int] = (size[0], size[1])
        widths = positive_int_tuple(owner, "channels", channels, allow_empty=False)
        smallest = 2 ** len(widths)
        if min(self.image_size) < smallest:
            raise ModelConfigError(
                f"{owner}: image_size {list(self.image_size)} is too small for {len(widths)} "
                f"pooling stages (needs at least {smallest} per side); use fewer channels"
            )

        stages: list[nn.Module] = []
        previous = self.in_channels
        for width in widths:
            stages += [
                nn.Conv2d(previous, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*stages)
        height, width_px = (side // smallest for side in self.image_size)
        self.head = nn.Linear(previous * height * width_px, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch (see the class docstring for accepted shapes) -> ``(B, num_classes)``."""
        expected = (self.in_channels, *self.image_size)
        if x.ndim == 2 and x.shape[1] == self.in_channels * self.image_size[0] * self.image_size[1]:
            x = x.reshape(x.shape[0], *expected)
        elif x.ndim == 3 and self.in_channels == 1:
            x = x.unsqueeze(1)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SmallCNN expects images of shape (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        return self.head(self.features(x).flatten(start_dim=1))
