"""``serotiny new``'s command line: its options, help, and one-line errors.

Parsed here with argparse rather than fire, which would read ``--project_description='"x"'``
as a Python literal and drop the quotes, and would hand ``--help`` to the prompts. Every
variable of the template is an option, so ``--help`` lists them with their defaults.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from serotiny.errors import SerotinyUserError

USAGE_HINT = "see serotiny new --help"


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose mistakes are one line (exit status 2 through the CLI)."""

    def error(self, message: str) -> NoReturn:
        raise SerotinyUserError(f"serotiny new: {message}; {USAGE_HINT}")


def new_parser() -> argparse.ArgumentParser:
    """The parser of ``serotiny new``, with one option per variable of the template."""
    from serotiny.commands.new_project import collect_answers, template_questions

    parser = _Parser(
        prog="serotiny new",
        description="Create a new serotiny project from the bundled cookiecutter template. "
        "Asks each question below that no option answers, unless --no-input.",
        epilog='Example: serotiny new --no-input --project_name="A Tiny Project"',
        allow_abbrev=False,
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        "--output_dir",
        default=".",
        metavar="DIR",
        help="the folder to create the project in (default: the current folder)",
    )
    parser.add_argument(
        "--no-input",
        "--no_input",
        action="store_true",
        help="ask nothing: take the defaults for every variable not given",
    )
    variables = parser.add_argument_group("the template's variables")
    defaults = collect_answers({}, no_input=True)
    for question in template_questions():
        default = repr(defaults.get(question.name, question.default))
        if question.derived:
            default = f"derived from the answers above, {default} for the defaults"
        variables.add_argument(
            f"--{question.name}",
            *([f"--{question.name.replace('_', '-')}"] if "_" in question.name else []),
            dest=question.name,
            metavar="TEXT",
            help=f"{question.prompt}; default: {default}".replace("%", "%%"),
        )
    return parser


def run_new(arguments: list[str]) -> None:
    """Parse ``serotiny new``'s arguments, render the project and say what to do next."""
    from serotiny.commands.new_project import render_project, template_questions

    options = vars(new_parser().parse_args(arguments))
    context = {
        question.name: options[question.name]
        for question in template_questions()
        if options.get(question.name) is not None
    }
    path = render_project(
        output_dir=options["output_dir"], no_input=options["no_input"], extra_context=context
    )
    print(f"created {path}\nnext: pip install -e {path} && cd {path} && serotiny train")
