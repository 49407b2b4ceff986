"""ManifestDatamodule throughput, manifest open time and worker memory, as measured ratios.

Generates a 1,000,000-row manifest (64 float32 features, an integer label, a split column) as
CSV and Parquet in a temporary folder, then prints, from one run:

- samples/s iterating ``train_dataloader()`` at batch size 256 with 0 and 2 workers, as a ratio
  to (a) the ceiling: random-index slicing of the same data preloaded as torch tensors, and
  (b) a naive per-row pandas Dataset under the default DataLoader (measured over a limited
  number of batches, as it is ~100x slower). Targets: >= 0.5 of the ceiling, >= 20x naive.
- the time to open the CSV and the Parquet manifest, as a ratio to pyarrow reading the same
  file alone (target <= 1.3); the full ``setup`` (open + checks + column extraction) is shown
  beside it.
- peak memory (proportional set size summed over the process and its workers, so pages that
  forked workers share are counted once) with 2 workers as a ratio to 0 workers (target <= 1.5).

With only in-memory loaders the datamodule gathers batches in the main process whatever
``num_workers`` says (see ``ManifestDatamodule``), so "2 workers" is also measured with
``gather_in_workers=True``: the worker path a manifest with a file loader takes.

Run: ``.venv/bin/python benchmarks/datamodule_throughput.py [--rows N]`` (about 2-3 minutes on
2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

from serotiny.datamodules import ManifestDatamodule
from serotiny.io.dataframe.loaders import LoadClass, LoadColumns
from serotiny.io.dataframe.readers import read_manifest

FEATURES = 64
BATCH_SIZE = 256
NAIVE_BATCHES = 40
REPEATS = 3


def make_manifest(folder: Path, rows: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    columns = {f"feature_{j}": pa.array(features[:, j]) for j in range(FEATURES)}
    columns["label"] = pa.array(rng.integers(0, 10, rows))
    splits = rng.choice(np.array(["train", "valid", "test"]), rows, p=[0.8, 0.1, 0.1])
    columns["split"] = pa.array(splits)
    table = pa.table(columns)
    parquet, csv = folder / "manifest.parquet", folder / "manifest.csv"
    pq.write_table(table, parquet)
    pacsv.write_csv(table, csv)
    return csv, parquet


def loaders() -> dict:
    return {"x": LoadColumns(startswith="feature_"), "y": LoadClass("label", num_classes=10)}


def best_time(function: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def open_times(path: Path) -> dict[str, float]:
    reader = pq.read_table if path.suffix == ".parquet" else pacsv.read_csv

    def setup() -> None:
        ManifestDatamodule(path, loaders()).setup("fit")

    best_time(lambda: reader(path))  # warm the page cache and the allocator once
    return {
        "pyarrow": best_time(lambda: reader(path)),
        "open": best_time(lambda: read_manifest(path)),
        "setup": best_time(setup),
    }


def samples_per_second(batches: Callable[[], object], limit: int | None = None) -> float:
    """Median over REPEATS passes; timing starts once the first batch is out (worker start-up
    and the sampler's first permutation are not throughput)."""
    rates = []
    for _ in range(REPEATS):
        iterator = iter(batches())
        next(iterator)
        count, start = 0, time.perf_counter()
        for index, batch in enumerate(iterator):
            count += len(batch["y"])
            if limit is not None and index + 1 >= limit:
                break
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


class NaiveRows(torch.utils.data.Dataset):
    """One pandas row per item, as the original serotiny's DataframeDataset did."""

    def __init__(self, frame, feature_columns: list[str]) -> None:
        self.frame = frame
        self.feature_columns = feature_columns

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index: int) -> dict:
        row = self.frame.iloc[index]
        x = torch.tensor(row[self.feature_columns].to_numpy(dtype=np.float32))
        return {"x": x, "y": int(row["label"])}


