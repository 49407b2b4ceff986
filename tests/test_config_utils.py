"""Config normalising, flattening, hashing and redaction."""

from __future__ import annotations

from omegaconf import OmegaConf

from serotiny.settings.config_data import config_hash, differing_keys, flatten, normalize_targets
from serotiny.settings.secrets import redact


def test_pytorch_lightning_targets_point_at_the_unified_package() -> None:
    cfg = OmegaConf.create(
        {
            "trainer": {
                "callbacks": [
                    {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "a"},
                    {"_target_": "my_project.callbacks.Custom"},
                ]
            }
        }
    )
    normalized = normalize_targets(cfg)
    targets = [cb["_target_"] for cb in normalized.trainer.callbacks]
    assert targets == ["lightning.pytorch.callbacks.EarlyStopping", "my_project.callbacks.Custom"]
    assert cfg.trainer.callbacks[0]._target_.startswith("pytorch_lightning")  # copy, not in place


def test_interpolations_are_resolved() -> None:
    cfg = OmegaConf.create({"a": 3, "b": "${a}_x"})
    assert normalize_targets(cfg).b == "3_x"


def test_flatten_uses_dotted_keys_and_list_positions() -> None:
    data = {"model": {"layers": [32, 16], "opt": {"lr": 0.1}}, "empty": {}}
    assert dict(flatten(data)) == {
        "model.layers.0": 32,
        "model.layers.1": 16,
        "model.opt.lr": 0.1,
        "empty": "{}",
    }


def test_hash_ignores_key_order_but_not_values() -> None:
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_differing_keys() -> None:
    assert differing_keys({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]


def test_credentials_never_survive_redaction() -> None:
    data = {
        "mlflow": {"tracking_uri": "https://alice:s3cret@mlflow.example.org"},
        "db_password": "hunter2",
        "api_token": "abc",
        "note": "plain",
    }
    text = str(redact(data))
    assert "s3cret" not in text and "hunter2" not in text and "abc" not in text
    assert "https://***@mlflow.example.org" in text
    assert "plain" in text
