"""The original serotiny's keys: each is translated (or refused) with one clear note."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from legacy_project import write_legacy_project
from omegaconf import DictConfig, OmegaConf

from serotiny.cli.project import find_project
from serotiny.errors import SerotinyUserError
from serotiny.settings.legacy import (
    TRANSLATORS,
    LegacyTranslation,
    apply_log_levels,
    translate_legacy_keys,
)
from serotiny.trainer_parts.pytorch_lightning_era import (
    is_pytorch_lightning_callback,
    pytorch_lightning_base,
    pytorch_lightning_message,
)

ROOT = "/projects/old"


def translate(operation: str = "train", **sections: object) -> LegacyTranslation:
    cfg = OmegaConf.create({"paths": {"root": ROOT}, **sections})
    return translate_legacy_keys(cfg, operation)


def notes(translation: LegacyTranslation) -> list[str]:
    return [str(note) for note in translation.notes]


def compose(config_dir: Path, name: str, *overrides: str) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from serotiny.settings.schema import register_settings

    register_settings()  # what serotiny's CLI does before Hydra composes
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra_compose(
            name,
            overrides=["hydra.searchpath=[pkg://serotiny.config]", *overrides],
            return_hydra_config=True,
        )


# -- serotiny's defaults/ configs, as the original template's projects compose them --------


@pytest.fixture
def legacy_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_legacy_project(tmp_path / "old")
    monkeypatch.setenv("SEROTINY_PROJECT_ROOT", str(root))
    return root / "old_project" / "config"


@pytest.mark.parametrize("operation", ["train", "test", "predict"])
def test_the_defaults_compose_with_todays_behaviour(
    legacy_config_dir: Path, operation: str
) -> None:
    cfg = compose(legacy_config_dir, operation)
    root = legacy_config_dir.parent.parent
    assert cfg.mlflow.tracking_uri == f"sqlite:///{root}/mlruns.db"
    assert cfg.mlflow.run_id is None and cfg.mlflow.run_name is None
    assert cfg.hydra.run.dir.startswith(f"{root}/outputs/{operation}/")
    assert cfg.mode == operation
    # A command gets the composed config without Hydra's own node.
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    translated = translate_legacy_keys(job, operation).config
    assert {"mode", "logs_root", "log_level"}.isdisjoint(translated)
    assert "autolog" not in translated.mlflow and "gpus" not in translated.trainer


def test_train_defaults_carry_the_checkpoint_and_resume_sections(legacy_config_dir: Path) -> None:
    cfg = compose(legacy_config_dir, "train")
    assert cfg.checkpoint == {"monitor": "val_loss", "mode": "min"}
    assert cfg.resume.stale_after_seconds == 90
    assert compose(legacy_config_dir, "test").checkpoint == "best"
    assert compose(legacy_config_dir, "predict").predictions.id_key == "id"


def test_the_era_command_line_keys_compose_without_plus(legacy_config_dir: Path) -> None:
    cfg = compose(
        legacy_config_dir,
        "test",
        "mlflow.run_id=abc",
        "trainer.gpus=1",
        "mlflow.autolog.log_models=false",
        "logs_root=/scratch/logs",
    )
    assert cfg.hydra.run.dir.startswith("/scratch/logs/test/")
    assert cfg.trainer.gpus == 1 and cfg.mlflow.run_id == "abc"


def test_todays_template_has_no_legacy_key(rendered_template: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEROTINY_PROJECT_ROOT", str(rendered_template))
    config_dir = find_project(rendered_template).config_dir
    for operation in ("train", "test", "predict"):
        cfg = compose(config_dir, operation)
        translation = translate_legacy_keys(cfg, operation)
        assert translation.config is cfg and translation.notes == ()


# -- one key at a time -------------------------------------------------------------------


def test_a_config_without_legacy_keys_is_returned_as_is() -> None:
    cfg = OmegaConf.create({"trainer": {"accelerator": "cpu"}, "mlflow": {"run_name": "a"}})
    assert translate_legacy_keys(cfg, "train").config is cfg


def test_the_given_config_is_not_changed() -> None:
    cfg = OmegaConf.create({"trainer": {"gpus": 2}, "mode": "train"})
    translate_legacy_keys(cfg, "train")
    assert cfg == {"trainer": {"gpus": 2}, "mode": "train"}


def test_every_translator_has_a_test_below() -> None:
    tested = {"mode", "logs_root", "log_level", "trainer.gpus", "trainer.logger"}
    tested |= {"mlflow.autolog", "mlflow.tracking_uri", "mlflow.params_to_log", "mlflow.run_id"}
    assert set(TRANSLATORS) == tested


def test_mode_matching_the_command_is_dropped_quietly() -> None:
    translation = translate("test", mode="test")
    assert "mode" not in translation.config and translation.notes == ()
    assert translate("validate", mode="train").notes == ()


def test_mode_naming_another_operation_is_noted() -> None:
    translation = translate("test", mode="predict")
    assert "mode" not in translation.config
    assert notes(translation) == ["mode: 'predict' ignored: the command (serotiny test) decides"]


def test_logs_root_inside_the_project_is_dropped_quietly() -> None:
    translation = translate(logs_root=f"{ROOT}/outputs")
    assert "logs_root" not in translation.config and translation.notes == ()


def test_logs_root_elsewhere_is_noted_and_interpolations_of_it_resolved() -> None:
    translation = translate(logs_root="/scratch/logs", data={"cache": "${logs_root}/cache"})
    assert "logs_root" not in translation.config
    assert translation.config.data.cache == "/scratch/logs/cache"
    assert notes(translation)[0].startswith("logs_root: '/scratch/logs' holds this job's output")


def test_log_level_info_is_what_serotiny_does_anyway() -> None:
    translation = translate(log_level="INFO")
    assert "log_level" not in translation.config
    assert translation.notes == () and translation.log_levels == {}


def test_log_level_is_mapped_to_logger_levels() -> None:
    assert translate(log_level="debug").log_levels == {"": "DEBUG"}
    translation = translate(log_level={"lightning.pytorch": "ERROR", "serotiny": 10})
    assert translation.log_levels == {"lightning.pytorch": "ERROR", "serotiny": "DEBUG"}
    assert notes(translation) == [
        "log_level: applied to the loggers (lightning.pytorch=ERROR, serotiny=DEBUG)"
    ]


def test_an_unknown_log_level_is_a_user_error() -> None:
    with pytest.raises(SerotinyUserError, match='log_level: "LOUD" is not a logging level'):
        translate(log_level="LOUD")


def test_apply_log_levels_sets_the_named_loggers() -> None:
    logger = logging.getLogger("serotiny.tests.legacy")
    before = logger.level
    try:
        apply_log_levels({"serotiny.tests.legacy": "ERROR"})
        assert logger.getEffectiveLevel() == logging.ERROR
    finally:
        logger.setLevel(before)


@pytest.mark.parametrize(
    ("gpus", "accelerator", "devices"),
    [
        (None, "cpu", 1),
        (0, "cpu", 1),
        ("0", "cpu", 1),
        (1, "gpu", 1),
        (2, "gpu", 2),
        (-1, "gpu", -1),
        ("0,1", "gpu", "0,1"),
        ([1, 3], "gpu", [1, 3]),
    ],
)
def test_gpus_becomes_accelerator_and_devices(gpus: object, accelerator: str, devices: object):
    translation = translate(trainer={"gpus": gpus, "max_epochs": 3})
    trainer = translation.config.trainer
    assert trainer == {"max_epochs": 3, "accelerator": accelerator, "devices": devices}
    [note] = notes(translation)
    assert note.startswith("trainer.gpus: ") and f"-> accelerator: {accelerator}" in note


def test_gpus_keeps_devices_the_config_gives() -> None:
    trainer = translate(trainer={"gpus": 2, "devices": [0, 1]}).config.trainer
    assert trainer == {"accelerator": "gpu", "devices": [0, 1]}


def test_gpus_beside_an_accelerator_is_dropped() -> None:
    quiet = translate(trainer={"gpus": None, "accelerator": "gpu", "devices": 2})
    assert quiet.config.trainer == {"accelerator": "gpu", "devices": 2} and quiet.notes == ()
    loud = translate(trainer={"gpus": 4, "accelerator": "cpu"})
    assert loud.config.trainer == {"accelerator": "cpu"}
    assert notes(loud) == ["trainer.gpus: 4 ignored: trainer.accelerator is set"]


def test_gpus_of_another_kind_is_a_user_error() -> None:
    with pytest.raises(SerotinyUserError, match="trainer.gpus: true is not a GPU count"):
        translate(trainer={"gpus": True})


@pytest.mark.parametrize("logger", [[], None, False])
def test_an_empty_trainer_logger_is_dropped(logger: object) -> None:
    translation = translate(trainer={"logger": logger, "accelerator": "cpu"})
    assert translation.config.trainer == {"accelerator": "cpu"}
    [note] = notes(translation)
    assert note.endswith("dropped: serotiny logs every run to MLflow itself")


def test_a_trainer_logger_of_the_project_is_dropped_with_a_note() -> None:
    spec = {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": "logs"}
    translation = translate(trainer={"logger": spec})
    assert "logger" not in translation.config.trainer
    assert notes(translation) == [
        "trainer.logger: dropped: serotiny owns the Trainer's logger (MLflow); "
        "log from your module instead"
    ]


def test_autolog_options_are_dropped_one_note_each() -> None:
    autolog = {"log_every_n_epoch": 1, "log_models": False, "disable": True, "silent": True}
    translation = translate(mlflow={"autolog": autolog, "run_name": "a"})
    assert translation.config.mlflow == {"run_name": "a"}
    assert notes(translation) == [
        "mlflow.autolog.log_every_n_epoch: 1 dropped: the model's epoch metrics are logged "
        "every epoch",
        "mlflow.autolog.log_models: false dropped: a run always stores its best and last "
        "checkpoints, which resume needs",
        "mlflow.autolog.disable: true dropped: every serotiny run is tracked in MLflow",
        "mlflow.autolog.silent: true dropped: serotiny logs through its own logger",
    ]


def test_autolog_step_interval_maps_to_the_trainer() -> None:
    translation = translate(mlflow={"autolog": {"log_every_n_step": 20}}, trainer={})
    assert translation.config.trainer == {"log_every_n_steps": 20}
    assert notes(translation) == [
        "mlflow.autolog.log_every_n_step: 20 -> trainer.log_every_n_steps: 20"
    ]
    kept = translate(mlflow={"autolog": {"log_every_n_step": 20}}, trainer={"log_every_n_steps": 5})
    assert kept.config.trainer == {"log_every_n_steps": 5}


def test_unset_autolog_options_go_quietly() -> None:
    translation = translate(mlflow={"autolog": {"log_models": None, "log_every_n_epoch": None}})
    assert translation.config.mlflow == {} and translation.notes == ()


@pytest.mark.parametrize("uri", [None, ""])
def test_an_unset_tracking_uri_means_the_embedded_store(uri: object) -> None:
    translation = translate(mlflow={"tracking_uri": uri})
    assert translation.config.mlflow.tracking_uri == f"sqlite:///{ROOT}/mlruns.db"
    assert notes(translation) == [
        f"mlflow.tracking_uri: unset -> sqlite:///{ROOT}/mlruns.db (the embedded store)"
    ]
    assert translate(mlflow={"tracking_uri": "http://x:5000"}).notes == ()


def test_params_to_log_is_dropped_with_a_note() -> None:
    translation = translate(mlflow={"params_to_log": {"lr": 0.1}})
    assert translation.config.mlflow == {}
    assert notes(translation) == [
        "mlflow.params_to_log: dropped: every config value is logged as a param"
    ]


@pytest.mark.parametrize("operation", ["test", "predict"])
def test_run_id_is_kept_for_test_and_predict(operation: str) -> None:
    translation = translate(operation, mlflow={"run_id": "abc", "run_name": None})
    assert translation.config.mlflow.run_id == "abc" and translation.notes == ()
    both = translate(operation, mlflow={"run_id": "abc", "run_name": "first"})
    assert both.config.mlflow.run_id == "abc"
    assert notes(both) == ["mlflow.run_id: selects run abc; mlflow.run_name is not used"]


def test_run_id_given_to_train_says_to_resume_by_name() -> None:
    with pytest.raises(SerotinyUserError, match=r"resumes a run by its name.*\+\+mlflow.run_name"):
        translate("train", mlflow={"run_id": "abc"})
    assert translate("train", mlflow={"run_id": None}).notes == ()


# -- project classes written against pytorch_lightning ------------------------------------


def test_a_lightning_trainer_refuses_a_pytorch_lightning_module_and_we_say_why() -> None:
    import lightning.pytorch as L
    import pytorch_lightning as PL

    class OldModel(PL.LightningModule):
        pass

    with pytest.raises(TypeError, match="must be a `LightningModule`"):
        L.Trainer(logger=False, enable_checkpointing=False).fit(OldModel())
    message = pytorch_lightning_message(OldModel(), "model")
    assert message is not None and "\n" not in message
    assert (
        "builds test_legacy_keys." in message and "a pytorch_lightning.LightningModule" in message
    )
    assert f"in {Path(__file__)}, import from lightning.pytorch instead" in message


def test_a_pytorch_lightning_datamodule_gets_the_same_line() -> None:
    import pytorch_lightning as PL

    message = pytorch_lightning_message(PL.LightningDataModule(), "data")
    assert message is not None and "config 'data'" in message
    assert "pytorch_lightning.LightningDataModule" in message


def test_a_pytorch_lightning_callback_works_with_the_lightning_trainer(tmp_path: Path) -> None:
    import lightning.pytorch as L
    import pytorch_lightning as PL
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, index):  # type: ignore[no-untyped-def]
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class CountEpochs(PL.Callback):
        epochs = 0

        def on_train_epoch_end(self, trainer, module):  # type: ignore[no-untyped-def]
            CountEpochs.epochs += 1

    callback = CountEpochs()
    assert is_pytorch_lightning_callback(callback)
    assert pytorch_lightning_message(callback, "trainer.callbacks.0") is None
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4))
    assert CountEpochs.epochs == 2


def test_lightning_classes_are_not_flagged() -> None:
    import lightning.pytorch as L

    assert pytorch_lightning_base(L.LightningModule()) is None
    assert pytorch_lightning_message(L.LightningModule(), "model") is None
    assert not is_pytorch_lightning_callback(L.Callback())
    assert pytorch_lightning_base(object()) is None


def test_the_migration_pages_trainer_config_composes_without_notes(
    legacy_config_dir: Path,
) -> None:
    page = (Path(__file__).parent.parent / "docs" / "migration.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    (legacy_config_dir / "trainer" / "default.yaml").write_text(block)
    cfg = compose(legacy_config_dir, "train")
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    translation = translate_legacy_keys(job, "train")
    assert translation.config.trainer.accelerator == "gpu"
    assert [n for n in translation.notes if n.key.startswith("trainer.")] == []
