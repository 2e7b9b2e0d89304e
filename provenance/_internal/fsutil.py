"""Atomic writes (security invariant 7): a reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from provenance.errors import InputError


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"cannot write '{target}': folder '{folder}' does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise InputError(f"cannot write '{target}': {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"cannot write '{target}': {e.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_limited(path: str | os.PathLike[str], what: str, limit: int = 64 << 20) -> bytes:
    """Read a small input file (key, bundle, certificate) with a clear error."""
    p = Path(path)
    try:
        if not p.is_file():
            if not p.exists():
                raise InputError(f"{what} '{p}' does not exist")
            raise InputError(f"{what} '{p}' is not a regular file")
        with p.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"cannot read {what} '{p}': {e.strerror}") from None
    if len(data) > limit:
        raise InputError(f"{what} '{p}' is larger than {limit >> 20} MiB")
    return data
