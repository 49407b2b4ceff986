"""Checkpoints load safely whatever a model keeps in them, and a resume never silently starts
over or repeats a step (issue 11).

* serotiny's checkpoints hold plain data and tensors: a model's hyperparameters that are
  objects (an optimizer partial, a module) are kept as text, so ``torch.load(weights_only=
  True)`` opens every checkpoint; a model that stores other objects needs its project to
  trust its checkpoints (``checkpoint.trusted``), and says so in one line otherwise;
* a checkpoint written before that (holding such objects) is one line naming the setting,
  in test, predict, a notebook and a resume;
* a damaged ``last`` falls back to ``best`` without logging any step twice; a run whose
  checkpoints are all damaged is one line, not a fresh start.
"""

from __future__ import annotations

import io
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from inprocess import Workspace
from model_corpus import add_model_corpus
from omegaconf import DictConfig, OmegaConf

from serotiny.errors import SerotinyUserError
from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint
from serotiny.trainer_parts.checkpoint_files import UnsafeCheckpointError
from serotiny.trainer_parts.plain_checkpoint import AS_TEXT_KEY, make_hyperparameters_plain

EPOCHS = 4


class Color(StrEnum):
    red = "red"


def test_hyperparameters_become_plain_data() -> None:
    partial = instantiate({"_partial_": True, "_target_": "torch.optim.Adam", "lr": 0.01})
    checkpoint = {
        "state_dict": {"w": torch.ones(2)},
        "hyper_parameters": {
            "optimizer": partial,
            "lr": 0.1,
            "color": Color.red,
            "layers": (8, [16, None]),
            "network": torch.nn.Linear(2, 2),
            "config": OmegaConf.create({"a": 1, "b": [1, "x"]}),
            "weights": torch.arange(3),
            "scale": np.float32(0.5),
        },
        "hparams_type": DictConfig,
        "datamodule_hyper_parameters": {"loader": object()},
    }
    as_text = make_hyperparameters_plain(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)

    assert as_text == loaded[AS_TEXT_KEY]
    assert sorted(as_text) == [
        "datamodule_hyper_parameters.loader",
        "hyper_parameters.color",
        "hyper_parameters.network",
        "hyper_parameters.optimizer",
    ]
    hparams = loaded["hyper_parameters"]
    assert "torch.optim.adam.Adam" in hparams["optimizer"] and "lr=0.01" in hparams["optimizer"]
    assert "Linear(in_features=2" in hparams["network"]
    assert hparams["lr"] == 0.1 and hparams["layers"] == (8, [16, None])
    assert hparams["config"] == {"a": 1, "b": [1, "x"]}
    assert hparams["weights"].equal(torch.arange(3)) and hparams["scale"] == 0.5
    assert loaded["hparams_type"] == "omegaconf.dictconfig.DictConfig"


def artifacts(workspace: Workspace, name: str) -> Path:
    run = workspace.run_named(name)
    return Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoints"


def histories(workspace: Workspace, run_id: str) -> dict[str, list[tuple[int, float]]]:
    client = workspace.client()
    return {
        name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]
        for name in ("train_loss", "val_loss")
    }


def refused(workspace: Workspace, command: str, *overrides: str) -> str:
    with pytest.raises(SerotinyUserError) as error:
        workspace.run(command, *overrides)
    message = str(error.value)
    assert "\n" not in message, message
    return message


