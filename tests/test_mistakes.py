"""Every user mistake is one line on stderr and exit status 2, and leaves no run behind.

A table of the mistakes users make (issue 11): commands, overrides, config files, settings,
trainer options, models that do not fit their data, manifests, images, run names, tracking
URIs, stores and folders that cannot be written or are damaged, runs whose checkpoints are
damaged. Each goes through the real command line (the contract is the command line's) and
must end with exactly one line on stderr, ``serotiny: error: ...`` naming what is wrong,
exit status 2, and the tracking store exactly as it was: no run made, none changed. A
mistake that only training can find (an image file cut short, past the first batch) leaves
its run FAILED, and still says so in one line.

The commands run through :class:`forked_cli.ForkedCli`: one server imports torch, Lightning
and MLflow once, and each command is a process forked from it, so the table costs seconds
per mistake rather than an interpreter start each. Mistakes share two project copies per
module: ``fresh`` (no run) and ``trained`` (run ``good`` and the runs
``mistake_projects.add_trained_runs`` makes).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import CliResult
from forked_cli import ForkedCli
from mistake_projects import add_mistake_files, add_trained_runs, runs_in, store_snapshot

TRAIN = "train"
QUIET = "print_config=false"  # the config tree a training prints first is not the report
BRIEF_TRAINING = ("++trainer.max_epochs=1", "++trainer.limit_train_batches=2")
# A training as long as one epoch of the demo images (Lightning warns of fewer batches than
# its logging interval, a line on stderr of its own).
ONE_EPOCH = ("++trainer.max_epochs=1", "++trainer.log_every_n_steps=1")


@dataclass(frozen=True)
class Mistake:
    """A command that is a mistake, what its one line must say, and where it runs."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    project: str = "fresh"
    #: Found only by training: its run is left FAILED (and nothing else changes).
    in_training: bool = False
    cwd: str = "{root}"


def m(id: str, *args: str, says: tuple[str, ...] | str, **options: object) -> Mistake:
    """A row of the table; ``says`` holds the fragments its line must contain."""
    fragments = (says,) if isinstance(says, str) else says
    return Mistake(id, args, fragments, **options)  # type: ignore[arg-type]


