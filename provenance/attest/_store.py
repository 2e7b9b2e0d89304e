"""``model.intoto.jsonl``: signed attestations, one Sigstore bundle a line.

The file sits beside ``model.sig`` and, like it, outside the model manifest.

Reading. The file is read only when it is a regular file and not a symbolic
link, whoever named it (a link would copy its target, ``/proc/self/environ``
say, into a file meant to be published), without blocking (a FIFO is
refused, never opened) and within limits that fit real use with room to
spare: a line is one bundle of at most :data:`MAX_LINE_BYTES`, the file at
most :data:`MAX_FILE_BYTES` and :data:`MAX_LINES` non-empty lines. A larger
file is refused before it is read.

Damaged lines (not a bundle, longer than a line may be, past the line cap)
are reported by number and never stop the reading of the others: ``inspect``
and ``lineage`` show them and go on, ``verify`` fails on them (the file
should hold only what was signed). A line repeated byte for byte is
reported as a repeat of its first occurrence and not read again.

Writing. An append is a rewrite of the whole file through
:func:`~provenance._internal.fsutil.safe_output` and
:func:`~provenance._internal.fsutil.write_output` (atomic; only a new path or
a file that already holds attestations, never a link, FIFO or device, never
one of the model's own files) under a lock on the folder, so a crash or a
concurrent writer never loses an earlier line. A file with a damaged line is
not appended to: nothing can tell it from someone else's file, so the
reason names the line, and :func:`provenance.attest.prune` drops such lines.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provenance.bundle import Bundle
from provenance.errors import Hint, InputError

if TYPE_CHECKING:
    from provenance._internal.fsutil import OutputTarget
    from provenance.attest._parse import Budget
    from provenance.intoto import Statement

__all__ = [
    "ATTESTATIONS_NAME",
    "MAX_FILE_BYTES",
    "MAX_LINES",
    "MAX_LINE_BYTES",
    "Line",
    "append",
    "check_append",
    "default_attestations_path",
    "first_damaged",
    "folder_lock",
    "iter_lines",
    "read",
    "read_file",
]

ATTESTATIONS_NAME = "model.intoto.jsonl"

#: One line is one Sigstore bundle: a few KiB (keyless, with its log entry),
#: up to a few hundred KiB for a training run that records a large config.
MAX_LINE_BYTES = 4 << 20
#: The whole file: thousands of lines of real attestations.
MAX_FILE_BYTES = 32 << 20
#: Non-empty lines read; later ones are reported once, not read.
MAX_LINES = 10_000

_WHAT = "attestations file"
_NON_SPACE = re.compile(rb"[^ \t\r\n\f\v]")
_O_FOLDER = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _size(n: int) -> str:
    return f"{n >> 20} MiB"


def default_attestations_path(model_path: str | os.PathLike[str]) -> Path:
    """``MODEL/model.intoto.jsonl``, or ``MODEL.intoto.jsonl`` beside a single file."""
    p = Path(model_path)
    return p / ATTESTATIONS_NAME if p.is_dir() else p.with_name(p.name + ".intoto.jsonl")


@dataclass(frozen=True)
class Line:
    """One non-empty line of the file: a parsed bundle, or why it could not be read.

    ``duplicate_of`` is the number of an earlier line with the very same
    bytes (the line is then not parsed again: ``bundle`` is None and
    ``error`` too). ``statement`` is the bundle's statement, read and NOT
    verified, when asked for (:func:`iter_lines` ``statements=True``);
    ``statement_error`` says why it could not be read. ``same_statement_as``
    is an earlier line that carries the same statement (signed again, or by
    another signer). ``raw`` is the line's exact bytes, when asked for.
    """

    number: int
    bundle: Bundle | None
    error: str | None = None
    duplicate_of: int | None = None
    statement: Statement | None = field(default=None, compare=False)
    statement_error: str | None = None
    same_statement_as: int | None = None
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def damaged(self) -> bool:
        """Not a bundle (a repeat of a readable line is not damaged)."""
        return self.bundle is None and self.duplicate_of is None


def _parse(text: bytes, number: int) -> tuple[Bundle | None, str | None]:
    try:
        return Bundle.from_bytes(text, source=f"line {number}"), None
    except InputError as e:
        return None, str(e)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
        # A shape the bundle parser did not expect: the line is malformed.
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        return None, f"line {number} is malformed ({reason})"


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes: regular, not a link, at most :data:`MAX_FILE_BYTES`, never blocking."""
    from provenance._internal.fsutil import read_regular

    try:
        return read_regular(path, _WHAT, MAX_FILE_BYTES)
    except InputError as e:
        if e.code == "not-found":
            raise InputError(f"no attestations at '{path}'", code="attestations-missing") from None
        if e.code == "too-large":
            raise InputError(
                f"{_WHAT} '{path}' is larger than {_size(MAX_FILE_BYTES)}; "
                "it is not read (prune the lines about other digests)",
                code="attestations-too-large",
            ) from None
        raise


