"""Hostile files found by a security review of ``provenance scan`` (issue 10).

Each file is built here, byte by byte, and never loaded; each test names
the loader the file would harm and checks that the scan does not call it
clean.
"""

from __future__ import annotations

import bz2
import gzip
import json
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


# -- zip archives that do not start as one: zipfile finds them from the end
# (Keras loads any .keras that zipfile opens; a self-extracting stub works so)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    return buf.getvalue()


_LAMBDA_CONFIG = (
    b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", '
    b'"config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAA="}}}}]}}'
)
_KERAS = {"config.json": _LAMBDA_CONFIG, "metadata.json": b"{}", "model.weights.h5": b""}
_TORCH = {"archive/data.pkl": b"\x80\x02" + PAYLOAD, "archive/version": b"3\n"}


@pytest.mark.parametrize(
    "prefix",
    [b"\0" * 64, b"JUNK" * 10, b'{"hello": 1}\n', b"#!/bin/sh\nexit 0\n"],
    ids=["zeros", "junk", "json", "script"],
)
@pytest.mark.parametrize("members", [_KERAS, _TORCH], ids=["keras-lambda", "torch-pickle"])
def test_zip_after_a_prefix_is_scanned_as_the_zip_it_opens_as(tmp_path, prefix, members):
    import zipfile

    data = prefix + _zip_bytes(members)
    got = scanned(tmp_path, "model.keras", data)
    assert zipfile.ZipFile(tmp_path / "model.keras").namelist() == list(members)
    assert got.format in {"keras", "pytorch-zip"}
    assert "zip-data-before-first-member" in errors(got)
    expected = "keras-lambda-layer" if members is _KERAS else "pickle-global-denied"
    assert expected in errors(got)


def test_zip_appended_with_its_offsets_corrected_is_found_too(tmp_path):
    # What `zip -A` does to a self-extracting archive: every offset moved by the stub.
    stub = b"#!/bin/sh\nexit 0\n"
    archive = bytearray(_zip_bytes(_KERAS))
    end = archive.rfind(b"PK\x05\x06")
    count, _cd_size, cd_offset = struct.unpack_from("<HII", archive, end + 10)
    struct.pack_into("<I", archive, end + 16, cd_offset + len(stub))
    pos = cd_offset
    for _ in range(count):
        (local,) = struct.unpack_from("<I", archive, pos + 42)
        struct.pack_into("<I", archive, pos + 42, local + len(stub))
        n, m, k = struct.unpack_from("<HHH", archive, pos + 28)
        pos += 46 + n + m + k
    got = scanned(tmp_path, "model.keras", stub + bytes(archive))
    assert got.format == "keras"
    assert "keras-lambda-layer" in errors(got)


def test_a_known_format_that_is_also_a_zip_is_a_polyglot(tmp_path):
    gguf = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    got = scanned(tmp_path, "model.gguf", gguf + _zip_bytes(_KERAS))
    assert got.format == "gguf"
    assert {"format-polyglot", "keras-lambda-layer"} <= errors(got)


def test_plain_files_ending_in_zip_like_bytes_stay_what_they_are(tmp_path):
    # An end record with no directory behind it is not an archive zipfile opens.
    got = scanned(tmp_path, "notes.txt", b"hello\n" + b"PK\x05\x06" + b"\0" * 18)
    assert got.format != "zip"
    assert not errors(got)
    gguf = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    assert "format-polyglot" not in errors(scanned(tmp_path, "m.gguf", gguf))


# -- pickles the detection walker must read as the C unpickler does


@pytest.mark.parametrize(
    "prefix",
    [b"F1\x00junk\n0", b"I1\x00junk\n0", b"L1\x00junk\n0", b"I\x0c1\n0", b"I\x0b7\n0"],
    ids=["float-nul", "int-nul", "long-nul", "int-formfeed", "int-vtab"],
)
def test_numeric_lines_end_at_nul_and_skip_c_whitespace(tmp_path, prefix):
    # pickle.load reads the number up to the NUL (or past \v, \f), then runs os.system
    got = scanned(tmp_path, "model.bin", prefix + PAYLOAD)
    assert got.format == "pickle"
    assert errors(got)


def test_mutating_an_imported_object_counts_as_a_call(tmp_path):
    # sys.path_hooks.append(os.system), then an invalid byte: the load fails, the hook stays
    data = b"csys\npath_hooks\ncos\nsystem\na" + b"\xff"
    got = scanned(tmp_path, "model.bin", data)
    assert got.format == "pickle"
    assert "pickle-global-denied" in errors(got)


def test_plain_mutations_without_an_import_stay_data(tmp_path):
    # ]I1\na then an invalid byte: a list append on a fresh list calls nothing
    got = scanned(tmp_path, "notes.bin", b"]I1\na\xff")
    assert got.format != "pickle"


def test_torch_finds_its_pickle_whatever_its_case(tmp_path):
    zipped = _zip_bytes({"archive/version": b"3\n", "archive/Data.pkl": b"\x80\x02" + PAYLOAD})
    got = scanned(tmp_path, "model.pt", zipped)
    assert got.format == "pytorch-zip"
    assert "pickle-global-denied" in errors(got)


# ---------------------------------------------------------------- review of 2026-12-03


def test_long_dotted_global_past_the_budget_is_a_pickle(tmp_path):
    # protocol 4 resolves a dotted name of any length: length is no accident
    name = b"eval.__self__." * 8000 + b"exec"
    data = b"N0\x80\x04cbuiltins\n" + name + b"\n(S'print(1)'\ntR."
    got = scanned(tmp_path, "model.pkl", data)
    assert got.format == "pickle" and errors(got)


def test_import_alone_is_a_pickle_outside_text(tmp_path):
    # importing a module runs it (`this` prints; a shipped .so runs machine code)
    got = scanned(tmp_path, "zen.pkl", b"cthis\nx\n\xff")
    assert got.format == "pickle" and errors(got)
    assert scanned(tmp_path, "data.bin", b"cthis\nx\n\xff\x00").format == "pickle"


def test_text_whose_lines_read_as_an_import_stays_text(tmp_path):
    assert scanned(tmp_path, "vocab.txt", b"cat\ndog\nbird\n").format == "text"


def _safetensors_pickle_polyglot() -> bytes:
    """A valid safetensors file that pickle.load runs (never loaded here).

    The header length's low byte is 'B' (BINBYTES): its 4-byte count skips
    the zero bytes and the '{' into a ``__metadata__`` string, where
    SHORT_BINBYTES hops ('C' + a printable length) cross the rest of the
    header into the tensor bytes, which hold the pickle.
    """
    tensor = PAYLOAD + b"\0" * (64 - len(PAYLOAD) % 64)
    spec = {"w": {"dtype": "U8", "shape": [len(tensor)], "data_offsets": [0, len(tensor)]}}
    rest = '"},' + json.dumps(spec, separators=(",", ":"))[1:]
    prefix = '{"__metadata__":{"p":"'
    printable = [c for c in range(0x23, 0x7F) if c != 0x5C]
    length = 0x1042
    while 5 + (length >> 8) - 8 < len(prefix):
        length += 256
    pos = 5 + (length >> 8) - 8  # where, in the header, the unpickler resumes
    text = prefix + "a" * (pos - len(prefix))
    while True:
        remaining = length - pos - 2
        if len(text) + 2 + len(rest) <= length and remaining in printable:
            text += "C" + chr(remaining)
            break
        n = 0x7E if remaining - 0x7E >= len(rest) + 2 + 0x23 else 0x23
        text += "C" + chr(n) + "a" * n
        pos += 2 + n
    header = (text + rest).ljust(length).encode()
    return struct.pack("<Q", length) + header + tensor


def test_safetensors_header_that_is_also_a_pickle_is_not_safetensors(tmp_path):
    from safetensors.numpy import load_file

    data = _safetensors_pickle_polyglot()
    (tmp_path / "check.safetensors").write_bytes(data)
    assert list(load_file(tmp_path / "check.safetensors")) == ["w"]  # safetensors takes it
    got = scanned(tmp_path, "pytorch_model.bin", data)
    assert got.format == "pickle" and got.pickle_based and errors(got)


def test_safetensors_whose_length_reads_as_proto_stays_safetensors(tmp_path):
    import numpy as np
    from safetensors.numpy import save

    for n in range(1, 40):
        data = save({"w" * n: np.zeros(3, dtype=np.float32)})
        got = scanned(tmp_path, "m.safetensors", data)
        assert got.format == "safetensors", (n, data[:8])


def test_legacy_torch_tar_with_its_members_past_the_head(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in (("README", b"x" * 70_000), ("storages", PAYLOAD), ("pickle", PAYLOAD)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    got = scanned(tmp_path, "model.pt", buf.getvalue())
    assert got.format == "pytorch-legacy" and "pickle-legacy-tar" in errors(got)


def test_plain_tar_stays_a_tar(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    got = scanned(tmp_path, "a.tar", buf.getvalue())
    assert got.format == "tar" and not errors(got)
