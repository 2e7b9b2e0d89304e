"""Zip archives (torch zips, npz, .keras, any zip) and ``.npy`` files: structure and members.

:func:`check_zip` reads the central directory (bounded: :data:`MAX_ENTRIES`
entries, :data:`MAX_CD_BYTES` bytes) and every member's local header, and
reports what two zip readers could read differently, or what a loader should
not meet:

* the end records: none (``zip-no-end-record``), malformed
  (``zip-end-record-malformed``), a second one outside every member
  (``zip-multiple-end-records``), a split archive (``zip-multi-disk``), zip64
  records that disagree with the end record or with themselves
  (``zip-zip64-inconsistent``), offsets that are off by a prepended stub
  (``zip-offsets-shifted``), a claimed entry count the directory does not hold
  (``zip-entry-count-mismatch``), a directory out of bounds, malformed or over
  the bounds (``zip-directory-out-of-bounds``, ``zip-directory-malformed``,
  ``zip-directory-too-large``, ``zip-too-many-entries``);
* each name: ``..`` (``zip-name-traversal``), absolute (``zip-name-absolute``),
  backslashes (``zip-name-backslash``), control or invisible characters
  (``zip-name-control``), empty (``zip-name-empty``), flagged UTF-8 but not
  (``zip-name-encoding``), a Unicode path field naming another name
  (``zip-name-ambiguous``), twice in the directory (``zip-duplicate-name``);
* each entry: encrypted (``zip-encrypted``), general-purpose flag bits other
  than the deflate options, the data descriptor and UTF-8
  (``zip-flags-unusual``), compressed other than stored or deflate
  (``zip-compression-method``: not examined), a stored member whose two sizes
  differ (``zip-size-inconsistent``), a folder entry with content
  (``zip-directory-member-data``);
* each local header: missing (``zip-local-header-missing``), disagreeing with
  the directory on the name, method, flags, CRC or sizes
  (``zip-local-name-mismatch``, ``zip-local-method-mismatch``,
  ``zip-local-flags-mismatch``, ``zip-local-crc-mismatch``,
  ``zip-local-size-mismatch``); its data descriptor missing or disagreeing
  (``zip-descriptor-missing``, ``zip-descriptor-mismatch``), or one present
  that the flags do not announce (``zip-descriptor-unexpected``);
* the layout: data past the end of the file (``zip-member-out-of-bounds``),
  members that overlap each other or the directory
  (``zip-overlapping-members``, ``zip-member-overlaps-directory``), bytes no
  record accounts for before the first member, between members or after the
  end record (``zip-data-before-first-member``, ``zip-data-between-members``,
  ``zip-trailing-data``; their content is described: a local header the
  directory does not list, a second archive, a pickle);
* sizes: a member (or the archive) declaring more than :data:`BOMB_SIZE`
  inflated bytes at a ratio over :data:`BOMB_RATIO`, or a ratio deflate cannot
  produce (``zip-bomb``); a member inflating to another size than declared
  (``zip-size-mismatch``), corrupt (``zip-member-corrupt``), with a wrong CRC
  when read whole (``zip-crc-mismatch``), too large to examine
  (``zip-member-too-large``); members left unexamined when the budgets for
  member heads or for walking them as pickle opcodes ran out
  (``zip-members-not-examined``).

Every member is classified by its content (a bounded head, inflated within
budgets; nothing is inflated past :data:`MAX_MEMBER` bytes, nor past
:data:`INFLATE_BUDGET` bytes per file):

* a torch zip's ``data.pkl`` and ``constants.pkl`` (at the root or one folder
  down) are scanned with the pickle scanner as ``pytorch-zip`` (torch's
  persistent ids allowed); its ``<folder>/data/<key>`` storages are not read
  beyond a :data:`STORAGE_PROBE`-byte head, must be stored (``zip-storage-compressed``),
  named by a decimal key (``zip-storage-name``), and hold neither a pickle nor
  an archive (``zip-storage-pickle``, ``zip-storage-archive``); data.pkl in
  several folders is ``zip-torch-ambiguous``;
* any other member whose content is a pickle, in any zip, is scanned as
  ``pickle`` (a legacy torch file as ``pytorch-legacy``);
* a member that is a ``.npy`` array gets :func:`check_npy`'s header checks;
  an object dtype's pickle is scanned;
* a ``.keras`` archive's ``config.json`` goes to the Keras checks, its
  ``model.weights.h5`` is noted (``zip-keras-weights``, info);
* a member that is itself an archive (zip, tar, gzip or another compressed
  stream) is ``zip-nested-archive``; a nested zip is examined one level down
  (its members named ``outer!/inner``);
* a member named ``*.py`` is ``zip-code-member`` (a warning: TorchScript and
  remote code run such files).

:func:`check_npy` reads a ``.npy`` header (at most :data:`_npy.MAX_HEADER`
bytes, parsed without ``eval``): the version (1.0, 2.0, 3.0: ``npy-version``),
the header's size and form (``npy-header-too-large``, ``npy-header-truncated``,
``npy-header-malformed``: exactly ``descr``, ``fortran_order``, ``shape``), a
dtype NumPy writes (``npy-dtype-unrecognised``); an object dtype
(``npy-object-dtype``, info) makes the rest of the file a pickle, scanned with
trailing data an error; a plain dtype's shape times item size must equal the bytes
after the header (``npy-size-mismatch``), which are never read.

Known limits: a pickle's persistent ids are not matched against the storages
present; a storage probe whose head walks as pickle opcodes for all of its
4 KiB (a tensor of repeated ``N`` bytes) is reported as a pickle; bzip2, lzma
and other methods are not inflated; only one level of nesting is examined;
gaps are described from their first :data:`GAP_PROBE` bytes.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from provenance.formats import _detect, _npy, _pickle, _zip
from provenance.formats._detect import Detected, _File, _show
from provenance.formats._keras import check_keras_config
from provenance.formats._pickle_scan import scan_pickle
from provenance.formats._scan import FormatFinding, ScanOptions, Severity, Source

__all__ = ["Examined", "check_npy", "check_zip", "examine_npy", "examine_zip"]

Reader = Callable[[int, int], bytes]

MAX_ENTRIES = 65536
MAX_CD_BYTES = 16 << 20
#: Bytes of a member's head read (or inflated) to classify it.
PROBE = 4096
#: Bytes of a torch storage's head read, to see that it is no pickle or archive.
STORAGE_PROBE = 512
#: Member heads, all members together (read or inflated).
HEAD_BUDGET = 64 << 20
#: Bytes walked as pickle opcodes past the first :data:`_QUICK` of each member,
#: all members together (a walk costs about a microsecond an opcode).
WALK_BUDGET = 4 << 20
_QUICK = 64
#: Bytes of pickle streams handed to the pickle scanner per file, all members together.
SCAN_BUDGET = 256 << 20
#: Storages found to hold a pickle that are also scanned (the rest are reported only).
MAX_STORAGE_SCANS = 16
#: The most one member is inflated (or read, for its CRC) to scan it.
MAX_MEMBER = 128 << 20
#: Inflated bytes per file, all members together (heads aside).
INFLATE_BUDGET = 512 << 20
GAP_PROBE = 64 << 10
GAP_BUDGET = 4 << 20
BOMB_SIZE = 1 << 30
BOMB_RATIO = 100
#: Deflate's largest possible ratio (258-byte matches in 1-bit codes), with room.
DEFLATE_MAX_RATIO = 1032
#: Findings of one code listed per file; the rest are counted.
MAX_PER_CODE = 20
_CHUNK = 1 << 20

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_EOCD = b"PK\x05\x06"
_DESCRIPTOR = b"PK\x07\x08"
_ZIP_MAGICS = (_LOCAL, _EOCD, b"PK\x07\x08", b"PK00")
_KNOWN_FLAGS = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0800
_FLAG_NAMES = {
    4: "enhanced deflation",
    5: "patched data",
    6: "strong encryption",
    13: "masked local headers",
}
_METHODS = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstandard",
    95: "xz",
    98: "ppmd",
}
_DRIVE = re.compile(r"[A-Za-z]:")
_STORAGE_KEY = re.compile(r"[0-9]+")
_COMPRESSED_KINDS = ("gzip-", "zlib-", "xz-", "bzip2-", "lzma-")


@dataclass
class Examined:
    """What :func:`examine_zip` or :func:`examine_npy` found, and the scans it ran (or planned).

    ``scans``: (kind, member, fmt) for every pickle stream (``"pickle"``) and
    Keras config (``"keras"``) handed to its scanner, in order.
    """

    findings: list[FormatFinding]
    scans: list[tuple[str, str | None, str]] = field(default_factory=list)


class _Out:
    """Findings of one file, at most :data:`MAX_PER_CODE` of each code listed."""

    def __init__(self, file: str, fmt: str) -> None:
        self.file = file
        self.fmt = fmt
        self.items: list[FormatFinding] = []
        self.counts: Counter[str] = Counter()
        self.severity: dict[str, Severity] = {}

    def add(
        self,
        code: str,
        message: str,
        *,
        offset: int | None = None,
        member: str | None = None,
        severity: Severity = "error",
    ) -> None:
        self.counts[code] += 1
        self.severity.setdefault(code, severity)
        if self.counts[code] <= MAX_PER_CODE:
            self.items.append(
                FormatFinding(self.file, self.fmt, code, message, offset, member, severity)
            )

    def done(self) -> list[FormatFinding]:
        for code, n in self.counts.items():
            if n > MAX_PER_CODE:
                self.items.append(
                    FormatFinding(
                        self.file,
                        self.fmt,
                        code,
                        f"{n - MAX_PER_CODE} more '{code}' findings not listed",
                        severity=self.severity[code],
                    )
                )
        return self.items


@dataclass
class _Budget:
    heads: int = HEAD_BUDGET
    walk: int = WALK_BUDGET
    scan: int = SCAN_BUDGET
    storage_scans: int = MAX_STORAGE_SCANS
    inflate: int = INFLATE_BUDGET
    gaps: int = GAP_BUDGET
    unexamined: int = 0


class _Reads(_File):
    """A reader function (or bytes in memory, sliced), read like a file."""

    def __init__(self, read: Reader, name: str) -> None:
        super().__init__(-1, name)
        self._read = read

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        return self._read(offset, n)


def _window(read: Reader, start: int, end: int) -> Reader:
    """``read`` limited to ``[start, end)`` and rebased to 0."""

    def sub(offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or start + offset >= end:
            return b""
        return read(start + offset, min(n, end - start - offset))

    return sub


@dataclass
class _Member:
    entry: _zip.CentralEntry
    shown: str
    data_start: int = -1
    data_end: int = -1
    end: int = -1  # the data and its descriptor


@dataclass
class _Job:
    kind: str  # "pickle" or "keras"
    member: _Member
    fmt: str
    skip: int = 0  # where the pickle starts in the member (after a .npy header)
    count: int = 1  # pickles in a row (a legacy torch file holds five)


def _zip64_sizes(extra: bytes, fields: list[int]) -> list[int] | None:
    return _zip._zip64_values(extra, fields)


def _extra_field(extra: bytes, tag: int) -> bytes | None:
    pos = 0
    while pos + 4 <= len(extra):
        t, size = struct.unpack_from("<HH", extra, pos)
        if t == tag:
            return extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return None


def _descriptor_length(data: bytes, e: _zip.CentralEntry) -> int | None:
    """The length of the data descriptor ``data`` starts, if it agrees with the directory."""
    for signed in (True, False):
        base = 4 if signed else 0
        if signed and data[:4] != _DESCRIPTOR:
            continue
        for width in (4, 8):
            n = base + 4 + 2 * width
            if len(data) < n:
                continue
            crc = int.from_bytes(data[base : base + 4], "little")
            csize = int.from_bytes(data[base + 4 : base + 4 + width], "little")
            usize = int.from_bytes(data[base + 4 + width : n], "little")
            if (crc, csize, usize) == (e.crc, e.compressed, e.uncompressed):
                return n
    return None


def _inflate_head(read: Reader, start: int, csize: int, want: int) -> tuple[bytes, bool] | None:
    """The first ``want`` inflated bytes of the deflate data at ``start`` and whether it ended.

    Reads at most a few times ``want`` compressed bytes; None when corrupt.
    """
    d = zlib.decompressobj(-15)
    out = bytearray()
    pos = 0
    cap = min(csize, max(4 * want, 64 << 10))
    try:
        while len(out) < want and pos < cap and not d.eof:
            chunk = read(start + pos, min(64 << 10, cap - pos))
            if not chunk:
                break
            pos += len(chunk)
            out += d.decompress(chunk, want - len(out))
    except zlib.error:
        return None
    return bytes(out[:want]), d.eof


def _pickle_start(head: bytes) -> tuple[bytes, int]:
    """``head`` past a leading PROTO (and a protocol 4 frame header), and how much was skipped."""
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= _pickle.HIGHEST_PROTOCOL:
        skip = 11 if head[2:3] == b"\x95" else 2
        return head[skip:], skip
    return head, 0


class _Zip:
    """One zip archive (or one nested in a member), examined into a shared set of findings."""

    def __init__(
        self,
        read: Reader,
        size: int,
        kind: str,
        *,
        out: _Out,
        options: ScanOptions,
        budget: _Budget,
        scans: list[tuple[str, str | None, str]],
        scan: bool,
        outer: str | None = None,
        depth: int = 0,
    ) -> None:
        self.read = read
        self.size = size
        self.kind = kind
        self.out = out
        self.options = options
        self.budget = budget
        self.scans = scans
        self.scan = scan
        self.outer = outer
        self.depth = depth
        self.jobs: list[_Job] = []
        self.ends_reported: set[int] = set()

    def add(
        self,
        code: str,
        message: str,
        *,
        offset: int | None = None,
        member: str | None = None,
        severity: Severity = "error",
    ) -> None:
        self.out.add(code, message, offset=offset, member=member or self.outer, severity=severity)

    def shown(self, name: str) -> str:
        text = name if len(name) <= 160 and name.isprintable() else _show(name, 160)
        return f"{self.outer}!/{text}" if self.outer else text

    # ------------------------------------------------------------ the whole

    def examine(self) -> None:
        d = _zip.read_directory(
            self.read, self.size, max_entries=MAX_ENTRIES, max_bytes=MAX_CD_BYTES
        )
        for code, message, offset in d.problems:
            self.add(code, message, offset=offset)
        if d.end_at < 0:
            return
        members: list[_Member] = []
        seen: dict[str, int] = {}
        for e in d.entries:
            m = _Member(e, self.shown(e.name))
            self._entry(m, seen)
            self._local(m)
            members.append(m)
        self._end_records(d, members)
        self._layout(d, members)
        self._bomb(members)
        self._members(members)
        if self.budget.unexamined and self.depth == 0:
            self.add(
                "zip-members-not-examined",
                f"{self.budget.unexamined} members not classified: the budget for"
                f" reading member heads ({HEAD_BUDGET} bytes) or walking them as pickle"
                f" opcodes ({WALK_BUDGET} bytes) ran out",
            )
        if self.scan:
            self._run()

    # ------------------------------------------------------------ the directory entry

    def _entry(self, m: _Member, seen: dict[str, int]) -> None:
        e, who = m.entry, m.shown
        raw, name = e.raw_name, e.name
        if not raw:
            self.add("zip-name-empty", f"entry {e.index} has an empty name", offset=e.at)
        if not e.name_decodes:
            self.add(
                "zip-name-encoding",
                f"member name {who} is flagged UTF-8 but is not valid UTF-8",
                offset=e.at,
                member=who,
            )
        if b"\\" in raw:
            self.add(
                "zip-name-backslash",
                f"member name {who} holds a backslash (a folder separator on Windows)",
                offset=e.at,
                member=who,
            )
        norm = name.replace("\\", "/")
        if norm.startswith("/") or _DRIVE.match(norm):
            self.add(
                "zip-name-absolute",
                f"member name {who} is an absolute path",
                offset=e.at,
                member=who,
            )
        if ".." in norm.split("/"):
            self.add(
                "zip-name-traversal",
                f"member name {who} climbs out of its folder with '..'",
                offset=e.at,
                member=who,
            )
        if any(b < 0x20 or b == 0x7F for b in raw) or not all(c.isprintable() for c in name):
            self.add(
                "zip-name-control",
                f"member name {who} holds control or invisible characters",
                offset=e.at,
                member=who,
            )
        upath = _extra_field(e.extra, 0x7075)
        if upath is not None and len(upath) >= 5:
            alt = upath[5:].decode("utf-8", "replace")
            if alt != name:
                self.add(
                    "zip-name-ambiguous",
                    f"member {who} has a Unicode path field naming it {_show(alt, 160)}:"
                    " readers that honour the field extract another name",
                    offset=e.at,
                    member=who,
                )
        if norm in seen:
            self.add(
                "zip-duplicate-name",
                f"member name {who} appears more than once (entries {seen[norm]} and"
                f" {e.index}): readers disagree on which one they load",
                offset=e.at,
                member=who,
            )
        else:
            seen[norm] = e.index
        if e.flags & 1 or e.method == 99:
            self.add(
                "zip-encrypted",
                f"member {who} is encrypted: its content cannot be examined",
                offset=e.at,
                member=who,
            )
        odd = e.flags & ~_KNOWN_FLAGS
        if odd:
            bits = [b for b in range(16) if odd >> b & 1]
            named = ", ".join(
                f"bit {b}" + (f" ({_FLAG_NAMES[b]})" if b in _FLAG_NAMES else "") for b in bits
            )
            self.add(
                "zip-flags-unusual",
                f"member {who} sets general-purpose flags 0x{e.flags:04x}: {named};"
                " readers treat them differently",
                offset=e.at,
                member=who,
            )
        if e.method not in (0, 8, 99):
            label = _METHODS.get(e.method, "unknown")
            self.add(
                "zip-compression-method",
                f"member {who} is compressed with method {e.method} ({label}): only stored"
                " and deflate members are examined; its content is not",
                offset=e.at,
                member=who,
            )
        if e.disk:
            self.add(
                "zip-multi-disk",
                f"member {who} starts on disk {e.disk}: a split archive",
                offset=e.at,
                member=who,
            )
        if name.endswith("/") and (e.compressed or e.uncompressed):
            self.add(
                "zip-directory-member-data",
                f"folder entry {who} holds {e.compressed} bytes of content that extraction skips",
                offset=e.at,
                member=who,
            )
        if e.method == 0 and e.compressed != e.uncompressed:
            self.add(
                "zip-size-inconsistent",
                f"stored member {who} declares {e.compressed} bytes stored and"
                f" {e.uncompressed} bytes of content",
                offset=e.at,
                member=who,
            )

    # ------------------------------------------------------------ the local header

    def _local(self, m: _Member) -> None:
        e, who = m.entry, m.shown
        if e.offset < 0 or e.offset + 30 > self.size:
            self.add(
                "zip-local-header-missing",
                f"member {who}'s local header offset {e.offset} is outside the file",
                offset=e.at,
                member=who,
            )
            return
        head = self.read(e.offset, 30 + len(e.raw_name) + 128)
        if len(head) < 30 or head[:4] != _LOCAL:
            self.add(
                "zip-local-header-missing",
                f"no local header for member {who} at byte {e.offset}",
                offset=e.offset,
                member=who,
            )
            return
        flags, method, _, _, crc, csize, usize, n_name, n_extra = struct.unpack_from(
            "<HHHHIIIHH", head, 6
        )
        need = 30 + n_name + n_extra
        if len(head) < need:
            head += self.read(e.offset + len(head), need - len(head))
        if len(head) < need:
            self.add(
                "zip-member-out-of-bounds",
                f"member {who}'s local header runs past the end of the file",
                offset=e.offset,
                member=who,
            )
            return
        local_name = head[30 : 30 + n_name]
        extra = head[30 + n_name : need]
        if local_name != e.raw_name:
            other = local_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            self.add(
                "zip-local-name-mismatch",
                f"member {who}: its local header at byte {e.offset} names it {_show(other, 160)}",
                offset=e.offset,
                member=who,
            )
        if method != e.method:
            self.add(
                "zip-local-method-mismatch",
                f"member {who}: compression method {e.method} in the central directory,"
                f" {method} in its local header",
                offset=e.offset,
                member=who,
            )
        if flags != e.flags:
            self.add(
                "zip-local-flags-mismatch",
                f"member {who}: flags 0x{e.flags:04x} in the central directory,"
                f" 0x{flags:04x} in its local header",
                offset=e.offset,
                member=who,
            )
        sizes = _zip64_sizes(extra, [usize, csize])
        if sizes is None:
            self.add(
                "zip-zip64-inconsistent",
                f"member {who}'s local header has sizes of 0xFFFFFFFF without the zip64"
                " field that holds them",
                offset=e.offset,
                member=who,
            )
            sizes = [usize, csize]
        described = bool((e.flags | flags) & 8)
        for label, local, central in (
            ("CRC-32", crc, e.crc),
            ("compressed size", sizes[1], e.compressed),
            ("size", sizes[0], e.uncompressed),
        ):
            if local != central and not (described and local == 0):
                self.add(
                    "zip-local-crc-mismatch" if label == "CRC-32" else "zip-local-size-mismatch",
                    f"member {who}: {label} {central} in the central directory,"
                    f" {local} in its local header",
                    offset=e.offset,
                    member=who,
                )
        m.data_start = e.offset + need
        m.data_end = m.end = m.data_start + e.compressed
        if m.data_end > self.size:
            self.add(
                "zip-member-out-of-bounds",
                f"member {who}'s {e.compressed} bytes from byte {m.data_start} run past"
                f" the end of the file ({self.size} bytes)",
                offset=m.data_start,
                member=who,
            )
            return
        after = self.read(m.data_end, 24)
        length = _descriptor_length(after, e) if described or after[:4] == _DESCRIPTOR else None
        if described:
            if length is not None:
                m.end += length
            elif after[:4] == _DESCRIPTOR:
                self.add(
                    "zip-descriptor-mismatch",
                    f"member {who}'s data descriptor at byte {m.data_end} disagrees with"
                    " the central directory",
                    offset=m.data_end,
                    member=who,
                )
            else:
                self.add(
                    "zip-descriptor-missing",
                    f"member {who}'s flags announce a data descriptor; none follows its"
                    f" data at byte {m.data_end}",
                    offset=m.data_end,
                    member=who,
                )
        elif length is not None and after[:4] == _DESCRIPTOR:
            m.end += length
            self.add(
                "zip-descriptor-unexpected",
                f"member {who} is followed by a data descriptor its flags do not announce",
                offset=m.data_end,
                member=who,
            )

    # ------------------------------------------------------------ the layout

    def _in_member(self, pos: int, members: list[_Member]) -> bool:
        return any(m.data_start <= pos < m.data_end for m in members if m.data_start >= 0)

    def _end_records(self, d: _zip.Directory, members: list[_Member]) -> None:
        """End record signatures in the tail, outside every member: a second end record."""
        others = [p for p in d.end_signatures if p != d.end_at][:64]
        if not others:
            return
        spans = sorted((m.data_start, m.data_end) for m in members if m.data_start >= 0)
        for pos in others:
            if any(a <= pos < b for a, b in spans):
                continue
            if d.complete and d.cd_start <= pos < d.cd_end:
                continue
            self._second_end(pos)

    def _second_end(self, pos: int) -> None:
        if pos in self.ends_reported:
            return
        self.ends_reported.add(pos)
        self.add(
            "zip-multiple-end-records",
            f"a second end of central directory record at byte {pos}: readers that find"
            " another one see another archive",
            offset=pos,
        )

    def _layout(self, d: _zip.Directory, members: list[_Member]) -> None:
        regions: list[tuple[int, int, bool, str]] = []  # start, end, is a member, what
        for m in members:
            if m.data_start >= 0:
                regions.append((m.entry.offset, min(m.end, self.size), True, f"member {m.shown}"))
        if d.cd_start >= 0:
            regions.append((d.cd_start, d.cd_end, False, "the central directory"))
        if d.zip64_at >= 0:
            regions.append((d.zip64_at, d.zip64_at + 56, False, "the zip64 end record"))
        if d.locator_at >= 0:
            regions.append((d.locator_at, d.locator_at + 20, False, "the zip64 locator"))
        regions.append((d.end_at, d.end_at + d.end_length, False, "the end record"))
        regions.sort()
        cursor = 0
        last: tuple[int, int, bool, str] | None = None
        for region in regions:
            start, end, is_member, what = region
            if start > cursor and d.complete:
                self._gap(cursor, start, last, what)
            elif start < cursor and last is not None and (is_member or last[2]):
                both = is_member and last[2]
                self.add(
                    "zip-overlapping-members" if both else "zip-member-overlaps-directory",
                    f"{what} (bytes {start}..{end}) overlaps {last[3]}"
                    f" (bytes {last[0]}..{last[1]})",
                    offset=start,
                )
            if end > cursor:
                cursor, last = end, region
        if cursor < self.size:
            self._gap(cursor, self.size, last, None)

    def _gap(
        self, start: int, end: int, before: tuple[int, int, bool, str] | None, after: str | None
    ) -> None:
        if before is None:
            code, where = "zip-data-before-first-member", "before the first member"
        elif after is None:
            code, where = "zip-trailing-data", "after the end record"
        else:
            code, where = "zip-data-between-members", f"between {before[3]} and {after}"
        what = self._describe(start, end)
        self.add(
            code,
            f"{end - start} bytes at {start}..{end} {where} that no record accounts for"
            + (f": {what}" if what else ""),
            offset=start,
        )

    def _describe(self, start: int, end: int) -> str:
        n = min(end - start, GAP_PROBE, self.budget.gaps)
        if n <= 0:
            return ""
        self.budget.gaps -= n
        data = self.read(start, n)
        seen: list[str] = []
        if _LOCAL in data:
            seen.append("a local file header (a member the central directory does not list)")
        if _CENTRAL in data:
            seen.append("central directory records")
        at = data.find(_EOCD)
        if at >= 0:
            seen.append("an end of central directory record (another archive)")
            while at >= 0:
                self._second_end(start + at)
                at = data.find(_EOCD, at + 1)
        if not seen:
            found = _detect._detect(_Reads(lambda o, n: data[o : o + n], "gap"), end - start, "gap")
            if found.format not in ("unknown", "text"):
                seen.append(
                    f"content like {found.format}" + (f" ({found.detail})" if found.detail else "")
                )
        return "; ".join(seen)

    def _bomb(self, members: list[_Member]) -> None:
        total_in = total_out = 0
        flagged = False
        for m in members:
            e = m.entry
            if e.method == 0:
                continue
            total_in += e.compressed
            total_out += e.uncompressed
            ratio = e.uncompressed / max(e.compressed, 1)
            impossible = e.method == 8 and e.uncompressed > (1 << 20) and ratio > DEFLATE_MAX_RATIO
            if (e.uncompressed > BOMB_SIZE and ratio > BOMB_RATIO) or impossible:
                flagged = True
                self.add(
                    "zip-bomb",
                    f"member {m.shown} declares {e.uncompressed} bytes from {e.compressed}"
                    f" (ratio {ratio:.0f}:1"
                    + (", more than deflate can produce" if impossible else "")
                    + f"); never inflated past {MAX_MEMBER} bytes",
                    offset=e.at,
                    member=m.shown,
                )
        ratio = total_out / max(total_in, 1)
        if not flagged and total_out > BOMB_SIZE and ratio > BOMB_RATIO:
            self.add(
                "zip-bomb",
                f"the members declare {total_out} bytes from {total_in} (ratio {ratio:.0f}:1)",
            )

    # ------------------------------------------------------------ the members

    def _readable(self, m: _Member) -> bool:
        e = m.entry
        return (
            m.data_start >= 0
            and m.data_end <= self.size
            and not e.flags & 1
            and e.method in (0, 8)
            and not e.name.endswith("/")
        )

    def _members(self, members: list[_Member]) -> None:
        torch: set[str] = set()
        if self.kind == "pytorch-zip":
            torch = {
                m.entry.name.rpartition("/")[0]
                for m in members
                if _detect._is_torch_pickle(m.entry.name)
            }
            if len(torch) > 1:
                self.add(
                    "zip-torch-ambiguous",
                    "torch pickles in several folders ("
                    + ", ".join(_show(f or "the root", 40) for f in sorted(torch))
                    + "): which one loads depends on the reader",
                )
        for m in members:
            if not self._readable(m):
                continue
            name = m.entry.name
            if self.kind == "pytorch-zip" and _detect._is_torch_pickle(name):
                self._job(_Job("pickle", m, "pytorch-zip"))
                continue
            if self.kind == "pytorch-zip" and self._storage(m, torch):
                continue
            if self.kind == "keras" and name == "config.json":
                self._job(_Job("keras", m, "keras"))
                continue
            self._classify(m)

    def _job(self, job: _Job) -> None:
        self.jobs.append(job)
        self.scans.append((job.kind, job.member.shown, job.fmt))

    def _head(self, m: _Member, want: int) -> bytes | None:
        """The first ``want`` bytes of a member's content; None when they cannot be had."""
        e = m.entry
        if e.method == 0:
            want = min(want, e.compressed)
        if want > self.budget.heads:
            self.budget.unexamined += 1
            return None
        self.budget.heads -= want
        if e.method == 0:
            return self.read(m.data_start, want)
        got = _inflate_head(self.read, m.data_start, e.compressed, want)
        if got is None:
            self.add(
                "zip-member-corrupt",
                f"member {m.shown} does not inflate: corrupt deflate data",
                offset=m.data_start,
                member=m.shown,
            )
            return None
        data, ended = got
        if len(data) > e.uncompressed or (ended and len(data) != e.uncompressed):
            self.add(
                "zip-size-mismatch",
                f"member {m.shown} declares {e.uncompressed} bytes; it inflates to"
                + (f" {len(data)}" if ended else f" more than {e.uncompressed}"),
                offset=m.data_start,
                member=m.shown,
            )
        return data

    def _storage(self, m: _Member, folders: set[str]) -> bool:
        """A torch storage (``<folder>/data/<key>``): checked without reading its data."""
        name = m.entry.name
        key = None
        for folder in folders:
            prefix = f"{folder}/data/" if folder else "data/"
            if name.startswith(prefix):
                key = name[len(prefix) :]
                break
        if key is None:
            return False
        e, who = m.entry, m.shown
        if not _STORAGE_KEY.fullmatch(key):
            self.add(
                "zip-storage-name",
                f"storage {who}: {_show(key, 60)} is not a storage key torch writes",
                offset=e.at,
                member=who,
            )
        if e.method != 0:
            self.add(
                "zip-storage-compressed",
                f"storage {who} is compressed (method {e.method}); torch writes storages"
                " stored, to map them",
                offset=e.at,
                member=who,
            )
        if e.uncompressed == 0:
            return True
        probe = self._head(m, STORAGE_PROBE)
        if probe is None:
            return True
        if probe[:4] in _ZIP_MAGICS or probe[:2] == b"\x1f\x8b" or _detect._tar_header(probe):
            self.add(
                "zip-storage-archive",
                f"storage {who} holds an archive where tensor bytes are expected",
                offset=m.data_start,
                member=who,
            )
            return True
        kind = self._pickle_kind(m, probe, storage=True)
        if kind is not None:
            self.add(
                "zip-storage-pickle",
                f"storage {who} holds a pickle ({kind}) where tensor bytes are expected:"
                " a loader that unpickles it runs it",
                offset=m.data_start,
                member=who,
            )
            if self.budget.storage_scans > 0:
                self.budget.storage_scans -= 1
                self._job(_Job("pickle", m, "pickle"))
        return True

    def _pickle_kind(self, m: _Member, head: bytes, *, storage: bool = False) -> str | None:
        """What pickle ``head`` (a member's first bytes) starts, if any, within the walk budget.

        A walk of the first :data:`_QUICK` bytes comes first, uncharged: a walk
        that turns invalid inside a prefix turns invalid the same way in the
        whole stream, so most content is ruled out there. Only what walks
        further is walked whole, charged to the walk budget. A storage (or a
        deflated member) is walked over its head alone; a stored member's walk
        reads on past large arguments, charged too.
        """
        e = m.entry
        body, skip = _pickle_start(head)
        if skip and not storage:
            return f"pickle protocol {head[1]}"
        if _pickle.pickle_kind(body[:_QUICK], None) is None:
            return None
        if len(body) > self.budget.walk:
            self.budget.unexamined += 1
            return None
        self.budget.walk -= len(body)
        whole = len(head) >= e.uncompressed
        if storage or skip or e.method != 0:
            size = (len(head) if whole else e.uncompressed) - skip
            return _pickle.pickle_kind(body, size if whole or e.method == 0 else None)
        starved = False

        def more(offset: int, n: int) -> bytes:
            # the walker's windows past large arguments, charged to the budget
            nonlocal starved
            if n > self.budget.walk:
                starved = True
                return b""
            self.budget.walk -= n
            return self.read(m.data_start + offset, max(0, min(n, e.compressed - offset)))

        kind = _pickle.pickle_kind(head, e.compressed, more)
        if starved and kind is None:
            self.budget.unexamined += 1
        return kind

    def _classify(self, m: _Member) -> None:
        e, who, name = m.entry, m.shown, m.entry.name
        if name.endswith(".py"):
            self.add(
                "zip-code-member",
                f"member {who} is Python source: code that runs if a loader executes it"
                " (TorchScript, remote code)",
                member=who,
                severity="warning",
            )
        if e.uncompressed == 0 and e.compressed <= 2:
            return
        head = self._head(m, PROBE)
        if head is None:
            return
        if head.startswith(_npy.MAGIC):
            self._npy(m, head)
            return
        if head[:4] in _ZIP_MAGICS:
            self._nested(m)
            return
        kind = self._pickle_kind(m, head)
        if kind is not None:
            body, _ = _pickle_start(head)
            legacy = body.startswith(_detect._TORCH_MAGIC)
            self._job(
                _Job(
                    "pickle", m, "pytorch-legacy" if legacy else "pickle", count=5 if legacy else 1
                )
            )
            return
        # Only the signatures that matter inside an archive (the pickle walk is done).
        found = _detect._compressed(head) or _detect._tar(head) or _detect._hdf5(head)
        if found is None:
            return
        if found.format == "pickle" and (found.detail or "").startswith(_COMPRESSED_KINDS):
            self.add(
                "zip-nested-archive",
                f"member {who} is a {found.detail}: a compressed stream inside the archive,"
                " not examined",
                offset=m.data_start,
                member=who,
            )
            return
        compressed = found.format == "unknown" and (found.detail or "").startswith(
            ("xz", "bzip2", "lzma", "zlib")
        )
        if found.format in ("tar", "gzip", "pytorch-legacy") or compressed:
            self.add(
                "zip-nested-archive",
                f"member {who} is itself an archive ({found.format}"
                + (f": {found.detail}" if found.detail else "")
                + "): nested archives other than zips are not examined",
                offset=m.data_start,
                member=who,
            )
            return
        if self.kind == "keras" and name == "model.weights.h5":
            self.add(
                "zip-keras-weights",
                f"member {who}: Keras weights ({found.format}); tensors only, not examined",
                member=who,
                severity="info",
            )

    def _npy(self, m: _Member, head: bytes) -> None:
        e = m.entry
        need = _npy_length(head)
        if need is not None and len(head) < need and e.uncompressed > len(head):
            more = self._head(m, need)
            if more is None:
                return
            head = more
        at = _npy_checks(head, e.uncompressed, self.out, m.shown, m.data_start)
        if at is not None:
            self._job(_Job("pickle", m, self.out.fmt, skip=at))

    def _nested(self, m: _Member) -> None:
        who = m.shown
        deeper = self.depth == 0
        self.add(
            "zip-nested-archive",
            f"member {who} is itself a zip archive"
            + ("; examined one level down" if deeper else "; not examined (nested twice)"),
            offset=m.data_start,
            member=who,
        )
        if not deeper:
            return
        got = self._materialize(m)
        if got is None:
            return
        read, start, end = got
        sub = _window(read, start, end)
        kind = _detect._zip_format(_Reads(sub, who), end - start).format
        child = _Zip(
            sub,
            end - start,
            kind,
            out=self.out,
            options=self.options,
            budget=self.budget,
            scans=self.scans,
            scan=self.scan,
            outer=who,
            depth=self.depth + 1,
        )
        child.examine()

    # ------------------------------------------------------------ reading members whole

    def _materialize(self, m: _Member) -> tuple[Reader, int, int] | None:
        """A reader of a member's whole content: in place when stored, inflated when not."""
        e, who = m.entry, m.shown
        if e.method == 0:
            if e.compressed <= MAX_MEMBER:
                crc, pos = 0, m.data_start
                while pos < m.data_end:
                    chunk = self.read(pos, min(_CHUNK, m.data_end - pos))
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    pos += len(chunk)
                self._crc(m, crc)
            return self.read, m.data_start, m.data_end
        limit = min(MAX_MEMBER, self.budget.inflate)
        if e.uncompressed > limit:
            self.add(
                "zip-member-too-large",
                f"member {who} inflates to {e.uncompressed} bytes, more than the {limit}"
                " this scan inflates: not examined",
                offset=m.data_start,
                member=who,
            )
            return None
        limit = e.uncompressed
        d = zlib.decompressobj(-15)
        out = bytearray()
        pos, pending = m.data_start, b""
        try:
            while not d.eof and len(out) <= limit:
                if not pending:
                    if pos >= m.data_end or pos - m.data_start > 4 * limit + _CHUNK:
                        break
                    pending = self.read(pos, min(_CHUNK, m.data_end - pos))
                    if not pending:
                        break
                    pos += len(pending)
                out += d.decompress(pending, limit + 1 - len(out))
                pending = d.unconsumed_tail
        except zlib.error:
            self.add(
                "zip-member-corrupt",
                f"member {who} does not inflate: corrupt deflate data",
                offset=m.data_start,
                member=who,
            )
            return None
        self.budget.inflate -= len(out)
        if len(out) != e.uncompressed or not d.eof:
            self.add(
                "zip-size-mismatch",
                f"member {who} declares {e.uncompressed} bytes; it inflates to"
                + (
                    f" {len(out)}"
                    if d.eof
                    else f" more than {len(out) - 1}"
                    if len(out) > limit
                    else f" {len(out)} before its data ends"
                ),
                offset=m.data_start,
                member=who,
            )
            if len(out) > limit:
                return None
        self._crc(m, zlib.crc32(out))
        data = bytes(out)
        del out
        return (
            (lambda offset, n: data[offset : offset + n] if offset >= 0 and n > 0 else b""),
            0,
            len(data),
        )

    def _crc(self, m: _Member, crc: int) -> None:
        if crc != m.entry.crc:
            self.add(
                "zip-crc-mismatch",
                f"member {m.shown}'s content has CRC-32 {crc:08x}; the directory says"
                f" {m.entry.crc:08x}",
                offset=m.data_start,
                member=m.shown,
            )

    def _run(self) -> None:
        for job in self.jobs:
            size = job.member.entry.uncompressed
            if size > self.budget.scan:
                self.add(
                    "zip-members-not-examined",
                    f"member {job.member.shown} ({size} bytes) not scanned: the"
                    f" {SCAN_BUDGET}-byte budget for scanning pickles ran out",
                    member=job.member.shown,
                )
                continue
            self.budget.scan -= size
            got = self._materialize(job.member)
            if got is None:
                continue
            read, start, end = got
            who = job.member.shown
            if job.kind == "keras":
                self.out.items.extend(
                    check_keras_config(
                        read(start, end - start),
                        file=self.out.file,
                        member=who,
                        options=self.options,
                    )
                )
                continue
            pos = start + job.skip
            for _ in range(job.count):
                found, stop = scan_pickle(
                    read,
                    pos,
                    end,
                    file=self.out.file,
                    fmt=job.fmt,
                    options=self.options,
                    member=who,
                    single=job.count == 1,
                )
                self.out.items.extend(found)
                if stop <= pos or stop >= end:
                    break
                pos = stop


