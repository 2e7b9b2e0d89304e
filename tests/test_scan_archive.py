"""provenance.formats._archive: zip archives (torch, npz, .keras, any zip) and .npy files.

Benign files come from numpy (``numpy.save``, ``savez``, ``savez_compressed``),
``zipfile``, and torch when it is installed; hostile ones are written field by
field here (:func:`zip_bytes`), since zipfile will not write them. Crafted
pickles that would run a command are only ever written, never loaded.

Tests marked ``needs_scanner`` check pickle members end to end: they run once
the pickle scanner (``_pickle_scan.scan_pickle``) is in the tree, and are
skipped before. ``needs_keras`` likewise waits for ``_keras.check_keras_config``.
Everything else (structure, classification, the scans planned, .npy headers)
runs without them, through ``examine_zip(..., scan=False)``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import time
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provenance.formats import _archive, detect_fd
from provenance.formats._scan import FormatFinding, ScanOptions, Source

np = pytest.importorskip("numpy", reason="numpy is a test dependency (pip install -e '.[test]')")

OPTIONS = ScanOptions()


def _scanner_ready() -> bool:
    from provenance.formats._pickle_scan import scan_pickle

    try:
        scan_pickle(lambda o, n: b"N."[o : o + n], 0, 2, file="x", fmt="pickle", options=OPTIONS)
    except NotImplementedError:
        return False
    return True


def _keras_ready() -> bool:
    from provenance.formats._keras import check_keras_config

    try:
        check_keras_config(b"{}", file="x", member=None, options=OPTIONS)
    except NotImplementedError:
        return False
    return True


needs_scanner = pytest.mark.skipif(
    not _scanner_ready(), reason="the pickle scanner (_pickle_scan.scan_pickle) is not written yet"
)
needs_keras = pytest.mark.skipif(
    not _keras_ready(),
    reason="the Keras config checks (_keras.check_keras_config) are not written yet",
)


# ---------------------------------------------------------------- helpers


def check_file(path: Path) -> tuple[str, list[FormatFinding]]:
    """The detected format and the checker's findings, through a real descriptor."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        found = detect_fd(fd, size, path.name)
        src = Source(fd, size, path.name)
        checker = _archive.check_npy if found.format == "numpy" else _archive.check_zip
        return found.format, checker(src, found, OPTIONS, path.name)
    finally:
        os.close(fd)


def plan(data: bytes, fmt: str = "zip") -> _archive.Examined:
    """Every check but the pickle and Keras scans (planned, not run)."""

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n] if offset >= 0 and n > 0 else b""

    return _archive.examine_zip(read, len(data), file="t.zip", fmt=fmt, options=OPTIONS, scan=False)


def plan_npy(data: bytes) -> _archive.Examined:
    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n] if offset >= 0 and n > 0 else b""

    return _archive.examine_npy(
        read, len(data), file="t.npy", fmt="numpy", options=OPTIONS, scan=False
    )


def codes(found: _archive.Examined | list[FormatFinding]) -> set[str]:
    items = found.findings if isinstance(found, _archive.Examined) else found
    return {f.code for f in items}


def errors(found: list[FormatFinding]) -> list[FormatFinding]:
    return [f for f in found if f.severity != "info"]


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@dataclass
class M:
    """One member as :func:`zip_bytes` writes it; ``local`` overrides local header fields."""

    name: str | bytes
    data: bytes = b""
    method: int = 0
    flags: int = 0
    raw: bytes | None = None  # the bytes stored (default: data, stored or deflated)
    crc: int | None = None
    usize: int | None = None  # the declared size (default: len(data))
    local: dict[str, Any] = field(default_factory=dict)
    descriptor: bytes = b""  # written after the data
    offset: int | None = None  # the central directory's local header offset
    extra: bytes = b""
    local_extra: bytes = b""


def zip_bytes(
    members: list[M],
    *,
    prefix: bytes = b"",
    gaps: dict[int, bytes] | None = None,
    comment: bytes = b"",
    trailing: bytes = b"",
    count: int | None = None,
    stale: int = 0,
) -> bytes:
    """A zip written field by field. ``gaps[i]``: bytes before member i (or the directory);
    ``stale``: subtracted from every offset (a stub prepended without correcting them)."""
    gaps = gaps or {}
    out = bytearray(prefix)
    central = bytearray()
    for i, m in enumerate(members):
        out += gaps.get(i, b"")
        name = m.name.encode() if isinstance(m.name, str) else m.name
        raw = m.raw if m.raw is not None else (m.data if m.method == 0 else deflate(m.data))
        crc = m.crc if m.crc is not None else zlib.crc32(m.data)
        usize = m.usize if m.usize is not None else len(m.data)
        loc = {
            "name": name,
            "flags": m.flags,
            "method": m.method,
            "crc": crc,
            "csize": min(len(raw), 0xFFFFFFFF),
            "usize": min(usize, 0xFFFFFFFF),
        } | m.local
        at = len(out)
        out += struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            loc["flags"],
            loc["method"],
            0,
            0x21,
            loc["crc"],
            loc["csize"],
            loc["usize"],
            len(loc["name"]),
            len(m.local_extra),
        )
        out += loc["name"] + m.local_extra + raw + m.descriptor
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            20,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            crc,
            len(raw),
            min(usize, 0xFFFFFFFF),
            len(name),
            len(m.extra),
            0,
            0,
            0,
            0,
            (m.offset if m.offset is not None else at) - stale,
        )
        central += name + m.extra
    out += gaps.get(len(members), b"")
    cd_at = len(out)
    out += central
    n = count if count is not None else len(members)
    out += struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_at - stale, len(comment)
    )
    return bytes(out + comment + trailing)


