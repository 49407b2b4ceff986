"""How much does the serotiny CLI cost over a plain Lightning script doing the same work?

Prints, measured in this one run:
  * wall time of `serotiny train` (tiny model, a few steps) divided by an equivalent plain
    Lightning script: same data, same network, same Trainer settings, tracked in MLflow with
    checkpoints logged as artifacts. Target: 1.3 or less.
  * `serotiny --help` latency. Target: 0.5 s or less.

Both trainings run in fresh subprocesses (imports included, as a user pays them), each on a
SQLite store that was created beforehand, alternating, and the medians are compared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
HELP_REPEATS = 10
STEPS = 8

PLAIN_SCRIPT = """
import sys
import lightning.pytorch as pl
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

root, uri, name = sys.argv[1], sys.argv[2], sys.argv[3]
pl.seed_everything(42, workers=True)
table = pd.read_csv(f"{root}/data/manifest.csv")
features = [c for c in table.columns if c.startswith("feature_")]

def loader(split, shuffle):
    part = table[table["split"] == split]
    x = torch.tensor(part[features].to_numpy(), dtype=torch.float32)
    y = torch.tensor(part["label"].to_numpy(), dtype=torch.long)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=shuffle
    )

class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)
        )

    def step(self, batch, stage):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log(f"{stage}_loss", loss, on_epoch=True, on_step=False)
        return loss

    def training_step(self, batch, i):
        return self.step(batch, "train")

    def validation_step(self, batch, i):
        self.step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)

logger = MLFlowLogger(
    experiment_name="default", run_name=name, tracking_uri=uri, log_model=True,
    artifact_location=f"{root}/mlartifacts",
)
logger.log_hyperparams({"lr": 0.01, "batch_size": 32, "max_epochs": 1})
trainer = pl.Trainer(
    max_epochs=1, max_steps=int(sys.argv[4]), accelerator="cpu", devices=1,
    logger=logger, enable_progress_bar=False, enable_model_summary=False,
    log_every_n_steps=5, default_root_dir=f"{root}/outputs",
    callbacks=[
        EarlyStopping(monitor="val_loss", patience=5),
        ModelCheckpoint(monitor="val_loss", save_last=True),
    ],
)
trainer.fit(Classifier(), loader("train", True), loader("valid", False))
"""


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return elapsed


def main() -> None:
    from cookiecutter.main import cookiecutter
    from mlflow import MlflowClient

    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="serotiny-bench-") as folder:
        project = Path(
            cookiecutter(
                str(REPO_ROOT / "project-template"),
                no_input=True,
                output_dir=folder,
                extra_context={"project_name": "Bench Project"},
            )
        )
        script = Path(folder) / "plain_lightning.py"
        script.write_text(PLAIN_SCRIPT)
        serotiny_uri = f"sqlite:///{project / 'mlruns.db'}"
        plain_uri = f"sqlite:///{Path(folder) / 'plain.db'}"
        for uri in (serotiny_uri, plain_uri):  # pay the one-off schema creation up front
            MlflowClient(tracking_uri=uri).search_experiments()

        serotiny_times, plain_times = [], []
        for repeat in range(REPEATS):
            serotiny_times.append(
                timed(
                    [
                        str(bin_dir / "serotiny"),
                        "train",
                        f"++mlflow.run_name=bench-{repeat}",
                        "++trainer.max_epochs=1",
                        f"++trainer.max_steps={STEPS}",
                        "++trainer.accelerator=cpu",
                    ],
                    project,
                )
            )
            plain_times.append(
                timed(
                    [
                        sys.executable,
                        str(script),
                        str(project),
                        plain_uri,
                        f"plain-{repeat}",
                        str(STEPS),
                    ],
                    project,
                )
            )
        help_times = [
            timed([str(bin_dir / "serotiny"), "--help"], project) for _ in range(HELP_REPEATS)
        ]

    serotiny_median = statistics.median(serotiny_times)
    plain_median = statistics.median(plain_times)
    help_median = statistics.median(help_times)
    ratio = serotiny_median / plain_median
    print(f"serotiny train: {serotiny_median:.2f} s median of {REPEATS} ({STEPS} steps)")
    print(f"plain Lightning script: {plain_median:.2f} s median of {REPEATS}")
    print(
        f"train overhead ratio serotiny/plain: {ratio:.2f} (target <= 1.3) "
        f"{'OK' if ratio <= 1.3 else 'MISSED'}"
    )
    print(
        f"serotiny --help latency: {help_median:.3f} s median of {HELP_REPEATS} "
        f"(target <= 0.5 s) {'OK' if help_median <= 0.5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
