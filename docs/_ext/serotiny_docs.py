"""Sphinx directives that render serotiny's reference pages from the code itself.

- ``serotiny-cli-usage``: the top-level help, ``serotiny.cli.main.usage()``.
- ``serotiny-cli-commands``: one section per command of ``serotiny.cli.main.COMMANDS``,
  with a synopsis made from the function's signature and its docstring.
- ``serotiny-packaged-configs``: the config options packaged in ``serotiny/config``.
- ``serotiny-project-tree``: the files of a project freshly rendered from the template.

It also resolves a Python reference that names a serotiny object by a shorter name than the
one it is documented under (``:class:`ManifestTable``` in a docstring of the module that
imports it, while the page documents ``serotiny.io.dataframe.readers.ManifestTable``), when
exactly one documented serotiny object has that name: docstrings are written for the code,
the pages document public import paths.

Nothing here is copied by hand, so the pages cannot drift from the code they describe.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode

PACKAGED_CONFIGS = "serotiny.config"


def synopsis(name: str, function: Callable[..., Any]) -> str:
    """A command line synopsis made from a command function's signature.

    Fire turns keyword parameters into ``--flags`` (hyphens and underscores both work);
    ``*overrides`` are Hydra's overrides and flags, passed through untouched.
    """
    parts = [f"serotiny {name}"]
    for parameter in inspect.signature(function).parameters.values():
        flag = "--" + parameter.name.replace("_", "-")
        if parameter.kind is parameter.VAR_POSITIONAL:
            parts.append(f"[{parameter.name.upper().rstrip('S')} ...]")
        elif parameter.kind is parameter.VAR_KEYWORD:
            parts.append("[--KEY=VALUE ...]")
        elif parameter.default is False:
            parts.append(f"[{flag}]")
        elif parameter.default is parameter.empty:
            parts.append(parameter.name.upper())
        else:
            parts.append(f"[{flag}={parameter.default}]")
    return " ".join(parts)


def paragraphs(text: str) -> list[nodes.Node]:
    """A docstring as plain paragraphs: CLI docstrings are written for the terminal."""
    blocks = [block.strip() for block in inspect.cleandoc(text).split("\n\n")]
    return [nodes.paragraph(text=" ".join(block.split())) for block in blocks if block]


class CliUsage(SphinxDirective):
    """``serotiny --help`` as it prints."""

    def run(self) -> list[nodes.Node]:
        from serotiny.cli.main import usage

        text = str(usage())
        return [nodes.literal_block(text, text, language="text")]


class CliCommands(SphinxDirective):
    """A section per command: synopsis and docstring, in the order of ``COMMANDS``."""

    def run(self) -> list[nodes.Node]:
        from serotiny.cli.main import COMMANDS, HYDRA_COMMANDS

        sections: list[nodes.Node] = []
        for name, function in COMMANDS.items():
            section = nodes.section(ids=[f"command-{name}"], names=[f"serotiny {name}"])
            section += nodes.title(text=f"serotiny {name}")
            line = synopsis(name, function)
            section += nodes.literal_block(line, line, language="text")
            section += paragraphs(function.__doc__ or "")
            if name in HYDRA_COMMANDS:
                section += nodes.paragraph(
                    text=f"serotiny {name} composes the project's {name}.yaml "
                    + ("(or train.yaml) " if name in ("validate", "register") else "")
                    + "with Hydra: arguments are Hydra overrides and flags."
                )
            self.state.document.note_implicit_target(section, section)
            sections.append(section)
        return sections


def packaged_options() -> list[tuple[str, str]]:
    """``(group=option, description)`` for each YAML file packaged in serotiny/config."""
    root = resources.files(PACKAGED_CONFIGS)
    options = []
    for group in sorted((entry for entry in root.iterdir() if entry.is_dir()), key=str):
        if group.name.startswith("__"):
            continue
        for entry in sorted(group.iterdir(), key=lambda item: item.name):
            if not entry.name.endswith(".yaml"):
                continue
            comments = [
                line.lstrip("# ").strip()
                for line in entry.read_text().splitlines()
                if line.startswith("#") and "@package" not in line
            ]
            options.append((f"{group.name}={entry.name[: -len('.yaml')]}", " ".join(comments)))
    return options


class PackagedConfigs(SphinxDirective):
    """A list of the packaged options, each with the comment at the top of its file."""

    def run(self) -> list[nodes.Node]:
        items = nodes.bullet_list()
        for option, description in packaged_options():
            paragraph = nodes.paragraph()
            paragraph += nodes.literal(text=option)
            if description:
                paragraph += nodes.Text(": " + description)
            items += nodes.list_item("", paragraph)
        return [items]


def tree_lines(folder: Path, prefix: str = "") -> list[str]:
    """``tree``-style lines for everything under ``folder`` (names sorted, folders too)."""
    entries = sorted(folder.iterdir(), key=lambda path: path.name)
    lines = []
    for index, entry in enumerate(entries):
        last = index == len(entries) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{entry.name}")
        if entry.is_dir():
            lines += tree_lines(entry, prefix + ("    " if last else "│   "))
    return lines


class ProjectTree(SphinxDirective):
    """The files of a project rendered now from the template, as ``serotiny new`` makes it."""

    option_spec = {"project_name": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        from serotiny.commands.new_project import render_project, template_dir

        for path in template_dir().rglob("*"):
            if path.is_file():
                self.env.note_dependency(str(path))
        project_name = self.options.get("project_name", "A Tiny Project")
        with tempfile.TemporaryDirectory(prefix="serotiny-docs-") as folder:
            project = render_project(
                folder, no_input=True, extra_context={"project_name": project_name}
            )
            text = "\n".join([f"{project.name}/", *tree_lines(project)])
        return [nodes.literal_block(text, text, language="text")]


def resolve_serotiny_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve a py reference by its last dotted parts, if one serotiny object has them."""
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", "")).lstrip(".~")
    if not target:
        return None
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    matches = [
        name
        for name in objects
        if name.startswith("serotiny.") and (name == target or name.endswith("." + target))
    ]
    if len(matches) != 1:
        return None
    entry = objects[matches[0]]
    return make_refnode(
        app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0]
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("serotiny-cli-usage", CliUsage)
    app.add_directive("serotiny-cli-commands", CliCommands)
    app.add_directive("serotiny-packaged-configs", PackagedConfigs)
    app.add_directive("serotiny-project-tree", ProjectTree)
    app.connect("missing-reference", resolve_serotiny_name)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
