"""Hostile files found by a security review of ``provenance scan`` (issue 10).

Each file is built here, byte by byte, and never loaded; each test names
the loader the file would harm and checks that the scan does not call it
clean.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from pathlib import Path

import pytest

from provenance.formats._scan import ScannedFile, ScanOptions, _scan_file

# pickle.load of this runs `echo pwned` (never loaded here)
PAYLOAD = b"cos\nsystem\n(S'echo pwned'\ntR."


def scanned(tmp_path: Path, name: str, data: bytes) -> ScannedFile:
    path = tmp_path / name
    path.write_bytes(data)
    return _scan_file(str(path), name, ScanOptions())


def errors(got: ScannedFile) -> set[str]:
    return {f.code for f in got.findings if f.severity == "error"}


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _gzip_trailer(data: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(data), len(data))


# -- compressed pickles whose inflated start detection never saw
# (gzip.open / bz2.open / lzma.open / joblib.load read them whole)


def _long_extra_gzip() -> bytes:
    head = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", 0xFFFF) + b"A" * 0xFFFF
    return head + _deflate(PAYLOAD) + _gzip_trailer(PAYLOAD)


def _long_name_gzip() -> bytes:
    head = b"\x1f\x8b\x08\x08\0\0\0\0\0\xff" + b"n" * 100_000 + b"\0"
    return head + _deflate(PAYLOAD) + _gzip_trailer(PAYLOAD)


def _huge_dictionary_lzma() -> bytes:
    raw = lzma.compress(PAYLOAD, format=lzma.FORMAT_ALONE)
    return raw[:1] + (0xFFFFFFFF).to_bytes(4, "little") + raw[5:]


def _empty_stored_blocks_zlib() -> bytes:
    # 70 KB of empty stored deflate blocks, then the pickle: joblib's zlib reader inflates it
    blocks = b"\x00\x00\x00\xff\xff" * 14_000
    return b"\x78\x9c" + blocks + _deflate(PAYLOAD) + zlib.adler32(PAYLOAD).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("empty-first-member.gz", lambda: gzip.compress(b"") + gzip.compress(PAYLOAD)),
        ("long-extra.gz", _long_extra_gzip),
        ("long-name.gz", _long_name_gzip),
        ("empty-first-stream.bz2", lambda: bz2.compress(b"") + bz2.compress(PAYLOAD)),
        ("empty-first-stream.xz", lambda: lzma.compress(b"") + lzma.compress(PAYLOAD)),
        ("huge-dictionary.lzma", _huge_dictionary_lzma),
        ("stored-blocks.z", _empty_stored_blocks_zlib),
    ],
)
def test_compressed_pickle_past_the_examined_start_is_not_clean(tmp_path, name, make):
    data = make()
    got = scanned(tmp_path, name, data)
    assert got.pickle_based
    assert errors(got) & {"pickle-compressed", "pickle-not-ruled-out"}, got


def test_empty_and_plain_compressed_files_stay_clean(tmp_path):
    for name, data in [
        ("empty.gz", gzip.compress(b"")),
        ("readme.gz", gzip.compress(b"hello\n" * 100)),
        ("two.gz", gzip.compress(b"hello\n") + gzip.compress(b"world\n")),
    ]:
        got = scanned(tmp_path, name, data)
        assert not got.pickle_based and not errors(got), got


# -- .npy headers: escapes in the dtype string mean what literal_eval makes of them


def _npy(header: str, body: bytes) -> bytes:
    raw = header.encode("latin-1")
    raw += b" " * (64 - (10 + len(raw) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + body


@pytest.mark.parametrize(
    "descr", [r"'\x4f'", r"'\117'", r"'\u004f'", r"'|\x4f'", r"[('a', '\x4f')]"]
)
def test_npy_object_dtype_spelled_with_escapes_is_pickle_based(tmp_path, descr):
    # numpy.load(allow_pickle=True) reads dtype('O') and unpickles the rest
    data = _npy("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }", PAYLOAD)
    got = scanned(tmp_path, "a.npy", data)
    assert got.pickle_based, got
    assert "pickle-global-denied" in errors(got), got
    from provenance.formats._npy import npy_header

    assert npy_header(data)[1]


# -- ONNX detected by content: onnx.load("model.pb") reads external data whatever the name


def test_onnx_model_not_named_onnx_has_its_external_data_checked(tmp_path):
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from onnx import TensorProto, helper, numpy_helper

    from provenance.formats import scan

    t = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    for key, value in {"location": "../../../../etc/passwd", "length": "16"}.items():
        e = t.external_data.add()
        e.key, e.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [t],
    )
    (tmp_path / "model.pb").write_bytes(helper.make_model(graph).SerializeToString())
    assert onnx.load(str(tmp_path / "model.pb"), load_external_data=False).graph.initializer
    report = scan(tmp_path)
    assert [f.format for f in report.files] == ["onnx"]
    assert "onnx-external-location" in {f.code for f in report.findings}
    assert not report.ok
