"""Keeping credentials out of everything serotiny writes or prints.

A password in a tracking URI (``http://user:secret@host``) or a value under a secret-looking
key (``api_token``) must never reach run params, artifacts, tags, logs or messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api[_-]?key|credential)", re.IGNORECASE)
_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
REDACTED = "***"


def redact(value: Any, key: str = "") -> Any:
    """Hide credentials: values under secret-looking keys, and ``user:pass@`` in URIs."""
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return REDACTED
        return _URI_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", value)
    return value


def redact_override(override: str) -> str:
    """A command-line override (``++key=value``) with its value redacted as :func:`redact`
    would redact it under that key."""
    if "=" not in override:
        return override
    key, value = override.split("=", 1)
    return f"{key}={redact(value, key.lstrip('+~').rsplit('.', 1)[-1])}"


def has_credentials(text: str) -> bool:
    """Whether ``text`` holds a ``user:password@`` part of a URI."""
    return bool(_URI_CREDENTIALS.search(text))
