"""The serotiny command line, run many times at the price of one interpreter start.

A test that runs the CLI once per case pays a fresh interpreter's imports each time (torch,
Lightning and MLflow: about 7 s on 2 cores), which makes a table of dozens of mistakes cost
minutes. :class:`ForkedCli` starts one server process that imports them once and then, for
each command, forks a child that runs ``serotiny.cli.main.main(argv)`` with the case's own
working directory, environment, ``sys.path`` and standard streams, and exits with the status
the CLI gives. Each command is still a process of its own, whose exit status and stderr are
what a user would see; only the interpreter start is shared.

The server imports the libraries, lets Hydra scan its plugins and MLflow open a throwaway
SQLite store (so that its SQL store's modules are loaded), and starts no thread (checked when
it starts), so forking it is safe; what each command reads from disk it still reads itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_helpers import CliResult, cli_env

SERVER = r"""
import atexit, json, os, sys, threading, time, traceback

import tempfile

import torch, lightning.pytorch, mlflow, hydra, pandas, pyarrow  # the imports paid once
import serotiny.cli.hydra_app, serotiny.cli.main, serotiny.datamodules, serotiny.models
import serotiny.commands.cross_validate, serotiny.commands.predict, serotiny.commands.test
import serotiny.commands.validate
from hydra.core.plugins import Plugins
from serotiny.tracking.store import connect

Plugins.instance()  # Hydra's scan of its plugins, the same for every command
with tempfile.TemporaryDirectory() as folder:  # MLflow's SQL store and its migrations code
    connect(f"sqlite:///{folder}/warm.db").search_experiments()
assert threading.active_count() == 1, threading.enumerate()
requests, replies = sys.stdin, sys.stdout
replies.write("ready\n")
replies.flush()


def child(request):
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:0] = request["sys_path"]  # what PYTHONPATH would have put first
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["serotiny", *request["args"]]
    code = 0
    try:
        serotiny.cli.main.main(request["args"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # as the interpreter would on its way out
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


for line in requests:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(request)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            code = 124
            break
        time.sleep(0.02)
    replies.write(json.dumps({"returncode": code}) + "\n")
    replies.flush()
"""


class ForkedCli:
    """A server that forks one child per ``serotiny`` command (see the module doc)."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="serotiny-forked-cli-"))
        self._count = 0
        self._server = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=cli_env(),
            text=True,
        )
        assert self._server.stdout is not None
        ready = self._server.stdout.readline().strip()
        assert ready == "ready", f"the CLI server did not start: {ready!r}"

    def run(
        self, *args: str, cwd: Path, project: Path | None = None, timeout: float = 120, **env: str
    ) -> CliResult:
        """Run ``serotiny ARGS`` in ``cwd`` as :func:`cli_helpers.run_cli` would."""
        self._count += 1
        out = self._folder / f"{self._count}.out"
        err = self._folder / f"{self._count}.err"
        project = project if project is not None else cwd
        request = {
            "args": list(args),
            "cwd": str(cwd),
            "env": cli_env(project, **env),
            "sys_path": [str(project)],
            "stdout": str(out),
            "stderr": str(err),
            "timeout": timeout,
        }
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        reply = self._server.stdout.readline()
        assert reply, "the CLI server died"
        return CliResult(json.loads(reply)["returncode"], out.read_text(), err.read_text())

    def close(self) -> None:
        """Stop the server (it ends when its input closes)."""
        if self._server.stdin is not None:
            self._server.stdin.close()
        self._server.wait(timeout=30)