def throughput(parquet: Path) -> dict[str, float]:
    results = {}
    datamodules = {
        "ours, 0 workers": ManifestDatamodule(parquet, loaders(), batch_size=BATCH_SIZE),
        "ours, 2 workers": ManifestDatamodule(
            parquet, loaders(), batch_size=BATCH_SIZE, num_workers=2
        ),
        "ours, 2 workers forced": ManifestDatamodule(
            parquet, loaders(), batch_size=BATCH_SIZE, num_workers=2, gather_in_workers=True
        ),
    }
    for name, datamodule in datamodules.items():
        datamodule.setup("fit")
        results[name] = samples_per_second(datamodule.train_dataloader)

    train = datamodules["ours, 0 workers"].train_dataloader().dataset
    rows = train.rows
    x, y = train.loaders["x"].values.clone(), train.loaders["y"].values.clone()

    def ceiling_batches(gather: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        def batches():
            for index in torch.randperm(len(rows)).split(BATCH_SIZE):
                yield {"x": gather(x, index), "y": gather(y, index)}

        return batches

    # The ceiling as specified, ``tensor[index]``; and a stricter one with index_select, the
    # faster gather the datamodule itself uses, so no ratio rests on the choice of primitive.
    results["ceiling"] = samples_per_second(ceiling_batches(lambda t, i: t[i]))
    results["ceiling, index_select"] = samples_per_second(
        ceiling_batches(lambda t, i: torch.index_select(t, 0, i))
    )

    frame = pq.read_table(parquet).to_pandas()
    frame = frame[frame["split"] == "train"].reset_index(drop=True)
    feature_columns = [f"feature_{j}" for j in range(FEATURES)]
    for workers in (0, 2):
        naive = NaiveRows(frame, feature_columns)
        results[f"naive, {workers} workers"] = samples_per_second(
            lambda naive=naive, workers=workers: torch.utils.data.DataLoader(
                naive, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers
            ),
            limit=NAIVE_BATCHES,
        )
    return results


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(found)


def pss(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def pss_of_tree(pid: int) -> int | None:
    """Proportional set size (bytes) of a process and its descendants, or None when a process
    started or ended while reading: a parent read before a fork and its child read after it
    would count the shared pages twice (this showed up as ~300 MB phantom peaks)."""
    before = process_tree(pid)
    try:
        total = sum(pss(member) for member in before)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return total if process_tree(pid) == before else None


def memory_child(parquet: Path, workers: int, forced: bool) -> None:
    """Runs in a fresh process: setup, then one pass over 1,000 batches; prints peak PSS."""
    peak = {"all": 0, "iterating": 0}
    phase = {"now": "all"}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            used = pss_of_tree(os.getpid())
            if used is None:
                continue
            peak["all"] = max(peak["all"], used)
            if phase["now"] == "iterating":
                peak["iterating"] = max(peak["iterating"], used)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    datamodule = ManifestDatamodule(
        parquet, loaders(), batch_size=BATCH_SIZE, num_workers=workers, gather_in_workers=forced
    )
    datamodule.setup("fit")
    phase["now"] = "iterating"
    for index, _ in enumerate(datamodule.train_dataloader()):
        if index >= 1000:
            break
    time.sleep(0.05)
    stop.set()
    sampler.join()
    print(json.dumps(peak))


def peak_memory(parquet: Path, workers: int, forced: bool) -> dict[str, int]:
    command = [sys.executable, __file__, "--memory-child", str(parquet), str(workers)]
    command += ["--forced"] if forced else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-child", nargs=2, metavar=("PARQUET", "WORKERS"))
    parser.add_argument("--forced", action="store_true")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child[0]), int(args.memory_child[1]), args.forced)
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="serotiny-bench-") as folder:
        csv, parquet = make_manifest(Path(folder), args.rows)
        size = {path.suffix: f"{path.stat().st_size / 1e6:.0f} MB" for path in (csv, parquet)}
        print(
            f"manifest: {args.rows:,} rows x {FEATURES} float32 features + label + split "
            f"(CSV {size['.csv']}, Parquet {size['.parquet']}); CPUs {os.cpu_count()}"
        )

        rates = throughput(parquet)
        ceiling, strict = rates["ceiling"], rates["ceiling, index_select"]
        naive_0, naive_2 = rates["naive, 0 workers"], rates["naive, 2 workers"]
        print(
            f"\nthroughput at batch size {BATCH_SIZE}, samples/s: ceiling {ceiling:,.0f} "
            f"(with index_select {strict:,.0f}); naive per-row pandas {naive_0:,.0f} "
            f"with 0 workers, {naive_2:,.0f} with 2"
        )
        for name in ("ours, 0 workers", "ours, 2 workers", "ours, 2 workers forced"):
            workers = 0 if "0 workers" in name else 2
            of_ceiling = rates[name] / ceiling
            of_naive = rates[name] / rates[f"naive, {workers} workers"]
            print(
                f"  {name:<23} {rates[name]:>10,.0f}  {of_ceiling:.2f}x ceiling "
                f"({verdict(of_ceiling >= 0.5)} 0.5; {rates[name] / strict:.2f}x the strict one)"
                f"  {of_naive:6.1f}x naive ({verdict(of_naive >= 20)} 20)"
            )

        print("\nopening the manifest, best of 3, as a ratio to pyarrow reading the file alone:")
        for path in (csv, parquet):
            times = open_times(path)
            ratio, setup = times["open"] / times["pyarrow"], times["setup"] / times["pyarrow"]
            print(
                f"  {path.suffix:<9} pyarrow {times['pyarrow']:.3f} s, open {times['open']:.3f} s"
                f" = {ratio:.2f}x ({verdict(ratio <= 1.3)} 1.3); setup (open, checks, column "
                f"extraction) {times['setup']:.3f} s = {setup:.2f}x"
            )

        print("\npeak memory, PSS of the process and its workers (setup + 1,000 batches):")
        zero = peak_memory(parquet, 0, forced=False)
        for name, forced in (("2 workers", False), ("2 workers forced", True)):
            two = peak_memory(parquet, 2, forced=forced)
            ratio = two["all"] / zero["all"]
            iterating = two["iterating"] / zero["iterating"]
            print(
                f"  {name:<17} {two['all'] / 2**20:,.0f} MiB vs 0 workers "
                f"{zero['all'] / 2**20:,.0f} MiB = {ratio:.2f}x ({verdict(ratio <= 1.5)} 1.5); "
                f"while iterating {iterating:.2f}x"
            )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
