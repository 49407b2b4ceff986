"""What does tracking cost a training whose checkpoints are big?

Prints, measured in this one run: the wall time of serotiny's train command for a model
whose checkpoint is about 200 MB (5 short epochs of about 2 s: each of the demo data's 7
training steps takes 0.25 s, as a real model's step would; best and last checkpoints every
epoch),
tracked in the embedded SQLite store and in an ``mlflow server`` (artifacts proxied), each as
a ratio to a plain Lightning training of the same model on the same data that saves the same
checkpoints (last and best) locally, with no logger. Target: 1.05 or less on both stores.

The three are measured in turn, round after round, and the medians compared; each runs in
this process (the command's own start-up, imports included, is what
``benchmarks/cli_overhead.py`` measures). Every serotiny training is a new run, so each
one makes, stores and ends a run as a real one does, and ends only when MLflow holds all of
it: its checkpoints, metrics and status.

Where a server's extra time goes (measured on 2 cores): a new run waits
``mlflow.claim_settle_seconds`` (1 s) before it trains, because a server has no lock for the
one-run-per-name claim (SQLite's file lock needs no wait); and the last epoch's best and last
checkpoints, one file on disk, are two uploads that must reach the server before the command
ends (about 0.5 s each through MLflow's artifact proxy).

Run: ``.venv/bin/python benchmarks/tracking_overhead.py [--rounds R]`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))
PACKAGE = "a_tiny_project"
EPOCHS = 5
BALLAST = 50_000_000  # float32 values: a checkpoint of about 200 MB
BIG_MODEL = f'''
import torch

from serotiny.models import BasicModel


class BigCheckpointModel(BasicModel):
    """The template's MLP classifier, carrying {BALLAST:,} frozen values (about 200 MB)
    that every checkpoint saves, as a large pretrained network's would."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        generator = torch.Generator().manual_seed(0)
        ballast = torch.rand({BALLAST}, generator=generator)
        self.ballast = torch.nn.Parameter(ballast, requires_grad=False)
'''


# Each training step takes this long, as a real model's would (the demo model alone takes
# microseconds): an epoch of the demo data's 7 batches takes about 2 s.
STEP_SECONDS = 0.25


def make_project(folder: Path) -> Path:
    """A project rendered from the template, with ``model=big``."""
    from cli_helpers import add_slow_callback, render_project

    root = render_project(folder)
    (root / PACKAGE / "big.py").write_text(BIG_MODEL)
    config = root / PACKAGE / "config" / "model"
    text = (config / "default.yaml").read_text()
    text = text.replace("serotiny.models.BasicModel", f"{PACKAGE}.big.BigCheckpointModel")
    (config / "big.yaml").write_text(text)
    add_slow_callback(root, STEP_SECONDS)
    sys.path.insert(0, str(root))
    return root


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` on a free port (SQLite backend, artifacts proxied to a folder)."""
    from cli_helpers import free_port

    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{folder / 'server.db'}"]
    command += ["--artifacts-destination", str(folder / "server-artifacts")]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return server, uri
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def plain_lightning(root: Path, folder: Path) -> float:
    """A plain Lightning training of the same model and data, checkpoints saved locally."""
    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from inprocess import Workspace
    from lightning.pytorch.callbacks import ModelCheckpoint

    cfg = Workspace(root, folder).compose("train", "model=big", "trainer/callbacks=slow")
    started = time.perf_counter()  # as serotiny's: from building the model and data
    model, data = instantiate(cfg.model), instantiate(cfg.data)
    slow = instantiate(cfg.trainer.callbacks[0])
    checkpoints = ModelCheckpoint(folder, monitor="val_loss", save_top_k=1, save_last=True)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[checkpoints, slow],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
    )
    trainer.fit(model, datamodule=data)
    return time.perf_counter() - started


def serotiny_train(root: Path, folder: Path, uri: str | None, name: str) -> float:
    """serotiny's train command (a new run), until MLflow holds all of it."""
    from inprocess import Workspace

    overrides = ["model=big", f"++trainer.max_epochs={EPOCHS}", f"++mlflow.run_name={name}"]
    overrides += ["trainer/callbacks=slow", "++print_config=false"]
    if uri is not None:
        overrides.append(f"++mlflow.tracking_uri={uri}")
    cfg = Workspace(root, folder).compose("train", *overrides)
    from serotiny.commands import run_command

    started = time.perf_counter()
    run_command("train", cfg)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="serotiny-bench-") as scratch:
        folder = Path(scratch)
        root = make_project(folder)
        server, server_uri = start_server(folder)
        times: dict[str, list[float]] = {"plain": [], "sqlite": [], "server": []}
        try:
            serotiny_train(root, folder / "warm", None, "warm-up")  # imports, store made
            for index in range(rounds):
                times["plain"].append(plain_lightning(root, folder / f"plain{index}"))
                times["sqlite"].append(
                    serotiny_train(root, folder / f"sqlite{index}", None, f"sqlite{index}")
                )
                times["server"].append(
                    serotiny_train(root, folder / f"server{index}", server_uri, f"server{index}")
                )
                print(
                    f"round {index + 1}: "
                    + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items())
                )
        finally:
            server.terminate()
            server.wait(timeout=60)
    plain = statistics.median(times["plain"])
    print(f"\nplain Lightning, checkpoints saved locally: {plain:.1f} s (median of {rounds})")
    for store in ("sqlite", "server"):
        median = statistics.median(times[store])
        print(
            f"serotiny train, {store:6s}: {median:.1f} s = {median / plain:.2f}x (target <= 1.05)"
        )


if __name__ == "__main__":
    main()
