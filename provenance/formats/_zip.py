"""A zip archive's central directory, read within fixed bounds.

``zipfile`` reads the whole central directory, builds an object per entry
and raises a dozen kinds of exception on a broken archive; a hostile file
can hold millions of entries. This reader finds the end-of-central-directory
record (and its zip64 form) in the last :data:`TAIL` bytes, then parses at
most :data:`MAX_CD_BYTES` bytes and :data:`MAX_ENTRIES` entries of the
directory. It never raises for a malformed archive: the listing says what
it could read and why it stopped.

Where the directory is looked for follows ``zipfile``: just before the end
record, whatever offset the record claims (a stub prepended to the archive
shifts every offset; ``zipfile`` corrects them by the difference, and so
does this reader).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_CD_BYTES", "MAX_ENTRIES", "TAIL", "Entry", "Listing", "list_zip", "member_head"]

Reader = Callable[[int, int], bytes]

MAX_CD_BYTES = 512 << 10
MAX_ENTRIES = 4096
_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_EOCD_SIZE = 22
_EOCD64_SIZE = 56
_LOCATOR_SIZE = 20
#: The end record, its longest comment, and the zip64 record and locator before it.
TAIL = _EOCD_SIZE + 0xFFFF + _EOCD64_SIZE + _LOCATOR_SIZE


@dataclass(frozen=True)
class Entry:
    name: str  # backslashes read as slashes
    method: int
    flags: int
    compressed: int
    offset: int  # of the local header, corrected like zipfile's


@dataclass
class Listing:
    entries: list[Entry] = field(default_factory=list)
    #: Every entry of the directory was read.
    complete: bool = False
    #: Why not, in words (also notes that do not stop the reading).
    problem: str | None = None
    claimed: int = 0  # the number of entries the end record claims


def _find_end(tail: bytes) -> int:
    """Where the end record starts in ``tail``, as ``zipfile`` finds it; -1 if nowhere."""
    if len(tail) >= _EOCD_SIZE and tail[-_EOCD_SIZE:-18] == _EOCD and tail[-2:] == b"\0\0":
        return len(tail) - _EOCD_SIZE
    return tail.rfind(_EOCD, max(0, len(tail) - _EOCD_SIZE - 0xFFFF))


def _zip64_values(extra: bytes, fields: list[int]) -> list[int] | None:
    """``fields`` with each 0xFFFFFFFF taken from the zip64 extra field, in order."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag != 1:
            continue
        out, at = [], 0
        for value in fields:
            if value == 0xFFFFFFFF:
                if at + 8 > len(body):
                    return None
                value = int.from_bytes(body[at : at + 8], "little")
                at += 8
            out.append(value)
        return out
    return None if 0xFFFFFFFF in fields else fields


def list_zip(read: Reader, size: int) -> Listing:
    """The entries of the zip archive of ``size`` bytes that ``read`` reads."""
    listing = Listing()
    tail_start = max(0, size - TAIL)
    tail = read(tail_start, size - tail_start)
    at = _find_end(tail)
    if at < 0:
        listing.problem = "no end of central directory record"
        return listing
    end = tail[at : at + _EOCD_SIZE]
    if len(end) < _EOCD_SIZE:
        listing.problem = "a truncated end of central directory record"
        return listing
    total, cd_size, cd_offset = struct.unpack_from("<HII", end, 10)
    end_pos = tail_start + at
    where = end_pos  # the directory ends where the end records start
    zip64 = tail[at - _LOCATOR_SIZE : at] if at >= _LOCATOR_SIZE else b""
    if zip64[:4] == _LOCATOR:
        rec = tail[at - _LOCATOR_SIZE - _EOCD64_SIZE : at - _LOCATOR_SIZE]
        if at < _LOCATOR_SIZE + _EOCD64_SIZE or rec[:4] != _EOCD64:
            listing.problem = "a zip64 locator without its zip64 end record"
            return listing
        total, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
        where = end_pos - _LOCATOR_SIZE - _EOCD64_SIZE
    listing.claimed = total
    start = where - cd_size
    if start < 0:
        listing.problem = f"a central directory of {cd_size} bytes, larger than the file"
        return listing
    concat = start - cd_offset
    if concat:
        listing.problem = f"central directory offset off by {concat} bytes"
    data = read(start, min(cd_size, MAX_CD_BYTES))
    pos = 0
    while pos < len(data):
        if len(listing.entries) >= MAX_ENTRIES:
            listing.problem = f"more than {MAX_ENTRIES} entries; the first {MAX_ENTRIES} read"
            return listing
        if data[pos : pos + 4] != _CENTRAL:
            listing.problem = f"a malformed central directory entry at byte {start + pos}"
            return listing
        if pos + 46 > len(data):
            break
        (flags, method, compressed, uncompressed, n_name, n_extra, n_comment, offset) = (
            struct.unpack_from("<8xHH8xIIHHH8xI", data, pos)
        )
        stop = pos + 46 + n_name + n_extra + n_comment
        if stop > len(data):
            break
        raw = data[pos + 46 : pos + 46 + n_name]
        extra = data[pos + 46 + n_name : pos + 46 + n_name + n_extra]
        values = _zip64_values(extra, [uncompressed, compressed, offset])
        if values is None:
            listing.problem = f"a malformed zip64 field at byte {start + pos}"
            return listing
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace").replace("\\", "/")
        listing.entries.append(Entry(name, method, flags, values[1], values[2] + concat))
        pos = stop
    if pos < cd_size:
        listing.problem = (
            f"a central directory of {cd_size} bytes, larger than the {MAX_CD_BYTES} read"
            if cd_size > MAX_CD_BYTES
            else "a truncated central directory"
        )
        return listing
    listing.complete = True
    return listing


def member_head(read: Reader, entry: Entry, want: int) -> tuple[bytes, int] | None:
    """The first ``want`` bytes of a member's content and the bytes read to get them.

    None when they cannot be had cheaply: encrypted, compressed other than
    stored or deflated, a broken local header, or corrupt data.
    """
    if entry.flags & 1 or entry.method not in (0, 8) or entry.offset < 0:
        return None
    local = read(entry.offset, 30)
    if len(local) < 30 or local[:4] != _LOCAL:
        return None
    n_name, n_extra = struct.unpack_from("<HH", local, 26)
    start = entry.offset + 30 + n_name + n_extra
    if entry.method == 0:
        count = min(entry.compressed, want)
        data = read(start, count)
        return (data, 30 + count) if len(data) == count else None
    count = min(entry.compressed, want + 1024)  # deflate stores incompressible data almost 1:1
    packed = read(start, count)
    try:
        return zlib.decompressobj(-15).decompress(packed, want), 30 + count
    except zlib.error:
        return None
