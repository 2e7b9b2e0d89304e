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

__all__ = [
    "MAX_CD_BYTES",
    "MAX_ENTRIES",
    "TAIL",
    "CentralEntry",
    "Directory",
    "Entry",
    "Listing",
    "list_zip",
    "member_head",
    "read_directory",
]

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


# ---------------------------------------------------------------- the scanner's reader


@dataclass(frozen=True)
class CentralEntry:
    """One central directory record, every field a scanner compares with the local header."""

    index: int
    at: int  # where the record starts in the file
    raw_name: bytes
    name: str  # decoded (UTF-8 when flagged, else cp437), backslashes kept
    name_decodes: bool  # False: flagged UTF-8 but not valid UTF-8
    flags: int
    method: int
    crc: int
    compressed: int
    uncompressed: int
    offset: int  # of the local header, corrected by the shift (as zipfile does)
    disk: int
    extra: bytes


@dataclass
class Directory:
    """What :func:`read_directory` read, and every problem on the way (code, message, offset)."""

    entries: list[CentralEntry] = field(default_factory=list)
    problems: list[tuple[str, str, int | None]] = field(default_factory=list)
    #: Every entry of the directory was read.
    complete: bool = False
    end_at: int = -1  # the end record the directory was found by
    end_length: int = 0  # the end record and its comment, as far as the file holds them
    comment_length: int = 0
    cd_start: int = -1
    cd_end: int = -1
    zip64_at: int = -1  # the zip64 end record, when there is one
    locator_at: int = -1
    shift: int = 0  # where the directory is, less where the end record says it is
    claimed: int = 0
    #: Every end record signature in the tail read (absolute offsets).
    end_signatures: list[int] = field(default_factory=list)

    def problem(self, code: str, message: str, offset: int | None = None) -> None:
        self.problems.append((code, message, offset))