def to_zip64(data: bytes, *, total: int | None = None, cd_size_delta: int = 0) -> bytes:
    """``data`` (ending in a comment-less end record) with zip64 end records added."""
    end = data[-22:]
    assert end[:4] == b"PK\x05\x06"
    n, cd_size, cd_offset = struct.unpack_from("<HII", end, 10)
    n = total if total is not None else n
    body = data[:-22]
    rec_at = len(body)
    record = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size + cd_size_delta, cd_offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, rec_at, 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + record + locator + eocd


def descriptor(data: bytes, raw: bytes | None = None) -> bytes:
    raw = data if raw is None else raw
    return struct.pack("<4sIII", b"PK\x07\x08", zlib.crc32(data), len(raw), len(data))


def miniz(name: str, data: bytes) -> M:
    """A member as torch's writer (miniz) stores it: sizes in a data descriptor."""
    return M(
        name,
        data,
        flags=0x08,
        local={"crc": 0, "csize": 0, "usize": 0},
        descriptor=descriptor(data),
    )


def state_dict_pickle() -> bytes:
    """A data.pkl like torch.save writes for {'weight': tensor(2, 2)}, built opcode by opcode."""
    return (
        b"\x80\x02"
        + b"}q\x00X\x06\x00\x00\x00weightq\x01"
        + b"ctorch._utils\n_rebuild_tensor_v2\nq\x02"
        + b"((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05"
        + b"X\x03\x00\x00\x00cpuq\x06K\x04tq\x07QK\x00K\x02K\x02\x86q\x08K\x02K\x01\x86q\x09"
        + b"\x89ccollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0ds."
    )


SYSTEM = b"cos\nsystem\n(S'echo owned'\ntR."  # protocol 0: os.system('echo owned')


def torch_members(pkl: bytes | None = None, storage: bytes = b"\0" * 16) -> list[M]:
    return [
        miniz("archive/data.pkl", pkl if pkl is not None else state_dict_pickle()),
        miniz("archive/byteorder", b"little"),
        miniz("archive/data/0", storage),
        miniz("archive/version", b"3\n"),
        miniz("archive/.data/serialization_id", b"1234567890"),
    ]


def hdf5_placeholder() -> bytes:
    return b"\x89HDF\r\n\x1a\n" + b"\0" * 504


def keras_config() -> bytes:
    dense = [
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "config": {"name": f"dense_{i}", "units": 4, "activation": "relu"},
            "registered_name": None,
        }
        for i in range(2)
    ]
    return json.dumps(
        {
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": "sequential", "layers": dense},
            "registered_name": None,
        }
    ).encode()


def keras_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("config.json", keras_config())
        z.writestr("model.weights.h5", hdf5_placeholder())
    return buf.getvalue()


def npy_bytes(header: str | bytes, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    raw = header.encode("latin-1") if isinstance(header, str) else header
    if version[0] == 1:
        return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(raw)) + raw + body
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(raw)) + raw + body


# ---------------------------------------------------------------- benign: real files


def test_numpy_save_plain_dtypes_pass(tmp_path):
    arrays = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.ones((3, 5), dtype=np.int64)),
        "bool": np.array([True, False]),
        "str": np.array(["a", "bcd"]),
        "bytes": np.array([b"xy", b"z"]),
        "struct": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")]),
        "aligned": np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<i8")], align=True)),
        "nested": np.zeros(2, dtype=[("p", [("x", "<f4"), ("y", "<f4")]), ("n", "<i2")]),
        "time": np.array(["2024-01-01"], dtype="datetime64[ns]"),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 7), dtype=np.float16),
        "complex": np.zeros(2, dtype=np.complex128),
    }
    for name, a in arrays.items():
        p = tmp_path / f"{name}.npy"
        np.save(p, a)
        fmt, found = check_file(p)
        assert fmt == "numpy"
        assert found == [], (name, found)


def test_numpy_format_versions_2_and_3_pass(tmp_path):
    from numpy.lib import format as npformat

    for version in ((2, 0), (3, 0)):
        p = tmp_path / f"v{version[0]}.npy"
        with open(p, "wb") as f:
            npformat.write_array(f, np.arange(5, dtype="<i2"), version=version)
        assert check_file(p) == ("numpy", [])


def test_savez_and_savez_compressed_pass(tmp_path):
    arrays = {"a": np.zeros((10, 10)), "b": np.arange(7, dtype=np.int8), "s": np.array(["x"])}
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez_compressed(tmp_path / "c.npz", **arrays, big=np.zeros(100_000))
    for name in ("a.npz", "c.npz"):
        fmt, found = check_file(tmp_path / name)
        assert fmt == "npz"
        assert found == [], (name, found)


def test_plain_zipfile_archives_pass(tmp_path):
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        p = tmp_path / f"plain{method}.zip"
        with zipfile.ZipFile(p, "w", method) as z:
            z.writestr("README.md", "# hello\n" * 100)
            z.writestr("conf/settings.json", json.dumps({"a": 1}))
            z.writestr("weights.bin", bytes(range(256)) * 64)
            z.writestr("empty.txt", b"")
            z.mkdir("folder") if hasattr(z, "mkdir") else None
        fmt, found = check_file(p)
        assert fmt == "zip"
        assert found == []


def test_zip_through_an_unseekable_stream_has_descriptors_and_passes(tmp_path):
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.buf += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", "text " * 1000)
        with z.open("b.txt", "w") as f:
            f.write(b"streamed " * 1000)
    data = bytes(sink.buf)
    assert b"PK\x07\x08" in data
    assert plan(data).findings == []


