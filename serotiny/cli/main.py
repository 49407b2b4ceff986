"""The ``serotiny`` console script.

Commands that run on a Hydra config (train, test, predict, validate, register) hand their raw
arguments to Hydra untouched: fire's own flag parsing would mangle Hydra's grammar
(``--cfg job``, ``key=[1,2]``, ``--multirun``). Everything else is dispatched by fire.
Imports stay lazy so ``serotiny --help`` answers without loading torch or mlflow.
"""

from __future__ import annotations

import difflib
import os
import sys

from serotiny.cli.errors import fail, user_errors_exit_cleanly
from serotiny.cli.quiet import VERBOSE_ENV, quiet_known_noise
from serotiny.cli.relaunch import relaunched_operation

# Set by `serotiny runs --stale` for the runs command (read in serotiny.commands.runs).
MARK_STALE_ENV = "SEROTINY_MARK_STALE"


def train(*overrides: str) -> None:
    """Train a model on the composed config: serotiny train model=x data=y ++trainer.max_epochs=10

    Rerunning with the same ++mlflow.run_name resumes a crashed run and skips a finished one.
    Takes Hydra overrides and flags (--multirun, --cfg job, --help); --config-dir DIR
    uses DIR instead of the project's config folder; --debug shows full tracebacks;
    --verbose shows every message, including the known noise hidden by default.
    """
    _run_operation("train", list(overrides))


def test(*overrides: str) -> None:
    """Evaluate a trained run's best checkpoint: serotiny test ++mlflow.run_name=NAME

    Test metrics are logged to that run.
    """
    _run_operation("test", list(overrides))


def predict(*overrides: str) -> None:
    """Predict with a trained run's best checkpoint: serotiny predict ++mlflow.run_name=NAME

    Writes one row per manifest row, keyed by its id, as an artifact of that run.
    """
    _run_operation("predict", list(overrides))


def validate(*overrides: str) -> None:
    """Check the composed data config's manifest without training: serotiny validate data=y"""
    _run_operation("validate", list(overrides))


def sync(*overrides: str) -> None:
    """Send what trainings recorded while their MLflow server was away: serotiny sync

    Every journal of the project's store that MLflow has not taken yet (a training whose
    server was still away at its end says so); ++mlflow.run_name=NAME sends one run's only.
    """
    _run_operation("sync", list(overrides))


def runs(*overrides: str) -> None:
    """List an experiment's runs as they truly are: serotiny runs [--stale]

    Name, status (a RUNNING run whose process is gone shows STALE), epoch, monitored metric,
    start, duration, host; ++mlflow.experiment_name=NAME for another experiment. --stale
    marks the stale runs KILLED in MLflow.
    """
    arguments = list(overrides)
    if "--stale" in arguments:
        arguments.remove("--stale")
        os.environ[MARK_STALE_ENV] = "1"
    _run_operation("runs", arguments)


def register(*overrides: str) -> None:
    """Register a trained run as a version of an MLflow registered model:
    serotiny register ++mlflow.run_name=NAME ++registry.name=cells ++registry.alias=champion

    The alias then names it: serotiny test ++mlflow.run_id=models:/cells@champion. A
    cross-validation registers the ensemble of its folds. Composes the project's train.yaml.
    """
    _run_operation("register", list(overrides))


def new(*arguments: str) -> None:
    """Create a new serotiny project from the bundled cookiecutter template.

    serotiny new --help lists its options: --output-dir, --no-input and the template's
    variables. Example: serotiny new --no-input --project_name="A Tiny Project"
    """
    from serotiny.cli.new_command import run_new

    run_new(list(arguments))


def version() -> None:
    """Print serotiny's version."""
    from serotiny import __version__

    print(__version__)


COMMANDS = {
    "train": train,
    "test": test,
    "predict": predict,
    "validate": validate,
    "sync": sync,
    "runs": runs,
    "register": register,
    "new": new,
    "version": version,
}
HYDRA_COMMANDS = ("train", "test", "predict", "validate", "sync", "runs", "register")


def usage() -> str:
    """The top-level help text (fire's rendering of :data:`COMMANDS`), for stdout."""
    from fire import helptext, trace

    return helptext.HelpText(COMMANDS, trace.FireTrace(COMMANDS, name="serotiny"))


def unknown_command(name: str) -> str:
    """One line for a command serotiny does not have, naming the closest one."""
    close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
    hint = f"; did you mean 'serotiny {close[0]}'?" if close else ""
    return f"unknown command '{name}'{hint} (commands: {', '.join(COMMANDS)}; serotiny --help)"


def _run_operation(operation: str, arguments: list[str]) -> None:
    from serotiny.cli.hydra_app import run_operation

    run_operation(operation, arguments)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``serotiny`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in arguments:
        arguments.remove("--debug")
        os.environ["SEROTINY_DEBUG"] = "1"
    if "--verbose" in arguments:
        arguments.remove("--verbose")
        os.environ[VERBOSE_ENV] = "1"  # inherited by DDP ranks and cluster jobs
    quiet_known_noise()
    with user_errors_exit_cleanly():
        operation = relaunched_operation()
        if operation is not None and (not arguments or arguments[0] not in COMMANDS):
            _run_operation(operation, arguments)  # an extra DDP rank: see hydra_app
            return
        if arguments and arguments[0] in HYDRA_COMMANDS:
            COMMANDS[arguments[0]](*arguments[1:])  # Hydra's arguments, untouched by fire
            return
        if arguments and arguments[0] == "new":  # argparse, not fire: see cli/new_command.py
            new(*arguments[1:])
            return
        if arguments in ([], ["--help"], ["-h"], ["help"]):
            print(usage())
            return
        if arguments[0] not in COMMANDS:
            fail(unknown_command(arguments[0]))
        import fire

        fire.Fire(COMMANDS, command=arguments, name="serotiny")


if __name__ == "__main__":
    main()
