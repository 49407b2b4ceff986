"""BasicModel with MLP: built from YAML, trained for real, checkpointed and reloaded."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from model_helpers import blobs, from_yaml, linear_targets, loader

from serotiny.models import MLP, BasicModel

CLASSIFIER_YAML = """
_target_: serotiny.models.BasicModel
x_label: features
y_label: label
task: classification
num_classes: 3
network:
  _target_: serotiny.models.MLP
  in_features: 8
  out_features: 3
  hidden_layers: [16]
loss:
  _target_: torch.nn.CrossEntropyLoss
optimizer:
  _partial_: true
  _target_: torch.optim.Adam
  lr: 0.05
"""

REGRESSOR_YAML = """
_target_: serotiny.models.BasicModel
task: regression
network:
  _target_: serotiny.models.MLP
  in_features: 6
  out_features: 1
  hidden_layers: []
loss:
  _target_: torch.nn.MSELoss
optimizer:
  _partial_: true
  _target_: torch.optim.Adam
  lr: 0.05
scheduler:
  _partial_: true
  _target_: torch.optim.lr_scheduler.ReduceLROnPlateau
  patience: 2
"""


def classification_loaders():
    x, y = blobs()
    train = loader(shuffle=True, features=x[:180], label=y[:180])
    val = loader(features=x[180:], label=y[180:])
    return train, val


def test_yaml_builds_basic_model_with_mlp():
    model = from_yaml(CLASSIFIER_YAML)
    assert isinstance(model, BasicModel)
    assert isinstance(model.network, MLP)
    assert model.hparams == {
        "x_label": "features",
        "y_label": "label",
        "task": "classification",
        "num_classes": 3,
        "scheduler_monitor": "val_loss",
    }


def test_classifier_learns_and_logs_epoch_metrics(make_trainer):
    model = from_yaml(CLASSIFIER_YAML)
    train, val = classification_loaders()
    trainer = make_trainer(max_epochs=8)
    before = trainer.validate(model, val, verbose=False)[0]
    trainer.fit(model, train, val)
    after = trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(after)
    assert after["val_loss"] < before["val_loss"] / 2
    assert after["val_accuracy"] > 0.9  # chance is 1/3

    tested = trainer.test(model, val, verbose=False)[0]
    assert set(tested) == {"test_loss", "test_accuracy"}
    assert tested["test_accuracy"] > 0.9


def test_classifier_accepts_one_hot_and_column_shaped_labels(make_trainer):
    model = from_yaml(CLASSIFIER_YAML)
    x, y = blobs(n=12)
    one_hot = torch.nn.functional.one_hot(y, 3).float()
    for labels in (one_hot, y.unsqueeze(1), y.double()):
        output = make_trainer().predict(model, loader(batch_size=12, features=x, label=labels))[0]
        assert torch.equal(output["target"], y)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, loader(features=x, label=one_hot), loader(features=x, label=one_hot))
    assert "val_accuracy" in trainer.callback_metrics


def test_classifier_predict_step_shapes(make_trainer):
    model = from_yaml(CLASSIFIER_YAML)
    x, y = blobs(n=10)
    with_target = make_trainer().predict(model, loader(batch_size=4, features=x, label=y))
    assert [batch["prediction"].shape for batch in with_target] == [(4,), (4,), (2,)]
    first = with_target[0]
    assert set(first) == {"prediction", "probability", "target"}
    assert first["prediction"].dtype == torch.int64
    assert first["probability"].shape == (4, 3)
    torch.testing.assert_close(first["probability"].sum(1), torch.ones(4))
    assert torch.equal(first["prediction"], first["probability"].argmax(1))
    assert torch.equal(first["target"], y[:4])

    # Unlabelled data: predict batches need not carry y_label.
    without_target = make_trainer().predict(model, loader(batch_size=4, features=x))
    assert set(without_target[0]) == {"prediction", "probability"}


def test_checkpoint_loads_weights_only_and_reproduces_predictions(make_trainer, tmp_path):
    model = from_yaml(CLASSIFIER_YAML)
    train, val = classification_loaders()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val_loss")
    trainer = make_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, train, val)

    state = torch.load(checkpoint.best_model_path, weights_only=True)
    restored = from_yaml(CLASSIFIER_YAML)
    restored.load_state_dict(state["state_dict"])
    model.load_state_dict(state["state_dict"])  # compare against the same (best) weights

    x, _ = blobs(n=16, seed=1)
    expected = make_trainer().predict(model, loader(features=x))[0]
    actual = make_trainer().predict(restored, loader(features=x))[0]
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def test_regressor_with_plateau_scheduler_learns_and_checkpoints(make_trainer, tmp_path):
    model = from_yaml(REGRESSOR_YAML)
    x, y = linear_targets()
    # float64 inputs and targets, as a pandas manifest hands them over, are accepted.
    train = loader(shuffle=True, x=x[:180].double(), y=y[:180].double())
    val = loader(x=x[180:], y=y[180:])
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = make_trainer(max_epochs=10, enable_checkpointing=True, callbacks=[checkpoint])
    before = trainer.validate(model, val, verbose=False)[0]
    trainer.fit(model, train, val)
    metrics = trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_mae", "val_r2"} <= set(metrics)
    assert metrics["val_loss"] < before["val_loss"] / 10
    assert metrics["val_r2"] > 0.95

    state = torch.load(checkpoint.last_model_path, weights_only=True)
    assert state["lr_schedulers"], "the scheduler state is part of the checkpoint"
    predictions = trainer.predict(model, loader(batch_size=60, x=x[180:], y=y[180:]))[0]
    assert predictions["prediction"].shape == (60,)
    assert predictions["target"].shape == (60,)


def test_multi_output_regression_predicts_b_by_k(make_trainer):
    model = from_yaml(REGRESSOR_YAML, network={"out_features": 2}, scheduler=None)
    x, y = linear_targets(n=64, outputs=2)
    trainer = make_trainer(max_epochs=5)
    before = trainer.validate(model, loader(x=x, y=y), verbose=False)[0]["val_loss"]
    trainer.fit(model, loader(shuffle=True, x=x, y=y))
    after = trainer.validate(model, loader(x=x, y=y), verbose=False)[0]["val_loss"]
    assert after < before
    predictions = trainer.predict(model, loader(batch_size=8, x=x))[0]
    assert set(predictions) == {"prediction"}
    assert predictions["prediction"].shape == (8, 2)
