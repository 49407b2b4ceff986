"""Bad constructor arguments fail at build time with a message naming the argument."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import torch
from hydra.errors import InstantiationException
from model_helpers import from_yaml, loader

from serotiny.errors import SerotinyUserError
from serotiny.models import MLP, BasicModel, ModelConfigError, SmallCNN, TabularVAE

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def basic(**overrides: object) -> BasicModel:
    arguments: dict[str, object] = {
        "network": MLP(4, 3),
        "loss": torch.nn.CrossEntropyLoss(),
        "optimizer": ADAM,
        "num_classes": 3,
    }
    arguments.update(overrides)
    return BasicModel(**arguments)


def test_model_config_error_is_a_value_error_and_a_user_error():
    assert issubclass(ModelConfigError, ValueError)
    assert issubclass(ModelConfigError, SerotinyUserError)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "segmentation"}, "unknown task 'segmentation'; choose one of classification"),
        ({"num_classes": None}, "task 'classification' needs num_classes"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
        ({"num_classes": "3"}, "num_classes must be a positive integer"),
        ({"task": "regression"}, "num_classes applies to task 'classification' only"),
        ({"network": "mlp"}, "network must be a torch.nn.Module, got str"),
        ({"loss": "mse"}, "loss must be a torch.nn.Module or callable"),
        ({"x_label": ""}, "x_label must be a non-empty string"),
        ({"y_label": "x"}, "x_label and y_label are both 'x'"),
        ({"optimizer": torch.optim.SGD(MLP(1, 1).parameters(), lr=0.1)}, "_partial_: true"),
        ({"scheduler": 3}, "scheduler must be a callable taking the optimizer"),
    ],
)
def test_basic_model_rejects_bad_arguments(overrides, message):
    with pytest.raises(ModelConfigError, match=message.replace("(", r"\(")):
        basic(**overrides)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MLP(0, 2), "in_features must be a positive integer, got 0"),
        (lambda: MLP(2, 2, hidden_layers=[4, -1]), "each of hidden_layers must be a positive"),
        (lambda: MLP(2, 2, hidden_layers=8), "hidden_layers must be a list"),
        (lambda: MLP(2, 2, activation="swish"), "unknown activation 'swish'; choose one of relu"),
        (lambda: MLP(2, 2, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
        (lambda: SmallCNN(1, 10, image_size=4, channels=[8, 8, 8]), "too small for 3 pooling"),
        (lambda: SmallCNN(1, 10, image_size=[8, 8, 8]), "image_size must be H or"),
        (lambda: SmallCNN(1, 10, image_size=8, channels=[]), "channels must not be empty"),
        (lambda: TabularVAE(0, 2, [4], "x", ADAM), "x_dim must be a positive integer"),
        (lambda: TabularVAE(4, 2, [4], "x", ADAM, beta=-1), "beta must be a number >= 0"),
        (lambda: TabularVAE(4, 2, [4], "x", None), "optimizer must be a callable"),
    ],
)
def test_networks_and_vae_reject_bad_arguments(build, message):
    with pytest.raises(ModelConfigError, match=message):
        build()


def test_hydra_reports_the_model_error():
    yaml = """
    _target_: serotiny.models.BasicModel
    task: classification
    network: {_target_: serotiny.models.MLP, in_features: 2, out_features: 2}
    loss: {_target_: torch.nn.CrossEntropyLoss}
    optimizer: {_target_: torch.optim.Adam, _partial_: true}
    """
    with pytest.raises(InstantiationException, match="needs num_classes") as raised:
        from_yaml(yaml)
    assert isinstance(raised.value.__cause__, ModelConfigError)


def test_missing_batch_key_names_the_label_and_the_keys(make_trainer):
    model = basic(network=MLP(4, 3), x_label="features")
    batches = loader(batch_size=2, x=torch.randn(2, 4), y=torch.tensor([0, 1]))
    with pytest.raises(
        ModelConfigError, match=r"no 'features' \(x_label\); its keys are \['x', 'y'\]"
    ):
        make_trainer(max_epochs=1).fit(model, batches)


def test_wrong_network_output_width_is_explained(make_trainer):
    model = basic(network=MLP(4, 5))
    batches = loader(batch_size=2, x=torch.randn(2, 4), y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(2, 5\), expected \(B, 3\) logits"):
        make_trainer(max_epochs=1).fit(model, batches)


def test_optimizer_factory_must_build_an_optimizer(make_trainer):
    model = basic(optimizer=lambda parameters: list(parameters))
    batches = loader(batch_size=2, x=torch.randn(2, 4), y=torch.tensor([0, 1]))
    with pytest.raises(ModelConfigError, match="built list, not a torch.optim.Optimizer"):
        make_trainer(max_epochs=1).fit(model, batches)


def test_importing_the_package_does_not_import_torch_or_lightning():
    code = (
        "import sys, serotiny.models as m; "
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'eager'; "
        "assert {'BasicModel', 'MLP', 'SmallCNN', 'TabularVAE'} <= set(dir(m)); "
        "m.MLP; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    import serotiny.models

    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        serotiny.models.Nope  # noqa: B018
