"""Whether files can be written in a folder, asked before a command relies on it."""

from __future__ import annotations

import tempfile
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be made in ``folder`` (made first if missing), or None if they can.

    Tries it: a folder made and removed in ``folder``, or in its nearest existing parent
    when it is missing. Permission bits alone do not tell (root ignores them; a read-only
    mount or a full disk refuses anyone).
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        Path(tempfile.mkdtemp(prefix=".serotiny-check-", dir=existing)).rmdir()
    except OSError as error:
        return f"{error.strerror or error} in {existing}"
    return None
