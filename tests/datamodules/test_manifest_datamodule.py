"""ManifestDatamodule: every input form, split handling, loaders per split, inference, predict."""

from __future__ import annotations

from pathlib import Path

import hydra.utils
import numpy as np
import pandas as pd
import pytest
import torch
from manifest_helpers import TEMPLATE_CONFIG, make_frame, standard_loaders
from omegaconf import OmegaConf

from serotiny.datamodules import ManifestDatamodule
from serotiny.errors import ManifestError
from serotiny.io.dataframe.loaders import LoadColumn, LoadColumns, LoadTensor


def all_rows(loader: torch.utils.data.DataLoader) -> dict[str, list]:
    """Every batch of ``loader`` concatenated, per key."""
    out: dict[str, list] = {}
    for batch in loader:
        for key, value in batch.items():
            out.setdefault(key, []).extend(value.tolist() if torch.is_tensor(value) else value)
    return out


def ids_of(frame: pd.DataFrame, split: str) -> list[str]:
    return frame.loc[frame["split"] == split, "id"].tolist()


@pytest.mark.parametrize("recursive", [True, False])
def test_template_config_instantiates_and_batches(tmp_path, manifest_csv, frame, recursive):
    cfg = OmegaConf.create(TEMPLATE_CONFIG.format(path=manifest_csv))
    datamodule = hydra.utils.instantiate(cfg, _recursive_=recursive)
    assert isinstance(datamodule, ManifestDatamodule)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert set(batch) == {"x", "y", "id"}
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (20, 8)
    assert batch["y"].dtype == torch.int64 and batch["y"].shape == (20,)
    assert isinstance(batch["id"], list) and all(isinstance(i, str) for i in batch["id"])
    # Shuffled, but the rows are exactly the train split, and features match their ids.
    assert sorted(batch["id"]) == sorted(ids_of(frame, "train"))
    by_id = frame.set_index("id")
    expected = by_id.loc[batch["id"], [f"feature_{i}" for i in range(8)]].to_numpy()
    np.testing.assert_allclose(batch["x"].numpy(), expected, rtol=1e-6)
    assert batch["y"].tolist() == by_id.loc[batch["id"], "label"].tolist()


def test_rst_snippet_config(tmp_path, manifest_csv):
    cfg = OmegaConf.create(
        f"""
_target_: serotiny.datamodules.ManifestDatamodule
path: {manifest_csv}
batch_size: 64
num_workers: 1
loaders:
  x:
    _target_: serotiny.io.dataframe.loaders.LoadColumns
    startswith: feature_
split_column: "split"
"""
    )
    datamodule = hydra.utils.instantiate(cfg)
    datamodule.setup("fit")
    assert next(iter(datamodule.val_dataloader()))["x"].shape == (20, 8)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_single_file_formats(tmp_path, frame, suffix):
    path = tmp_path / f"manifest{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    datamodule = ManifestDatamodule(path, standard_loaders(), batch_size=7)
    datamodule.setup("fit")
    datamodule.setup("test")
    for split, loader in [
        ("train", datamodule.train_dataloader()),
        ("valid", datamodule.val_dataloader()),
        ("test", datamodule.test_dataloader()),
    ]:
        assert sorted(all_rows(loader)["id"]) == sorted(ids_of(frame, split))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz"])
def test_folder_of_split_files(tmp_path, frame, suffix):
    folder = tmp_path / "splits"
    folder.mkdir()
    for split, name in [("train", "train"), ("valid", "valid"), ("test", "test")]:
        part = frame[frame["split"] == split].drop(columns="split")
        target = folder / f"{name}{suffix}"
        part.to_parquet(target) if suffix == ".parquet" else part.to_csv(target, index=False)
    datamodule = ManifestDatamodule(folder, standard_loaders(), batch_size=100)
    datamodule.setup("fit")
    datamodule.setup("test")
    assert all_rows(datamodule.train_dataloader())["id"] != []
    assert all_rows(datamodule.val_dataloader())["id"] == ids_of(frame, "valid")
    assert all_rows(datamodule.test_dataloader())["id"] == ids_of(frame, "test")


def test_folder_accepts_split_aliases_and_mixed_formats(tmp_path, frame):
    folder = tmp_path / "splits"
    folder.mkdir()
    frame[frame["split"] == "train"].to_parquet(folder / "training.parquet", index=False)
    frame[frame["split"] == "valid"].to_csv(folder / "Validation.csv", index=False)
    frame[frame["split"] == "test"].to_csv(folder / "test.csv.gz", index=False)
    (folder / "notes.txt").write_text("not a split")
    datamodule = ManifestDatamodule(folder, standard_loaders())
    datamodule.setup("validate")
    assert all_rows(datamodule.val_dataloader())["id"] == ids_of(frame, "valid")