D = "++data.path={root}/data"
MISTAKES = [
    # The command line itself.
    m("misspelled-command", "trian", says=("unknown command 'trian'", "serotiny train")),
    m("misspelled-test", "tset", says="did you mean 'serotiny test'"),
    m("misspelled-predict", "prediction", says="serotiny predict"),
    m("unknown-flag", TRAIN, "--multirn", says=("unknown flag --multirn", "--multirun")),
    m("missing-config-dir", TRAIN, "--config-dir", "/no/such/dir", says="is not a folder"),
    m("config-dir-without-value", TRAIN, "--config-dir", says="--config-dir needs a value"),
    m("outside-a-project", TRAIN, says="not inside a serotiny project", cwd="{root}/.."),
    # Overrides and config files.
    m("unknown-group-option", TRAIN, "model=nope", says=("model/nope", "tabular_vae")),
    m("malformed-override", TRAIN, "trainer.max_epochs=[1", says="malformed override"),
    m("new-key-without-plus", TRAIN, "trainer.max_epochz=3", says="trainer.max_epochz"),
    m("unknown-experiment", TRAIN, "experiment=nope", says=("experiment/nope", "example")),
    m("yaml-error-in-group", TRAIN, "data=broken", says=("broken.yaml", "not valid YAML")),
    m(
        "yaml-error-in-train-yaml",
        TRAIN,
        "--config-dir",
        "{root}/broken_config",
        says=("train.yaml is not valid YAML", "line"),
    ),
    m("missing-interpolation-key", TRAIN, "model=interp", says="model.input_size"),
    m("missing-value", TRAIN, "++model.num_classes=???", says="model.num_classes"),
    m("bad-sweep-value", TRAIN, "--multirun", "seed=1,abc", says="seed"),
    m("bad-sweep-option", TRAIN, "--multirun", "model=default,nope", says="model/nope"),
    # serotiny's settings.
    m("seed-not-a-number", TRAIN, "seed=abc", says="seed"),
    m("misspelled-setting", TRAIN, "++resume.allow_config_chnage=true", says="allow_config_change"),
    m("misspelled-section", TRAIN, "++chekpoint.monitor=val_loss", says="'checkpoint'"),
    m("monitor-mode", TRAIN, "++checkpoint.mode=maximum", says="expected one of [min, max]"),
    m("checkpoint-choice", "test", "++checkpoint.use=worst", says="[best, last]"),
    m("prediction-format", "predict", "++predictions.format=xlsx", says="[parquet, csv]"),
    m("stale-seconds", TRAIN, "++resume.stale_after_seconds=abc", says="stale_after_seconds"),
    m("print-config-not-bool", TRAIN, "print_config=maybe", says="print_config"),
    m("one-fold", TRAIN, QUIET, "++cv.folds=1", says="at least 2 folds"),
    # Trainer options.
    m("trainer-option-misspelled", TRAIN, "++trainer.max_epochz=3", says="max_epochs"),
    m("max-epochs-text", TRAIN, "++trainer.max_epochs=abc", says="trainer.max_epochs='abc'"),
    m("max-epochs-fraction", TRAIN, "++trainer.max_epochs=2.5", says="trainer.max_epochs=2.5"),
    m("gradient-clip-text", TRAIN, "++trainer.gradient_clip_val=abc", says="gradient_clip_val"),
    m("accelerator-missing", TRAIN, "++trainer.accelerator=tpu", says="trainer"),
    m("strategy-unknown", TRAIN, "++trainer.strategy=nope", says="strategy='nope'"),
    m("precision-unknown", TRAIN, "++trainer.precision=7", says="trainer.precision=7"),
    m("no-devices", TRAIN, "++trainer.devices=0", says="devices=0"),
    m("not-a-callback", TRAIN, "trainer/callbacks=notcb", says="not a Lightning Callback"),
    m(
        "callback-class-misspelled",
        TRAIN,
        "++trainer.callbacks.0._target_=lightning.pytorch.callbacks.EarlyStoping",
        says="EarlyStoping",
    ),
    m(
        "early-stopping-monitor",
        TRAIN,
        "++trainer.callbacks.0.monitor=val_los",
        says=("'val_los' is not a metric", "val_loss"),
    ),
    m(
        "checkpoint-monitor",
        TRAIN,
        "++checkpoint.monitor=val_acc",
        says="'val_acc' is not a metric",
    ),
    # Models that cannot be built, or do not fit their data.
    m("model-module-missing", TRAIN, "++model._target_=no_such.Model", says="no_such.Model"),
    m("not-a-model", TRAIN, "model=not_a_model", says="not a LightningModule"),
    m("not-a-datamodule", TRAIN, "++data._target_=collections.Counter", says="LightningDataModule"),
    m("input-size", TRAIN, "++model.network.in_features=5", says="expects 5 input features"),
    m("vae-x-dim", TRAIN, "model=tabular_vae", "++model.x_dim=5", says="x_dim is 5"),
    m("project-model-shapes", TRAIN, "model=linear", "++model.in_features=5", says="mat1"),
    m("missing-batch-key", TRAIN, "model=linear", "~data.loaders.x", says="KeyError: 'x'"),
    m(
        "float-targets",
        TRAIN,
        "++data.loaders.y._target_=serotiny.io.dataframe.loaders.LoadColumns",
        "++data.loaders.y.columns=[feature_0]",
        "~data.loaders.y.column",
        "~data.loaders.y.num_classes",
        says="y float32",
    ),
    m(
        "image-size",
        TRAIN,
        "data=images",
        "model=img_cnn",
        "++model.network.image_size=[4,4]",
        says="model BasicModel",
    ),
    m("negative-learning-rate", TRAIN, "++model.optimizer.lr=-0.1", says="Invalid learning rate"),
    m("optimizer-missing", TRAIN, "++model.optimizer._target_=torch.optim.Nope", says="Nope"),
    m("optimizer-option", TRAIN, "++model.optimizer.momentum=0.9", says="momentum"),
    m("nan-loss", TRAIN, "model=nanloss", says="non-finite loss"),
    m("detached-loss", TRAIN, "model=detachedloss", says="does not depend on the model"),
    # Manifests and data options.
    m("manifest-missing", TRAIN, "++data.path=/no/such/manifest.csv", says="not found"),
    m("manifest-suffix", TRAIN, f"{D}/manifest.txt", says="not a manifest file"),
    m("text-in-features", TRAIN, f"{D}/text.csv", says=("'abc'", "row 5")),
    m("blank-in-features", TRAIN, f"{D}/blank.csv", says=("NaN", "row 5")),
    m("inf-in-features", TRAIN, f"{D}/inf.csv", says=("infinite value", "row 200")),
    m("duplicate-id", TRAIN, f"{D}/dupid.csv", says="duplicate id 'sample_0001'"),
    m("unknown-split", TRAIN, f"{D}/badsplit.csv", says="unknown split value 'trian'"),
    m("label-beyond-classes", TRAIN, f"{D}/badlabel.csv", says="beyond num_classes=3"),
    m("empty-manifest", TRAIN, f"{D}/empty.csv", says="no rows for the 'train' split"),
    m("no-validation-rows", TRAIN, f"{D}/novalid.csv", says="no rows for the 'val' split"),
    m("csv-named-parquet", TRAIN, f"{D}/csv_named.parquet", says="name it .csv"),
    m("binary-csv", TRAIN, f"{D}/binary.csv", says="UTF-8 CSV"),
    m("missing-column", TRAIN, "++data.loaders.y.column=labl", says="'labl': missing column"),
    m("missing-split-column", TRAIN, "++data.split_column=splt", says="'splt'"),
    m("batch-size-zero", TRAIN, "++data.batch_size=0", says="batch_size=0"),
    m("batch-size-negative", TRAIN, "++data.batch_size=-1", says="batch_size=-1"),
    m("workers-negative", TRAIN, "++data.num_workers=-1", says="num_workers=-1"),
    m("dataloader-option", TRAIN, "++data.batchsize=3", says="did you mean 'batch_size'"),
    m(
        "fractions-over-one",
        TRAIN,
        "data=fractions",
        "++data.split_fractions.train=1.5",
        says="add up to 1.7",
    ),
    m("validate-bad-manifest", "validate", f"{D}/text.csv", says="non-numeric value 'abc'"),
    # Images.
    m(
        "image-not-an-image",
        TRAIN,
        "data=images",
        "model=img_cnn",
        f"{D}/images_garbage.csv",
        says=("not_an_image.png", "is not a PNG image"),
    ),
    m(
        "image-empty",
        TRAIN,
        "data=images",
        "model=img_cnn",
        f"{D}/images_empty.csv",
        says=("empty.png", "is empty"),
    ),
    m(
        "image-missing",
        TRAIN,
        "data=images",
        "model=img_cnn",
        f"{D}/images_missing.csv",
        says="'images/none.png' not found",
    ),
    m(
        "image-cut-short",
        TRAIN,
        "data=images",
        "model=img_cnn",
        f"{D}/images_cut.csv",
        "++mlflow.run_name=cut",
        *ONE_EPOCH,
        says=("cut_short.png", "cannot be read"),
        in_training=True,
    ),
    m(
        "image-cut-short-in-worker",
        TRAIN,
        "data=images",
        "model=img_cnn",
        f"{D}/images_cut.csv",
        "++data.num_workers=1",
        "++mlflow.run_name=cut-in-worker",
        *ONE_EPOCH,
        says=("cut_short.png", "cannot be read"),
        in_training=True,
    ),
    # Tracking URIs and stores.
    m("tracking-uri-scheme", TRAIN, "++mlflow.tracking_uri=foo://bar", says="'foo:' URIs"),
    m(
        "tracking-uri-plain-path",
        TRAIN,
        "++mlflow.tracking_uri={root}/runs",
        says=("is a folder", "sqlite:///"),
    ),
    m(
        "store-read-only",
        TRAIN,
        "++mlflow.tracking_uri=sqlite:////sys/serotiny/mlruns.db",
        says="cannot write the tracking store",
    ),
    m(
        "store-under-a-file",
        TRAIN,
        "++mlflow.tracking_uri=sqlite:///{root}/stores/a_file/x.db",
        says="is a file, not a folder",
    ),
    m(
        "store-truncated",
        TRAIN,
        "++mlflow.tracking_uri=sqlite:///{root}/stores/truncated.db",
        says="truncated.db is damaged",
    ),
    m(
        "store-not-a-database",
        "test",
        "++mlflow.run_name=good",
        "++mlflow.tracking_uri=sqlite:///{root}/stores/not_a_database.db",
        says="is not a SQLite database",
    ),
    m(
        "store-is-a-folder",
        TRAIN,
        "++mlflow.tracking_uri=sqlite:///{root}/stores/a_folder.db",
        says="is a folder, not a SQLite file",
    ),
    # Output folders.
    m(
        "output-folder-read-only",
        TRAIN,
        "hydra.run.dir=/sys/serotiny-outputs",
        says="cannot make the output folder /sys/serotiny-outputs",
    ),
    m(
        "sweep-folder-read-only",
        TRAIN,
        "--multirun",
        "hydra.sweep.dir=/sys/serotiny-sweeps",
        "seed=1,2",
        says="hydra.sweep.dir",
    ),
    m(
        "command-folder-read-only",
        TRAIN,
        "++paths.output_dir=/sys/serotiny-out",
        says="paths.output_dir",
    ),
    # Run names and trained runs.
    m(
        "test-unknown-run",
        "test",
        "++mlflow.run_name=never",
        says="no run named 'never'",
        project="trained",
    ),
    m(
        "test-unknown-run-id",
        "test",
        "++mlflow.run_id=0123456789abcdef",
        says="0123456789abcdef",
        project="trained",
    ),
    m("predict-which-run", "predict", says="++mlflow.run_name", project="trained"),
    m(
        "test-unknown-experiment",
        "test",
        "++mlflow.run_name=good",
        "++mlflow.experiment_name=nope",
        says="no MLflow experiment 'nope'",
        project="trained",
    ),
    m(
        "test-damaged-checkpoints",
        "test",
        "++mlflow.run_name=damaged",
        says="no checkpoint can be read",
        project="trained",
    ),
    m(
        "predict-damaged-checkpoints",
        "predict",
        "++mlflow.run_name=damaged",
        says="no checkpoint can be read",
        project="trained",
    ),
    m(
        "test-other-data-shapes",
        "test",
        "++mlflow.run_name=good",
        f"{D}/five.csv",
        says="expects 8 input features",
        project="trained",
    ),
    m(
        "predict-other-data-shapes",
        "predict",
        "++mlflow.run_name=good",
        f"{D}/five.csv",
        says="expects 8 input features",
        project="trained",
    ),
    m(
        "resume-changed-config",
        TRAIN,
        "++mlflow.run_name=failed",
        "++model.optimizer.lr=0.5",
        *BRIEF_TRAINING,
        says="different config",
        project="trained",
    ),
    m(
        "run-name-not-unique",
        TRAIN,
        "++mlflow.run_name=twin",
        says="matches 2 runs",
        project="trained",
    ),
    m(
        "run-still-running",
        TRAIN,
        "++mlflow.run_name=busy",
        "++resume.stale_after_seconds=1e9",
        says="still running",
        project="trained",
    ),
    m(
        "experiment-deleted",
        TRAIN,
        "++mlflow.experiment_name=gone",
        says="is deleted",
        project="trained",
    ),
    m("run-name-quotes", TRAIN, "++mlflow.run_name=a'b\"c", says="malformed override"),
]


