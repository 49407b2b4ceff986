"""Tiny synthetic datasets with dict batches for the model tests.

A module with a unique name (not conftest) so test files can import it by name whatever other
test folders hold.
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset


class DictDataset(Dataset):
    """Rows of named tensors; the default collate turns them into dict batches."""

    def __init__(self, **columns: torch.Tensor) -> None:
        lengths = {len(column) for column in columns.values()}
        assert len(lengths) == 1
        self.columns = columns
        self.length = lengths.pop()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: column[index] for name, column in self.columns.items()}


def loader(batch_size: int = 32, shuffle: bool = False, **columns: torch.Tensor) -> DataLoader:
    return DataLoader(DictDataset(**columns), batch_size=batch_size, shuffle=shuffle)


def from_yaml(text: str, **overrides: object):
    """Build an object exactly as the CLI does: YAML -> OmegaConf -> hydra instantiate."""
    config = OmegaConf.merge(OmegaConf.create(text), OmegaConf.create(overrides))
    return instantiate(config)


def blobs(
    n: int = 240, features: int = 8, classes: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Well separated Gaussian clusters: a classifier that learns anything beats chance."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=generator) * 3
    y = torch.randint(0, classes, (n,), generator=generator)
    x = centers[y] + torch.randn(n, features, generator=generator)
    return x, y


def linear_targets(
    n: int = 240, features: int = 6, outputs: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = x @ w + noise``; ``outputs=None`` gives a (B,) target, else (B, outputs)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    w = torch.randn(features, outputs or 1, generator=generator)
    y = x @ w + 0.05 * torch.randn(n, outputs or 1, generator=generator)
    return x, (y.squeeze(1) if outputs is None else y)
