"""GGUF, read bounded: the header, every key-value pair and tensor info; never tensor data.

The layout (GGUF v2 and v3; v1 used 32-bit counts and lengths and is refused
as ggml refuses it): ``GGUF``, a uint32 version, a uint64 tensor count, a
uint64 key-value count, the key-value pairs (a string key, a uint32 value
type, the value; an array is an element type, a uint64 count and the
elements), the tensor infos (a string name, a uint32 dimension count, that
many uint64 dimensions, a uint32 ggml type, a uint64 offset into the data
section), padding to ``general.alignment`` (32 by default), the data
section. A string is a uint64 byte length and that many bytes. v3 files may
be big-endian (every number in that order).

What is checked, against what ggml's own loader (``gguf.cpp``) accepts and
the overflows it has had:

* counts bounded before anything is read: each key-value pair needs at least
  13 bytes, each tensor info at least 24, each array element its type's
  size (a string at least 8): a count the file cannot hold is an error, as
  is more than :data:`MAX_KV` pairs or :data:`MAX_TENSORS` tensors; no loop
  runs longer than the file allows or :data:`MAX_ITEMS` in all (a few
  seconds at most);
* every string length within the file; keys and tensor names valid UTF-8
  without control characters, unique; tensor names under
  :data:`GGML_MAX_NAME` bytes;
* value types known; arrays of arrays (ggml refuses them) reported, and
  nested at most :data:`MAX_ARRAY_DEPTH` deep;
* ``general.alignment`` a uint32 power of two from 1 to :data:`MAX_ALIGNMENT`;
* tensor infos: at most :data:`GGML_MAX_DIMS` dimensions, each from 1 to
  2**63 - 1 (ggml divides by each one: a zero is a division by zero there),
  the element count below 2**63, a known ggml type, a first dimension that
  is a whole number of blocks; the byte size from the type's block
  (:data:`GGML_TYPES`); offsets aligned, in bounds of the data section, not
  overlapping, and packed in order as ggml requires (a gap can hide bytes);
  nothing after the last tensor but its padding;
* ``tokenizer.chat_template`` (and the named ``tokenizer.chat_template.*``
  variants): reported as a warning with its length and an excerpt: it is
  Jinja code that the serving stack runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import struct

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScanOptions, Severity, Source

__all__ = ["GGML_TYPES", "check_gguf"]

#: ggml's tensor types that a file may name: type id -> (name, elements per
#: block, bytes per block). From ggml's ``ggml.h`` (``enum ggml_type``) and
#: ``ggml-common.h`` (the ``block_*`` structs and their ``static_assert``
#: sizes), ggml as vendored in llama.cpp at the end of 2025 (type count 40,
#: MXFP4 the last). Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4, Q4_0_4_8,
#: Q4_0_8_8) and 36-38 (IQ4_NL_4_4, _4_8, _8_8) were removed from ggml and are
#: refused. Q8_1 is 36 bytes (two halves and 32 int8), as ggml asserts.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),  # half d; uint8 qs[16]
    3: ("Q4_1", 32, 20),  # half d, m; uint8 qs[16]
    6: ("Q5_0", 32, 22),  # half d; uint8 qh[4]; qs[16]
    7: ("Q5_1", 32, 24),  # half d, m; qh[4]; qs[16]
    8: ("Q8_0", 32, 34),  # half d; int8 qs[32]
    9: ("Q8_1", 32, 36),  # half d, s; int8 qs[32]
    10: ("Q2_K", 256, 84),  # scales[16]; qs[64]; half d, dmin
    11: ("Q3_K", 256, 110),  # hmask[32]; qs[64]; scales[12]; half d
    12: ("Q4_K", 256, 144),  # half d, dmin; scales[12]; qs[128]
    13: ("Q5_K", 256, 176),  # half d, dmin; scales[12]; qh[32]; qs[128]
    14: ("Q6_K", 256, 210),  # ql[128]; qh[64]; int8 scales[16]; half d
    15: ("Q8_K", 256, 292),  # float d; int8 qs[256]; int16 bsums[16]
    16: ("IQ2_XXS", 256, 66),  # half d; uint16 qs[32]
    17: ("IQ2_XS", 256, 74),  # half d; uint16 qs[32]; scales[8]
    18: ("IQ3_XXS", 256, 98),  # half d; qs[96]
    19: ("IQ1_S", 256, 50),  # half d; qs[32]; uint16 qh[8]
    20: ("IQ4_NL", 32, 18),  # half d; qs[16]
    21: ("IQ3_S", 256, 110),  # half d; qs[64]; qh[8]; signs[32]; scales[4]
    22: ("IQ2_S", 256, 82),  # half d; qs[64]; qh[8]; scales[8]
    23: ("IQ4_XS", 256, 136),  # half d; uint16 scales_h; scales_l[4]; qs[128]
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),  # qs[32]; qh[16]; scales[8]
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),  # qs[48]; qh[4]; half d
    35: ("TQ2_0", 256, 66),  # qs[64]; half d
    39: ("MXFP4", 32, 17),  # uint8 e; qs[16]
}

GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 16
#: Tensor infos read (a real model has a few thousand; merged MoE experts included).
MAX_TENSORS = 1 << 16
#: Key-value pairs read (a real model has a few dozen).
MAX_KV = 1 << 16
#: Key-value pairs, tensor infos and array elements walked, in all.
MAX_ITEMS = 1 << 22
MAX_ARRAY_DEPTH = 3
#: The longest key read (the spec's limit is 65535 bytes).
MAX_KEY = 1 << 16
_WINDOW = 1 << 20
_EXCERPT = 120

_STRING, _ARRAY = 8, 9
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
_MIN_KV = 8 + 4 + 1  # an empty key, a type, a one-byte value
_MIN_TENSOR = 8 + 4 + 4 + 8  # an empty name, no dimensions, a type, an offset
_INT64_MAX = (1 << 63) - 1
_CONTROL = frozenset(range(32)) | {127}


class _Stop(Exception):
    """The walk cannot go on (the finding was recorded)."""


class _Stream:
    """Sequential bounded reads of a Source, through a window."""

    def __init__(self, src: Source, order: str) -> None:
        self.src = src
        self.size = src.size
        self.order: str = order
        self.pos = 0
        self._buf = b""
        self._at = 0

    def left(self) -> int:
        return self.size - self.pos

    def take(self, n: int) -> bytes:
        if n > self.size - self.pos:
            raise EOFError
        rel = self.pos - self._at
        if rel < 0 or rel + n > len(self._buf):
            self._buf = self.src.read(self.pos, max(n, _WINDOW))
            self._at = self.pos
            rel = 0
            if len(self._buf) < n:
                raise EOFError  # the file is shorter than its size said
        self.pos += n
        return self._buf[rel : rel + n]

    def skip(self, n: int) -> None:
        if n > self.size - self.pos:
            raise EOFError
        self.pos += n

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big" if self.order == "big" else "little")

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` strings (a uint64 length and the bytes each): the hot loop."""
        unpack = struct.Struct(">Q" if self.order == "big" else "<Q").unpack_from
        buf, at, pos, size = self._buf, self._at, self.pos, self.size
        try:
            for _ in range(count):
                rel = pos - at
                if rel < 0 or rel + 8 > len(buf):
                    buf, at, rel = self.src.read(pos, _WINDOW), pos, 0
                    if len(buf) < 8:
                        raise EOFError
                pos += 8 + unpack(buf, rel)[0]
                if pos > size:
                    raise EOFError
        finally:
            self._buf, self._at, self.pos = buf, at, min(pos, size)