# ---------------------------------------------------------------- .npy

_TYPESTR = re.compile(r"[<>|=]?([biufcSaUVMm])(\d+)(?:\[(\w+)\])?")
_SIZES = {
    "b": {1},
    "i": {1, 2, 4, 8},
    "u": {1, 2, 4, 8},
    "f": {2, 4, 8, 10, 12, 16},
    "c": {8, 16, 20, 24, 32},
}


def _count(shape: object) -> int | None:
    if isinstance(shape, bool):
        return None
    if isinstance(shape, int):
        return shape if shape >= 0 else None
    if isinstance(shape, tuple) and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape
    ):
        return math.prod(shape)
    return None


def _itemsize(descr: object, depth: int = 0) -> int | None:
    """The size of one item of a header's ``descr``, for the forms NumPy writes; else None."""
    if depth > 8:
        return None
    if isinstance(descr, str):
        m = _TYPESTR.fullmatch(descr)
        if m is None:
            return None
        kind, n, unit = m.group(1), int(m.group(2)), m.group(3)
        if kind in "Mm":
            return 8 if n == 8 else None
        if unit is not None:
            return None
        if kind in _SIZES:
            return n if n in _SIZES[kind] else None
        return 4 * n if kind == "U" else n
    if isinstance(descr, list):
        total = 0
        for item in descr:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                return None
            label = item[0]
            if not (
                isinstance(label, str)
                or (isinstance(label, tuple) and all(isinstance(x, str) for x in label))
            ):
                return None
            size = _itemsize(item[1], depth + 1)
            count = _count(item[2]) if len(item) == 3 else 1
            if size is None or count is None:
                return None
            total += size * count
        return total
    if isinstance(descr, tuple) and len(descr) == 2:
        size, count = _itemsize(descr[0], depth + 1), _count(descr[1])
        return None if size is None or count is None else size * count
    return None


