"""Stopping a training cleanly: a first Ctrl-C acts like SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)


@contextmanager
def first_interrupt_stops_gracefully() -> Iterator[None]:
    """Make a first Ctrl-C act like SIGTERM: stop at the next batch boundary and checkpoint.

    Lightning turns SIGTERM into a clean stop between batches; a KeyboardInterrupt can land
    in the middle of an optimizer step, where no consistent checkpoint exists. A second
    Ctrl-C interrupts at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log.warning("interrupted: stopping after this batch (Ctrl-C again to stop at once)")
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
