"""Rendering new projects from the cookiecutter template in ``project-template/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serotiny.errors import SerotinyUserError


def template_dir() -> Path:
    """The cookiecutter template shipped with serotiny."""
    package_root = Path(__file__).resolve().parents[1]
    for candidate in (
        package_root / "project_template_data",
        package_root.parent / "project-template",
    ):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise SerotinyUserError(
        "serotiny's project template is not installed with this copy of serotiny; "
        "run cookiecutter on a serotiny checkout's project-template/ instead"
    )


def render_project(
    output_dir: str | Path = ".",
    no_input: bool = False,
    extra_context: dict[str, Any] | None = None,
) -> Path:
    """Render a new project into ``output_dir`` and return its folder."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    try:
        path = cookiecutter(
            str(template_dir()),
            no_input=no_input,
            output_dir=str(output_dir),
            extra_context={key: str(value) for key, value in (extra_context or {}).items()},
        )
    except CookiecutterException as error:
        raise SerotinyUserError(f"cannot create the project: {error}") from error
    return Path(path)