def iter_lines(
    path: str | os.PathLike[str],
    *,
    statements: bool = False,
    keep_raw: bool = False,
    data: bytes | None = None,
    budget: Budget | None = None,
) -> Iterator[Line]:
    """Every non-empty line, in order; a bad line is reported, never fatal.

    The file is read by :func:`read_file` (``data``: its bytes, already read).
    With ``statements``, each bundle's statement is parsed too (bounded per
    line, and per file or by the ``budget`` given: :mod:`provenance.attest._parse`),
    NOT verified.
    """
    from provenance.attest._parse import Budget, parse_statement

    raw = read_file(path) if data is None else data
    budget = budget if budget is not None else Budget()
    seen: dict[bytes, int] = {}
    payloads: dict[bytes, int] = {}
    number, pos, count = 1, 0, 0
    while True:
        m = _NON_SPACE.search(raw, pos)
        if m is None:
            return
        start = m.start()
        number += raw.count(b"\n", pos, start)
        end = raw.find(b"\n", start)
        if end < 0:
            end = len(raw)
        pos = end
        count += 1
        if count > MAX_LINES:
            yield Line(
                number, None, f"more than {MAX_LINES:,} lines; line {number} and later not read"
            )
            return
        if end - start > MAX_LINE_BYTES:
            yield Line(number, None, f"line {number} is longer than {_size(MAX_LINE_BYTES)}")
            continue
        text = raw[start:end].rstrip()
        key = hashlib.sha256(text).digest()
        first = seen.get(key)
        if first is not None:
            yield Line(number, None, duplicate_of=first, raw=text if keep_raw else None)
            continue
        seen[key] = number
        bundle, error = _parse(text, number)
        stmt, stmt_error, same = None, None, None
        if bundle is not None:
            payload_key = hashlib.sha256(bundle.envelope.payload).digest()
            same = payloads.setdefault(payload_key, number)
            same = None if same == number else same
            if statements:
                try:
                    stmt = parse_statement(bundle.envelope.payload, budget)
                except InputError as e:
                    stmt_error = str(e)
        yield Line(
            number,
            bundle,
            error,
            statement=stmt,
            statement_error=stmt_error,
            same_statement_as=same,
            raw=text if keep_raw else None,
        )


