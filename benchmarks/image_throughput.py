"""Image throughput: ManifestDatamodule + LoadImage, without and with the decoded-image cache,
against a hand-written PIL Dataset, as measured ratios.

Writes 4,000 PNG files (96x96 RGB, smooth shapes plus noise, so they compress as photographs
do rather than as pure noise) and a manifest naming them in a temporary folder, then prints,
from one run, images/s over one epoch of the training split at batch size 64 for:

- the baseline: a hand-written ``torch.utils.data.Dataset`` that opens each PNG with PIL and
  returns a float32 ``(3, 96, 96)`` tensor, under the default DataLoader;
- serotiny's ManifestDatamodule with ``LoadImage`` (the same float32 tensors), without the
  cache, and with it: the first epoch (an empty cache folder, every image decoded and
  stored) and the second (every image read back);

at 0 and 2 workers, each as a ratio to the baseline at the same number of workers. Targets:
without the cache >= 1.0x the baseline; with the cache, from the second epoch, >= 5x.

With workers, every batch also crosses from a worker to the main process: torch puts a
float32 batch in a new shared-memory segment, which here costs more than reading the batch
from the cache, for the baseline and serotiny alike. serotiny's workers send a cached batch as
a reference to its cache entries instead (``BoundLoader.reference``), which the main process
reads.

The machine is shared, so the configurations are measured in turn, round after round, and the
medians are reported. Timing starts once an epoch's first batch is out (worker start-up is not
throughput), as in ``datamodule_throughput.py``.

Run: ``.venv/bin/python benchmarks/image_throughput.py [--images N] [--rounds R]`` (about a
minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from serotiny.datamodules import ManifestDatamodule
from serotiny.io.dataframe.loaders import LoadImage

SIZE = 96
BATCH_SIZE = 64
TARGETS = {"uncached": 1.0, "cached, epoch 2": 5.0}


def make_images(folder: Path, count: int) -> Path:
    """``count`` PNG files and a manifest (all rows train, a few valid) naming them."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    names = []
    for index in range(count):
        coarse = rng.integers(0, 224, (SIZE // 16, SIZE // 16, 3), dtype=np.uint8)
        smooth = np.kron(coarse, np.ones((16, 16, 1), dtype=np.uint8))
        pixels = smooth + rng.integers(0, 32, (SIZE, SIZE, 3), dtype=np.uint8)
        names.append(f"images/{index:05d}.png")
        Image.fromarray(pixels).save(folder / names[-1])
    frame = pd.DataFrame({"path": names, "split": "train"})
    frame.loc[frame.index[-count // 20 :], "split"] = "valid"
    manifest = folder / "manifest.csv"
    frame.to_csv(manifest, index=False)
    return manifest


class PilImages(torch.utils.data.Dataset):
    """The baseline, as a project would write it: one PIL read per item."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            array = np.array(image.convert("RGB"))
        return torch.from_numpy(array).permute(2, 0, 1).float()


def images_per_second(batches: Iterable) -> float:
    """One epoch, timed from its first batch on."""
    iterator = iter(batches)
    next(iterator)
    count, start = 0, time.perf_counter()
    for batch in iterator:
        count += len(batch["x"] if isinstance(batch, dict) else batch)
    return count / (time.perf_counter() - start)


def datamodule(manifest: Path, workers: int, cache_dir: Path | None) -> ManifestDatamodule:
    loader = LoadImage("path", cache_dir=None if cache_dir is None else str(cache_dir))
    module = ManifestDatamodule(
        manifest, {"x": loader}, batch_size=BATCH_SIZE, num_workers=workers, pin_memory=False
    )
    module.setup("fit")
    return module


def one_round(manifest: Path, workers: int, scratch: Path) -> dict[str, float]:
    """Every configuration once, at ``workers`` workers, with a fresh cache folder."""
    frame = pd.read_csv(manifest)
    paths = [str(manifest.parent / path) for path in frame.loc[frame.split == "train", "path"]]
    baseline = torch.utils.data.DataLoader(
        PilImages(paths), batch_size=BATCH_SIZE, shuffle=True, num_workers=workers
    )
    rates = {"baseline": images_per_second(baseline)}
    rates["uncached"] = images_per_second(datamodule(manifest, workers, None).train_dataloader())
    cache_dir = scratch / "cache"
    cached = datamodule(manifest, workers, cache_dir)
    rates["cached, epoch 1"] = images_per_second(cached.train_dataloader())
    rates["cached, epoch 2"] = images_per_second(cached.train_dataloader())
    shutil.rmtree(cache_dir)
    return rates


def medians(measure: Callable[[int], dict[str, float]], rounds: int) -> dict[int, dict]:
    """Alternate worker counts and configurations round after round; medians per figure."""
    runs: dict[int, list[dict[str, float]]] = {0: [], 2: []}
    for _ in range(rounds):
        for workers in runs:
            runs[workers].append(measure(workers))
    return {
        workers: {name: statistics.median(run[name] for run in results) for name in results[0]}
        for workers, results in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="serotiny-bench-images-") as folder:
        manifest = make_images(Path(folder), args.images)
        print(
            f"{args.images:,} PNG files, {SIZE}x{SIZE} RGB, in "
            f"{time.perf_counter() - started:.0f} s; batch size {BATCH_SIZE}; "
            f"CPUs {os.cpu_count()}; medians of {args.rounds} alternated rounds"
        )
        # Images written in the last 2 s are not cached (see DecodedCache); let them settle.
        time.sleep(2)
        results = medians(lambda workers: one_round(manifest, workers, Path(folder)), args.rounds)

    for workers, rates in results.items():
        baseline = rates["baseline"]
        print(f"\n{workers} workers, images/s (ratio to the hand-written PIL Dataset):")
        for name, rate in rates.items():
            ratio = rate / baseline
            target = TARGETS.get(name)
            verdict = (
                ""
                if target is None
                else (f"  {'meets' if ratio >= target else 'MISSES'} target {target:.1f}x")
            )
            print(f"  {name:<17} {rate:>9,.0f}  {ratio:5.2f}x{verdict}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
