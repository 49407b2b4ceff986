"""`serotiny new`: its help and one-line mistakes, and answers of any text rendering valid files."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from cli_helpers import REPO_ROOT, CliResult, cli_env
from cookiecutter.main import cookiecutter

from serotiny.cli.project import read_marker
from serotiny.commands.new_project import render_project, template_dir
from serotiny.errors import SerotinyUserError

# Quotes, backslashes, TOML/YAML/Markdown specials, Jinja syntax, unicode beyond the BMP.
AWKWARD = [
    'say "hi"',
    "it's",
    '"quoted" from end to end"',
    "back\\slash and a trailing one \\",
    "C:\\new\\table",
    "key: value # not a comment",
    "- [list], {map}, &anchor *alias !tag | > % @ `",
    "{{ cookiecutter.project_name }} {% if x %} {# comment",
    "\"\"\" triple '''",
    "Zellbiologie: Größe — 細胞 😀",
    "  padded  ",
]


def run_new(*args: str, cwd: Path) -> CliResult:
    """``serotiny new ARGS`` in a subprocess whose standard input is closed."""
    completed = subprocess.run(
        [sys.executable, "-m", "serotiny", "new", *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def assert_one_line_error(result: CliResult, folder: Path, *words: str) -> None:
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("serotiny: error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not any(folder.iterdir()), "a refused `serotiny new` wrote files"


def test_help_lists_options_and_defaults_without_prompting(tmp_path: Path) -> None:
    result = run_new("--help", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert result.stderr == ""
    for option in ("--output-dir", "--no-input", "--project_name", "--package_name"):
        assert option in result.stdout
    for option in ("--project_description", "--serotiny_requirement"):
        assert option in result.stdout
    for default in ("'My Project'", "'my_project'", "'a simple project'", "'serotiny'"):
        assert default in result.stdout
    assert "[1/4]" not in result.stdout  # no prompt was shown
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bogus"], ["unrecognized arguments: --bogus", "serotiny new --help"]),
        (["--no-input", "--output-dir"], ["--output-dir", "expected one argument"]),
        (["--no-input", "--package_name=not-valid!"], ["'not-valid!'", "valid Python package"]),
        (["--no-input", "--project_name=2024 Cells"], ["'2024_cells'", "--package_name=NAME"]),
        (["--no-input", "--package_name=class"], ["'class'", "keyword"]),
        (["--no-input", "--package_name=json"], ["'json'", "shadow"]),
        (["--no-input", "--project_description=a\nb"], ["project_description", "line break"]),
        (["--no-input", "--serotiny_requirement=serotiny>>1"], ["serotiny_requirement"]),
        ([], ["input ended", "--no-input"]),  # prompts, but standard input is closed
    ],
)
def test_mistakes_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    assert_one_line_error(run_new(*args, cwd=tmp_path), tmp_path, *words)


def test_an_existing_project_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "my_project").mkdir()
    result = run_new("--no-input", cwd=tmp_path)
    assert result.returncode == 2, result.output
    assert result.stderr.count("\n") == 1 and "already exists" in result.stderr
    assert not any((tmp_path / "my_project").iterdir())


def test_quotes_from_the_command_line_reach_the_files_unchanged(tmp_path: Path) -> None:
    # fire would read '"x"' as a Python literal and drop the quotes; argparse keeps them.
    description = '"quoted" and {braces} = [1, 2]'
    result = run_new("--no-input", f"--project_description={description}", cwd=tmp_path)
    assert result.returncode == 0, result.output
    metadata = tomllib.loads((tmp_path / "my_project" / "pyproject.toml").read_text())
    assert metadata["project"]["description"] == description


@pytest.mark.parametrize("text", AWKWARD)
def test_any_name_and_description_render_valid_files(tmp_path: Path, text: str) -> None:
    project = render_project(
        tmp_path,
        no_input=True,
        extra_context={"project_name": f"Cells {text}", "project_description": text},
    )
    package = project.name
    assert package.isidentifier() and package.isascii() and package.startswith("cells")
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["description"] == text
    assert metadata["name"] == package
    assert metadata["dependencies"] == ["serotiny"]
    for source in project.rglob("*.py"):
        tree = compile(source.read_text(encoding="utf-8"), str(source), "exec", ast.PyCF_ONLY_AST)
        if source == project / package / "__init__.py":
            assert ast.get_docstring(tree, clean=False) == text
    for config in project.rglob("*.yaml"):
        yaml.safe_load(config.read_text(encoding="utf-8"))
    assert read_marker(project / ".serotiny") == package
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# Cells {text}\n") and f"\n{text}\n" in readme


def test_rendered_metadata_is_valid_for_setuptools(tmp_path: Path) -> None:
    from setuptools.config.pyprojecttoml import read_configuration

    text = AWKWARD[0] + " " + AWKWARD[3] + " " + AWKWARD[-2]
    project = render_project(tmp_path, no_input=True, extra_context={"project_description": text})
    configuration = read_configuration(project / "pyproject.toml")  # validates the schema
    assert configuration["project"]["description"] == text


def test_an_unknown_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SerotinyUserError, match="no variable projct_name"):
        render_project(tmp_path, no_input=True, extra_context={"projct_name": "x"})
    assert not any(tmp_path.iterdir())


def test_this_checkout_renders_its_own_project_template() -> None:
    # An editable install has no copy of the template: it renders project-template/ in place.
    assert template_dir() == REPO_ROOT / "project-template"


def test_byte_code_caches_in_the_template_are_not_copied(tmp_path: Path) -> None:
    # pip byte-compiles the template's Python files where a wheel installs it.
    template = tmp_path / "template"
    shutil.copytree(REPO_ROOT / "project-template", template)
    inner = template / "{{cookiecutter.package_name}}" / "{{cookiecutter.package_name}}"
    (inner / "__pycache__").mkdir()
    (inner / "__pycache__" / "models.cpython-311.pyc").write_bytes(b"\x00\x01stale")
    project = Path(cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "out")))
    assert (project / project.name / "models.py").is_file()
    assert not list(project.rglob("__pycache__"))