def read(path: str | os.PathLike[str], *, statements: bool = False) -> list[Line]:
    """Every non-empty line, in order (see :func:`iter_lines`)."""
    return list(iter_lines(path, statements=statements))


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder that holds the file.

    The file itself is replaced on every write, so the lock lives on the
    folder, which stays put (and no lock file is left in the model).
    """
    try:
        fd = os.open(folder, _O_FOLDER)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(f"folder '{folder}' does not exist", code="not-found") from None
        raise InputError(
            f"cannot lock folder '{folder}': {e.strerror}", code="unwritable"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def first_damaged(data: bytes) -> Line | None:
    """The first damaged line of a file that holds attestations, else None.

    None too when no line at all is a bundle: that is someone else's file,
    not a damaged attestations file.
    """
    damaged: Line | None = None
    readable = False
    for line in iter_lines("", data=data):
        if line.damaged:
            damaged = damaged or line
        elif line.bundle is not None:
            readable = True
        if damaged is not None and readable:
            return damaged
    return None


def _is_signature(data: bytes) -> bool:
    """Whether a file's lines hold a model signature (an OMS statement), read, not verified."""
    from provenance.attest._parse import parse_statement
    from provenance.intoto import LEGACY_PREDICATE_TYPE, OMS_PREDICATE_TYPE

    signatures = (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE)
    for line in iter_lines("", data=data):
        if line.bundle is None:
            continue
        payload = line.bundle.envelope.payload
        try:
            if parse_statement(payload).predicate_type in signatures:
                return True
            continue
        except InputError:
            pass
        # Too large to parse here (a manifest of 200,000 files): the predicate type
        # sits at one end of the statement, before or after the predicate.
        ends = (payload[:4096], payload[-4096:])
        if any(t.encode() in end for t in signatures for end in ends):
            return True
    return False


def check_append(target: Path, *, model_root: str | os.PathLike[str] | None = None) -> OutputTarget:
    """:func:`~provenance._internal.fsutil.safe_output` for the attestations file.

    A file that holds attestations and a damaged line is refused with a
    reason that names the line (and the way out: prune); a full file too.
    """
    from provenance._internal.fsutil import read_regular, safe_output

    try:
        out = safe_output(target, "attestations", model_root=model_root, limit=MAX_FILE_BYTES)
    except InputError as e:
        if e.code != "output-refused":
            raise
        # Say so when what stands in the way is a damaged attestations file.
        try:
            bad = first_damaged(read_regular(target, _WHAT, MAX_FILE_BYTES))
        except InputError:
            bad = None
        if bad is None:
            raise
        raise InputError(
            f"cannot append to '{target}': line {bad.number} is not an attestation "
            f"({bad.error}); prune the damaged lines first",
            code="attestations-damaged",
            hint=Hint.PRUNE,
        ) from None
    existing = out.existing or b""
    if existing.strip() and _is_signature(existing):
        raise InputError(
            f"refusing to write the attestations file to '{target}': it holds a model "
            "signature, which a second line would break",
            code="output-refused",
            hint=Hint.OUTPUT_PATH,
        )
    if len(existing) >= MAX_FILE_BYTES or existing.count(b"\n") >= MAX_LINES:
        raise InputError(
            f"'{target}' is full ({_size(MAX_FILE_BYTES)} or {MAX_LINES:,} lines at most); "
            "prune the lines about other digests first",
            code="attestations-too-large",
            hint=Hint.PRUNE,
        )
    return out


def append(
    path: str | os.PathLike[str],
    bundle: Bundle,
    *,
    model_root: str | os.PathLike[str] | None = None,
) -> int:
    """Add one bundle as a new line; returns its 1-based line number.

    ``model_root``: the attested model, whose own files are never written.
    """
    from provenance._internal.fsutil import write_output

    target = Path(path)
    line = bundle.to_bytes()
    if b"\n" in line:
        raise InputError("a bundle for the attestations file must be one line of JSON")
    if len(line) > MAX_LINE_BYTES:
        raise InputError(
            f"the new attestation is {len(line):,} bytes; a line of the attestations file "
            f"holds at most {_size(MAX_LINE_BYTES)}",
            code="attestation-too-large",
        )
    with folder_lock(target.parent):
        out = check_append(target, model_root=model_root)
        existing = out.existing or b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        if len(existing) + len(line) + 1 > MAX_FILE_BYTES:
            raise InputError(
                f"'{target}' would grow past {_size(MAX_FILE_BYTES)}; "
                "prune the lines about other digests first",
                code="attestations-too-large",
                hint=Hint.PRUNE,
            )
        write_output(out, existing + line + b"\n")
    return existing.count(b"\n") + 1