def _npy_length(head: bytes) -> int | None:
    """How many bytes the magic, the length and the header take, from the first bytes."""
    if len(head) < 12 or not head.startswith(_npy.MAGIC):
        return None
    if head[6] in (2, 3):
        return 12 + int.from_bytes(head[8:12], "little")
    return 10 + int.from_bytes(head[8:10], "little")


def _npy_checks(
    head: bytes, total: int, out: _Out, member: str | None, base: int = 0
) -> int | None:
    """Findings on the ``.npy`` header ``head`` starts (of ``total`` bytes in all).

    Returns where the pickle starts when the dtype holds Python objects.
    ``base``: the offset of the array in the file, for the findings.
    """
    what = f"array {member}" if member else "the array"

    def add(code: str, message: str, offset: int, severity: Severity = "error") -> None:
        out.add(code, f"{what}: {message}", offset=base + offset, member=member, severity=severity)

    if not head.startswith(_npy.MAGIC):
        add("npy-header-malformed", "does not start with the .npy magic", 0)
        return None
    if len(head) < 10:
        add("npy-header-truncated", "the header is truncated", 0)
        return None
    major, minor = head[6], head[7]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        add("npy-version", f"format version {major}.{minor}; NumPy reads 1.0, 2.0 and 3.0", 6)
        return None
    if major == 1:
        length, start = int.from_bytes(head[8:10], "little"), 10
    elif len(head) < 12:
        add("npy-header-truncated", "the header is truncated", 0)
        return None
    else:
        length, start = int.from_bytes(head[8:12], "little"), 12
    end = start + length
    if length > _npy.MAX_HEADER:
        add(
            "npy-header-too-large",
            f"a {length}-byte header, over NumPy's limit of {_npy.MAX_HEADER}"
            " (which allow_pickle=True lifts): not examined",
            8,
        )
        return None
    if end > total or len(head) < end:
        add("npy-header-truncated", f"a {length}-byte header, but the file ends first", 8)
        return None
    try:
        text = head[start:end].decode("utf-8" if major == 3 else "latin-1")
        header = _npy.parse_literal(text)
    except (ValueError, UnicodeDecodeError):
        add("npy-header-malformed", "the header is not the dict literal NumPy writes", start)
        return None
    keys = {"descr", "fortran_order", "shape"}
    if not isinstance(header, dict) or set(header) != keys:
        got = sorted(map(str, header)) if isinstance(header, dict) else type(header).__name__
        add(
            "npy-header-malformed",
            f"the header holds {_show(str(got), 120)}, not exactly descr, fortran_order, shape",
            start,
        )
        return None
    descr, order, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(order, bool):
        add("npy-header-malformed", f"fortran_order is {_show(repr(order), 40)}", start)
        return None
    count = _count(shape) if isinstance(shape, tuple) else None
    if count is None:
        add(
            "npy-header-malformed", f"shape {_show(repr(shape), 80)} is not a tuple of sizes", start
        )
        return None
    shown = _show(repr(descr), 120)
    if _npy.has_object(descr):
        add(
            "npy-object-dtype",
            f"dtype {shown} holds Python objects: numpy.load(allow_pickle=True) unpickles"
            " the rest of the file (scanned as a pickle)",
            end,
            "info",
        )
        return end
    size = _itemsize(descr)
    if size is None:
        add("npy-dtype-unrecognised", f"dtype {shown} is not one NumPy writes", start)
        return None
    expected, actual = count * size, total - end
    if expected != actual:
        add(
            "npy-size-mismatch",
            f"the header says shape {_show(repr(shape), 80)} of {size}-byte items,"
            f" {expected} bytes; {actual} bytes follow the header"
            + (" (trailing data)" if actual > expected else " (data missing)"),
            end,
        )
    return None


