"""The projects the table of user mistakes (``test_mistakes.py``) runs in.

``add_mistake_files`` gives a fresh copy of the template the broken things a user makes:
manifests with bad values, a CSV named ``.parquet``, images that are not images, a config
file that is not YAML, models whose loss is NaN or detached, damaged tracking stores.
``add_trained_runs`` gives a project trained once (run ``good``) the runs that mistakes on
trained runs need: damaged checkpoints, a failed run, one running elsewhere, a duplicated
name, a deleted experiment.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time
from pathlib import Path

import numpy as np
from cli_helpers import PACKAGE
from mlflow import MlflowClient
from mlflow.entities import Run
from PIL import Image

from serotiny.tracking.store import connect

MISTAKE_MODELS = '''
import torch

from a_tiny_project.models import LinearClassifier


class NanLoss(LinearClassifier):
    """A loss that is NaN from the first batch on."""

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx) * float("nan")


class DetachedLoss(LinearClassifier):
    """A loss cut off from the parameters, so nothing would ever be learnt."""

    def training_step(self, batch, batch_idx):
        return super().training_step(batch, batch_idx).detach()
'''

IMAGES_DATA = """_target_: serotiny.datamodules.ManifestDatamodule
path: ${paths.data_dir}/images.csv
batch_size: 4
split_column: split
id_column: id
loaders:
  x: {_target_: serotiny.io.dataframe.loaders.LoadImage, column: image}
  y: {_target_: serotiny.io.dataframe.loaders.LoadClass, column: label, num_classes: 3}
  id: {_target_: serotiny.io.dataframe.loaders.LoadColumn, column: id}
