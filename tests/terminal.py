"""A pseudo-terminal for tests that check what is drawn on a terminal, in this process."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading


class Terminal:
    """A pseudo-terminal (``os.openpty``) of ``columns`` x ``rows``: :attr:`file` is where a
    program writes, as to a user's terminal; what it writes is read as it comes (a full
    terminal would block the writer), and :meth:`close` returns all of it."""

    def __init__(self, columns: int = 120, rows: int = 40) -> None:
        self._main, secondary = os.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.file = os.fdopen(secondary, "w")
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, name="terminal-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._main, 65536)
            except OSError:  # the program's end is closed and everything was read
                return
            if not chunk:
                return
            self._output += chunk

    def close(self) -> str:
        """Close the terminal (again: no-op); everything written to it, escapes included."""
        if not self.file.closed:
            self.file.flush()
            self.file.close()
            self._reader.join(timeout=60)
            os.close(self._main)
        return self._output.decode("utf-8", "replace")