# ---------------------------------------------------------------- entry points


def examine_zip(
    read: Reader,
    size: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    scan: bool = True,
) -> Examined:
    """Every check of a zip archive; ``scan=False`` plans the pickle and Keras scans only."""
    out = _Out(file, fmt)
    scans: list[tuple[str, str | None, str]] = []
    z = _Zip(read, size, fmt, out=out, options=options, budget=_Budget(), scans=scans, scan=scan)
    z.examine()
    return Examined(out.done(), scans)


def examine_npy(
    read: Reader,
    size: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    scan: bool = True,
) -> Examined:
    """Every check of a ``.npy`` file; ``scan=False`` plans the pickle scan only."""
    out = _Out(file, fmt)
    head = read(0, 12 + _npy.MAX_HEADER)
    at = _npy_checks(head, size, out, None)
    scans: list[tuple[str, str | None, str]] = []
    if at is not None:
        scans.append(("pickle", None, fmt))
        if scan:
            found, _ = scan_pickle(
                read, at, size, file=file, fmt=fmt, options=options, member=None, single=True
            )
            out.items.extend(found)
    return Examined(out.done(), scans)


def check_zip(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """A zip archive (``pytorch-zip``, ``zip``, ``npz``, ``keras``): see the module's docstring."""
    return examine_zip(src.read, src.size, file=name, fmt=detected.format, options=options).findings


def check_npy(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """A ``.npy`` array (``numpy``): see the module's docstring."""
    return examine_npy(src.read, src.size, file=name, fmt=detected.format, options=options).findings