def test_torch_like_zip_structure(tmp_path):
    data = zip_bytes(torch_members())
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    p = tmp_path / "pytorch_model.bin"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    try:
        assert detect_fd(fd, len(data), p.name).format == "pytorch-zip"
    finally:
        os.close(fd)
    found = plan(data, "pytorch-zip")
    assert found.findings == []
    # data.pkl is scanned as torch's (persistent ids allowed); the storage is not read
    assert found.scans == [("pickle", "archive/data.pkl", "pytorch-zip")]


def test_torch_like_zip_written_by_zipfile(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for m in torch_members():
            z.writestr(str(m.name), m.data)
    found = plan(buf.getvalue(), "pytorch-zip")
    assert found.findings == []
    assert found.scans == [("pickle", "archive/data.pkl", "pytorch-zip")]


@needs_scanner
def test_torch_like_zip_passes_end_to_end(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(zip_bytes(torch_members()))
    fmt, found = check_file(p)
    assert fmt == "pytorch-zip"
    assert errors(found) == []


@needs_scanner
def test_real_torch_save_passes(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed (too heavy for CI)")
    p = tmp_path / "real.pt"
    torch.save({"w": torch.ones(2, 3), "b": torch.zeros(3)}, p)
    fmt, found = check_file(p)
    assert fmt == "pytorch-zip"
    assert errors(found) == []


def test_real_torch_save_structure(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed (too heavy for CI)")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2, 3), "b": torch.zeros(3)}, buf)
    found = plan(buf.getvalue(), "pytorch-zip")
    assert found.findings == []
    assert [s[2] for s in found.scans] == ["pytorch-zip"]


def test_keras_like_zip_structure(tmp_path):
    p = tmp_path / "model.keras"
    p.write_bytes(keras_zip())
    fd = os.open(p, os.O_RDONLY)
    try:
        assert detect_fd(fd, p.stat().st_size, p.name).format == "keras"
    finally:
        os.close(fd)
    found = plan(p.read_bytes(), "keras")
    assert [(f.code, f.severity, f.member) for f in found.findings] == [
        ("zip-keras-weights", "info", "model.weights.h5")
    ]
    assert found.scans == [("keras", "config.json", "keras")]


@needs_keras
def test_keras_like_zip_passes_end_to_end(tmp_path):
    p = tmp_path / "model.keras"
    p.write_bytes(keras_zip())
    fmt, found = check_file(p)
    assert fmt == "keras"
    assert errors(found) == []


# ---------------------------------------------------------------- central vs local


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"name": b"other.txt"}, "zip-local-name-mismatch"),
        ({"usize": 999}, "zip-local-size-mismatch"),
        ({"csize": 3}, "zip-local-size-mismatch"),
        ({"crc": 0x12345678}, "zip-local-crc-mismatch"),
        ({"method": 8}, "zip-local-method-mismatch"),
        ({"flags": 0x01}, "zip-local-flags-mismatch"),
    ],
)
def test_local_header_disagreeing_with_the_directory(override, code):
    good = zip_bytes([M("a.txt", b"hello world"), M("b.txt", b"more")])
    assert plan(good).findings == []
    bad = zip_bytes([M("a.txt", b"hello world", local=override), M("b.txt", b"more")])
    found = plan(bad)
    assert code in codes(found)
    f = next(f for f in found.findings if f.code == code)
    assert f.member == "a.txt" and f.severity == "error"


def test_name_mismatch_message_names_both():
    found = plan(zip_bytes([M("model.json", b"{}", local={"name": b"payload.pkl"})]))
    (f,) = [f for f in found.findings if f.code == "zip-local-name-mismatch"]
    assert "model.json" in f.message and "payload.pkl" in f.message


def test_missing_local_header():
    found = plan(zip_bytes([M("a.txt", b"hi"), M("b.txt", b"yo", offset=1)]))
    assert "zip-local-header-missing" in codes(found)
    found = plan(zip_bytes([M("a.txt", b"hi", offset=10**9)]))
    assert "zip-local-header-missing" in codes(found)


def test_encrypted_and_unusual_flags():
    found = plan(zip_bytes([M("secret.pkl", b"\x80\x04N.", flags=0x01)]))
    assert "zip-encrypted" in codes(found)
    assert found.scans == []  # cannot be examined: said so, not scanned
    found = plan(zip_bytes([M("a.txt", b"x", flags=0x40)]))
    (f,) = [f for f in found.findings if f.code == "zip-flags-unusual"]
    assert "strong encryption" in f.message
    found = plan(zip_bytes([M("a.txt", b"x", flags=0x2000)]))
    assert "zip-flags-unusual" in codes(found)
    # UTF-8 names and the deflate option bits are ordinary
    assert plan(zip_bytes([M("é.txt", b"x", flags=0x0800 | 0x02)])).findings == []


def test_data_descriptors():
    data = b"payload " * 10
    assert plan(zip_bytes([miniz("a.bin", data)])).findings == []
    # a zip64 descriptor (8-byte sizes), without its signature
    wide = struct.pack("<IQQ", zlib.crc32(data), len(data), len(data))
    m = M("a.bin", data, flags=8, local={"crc": 0, "csize": 0, "usize": 0}, descriptor=wide)
    assert plan(zip_bytes([m])).findings == []
    missing = M("a.bin", data, flags=8, local={"crc": 0, "csize": 0, "usize": 0})
    assert "zip-descriptor-missing" in codes(plan(zip_bytes([missing, M("b", b"x")])))
    wrong = miniz("a.bin", data)
    wrong.descriptor = descriptor(b"other data")
    assert "zip-descriptor-mismatch" in codes(plan(zip_bytes([wrong])))
    unexpected = M("a.bin", data, descriptor=descriptor(data))
    assert codes(plan(zip_bytes([unexpected]))) == {"zip-descriptor-unexpected"}