def read_directory(read: Reader, size: int, *, max_entries: int, max_bytes: int) -> Directory:
    """The central directory of the zip of ``size`` bytes, within the given bounds.

    Like :func:`list_zip`, never raises for a malformed archive, and looks for
    the directory just before the end records, whatever offset they claim.
    Unlike it, keeps every field of every entry and records every
    inconsistency of the end records (zip64 included), so that a scanner can
    report them.
    """
    d = Directory()
    tail_start = max(0, size - TAIL)
    tail = read(tail_start, size - tail_start)
    pos = tail.find(_EOCD)
    while pos >= 0:
        d.end_signatures.append(tail_start + pos)
        pos = tail.find(_EOCD, pos + 1)
    at = _find_end(tail)
    if at < 0:
        d.problem("zip-no-end-record", "no end of central directory record in the last bytes")
        return d
    end = tail[at : at + _EOCD_SIZE]
    end_pos = tail_start + at
    d.end_at = end_pos
    if len(end) < _EOCD_SIZE:
        d.problem(
            "zip-end-record-malformed", "a truncated end of central directory record", end_pos
        )
        d.end_length = len(end)
        return d
    disk, cd_disk, on_disk, total, cd_size, cd_offset, n_comment = struct.unpack_from(
        "<HHHHIIH", end, 4
    )
    d.comment_length = n_comment
    d.end_length = min(_EOCD_SIZE + n_comment, size - end_pos)
    if _EOCD_SIZE + n_comment > size - end_pos:
        d.problem(
            "zip-end-record-malformed",
            f"the end record's {n_comment}-byte comment runs past the end of the file",
            end_pos,
        )
    if disk or cd_disk or on_disk != total:
        d.problem(
            "zip-multi-disk",
            f"the end record names disk {disk}, directory disk {cd_disk},"
            f" {on_disk} of {total} entries on this disk: a split archive",
            end_pos,
        )
    where = end_pos
    loc = tail[at - _LOCATOR_SIZE : at] if at >= _LOCATOR_SIZE else b""
    if loc[:4] == _LOCATOR:
        d.locator_at = end_pos - _LOCATOR_SIZE
        rec_at = at - _LOCATOR_SIZE - _EOCD64_SIZE
        rec = tail[rec_at : rec_at + _EOCD64_SIZE] if rec_at >= 0 else b""
        if rec[:4] != _EOCD64:
            d.problem(
                "zip-zip64-inconsistent",
                "a zip64 locator without its zip64 end record before it",
                d.locator_at,
            )
            return d
        d.zip64_at = tail_start + rec_at
        loc_disk, rec_offset, disks = struct.unpack_from("<IQI", loc, 4)
        rec_size, _, _, disk64, cd_disk64, on_disk64, total64, cd_size64, cd_offset64 = (
            struct.unpack_from("<QHHIIQQQQ", rec, 4)
        )
        if rec_size != _EOCD64_SIZE - 12:
            d.problem(
                "zip-zip64-inconsistent",
                f"a zip64 end record of {rec_size + 12} bytes; only the 56-byte form is read",
                d.zip64_at,
            )
        if loc_disk or disk64 or cd_disk64 or disks > 1 or on_disk64 != total64:
            d.problem(
                "zip-multi-disk",
                f"the zip64 records name {disks} disks, {on_disk64} of {total64} entries"
                " on this disk: a split archive",
                d.zip64_at,
            )
        for label, small, big, sentinel in (
            ("entry count", total, total64, 0xFFFF),
            ("directory size", cd_size, cd_size64, 0xFFFFFFFF),
            ("directory offset", cd_offset, cd_offset64, 0xFFFFFFFF),
        ):
            if small != sentinel and small != big:
                d.problem(
                    "zip-zip64-inconsistent",
                    f"the end record's {label} is {small}, the zip64 record's {big}",
                    end_pos,
                )
        total, cd_size, cd_offset = total64, cd_size64, cd_offset64
        where = d.zip64_at
        # checked once the shift is known
        zip64_claimed = rec_offset
    else:
        zip64_claimed = -1
    d.claimed = total
    start = where - cd_size
    if start < 0:
        d.problem(
            "zip-directory-out-of-bounds",
            f"a central directory of {cd_size} bytes, larger than the file before its end record",
            where,
        )
        return d
    d.cd_start, d.cd_end = start, where
    d.shift = start - cd_offset
    if d.shift:
        d.problem(
            "zip-offsets-shifted",
            f"the end record puts the central directory at byte {cd_offset}; it is at byte"
            f" {start} ({d.shift:+} bytes: content added without the offsets corrected)",
            where,
        )
    if zip64_claimed >= 0 and zip64_claimed + d.shift != d.zip64_at:
        d.problem(
            "zip-zip64-inconsistent",
            f"the zip64 locator puts the zip64 end record at byte {zip64_claimed};"
            f" it is at byte {d.zip64_at}",
            d.locator_at,
        )
    if cd_size > max_bytes:
        d.problem(
            "zip-directory-too-large",
            f"a central directory of {cd_size} bytes; only the first {max_bytes} are read",
            start,
        )
    data = read(start, min(cd_size, max_bytes))
    pos = 0
    while pos < len(data):
        if len(d.entries) >= max_entries:
            d.problem(
                "zip-too-many-entries",
                f"more than {max_entries} entries (the end record claims {total});"
                f" only the first {max_entries} are examined",
                start + pos,
            )
            return d
        if data[pos : pos + 4] != _CENTRAL or pos + 46 > len(data):
            if pos + 46 > len(data) and data[pos : pos + 4] == _CENTRAL and cd_size > max_bytes:
                return d  # cut by the bound, already reported
            d.problem(
                "zip-directory-malformed",
                f"a malformed central directory entry at byte {start + pos}",
                start + pos,
            )
            return d
        (flags, method, _, _, crc, compressed, uncompressed, n_name, n_extra, n_comment, disk0) = (
            struct.unpack_from("<HHHHIIIHHHH", data, pos + 8)
        )
        offset = int.from_bytes(data[pos + 42 : pos + 46], "little")
        stop = pos + 46 + n_name + n_extra + n_comment
        if stop > len(data):
            if cd_size > max_bytes and stop > min(cd_size, max_bytes):
                return d
            d.problem(
                "zip-directory-malformed",
                f"a central directory entry at byte {start + pos} runs past the directory",
                start + pos,
            )
            return d
        raw = data[pos + 46 : pos + 46 + n_name]
        extra = data[pos + 46 + n_name : pos + 46 + n_name + n_extra]
        values = _zip64_values(extra, [uncompressed, compressed, offset])
        if values is None:
            d.problem(
                "zip-zip64-inconsistent",
                f"entry {len(d.entries)} at byte {start + pos} has sizes or an offset of"
                " 0xFFFFFFFF without the zip64 field that holds them",
                start + pos,
            )
            return d
        decodes = True
        if flags & 0x800:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                name, decodes = raw.decode("utf-8", "replace"), False
        else:
            name = raw.decode("cp437")
        d.entries.append(
            CentralEntry(
                index=len(d.entries),
                at=start + pos,
                raw_name=raw,
                name=name,
                name_decodes=decodes,
                flags=flags,
                method=method,
                crc=crc,
                compressed=values[1],
                uncompressed=values[0],
                offset=values[2] + d.shift,
                disk=disk0,
                extra=extra,
            )
        )
        pos = stop
    if pos < cd_size and cd_size <= max_bytes:
        d.problem("zip-directory-malformed", "a truncated central directory", start + pos)
        return d
    if cd_size > max_bytes:
        return d
    d.complete = True
    if len(d.entries) != total:
        d.problem(
            "zip-entry-count-mismatch",
            f"the end record claims {total} entries; the central directory holds"
            f" {len(d.entries)} (readers that count and readers that parse disagree)",
            d.end_at,
        )
    return d
