"""safetensors, stricter than the reference parser (issue 10).

The format (safetensors' README, "Format"): 8 bytes, ``N``, a little-endian
unsigned 64-bit header length; ``N`` bytes of UTF-8 JSON, starting with
``{`` and padded at the end with spaces only; then the byte buffer. The
header maps each tensor name to exactly ``{"dtype", "shape",
"data_offsets"}`` (offsets relative to the buffer), and ``__metadata__`` to
a flat string-to-string map.

Only the header is read (at most :data:`MAX_HEADER` bytes, one read); tensor
data never is. What is checked, beyond what ``safetensors`` itself refuses:

* the length: at most :data:`MAX_HEADER` (the reference's own
  ``MAX_HEADER_SIZE``) and within the file;
* ``{`` as the first byte, nothing but spaces after the JSON object;
* strict UTF-8, and JSON as ``serde_json`` reads it: no ``NaN`` /
  ``Infinity``, no fractions or exponents, no negative or over-64-bit
  integers, no lone surrogate escapes, and no duplicate key in any object
  (the reference keeps the last of two top-level duplicates silently);
* before the JSON is parsed, a bound on the objects, arrays and values it
  can hold (counted in the raw bytes, then outside strings if the raw count
  is over), so a hostile header cannot make millions of Python objects;
* every tensor: a non-empty name without control characters, lone
  surrogates or bidirectional overrides; exactly the three keys; a known
  dtype (:data:`DTYPE_BITS`); a shape of at most :data:`MAX_DIMS`
  non-negative integers whose element count (also with its zero dimensions
  left out, so ``[0, 2**62, 2**62]`` is caught) times the dtype's bits fits
  in 64 bits and is whole bytes; ``[begin, end]`` with ``begin <= end``
  inside the buffer and ``end - begin`` equal to that size;
* the ranges, sorted, leave no gap, do not overlap, and cover the buffer
  exactly: the file is ``8 + N + end of the last tensor`` bytes long;
* at most :data:`MAX_TENSORS` tensors.

Findings carry the byte offset in the file: of the header (``8``) or the
place in it a JSON error was found, or of the tensor's data
(``8 + N + begin``). At most :data:`FINDINGS_PER_CODE` findings of one code
are listed, then one saying how many more there were.
"""

from __future__ import annotations

import gc
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScanOptions, Severity, Source

__all__ = [
    "DTYPE_BITS",
    "MAX_DIMS",
    "MAX_HEADER",
    "MAX_TENSORS",
    "Entry",
    "Header",
    "HeaderSource",
    "check_safetensors",
    "read_header",
]

#: The reference parser's ``MAX_HEADER_SIZE`` (100,000,000 bytes, not 100 MiB).
MAX_HEADER = 100_000_000
#: Tensors one file may hold.
MAX_TENSORS = 1_000_000
#: Dimensions one shape may have (PyTorch's and NumPy 2's limit).
MAX_DIMS = 64
#: JSON values (commas) one header may hold: 16 per tensor at the limit.
MAX_VALUES = 16 * MAX_TENSORS
FINDINGS_PER_CODE = 20

#: Every dtype of the safetensors specification and its size in bits: the
#: ``Dtype`` enum of huggingface/safetensors ``safetensors/src/tensor.rs`` as
#: of v0.8.0-rc.0 (April 2026; v0.7.0 has the same list without the two FNUZ
#: types). Sub-byte types (F4, F6_*) must add up to whole bytes per tensor.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

_TENSOR_KEYS = ("dtype", "shape", "data_offsets")
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
# A JSON string in the raw bytes (escapes included), to count structure outside strings.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Bidirectional embeddings, overrides and isolates: they reorder how a name reads.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_JSON_BLANKS = " \t\r\n"


class _Obj(dict[str, object]):
    """A JSON object in which some keys appeared more than once (the others are dicts)."""

    __slots__ = ("dups",)

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        self.dups: list[str] = []
        for k, _ in pairs:
            if k in seen:
                self.dups.append(k)
            seen.add(k)


def dups(obj: dict[str, object]) -> list[str]:
    """The keys of a parsed JSON object that appeared more than once, each once."""
    return list(dict.fromkeys(obj.dups)) if isinstance(obj, _Obj) else []


