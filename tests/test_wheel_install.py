"""serotiny installs as users install it: a release's sdist and wheel are built, the wheel
goes into a fresh virtual environment (torch pinned by constraints.txt), and there
`serotiny new` renders a project from the template inside the wheel, pip installs the
project and `serotiny train` trains it. Nothing of this checkout is importable there."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cli_helpers import REPO_ROOT, cli_env

pytestmark = pytest.mark.slow

#: What a release is built from (the sdist's inputs; MANIFEST.in adds project-template/).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "serotiny", "hydra_plugins")
SOURCES += ("project-template",)
DESCRIPTION = 'Tom\'s "wheel" project: C:\\data # 1 — café'
CONSTRAINTS = REPO_ROOT / "constraints.txt"


def run(command: list[str | Path], cwd: Path, timeout: float = 300) -> str:
    """Run ``command`` outside this checkout; its output, or a failure that shows it."""
    env = cli_env()
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["PIP_NO_INPUT"] = "1"
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{command} failed:\n{output[-4000:]}"
    return completed.stdout


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """serotiny's wheel, built as a release is: the sdist, then the wheel from the sdist."""
    folder = tmp_path_factory.mktemp("release")
    source = folder / "source"
    source.mkdir()
    ignored = shutil.ignore_patterns("__pycache__", "*.py[co]", "*.egg-info")
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=ignored)
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    run([sys.executable, "-m", "build", "--outdir", folder / "dist", source], cwd=folder)
    (wheel,) = (folder / "dist").glob("serotiny-*.whl")
    return wheel


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the wheel installed; removed afterwards (~2 GB).

    ``--no-compile`` skips pip's byte-compiling of every installed module (half the CPU
    time of the install); Python compiles what it imports. What that compiling would leave
    in the template is tested in test_new_command.py.
    """
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", folder], cwd=folder)
    pip = [folder / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-compile"]
    run([*pip, "-c", CONSTRAINTS, wheel], cwd=folder, timeout=600)
    yield folder
    remove_in_background(folder)


def remove_in_background(folder: Path) -> None:
    """Delete ``folder`` without waiting: freeing 2 GB of small files takes a minute or more
    on a disk mounted with ``discard``, and nothing after this test needs it gone."""
    trash = folder.with_name(folder.name + ".trash")
    folder.rename(trash)
    subprocess.Popen(
        ["rm", "-rf", str(trash)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the test session if it must; it only deletes
    )


def test_the_wheel_installs_renders_a_project_and_trains_it(venv: Path, tmp_path: Path) -> None:
    python, serotiny = venv / "bin" / "python", venv / "bin" / "serotiny"
    where = run([python, "-c", "import serotiny; print(serotiny.__file__)"], cwd=tmp_path)
    installed = Path(where.strip()).parent
    assert installed.is_relative_to(venv), installed  # the wheel's serotiny, not this checkout
    assert (installed / "project_template_data" / "cookiecutter.json").is_file()

    help_text = run([serotiny, "new", "--help"], cwd=tmp_path)
    assert "--project_name" in help_text and "'My Project'" in help_text
    answers = ["--project_name=Wheel Project", f"--project_description={DESCRIPTION}"]
    run([serotiny, "new", "--no-input", *answers], cwd=tmp_path)
    project = tmp_path / "wheel_project"
    assert (project / ".serotiny").is_file() and (project / "data" / "manifest.csv").is_file()

    run([python, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS, "-e", project], cwd=tmp_path)
    summary = "from importlib.metadata import metadata as m; print(m('wheel_project')['Summary'])"
    assert run([python, "-c", summary], cwd=tmp_path).strip() == DESCRIPTION

    run([serotiny, "train", "++trainer.max_epochs=1", "++mlflow.run_name=from_wheel"], cwd=project)
    # MLflow's own tables, read with sqlite3: the venv's MLflow may be newer than this one.
    with closing(sqlite3.connect(project / "mlruns.db")) as store:
        runs = store.execute("SELECT name, status FROM runs").fetchall()
    assert runs == [("from_wheel", "FINISHED")]