def test_compression_methods_other_than_stored_and_deflate(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("data.pkl.bz", pickle.dumps({"a": 1}))
    found = plan(buf.getvalue())
    (f,) = [f for f in found.findings if f.code == "zip-compression-method"]
    assert "bzip2" in f.message and f.member == "data.pkl.bz"


def test_stored_member_with_two_sizes():
    found = plan(zip_bytes([M("a", b"abc", usize=10, local={"usize": 10})]))
    assert "zip-size-inconsistent" in codes(found)


# ---------------------------------------------------------------- layout


def test_prepended_data():
    members = [M("a.txt", b"hello"), M("b.txt", b"world")]
    stub = b"#!/bin/sh\necho self-extracting\n" * 4
    corrected = zip_bytes(members, prefix=stub)
    assert zipfile.ZipFile(io.BytesIO(corrected)).read("b.txt") == b"world"
    found = plan(corrected)
    assert codes(found) == {"zip-data-before-first-member"}
    (f,) = found.findings
    assert f.offset == 0 and f"{len(stub)} bytes" in f.message
    stale = zip_bytes(members, prefix=stub, stale=len(stub))
    assert zipfile.ZipFile(io.BytesIO(stale)).read("b.txt") == b"world"  # zipfile corrects
    assert codes(plan(stale)) == {"zip-offsets-shifted", "zip-data-before-first-member"}


def test_prepended_pickle_is_described():
    found = plan(zip_bytes([M("a.txt", b"x")], prefix=pickle.dumps({"x": 1}, protocol=4)))
    (f,) = found.findings
    assert f.code == "zip-data-before-first-member" and "pickle" in f.message


def test_hidden_member_between_members():
    hidden = zip_bytes([M("evil.pkl", SYSTEM)])
    hidden = hidden[: hidden.index(b"PK\x01\x02")]  # its local header and data, unlisted
    data = zip_bytes([M("a.txt", b"hello"), M("b.txt", b"world")], gaps={1: hidden})
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.txt", "b.txt"]
    found = plan(data)
    (f,) = [f for f in found.findings if f.code == "zip-data-between-members"]
    assert "local file header" in f.message and "member a.txt" in f.message
    # hidden before the central directory too
    data = zip_bytes([M("a.txt", b"hello")], gaps={1: b"junk" * 10})
    (f,) = plan(data).findings
    assert f.code == "zip-data-between-members" and "central directory" in f.message


def test_trailing_data_after_the_end_record():
    data = zip_bytes([M("a.txt", b"x")], trailing=b"appended")
    found = plan(data)
    assert "zip-trailing-data" in codes(found)


def test_two_end_records_one_in_the_others_comment():
    inner = zip_bytes([M("a.txt", b"hello")])
    fake_end = inner[-22:]  # a copy of the end record, with a zero-length comment
    data = inner[:-2] + struct.pack("<H", 22) + fake_end
    found = plan(data)
    assert "zip-multiple-end-records" in codes(found)


def test_two_archives_one_in_the_others_comment():
    first = zip_bytes([M("innocent.txt", b"hello")])
    # the second archive lives in the first one's comment; zipfile finds the second
    start = len(first)
    second = zip_bytes([M("payload.pkl", SYSTEM)])
    shifted = zip_bytes([M("payload.pkl", SYSTEM)], prefix=b"\0" * start)[start:]
    assert len(shifted) == len(second)
    data = first[:-2] + struct.pack("<H", len(shifted)) + shifted
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["payload.pkl"]
    found = plan(data)
    assert {"zip-multiple-end-records", "zip-data-before-first-member"} <= codes(found)
    (f,) = [f for f in found.findings if f.code == "zip-data-before-first-member"]
    assert "another archive" in f.message


def test_overlapping_members():
    data = zip_bytes([M("a.bin", b"x" * 100), M("b.bin", b"y" * 100, offset=0)])
    # b's central record points at a's local header: a name mismatch and an overlap
    found = plan(data)
    assert {"zip-overlapping-members", "zip-local-name-mismatch"} <= codes(found)


def test_member_overlapping_the_directory():
    m = M("a.bin", b"x" * 10, raw=b"x" * 10)
    data = zip_bytes([m])
    # the member claims more bytes than it has: they run into the central directory
    cd = data.index(b"PK\x01\x02")
    patched = bytearray(data)
    struct.pack_into("<II", patched, cd + 20, 40, 40)
    struct.pack_into("<II", patched, 18, 40, 40)
    found = plan(bytes(patched))
    assert "zip-member-overlaps-directory" in codes(found)


def test_member_out_of_bounds():
    data = bytearray(zip_bytes([M("a.bin", b"x" * 10)]))
    cd = data.index(b"PK\x01\x02")
    struct.pack_into("<II", data, cd + 20, 10**6, 10**6)
    struct.pack_into("<II", data, 18, 10**6, 10**6)
    assert "zip-member-out-of-bounds" in codes(plan(bytes(data)))


def test_entry_count_mismatch():
    data = zip_bytes([M("a", b"1"), M("b", b"2")], count=1)
    assert "zip-entry-count-mismatch" in codes(plan(data))


def test_no_end_record_and_malformed_directory():
    assert codes(plan(b"PK\x03\x04" + b"\0" * 100)) == {"zip-no-end-record"}
    data = bytearray(zip_bytes([M("a", b"1")]))
    cd = data.index(b"PK\x01\x02")
    data[cd : cd + 4] = b"XXXX"
    assert "zip-directory-malformed" in codes(plan(bytes(data)))


def test_zip64_records():
    base = zip_bytes([M("a.txt", b"hello"), M("b.txt", b"world")])
    good = to_zip64(base)
    assert zipfile.ZipFile(io.BytesIO(good)).namelist() == ["a.txt", "b.txt"]
    assert plan(good).findings == []
    assert "zip-entry-count-mismatch" in codes(plan(to_zip64(base, total=5)))
    # the end record's own values, when not the zip64 sentinels, must agree
    patched = bytearray(good)
    struct.pack_into("<H", patched, len(good) - 22 + 10, 7)
    assert "zip-zip64-inconsistent" in codes(plan(bytes(patched)))
    # a locator pointing elsewhere
    patched = bytearray(good)
    struct.pack_into("<Q", patched, len(good) - 22 - 20 + 8, 3)
    assert "zip-zip64-inconsistent" in codes(plan(bytes(patched)))


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil.pkl", "zip-name-traversal"),
        ("a/../../evil", "zip-name-traversal"),
        ("/etc/passwd", "zip-name-absolute"),
        ("C:/Windows/x.dll", "zip-name-absolute"),
        (b"a\\..\\evil", "zip-name-backslash"),
        ("a\x00b", "zip-name-control"),
        ("model\u202egnp.exe", "zip-name-control"),
        ("", "zip-name-empty"),
    ],
)
def test_unsafe_member_names(name, code):
    utf8 = isinstance(name, str) and not name.isascii()
    found = plan(zip_bytes([M(name, b"x", flags=0x800 if utf8 else 0)]))
    assert code in codes(found)
    for f in found.findings:
        assert f.message.isprintable() and (f.member is None or f.member.isprintable())


def test_backslash_traversal_is_both():
    assert {"zip-name-backslash", "zip-name-traversal"} <= codes(
        plan(zip_bytes([M(b"..\\evil", b"x")]))
    )


def test_name_flagged_utf8_but_not():
    assert "zip-name-encoding" in codes(plan(zip_bytes([M(b"\xff\xfe.txt", b"x", flags=0x800)])))


def test_unicode_path_field_naming_another_name():
    alt = b"safe.txt"
    extra = struct.pack("<HHB", 0x7075, 5 + len(alt), 1) + struct.pack("<I", 0) + alt
    found = plan(zip_bytes([M("evil.pkl", b"x", extra=extra)]))
    assert "zip-name-ambiguous" in codes(found)


def test_duplicate_member_names():
    data = zip_bytes([M("archive/data.pkl", b"\x80\x02N."), M("archive/data.pkl", SYSTEM)])
    found = plan(data, "pytorch-zip")
    assert "zip-duplicate-name" in codes(found)
    # both are scanned, whichever a reader picks
    assert [s[1] for s in found.scans] == ["archive/data.pkl", "archive/data.pkl"]


def test_findings_of_one_code_are_capped():
    data = zip_bytes([M(f"../x{i}", b"") for i in range(300)])
    found = plan(data)
    listed = [f for f in found.findings if f.code == "zip-name-traversal"]
    assert len(listed) == _archive.MAX_PER_CODE + 1
    assert "280 more" in listed[-1].message


# ---------------------------------------------------------------- members by content


def test_pickle_member_is_found_by_content_whatever_its_name():
    for method in (0, 8):
        for payload in (pickle.dumps({"a": 1}, protocol=4), SYSTEM, pickle.dumps([1], 0)):
            data = zip_bytes([M("data.bin", payload, method=method), M("readme.txt", b"hi")])
            found = plan(data)
            assert found.findings == []
            assert found.scans == [("pickle", "data.bin", "pickle")], (method, payload)


def test_pickle_behind_a_large_argument_is_found_in_a_stored_member():
    # protocol 0 (no PROTO): a 100 kB string first, then the call
    payload = b"(S'" + b"a" * 100_000 + b"'\np0\n0" + SYSTEM
    found = plan(zip_bytes([M("weights.bin", payload)]))
    assert found.scans == [("pickle", "weights.bin", "pickle")]


def test_non_pickles_are_not_scanned():
    members = [
        M("a.txt", b"plain text\n" * 50),
        M("b.json", b'{"a": [1, 2]}'),
        M("c.bin", bytes(range(256)) * 20, method=8),
        M("d.bin", b"\0" * 5000),
    ]
    found = plan(zip_bytes(members))
    assert found.findings == [] and found.scans == []


def test_legacy_torch_file_in_a_zip_is_scanned_as_one():
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    found = plan(zip_bytes([M("old.pt", magic + pickle.dumps(1001, protocol=2))]))
    assert found.scans == [("pickle", "old.pt", "pytorch-legacy")]


def test_pickle_disguised_as_a_storage():
    data = zip_bytes(torch_members(storage=pickle.dumps({"a": 1}, protocol=2)))
    found = plan(data, "pytorch-zip")
    (f,) = found.findings
    assert f.code == "zip-storage-pickle" and f.member == "archive/data/0"
    assert ("pickle", "archive/data/0", "pickle") in found.scans
    # protocol 0, no PROTO opcode
    found = plan(zip_bytes(torch_members(storage=SYSTEM)), "pytorch-zip")
    assert codes(found) == {"zip-storage-pickle"}


def test_storages_of_tensor_bytes_pass():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float16, np.int64, np.uint8):
        raw = (rng.standard_normal(4096) * 100).astype(dtype).tobytes()
        found = plan(zip_bytes(torch_members(storage=raw)), "pytorch-zip")
        assert found.findings == [], dtype
        assert len(found.scans) == 1


def test_storage_rules():
    members = torch_members()
    members[2] = M("archive/data/0", b"\0" * 64, method=8)
    assert codes(plan(zip_bytes(members), "pytorch-zip")) == {"zip-storage-compressed"}
    members = torch_members()
    members[2] = miniz("archive/data/weights", b"\0" * 64)
    assert codes(plan(zip_bytes(members), "pytorch-zip")) == {"zip-storage-name"}
    members = torch_members()
    members[2] = miniz("archive/data/0", zip_bytes([M("x", b"y")]))
    assert "zip-storage-archive" in codes(plan(zip_bytes(members), "pytorch-zip"))


def test_torch_pickles_in_two_folders():
    members = [*torch_members(), miniz("other/data.pkl", SYSTEM)]
    found = plan(zip_bytes(members), "pytorch-zip")
    assert "zip-torch-ambiguous" in codes(found)
    assert ("pickle", "other/data.pkl", "pytorch-zip") in found.scans


def test_code_members_are_reported():
    members = [
        *torch_members(),
        miniz("archive/code/__torch__/model.py", b"def forward(self): pass"),
    ]
    found = plan(zip_bytes(members), "pytorch-zip")
    (f,) = found.findings
    assert (f.code, f.severity) == ("zip-code-member", "warning")


def test_nested_zip_is_examined_one_level():
    inner = zip_bytes([M("../evil", b"x"), M("payload.bin", SYSTEM)])
    for method in (0, 8):
        found = plan(zip_bytes([M("readme.txt", b"hi"), M("inner.zip", inner, method=method)]))
        assert {"zip-nested-archive", "zip-name-traversal"} <= codes(found)
        (f,) = [f for f in found.findings if f.code == "zip-name-traversal"]
        assert f.member == "inner.zip!/../evil"
        assert found.scans == [("pickle", "inner.zip!/payload.bin", "pickle")]


def test_nested_torch_zip_keeps_its_format():
    inner = zip_bytes(torch_members())
    found = plan(zip_bytes([M("model/pytorch_model.bin", inner)]))
    assert codes(found) == {"zip-nested-archive"}
    assert found.scans == [("pickle", "model/pytorch_model.bin!/archive/data.pkl", "pytorch-zip")]


def test_nesting_stops_after_one_level():
    third = zip_bytes([M("../deep", b"x")])
    second = zip_bytes([M("third.zip", third)])
    found = plan(zip_bytes([M("second.zip", second)]))
    nested = [f for f in found.findings if f.code == "zip-nested-archive"]
    assert len(nested) == 2 and "nested twice" in nested[1].message
    assert "zip-name-traversal" not in codes(found)


def test_nested_zip_with_a_wrong_crc():
    inner = zip_bytes([M("a", b"b")])
    found = plan(zip_bytes([M("inner.zip", inner, crc=1)]))
    assert "zip-crc-mismatch" in codes(found)