class _Bad:
    """A JSON number safetensors does not take (a fraction or an exponent)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text[:40]

    def __repr__(self) -> str:
        return self.text


class _Reject(Exception):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else _Obj(pairs)


def _constant(text: str) -> object:
    raise _Reject(f"{text} is not JSON")


def strict_json(text: str) -> tuple[object, int]:
    """Parse the JSON value at the start of ``text``; returns it and where it ends.

    Objects come back as dicts; one with duplicate keys as a dict that lists
    them (see :func:`dups`); a fraction or exponent as a marker that no
    check accepts (integers are Python's: a check bounds them); ``NaN`` and
    ``Infinity`` raise ``ValueError``, as do syntax errors
    (``json.JSONDecodeError``), integers of more than 4300 digits and
    nesting too deep. The garbage collector is paused meanwhile (a million
    containers would set it off again and again).
    """
    decoder = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_Bad, parse_constant=_constant)
    paused = gc.isenabled()
    gc.disable()
    try:
        return decoder.raw_decode(text)
    except _Reject as e:
        raise ValueError(str(e)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    finally:
        if paused:
            gc.enable()


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bad_name(name: str) -> str | None:
    """Why ``name`` is no acceptable tensor name, or None."""
    if not name:
        return "is empty"
    for c in name:
        if c in _BIDI:
            return f"holds a bidirectional control character (U+{ord(c):04X})"
        cat = unicodedata.category(c)
        if cat == "Cc":
            return f"holds a control character (U+{ord(c):04X})"
        if cat == "Cs":
            return f"holds a lone surrogate (U+{ord(c):04X}), which is not UTF-8"
    return None


class HeaderSource(Protocol):
    """What :func:`read_header` reads from: a file on disk or bytes already in memory.

    A protocol so that a loader can check a header in the very memory it
    hashed (:mod:`provenance.loaders._st`), not only an open file.
    """

    @property
    def size(self) -> int: ...

    @property
    def name(self) -> str: ...

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end)."""
        ...


#: A tensor's ``(dtype, shape, begin, end)`` as its header entry gives them.
Entry = tuple[str, tuple[int, ...], int, int]


@dataclass
class Header:
    """What a safetensors header says (as far as it could be read)."""

    length: int  # N
    data_length: int  # the byte buffer's length: the file's size - 8 - N
    #: Every tensor name, with its byte size (end - begin; None when its offsets
    #: are unusable). Empty when the header did not parse.
    tensors: dict[str, int | None] = field(default_factory=dict)
    metadata: dict[str, str] | None = None
    #: The JSON parsed and its top level is an object: ``tensors`` is complete.
    parsed: bool = False
    #: With ``read_header(..., entries=True)``: every tensor whose entry is right
    #: in every way (known dtype, usable shape, offsets inside the buffer that
    #: match its size), in the header's order; its name may still be faulted.
    #: Kept so that a loader builds tensors from the entries the checker passed
    #: rather than parsing the JSON a second time.
    entries: dict[str, Entry] = field(default_factory=dict)


class _Out:
    """Findings of one file, at most FINDINGS_PER_CODE of each code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.out: list[FormatFinding] = []
        self.counts: dict[str, tuple[int, Severity]] = {}

    def add(
        self, code: str, message: str, offset: int | None = None, severity: Severity = "error"
    ) -> None:
        n = self.counts.get(code, (0, severity))[0] + 1
        self.counts[code] = (n, severity)
        if n <= FINDINGS_PER_CODE:
            self.out.append(
                FormatFinding(self.name, "safetensors", code, message, offset, None, severity)
            )

    def done(self) -> list[FormatFinding]:
        for code, (n, severity) in self.counts.items():
            if n > FINDINGS_PER_CODE:
                self.out.append(
                    FormatFinding(
                        self.name,
                        "safetensors",
                        code,
                        f"and {n - FINDINGS_PER_CODE} more findings '{code}' not listed",
                        None,
                        None,
                        severity,
                    )
                )
        return self.out


def check_safetensors(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """Check a safetensors file's header (never its data) by the rules above."""
    return read_header(src, name)[1]


def read_header(
    src: HeaderSource, name: str, *, entries: bool = False
) -> tuple[Header | None, list[FormatFinding]]:
    """The header of the safetensors file ``src`` and what is wrong with it.

    The header is None when its length is unusable (nothing else was read).
    ``entries`` fills :attr:`Header.entries`: a loader's need, which a scan
    does not pay for (a million tensors take a second more).
    """
    out = _Out(name)
    header = _read(src, out, entries)
    return header, out.done()


def _read(src: HeaderSource, out: _Out, keep: bool) -> Header | None:
    size = src.size
    prefix = src.read(0, 8)
    if len(prefix) < 8:
        out.add("safetensors-truncated", f"{len(prefix)} bytes: shorter than the 8-byte length", 0)
        return None
    n = int.from_bytes(prefix, "little")
    if n > MAX_HEADER:
        out.add(
            "safetensors-header-too-large",
            f"header length {n} is over the limit of {MAX_HEADER} bytes",
            0,
        )
        return None
    if n > size - 8:
        out.add(
            "safetensors-header-out-of-bounds",
            f"header length {n} runs past the end of the file ({size} bytes)",
            0,
        )
        return None
    raw = src.read(8, n)
    if len(raw) < n:
        out.add("safetensors-truncated", f"the file ended {n - len(raw)} bytes into its header", 8)
        return None
    header = Header(n, size - 8 - n)
    if raw[:1] != b"{":
        what = repr(raw[:1].decode("latin-1")) if raw else "nothing"
        out.add("safetensors-header-start", f"the header starts with {what}, not '{{'", 8)
        if not raw.lstrip(b" \t\r\n").startswith(b"{"):
            return header
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        out.add(
            "safetensors-header-utf8",
            f"the header is not UTF-8 at byte {8 + e.start} ({e.reason})",
            8 + e.start,
        )
        return header
    if not _bounded(raw, out):
        return header
    start = len(text) - len(text.lstrip(_JSON_BLANKS))
    try:
        top, end = strict_json(text[start:])
    except json.JSONDecodeError as e:
        at = 8 + len(text[: start + e.pos].encode("utf-8"))
        out.add("safetensors-header-json", f"the header is not JSON: {e.msg} (byte {at})", at)
        return header
    except ValueError as e:
        out.add(
            "safetensors-header-json", f"the header is not JSON as safetensors reads it: {e}", 8
        )
        return header
    except MemoryError:
        out.add("safetensors-header-too-complex", "the header is too large to parse", 8)
        return header
    end += start
    rest = text[end:]
    if rest.strip(" "):
        at = 8 + len(text[:end].encode("utf-8"))
        pad = rest.lstrip(" ")[:1]
        out.add(
            "safetensors-header-padding",
            f"after the header's JSON, {_show(pad)!r} at byte"
            f" {at + len(rest) - len(rest.lstrip(' '))}: only spaces may pad it",
            at,
        )
    if not isinstance(top, dict):
        out.add("safetensors-header-json", "the header is not a JSON object", 8)
        return header
    _tensors(top, header, out, keep)
    return header


def _bounded(raw: bytes, out: _Out) -> bool:
    """The header holds few enough objects, arrays and values to parse."""

    def over(data: bytes) -> str | None:
        if data.count(b"{") > MAX_TENSORS + 2:
            return f"more than {MAX_TENSORS} tensors"
        if data.count(b"[") > 2 * MAX_TENSORS:
            return f"more than {2 * MAX_TENSORS} arrays"
        if data.count(b",") > MAX_VALUES:
            return f"more than {MAX_VALUES} values"
        return None

    if over(raw) is None:
        return True
    why = over(_STRING.sub(b'""', raw))
    if why is None:
        return True
    code = "safetensors-too-many-tensors" if "tensors" in why else "safetensors-header-too-complex"
    out.add(code, f"the header holds {why}; not parsed", 8)
    return False


def _tensors(top: dict[str, object], header: Header, out: _Out, keep: bool) -> None:
    base = 8 + header.length
    for key in dups(top):
        out.add("safetensors-duplicate-key", f"'{_show(key)}' appears more than once", 8)
    count = len(top) - ("__metadata__" in top)
    if count > MAX_TENSORS:
        out.add(
            "safetensors-too-many-tensors",
            f"{count} tensors: more than the limit of {MAX_TENSORS}",
            8,
        )
        return
    header.parsed = True
    ranges: list[tuple[int, int, str]] = []
    tensors, entries = header.tensors, header.entries
    for name, value in top.items():
        if name == "__metadata__":
            header.metadata = _metadata(value, out)
            continue
        e = _plain(value, header.data_length) if name and name.isprintable() else None
        if e is not None:
            if keep:
                entries[name] = e
            begin, end = e[2], e[3]
        else:  # the slow path, which says what is wrong
            r = _unusual(name, value, header, out)
            if r is None:
                tensors[name] = None
                continue
            if keep:  # only the name may have been at fault
                e = _plain(value, header.data_length)
                if e is not None:
                    entries[name] = e
            begin, end = r
        ranges.append((begin, end, name))
        tensors[name] = end - begin
    _coverage(ranges, header, out, base)


def _plain(t: object, data_length: int) -> Entry | None:
    """A tensor's :data:`Entry` when its entry is right in every way, else None.

    The fast path for the million tensors a header may hold: exact types,
    no finding; anything unusual is left to :func:`_unusual`.
    """
    if type(t) is not dict or len(t) != 3:
        return None
    dtype, shape, offsets = t.get("dtype"), t.get("shape"), t.get("data_offsets")
    if type(dtype) is not str or type(shape) is not list or type(offsets) is not list:
        return None
    bits = DTYPE_BITS.get(dtype)
    if bits is None or len(offsets) != 2 or len(shape) > MAX_DIMS:
        return None
    begin, end = offsets
    if type(begin) is not int or type(end) is not int or not 0 <= begin <= end <= data_length:
        return None
    count, nonzero = 1, 1
    for d in shape:
        if type(d) is not int or not 0 <= d <= _I64_MAX:
            return None
        count *= d
        nonzero *= d or 1
    nbits = count * bits
    if nonzero * bits >= _U64 or nbits % 8 or nbits // 8 != end - begin:
        return None
    return dtype, tuple(shape), begin, end


def _unusual(name: str, value: object, header: Header, out: _Out) -> tuple[int, int] | None:
    shown = _show(name)
    why = bad_name(name)
    if why is not None:
        out.add("safetensors-tensor-name", f"tensor name '{shown}' {why}", 8)
    if not isinstance(value, dict):
        out.add("safetensors-tensor-not-object", f"tensor '{shown}' is not a JSON object", 8)
        return None
    return _tensor(name, value, header, out)


def _metadata(value: object, out: _Out) -> dict[str, str] | None:
    if not isinstance(value, dict):
        out.add("safetensors-metadata", "__metadata__ is not a JSON object", 8)
        return None
    for key in dups(value):
        out.add("safetensors-duplicate-key", f"__metadata__ has '{_show(key)}' twice", 8)
    meta: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            out.add(
                "safetensors-metadata",
                f"__metadata__['{_show(k)}'] is {_kind(v)}, not a string",
                8,
            )
        elif not (_is_utf8(k) and _is_utf8(v)):
            out.add(
                "safetensors-metadata",
                f"__metadata__['{_show(k)}'] holds a lone surrogate, which is not UTF-8",
                8,
            )
        else:
            meta[k] = v
    return meta


def _kind(v: object) -> str:
    if isinstance(v, _Bad):
        return f"the number {v.text}"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int):
        return f"the number {v}"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__  # pragma: no cover


