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


def read(path: str | os.PathLike[str]) -> list[Line]:
    """Every non-empty line, in order; a bad line is reported, never fatal."""
    from provenance._internal.fsutil import read_limited

    raw = read_limited(path, "attestations file", 1 << 30)
    lines = []
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        try:
            lines.append(Line(number, Bundle.from_bytes(text, source=f"line {number}")))
        except InputError as e:
            lines.append(Line(number, None, str(e)))
    return lines
