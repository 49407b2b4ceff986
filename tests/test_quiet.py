"""The known-noise filters (serotiny/cli/quiet.py), in this process: each drops its message
from its source only, what else the same logger says still passes, and ``--verbose``
(``SEROTINY_VERBOSE=1``) undoes them. The messages are made by the real libraries."""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.utilities._pytree import _tree_flatten
from lightning_utilities.core import rank_zero

from serotiny.cli.quiet import LOGGED_NOISE, VERBOSE_ENV, DropNoise, quiet_known_noise
from serotiny.tracking.store import connect


class Collect(logging.Handler):
    """Keeps the messages of the records that reach it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collected() -> Iterator[Collect]:
    """What Lightning's and MLflow's loggers print (they do not propagate to the root)."""
    handler = Collect()
    names = (*LIGHTNING_PACKAGES, "mlflow")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


@pytest.fixture(autouse=True)
def filters_removed_afterwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts and ends with none of the filters (warnings' own are restored by
    ``catch_warnings`` in the tests)."""
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    yield
    for name in {noise.logger for noise in LOGGED_NOISE}:
        logger = logging.getLogger(name)
        for installed in [f for f in logger.filters if isinstance(f, DropNoise)]:
            logger.removeFilter(installed)


def lightning_says(tmp_path: Path) -> list[warnings.WarningMessage]:
    """Build a Trainer and flatten a batch as Lightning does; the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what Python shows once per place, every time here
        quiet_known_noise()  # after catch_warnings: its filters live inside the block
        Trainer(logger=False, default_root_dir=tmp_path, accelerator="cpu")
        _tree_flatten(1.0)
    return caught


#: Each, when imported, has Lightning's rank-zero messages (the advert among them) go through
#: its own logger; the one imported last speaks. A project's callback written against
#: ``pytorch_lightning`` imports that package after serotiny imported ``lightning.pytorch``.
LIGHTNING_PACKAGES = (
    "lightning.pytorch",
    "pytorch_lightning",
    "lightning.fabric",
    "lightning_fabric",
)


@pytest.fixture(params=LIGHTNING_PACKAGES)
def imported_last(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Lightning's rank-zero messages as they are when ``request.param`` was imported last."""
    module = importlib.import_module(f"{request.param}.utilities.rank_zero")
    # What that import did the first time; done again here, whatever this process imported.
    monkeypatch.setattr(rank_zero, "log", logging.getLogger(module.__name__))
    assert rank_zero.log.name == f"{request.param}.utilities.rank_zero"
    return request.param


def test_lightnings_advert_and_deprecation_are_dropped_the_rest_kept(
    collected: Collect, tmp_path: Path, imported_last: str
) -> None:
    caught = lightning_says(tmp_path)
    assert not any("litlogger" in message for message in collected.messages)
    assert any(message.startswith("GPU available") for message in collected.messages)
    assert not any("LeafSpec" in str(warning.message) for warning in caught)
    if not os.environ.get("SLURM_JOB_ID"):  # inside a job, the srun hint may be right
        assert not any("`srun` command" in str(warning.message) for warning in caught)


def test_the_same_warning_from_elsewhere_is_kept() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        message = "`isinstance(treespec, LeafSpec)` is deprecated, use ... instead."
        warnings.warn_explicit(message, FutureWarning, "user_code.py", 1, module="user_code")
    assert [str(warning.message) for warning in caught] == [message]


def test_mlflows_schema_lines_are_dropped(collected: Collect, tmp_path: Path) -> None:
    quiet_known_noise()
    connect(f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert not any("database tables" in message for message in collected.messages)


def test_verbose_shows_everything_again(
    collected: Collect, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, imported_last: str
) -> None:
    quiet_known_noise()  # installed first, as a default command in this process would
    monkeypatch.setenv(VERBOSE_ENV, "1")
    caught = lightning_says(tmp_path)
    connect(f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert any("litlogger" in message for message in collected.messages)
    assert any("Creating initial MLflow database tables" in m for m in collected.messages)
    assert any("LeafSpec" in str(warning.message) for warning in caught)
    assert logging.getLogger("serotiny").getEffectiveLevel() == logging.DEBUG
    logging.getLogger("serotiny").setLevel(logging.NOTSET)
