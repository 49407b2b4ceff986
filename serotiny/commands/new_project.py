"""Rendering new projects from the cookiecutter template in ``project-template/``.

The answers are collected first (prompted, or the defaults with ``no_input``), checked,
and only then rendered, so that a bad answer is one line and nothing is written. Answers
are literal text: cookiecutter renders every answer as a Jinja template, so each is handed
to it as a Jinja string literal (``{{ '...' }}``) that renders back to itself, whatever
braces, quotes or backslashes it holds. The template quotes each answer for the file it
lands in (``toml_string``, ``python_string`` in ``serotiny_template_filters.py``).
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serotiny.errors import SerotinyUserError

#: Where a built wheel carries the template, inside the ``serotiny`` package (setup.py).
PACKAGED_TEMPLATE = "project_template_data"
_PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Package names that would shadow what the project imports.
_RESERVED = frozenset({"serotiny", *sys.stdlib_module_names})


@dataclass(frozen=True)
class Question:
    """One variable of the template: what ``serotiny new`` asks, and its default."""

    name: str
    prompt: str
    default: str
    derived: bool  # the default is computed from earlier answers


def template_dir() -> Path:
    """The cookiecutter template: in the installed package (a wheel), else in the checkout."""
    package_root = Path(__file__).resolve().parents[1]
    for candidate in (
        package_root / PACKAGED_TEMPLATE,
        package_root.parent / "project-template",
    ):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise SerotinyUserError(
        "serotiny's project template is not installed with this copy of serotiny; "
        "reinstall serotiny, or run cookiecutter on a serotiny checkout's project-template/"
    )


def template_questions() -> list[Question]:
    """The template's variables in the order they are asked, with their raw defaults."""
    variables = json.loads((template_dir() / "cookiecutter.json").read_text(encoding="utf-8"))
    prompts = variables.get("__prompts__", {})
    return [
        Question(name, str(prompts.get(name, name)), str(default), "{{" in str(default))
        for name, default in variables.items()
        if not name.startswith("_")
    ]


def render_project(
    output_dir: str | Path = ".",
    no_input: bool = False,
    extra_context: dict[str, Any] | None = None,
) -> Path:
    """Render a new project into ``output_dir`` and return its folder.

    ``extra_context`` answers some of the template's questions (literal text); the others
    are asked, or take their defaults when ``no_input``.
    """
    given = {key: str(value) for key, value in (extra_context or {}).items()}
    answers = collect_answers(given, no_input=no_input)
    check_answers(answers, derived_package=no_input and "package_name" not in given)
    return _generate(Path(output_dir), answers)


def collect_answers(given: dict[str, str], no_input: bool = False) -> dict[str, str]:
    """Every variable's answer: ``given``, else prompted, else the (derived) default."""
    from cookiecutter.config import get_user_config
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    template = template_dir()
    known = [question.name for question in template_questions()]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SerotinyUserError(
            f"the project template has no variable {', '.join(unknown)}; "
            f"its variables are {', '.join(known)}"
        )
    try:
        context = generate_context(
            context_file=str(template / "cookiecutter.json"),
            default_context=get_user_config()["default_context"],
            extra_context={key: _literal(value) for key, value in given.items()},
        )
        with _importable(template):  # the template's own Jinja filters (_extensions)
            answers = prompt_for_config(context, no_input)
    except EOFError:
        raise SerotinyUserError(
            "serotiny new: the input ended before every question was answered; "
            "pass --no-input to take the defaults (see serotiny new --help)"
        ) from None
    except CookiecutterException as error:
        raise SerotinyUserError(f"cannot read the project template's questions: {error}") from error
    return {key: str(value) for key, value in answers.items() if key in known}


def check_answers(answers: dict[str, str], derived_package: bool = False) -> None:
    """Refuse, in one line, answers that would render a project Python cannot use.

    ``derived_package``: the package name was made from the project name, not given.
    """
    for name in ("project_name", "project_description"):
        value = answers.get(name, "")
        if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
            raise SerotinyUserError(f"{name} {value!r} holds a line break or control character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SerotinyUserError(f"{name} {value!r} is not valid unicode text") from None
    if not answers.get("project_name", "").strip():
        raise SerotinyUserError("project_name is empty; pass --project_name=NAME")
    _check_package_name(answers["package_name"], derived=derived_package)
    _check_requirement(answers.get("serotiny_requirement", "serotiny"))


def _check_package_name(name: str, derived: bool) -> None:
    source = " (derived from project_name; choose one with --package_name=NAME)" if derived else ""
    if not _PACKAGE_NAME.fullmatch(name):
        raise SerotinyUserError(
            f"package_name {name!r} is not a valid Python package name: use ASCII letters, "
            f"digits and underscores, not starting with a digit{source}"
        )
    if keyword.iskeyword(name):
        raise SerotinyUserError(f"package_name {name!r} is a Python keyword{source}")
    if name in _RESERVED:
        raise SerotinyUserError(
            f"package_name {name!r} would shadow the module {name} that the project imports{source}"
        )


def _check_requirement(requirement: str) -> None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging comes with serotiny's dependencies; no check without it
        return
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as error:
        raise SerotinyUserError(
            f"serotiny_requirement {requirement!r} is not a valid requirement: {error}"
        ) from None
    if parsed.name.lower() != "serotiny":
        raise SerotinyUserError(
            f"serotiny_requirement {requirement!r} does not name serotiny (e.g. serotiny>=0.1)"
        )


def _generate(output_dir: Path, answers: dict[str, str]) -> Path:
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    try:
        path = cookiecutter(
            str(template_dir()),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={key: _literal(value) for key, value in answers.items()},
        )
    except (CookiecutterException, OSError) as error:
        reason = str(error).removeprefix("Error: ")
        raise SerotinyUserError(f"cannot create the project in {output_dir}: {reason}") from error
    return Path(path)


def _literal(value: str) -> str:
    """A Jinja expression that renders to ``value`` itself: cookiecutter renders answers."""
    return "{{ " + repr(value) + " }}"


@contextmanager
def _importable(folder: Path) -> Iterator[None]:
    """``folder`` on ``sys.path`` for the block, as cookiecutter does while it renders."""
    saved = list(sys.path)
    sys.path.append(str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved
