"""ONNX: external data locations and custom-op domains, read from the protobuf bounded.

A small protobuf reader of this project's own walks ``ModelProto`` and only
the messages that can name external data or an operator domain:

* ``ModelProto``: ``graph`` (7), ``opset_import`` (8), ``training_info`` (20:
  its ``initialization`` and ``algorithm`` graphs), ``functions`` (25);
* ``GraphProto``: ``node`` (1), ``initializer`` (5), ``sparse_initializer`` (15);
* ``NodeProto``: ``op_type`` (4), ``attribute`` (5), ``domain`` (7);
* ``AttributeProto``: ``t`` (5), ``g`` (6), ``tensors`` (10), ``graphs`` (11),
  ``sparse_tensor`` (22), ``sparse_tensors`` (23): subgraphs (``If``,
  ``Loop``, ``Scan``) and constant tensors hold external data too;
* ``FunctionProto``: ``name`` (1), ``node`` (7), ``opset_import`` (9),
  ``domain`` (10);
* ``TensorProto``: ``name`` (8), ``external_data`` (13: key/value entries),
  ``data_location`` (14); ``SparseTensorProto``: ``values`` (1), ``indices`` (2).

Everything else (``raw_data`` above all) is skipped by its length, never read.
Subgraphs nest at most :data:`MAX_DEPTH` deep; at most :data:`MAX_FIELDS`
fields are read in all; a string of interest longer than :data:`MAX_STRING`
bytes is an error.

Per file (:func:`check_onnx`): each external-data ``location`` must be a
plain relative POSIX path (no ``..``, ``.`` or empty component, not
absolute, no backslash, NUL or control character); ``offset`` and
``length`` decimal; no key other than ``location``, ``offset``, ``length``,
``checksum``, none twice. Operator domains other than ONNX's own (``""``,
``ai.onnx``, ``ai.onnx.ml``, ``ai.onnx.preview``, ``ai.onnx.preview.training``,
``ai.onnx.training``) are warnings: a runtime runs them as custom operators
(native code it was given, or must be given). A node that calls a function
the model itself defines is not a custom operator (the function's own nodes
are walked).

Per folder (:func:`check_external_data`): each model is read again (bounded
as above) and each location, taken relative to the model's folder, is
checked on disk with ``lstat``, component by component from the scanned
folder: no component a symbolic link, the file existing, a regular file,
not hard-linked (``st_nlink`` above 1: its bytes are shared with a path
elsewhere), every ``offset``/``length`` within it, its real path inside the
scanned folder, and, when the model is signed, among the signed files.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions, Severity, Source

__all__ = ["STANDARD_DOMAINS", "check_external_data", "check_onnx"]

#: The operator-set domains ONNX itself defines (``onnx.defs``).
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "ai.onnx.training"}
)
EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum"})
MAX_DEPTH = 32
MAX_FIELDS = 1 << 22
MAX_STRING = 4096
#: External-data findings per model file (the rest are counted).
MAX_REPORTED = 50
_WINDOW = 1 << 20
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_DRIVE = re.compile(r"^[A-Za-z]:")


class _Bad(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass
class _Tensor:
    name: str
    at: int
    entries: list[tuple[str, str]] = field(default_factory=list)
    location_kind: int = 0


@dataclass
class _Model:
    tensors: list[_Tensor] = field(default_factory=list)
    #: domain -> (first offset, op types seen (a few), node count)
    domains: dict[str, tuple[int, list[str], int]] = field(default_factory=dict)
    #: (domain, name) of each function the model defines
    functions: set[tuple[str, str]] = field(default_factory=set)
    #: (domain, op_type, offset) of each node outside the standard domains
    nodes: list[tuple[str, str, int]] = field(default_factory=list)
    opsets: dict[str, int] = field(default_factory=dict)


class _Reader:
    """Protobuf fields of a Source, read forward through a window."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.fields = 0
        self._buf = b""
        self._at = 0

    def _byte(self, pos: int) -> int:
        rel = pos - self._at
        if rel < 0 or rel >= len(self._buf):
            self._buf = self.src.read(pos, _WINDOW)
            self._at = pos
            rel = 0
            if not self._buf:
                raise _Bad("the file ends inside a field", pos)
        return self._buf[rel]

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = 0
        for shift in range(0, 70, 7):
            if pos >= end:
                raise _Bad("a varint runs past the end of its message", pos)
            b = self._byte(pos)
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, pos
        raise _Bad("a varint longer than 10 bytes", pos)

    def bytes_at(self, pos: int, n: int) -> bytes:
        rel = pos - self._at
        if rel >= 0 and rel + n <= len(self._buf):
            return self._buf[rel : rel + n]
        return self.src.read(pos, n)

    def fields_of(self, start: int, end: int) -> list[tuple[int, int, int, int]]:
        """(number, wire type, value or length, offset of the value) of each field."""
        out: list[tuple[int, int, int, int]] = []
        pos = start
        while pos < end:
            self.fields += 1
            if self.fields > MAX_FIELDS:
                raise _Bad(f"more than {MAX_FIELDS} protobuf fields: not walked further", pos)
            at = pos
            tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise _Bad("a field numbered 0", at)
            if wire == 0:
                value, pos = self.varint(pos, end)
                out.append((number, 0, value, at))
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise _Bad(f"field {number}: {length} bytes, past the end of its message", at)
                out.append((number, 2, length, pos))
                pos += length
            else:
                raise _Bad(f"field {number} has the wire type {wire} (groups are not ONNX)", at)
            if pos > end:
                raise _Bad(f"field {number} runs past the end of its message", at)
        return out

    def string(self, pos: int, length: int, what: str) -> str:
        if length > MAX_STRING:
            raise _Bad(f"{what}: a {length}-byte string (more than {MAX_STRING})", pos)
        raw = self.bytes_at(pos, length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = _show(raw.decode("utf-8", "replace"))
            raise _Bad(f"{what} is not UTF-8: '{shown}'", pos) from None


class _Walker:
    def __init__(self, src: Source) -> None:
        self.r = _Reader(src)
        self.model = _Model()

    def model_proto(self, size: int) -> None:
        for number, wire, value, at in self.r.fields_of(0, size):
            if wire != 2:
                continue
            if number == 7:
                self.graph(at, value, 1)
            elif number == 8:
                self.opset(at, value)
            elif number == 20:
                for n, w, v, a in self.r.fields_of(at, at + value):
                    if w == 2 and n in (1, 2):
                        self.graph(a, v, 1)
            elif number == 25:
                self.function(at, value)

    def opset(self, at: int, length: int) -> None:
        for n, w, v, a in self.r.fields_of(at, at + length):
            if n == 1 and w == 2:
                domain = self.r.string(a, v, "an opset_import domain")
                self.model.opsets.setdefault(domain, a)

    def function(self, at: int, length: int) -> None:
        name = domain = ""
        for n, w, v, a in self.r.fields_of(at, at + length):
            if w != 2:
                continue
            if n == 1:
                name = self.r.string(a, v, "a function name")
            elif n == 10:
                domain = self.r.string(a, v, "a function domain")
            elif n == 7:
                self.node(a, v, 1)
            elif n == 9:
                self.opset(a, v)
        self.model.functions.add((domain, name))

    def graph(self, at: int, length: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Bad(f"subgraphs nested more than {MAX_DEPTH} deep", at)
        for n, w, v, a in self.r.fields_of(at, at + length):
            if w != 2:
                continue
            if n == 1:
                self.node(a, v, depth)
            elif n == 5:
                self.tensor(a, v)
            elif n == 15:
                self.sparse(a, v)

    def node(self, at: int, length: int, depth: int) -> None:
        op_type = domain = ""
        for n, w, v, a in self.r.fields_of(at, at + length):
            if w != 2:
                continue
            if n == 4:
                op_type = self.r.string(a, v, "a node's op_type")
            elif n == 7:
                domain = self.r.string(a, v, "a node's domain")
            elif n == 5:
                self.attribute(a, v, depth)
        if domain not in STANDARD_DOMAINS:
            self.model.nodes.append((domain, op_type, at))

    def attribute(self, at: int, length: int, depth: int) -> None:
        for n, w, v, a in self.r.fields_of(at, at + length):
            if w != 2:
                continue
            if n in (5, 10):
                self.tensor(a, v)
            elif n in (6, 11):
                self.graph(a, v, depth + 1)
            elif n in (22, 23):
                self.sparse(a, v)

    def sparse(self, at: int, length: int) -> None:
        for n, w, v, a in self.r.fields_of(at, at + length):
            if w == 2 and n in (1, 2):
                self.tensor(a, v)

    def tensor(self, at: int, length: int) -> None:
        t = _Tensor("", at)
        for n, w, v, a in self.r.fields_of(at, at + length):
            if n == 8 and w == 2:
                t.name = self.r.string(a, v, "a tensor name")
            elif n == 14 and w == 0:
                t.location_kind = v
            elif n == 13 and w == 2:
                key = value = ""
                for n2, w2, v2, a2 in self.r.fields_of(a, a + v):
                    if w2 == 2 and n2 == 1:
                        key = self.r.string(a2, v2, "an external_data key")
                    elif w2 == 2 and n2 == 2:
                        value = self.r.string(a2, v2, "an external_data value")
                t.entries.append((key, value))
        if t.entries or t.location_kind == _EXTERNAL:
            self.model.tensors.append(t)


def _read_model(src: Source) -> tuple[_Model, _Bad | None]:
    w = _Walker(src)
    try:
        w.model_proto(src.size)
    except _Bad as e:
        return w.model, e
    return w.model, None


def _location_problem(location: str) -> str | None:
    """Why ``location`` is not a plain relative POSIX path, or None."""
    if not location:
        return "is empty"
    if "\0" in location:
        return "holds a NUL"
    if any(ord(c) < 32 or ord(c) == 127 for c in location):
        return "holds control characters"
    if "\\" in location:
        return "holds a backslash"
    if location.startswith("/") or _DRIVE.match(location):
        return "is an absolute path"
    parts = location.split("/")
    if ".." in parts:
        return "climbs out with '..'"
    if "." in parts or "" in parts:
        return "is not normalized ('.' or an empty component)"
    return None


def _number(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 20 else None


class _Out:
    def __init__(self, name: str) -> None:
        self.name = name
        self.findings: list[FormatFinding] = []
        self.skipped = 0

    def add(
        self, code: str, message: str, offset: int | None, severity: Severity = "error"
    ) -> None:
        if len(self.findings) >= MAX_REPORTED and severity == "error":
            self.skipped += 1
            return
        f = FormatFinding(self.name, "onnx", code, message, offset, None, severity)
        self.findings.append(f)

    def done(self) -> list[FormatFinding]:
        if self.skipped:
            self.findings.append(
                FormatFinding(
                    self.name,
                    "onnx",
                    "onnx-more-findings",
                    f"{self.skipped} more findings about external data not shown",
                )
            )
        return self.findings


def _entries(t: _Tensor, out: _Out) -> dict[str, str] | None:
    """The tensor's external-data entries, or None (reported) when they are malformed."""
    shown = _show(t.name)
    got: dict[str, str] = {}
    ok = True
    for key, value in t.entries:
        if key not in EXTERNAL_KEYS:
            out.add(
                "onnx-external-data",
                f"tensor '{shown}': unknown external_data key '{_show(key)}'",
                t.at,
            )
            ok = False
        elif key in got:
            out.add(
                "onnx-external-data", f"tensor '{shown}': external_data key '{key}' twice", t.at
            )
            ok = False
        got[key] = value
    if "location" not in got:
        out.add("onnx-external-data", f"tensor '{shown}': external data without a location", t.at)
        return None
    for key in ("offset", "length"):
        if key in got and _number(got[key]) is None:
            out.add(
                "onnx-external-data",
                f"tensor '{shown}': external_data {key} '{_show(got[key])}' is not a"
                " decimal number",
                t.at,
            )
            ok = False
    return got if ok else None


def check_onnx(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    model, bad = _read_model(src)
    out = _Out(name)
    if bad is not None:
        out.add("onnx-malformed", bad.message, bad.offset)
    for t in model.tensors:
        got = _entries(t, out)
        if got is None:
            continue
        problem = _location_problem(got["location"])
        if problem is not None:
            out.add(
                "onnx-external-location",
                f"tensor '{_show(t.name)}': external data location"
                f" '{_show(got['location'])}' {problem}",
                t.at,
            )
    _domains(model, out)
    return out.done()


def _domains(model: _Model, out: _Out) -> None:
    found: dict[str, tuple[int, list[str], int]] = {}
    for domain, op_type, at in model.nodes:
        if (domain, op_type) in model.functions:
            continue  # a function the model defines; its nodes were walked
        first, ops, count = found.get(domain, (at, [], 0))
        if op_type not in ops and len(ops) < 5:
            ops.append(op_type)
        found[domain] = (first, ops, count + 1)
    defined = {d for d, _ in model.functions}
    for domain, at in model.opsets.items():
        if domain not in STANDARD_DOMAINS and domain not in found and domain not in defined:
            found[domain] = (at, [], 0)
    for domain, (at, ops, count) in sorted(found.items()):
        what = (
            f"{count} nodes, such as {', '.join(_show(o, 40) for o in ops)}"
            if count
            else "imported as an operator set, no node uses it"
        )
        out.add(
            "onnx-custom-domain",
            f"custom operator domain '{_show(domain)}' ({what}): a runtime runs it as native"
            " code registered for it",
            at,
            "warning",
        )


# ---------------------------------------------------------------- the folder


def check_external_data(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    findings: list[FormatFinding] = []
    for f in files:
        if f.format != "onnx":
            continue
        findings.extend(_check_model_data(root, f.name, options))
    return findings


def _open(path: str) -> int | None:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _check_model_data(root: Path, name: str, options: ScanOptions) -> list[FormatFinding]:
    out = _Out(name)
    if options.contents is not None and name in options.contents:
        model, _ = _read_model(Source.of_bytes(options.contents[name], name))
    else:
        fd = _open(os.path.join(root, name))
        if fd is None:
            return []  # the file pass reported why it could not be read
        try:
            model, _ = _read_model(Source(fd, os.fstat(fd).st_size, name))
        finally:
            os.close(fd)
    folder = posixpath.dirname(name)
    checked: dict[str, int | None] = {}
    for t in model.tensors:
        got = _entries(_Tensor(t.name, t.at, t.entries), _Out(name))
        if got is None or _location_problem(got["location"]) is not None:
            continue  # reported by check_onnx
        rel = posixpath.join(folder, got["location"]) if folder else got["location"]
        if rel not in checked:
            checked[rel] = _check_location(root, name, rel, got["location"], t, options, out)
        size = checked[rel]
        if size is None:
            continue
        offset = _number(got.get("offset", "0")) or 0
        length = _number(got["length"]) if "length" in got else None
        end = offset + (length if length is not None else 0)
        if offset > size or end > size:
            out.add(
                "onnx-external-out-of-bounds",
                f"tensor '{_show(t.name)}': bytes {offset}..{end} of '{_show(rel)}',"
                f" which has {size} bytes",
                t.at,
            )
    return out.done()


def _check_location(
    root: Path,
    name: str,
    rel: str,
    location: str,
    t: _Tensor,
    options: ScanOptions,
    out: _Out,
) -> int | None:
    """The size of the external data file at ``rel``, or None when it is refused (reported)."""
    shown = _show(rel)
    where = f"tensor '{_show(t.name)}': external data '{_show(location)}'"
    if options.signed_files is not None and rel not in options.signed_files:
        out.add(
            "onnx-external-unsigned",
            f"{where} ('{shown}') is not among the signed files",
            t.at,
        )
    path = os.fspath(root)
    parts = rel.split("/")
    for i, part in enumerate(parts):
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            out.add("onnx-external-missing", f"{where}: '{shown}' does not exist", t.at)
            return None
        except OSError as e:
            out.add("onnx-external-missing", f"{where}: '{shown}': {e.strerror}", t.at)
            return None
        if stat.S_ISLNK(st.st_mode):
            out.add(
                "onnx-external-symlink",
                f"{where}: '{'/'.join(parts[: i + 1])}' is a symbolic link",
                t.at,
            )
            return None
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            out.add(
                "onnx-external-missing",
                f"{where}: '{'/'.join(parts[: i + 1])}' is not a folder",
                t.at,
            )
            return None
    if not stat.S_ISREG(st.st_mode):
        out.add("onnx-external-not-regular", f"{where}: '{shown}' is not a regular file", t.at)
        return None
    if st.st_nlink > 1:
        out.add(
            "onnx-external-hardlink",
            f"{where}: '{shown}' has {st.st_nlink} hard links: its bytes are shared with"
            " a path elsewhere",
            t.at,
        )
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        out.add("onnx-external-escape", f"{where}: '{shown}' resolves outside the folder", t.at)
        return None
    return st.st_size
