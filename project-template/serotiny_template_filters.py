"""Jinja filters that quote an answer for the file it is rendered into.

Answers are free text (a description may hold quotes, backslashes, `#` or any unicode), so
every file that embeds one says how: ``{{ cookiecutter.x|toml_string }}`` in TOML,
``{{ cookiecutter.x|python_string }}`` in Python. Cookiecutter puts the template's folder on
``sys.path`` while it renders, which is how ``_extensions`` in cookiecutter.json finds this
module. Standard library and cookiecutter only: it runs wherever cookiecutter runs.
"""

from cookiecutter.utils import simple_filter

_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_character(character: str) -> str:
    if character in _TOML_ESCAPES:
        return _TOML_ESCAPES[character]
    if ord(character) < 0x20 or ord(character) == 0x7F:  # TOML forbids raw control characters
        return f"\\u{ord(character):04X}"
    return character


@simple_filter
def toml_string(value: object) -> str:
    """The value as a TOML basic string, quotes included."""
    return '"' + "".join(_toml_character(character) for character in str(value)) + '"'


@simple_filter
def python_string(value: object) -> str:
    """The value as a Python string literal, double-quoted where that needs no escapes."""
    text = str(value)
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:  # then text holds no ' either
        literal = '"' + literal[1:-1] + '"'
    return literal
