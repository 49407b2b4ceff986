"""Finding the project a command runs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from serotiny.cli.project import find_project, read_marker
from serotiny.errors import ProjectNotFoundError


def make_project(root: Path, package: str = "pkg", marker_text: str | None = None) -> Path:
    (root / package / "config").mkdir(parents=True)
    (root / ".serotiny").write_text(marker_text or f"package = {package}\n")
    return root


def test_walks_up_from_a_nested_folder(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    nested = root / "a" / "b" / "c"
    nested.mkdir(parents=True)
    project = find_project(nested)
    assert project.root == root.resolve()
    assert project.package == "pkg"
    assert project.config_dir == root.resolve() / "pkg" / "config"


def test_marker_may_hold_just_the_package_name(tmp_path: Path) -> None:
    marker = tmp_path / ".serotiny"
    marker.write_text("# a comment\n\nmy_pkg\n")
    assert read_marker(marker) == "my_pkg"


def test_outside_a_project_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match=str(tmp_path)):
        find_project(tmp_path)


def test_marker_naming_a_missing_package_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".serotiny").write_text("package = ghost\n")
    with pytest.raises(ProjectNotFoundError, match="ghost"):
        find_project(tmp_path)


def test_empty_marker_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".serotiny").write_text("# nothing here\n")
    with pytest.raises(ProjectNotFoundError, match="does not name a package"):
        find_project(tmp_path)
