"""ManifestDatamodule: a LightningDataModule over a manifest (a table of values and file paths)."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from serotiny.datamodules.dataset import ManifestDataset, collate_batch
from serotiny.datamodules.loader_options import check_loader_options
from serotiny.datamodules.loader_plan import PREDICT
from serotiny.datamodules.manifest_data import ManifestData
from serotiny.datamodules.resumable import ResumableDataLoader, TrainingOrder
from serotiny.datamodules.worker_choice import WorkersWhileDecoding
from serotiny.io.dataframe.checks import ManifestProblem

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


# The options ManifestDatamodule hands to ManifestData as they are: which rows, in which split.
MANIFEST_OPTIONS = (
    "split_column",
    "split_map",
    "columns",
    "just_inference",
    "id_column",
    "predict_split",
    "cross_validation",
    "split_fractions",
    "split_seed",
    "stratify_column",
    "group_column",
    "split_assignment",
)


class ManifestDatamodule(pl.LightningDataModule):
    """Train, validate, test and predict on a manifest, with batches as dicts of tensors.

    Every batch is a dict keyed by loader name, e.g. ``{"x": float32 (B, F), "y": int64 (B,)}``.
    Numeric loaders are extracted once into contiguous tensors and batches are gathered from
    them with a batch of indices; file loaders read one file per row, in worker processes.

    The manifest is checked in :meth:`setup` (and by :meth:`validate`): a missing column, an
    unknown split value, an empty split, text or NaN in a numeric column, a missing file or a
    duplicate id raises :class:`serotiny.errors.ManifestError` before any training step.

    Args:
        path: a ``.csv``, ``.csv.gz`` or ``.parquet`` manifest with a split column; a folder
            holding one such file per split (``train``, ``valid``, ``test``); or a DataFrame.
            Relative file paths in a manifest are read from the manifest's folder.
        loaders: batch key -> loader, used for every split; or split -> (batch key -> loader)
            to load splits differently (``predict`` falls back to the ``test`` loaders).
        batch_size: rows per batch.
        num_workers: DataLoader worker processes, used when a loader reads files. When every
            loader reads only the manifest, batches are gathered in the main process instead:
            a gather there (0.5x the speed of slicing preloaded tensors) beats any worker, which
            must send every batch between processes (at best ~0.25x, measured on 2 cores).
        split_column: the column naming each row's split (``train``/``valid``/``test``, aliases
            such as ``training``, ``validation``, ``val``, ``testing`` accepted, in any case).
        split_map: other split values (or split file names) -> split, e.g.
            ``{fold_0: train, fold_1: valid}``; map a value to ``null`` to leave its rows out.
        columns: read only these columns (plus the split and id columns).
        just_inference: no split column needed; test and predict use the whole manifest.
        id_column: a column of row ids, checked for duplicates.
        pin_memory: pin batches for faster host-to-GPU copies (default: when CUDA is there).
        shuffle: shuffle the training split each epoch (other splits are never shuffled).
        drop_last: drop the training split's last incomplete batch.
        predict_split: predict on this split only (e.g. ``test``) instead of the whole manifest.
        gather_in_workers: use ``num_workers`` workers even when every loader is in memory.
        cross_validation: ``{folds, fold, stratify_column, group_column, seed}``: pool the
            train and val rows, split them into ``folds`` folds and validate on ``fold``
            (``serotiny train ++cv.folds=K`` sets this for each fold). Test rows stay out;
            with an ``id_column``, rows are drawn in id order, as for ``split_fractions``.
        split_fractions: split by fractions instead of a split column, e.g.
            ``{train: 0.8, valid: 0.1, test: 0.1}`` (missing splits get 0; the fractions
            must add up to 1). Each split gets the floor or ceiling of its share; a split
            with a fraction above 0 that would get no row is an error. The split column,
            if the manifest has one, is not used.
        split_seed: the seed of ``split_fractions`` (default 0; configs usually pass the
            run's ``${seed}``, or a fixed number to keep one split across seeds). With an
            ``id_column``, rows are drawn in id order, so the same ids, column values and
            seed give each id the same split whatever the manifest's row order; without
            one, row order counts too.
        stratify_column: with ``split_fractions``, keep this column's class proportions
            alike in every split (as far as the counts allow).
        group_column: with ``split_fractions``, keep the rows sharing this column's value
            (a subject, a plate) in one split; the fractions then count groups. With
            ``stratify_column`` too, whole groups are stratified: the groups are cut into
            K folds of alike classes (K <= 20, the fewest that meet the fractions) and each
            split gets whole folds, so fractions are met to the nearest 1/K.
        split_assignment: a ``.csv``/``.parquet`` file saved by
            :meth:`save_split_assignment`: every row takes the split recorded for its id,
            whatever ``split_fractions`` or the split column say (cross-validation still
            re-folds the train and val rows). Rows the file does not list, added to the
            manifest since, are in no split; ids it lists that the manifest lacks are an
            error. Without ``id_column``, rows are matched by position.
        **dataloader_kwargs: passed to every ``torch.utils.data.DataLoader``
            (``persistent_workers``, ``prefetch_factor``, ``multiprocessing_context``, ...).
            A ``collate_fn`` receives the dict batch already built.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | pd.DataFrame,
        loaders: Mapping[str, Any],
        batch_size: int = 32,
        num_workers: int = 0,
        split_column: str | None = "split",
        split_map: Mapping[str, str | None] | None = None,
        columns: Sequence[str] | None = None,
        just_inference: bool = False,
        id_column: str | None = None,
        pin_memory: bool | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        predict_split: str | None = None,
        gather_in_workers: bool = False,
        cross_validation: Mapping[str, Any] | None = None,
        split_fractions: Mapping[str, float] | None = None,
        split_seed: int | None = None,
        stratify_column: str | None = None,
        group_column: str | None = None,
        split_assignment: str | os.PathLike[str] | None = None,
        **dataloader_kwargs: Any,
    ) -> None:
        super().__init__()
        own = inspect.signature(ManifestDatamodule.__init__).parameters
        check_loader_options(type(self).__name__, own, batch_size, num_workers, dataloader_kwargs)
        options = {name: value for name, value in locals().items() if name in MANIFEST_OPTIONS}
        self.data = ManifestData(path, loaders, **options)
        for name, value in options.items():  # kept as given, for whoever inspects the module
            setattr(self, name, value)
        self.path = path
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.gather_in_workers = gather_in_workers
        self.training_order = TrainingOrder()
        self.dataloader_kwargs = dataloader_kwargs

    # Checks --------------------------------------------------------------------------------

    def problems(self, stage: str | None = None) -> list[ManifestProblem]:
        """All manifest problems for ``stage`` (``fit``, ``validate``, ``test``, ``predict``, or
        None as in :meth:`validate`), each with a one-line ``message``. Does not raise."""
        return self.data.problems(stage)

    def validate(self, stage: str | None = None) -> None:
        """Check the manifest for ``stage`` and raise :class:`serotiny.errors.ManifestError`
        with a one-line message for the first problem (its ``problems`` attribute lists all).

        With no stage, checks what training needs (non-empty ``train`` and ``val`` unless
        ``just_inference``) plus every loader on every split that has rows; an empty ``test``
        split is reported by ``validate("test")`` (and by ``setup("test")``)."""
        self.data.validate(stage)

    # The split assignment -------------------------------------------------------------------

    def split_assignment_table(self) -> pd.DataFrame:
        """Which split each row is in: a DataFrame of the id column (``row``, the position,
        without ``id_column``) and ``split`` (``train``, ``val``, ``test``; empty for a row
        in no split). Cross-validation's fold is already applied.

        Example::

            datamodule.split_assignment_table()["split"].value_counts()
        """
        return self.data.assignment().to_pandas()

    def save_split_assignment(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`split_assignment_table` to ``path`` (``.csv`` or ``.parquet``), e.g. to
        keep it with a run; ``split_assignment: that/path`` gives the same splits back."""
        return self.data.save_assignment(path)

    def use_split_assignment(self, path: str | os.PathLike[str]) -> None:
        """As if built with ``split_assignment=path``; call it before :meth:`setup`."""
        self.split_assignment = path
        self.data.use_assignment(path)

    def setup(self, stage: str | None = None) -> None:
        """Read and check the manifest, then extract the loaders' data (once per split)."""
        self.data.prepare(stage if stage is not None else "fit")

    # DataLoaders ---------------------------------------------------------------------------

    def make_dataloader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        """The DataLoader of ``split``; override to change how every loader is built.

        The training loader is a :class:`ResumableDataLoader`: a run stopped mid-epoch
        resumes from its checkpoint with the batches an uninterrupted run would have seen.
        """
        dataset: ManifestDataset = self.data.dataset(split)
        dataset.by_reference = "collate_fn" not in self.dataloader_kwargs
        kwargs = {"collate_fn": collate_batch, **self.dataloader_kwargs}
        num_workers = self.num_workers_for(dataset)
        if num_workers == 0:
            # Worker-only options would make DataLoader refuse num_workers=0.
            for option in ("prefetch_factor", "persistent_workers", "multiprocessing_context"):
                kwargs.pop(option, None)
        kwargs.update(
            batch_size=self.batch_size,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=self.pin_memory,
        )
        if split == "train":
            return ResumableDataLoader(
                dataset,
                shuffle=shuffle,
                order=self.training_order,
                position=self.training_position,
                **kwargs,
            )
        return WorkersWhileDecoding(dataset, shuffle=shuffle, **kwargs)

    def training_position(self, batches_per_epoch: int) -> tuple[int, int] | None:
        """The epoch the next training iterator serves, and how many of its batches training
        has finished, read from the Trainer (None outside ``fit``).

        Lightning makes the resumed iterator before it settles its counters, so this reads
        the raw ones a checkpoint restored: an epoch was in progress when more epochs had
        started than been processed. A checkpoint written after an epoch's last batch but
        before its end (e.g. on SIGTERM) restarts into the next epoch.
        """
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return None
        epochs = trainer.fit_loop.epoch_progress.total
        if epochs.processed >= epochs.started:  # between epochs: the next one starts afresh
            return epochs.processed, 0
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        limit = trainer.limit_train_batches
        # Lightning's own rule for how many batches an epoch has (limit_train_batches).
        per_epoch = (
            min(batches_per_epoch, limit)
            if isinstance(limit, int)
            else int(batches_per_epoch * limit)
        )
        if done >= per_epoch:
            return epochs.completed + 1, 0
        return epochs.completed, done

    def num_workers_for(self, dataset: ManifestDataset) -> int:
        """Worker processes for ``dataset``: none when all its loaders are in memory."""
        if self.num_workers and dataset.in_memory and not self.gather_in_workers:
            log.info(
                "ManifestDatamodule: every loader reads the manifest only, so batches are "
                "gathered in the main process (num_workers=%d unused; gather_in_workers=True "
                "forces them)",
                self.num_workers,
            )
            return 0
        return self.num_workers

    def train_dataloader(self) -> ResumableDataLoader:
        return self.make_dataloader("train", shuffle=self.shuffle, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self.make_dataloader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self.make_dataloader("test", shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        """Rows in manifest order (never shuffled), so prediction ``i`` is row ``i``."""
        return self.make_dataloader(PREDICT, shuffle=False, drop_last=False)

    def predict_rows(self) -> Any:
        """Positions in the manifest of the rows :meth:`predict_dataloader` yields, in order."""
        return self.data.split_rows(PREDICT)
