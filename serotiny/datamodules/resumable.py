"""A training DataLoader that resumes part way through an epoch, in the same order.

Each epoch's order (and the seed of its workers) comes from a generator seeded with
``seed + epoch``, where ``seed`` is drawn once from torch's global RNG (so ``seed_everything``
decides it). An iterator made for epoch ``e`` therefore always yields epoch ``e``'s order, no
matter how many iterators were made before it, and a resumed epoch skips the batches training
had finished. Inside a Trainer, the epoch and the finished batches are read from its progress
when the iterator is made: Lightning restores that progress from the checkpoint first, and
counts finished batches exactly, where batches handed out run ahead by its prefetch.

Lightning saves ``state_dict()`` of every training DataLoader in each checkpoint and hands it
back to ``load_state_dict()`` before making the resumed iterator: that carries the seed into
the new process. Without such a loader, Lightning restarts an interrupted epoch's data in a
new order. Outside a Trainer, the state also records the epoch and the batches yielded.

Under DDP, Lightning replaces these samplers by its ``DistributedSampler``, which shards as
usual but restarts an interrupted epoch from its beginning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, RandomSampler, SequentialSampler

from serotiny.datamodules.worker_choice import WorkersWhileDecoding

log = logging.getLogger(__name__)

# Given the loader's batches per epoch: the epoch its next iterator serves and the batches of
# it training has finished, or None outside a Trainer's fit.
Position = Callable[[int], tuple[int, int] | None]


@dataclass
class TrainingOrder:
    """The seed of the training order, shared by every training loader of one datamodule (so a
    loader rebuilt by ``reload_dataloaders_every_n_epochs`` keeps the order)."""

    seed: int | None = None

    def epoch_seed(self, epoch: int) -> int:
        if self.seed is None:
            self.seed = int(torch.empty((), dtype=torch.int64).random_().item())
        return (self.seed + epoch) % 2**64


class _SkipFirst:
    """Sampler behaviour shared by both orders: skip the first ``skip`` rows, once."""

    skip: int = 0

    def _after_skip(self, order: torch.Tensor) -> Iterator[int]:
        skip, self.skip = self.skip, 0
        yield from order[skip:].tolist()


class ResumableRandomSampler(_SkipFirst, RandomSampler):
    """A RandomSampler (so Lightning still knows the loader shuffles) that can start part way."""

    def __iter__(self) -> Iterator[int]:
        yield from self._after_skip(torch.randperm(len(self.data_source), generator=self.generator))


class ResumableSequentialSampler(_SkipFirst, SequentialSampler):
    """A SequentialSampler that can start part way."""

    def __iter__(self) -> Iterator[int]:
        yield from self._after_skip(torch.arange(len(self.data_source)))


class ResumableDataLoader(WorkersWhileDecoding):
    """A DataLoader over ``dataset`` whose order and position survive a restart.

    Args:
        dataset: a map-style dataset.
        shuffle: a new random order each epoch (else the dataset's order).
        order: the seed holder (a new one by default).
        position: where the Trainer is (see ``Position``; the module doc says why).
        sampler: leave unset; Lightning passes its DistributedSampler here under DDP.
        generator: the generator re-seeded each epoch (a new one by default).
        **kwargs: any other ``DataLoader`` argument except ``batch_sampler``.
    """

    def __init__(
        self,
        dataset: Dataset,
        shuffle: bool = False,
        order: TrainingOrder | None = None,
        position: Position | None = None,
        sampler: Any = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        generator = generator if generator is not None else torch.Generator()
        # A sampler given here is Lightning's DistributedSampler, injected under DDP by
        # rebuilding this loader with the arguments it was made with.
        if sampler is None and shuffle:
            sampler = ResumableRandomSampler(dataset, generator=generator)
        elif sampler is None:
            sampler = ResumableSequentialSampler(dataset)
        super().__init__(dataset, sampler=sampler, generator=generator, **kwargs)
        self.order = order if order is not None else TrainingOrder()
        self.position = position
        self._next_epoch = 0
        self._pending: tuple[int, int] | None = None  # (epoch, batches) from load_state_dict
        self._epoch = 0
        self._yielded = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator yield ``epoch``'s order (outside a Trainer)."""
        self._next_epoch = epoch

    def _position(self) -> tuple[int, int]:
        trainer_position = self.position(len(self)) if self.position is not None else None
        if trainer_position is not None:
            return trainer_position
        if self._pending is not None:
            position, self._pending = self._pending, None
            return position
        return self._next_epoch, 0

    def __iter__(self) -> Iterator[Any]:
        epoch, skip = self._position()
        # One generator per epoch draws the workers' seed and the order: replayable from here.
        self.generator.manual_seed(self.order.epoch_seed(epoch))
        if isinstance(self.sampler, _SkipFirst):
            self.sampler.skip = skip * (self.batch_size or 1)
        else:
            skip = 0
        self._epoch, self._next_epoch = epoch, epoch + 1
        return self._counted(super().__iter__(), skip)

    def _counted(self, batches: Iterator[Any], skipped: int) -> Iterator[Any]:
        self._yielded = skipped
        for batch in batches:
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The order's seed, and (for use outside a Trainer) the epoch and batches yielded."""
        if self.order.seed is None:
            return {}
        return {
            "seed": self.order.seed,
            "epoch": self._epoch,
            "batches": self._yielded,
            "rows": len(self.dataset),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the order of ``state_dict``'s loader, after the batches it had yielded."""
        if not state_dict:
            return
        self.order.seed = state_dict["seed"]
        epoch, batches = state_dict["epoch"], state_dict["batches"]
        if (state_dict["rows"], state_dict["batch_size"]) != (len(self.dataset), self.batch_size):
            log.warning(
                "the training split or batch size changed since the checkpoint (%s rows in "
                "batches of %s, now %s in batches of %s): restarting the interrupted epoch",
                state_dict["rows"],
                state_dict["batch_size"],
                len(self.dataset),
                self.batch_size,
            )
            batches = 0
        if batches >= len(self):
            epoch, batches = epoch + 1, 0
        self._pending = (epoch, batches)