def test_dataframe_input(frame):
    datamodule = ManifestDatamodule(frame, standard_loaders(), batch_size=1000)
    datamodule.setup("fit")
    assert sorted(all_rows(datamodule.train_dataloader())["id"]) == sorted(ids_of(frame, "train"))


@pytest.mark.parametrize(
    "spellings",
    [("train", "val", "test"), ("Training", "VALIDATION", "testing"), ("fit", "dev", "holdout")],
)
def test_split_aliases(frame, spellings):
    frame["split"] = frame["split"].map(
        dict(zip(["train", "valid", "test"], spellings, strict=True))
    )
    datamodule = ManifestDatamodule(frame, standard_loaders(), batch_size=1000)
    datamodule.setup("fit")
    assert len(datamodule.val_dataloader().dataset) == 20


def test_split_map_maps_and_excludes_values(frame):
    frame["split"] = np.array(["fold_a", "fold_b", "fold_c", "unused"])[np.arange(len(frame)) % 4]
    datamodule = ManifestDatamodule(
        frame,
        standard_loaders(),
        batch_size=1000,
        split_map={"fold_a": "train", "fold_b": "valid", "fold_c": "test", "unused": None},
    )
    datamodule.setup("fit")
    datamodule.setup("test")
    assert len(datamodule.train_dataloader().dataset) == 15
    assert all_rows(datamodule.test_dataloader())["id"] == frame.loc[2::4, "id"].tolist()
    # Excluded rows are out of every split but still predicted on.
    assert len(datamodule.predict_dataloader().dataset) == len(frame)


def test_integer_split_values_with_split_map(frame):
    frame["split"] = np.arange(len(frame)) % 3
    datamodule = ManifestDatamodule(
        frame, standard_loaders(), split_map={"0": "train", "1": "val", "2": "test"}
    )
    datamodule.setup("fit")
    assert len(datamodule.train_dataloader().dataset) == 20


def test_per_split_loaders(frame):
    loaders = {
        "train": {"x": LoadColumns(columns=["feature_0", "feature_1"]), "id": LoadColumn("id")},
        "valid": {"x": LoadColumns(columns=["feature_2"]), "id": LoadColumn("id")},
        "test": {"only": LoadColumn("id")},
    }
    datamodule = ManifestDatamodule(frame, loaders, batch_size=1000)
    datamodule.setup("fit")
    datamodule.setup("test")
    assert next(iter(datamodule.train_dataloader()))["x"].shape == (20, 2)
    val = next(iter(datamodule.val_dataloader()))
    assert val["x"][:, 0].tolist() == pytest.approx(
        frame.loc[frame["split"] == "valid", "feature_2"].tolist(), rel=1e-6
    )
    assert set(next(iter(datamodule.test_dataloader()))) == {"only"}
    # predict falls back to the test loaders, over the whole manifest in order.
    datamodule.setup("predict")
    assert all_rows(datamodule.predict_dataloader())["only"] == frame["id"].tolist()


def test_per_split_loaders_as_uninstantiated_config(frame):
    cfg = OmegaConf.create(
        {
            "train": {
                "x": {"_target_": "serotiny.io.dataframe.loaders.LoadColumn", "column": "id"}
            },
            "val": {"x": {"_target_": "serotiny.io.dataframe.loaders.LoadColumn", "column": "id"}},
        }
    )
    datamodule = ManifestDatamodule(frame, cfg, batch_size=1000)
    datamodule.setup("fit")
    assert sorted(next(iter(datamodule.val_dataloader()))["x"]) == sorted(ids_of(frame, "valid"))
    with pytest.raises(ManifestError, match="no loaders for split 'test'"):
        datamodule.setup("test")


def test_wrong_loader_type_is_a_clear_error(frame):
    with pytest.raises(ManifestError, match="'x' is a int, not a loader"):
        ManifestDatamodule(frame, {"x": 3})


def test_just_inference_needs_no_split_column(tmp_path, frame):
    path = tmp_path / "to_predict.csv"
    frame.drop(columns="split").to_csv(path, index=False)
    datamodule = ManifestDatamodule(path, standard_loaders(), batch_size=8, just_inference=True)
    datamodule.validate()
    datamodule.setup("predict")
    assert all_rows(datamodule.predict_dataloader())["id"] == frame["id"].tolist()
    datamodule.setup("test")
    assert all_rows(datamodule.test_dataloader())["id"] == frame["id"].tolist()
    with pytest.raises(ManifestError, match="just_inference=True"):
        datamodule.train_dataloader()


