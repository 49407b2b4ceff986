"""Sphinx configuration: `make docs`, or `sphinx-build -W --keep-going -n docs docs/_build/html`.

Offline by design: no intersphinx, no remote images, and notebooks are shown as stored
(tests/docs executes them; the build does not).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# The serotiny of this checkout, whether or not it is installed in the building environment.
sys.path.insert(0, str(DOCS.parent))

from serotiny import __version__  # noqa: E402

project = "serotiny"
author = "serotiny contributors"
copyright = "serotiny contributors"  # noqa: A001 - the name Sphinx reads
version = release = __version__

extensions = [
    "myst_nb",  # MyST Markdown pages and the notebooks in notebooks/
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # serotiny's docstrings use Google style ("Args:", "Returns:")
    "serotiny_docs",  # the CLI reference and project tree, rendered from the code
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
# architecture.md is for contributors (GitHub renders its Mermaid diagram); not part of the site.
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "architecture.md"]
root_doc = "index"
# Keep "--flag" and quotes as typed: these pages are full of command lines.
smartquotes = False

# Notebooks are executed by tests/docs/test_notebooks.py against a run trained there.
nb_execution_mode = "off"
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Lightning's own docstrings (of hooks a model overrides) use directives of its doc build.
autodoc_inherit_docstrings = False
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Without intersphinx (the build stays offline), types from other libraries have no page to
# link to; nitpicky mode would flag each one. serotiny's own references are still checked.
_EXTERNAL = (
    r"(torch|nn|np|numpy|pd|pandas|pa|pyarrow|pl|lightning|mlflow|omegaconf|DictConfig"
    r"|matplotlib|PIL|os|pathlib|collections|typing|abc|enum)(\..*)?"
)
nitpick_ignore_regex = [
    (r"py:(class|obj|exc|data|mod|func|meth|attr)", _EXTERNAL),
    # Names imported for type checking only, which autodoc shows unqualified.
    (r"py:(class|obj)", r"(Axes|Figure|MlflowClient|Run|Path|Any|Callable|Sequence|Mapping)"),
    # serotiny.io.dataframe.loaders' docstring points at its submodule `.base`, whose classes
    # these pages document at their public path (serotiny.io.dataframe.loaders.Loader, ...).
    ("py:mod", "base"),
]

html_theme = "alabaster"
html_title = f"serotiny {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "ML-ops for PyTorch Lightning projects",
    "fixed_sidebar": True,
}


def _private(cls: type) -> bool:
    """A serotiny class from a private module (e.g. serotiny.models._steps), not documented."""
    parts = getattr(cls, "__module__", "").split(".")
    return parts[0] == "serotiny" and any(part.startswith("_") for part in parts)


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Show a class's bases past serotiny's private helper classes, which have no page."""
    while any(_private(base) for base in bases):
        bases[:] = [b for base in bases for b in (base.__bases__ if _private(base) else (base,))]


def setup(app: Any) -> None:
    app.connect("autodoc-process-bases", _public_bases)
