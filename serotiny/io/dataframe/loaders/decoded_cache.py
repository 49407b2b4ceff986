"""Decoded arrays kept on disk, so an image is decoded once rather than once per epoch.

Decoding (inflating a PNG, reading a microscopy format) costs several times more than
reading the decoded pixels back, and a manifest's images are decoded again every epoch and in
every run. :class:`DecodedCache` keeps each decoded array in a file of its own under one
folder, named by a hash of the source's absolute path, size, modification and change times
and the decoder: a changed (or replaced) image gets a new name and is decoded again, and the
entries are shared by every DataLoader worker, every loader configured alike and later runs.

Every entry is a ``.npy`` file (``np.load`` reads it) followed by a 32-byte trailer: a magic
number, the CRC-32 of the array's bytes and the hash that names the entry. A reader checks
the length, the trailer and the checksum, so a truncated, corrupt or misplaced entry is
decoded again from the source and rewritten, never returned. Writers write a temporary file
in the entry's folder and rename it over the entry (atomic on POSIX), so workers and runs
filling the cache at once never see a partial entry; two writers of one entry write the same
bytes. Entries of 1 MiB or more (3D stacks) are memory-mapped; smaller ones are read in one
system call, which measured ~10x faster than ``np.load(..., mmap_mode="r")`` for a
96x96 RGB image.

Nothing is ever evicted: delete the folder to reclaim the space.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import mmap
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import numpy as np

from serotiny.errors import SerotinyUserError

log = logging.getLogger(__name__)

# Bump when the entry format or the meaning of a key changes: old entries are then unused.
FORMAT = b"serotiny-decoded-1"
_MAGIC = b"SRTYDC01"
_TRAILER = struct.Struct("<8sI4x16s")  # magic, CRC-32 of the array's bytes, hash of the key
MMAP_MIN_BYTES = 1 << 20
# Sources modified this recently are decoded but not cached: on a file system whose clock
# ticks coarsely, a second write within the same tick would keep the size and timestamps, and
# the entry would outlive the content it was decoded from (git's "racy clean" problem).
SETTLE_NS = 2_000_000_000
_HEADER_CACHE_MAX = 1024


class CorruptEntryError(Exception):
    """A cache entry that fails its checks (internal: the entry is decoded again)."""


class DecodedCache:
    """Decoded arrays stored under ``folder``, keyed by source file and decoder.

    Picklable (it holds a folder name and counters), so a bound loader carries it into
    DataLoader workers. The counters count this process's lookups only.

    Example::

        cache = DecodedCache("/project/cache/images")
        cache.prepare()
        array = cache.load("/data/a.png", "pillow", decode=read_png)  # decodes and stores
        array = cache.load("/data/a.png", "pillow", decode=read_png)  # reads the entry

    Args:
        folder: where entries live; created by :meth:`prepare`.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.path.abspath(folder)
        self.hits = 0
        self.misses = 0
        self.rejected = 0
        self._headers: dict[bytes, tuple[np.dtype, tuple[int, ...]]] = {}
        self._write_failed = False

    def __repr__(self) -> str:
        return f"DecodedCache({self.folder!r})"

    def prepare(self) -> None:
        """Create the folder, or raise :class:`SerotinyUserError` if it cannot be written."""
        try:
            os.makedirs(self.folder, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder):
                pass
        except OSError as error:
            raise SerotinyUserError(
                f"decoded-image cache: cannot write to {self.folder} ({error.strerror or error});"
                " set the loader's cache_dir to a writable folder, or to null to turn it off"
            ) from None

    def entry_path(self, path: str, tag: str) -> str:
        """The entry that holds ``path`` decoded by ``tag`` as the file is now."""
        return self._entry(self.key(path, os.stat(path), tag))

    def key(self, path: str, stat: os.stat_result, tag: str) -> bytes:
        """The 16-byte hash naming ``path``'s entry, for the file as ``stat`` describes it."""
        path = path if os.path.isabs(path) else os.path.abspath(path)
        text = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"
        return hashlib.blake2b(
            f"{text}\0{tag}".encode(errors="surrogateescape"), digest_size=16, key=FORMAT
        ).digest()

    def load(self, path: str, tag: str, decode: Callable[[str], Any]) -> Any:
        """``path`` decoded, from its entry when a valid one exists; otherwise ``decode(path)``,
        stored for next time when it is a numpy array (other values are returned as they are).

        ``tag`` names the decoder and any parameter that changes its output.
        """
        before = os.stat(path)
        digest = self.key(path, before, tag)
        entry = self._entry(digest)
        try:
            array = self._read(entry, digest)
            self.hits += 1
            return array
        except FileNotFoundError:
            pass
        except (OSError, CorruptEntryError) as error:
            self.rejected += 1
            log.warning("decoded cache: decoding %s again: entry %s %s", path, entry, error)
        self.misses += 1
        value = decode(path)
        if _storable(value) and _settled(path, before):
            self._write(entry, digest, value)
        return value

    def ensure(self, path: str, tag: str, decode: Callable[[str], Any]) -> bool:
        """Whether ``path`` has an entry now, after decoding and storing it if it had none.

        An existing entry is not read here: whoever reads it checks it, and decodes the file
        again if the entry turns out damaged.
        """
        entry = self.entry_path(path, tag)
        if os.path.exists(entry):
            self.hits += 1
            return True
        self.load(path, tag, decode)
        return os.path.exists(entry)

    # Entries ---------------------------------------------------------------------------

    def _entry(self, digest: bytes) -> str:
        name = digest.hex()
        # 256 sub-folders: a million entries in one folder makes every lookup slower.
        return f"{self.folder}{os.sep}{name[:2]}{os.sep}{name}.npy"

    def _read(self, entry: str, digest: bytes) -> np.ndarray:
        fd = os.open(entry, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size >= MMAP_MIN_BYTES:
                buffer: Any = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            else:
                buffer = os.read(fd, size)
        finally:
            os.close(fd)
        return self._parse(memoryview(buffer), digest)

    def _parse(self, view: memoryview, digest: bytes) -> np.ndarray:
        start = _payload_start(view)
        header = bytes(view[:start])
        known = self._headers.get(header)
        if known is None:
            known = _parse_header(header)
            if len(self._headers) >= _HEADER_CACHE_MAX:
                self._headers.clear()
            self._headers[header] = known
        dtype, shape = known
        end = start + dtype.itemsize * math.prod(shape)
        if len(view) != end + _TRAILER.size:
            raise CorruptEntryError(f"has {len(view)} bytes, {end + _TRAILER.size} expected")
        magic, checksum, key = _TRAILER.unpack_from(view, end)
        if magic != _MAGIC or key != digest:
            raise CorruptEntryError("has a wrong trailer (not written by this cache)")
        payload = view[start:end]
        if zlib.crc32(payload) != checksum:
            raise CorruptEntryError("fails its checksum")
        return np.frombuffer(payload, dtype=dtype).reshape(shape)

    def _write(self, entry: str, digest: bytes, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        trailer = _TRAILER.pack(_MAGIC, zlib.crc32(array), digest)
        # A name no other live process uses (pid and random bytes); O_EXCL makes sure.
        temporary = f"{entry}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                fd = os.open(temporary, flags, 0o644)
            except FileNotFoundError:  # the sub-folder is new (or was deleted meanwhile)
                os.makedirs(os.path.dirname(entry), exist_ok=True)
                fd = os.open(temporary, flags, 0o644)
        except OSError as error:
            self._warn_write_failed(error)
            return
        try:
            try:
                for part in (
                    _header_bytes(array.dtype, array.shape),
                    array.reshape(-1).view(np.uint8),
                    trailer,
                ):
                    _write_all(fd, memoryview(part))
            finally:
                os.close(fd)
            os.replace(temporary, entry)
        except OSError as error:
            with suppress(OSError):
                os.unlink(temporary)
            self._warn_write_failed(error)

    def _warn_write_failed(self, error: OSError) -> None:
        # A full disk must not stop training: warn once per process and go on decoding.
        if not self._write_failed:
            self._write_failed = True
            log.warning("decoded cache: cannot write entries under %s (%s)", self.folder, error)


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):  # os.write may write less than asked (past 2 GiB on Linux)
        view = view[os.write(fd, view) :]


@functools.lru_cache(maxsize=_HEADER_CACHE_MAX)
def _header_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header ``np.save`` writes for a C-ordered array of ``dtype`` and ``shape``."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    stream = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(stream, header)
    except ValueError:  # a header too long for format 1.0
        stream = io.BytesIO()
        np.lib.format.write_array_header_2_0(stream, header)
    return stream.getvalue()


def _payload_start(view: memoryview) -> int:
    if len(view) < 10 + _TRAILER.size or view[:6] != b"\x93NUMPY":
        raise CorruptEntryError("is not a .npy file")
    if view[6] == 1:
        return 10 + int.from_bytes(view[8:10], "little")
    if view[6] == 2:
        return 12 + int.from_bytes(view[8:12], "little")
    raise CorruptEntryError(f"has an unknown .npy version {view[6]}")


def _parse_header(header: bytes) -> tuple[np.dtype, tuple[int, ...]]:
    stream = io.BytesIO(header)
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        version = np.lib.format.read_magic(stream)
        if version not in readers:
            raise ValueError(f".npy version {version} (this cache writes 1.0 and 2.0)")
        shape, fortran_order, dtype = readers[version](stream)
    except (ValueError, TypeError, SyntaxError, struct.error) as error:
        raise CorruptEntryError(f"has an unreadable header ({error})") from None
    if fortran_order or dtype.hasobject:
        raise CorruptEntryError("has a header this cache never writes")
    return dtype, tuple(shape)


def _storable(value: Any) -> bool:
    return isinstance(value, np.ndarray) and not value.dtype.hasobject


def _settled(path: str, before: os.stat_result) -> bool:
    """Whether ``path`` kept its size and times while it was decoded, and is not so new that
    a write in the same clock tick could go unseen."""
    try:
        after = os.stat(path)
    except OSError:
        return False
    same = (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ctime_ns,
        before.st_ino,
    )
    return same and time.time_ns() - after.st_mtime_ns >= SETTLE_NS
