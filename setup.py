"""serotiny is configured in pyproject.toml; this file only ships the project template.

`serotiny new` renders the cookiecutter template kept at the repository's root in
``project-template/`` (where cookiecutter users, the docs and the tests expect it). A built
wheel carries a copy of it as the package data folder ``serotiny/project_template_data``,
which ``serotiny.commands.new_project.template_dir`` looks for first; an editable install
reads ``project-template/`` in place. The sdist carries ``project-template/`` (MANIFEST.in),
so a wheel built from the sdist gets the template too.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATE = Path(__file__).resolve().parent / "project-template"
PACKAGED_TEMPLATE = ("serotiny", "project_template_data")


class BuildPyWithTemplate(build_py):
    """``build_py`` that also copies the project template into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install renders project-template/ where it is
        if not (TEMPLATE / "cookiecutter.json").is_file():
            raise FileNotFoundError(f"the project template is missing: {TEMPLATE}")
        target = Path(self.build_lib, *PACKAGED_TEMPLATE)
        shutil.rmtree(target, ignore_errors=True)  # no stale files from an earlier build
        shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))


setup(cmdclass={"build_py": BuildPyWithTemplate})
