"""The checks made before a training's run exists (``serotiny.commands.preflight``) leave
no trace on the training, and a run that failed before its first checkpoint starts cleanly
under the fixed command."""

from __future__ import annotations

import pytest
import torch
from inprocess import Workspace
from mistake_projects import add_configs, add_images
from omegaconf import OmegaConf

from serotiny.errors import ManifestError

ARGUMENTS = (
    "train",
    "++trainer.max_epochs=2",
    "++trainer.deterministic=true",
    "++model.network.dropout=0.3",  # the model draws random numbers in training_step
    "print_config=false",
)


def final_state(workspace: Workspace, name: str) -> dict[str, torch.Tensor]:
    client = workspace.client()
    run = workspace.run_named(name)
    path = client.download_artifacts(run.info.run_id, "checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)["state_dict"]


def test_the_preflight_changes_nothing_training_does(workspace: Workspace) -> None:
    """The first batch went through a copy of the model with the random generators put
    back: the same seed trains to the same weights, bit for bit, with or without it."""
    workspace.run(*ARGUMENTS, "++mlflow.run_name=checked")
    workspace.run(*ARGUMENTS, "++mlflow.run_name=unchecked", "preflight=false")
    checked, unchecked = final_state(workspace, "checked"), final_state(workspace, "unchecked")
    assert checked.keys() == unchecked.keys()
    for key, value in checked.items():
        assert torch.equal(value, unchecked[key]), key
    history = {
        name: [
            m.value
            for m in workspace.client().get_metric_history(
                workspace.run_named(name).info.run_id, "val_loss"
            )
        ]
        for name in ("checked", "unchecked")
    }
    assert history["checked"] == history["unchecked"] and len(history["checked"]) == 2


def test_a_run_that_failed_before_its_first_checkpoint_restarts_cleanly(
    workspace: Workspace,
) -> None:
    """An image cut short, past the first batch, fails the run in its first epoch; rerun
    with the image left out (a changed config), the same run trains from the start, the
    change recorded, instead of being refused as config drift."""
    add_images(workspace.root / "data")
    add_configs(workspace.root / "a_tiny_project" / "config")
    data = workspace.root / "data"
    common = ("data=images", "model=img_cnn", "++trainer.max_epochs=1", "++mlflow.run_name=img")
    with pytest.raises(ManifestError, match="cut_short.png"):
        workspace.run("train", *common, f"++data.path={data}/images_cut.csv")
    failed = workspace.run_named("img")
    assert failed.info.status == "FAILED"
    workspace.run("train", *common, f"++data.path={data}/images.csv")
    run = workspace.run_named("img")
    assert run.info.run_id == failed.info.run_id and run.info.status == "FINISHED"
    changes = [k for k in run.data.tags if k.startswith("serotiny.config_change.")]
    assert len(changes) == 1 and "data.path" in run.data.tags[changes[0]]
    client = workspace.client()
    stored = OmegaConf.load(client.download_artifacts(run.info.run_id, "config/train.yaml"))
    assert stored.data.path == f"{data}/images.csv"
    epochs = client.get_metric_history(run.info.run_id, "val_loss")
    assert len(epochs) == 1
