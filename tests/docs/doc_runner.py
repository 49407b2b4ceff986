"""Follow a documentation page as a reader would: write the files it shows, run the
commands it shows, in order, and check that each command prints what the page says.

The rules (also stated in docs/tutorials/index.md, for the people writing pages):

- a fenced ``{code-block}`` whose ``:caption:`` is a relative file path is written to that
  path, relative to the folder the page's commands are in at that point;
- each ``$ `` line of a ``console`` block is a command (a trailing ``\\`` continues it on the
  next line). ``serotiny ...`` and ``python ...`` run as shown, ``cd DIR`` moves to another
  folder, and ``pip install -e DIR`` is checked with ``pip install --dry-run --no-deps``
  so that the shared test environment is never changed (the project is made importable
  through PYTHONPATH instead, as in the other CLI tests);
- the lines shown under a command must appear in its output in that order, each within
  one output line, where ``...`` stands for anything; a line of only ``...`` says that
  output was left out.
- ``serotiny ...`` commands run in the test's own process (the console script's ``main``,
  with the folder, arguments and environment a terminal would give it), which spares each
  command a fresh interpreter's imports; those that start processes of their own (DDP's
  ``trainer=ddp``, a Hydra launcher) run as a subprocess, as does everything else.

Anything else in a console block fails the test: a page cannot show a command that CI does
not run. Blocks of other languages (``bash``, ``yaml`` without a caption, ...) are not run.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cli_helpers import REPO_ROOT, cli_env

from serotiny.cli.project import read_marker

DOCS = REPO_ROOT / "docs"
MARKER = ".serotiny"
# Arguments that make a command start processes of its own: it runs as a subprocess then.
_STARTS_PROCESSES = ("trainer=ddp", "hydra/launcher=")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):\s*(?P<value>.*)$")


@dataclass(frozen=True)
class WriteFile:
    """A code block captioned with a path: the page asks the reader to write this file."""

    path: str
    content: str
    where: str


@dataclass(frozen=True)
class Command:
    """A ``$`` line of a console block and the output lines shown under it."""

    text: str
    argv: tuple[str, ...]
    expected: tuple[str, ...]
    where: str


Step = WriteFile | Command


def _directive_body(content: str) -> tuple[dict[str, str], str]:
    """Split a MyST directive's ``:name: value`` option lines from its body."""
    options: dict[str, str] = {}
    lines = content.splitlines(keepends=True)
    while lines and (match := _OPTION.match(lines[0].rstrip("\n"))):
        options[match["name"]] = match["value"].strip()
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    return options, "".join(lines)


def _commands(content: str, where: str) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []  # the lines of a command continued with a trailing backslash
    expected: list[str] = []

    def finish() -> None:
        if pending:
            text = " ".join(part.strip() for part in pending)
            commands.append(Command(text, tuple(shlex.split(text)), tuple(expected), where))
            pending.clear()
            expected.clear()

    for line in content.splitlines():
        if pending and pending[-1].endswith("\\"):
            pending[-1] = pending[-1][:-1]
            pending.append(line)
        elif line.startswith("$ "):
            finish()
            pending.append(line[2:])
        elif not pending:
            if line.strip():
                raise ValueError(f"{where}: output line {line!r} comes before any $ command")
        elif line.strip() and line.strip() != "...":
            expected.append(line.strip())
    finish()
    return commands


def page_steps(page: str | Path) -> list[Step]:
    """The files to write and commands to run on a docs page, in the order shown."""
    from markdown_it import MarkdownIt

    path = DOCS / page
    steps: list[Step] = []
    for token in MarkdownIt("commonmark").parse(path.read_text()):
        if token.type != "fence":
            continue
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        where = f"{shown}:{token.map[0] + 1 if token.map else '?'}"
        info = token.info.split()
        directive = info[:1] in (["{code-block}"], ["{code}"])
        options, body = _directive_body(token.content) if directive else ({}, token.content)
        if info[:1] == ["console"] or (directive and info[1:2] == ["console"]):
            steps += _commands(body, where)
        elif directive and "caption" in options:
            target = PurePosixPath(options["caption"])
            if target.is_absolute() or ".." in target.parts:
                raise ValueError(f"{where}: captioned file {target} must be a relative path")
            steps.append(WriteFile(str(target), body, where))
    return steps