@pytest.mark.slow
def test_a_damaged_last_falls_back_to_best_without_repeating_a_step(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    # checkpoint.mode=max on a falling val_loss: best is the first epoch's, so the fallback
    # trains three epochs again, whose metrics MLflow holds already.
    train = (
        "train",
        "trainer/callbacks=none",
        f"++trainer.max_epochs={EPOCHS}",
        "++checkpoint.mode=max",
        "++mlflow.run_name=fall",
    )
    workspace.run(*train)
    run = workspace.run_named("fall")
    folder = artifacts(workspace, "fall")
    finished = torch.load(folder / "last.ckpt", weights_only=True)
    assert torch.load(folder / "best.ckpt", weights_only=True)["epoch"] < finished["epoch"]
    before = histories(workspace, run.info.run_id)
    assert all(len(steps) == EPOCHS for steps in before.values()), before
    workspace.client().set_terminated(run.info.run_id, "FAILED")  # as if it had crashed
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")

    workspace.run(*train)
    assert "checkpoint last of run" in caplog.text and "unreadable" in caplog.text
    assert workspace.client().get_run(run.info.run_id).info.status == "FINISHED"
    assert histories(workspace, run.info.run_id) == before  # every step once, none again
    rewritten = torch.load(folder / "last.ckpt", weights_only=True)
    assert rewritten["epoch"] == finished["epoch"]
    for key, value in finished["state_dict"].items():  # trained again to the same weights
        torch.testing.assert_close(rewritten["state_dict"][key], value, rtol=0, atol=0)


@pytest.mark.slow
def test_a_run_whose_checkpoints_are_all_damaged_is_not_trained_over(
    workspace: Workspace,
) -> None:
    train = ("train", "trainer/callbacks=none", "++trainer.max_epochs=2", "++mlflow.run_name=lost")
    workspace.run(*train)
    run = workspace.run_named("lost")
    before = histories(workspace, run.info.run_id)
    workspace.client().set_terminated(run.info.run_id, "FAILED")
    for name in ("last", "best"):
        (artifacts(workspace, "lost") / f"{name}.ckpt").write_bytes(b"\x00 damaged")

    line = refused(workspace, *train)
    assert "holds checkpoints but none loads" in line
    assert "last.ckpt" in line and "best.ckpt" in line and "new ++mlflow.run_name" in line
    assert histories(workspace, run.info.run_id) == before
    assert workspace.client().get_run(run.info.run_id).info.status == "FAILED"


@pytest.mark.slow
def test_checkpoints_with_objects_from_before_name_the_trust_setting(
    workspace: Workspace,
) -> None:
    add_model_corpus(workspace.root)
    train = (
        "train",
        "model=corpus_partial_optimizer",
        "trainer/callbacks=none",
        "++trainer.max_epochs=2",
        "++mlflow.run_name=old",
    )
    workspace.run(*train)
    run = workspace.run_named("old")
    folder = artifacts(workspace, "old")
    # Today's checkpoints keep the partials as text, and say so.
    state = torch.load(folder / "best.ckpt", weights_only=True)
    assert state[AS_TEXT_KEY] == ["hyper_parameters.optimizer", "hyper_parameters.scheduler"]
    assert "torch.optim.adam.Adam" in state["hyper_parameters"]["optimizer"]
    # Checkpoints as serotiny wrote them before: the partial itself in the hyperparameters.
    partial = instantiate({"_partial_": True, "_target_": "torch.optim.Adam", "lr": 0.01})
    for name in ("best", "last"):
        state = torch.load(folder / f"{name}.ckpt", weights_only=True)
        state["hyper_parameters"]["optimizer"] = partial
        del state[AS_TEXT_KEY]
        # A file of its own: best and last of the same step may be one file under two names.
        (folder / f"{name}.ckpt").unlink()
        torch.save(state, folder / f"{name}.ckpt")

    for command in ("test", "predict"):
        line = refused(workspace, command, "++mlflow.run_name=old")
        assert "++checkpoint.trusted=true" in line and "_DeferredTarget" in line, line
    with pytest.raises(UnsafeCheckpointError, match="trusted=True"):
        load_model_from_checkpoint(workspace.uri, run_name="old", experiment_name="default")
    assert "test_loss" in workspace.run(
        "test", "++mlflow.run_name=old", "++checkpoint.trusted=true"
    )
    model = load_model_from_checkpoint(
        workspace.uri, run_name="old", experiment_name="default", trusted=True
    )
    assert type(model).__name__ == "PartialOptimizer"

    # A resume of such a run: one line, not a fresh start; trusted, it resumes.
    workspace.client().set_terminated(run.info.run_id, "FAILED")
    before = histories(workspace, run.info.run_id)
    assert "++checkpoint.trusted=true" in refused(workspace, *train)
    assert histories(workspace, run.info.run_id) == before
    workspace.run(*train, "++checkpoint.trusted=true")  # no config drift: trust is no change
    assert workspace.client().get_run(run.info.run_id).info.status == "FINISHED"
    assert histories(workspace, run.info.run_id) == before


@pytest.mark.slow
def test_a_project_that_trusts_its_checkpoints_keeps_objects_in_them(
    workspace: Workspace,
) -> None:
    add_model_corpus(workspace.root)
    train = (
        "train",
        "model=corpus_stores_objects",
        "trainer/callbacks=none",
        "++trainer.max_epochs=2",
        "++mlflow.run_name=objects",
    )
    line = refused(workspace, *train)  # found before the run exists
    assert "StoresObjects" in line and "on_save_checkpoint" in line
    assert "fractions.Fraction" in line and "++checkpoint.trusted=true" in line
    assert "objects" not in workspace.runs()

    workspace.run(*train, "++checkpoint.trusted=true")
    run = workspace.run_named("objects")
    assert run.info.status == "FINISHED"
    steps = [step for step, _ in histories(workspace, run.info.run_id)["val_loss"]]
    assert steps == sorted(set(steps)) and len(steps) == 2
    # The run says it trusts its checkpoints: test, predict and notebooks read them in full
    # without being told again.
    assert "test_loss" in workspace.run("test", "++mlflow.run_name=objects")
    assert workspace.run("predict", "++mlflow.run_name=objects").exists()
    model = load_model_from_checkpoint(workspace.uri, run_name="objects", experiment_name="default")
    assert isinstance(model.batches, Fraction) and model.batches > 0  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_callback_keeping_objects_is_refused_at_the_first_checkpoint(
    workspace: Workspace,
) -> None:
    add_model_corpus(workspace.root)
    train = (
        "train",
        "trainer/callbacks=corpus_objects",
        "++trainer.max_epochs=2",
        "++mlflow.run_name=callback",
    )
    line = refused(workspace, *train)
    assert "fractions.Fraction" in line and "++checkpoint.trusted=true" in line
    run = workspace.run_named("callback")
    assert run.info.status == "FAILED"
    assert not workspace.client().list_artifacts(run.info.run_id, "checkpoints")
    assert not list(workspace.outputs.rglob("*.partial"))  # nothing half-written left
    workspace.run(*train, "++checkpoint.trusted=true")  # the same run, trusted: no drift
    assert workspace.client().get_run(run.info.run_id).info.status == "FINISHED"