def _uint(v: object, limit: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit


def _tensor(name: str, t: dict[str, object], header: Header, out: _Out) -> tuple[int, int] | None:
    """Check one tensor's entry; its usable ``(begin, end)``, or None."""
    shown = _show(name)
    base = 8 + header.length
    offsets = t.get("data_offsets")
    begin_end: tuple[int, int] | None = None
    if (
        isinstance(offsets, list)
        and len(offsets) == 2
        and _uint(offsets[0], _U64)
        and _uint(offsets[1], _U64)
    ):
        begin_end = (offsets[0], offsets[1])
    at = base + begin_end[0] if begin_end is not None else 8
    for key in dups(t):
        out.add("safetensors-duplicate-key", f"tensor '{shown}' has '{_show(key)}' twice", at)
    for key in _TENSOR_KEYS:
        if key not in t:
            out.add("safetensors-tensor-missing-key", f"tensor '{shown}' has no '{key}'", at)
    for key in t:
        if key not in _TENSOR_KEYS:
            out.add(
                "safetensors-tensor-extra-key",
                f"tensor '{shown}' has the key '{_show(key)}' (only dtype, shape and"
                " data_offsets are allowed)",
                at,
            )
    if "data_offsets" in t and begin_end is None:
        out.add(
            "safetensors-offsets",
            f"tensor '{shown}': data_offsets is not [begin, end] of unsigned 64-bit integers",
            8,
        )
        return None
    if begin_end is not None and begin_end[0] > begin_end[1]:
        out.add(
            "safetensors-offsets",
            f"tensor '{shown}': data_offsets begin {begin_end[0]} is after end {begin_end[1]}",
            at,
        )
        return None
    if begin_end is not None and begin_end[1] > header.data_length:
        out.add(
            "safetensors-out-of-bounds",
            f"tensor '{shown}': data_offsets [{begin_end[0]}, {begin_end[1]}] run past the"
            f" end of the data ({header.data_length} bytes)",
            at,
        )
    dtype = t.get("dtype")
    bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
    if "dtype" in t and bits is None:
        what = f"'{_show(dtype)}'" if isinstance(dtype, str) else _kind(dtype)
        out.add("safetensors-dtype", f"tensor '{shown}': dtype {what} is not a known dtype", at)
    nbytes = _shape_bytes(shown, t.get("shape"), "shape" in t, dtype, bits, at, out)
    if nbytes is not None and begin_end is not None and begin_end[1] - begin_end[0] != nbytes:
        out.add(
            "safetensors-size-mismatch",
            f"tensor '{shown}': its shape and dtype make {nbytes} bytes, its data_offsets"
            f" [{begin_end[0]}, {begin_end[1]}] {begin_end[1] - begin_end[0]}",
            at,
        )
    return begin_end


def _shape_bytes(
    shown: str,
    shape: object,
    present: bool,
    dtype: object,
    bits: int | None,
    at: int,
    out: _Out,
) -> int | None:
    """The byte size a shape and dtype make, or None (reported when it is wrong)."""
    if not present:
        return None
    if not isinstance(shape, list) or not all(_uint(d, _I64_MAX + 1) for d in shape):
        bad = (
            next((d for d in shape if not _uint(d, _I64_MAX + 1)), None)
            if isinstance(shape, list)
            else shape
        )
        out.add(
            "safetensors-shape",
            f"tensor '{shown}': shape is not a list of integers from 0 to 2**63-1 ({_kind(bad)})",
            at,
        )
        return None
    if len(shape) > MAX_DIMS:
        out.add(
            "safetensors-shape",
            f"tensor '{shown}': {len(shape)} dimensions, more than {MAX_DIMS}",
            at,
        )
        return None
    count, nonzero = 1, 1
    for d in shape:
        count *= d
        nonzero *= d or 1
    if nonzero * (bits or 8) >= _U64:
        out.add(
            "safetensors-shape-overflow",
            f"tensor '{shown}': shape {_show(str(shape))} overflows 64 bits"
            + (" (with its zero dimensions left out)" if count == 0 else ""),
            at,
        )
        return None
    if bits is None:
        return None
    if count * bits % 8:
        out.add(
            "safetensors-misaligned",
            f"tensor '{shown}': {count} elements of {dtype} are not a whole number of bytes",
            at,
        )
        return None
    return count * bits // 8


def _coverage(ranges: list[tuple[int, int, str]], header: Header, out: _Out, base: int) -> None:
    """The ranges, sorted, tile the data buffer exactly."""
    ranges.sort()
    expected, last = 0, ""
    for begin, end, name in ranges:
        if begin < expected:
            out.add(
                "safetensors-overlap",
                f"tensor '{_show(name)}' [{begin}, {end}] overlaps tensor '{_show(last)}'"
                f" (which ends at {expected})",
                base + begin,
            )
        elif begin > expected:
            out.add(
                "safetensors-gap",
                f"{begin - expected} bytes of data at [{expected}, {begin}] belong to no tensor"
                f" (before tensor '{_show(name)}')",
                base + expected,
            )
        if end >= expected:
            expected, last = end, name
    if expected < header.data_length:
        out.add(
            "safetensors-trailing-data",
            f"{header.data_length - expected} bytes after the last tensor's data"
            f" (data ends at byte {base + expected}, the file at {base + header.data_length})",
            base + expected,
        )
