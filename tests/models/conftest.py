"""A quiet CPU Trainer factory for the model tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., pl.Trainer]:
    def make(max_epochs: int = 5, **kwargs: object) -> pl.Trainer:
        options: dict[str, object] = {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": max_epochs,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "default_root_dir": tmp_path,
            "num_sanity_val_steps": 0,
        }
        options.update(kwargs)
        return pl.Trainer(**options)

    pl.seed_everything(0, verbose=False)
    return make