class _Checker:
    def __init__(self, src: Source, name: str) -> None:
        self.src = src
        self.name = name
        self.findings: list[FormatFinding] = []
        self.items = 0

    def add(
        self, code: str, message: str, offset: int | None, severity: Severity = "error"
    ) -> None:
        f = FormatFinding(self.name, "gguf", code, message, offset, None, severity)
        self.findings.append(f)

    def stop(self, code: str, message: str, offset: int | None) -> _Stop:
        self.add(code, message, offset)
        return _Stop()

    def count(self, n: int, offset: int) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise self.stop(
                "gguf-too-many-items",
                f"the header holds more than {MAX_ITEMS} pairs, tensors and array elements:"
                " not walked further",
                offset,
            )


def _text(raw: bytes) -> tuple[str, bool]:
    """``raw`` shown printably, and whether it is valid UTF-8 without control characters."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _show(raw.decode("utf-8", "replace")), False
    return _show(text), not any(ord(c) in _CONTROL for c in text)


def check_gguf(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    c = _Checker(src, name)
    with contextlib.suppress(_Stop):
        _walk(c)
    return c.findings


def _walk(c: _Checker) -> None:
    head = c.src.read(0, 24)
    if len(head) < 8 or head[:4] != b"GGUF":
        raise c.stop("gguf-truncated", "the file ends inside the GGUF header", 0)
    version = int.from_bytes(head[4:8], "little")
    order = "little"
    if version & 0xFFFF == 0:
        version, order = int.from_bytes(head[4:8], "big"), "big"
        c.add(
            "gguf-big-endian",
            "big-endian GGUF: ggml on a little-endian machine refuses it",
            4,
            "info",
        )
    if version == 1:
        raise c.stop(
            "gguf-version-unsupported",
            "GGUF version 1 (legacy, 32-bit counts): ggml no longer reads it",
            4,
        )
    if version not in (2, 3):
        raise c.stop(
            "gguf-version-unsupported", f"GGUF version {version}: only 2 and 3 are known", 4
        )
    s = _Stream(c.src, order)
    s.pos = 8
    try:
        _header(c, s)
    except EOFError:
        raise c.stop(
            "gguf-truncated", f"the file ends inside the header (at byte {s.pos})", s.pos
        ) from None


def _header(c: _Checker, s: _Stream) -> int:
    n_tensors = s.uint(8)
    n_kv = s.uint(8)
    left = s.left()
    if n_kv > left // _MIN_KV:
        raise c.stop(
            "gguf-count-too-large",
            f"{n_kv} key-value pairs declared; the {left} bytes left hold at most"
            f" {left // _MIN_KV}",
            16,
        )
    if n_tensors > left // _MIN_TENSOR:
        raise c.stop(
            "gguf-count-too-large",
            f"{n_tensors} tensors declared; the {left} bytes left hold at most"
            f" {left // _MIN_TENSOR}",
            8,
        )
    if n_kv > MAX_KV:
        raise c.stop(
            "gguf-count-too-large",
            f"{n_kv} key-value pairs declared; more than {MAX_KV} are not examined",
            16,
        )
    if n_tensors > MAX_TENSORS:
        raise c.stop(
            "gguf-count-too-large",
            f"{n_tensors} tensors declared; more than {MAX_TENSORS} are not examined",
            8,
        )
    alignment = DEFAULT_ALIGNMENT
    seen: set[bytes] = set()
    for i in range(n_kv):
        c.count(1, s.pos)
        at = s.pos
        key_raw = _string(c, s, MAX_KEY, f"key {i}")
        key, key_ok = _text(key_raw)
        if not key_ok:
            c.add("gguf-key-name", f"key {i} '{key}' is not UTF-8 text without controls", at)
        ident = key_raw if len(key_raw) <= 256 else hashlib.sha256(key_raw).digest()
        if ident in seen:
            c.add("gguf-key-duplicate", f"key '{key}' appears more than once", at)
        seen.add(ident)
        type_at = s.pos
        vtype = s.uint(4)
        if key_raw == b"general.alignment":
            if vtype != 4:
                raise c.stop(
                    "gguf-alignment",
                    f"general.alignment is a {_TYPE_NAMES.get(vtype, vtype)}, not a uint32"
                    " (ggml aborts on that)",
                    type_at,
                )
            value = s.uint(4)
            if value == 0 or value & (value - 1) or value > MAX_ALIGNMENT:
                raise c.stop(
                    "gguf-alignment",
                    f"general.alignment {value} is not a power of two from 1 to {MAX_ALIGNMENT}",
                    type_at + 4,
                )
            alignment = value
            continue
        if key_raw.startswith(b"tokenizer.chat_template"):
            _template(c, s, key, vtype, at)
            continue
        _value(c, s, vtype, key, 0)
    return _tensors(c, s, n_tensors, alignment)


def _string(c: _Checker, s: _Stream, limit: int, what: str) -> bytes:
    """A string read whole (at most ``limit`` bytes, else an error)."""
    at = s.pos
    length = s.uint(8)
    if length > s.left():
        raise c.stop(
            "gguf-string-past-end",
            f"{what}: a {length}-byte string, past the end of the file ({s.left()} bytes left)",
            at,
        )
    if length > limit:
        raise c.stop("gguf-string-too-long", f"{what}: a {length}-byte string", at)
    return s.take(length)


def _template(c: _Checker, s: _Stream, key: str, vtype: int, at: int) -> None:
    if vtype != _STRING:
        _value(c, s, vtype, key, 0)
        c.add(
            "gguf-chat-template",
            f"'{key}' is a {_TYPE_NAMES.get(vtype, vtype)}, not a string: a chat template"
            " is Jinja code the serving stack runs",
            at,
            "warning",
        )
        return
    length_at = s.pos
    length = s.uint(8)
    if length > s.left():
        raise c.stop(
            "gguf-string-past-end",
            f"'{key}': a {length}-byte string, past the end of the file",
            length_at,
        )
    excerpt = s.src.read(s.pos, min(length, _EXCERPT * 4)).decode("utf-8", "replace")
    s.skip(length)
    c.add(
        "gguf-chat-template",
        f"'{key}': a {length}-byte chat template (Jinja code the serving stack runs):"
        f" {_show(excerpt, _EXCERPT)}",
        at,
        "warning",
    )


def _value(c: _Checker, s: _Stream, vtype: int, key: str, depth: int) -> None:
    at = s.pos
    if vtype in _FIXED:
        s.skip(_FIXED[vtype])
        return
    if vtype == _STRING:
        length = s.uint(8)
        if length > s.left():
            raise c.stop(
                "gguf-string-past-end",
                f"'{key}': a {length}-byte string, past the end of the file ({s.left()} left)",
                at,
            )
        s.skip(length)
        return
    if vtype != _ARRAY:
        raise c.stop("gguf-value-type", f"'{key}' has the unknown value type {vtype}", at - 4)
    etype = s.uint(4)
    n = s.uint(8)
    left = s.left()
    if etype in _FIXED:
        if n > left // _FIXED[etype]:
            raise c.stop(
                "gguf-array-past-end",
                f"'{key}': an array of {n} {_TYPE_NAMES[etype]}, past the end of the file",
                at,
            )
        s.skip(n * _FIXED[etype])
        return
    if etype == _STRING:
        if n > left // 8:
            raise c.stop(
                "gguf-array-past-end",
                f"'{key}': an array of {n} strings, past the end of the file",
                at,
            )
        c.count(n, at)
        try:
            s.skip_strings(n)
        except EOFError:
            raise c.stop(
                "gguf-string-past-end",
                f"'{key}': a string of the array runs past the end of the file",
                s.pos,
            ) from None
        return
    if etype == _ARRAY:
        if depth == 0:
            c.add(
                "gguf-nested-array",
                f"'{key}' is an array of arrays, which ggml refuses",
                at,
            )
        if depth + 1 >= MAX_ARRAY_DEPTH:
            raise c.stop(
                "gguf-nested-array",
                f"'{key}': arrays nested more than {MAX_ARRAY_DEPTH} deep",
                at,
            )
        if n > left // 12:
            raise c.stop(
                "gguf-array-past-end",
                f"'{key}': an array of {n} arrays, past the end of the file",
                at,
            )
        c.count(n, at)
        for _ in range(n):
            _value(c, s, _ARRAY, key, depth + 1)
        return
    raise c.stop("gguf-value-type", f"'{key}': an array of the unknown value type {etype}", at)


class _Tensor:
    __slots__ = ("at", "name", "nbytes", "offset")

    def __init__(self, name: str, at: int, offset: int, nbytes: int | None) -> None:
        self.name = name
        self.at = at
        self.offset = offset
        self.nbytes = nbytes


def _tensors(c: _Checker, s: _Stream, n: int, alignment: int) -> int:
    names: set[bytes] = set()
    tensors: list[_Tensor] = []
    for i in range(n):
        c.count(1, s.pos)
        at = s.pos
        raw = _string(c, s, MAX_KEY, f"tensor {i}'s name")
        name, ok = _text(raw)
        if not ok:
            c.add("gguf-tensor-name", f"tensor {i} '{name}' is not UTF-8 text without controls", at)
        if len(raw) >= GGML_MAX_NAME:
            c.add(
                "gguf-tensor-name",
                f"tensor '{name}': a {len(raw)}-byte name (ggml's limit is {GGML_MAX_NAME - 1})",
                at,
            )
        if raw in names:
            c.add("gguf-tensor-duplicate", f"tensor '{name}' appears more than once", at)
        names.add(raw)
        dims_at = s.pos
        n_dims = s.uint(4)
        if n_dims > GGML_MAX_DIMS:
            raise c.stop(
                "gguf-tensor-dims",
                f"tensor '{name}' has {n_dims} dimensions; ggml has at most {GGML_MAX_DIMS}",
                dims_at,
            )
        dims = [s.uint(8) for _ in range(n_dims)]
        type_at = s.pos
        ggml_type = s.uint(4)
        offset = s.uint(8)
        nbytes = _tensor_size(c, name, dims, ggml_type, dims_at, type_at)
        if offset % alignment:
            c.add(
                "gguf-tensor-misaligned",
                f"tensor '{name}' at data offset {offset}, not a multiple of the alignment"
                f" {alignment}",
                type_at + 4,
            )
        tensors.append(_Tensor(name, at, offset, nbytes))
    data_start = -(-s.pos // alignment) * alignment
    _placement(c, tensors, data_start, alignment)
    return alignment


def _tensor_size(
    c: _Checker, name: str, dims: list[int], ggml_type: int, dims_at: int, type_at: int
) -> int | None:
    shape = "x".join(str(d) for d in dims) or "scalar"
    bad = False
    for j, d in enumerate(dims):
        if d > _INT64_MAX:
            c.add(
                "gguf-tensor-dims",
                f"tensor '{name}' dimension {j} is {d}, negative as ggml reads it (int64)",
                dims_at + 4 + 8 * j,
            )
            bad = True
        elif d == 0:
            c.add(
                "gguf-tensor-dims",
                f"tensor '{name}' dimension {j} is 0 (ggml divides by each dimension)",
                dims_at + 4 + 8 * j,
            )
            bad = True
    if bad:
        return None
    elements = 1
    for d in dims:
        elements *= d
    if elements >= _INT64_MAX:
        c.add(
            "gguf-tensor-overflow",
            f"tensor '{name}' of shape {shape} has {elements} elements: overflows int64",
            dims_at,
        )
        return None
    known = GGML_TYPES.get(ggml_type)
    if known is None:
        c.add("gguf-tensor-type", f"tensor '{name}' has the unknown ggml type {ggml_type}", type_at)
        return None
    type_name, block, block_bytes = known
    first = dims[0] if dims else 1
    if first % block:
        c.add(
            "gguf-tensor-block",
            f"tensor '{name}' of type {type_name}: its first dimension {first} is not a"
            f" multiple of the block size {block}",
            type_at,
        )
        return None
    nbytes = elements // block * block_bytes
    if nbytes >= 1 << 64:
        c.add(
            "gguf-tensor-overflow",
            f"tensor '{name}' of shape {shape} ({type_name}) needs {nbytes} bytes:"
            " overflows 64 bits",
            dims_at,
        )
        return None
    return nbytes


def _placement(c: _Checker, tensors: list[_Tensor], data_start: int, alignment: int) -> None:
    size = c.src.size
    if data_start > size and tensors:
        c.add(
            "gguf-tensor-out-of-bounds",
            f"the data section would start at byte {data_start}, past the end ({size})",
            size,
        )
        return
    room = size - data_start
    placed: list[_Tensor] = []
    for t in tensors:
        if t.nbytes is None:
            continue
        if t.offset > room or t.nbytes > room - t.offset:
            c.add(
                "gguf-tensor-out-of-bounds",
                f"tensor '{t.name}' spans data bytes {t.offset}..{t.offset + t.nbytes},"
                f" past the end of the data section ({room} bytes)",
                t.at,
            )
            continue
        placed.append(t)
    by_offset = sorted(placed, key=lambda t: (t.offset, t.nbytes or 0))
    overlapped: set[int] = set()
    for a, b in itertools.pairwise(by_offset):
        assert a.nbytes is not None
        if a.offset + a.nbytes > b.offset:
            overlapped.add(id(b))
            c.add(
                "gguf-tensor-overlap",
                f"tensor '{b.name}' (data bytes {b.offset}..) overlaps tensor '{a.name}'"
                f" ({a.offset}..{a.offset + a.nbytes})",
                b.at,
            )
    if overlapped or len(placed) != len(tensors):
        return
    # ggml's own rule: each tensor where the previous one's padded end puts it.
    expected = 0
    for t in tensors:
        assert t.nbytes is not None
        if t.offset != expected:
            c.add(
                "gguf-tensor-gap",
                f"tensor '{t.name}' at data offset {t.offset}; packed in order it would be"
                f" at {expected} (ggml refuses this; a gap can hide bytes)",
                t.at,
            )
            return
        expected += -(-t.nbytes // alignment) * alignment
    end = data_start + expected
    last_end = data_start + (tensors[-1].offset + (tensors[-1].nbytes or 0) if tensors else 0)
    if size > max(end, last_end) and tensors:
        c.add(
            "gguf-trailing-data",
            f"{size - max(end, last_end)} bytes after the last tensor's data",
            max(end, last_end),
        )
