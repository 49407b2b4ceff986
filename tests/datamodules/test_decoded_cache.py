"""The decoded-image cache of LoadImage / LoadTensor, on real files, workers and datamodules."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image

from serotiny.datamodules import ManifestDatamodule
from serotiny.errors import SerotinyUserError
from serotiny.io.dataframe.loaders import DecodedCache, LoadImage, LoadTensor
from serotiny.io.dataframe.loaders.decoded_cache import SETTLE_NS
from serotiny.io.dataframe.loaders.image import read_channels_first

HOUR_NS = 3_600 * 10**9


def settle(path: Path, age_ns: int = HOUR_NS) -> None:
    """Date ``path`` back: images written in the last few seconds are not cached."""
    then = time.time_ns() - age_ns
    os.utime(path, ns=(then, then))


def write_pngs(folder: Path, count: int, size: int = 8, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        names.append(f"img_{index:03d}.png")
        Image.fromarray(pixels).save(folder / names[-1])
        settle(folder / names[-1])
    return names


def write_manifest(folder: Path, names: list[str]) -> Path:
    splits = (["train", "train", "valid"] * len(names))[: len(names)]
    path = folder / "manifest.csv"
    pd.DataFrame({"path": names, "split": splits}).to_csv(path, index=False)
    return path


def batches(datamodule: ManifestDatamodule) -> list[torch.Tensor]:
    return [batch["x"] for batch in datamodule.train_dataloader()]


def bound_cache(datamodule: ManifestDatamodule) -> DecodedCache:
    return datamodule.data.dataset("train").loaders["x"].cache


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*/*.npy"))


def refuse(path: str) -> None:
    raise AssertionError(f"decoded {path} again: its cache entry was missing or rejected")


@pytest.mark.parametrize(
    "options",
    [{}, {"channels": [2, 0], "dtype": "float16"}, {"dtype": "uint8"}, {"dtype": "bfloat16"}],
)
def test_cached_batches_equal_uncached_ones_exactly(tmp_path, options):
    manifest = write_manifest(tmp_path, write_pngs(tmp_path, 9))

    def datamodule(cache_dir: Path | None) -> ManifestDatamodule:
        loader = LoadImage("path", cache_dir=cache_dir and str(cache_dir), **options)
        module = ManifestDatamodule(manifest, {"x": loader}, batch_size=4, shuffle=False)
        module.setup("fit")
        return module

    plain = batches(datamodule(None))
    cached = datamodule(tmp_path / "cache")
    first, second = batches(cached), batches(cached)
    assert bound_cache(cached).misses == 6 and bound_cache(cached).hits == 6
    for batch in (first, second):
        assert len(batch) == len(plain)
        for got, expected in zip(batch, plain, strict=True):
            assert got.dtype == expected.dtype and torch.equal(got, expected)
    # Rows fetched one at a time (a plain sampler) take the per-item path: the same values.
    dataset = cached.data.dataset("train")
    assert torch.equal(dataset[1]["x"], plain[0][1])


def test_uint16_tiff_batches_equal_the_per_item_route(tmp_path):
    stack = np.random.default_rng(1).integers(0, 65535, (2, 3, 5, 4), dtype=np.uint16)
    for index, image in enumerate(stack):
        tifffile.imwrite(tmp_path / f"{index}.tiff", image, metadata={"axes": "CYX"})
        settle(tmp_path / f"{index}.tiff")
    loader = LoadImage("path", cache_dir=str(tmp_path / "cache"), channels=[2])
    paths = [str(tmp_path / "0.tiff"), str(tmp_path / "1.tiff")]
    module = ManifestDatamodule(
        pd.DataFrame({"path": paths}), {"x": loader}, batch_size=2, just_inference=True
    )
    module.setup("test")
    dataset = module.data.dataset("test")
    batch = dataset.__getitems__([0, 1])["x"]
    items = [LoadImage("path", channels=[2]).read(str(tmp_path / f"{i}.tiff")) for i in (0, 1)]
    assert torch.equal(batch, torch.stack(items))
    assert batch.tolist() == stack[:, [2]].astype(np.float32).tolist()


def test_a_changed_image_is_read_again(tmp_path):
    (name,) = write_pngs(tmp_path, 1, size=6)
    path = str(tmp_path / name)
    cache = DecodedCache(tmp_path / "cache")
    cache.prepare()
    before = cache.load(path, "pillow", read_channels_first)
    old_entry = cache.entry_path(path, "pillow")

    bigger = np.full((7, 6, 3), 9, dtype=np.uint8)  # a new size and a new modification time
    Image.fromarray(bigger).save(path)
    settle(Path(path), age_ns=2 * HOUR_NS)
    after = cache.load(path, "pillow", read_channels_first)
    assert after.shape == (3, 7, 6) and np.array_equal(after, np.moveaxis(bigger, -1, 0))
    assert not np.array_equal(before, after[:, :6])
    assert cache.entry_path(path, "pillow") != old_entry
    assert (cache.misses, cache.hits) == (2, 0)
    assert np.array_equal(cache.load(path, "pillow", refuse), after)


def test_same_size_new_mtime_is_read_again(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(4, 4), path)
    settle(path, age_ns=2 * HOUR_NS)
    loader = LoadTensor("t", cache_dir=str(tmp_path / "cache"))
    module = ManifestDatamodule(
        pd.DataFrame({"t": [str(path)], "split": ["train"]}),
        {"x": loader},
        batch_size=1,
        just_inference=True,
    )
    module.setup("test")
    dataset = module.data.dataset("test")
    assert dataset[0]["x"].sum().item() == 0
    torch.save(torch.ones(4, 4), path)  # the same number of bytes
    settle(path)
    assert dataset[0]["x"].sum().item() == 16
    cache = dataset.loaders["x"].cache
    assert (cache.misses, cache.hits) == (2, 0)
    assert dataset[0]["x"].sum().item() == 16 and cache.hits == 1


def test_recently_written_images_are_not_cached_until_they_settle(tmp_path):
    (name,) = write_pngs(tmp_path, 1)
    path = tmp_path / name
    settle(path, age_ns=SETTLE_NS // 4)
    cache = DecodedCache(tmp_path / "cache")
    cache.prepare()
    cache.load(str(path), "pillow", read_channels_first)
    assert entries(tmp_path / "cache") == []
    settle(path)
    cache.load(str(path), "pillow", read_channels_first)
    assert len(entries(tmp_path / "cache")) == 1


@pytest.mark.parametrize("large", [False, True], ids=["read", "memory-mapped"])
@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "garbage", "empty"])
def test_a_damaged_entry_is_detected_and_replaced(tmp_path, damage, large):
    path = tmp_path / "t.pt"
    values = torch.arange(512 * 520 if large else 30, dtype=torch.float32)
    torch.save(values, path)
    settle(path)
    cache = DecodedCache(tmp_path / "cache")
    cache.prepare()
    loader = LoadTensor("t")
    cache.load(str(path), "t", loader.decode)
    (entry,) = entries(tmp_path / "cache")
    good = entry.read_bytes()
    assert (len(good) >= 1 << 20) == large

    damaged = {
        "truncate": good[: len(good) - 7],
        "flip a byte": good[:-40] + bytes([good[-40] ^ 1]) + good[-39:],
        "garbage": os.urandom(len(good)),
        "empty": b"",
    }[damage]
    entry.write_bytes(damaged)
    again = cache.load(str(path), "t", loader.decode)
    assert np.array_equal(again, values.numpy()) and cache.rejected == 1
    assert entry.read_bytes() == good  # rewritten whole
    assert np.array_equal(cache.load(str(path), "t", refuse), values.numpy())


def test_entries_are_plain_npy_files(tmp_path):
    (name,) = write_pngs(tmp_path, 1)
    cache = DecodedCache(tmp_path / "cache")
    cache.prepare()
    decoded = cache.load(str(tmp_path / name), "pillow", read_channels_first)
    (entry,) = entries(tmp_path / "cache")
    assert np.array_equal(np.load(entry), decoded)
    assert np.array_equal(np.load(entry, mmap_mode="r"), decoded)


def _fill(folder: str, paths: list[str], barrier, failures) -> None:
    cache = DecodedCache(folder)
    barrier.wait()
    for path in paths:
        expected = read_channels_first(path)
        if not np.array_equal(cache.load(path, "pillow", read_channels_first), expected):
            failures.put(path)


def test_two_processes_fill_the_cache_at_once_without_a_wrong_entry(tmp_path):
    names = write_pngs(tmp_path, 40, size=32)
    paths = [str(tmp_path / name) for name in names]
    cache = DecodedCache(tmp_path / "cache")
    cache.prepare()
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_fill, args=(cache.folder, paths, barrier, failures))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert failures.empty()
    assert len(entries(tmp_path / "cache")) == len(paths)
    assert list((tmp_path / "cache").glob("*/*.tmp")) == []
    for path in paths:
        assert np.array_equal(cache.load(path, "pillow", refuse), read_channels_first(path))


def test_dataloader_workers_share_the_cache(tmp_path):
    names = write_pngs(tmp_path, 8)
    # Every file twice in a row, one row per batch: the two workers decode the same file at
    # about the same time and both write its entry.
    frame = pd.DataFrame({"path": [name for name in names for _ in (0, 1)], "split": "train"})
    frame.loc[0, "split"] = "valid"
    loader = LoadImage("path", cache_dir=str(tmp_path / "cache"))
    module = ManifestDatamodule(
        frame.assign(path=[str(tmp_path / p) for p in frame.path]),
        {"x": loader},
        batch_size=1,
        num_workers=2,
        shuffle=False,
    )
    module.setup("fit")
    first, second = batches(module), batches(module)
    expected = [LoadImage("path").read(str(tmp_path / path)) for path in frame.path[1:]]
    assert all(
        torch.equal(a[0], e) and torch.equal(b[0], e)
        for a, b, e in zip(first, second, expected, strict=True)
    )
    assert len(entries(tmp_path / "cache")) == len(names)
    cache = DecodedCache(tmp_path / "cache")
    for name in names:
        assert np.array_equal(
            cache.load(str(tmp_path / name), loader.decoder_tag(), refuse),
            read_channels_first(str(tmp_path / name)),
        )


def test_a_later_run_reuses_the_entries(tmp_path):
    manifest = write_manifest(tmp_path, write_pngs(tmp_path, 6))

    def run() -> tuple[ManifestDatamodule, list[torch.Tensor]]:
        loader = LoadImage("path", cache_dir=str(tmp_path / "cache"))
        module = ManifestDatamodule(manifest, {"x": loader}, batch_size=2)
        module.setup("fit")
        return module, batches(module)

    first_module, first = run()
    assert bound_cache(first_module).misses == 4
    written = {entry: entry.stat().st_mtime_ns for entry in entries(tmp_path / "cache")}
    assert len(written) == 4
    later_module, later = run()
    assert (bound_cache(later_module).hits, bound_cache(later_module).misses) == (4, 0)
    assert {entry: entry.stat().st_mtime_ns for entry in entries(tmp_path / "cache")} == written
    assert sorted(t.sum().item() for t in torch.cat(first)) == sorted(
        t.sum().item() for t in torch.cat(later)
    )


def test_loaders_configured_differently_share_one_entry(tmp_path):
    manifest = write_manifest(tmp_path, write_pngs(tmp_path, 3))
    for options in ({}, {"channels": [1], "dtype": "uint8"}):
        loader = LoadImage("path", cache_dir=str(tmp_path / "cache"), **options)
        module = ManifestDatamodule(manifest, {"x": loader}, batch_size=2)
        module.setup("fit")
        batches(module)
    assert len(entries(tmp_path / "cache")) == 2  # the two training images, once each


def test_npy_files_are_read_directly_and_bfloat16_is_not_cached(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(2, 3))
    torch.save(torch.arange(6, dtype=torch.bfloat16).reshape(2, 3), tmp_path / "b.pt")
    for name in ("a.npy", "b.pt"):
        settle(tmp_path / name)
    loader = LoadTensor("t", dtype="float32", cache_dir=str(tmp_path / "cache"))
    module = ManifestDatamodule(
        pd.DataFrame({"t": [str(tmp_path / "a.npy"), str(tmp_path / "b.pt")]}),
        {"x": loader},
        batch_size=2,
        just_inference=True,
    )
    module.setup("test")
    batch = next(iter(module.test_dataloader()))["x"]
    assert batch.tolist() == [[[0, 1, 2], [3, 4, 5]]] * 2
    assert entries(tmp_path / "cache") == []


def test_an_unwritable_cache_folder_is_one_clear_error(tmp_path):
    manifest = write_manifest(tmp_path, write_pngs(tmp_path, 3))
    (tmp_path / "a_file").write_text("")
    loader = LoadImage("path", cache_dir=str(tmp_path / "a_file" / "cache"))
    module = ManifestDatamodule(manifest, {"x": loader}, batch_size=2)
    with pytest.raises(SerotinyUserError, match="cannot write to .*a_file/cache") as error:
        module.setup("fit")
    assert "\n" not in str(error.value) and "cache_dir" in str(error.value)


def _send_reference(bound, rows, queue) -> None:
    queue.put(bound.reference(np.asarray(rows, dtype=np.int64)))


def cached_bound(tmp_path: Path, names: list[str], **options):
    loader = LoadImage("path", cache_dir=str(tmp_path / "cache"), **options)
    module = ManifestDatamodule(
        pd.DataFrame({"path": [str(tmp_path / name) for name in names]}),
        {"x": loader},
        just_inference=True,
    )
    module.setup("test")
    return module.data.dataset("test").loaders["x"]


def test_a_batch_sent_by_reference_arrives_as_the_batch(tmp_path):
    names = write_pngs(tmp_path, 5, size=12)
    bound = cached_bound(tmp_path, names, channels=[1, 2], dtype="float16")
    rows = [4, 0, 2]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    sender = context.Process(target=_send_reference, args=(bound, rows, queue))
    sender.start()
    batch = queue.get(timeout=60)  # unpickled here, in this process: read from the cache
    sender.join(timeout=60)
    assert sender.exitcode == 0 and isinstance(batch, torch.Tensor)
    plain = LoadImage("path", channels=[1, 2], dtype="float16")
    uncached = torch.stack([plain.read(str(tmp_path / names[row])) for row in rows])
    assert batch.dtype == torch.float16 and torch.equal(batch, uncached)
    assert len(entries(tmp_path / "cache")) == 3  # the sender decoded and stored them


def test_a_reference_whose_entry_is_gone_is_decoded_on_arrival(tmp_path):
    names = write_pngs(tmp_path, 2)
    bound = cached_bound(tmp_path, names)
    reference = bound.reference(np.array([0, 1]))
    for entry in entries(tmp_path / "cache"):
        entry.unlink()
    arrived = pickle.loads(pickle.dumps(reference))
    assert torch.equal(arrived, bound.batch(np.array([0, 1])))


def test_no_reference_without_a_cache_with_a_transform_or_for_a_new_file(tmp_path):
    names = write_pngs(tmp_path, 2)
    assert cached_bound(tmp_path, names, transform=torch.neg).reference(np.array([0])) is None
    loader = LoadImage("path")
    module = ManifestDatamodule(
        pd.DataFrame({"path": [str(tmp_path / n) for n in names]}),
        {"x": loader},
        just_inference=True,
    )
    module.setup("test")
    assert module.data.dataset("test").loaders["x"].reference(np.array([0])) is None
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / names[1])  # just written
    bound = cached_bound(tmp_path, names)
    assert bound.reference(np.array([0, 1])) is None
    assert bound.reference(np.array([0])) is not None


def test_workers_step_aside_once_every_file_came_from_the_cache(tmp_path, worker_epochs):
    names = write_pngs(tmp_path, 12)
    manifest = write_manifest(tmp_path, names)

    def datamodule(cache: bool) -> ManifestDatamodule:
        loader = LoadImage("path", cache_dir=str(tmp_path / "cache") if cache else None)
        module = ManifestDatamodule(
            manifest, {"x": loader}, batch_size=3, num_workers=2, shuffle=False
        )
        module.setup("fit")
        return module

    module = datamodule(cache=True)
    train = module.train_dataloader()
    through_workers = [batch["x"] for batch in train]
    assert worker_epochs == [2]  # the first epoch decodes: workers pay off
    # Every training file has now arrived from the cache by reference: the main process
    # reads the next epochs itself, and they are the same batches.
    in_main = [batch["x"] for batch in train]
    assert worker_epochs == [2]
    assert len(in_main) == len(through_workers) == 3
    assert all(torch.equal(a, b) for a, b in zip(through_workers, in_main, strict=True))
    # The validation files have not been read yet: that loader still uses its workers.
    list(module.val_dataloader())
    assert worker_epochs == [2, 2]
    # A new datamodule on the same cache starts with workers again (what it knows is its
    # own); so does one without a cache, every epoch.
    list(datamodule(cache=True).train_dataloader())
    assert worker_epochs == [2, 2, 2]
    uncached = datamodule(cache=False).train_dataloader()
    list(uncached), list(uncached)
    assert worker_epochs == [2, 2, 2, 2, 2]