def project_root(folder: Path) -> Path | None:
    """The serotiny project enclosing ``folder``, if any."""
    for candidate in (folder, *folder.parents):
        if (candidate / MARKER).is_file():
            return candidate
    return None


def output_matches(expected: tuple[str, ...], output: str) -> str | None:
    """None when every expected line occurs, in order, in ``output``; else the first missing."""
    lines = iter(output.splitlines())
    for shown in expected:
        pattern = re.compile(".*?".join(re.escape(part) for part in shown.split("...")))
        if not any(pattern.search(line) for line in lines):
            return shown
    return None


@dataclass
class Outcome:
    """What one command did."""

    command: Command
    returncode: int
    output: str
    seconds: float = 0.0


@dataclass
class Reader:
    """Follows a page's steps in a folder, as a reader in a terminal would."""

    cwd: Path
    timeout: float = 300
    outcomes: list[Outcome] = field(default_factory=list)

    def follow(self, steps: list[Step]) -> list[Outcome]:
        """Write every file and run every command, checking each as it goes."""
        for step in steps:
            if isinstance(step, WriteFile):
                self.write(step)
            else:
                self.run(step)
        return self.outcomes

    def write(self, step: WriteFile) -> Path:
        path = self.cwd / step.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(step.content)
        return path

    def run(self, command: Command) -> Outcome:
        """Run ``command`` to its end; fail the test if it fails or prints otherwise."""
        if command.argv[0] == "cd":
            return self._change_folder(command)
        if runs_in_process(command):
            started = time.monotonic()
            returncode, output = self.run_in_process(command)
            outcome = self.check(command, returncode, output)
            outcome.seconds = time.monotonic() - started
            return outcome
        argv, env = self.invocation(command)
        started = time.monotonic()
        completed = subprocess.run(
            argv,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, so lines keep the order they came in
            text=True,
            timeout=self.timeout,
        )
        outcome = self.check(command, completed.returncode, completed.stdout)
        outcome.seconds = time.monotonic() - started
        return outcome

    def run_in_process(self, command: Command) -> tuple[int, str]:
        """``serotiny ARGS`` through the console script's ``main`` in this process: its exit
        status and everything it printed (stdout, stderr and logs, in order)."""
        from serotiny.cli.main import main

        buffer = io.StringIO()
        terminal = as_a_terminal_would(self.cwd, project_root(self.cwd))
        with terminal, redirect_stdout(buffer), redirect_stderr(buffer):
            try:
                main(list(command.argv[1:]))
                returncode = 0
            except SystemExit as stop:
                code = stop.code
                returncode = code if isinstance(code, int) else (0 if code is None else 1)
        return returncode, buffer.getvalue()

    def start(self, command: Command) -> subprocess.Popen[str]:
        """Start ``command`` without waiting for it (for a test that interrupts it)."""
        argv, env = self.invocation(command)
        return subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def check(self, command: Command, returncode: int, output: str) -> Outcome:
        outcome = Outcome(command, returncode, output)
        self.outcomes.append(outcome)
        tail = "\n".join(output.splitlines()[-40:])
        assert returncode == 0, f"{command.where}: `{command.text}` exited {returncode}:\n{tail}"
        missing = output_matches(command.expected, output)
        assert missing is None, (
            f"{command.where}: `{command.text}` did not print {missing!r} (in order):\n{tail}"
        )
        return outcome

    def invocation(self, command: Command) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run ``command`` here."""
        program, *arguments = command.argv
        project = project_root(self.cwd)
        env = cli_env(project)
        if program == "serotiny":
            # The console script a reader runs, from this environment (else the module).
            script = Path(sys.executable).with_name("serotiny")
            launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "serotiny"]
            return [*launcher, *arguments], env
        if program == "python":
            return [sys.executable, *arguments], env
        if program == "pip" and arguments[:2] == ["install", "-e"] and len(arguments) == 3:
            checked = ["--dry-run", "--no-deps", "--no-build-isolation", "-e", arguments[2]]
            return [sys.executable, "-m", "pip", "install", *checked], env
        raise AssertionError(
            f"{command.where}: the docs runner cannot run `{command.text}`; show commands "
            "that CI cannot run in a `bash` block instead of a `console` one"
        )

    def _change_folder(self, command: Command) -> Outcome:
        assert len(command.argv) == 2, f"{command.where}: `{command.text}` needs one folder"
        target = (self.cwd / command.argv[1]).resolve()
        assert target.is_dir(), f"{command.where}: `{command.text}`: {target} is not a folder"
        self.cwd = target
        outcome = Outcome(command, 0, "")
        self.outcomes.append(outcome)
        return outcome


def runs_in_process(command: Command) -> bool:
    """Whether ``command`` runs in this process (see the module's rules)."""
    return command.argv[0] == "serotiny" and not any(
        argument.lstrip("+").startswith(_STARTS_PROCESSES) for argument in command.argv
    )


@contextmanager
def as_a_terminal_would(folder: Path, project: Path | None) -> Iterator[None]:
    """Run the block in ``folder``, with the environment of a CLI subprocess and the
    project importable; put back the folder, environment, arguments, imports and logging."""
    saved_environ = dict(os.environ)
    saved_argv, saved_path, saved_cwd = list(sys.argv), list(sys.path), Path.cwd()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_warnings = list(warnings.filters)
    loggers = [root, *(found for found in logging.Logger.manager.loggerDict.values())]
    saved_loggers = [
        (logger, list(logger.filters), logger.level)
        for logger in loggers
        if isinstance(logger, logging.Logger)
    ]
    os.environ.clear()
    os.environ.update({k: v for k, v in cli_env(project).items() if k != "PYTHONPATH"})
    if project is not None:
        sys.path.insert(0, str(project))
        package = read_marker(project / MARKER)
        for name in [name for name in sys.modules if name.split(".")[0] == package]:
            del sys.modules[name]  # the same package name, imported from another project
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.argv[:], sys.path[:] = saved_argv, saved_path
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        # The command's own filters (serotiny's quiet output) leave with it.
        warnings.filters[:] = saved_warnings
        for logger, filters, level in saved_loggers:
            logger.filters[:] = filters
            logger.setLevel(level)
        known = {id(logger) for logger, _, _ in saved_loggers}
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and id(logger) not in known:
                logger.filters[:] = []  # made by the command: it had none before


def commands_of(steps: list[Step]) -> list[Command]:
    return [step for step in steps if isinstance(step, Command)]


def run_id_in(output: str, run_name: str) -> str:
    """The MLflow run id that serotiny's log names for ``run_name`` in ``output``."""
    match = re.search(rf"run '{re.escape(run_name)}' \(([0-9a-f]{{32}})\)", output)
    assert match, f"no run id for '{run_name}' in:\n{output[-3000:]}"
    return match[1]


@dataclass
class FollowedPage:
    """A docs page followed from an empty folder: where it ended and what each command did."""

    folder: Path
    reader: Reader

    @property
    def project(self) -> Path:
        """The folder the page's commands ended in (the project it made)."""
        return self.reader.cwd

    @property
    def outcomes(self) -> list[Outcome]:
        return self.reader.outcomes

    def output_of(self, prefix: str) -> str:
        """The output of the last command whose text starts with ``prefix``."""
        matching = [o for o in self.outcomes if o.command.text.startswith(prefix)]
        assert matching, f"no command starting with {prefix!r}"
        return matching[-1].output


def follow(page: str, folder: Path) -> FollowedPage:
    reader = Reader(folder)
    reader.follow(page_steps(page))
    return FollowedPage(folder, reader)
