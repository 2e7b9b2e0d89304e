"""``model.intoto.jsonl``: signed attestations, one Sigstore bundle a line.

The file sits beside ``model.sig`` and, like it, outside the model manifest.
Appending rewrites the file atomically under a lock on its folder, so a
crash or a concurrent writer never loses an earlier line; reading reports a
damaged line and carries on with the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provenance._internal.fsutil import atomic_write
from provenance.bundle import Bundle
from provenance.errors import InputError

ATTESTATIONS_NAME = "model.intoto.jsonl"


def default_attestations_path(model_path: str | os.PathLike[str]) -> Path:
    """``MODEL/model.intoto.jsonl``, or ``MODEL.intoto.jsonl`` beside a single file."""
    p = Path(model_path)
    return p / ATTESTATIONS_NAME if p.is_dir() else p.with_name(p.name + ".intoto.jsonl")


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # The file itself is replaced on every append, so the lock lives on the
    # folder, which stays put (and no lock file is left in the model).
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def append(path: str | os.PathLike[str], bundle: Bundle) -> int:
    """Add one bundle as a new line; returns its 1-based line number."""
    target = Path(path)
    line = bundle.to_bytes()
    if b"\n" in line:
        raise InputError("a bundle for the attestations file must be one line of JSON")
    with _folder_lock(target.parent):
        try:
            existing = target.read_bytes()
        except FileNotFoundError:
            existing = b""
        except OSError as e:
            raise InputError(f"cannot read '{target}': {e.strerror}") from None
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"  # keep a damaged last line as it is, on its own line
        atomic_write(target, existing + line + b"\n")
    return existing.count(b"\n") + 1


@dataclass(frozen=True)
class Line:
    """One line of the file: a parsed bundle, or why it could not be read."""

    number: int
    bundle: Bundle | None
    error: str | None = None


#: The largest attestations file read. A line is a few KiB (a Sigstore bundle
#: with its certificate and log entry), so this holds thousands; every
#: readable line is kept in memory until the caller is done with it.
MAX_FILE_BYTES = 32 << 20

#: The longest line read as a bundle; a longer one is reported as damaged
#: without being held in memory.
MAX_LINE_BYTES = 4 << 20

#: Lines read (empty ones included); the rest of a longer file is reported as
#: one damaged line rather than parsed, so that a file of tiny junk lines
#: cannot cost a Python object per byte.
MAX_LINES = 10_000

_CHUNK = 1 << 20


def _open_regular(path: Path) -> int:
    """A descriptor on ``path`` itself: not through a link, never blocking on a FIFO."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"attestations file '{path}' does not exist") from None
    except OSError as e:
        if path.is_symlink():
            raise InputError(
                f"attestations file '{path}' is a symbolic link; give the file itself"
            ) from None
        raise InputError(f"cannot read attestations file '{path}': {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"attestations file '{path}' is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(_too_large(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_large(path: Path) -> str:
    return f"attestations file '{path}' is larger than {MAX_FILE_BYTES >> 20} MiB"


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """``(number, text)`` for each line, text None when longer than MAX_LINE_BYTES.

    Read a chunk at a time, so neither the file nor an overlong line is ever
    held whole.
    """
    fd = _open_regular(path)
    with os.fdopen(fd, "rb", buffering=0) as f:
        number, total = 1, 0
        pending: list[bytes] = []
        size = 0  # of the pending pieces, or -1 once the line is too long
        while True:
            try:
                chunk = f.read(_CHUNK)
            except OSError as e:
                raise InputError(f"cannot read attestations file '{path}': {e.strerror}") from None
            if chunk is None:  # O_NONBLOCK on a regular file: cannot happen
                continue
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise InputError(_too_large(path))
            if not chunk:
                if size > 0:
                    yield number, b"".join(pending)
                elif size < 0:
                    yield number, None
                return
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if size >= 0 and size + len(piece) <= MAX_LINE_BYTES:
                    if piece:
                        pending.append(piece)
                        size += len(piece)
                else:
                    pending, size = [], -1
                if end < 0:
                    break
                yield number, (b"".join(pending) if size >= 0 else None)
                number += 1
                pending, size = [], 0
                start = end + 1


def read(path: str | os.PathLike[str]) -> list[Line]:
    """Every non-empty line, in order; a bad line is reported, never fatal.

    The file itself must be a regular file, not a link, of at most
    :data:`MAX_FILE_BYTES`: anything else is an :class:`InputError`.
    """
    lines = []
    for number, text in _raw_lines(Path(path)):
        if number > MAX_LINES:
            lines.append(
                Line(number, None, f"more than {MAX_LINES} lines; line {number} on was not read")
            )
            break
        if text is None:
            lines.append(
                Line(number, None, f"line {number} is longer than {MAX_LINE_BYTES >> 20} MiB")
            )
            continue
        if not text.strip():
            continue
        try:
            lines.append(Line(number, Bundle.from_bytes(text, source=f"line {number}")))
        except InputError as e:
            lines.append(Line(number, None, str(e)))
    return lines