def test_the_table_is_long_enough() -> None:
    assert len({mistake.id for mistake in MISTAKES}) == len(MISTAKES) >= 60


@pytest.fixture(scope="module")
def forked() -> Iterator[ForkedCli]:
    """One server that forks every command of this module."""
    server = ForkedCli()
    yield server
    server.close()


@pytest.fixture(scope="module")
def projects(
    rendered_template: Path, tmp_path_factory: pytest.TempPathFactory, forked: ForkedCli
) -> dict[str, Path]:
    """``fresh``: the template with the mistakes' files; ``trained``: a copy of it with run
    ``good`` trained and the runs of ``add_trained_runs``."""
    fresh = tmp_path_factory.mktemp("mistakes") / "fresh"
    shutil.copytree(rendered_template, fresh)
    add_mistake_files(fresh)
    trained = fresh.parent / "trained"
    shutil.copytree(fresh, trained)
    result = forked.run(
        TRAIN, QUIET, "++mlflow.run_name=good", *BRIEF_TRAINING, cwd=trained, project=trained
    )
    assert result.returncode == 0, result.output[-3000:]
    add_trained_runs(trained)
    return {"fresh": fresh, "trained": trained}


def assert_one_line(result: CliResult, says: tuple[str, ...]) -> str:
    """Exit status 2 and exactly one line on stderr, the error, holding every fragment."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.output[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("serotiny: error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in says:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[mistake.id for mistake in MISTAKES])
def test_a_mistake_is_one_line_and_leaves_no_run(
    mistake: Mistake, forked: ForkedCli, projects: dict[str, Path]
) -> None:
    root = projects[mistake.project]
    args = [arg.replace("{root}", str(root)) for arg in mistake.args]
    if args and args[0] == TRAIN and not any(a.startswith("print_config") for a in args):
        args.insert(1, QUIET)
    before, runs_before = store_snapshot(root), runs_in(root)
    result = forked.run(*args, cwd=Path(mistake.cwd.replace("{root}", str(root))), project=root)
    assert_one_line(result, mistake.says)
    if mistake.in_training:
        # Found only by training: its run ended FAILED, and no other run changed.
        new = sorted(set(runs_in(root)) - set(runs_before))
        assert len(new) == 1 and new[0][1] == "FAILED", new
    else:
        assert store_snapshot(root) == before


def test_a_config_mistake_leaves_no_run_at_all(
    forked: ForkedCli, rendered_template: Path, tmp_path: Path
) -> None:
    """A model that does not fit its data is refused before any run exists; the fixed
    command then trains the name as a new run."""
    project = tmp_path / "project"
    shutil.copytree(rendered_template, project)
    mistake = forked.run(
        TRAIN,
        QUIET,
        "++model.network.in_features=5",
        "++mlflow.run_name=first",
        *BRIEF_TRAINING,
        cwd=project,
        project=project,
    )
    assert_one_line(mistake, ("expects 5 input features",))
    assert runs_in(project) == []
    fixed = forked.run(
        TRAIN, QUIET, "++mlflow.run_name=first", *BRIEF_TRAINING, cwd=project, project=project
    )
    assert fixed.returncode == 0, fixed.output[-3000:]
    assert runs_in(project) == [("first", "FINISHED")]


def test_a_damaged_best_checkpoint_falls_back_to_last(
    forked: ForkedCli, projects: dict[str, Path]
) -> None:
    """Not a mistake: the run's other checkpoint is a trained model of it, used with a
    warning that says so."""
    trained = projects["trained"]
    result = forked.run("test", "++mlflow.run_name=bestbad", cwd=trained, project=trained)
    assert result.returncode == 0, result.output[-3000:]
    assert "best.ckpt" in result.output and "using its last checkpoint instead" in result.output
