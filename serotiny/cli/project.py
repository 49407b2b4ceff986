"""Finding the serotiny project a command is run in.

A project is marked by a ``.serotiny`` file at its root; the file names the project's
Python package, whose ``config/`` folder holds the Hydra config tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serotiny.errors import ProjectNotFoundError

MARKER = ".serotiny"


@dataclass(frozen=True)
class Project:
    """A serotiny project on disk."""

    root: Path
    package: str

    @property
    def config_dir(self) -> Path:
        """The project's Hydra config folder (``<root>/<package>/config``)."""
        return self.root / self.package / "config"


def read_marker(marker: Path) -> str:
    """Return the package name that a ``.serotiny`` marker file names."""
    for line in marker.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        # Accept both a bare name and "package = name" / "package: name".
        for separator in ("=", ":"):
            if separator in line:
                key, value = (part.strip() for part in line.split(separator, 1))
                if key == "package":
                    return value.strip("'\"")
                break
        else:
            return line
    raise ProjectNotFoundError(f"{marker} does not name a package; write 'package = <name>' in it")


def find_project(start: Path | None = None) -> Project:
    """Walk up from ``start`` (default: the current directory) to the nearest ``.serotiny``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        marker = folder / MARKER
        if marker.is_file():
            project = Project(root=folder, package=read_marker(marker))
            if not project.config_dir.is_dir():
                raise ProjectNotFoundError(
                    f"{marker} names package '{project.package}' but "
                    f"{project.config_dir} does not exist"
                )
            return project
    raise ProjectNotFoundError(
        f"not inside a serotiny project: no {MARKER} file in {here} or any parent folder "
        "(create one with `serotiny new`, or pass --config-dir)"
    )