def test_other_nested_archives_are_reported():
    import gzip
    import tarfile

    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("x.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    for data in (gzip.compress(b"hello" * 100), gzip.compress(SYSTEM), tar.getvalue()):
        found = plan(zip_bytes([M("blob", data)]))
        assert codes(found) == {"zip-nested-archive"}, data[:10]
        assert found.scans == []


def test_deflated_member_that_does_not_inflate():
    found = plan(zip_bytes([M("a.bin", b"x" * 100, method=8, raw=b"\xff" * 50)]))
    assert "zip-member-corrupt" in codes(found)


# ---------------------------------------------------------------- npz


def npz_with(members: list[tuple[str, bytes]], method: int = 0) -> bytes:
    return zip_bytes([M(n, d, method=method) for n, d in members])


def test_npz_with_an_object_array_that_calls_os_system(tmp_path):
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    evil = npy_bytes(header.ljust(117) + "\n", SYSTEM)
    data = npz_with([("ok.npy", npy_bytes_of(np.zeros(3))), ("evil.npy", evil)])
    found = plan(data, "npz")
    assert [(f.code, f.severity, f.member) for f in found.findings] == [
        ("npy-object-dtype", "info", "evil.npy")
    ]
    assert found.scans == [("pickle", "evil.npy", "npz")]


@needs_scanner
def test_npz_with_an_object_array_that_calls_os_system_is_flagged(tmp_path):
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    evil = npy_bytes(header.ljust(117) + "\n", SYSTEM)
    for method in (0, 8):
        p = tmp_path / f"evil{method}.npz"
        p.write_bytes(npz_with([("ok.npy", npy_bytes_of(np.zeros(3))), ("evil.npy", evil)], method))
        fmt, found = check_file(p)
        assert fmt == "npz"
        bad = [f for f in errors(found) if f.code.startswith("pickle-")]
        assert bad and all(f.member == "evil.npy" for f in bad)
        assert any("os" in f.message and "system" in f.message for f in bad)


@needs_scanner
def test_real_npz_with_an_object_array_passes_end_to_end(tmp_path):
    p = tmp_path / "objects.npz"
    np.savez(p, a=np.array([1, "two", None], dtype=object), b=np.zeros(2))
    fmt, found = check_file(p)
    assert fmt == "npz"
    assert errors(found) == []


def npy_bytes_of(a: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_npz_member_headers_are_checked():
    lying = bytearray(npy_bytes_of(np.zeros((4, 4))))
    lying[: lying.index(b"\n") + 1] = lying[: lying.index(b"\n") + 1].replace(b"(4, 4)", b"(9, 4)")
    data = npz_with([("a.npy", bytes(lying)), ("b.npy", b"\x93NUMPY\x01\x00\xff")], method=8)
    found = plan(data, "npz")
    assert {"npy-size-mismatch", "npy-header-truncated"} <= codes(found)
    assert {f.member for f in found.findings} == {"a.npy", "b.npy"}


def test_npz_member_that_is_not_an_array_is_classified():
    found = plan(npz_with([("a.npy", pickle.dumps({"x": 1}, protocol=4))]), "npz")
    assert found.scans == [("pickle", "a.npy", "pickle")]


# ---------------------------------------------------------------- .npy


def test_npy_with_object_dtype(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.array([1, "x", {"k": None}], dtype=object), allow_pickle=True)
    found = plan_npy(p.read_bytes())
    assert [(f.code, f.severity) for f in found.findings] == [("npy-object-dtype", "info")]
    assert found.scans == [("pickle", None, "numpy")]
    # a structured dtype with one object field is pickled whole
    p = tmp_path / "s.npy"
    np.save(p, np.zeros(2, dtype=[("a", "<i4"), ("o", "O")]), allow_pickle=True)
    assert plan_npy(p.read_bytes()).scans == [("pickle", None, "numpy")]


@needs_scanner
def test_npy_object_dtype_end_to_end(tmp_path):
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    p = tmp_path / "evil.npy"
    p.write_bytes(npy_bytes(header.ljust(117) + "\n", SYSTEM))
    fmt, found = check_file(p)
    assert fmt == "numpy"
    assert any(f.code.startswith("pickle-") and f.severity == "error" for f in found)
    # trailing data after the pickle is a finding (one pickle expected)
    p.write_bytes(npy_bytes(header.ljust(117) + "\n", b"\x80\x02N." + b"junk"))
    assert errors(check_file(p)[1])
    p = tmp_path / "benign.npy"
    np.save(p, np.array([1, "x", None], dtype=object), allow_pickle=True)
    assert errors(check_file(p)[1]) == []


def test_npy_header_lying_about_shape(tmp_path):
    good = npy_bytes_of(np.zeros((4, 4), dtype=np.float32))
    end = good.index(b"\n") + 1
    for shape, trailer, note in (
        (b"(5, 4)", b"", "data missing"),
        (b"(2, 4)", b"", "trailing data"),
        (b"(4, 4)", b"extra", "trailing data"),
    ):
        data = good[:end].replace(b"(4, 4)", shape) + good[end:] + trailer
        found = plan_npy(data)
        (f,) = found.findings
        assert f.code == "npy-size-mismatch" and note in f.message
        assert f.offset == end
        p = tmp_path / "lying.npy"
        p.write_bytes(data)
        assert [x.code for x in check_file(p)[1]] == ["npy-size-mismatch"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", b"1234", (4, 0)
            ),
            "npy-version",
        ),
        (
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", b"1234", (1, 1)
            ),
            "npy-version",
        ),
        (npy_bytes(" " * 20_000, version=(2, 0)), "npy-header-too-large"),
        (b"\x93NUMPY\x01\x00\x50\x00{'descr'", "npy-header-truncated"),
        (
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n"[:-3]),
            "npy-header-malformed",
        ),
        (npy_bytes("__import__('os').system('x')\n"), "npy-header-malformed"),
        (
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", b"1234"),
            "npy-header-malformed",
        ),
        (
            npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}\n", b"1234"),
            "npy-header-malformed",
        ),
        (
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n", b"1234"),
            "npy-header-malformed",
        ),
        (
            npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}\n", b"1234"),
            "npy-header-malformed",
        ),
        (
            npy_bytes("{'descr': 'float32', 'fortran_order': False, 'shape': (1,)}\n", b"1234"),
            "npy-dtype-unrecognised",
        ),
        (
            npy_bytes("{'descr': '<f3', 'fortran_order': False, 'shape': (1,)}\n", b"123"),
            "npy-dtype-unrecognised",
        ),
    ],
)
def test_npy_headers_numpy_would_not_write(data, code):
    assert [f.code for f in plan_npy(data).findings] == [code]


def test_npy_unparseable_header_is_never_scanned_as_a_pickle():
    found = plan_npy(npy_bytes("{'descr': |O}\n", SYSTEM))
    assert codes(found) == {"npy-header-malformed"} and found.scans == []


def test_npy_object_field_spelled_in_other_ways():
    for descr in ("'O'", "'|O8'", "[('a', '<i4'), ('b', [('c', '|O')])]", "[('a', ('|O', (2,)))]"):
        header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}\n"
        found = plan_npy(npy_bytes(header, b"\x80\x02N."))
        assert found.scans == [("pickle", None, "numpy")], descr


def test_npy_item_sizes_agree_with_numpy():
    for dt in (
        "<f2",
        "<f8",
        "|b1",
        "<U7",
        "|S3",
        "|V5",
        "<M8[ns]",
        "<m8[s]",
        "<c16",
        "<u4",
        [("a", "<i2"), ("b", "<f4", (3, 2))],
        [(("t", "a"), "<i8")],
    ):
        assert _archive._itemsize(dt) == np.dtype(dt).itemsize, dt
        assert _archive._itemsize(np.dtype(dt).descr if isinstance(dt, list) else dt) is not None


