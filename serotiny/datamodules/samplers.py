"""A shuffling sampler whose order is a function of (seed, epoch), so runs can resume.

PyTorch's ``RandomSampler`` draws each epoch's order from the global generator, so a run
resumed in the middle of an epoch cannot see the rest of the order it was interrupted in.
This sampler derives the order from its seed and the epoch (Lightning calls ``set_epoch``
on samplers that have it), and ``fast_forward`` skips the samples already trained on.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableRandomSampler(Sampler[int]):
    """Random order per epoch, reproducible from ``seed`` and the epoch number.

    Args:
        num_samples: size of the dataset.
        seed: base seed; defaults to torch's initial seed (set by ``seed_everything``).
    """

    def __init__(self, num_samples: int, seed: int | None = None) -> None:
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        self.num_samples = num_samples
        self.seed = int(torch.initial_seed() if seed is None else seed) % (2**63)
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def fast_forward(self, num_samples: int) -> None:
        """Make the next iteration skip the first ``num_samples`` of its epoch's order."""
        self._skip = max(0, int(num_samples))

    def order(self, epoch: int) -> torch.Tensor:
        """The full order of ``epoch``."""
        generator = torch.Generator()
        generator.manual_seed((self.seed + 1_000_003 * epoch) % (2**63))
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        yield from self.order(self.epoch)[skip:].tolist()

    def __len__(self) -> int:
        return self.num_samples