def test_predict_is_whole_manifest_in_order_or_test_split(frame):
    datamodule = ManifestDatamodule(frame, standard_loaders(), batch_size=7, shuffle=True)
    datamodule.setup("predict")
    assert all_rows(datamodule.predict_dataloader())["id"] == frame["id"].tolist()
    assert datamodule.predict_rows().tolist() == list(range(len(frame)))
    only_test = ManifestDatamodule(frame, standard_loaders(), batch_size=7, predict_split="test")
    only_test.setup("predict")
    assert all_rows(only_test.predict_dataloader())["id"] == ids_of(frame, "test")


def test_relative_paths_resolve_against_manifest_folder(tmp_path, frame, monkeypatch):
    data = tmp_path / "project" / "data"
    (data / "arrays").mkdir(parents=True)
    for index in range(len(frame)):
        np.save(data / "arrays" / f"{index}.npy", np.full(3, index, dtype=np.float32))
    frame["array"] = [f"arrays/{index}.npy" for index in range(len(frame))]
    frame.to_csv(data / "manifest.csv", index=False)
    monkeypatch.chdir(tmp_path)  # somewhere else than the manifest's folder
    datamodule = ManifestDatamodule(
        "project/data/manifest.csv", {"a": LoadTensor("array"), "id": LoadColumn("id")}
    )
    datamodule.setup("predict")
    batch = next(iter(datamodule.predict_dataloader()))
    assert batch["a"].shape == (32, 3) and batch["a"][5].tolist() == [5.0, 5.0, 5.0]


def test_columns_restricts_what_is_read(tmp_path, manifest_csv):
    datamodule = ManifestDatamodule(
        manifest_csv,
        {"x": LoadColumns(startswith="feature_")},
        columns=["feature_0", "feature_3"],
    )
    datamodule.setup("fit")
    assert next(iter(datamodule.train_dataloader()))["x"].shape == (20, 2)
    with pytest.raises(ManifestError, match="'nope'.*not in the manifest"):
        ManifestDatamodule(manifest_csv, standard_loaders(), columns=["nope"]).setup("fit")


def test_dataloader_arguments_pass_through(frame):
    datamodule = ManifestDatamodule(
        frame, standard_loaders(), batch_size=16, drop_last=True, shuffle=False, timeout=0
    )
    datamodule.setup("fit")
    train = datamodule.train_dataloader()
    assert train.drop_last and train.batch_size == 16
    assert all_rows(train)["id"] == ids_of(frame, "train")[:16]  # unshuffled, last batch dropped
    assert not datamodule.val_dataloader().drop_last


def test_batches_from_workers_match_main_process(tmp_path, frame):
    # LoadTensor reads files, so the workers really run; the in-memory parts travel by value.
    for index in range(len(frame)):
        torch.save(torch.tensor([float(index)]), tmp_path / f"{index}.pt")
    frame["t"] = [f"{index}.pt" for index in range(len(frame))]
    frame.to_parquet(tmp_path / "m.parquet")
    loaders = {**standard_loaders(), "t": LoadTensor("t")}
    kwargs = {"batch_size": 8, "shuffle": False}
    main = ManifestDatamodule(tmp_path / "m.parquet", loaders, num_workers=0, **kwargs)
    workers = ManifestDatamodule(
        tmp_path / "m.parquet", loaders, num_workers=2, persistent_workers=True, **kwargs
    )
    for datamodule in (main, workers):
        datamodule.setup("fit")
    assert workers.train_dataloader().num_workers == 2
    expected, got = all_rows(main.train_dataloader()), all_rows(workers.train_dataloader())
    assert got == expected
    assert got["t"] == [[float(i)] for i in frame.index[frame["split"] == "train"]]


def test_in_memory_manifest_gathers_in_main_process_unless_forced(frame, worker_epochs):
    lazy = ManifestDatamodule(frame, standard_loaders(), num_workers=2, prefetch_factor=4)
    forced = ManifestDatamodule(frame, standard_loaders(), num_workers=2, gather_in_workers=True)
    lazy.setup("fit")
    forced.setup("fit")
    assert lazy.train_dataloader().num_workers == 0
    list(lazy.train_dataloader())
    assert worker_epochs == []
    train = forced.train_dataloader()
    assert train.num_workers == 2
    list(train), list(train)
    assert worker_epochs == [2, 2]  # forced: every epoch through the workers
    batch = next(iter(forced.val_dataloader()))
    assert type(batch["x"]) is torch.Tensor and batch["x"].shape == (20, 8)
    assert sorted(batch["id"]) == sorted(ids_of(frame, "valid"))


