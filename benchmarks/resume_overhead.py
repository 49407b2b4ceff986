"""How much slower does a resumed run reach its first training step than a fresh one?

Prints, measured in this one run: the time from launching `serotiny train` to its first
training step when the command resumes a failed run (finding the run, checking its config,
downloading and verifying its checkpoint, restoring the Trainer), as a ratio to a fresh
start of the same config. Target: 1.2 or less.

A callback in the benchmark project records the wall-clock time of the first training batch;
a failed run is made by a callback that raises at a chosen epoch when an environment
variable asks it to (the config, and so the config hash, stays the same).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
CALLBACKS = '''
import os
import time
from pathlib import Path

import lightning.pytorch as pl


class FirstStepClock(pl.Callback):
    """Writes the wall-clock time of the first training batch to $BENCH_STAMP."""

    def __init__(self) -> None:
        self.done = False

    def on_train_batch_start(self, *args, **kwargs) -> None:
        if not self.done and os.environ.get("BENCH_STAMP"):
            Path(os.environ["BENCH_STAMP"]).write_text(repr(time.time()))
            self.done = True


class FailAtEpoch(pl.Callback):
    """Raises at the epoch in $BENCH_FAIL_AT_EPOCH, to leave a FAILED run behind."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        wanted = os.environ.get("BENCH_FAIL_AT_EPOCH")
        if wanted is not None and trainer.current_epoch == int(wanted):
            raise RuntimeError("benchmark failure")
'''


def launch(project: Path, name: str, stamp: Path, fail_at: int | None) -> tuple[float, int]:
    env = dict(os.environ, BENCH_STAMP=str(stamp))
    env.pop("BENCH_FAIL_AT_EPOCH", None)
    if fail_at is not None:
        env["BENCH_FAIL_AT_EPOCH"] = str(fail_at)
    stamp.unlink(missing_ok=True)
    command = [
        str(Path(sys.executable).parent / "serotiny"),
        "train",
        "trainer/callbacks=bench",
        "++trainer.max_epochs=4",
        "++trainer.accelerator=cpu",
        "++print_config=false",
        f"++mlflow.run_name={name}",
    ]
    start = time.time()
    completed = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    if not stamp.exists():
        raise SystemExit(f"no training step in {name}:\n{completed.stderr[-3000:]}")
    return float(stamp.read_text()) - start, completed.returncode


def main() -> None:
    from cookiecutter.main import cookiecutter

    with tempfile.TemporaryDirectory(prefix="serotiny-bench-") as folder:
        project = Path(
            cookiecutter(
                str(REPO_ROOT / "project-template"),
                no_input=True,
                output_dir=folder,
                extra_context={"project_name": "Bench Project"},
            )
        )
        (project / "bench_project" / "bench.py").write_text(CALLBACKS)
        (project / "bench_project" / "config" / "trainer" / "callbacks" / "bench.yaml").write_text(
            "- _target_: bench_project.bench.FirstStepClock\n"
            "- _target_: bench_project.bench.FailAtEpoch\n"
        )
        stamp = Path(folder) / "stamp"
        env_path = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), env_path]))
        launch(project, "warm-up", stamp, None)  # creates the store; not measured

        fresh, resumed = [], []
        for repeat in range(REPEATS):
            seconds, _ = launch(project, f"fresh-{repeat}", stamp, None)
            fresh.append(seconds)
            _, code = launch(project, f"resumed-{repeat}", stamp, fail_at=2)
            assert code != 0, "the failing run did not fail"
            seconds, code = launch(project, f"resumed-{repeat}", stamp, None)
            assert code == 0, "the resumed run did not finish"
            resumed.append(seconds)

    fresh_median, resumed_median = statistics.median(fresh), statistics.median(resumed)
    ratio = resumed_median / fresh_median
    print(f"fresh start to first step:   {fresh_median:.2f} s (median of {REPEATS})")
    print(f"resumed start to first step: {resumed_median:.2f} s (median of {REPEATS})")
    print(
        f"resume overhead ratio: {ratio:.2f} (target <= 1.2) {'OK' if ratio <= 1.2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