"""


def _rewrite(rows: list[str], header: str, column: str, row: int, value: str) -> list[str]:
    index = header.split(",").index(column)
    out = []
    for number, line in enumerate(rows):
        cells = line.split(",")
        if number == row:
            cells[index] = value
        out.append(",".join(cells))
    return out


def add_manifests(data: Path) -> None:
    """Manifests each holding one kind of mistake, beside the demo's ``manifest.csv``."""
    header, *rows = (data / "manifest.csv").read_text().splitlines()

    def write(name: str, lines: list[str], head: str = header) -> None:
        (data / name).write_text("\n".join([head, *lines]) + "\n")

    write("text.csv", _rewrite(rows, header, "feature_3", 5, "abc"))
    write("blank.csv", _rewrite(rows, header, "feature_3", 5, ""))
    write("inf.csv", _rewrite(rows, header, "feature_3", 200, "inf"))
    write("dupid.csv", _rewrite(rows, header, "id", 7, "sample_0001"))
    write("badsplit.csv", _rewrite(rows, header, "split", 3, "trian"))
    write("badlabel.csv", _rewrite(rows, header, "label", 150, "7"))
    write("empty.csv", [])
    write("novalid.csv", [row for row in rows if ",valid," not in row])
    columns = header.split(",")
    keep = [i for i, name in enumerate(columns) if name not in ("feature_5", "feature_6")]
    keep = [i for i in keep if columns[i] != "feature_7"]
    write(
        "five.csv",
        [",".join(row.split(",")[i] for i in keep) for row in rows],
        ",".join(columns[i] for i in keep),
    )
    (data / "csv_named.parquet").write_text((data / "manifest.csv").read_text())
    (data / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (data / "manifest.txt").write_text((data / "manifest.csv").read_text())


def add_images(data: Path) -> None:
    """40 small PNGs and a manifest of them (``images.csv``), plus manifests naming a file
    that is no image, an empty one, a missing one, and one cut short."""
    folder = data / "images"
    folder.mkdir()
    generator = np.random.default_rng(0)
    lines = ["id,split,image,label"]
    for i in range(40):
        pixels = (generator.random((8, 8)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"im{i}.png")
        lines.append(f"im{i},{('train', 'valid', 'test')[i % 3]},images/im{i}.png,{i % 3}")
    (data / "images.csv").write_text("\n".join(lines) + "\n")
    (folder / "not_an_image.png").write_text("<html>404 not found</html>")
    (folder / "empty.png").write_bytes(b"")
    big = (generator.random((256, 256)) * 255).astype("uint8")
    Image.fromarray(big).save(folder / "whole.png")
    whole = (folder / "whole.png").read_bytes()
    (folder / "cut_short.png").write_bytes(whole[: len(whole) // 2])
    for name, path in [
        ("images_garbage.csv", "images/not_an_image.png"),
        ("images_empty.csv", "images/empty.png"),
        ("images_missing.csv", "images/none.png"),
        ("images_cut.csv", "images/cut_short.png"),
    ]:
        # Row 30 is a training row past the first batch: only training reads it.
        changed = [
            line if n != 31 else line.replace("images/im30.png", path)
            for n, line in enumerate(lines)
        ]
        (data / name).write_text("\n".join(changed) + "\n")


def add_configs(config: Path) -> None:
    """Config options that are mistakes, and the models they name."""
    (config / "data" / "broken.yaml").write_text("path: [unclosed\n  batch_size: 3\n")
    (config / "data" / "images.yaml").write_text(IMAGES_DATA)
    (config / "model" / "not_a_model.yaml").write_text("_target_: collections.OrderedDict\n")
    (config / "model" / "interp.yaml").write_text(
        "defaults:\n  - default\n  - _self_\nnetwork:\n  in_features: ${model.input_size}\n"
    )
    (config / "model" / "img_cnn.yaml").write_text(
        "defaults: [small_cnn, _self_]\nnetwork: {image_size: [8, 8]}\n"
    )
    for name in ("NanLoss", "DetachedLoss"):
        (config / "model" / f"{name.lower()}.yaml").write_text(
            f"_target_: {PACKAGE}.mistake_models.{name}\nin_features: 8\nnum_classes: 3\n"
        )
    (config / "trainer" / "callbacks" / "notcb.yaml").write_text(
        "- _target_: collections.OrderedDict\n"
    )
    (config.parent / "mistake_models.py").write_text(MISTAKE_MODELS)
    broken = config.parent.parent / "broken_config"
    shutil.copytree(config, broken)
    (broken / "train.yaml").write_text((broken / "train.yaml").read_text() + "\nseed: [42\n")


def add_stores(stores: Path) -> None:
    """Tracking stores that cannot be used: damaged, not a database, a folder."""
    stores.mkdir()
    connect(f"sqlite:///{stores / 'whole.db'}")
    whole = (stores / "whole.db").read_bytes()
    (stores / "truncated.db").write_bytes(whole[: len(whole) // 3])
    (stores / "not_a_database.db").write_text("hello, I am a text file\n")
    (stores / "a_folder.db").mkdir()
    (stores / "a_file").write_text("a file where a folder is expected\n")


def add_mistake_files(project: Path) -> None:
    """Everything above, in ``project`` (a fresh copy of the template)."""
    add_manifests(project / "data")
    add_images(project / "data")
    add_configs(project / PACKAGE / "config")
    add_stores(project / "stores")


def clone_run(client: MlflowClient, source: Run, name: str, status: str) -> str:
    """A run named ``name`` holding ``source``'s tags and artifacts (config, checkpoints),
    ended with ``status``: a trained run, without training it again."""
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    run = client.create_run(source.info.experiment_id, run_name=name, tags=tags)
    folder = Path(client.download_artifacts(source.info.run_id, ""))
    for part in ("config", "checkpoints"):
        client.log_artifacts(run.info.run_id, str(folder / part), part)
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def damage_checkpoints(client: MlflowClient, run_id: str, names: tuple[str, ...]) -> None:
    """Overwrite the run's ``names`` checkpoints with bytes that are no checkpoint."""
    folder = Path(client.download_artifacts(run_id, "checkpoints"))
    for name in names:
        path = folder / f"{name}.ckpt"
        path.write_bytes(path.read_bytes()[:100])
        client.log_artifact(run_id, str(path), "checkpoints")


def add_trained_runs(project: Path) -> None:
    """Beside run ``good`` (trained): ``damaged`` (both checkpoints cut short), ``bestbad``
    (its best checkpoint cut short), ``failed`` (FAILED after its checkpoints), ``busy``
    (RUNNING, owned by this live process), two runs named ``twin``, and a deleted
    experiment ``gone``."""
    client = connect(f"sqlite:///{project / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("default")
    assert experiment is not None
    (good,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlflow.runName` = 'good'"
    )
    damage_checkpoints(client, clone_run(client, good, "damaged", "FINISHED"), ("best", "last"))
    damage_checkpoints(client, clone_run(client, good, "bestbad", "FINISHED"), ("best",))
    clone_run(client, good, "failed", "FAILED")
    owner = {
        "serotiny.host": socket.gethostname(),
        "serotiny.pid": str(os.getpid()),
        "serotiny.heartbeat": str(time.time()),
    }
    client.create_run(experiment.experiment_id, run_name="busy", tags=owner)
    for _ in range(2):
        twin = client.create_run(experiment.experiment_id, run_name="twin")
        client.set_terminated(twin.info.run_id, "FINISHED")
    client.delete_experiment(client.create_experiment("gone"))


def store_snapshot(project: Path) -> dict[str, object]:
    """Every run of the project's store as data (rows of runs, tags, params, metrics) and its
    artifacts (path -> size and modification time): equal snapshots, untouched runs."""
    database = project / "mlruns.db"
    snapshot: dict[str, object] = {}
    if database.exists():
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            for table in ("runs", "tags", "params", "latest_metrics", "experiments"):
                rows = connection.execute(f"SELECT * FROM {table}").fetchall()
                snapshot[table] = sorted(map(repr, rows))
        finally:
            connection.close()
    artifacts = project / "mlartifacts"
    if artifacts.exists():
        snapshot["artifacts"] = sorted(
            (str(path.relative_to(artifacts)), path.stat().st_size, path.stat().st_mtime_ns)
            for path in artifacts.rglob("*")
            if path.is_file()
        )
    return snapshot


def runs_in(project: Path) -> list[tuple[str, str]]:
    """(name, status) of every run in the project's store, none when there is no store."""
    database = project / "mlruns.db"
    if not database.exists():
        return []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return sorted(connection.execute("SELECT name, status FROM runs").fetchall())
    finally:
        connection.close()
