"""Any reasonable LightningModule trains, resumes exactly, tests, predicts and loads (issue 11).

For each model of the corpus (``model_corpus.py``: partials in hparams, nested networks,
module arguments, no hparams, custom checkpoint state, manual optimization with two
optimizers): train in a real process that is SIGKILLed once its first checkpoint is stored,
rerun the same command (in this process), and check the run is the same one, its final
weights are bit for bit those of an uninterrupted training of the same config, and its
metric history holds every step once; then ``serotiny test``, ``serotiny predict``, and a
notebook's ``load_model_from_checkpoint``, whose predictions must be the predict table's.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pandas as pd
import pytest
import torch
from forked_cli import ForkedCli
from hydra.utils import instantiate
from inprocess import Workspace
from model_corpus import CORPUS, SIGKILL_ENV, CorpusModel, add_model_corpus

from serotiny.ml_ops.mlflow_utils import load_model_from_checkpoint

pytestmark = pytest.mark.slow
EPOCHS = 4


@pytest.fixture(scope="session")
def forked_cli() -> Iterator[ForkedCli]:
    """One CLI server per test process (session-scoped, so pytest-xdist may spread the
    corpus over its workers)."""
    server = ForkedCli()
    yield server
    server.close()


def train_arguments(model: CorpusModel, name: str) -> list[str]:
    return [
        "train",
        model.override,
        "trainer/callbacks=corpus",
        f"++trainer.max_epochs={EPOCHS}",
        "++trainer.deterministic=true",
        "print_config=false",
        f"++mlflow.run_name={name}",
    ]


def final_weights(workspace: Workspace, run_id: str) -> dict[str, torch.Tensor]:
    path = workspace.client().download_artifacts(run_id, "checkpoints/last.ckpt")
    return torch.load(path, weights_only=True)["state_dict"]


def metric_steps(workspace: Workspace, run_id: str, metric: str) -> list[int]:
    return [m.step for m in workspace.client().get_metric_history(run_id, metric)]


def notebook_predictions(workspace: Workspace, model: torch.nn.Module) -> pd.DataFrame:
    """The loaded model's logits on the predict set, by row id, as a notebook gets them."""
    datamodule = instantiate(workspace.compose("predict").data)
    datamodule.setup("predict")
    rows = []
    with torch.no_grad():
        for index, batch in enumerate(datamodule.predict_dataloader()):
            logits = model.predict_step(batch, index)["logits"]
            for row_id, values in zip(batch["id"], logits.tolist(), strict=True):
                rows.append({"id": row_id, **{f"logits_{k}": v for k, v in enumerate(values)}})
    return pd.DataFrame(rows).set_index("id")


@pytest.mark.parametrize("model", CORPUS, ids=[model.name for model in CORPUS])
def test_corpus_model_resumes_tests_predicts_and_loads(
    workspace: Workspace,
    forked_cli: ForkedCli,
    model: CorpusModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_model_corpus(workspace.root)
    killed = forked_cli.run(
        *train_arguments(model, "crashy"),
        cwd=workspace.root,
        **{SIGKILL_ENV: str(workspace.root / "mlartifacts")},
    )
    assert killed.returncode == -signal.SIGKILL, killed.output[-3000:]
    interrupted = workspace.run_named("crashy")
    assert interrupted.info.status == "RUNNING"  # nobody told MLflow: a crash

    workspace.run(*train_arguments(model, "crashy"))  # the same command again
    assert f"resuming run 'crashy' ({interrupted.info.run_id})" in caplog.text
    assert "Restoring states from the checkpoint path" in caplog.text  # not from the start
    workspace.run(*train_arguments(model, "straight"))  # the uninterrupted reference
    resumed, straight = workspace.run_named("crashy"), workspace.run_named("straight")
    assert resumed.info.run_id == interrupted.info.run_id
    assert resumed.info.status == "FINISHED"
    for metric in ("train_loss", "val_loss"):
        steps = metric_steps(workspace, resumed.info.run_id, metric)
        assert len(steps) == len(set(steps)) == EPOCHS, (metric, steps)
        assert steps == metric_steps(workspace, straight.info.run_id, metric)
    weights = final_weights(workspace, resumed.info.run_id)
    reference = final_weights(workspace, straight.info.run_id)
    assert weights.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0, msg=key)

    tested = workspace.run("test", "++mlflow.run_name=crashy")
    assert "test_loss" in tested
    table = pd.read_parquet(workspace.run("predict", "++mlflow.run_name=crashy")).set_index("id")
    loaded = load_model_from_checkpoint(workspace.uri, run_name="crashy", experiment_name="default")
    state = torch.load(
        workspace.client().download_artifacts(resumed.info.run_id, "checkpoints/best.ckpt"),
        weights_only=True,
    )
    model.check_loaded(loaded, state)
    mine = notebook_predictions(workspace, loaded)
    assert sorted(mine.index) == sorted(table.index)
    pd.testing.assert_frame_equal(
        mine.loc[table.index], table[mine.columns], check_dtype=False, rtol=1e-5
    )