@pytest.mark.slow
def test_trains_tests_and_predicts_with_lightning(tmp_path, manifest_csv, frame):
    import lightning.pytorch as pl

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(8, 3)

        def training_step(self, batch, batch_index):
            return torch.nn.functional.cross_entropy(self.linear(batch["x"]), batch["y"])

        def validation_step(self, batch, batch_index):
            pass

        def test_step(self, batch, batch_index):
            loss = torch.nn.functional.cross_entropy(self.linear(batch["x"]), batch["y"])
            self.log("test_loss", loss, batch_size=len(batch["y"]))

        def predict_step(self, batch, batch_index):
            return batch["id"]

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    datamodule = ManifestDatamodule(manifest_csv, standard_loaders(), batch_size=8)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    model = Classifier()
    trainer.fit(model, datamodule)
    assert trainer.global_step == 3  # 20 train rows in batches of 8
    assert "test_loss" in trainer.test(model, datamodule, verbose=False)[0]
    predictions = trainer.predict(model, datamodule)
    assert [i for batch in predictions for i in batch] == frame["id"].tolist()


def test_bad_manifest_never_reaches_the_trainer(tmp_path, frame):
    import lightning.pytorch as pl

    frame.loc[4, "feature_1"] = np.nan
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)

    class NeverTrains(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(8, 3)

        def training_step(self, batch, batch_index):
            raise AssertionError("a bad manifest reached training")

        def validation_step(self, batch, batch_index):
            raise AssertionError("a bad manifest reached validation")

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(ManifestError, match=r"bad.csv: column 'feature_1'.* at row 4 "):
        trainer.fit(NeverTrains(), ManifestDatamodule(path, standard_loaders()))


def test_make_frame_helper_is_deterministic():
    pd.testing.assert_frame_equal(make_frame(seed=3), make_frame(seed=3))


def test_validate_reports_without_setup(tmp_path: Path, frame):
    frame.loc[[2, 9], "split"] = "tarin"
    datamodule = ManifestDatamodule(frame, standard_loaders())
    problems = datamodule.problems()
    assert [p.column for p in problems] == ["split"]
    assert problems[0].rows == (2, 9)
    with pytest.raises(ManifestError) as error:
        datamodule.validate()
    assert "\n" not in str(error.value)


def test_distributed_sampler_shards_batches(frame):
    # What Lightning injects under DDP: a DistributedSampler over the same dataset and collate.
    datamodule = ManifestDatamodule(frame, standard_loaders(), batch_size=4)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    seen = []
    for rank in (0, 1):
        sampler = torch.utils.data.DistributedSampler(
            loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=1
        )
        sharded = torch.utils.data.DataLoader(
            loader.dataset, batch_size=4, sampler=sampler, collate_fn=loader.collate_fn
        )
        rank_ids = all_rows(sharded)["id"]
        assert len(rank_ids) == 10
        seen += rank_ids
    assert sorted(seen) == sorted(ids_of(frame, "train"))


def test_dataset_pickles_for_spawned_workers(frame):
    import pickle

    datamodule = ManifestDatamodule(frame, standard_loaders())
    datamodule.setup("fit")
    dataset = datamodule.val_dataloader().dataset
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone.__getitems__([0, 3])["id"] == dataset.__getitems__([0, 3])["id"]
    assert torch.equal(clone.__getitems__([1])["x"], dataset.__getitems__([1])["x"])


def test_manifest_checks_do_not_import_lightning(tmp_path, manifest_csv):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from serotiny.datamodules.manifest_data import ManifestData\n"
        "from serotiny.io.dataframe.loaders import LoadColumns\n"
        f"ManifestData({str(manifest_csv)!r}, {{'x': LoadColumns(startswith='feature_')}})"
        ".validate()\n"
        "assert 'lightning' not in sys.modules, 'lightning was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_per_split_loaders_without_test_validate_for_training(frame):
    loaders = {"train": {"id": LoadColumn("id")}, "val": {"id": LoadColumn("id")}}
    datamodule = ManifestDatamodule(frame, loaders)
    datamodule.validate()
    with pytest.raises(ManifestError, match="no loaders for split 'test'"):
        datamodule.validate("test")