# ---------------------------------------------------------------- bounds


def zeros_deflated(total: int) -> bytes:
    """A raw deflate stream of ``total`` zero bytes (a multiple of 1 MiB), built without
    compressing them all: one fully flushed 1 MiB segment, repeated."""
    block = 1 << 20
    segment = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = segment.compress(bytes(block)) + segment.flush(zlib.Z_FULL_FLUSH)
    two = segment.compress(bytes(block)) + segment.flush(zlib.Z_FULL_FLUSH)
    assert one == two
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    return one * (total // block) + end


def test_zeros_deflated_is_what_it_says():
    stream = zeros_deflated(5 << 20)
    assert zlib.decompress(stream, -15) == bytes(5 << 20)


def _timed(fn: Any, limit: float, *, memory: bool = True) -> Any:
    """fn() within ``limit`` seconds; its result and the peak of Python memory it used
    (tracemalloc slows allocation-heavy code severalfold: ``memory=False`` for those)."""
    if memory:
        tracemalloc.start()
    t0 = time.monotonic()
    try:
        result = fn()
        elapsed = time.monotonic() - t0
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
    finally:
        if memory:
            tracemalloc.stop()
    assert elapsed < limit, f"{elapsed:.1f} s"
    return result, peak


def test_zip_bomb_declared(tmp_path):
    total = 10 << 30
    raw = zeros_deflated(total)
    z64 = struct.pack("<HHQ", 1, 8, total)
    m = M("payload.bin", method=8, raw=raw, crc=0, usize=0xFFFFFFFF, extra=z64, local_extra=z64)
    p = tmp_path / "bomb.zip"
    p.write_bytes(zip_bytes([m]))
    (fmt, found), peak = _timed(lambda: check_file(p), 5)
    assert fmt == "zip"
    (f,) = [f for f in found if f.code == "zip-bomb"]
    assert str(total) in f.message and f.member == "payload.bin"
    assert peak < 32 << 20


def test_zip_bomb_lying_about_its_size(tmp_path):
    raw = zeros_deflated(10 << 30)
    for name, fmt in (("archive/data.pkl", "pytorch-zip"), ("payload.bin", "zip")):
        p = tmp_path / "liar.zip"
        p.write_bytes(zip_bytes([M(name, method=8, raw=raw, crc=0, usize=1000)]))
        (got, found), peak = _timed(lambda p=p: check_file(p), 5)
        assert got == fmt
        assert "zip-size-mismatch" in {f.code for f in found}
        assert peak < 32 << 20
        # declared small, it is no bomb by its sizes: the lie is the finding
        assert "zip-bomb" not in {f.code for f in found}


def test_member_too_large_to_scan_is_said_not_inflated():
    size = _archive.MAX_MEMBER + (1 << 20)
    raw = zeros_deflated(size)
    data = zip_bytes([M("archive/data.pkl", method=8, raw=raw, crc=0, usize=size)])

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n] if offset >= 0 and n > 0 else b""

    found, _ = _timed(
        lambda: _archive.examine_zip(
            read, len(data), file="t", fmt="pytorch-zip", options=OPTIONS, scan=True
        ),
        5,
    )
    assert "zip-member-too-large" in codes(found)


def test_a_hundred_thousand_entries_are_bounded(tmp_path):
    n = 100_000
    data = to_zip64(zip_bytes([M(f"f{i}", b"") for i in range(n)], count=0xFFFF), total=n)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == n
    p = tmp_path / "many.zip"
    p.write_bytes(data)
    (fmt, found), _ = _timed(lambda: check_file(p), 15, memory=False)
    assert fmt == "zip"
    (f,) = [f for f in found if f.code == "zip-too-many-entries"]
    assert str(_archive.MAX_ENTRIES) in f.message
    assert "zip-data-between-members" not in {f.code for f in found}


def test_many_members_with_heads_are_bounded():
    members = [M(f"m{i}.bin", b"\x01" * 5000) for i in range(3000)]
    data = zip_bytes(members)
    found, _ = _timed(lambda: plan(data), 10, memory=False)
    assert found.findings == []


@pytest.mark.parametrize("fill", [b"N", b"P", b"V", b")0"])
def test_members_that_walk_like_pickle_opcodes_are_bounded(fill):
    """Heads of valid opcodes make the classifying walk long: its cost is budgeted, and
    whatever the budget leaves unexamined is said."""
    data = zip_bytes([M(f"m{i}.bin", fill * 40_000) for i in range(3000)])
    found, _ = _timed(lambda: plan(data), 15, memory=False)
    assert found.scans or "zip-members-not-examined" in codes(found)
    storages = [miniz(f"archive/data/{i}", fill * 4096) for i in range(1, 20_000)]
    data = zip_bytes([*torch_members(), *storages])
    found, _ = _timed(lambda: plan(data, "pytorch-zip"), 15, memory=False)
    assert codes(found) <= {"zip-storage-pickle", "zip-members-not-examined"}
    # a few disguised storages are scanned besides data.pkl; the others are reported
    assert len(found.scans) == 1 + _archive.MAX_STORAGE_SCANS


def test_random_bytes_never_raise():
    import random

    rng = random.Random(10)
    base = zip_bytes([*torch_members(), M("x.npy", npy_bytes_of(np.zeros(3)), method=8)])
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.choice([len(data), rng.randrange(len(data))])
        for fmt in ("pytorch-zip", "zip", "npz"):
            plan(bytes(data[:cut]), fmt)
        plan_npy(bytes(data[:cut]))
