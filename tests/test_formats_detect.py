"""provenance.formats: detection by content, on real files built here.

Pickles come from ``pickle.dumps``, zips and tars from ``zipfile`` and
``tarfile`` (or by hand where a hostile layout is the point), ``.npy`` and
safetensors bytes are written by hand from their specifications (neither
numpy nor safetensors is a dependency). Crafted pickles that would run a
command are only ever written, never loaded.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import random
import struct
import tarfile
import threading
import time
import warnings
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import pytest

from provenance.errors import InputError
from provenance.formats import FORMATS, PICKLE_BASED, Detected, detect, detect_fd
from provenance.formats import _detect as detect_module

HEAD = detect_module.HEAD


def check(path: Path) -> Detected:
    """detect(path), with the invariants every answer keeps, and the same answer from a fd."""
    found = detect(path)
    assert found.format in FORMATS, found
    if found.format in PICKLE_BASED:
        assert found.pickle_based, found
    fd = os.open(path, os.O_RDONLY)
    try:
        assert detect_fd(fd, os.fstat(fd).st_size, path.name) == found
    finally:
        os.close(fd)
    return found


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every os.pread's length, as detection reads."""
    sizes: list[int] = []
    real = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting)
    return sizes


# ---------------------------------------------------------------- the public surface


def test_formats_are_the_documented_names():
    assert set(FORMATS) == {
        "safetensors",
        "pickle",
        "pytorch-zip",
        "pytorch-legacy",
        "numpy",
        "npz",
        "gguf",
        "onnx",
        "keras",
        "hdf5",
        "tflite",
        "zip",
        "tar",
        "gzip",
        "json",
        "text",
        "unknown",
    }
    assert len(FORMATS) == len(set(FORMATS))
    assert {"pickle", "pytorch-zip", "pytorch-legacy"} == PICKLE_BASED
    assert set(FORMATS) >= PICKLE_BASED


def test_detected_is_frozen():
    d = Detected("text", False, None)
    with pytest.raises(AttributeError):
        d.format = "pickle"  # type: ignore[misc]


# ---------------------------------------------------------------- pickles


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x


PAYLOAD = {"weights": [1.5, 2.5], "name": "layer", "raw": b"\x00\x01", "n": 12345678901234567890}


@pytest.mark.parametrize("protocol", range(6))
def test_real_pickles_every_protocol(tmp_path, protocol):
    found = check(put(tmp_path, "model.bin", pickle.dumps(PAYLOAD, protocol=protocol)))
    assert found.format == "pickle"
    assert found.pickle_based
    if protocol >= 2:
        assert found.detail == f"pickle protocol {protocol}"
    else:
        assert found.detail == "pickle protocol 0 or 1"


@pytest.mark.parametrize("protocol", [0, 1])
def test_low_protocol_pickles_of_objects(tmp_path, protocol):
    # GLOBAL, REDUCE, BUILD, INST-free object pickles, memo PUT/GET and marks
    obj = [OrderedDict(a=1), _Point(3), {"k": (1, 2, 3)}, frozenset({1}), 2.5, "é"]
    data = pickle.dumps([obj, obj], protocol=protocol)
    assert check(put(tmp_path, "obj.pkl", data)).format == "pickle"


def test_protocol_0_is_text_but_still_a_pickle(tmp_path):
    data = pickle.dumps({"a": 1, "b": "two"}, protocol=0)
    data.decode("ascii")  # plain text, as far as bytes go
    assert check(put(tmp_path, "config.txt", data)).format == "pickle"


def test_pickle_that_calls_then_trails_text_is_a_pickle(tmp_path):
    # pickle.load stops at STOP: the junk after it hides nothing
    evil = b"cos\nsystem\n(S'echo owned'\ntR." + b"\n# Model card\n\nThis is a README.\n"
    found = check(put(tmp_path, "README.md", evil))
    assert found.format == "pickle"
    assert found.pickle_based


def test_pickle_that_calls_then_turns_invalid_is_a_pickle(tmp_path):
    # REDUCE has run before the unpickler reaches the garbage
    evil = b"cos\nsystem\n(S'echo owned'\ntR" + b"\xff\xfe garbage"
    assert check(put(tmp_path, "x.bin", evil)).format == "pickle"


def test_payload_behind_a_large_bytes_argument_is_found(tmp_path):
    # BINBYTES of 200,000 bytes (past the 64 KiB head), then POP and a call
    filler = bytes(200_000)
    evil = b"B" + struct.pack("<I", len(filler)) + filler + b"0cos\nsystem\n(S'id'\ntR."
    assert check(put(tmp_path, "weights.bin", evil)).format == "pickle"


EVIL = b"cos\nsystem\n(S'echo owned'\ntR."


def test_polyglots_that_unpickle_are_pickles(tmp_path):
    # each also carries another format's signature; pickle.load would run it
    gguf = b"GGUF" + struct.pack("<I", 3) + b"\x00" + b"0" + EVIL + bytes(64)
    assert detect_module._gguf(gguf) is not None
    hdf5 = EVIL.ljust(512, b"\x00") + b"\x89HDF\r\n\x1a\n" + bytes(64)
    assert detect_module._hdf5(hdf5) is not None
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo(EVIL.decode())
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with tarfile.open(fileobj=io.BytesIO(tar.getvalue())) as t:
        assert t.getnames() == [EVIL.decode()]
    for name, data in [("m.gguf", gguf), ("m.h5", hdf5), ("m.tar", tar.getvalue())]:
        found = check(put(tmp_path, name, data))
        assert found.format == "pickle", (name, found)


def test_protocol_without_proto_opcode(tmp_path):
    # binary opcodes are legal without PROTO: pickle.loads takes this
    data = pickle.dumps(PAYLOAD, protocol=4)[2:]
    assert pickle.loads(data) == PAYLOAD
    assert check(put(tmp_path, "noproto.bin", data)) == Detected(
        "pickle", True, "pickle without a PROTO opcode"
    )


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError("no globals here")


def _loads_safely(data: bytes) -> object:
    return _NoGlobals(io.BytesIO(data)).load()


@pytest.mark.parametrize(
    "stream",
    [
        b"\x8c\x02\xff\xfe.",  # SHORT_BINUNICODE that is not UTF-8
        b"X\x02\x00\x00\x00\xc3(.",  # BINUNICODE likewise
        b"Shello\n.",  # STRING must be quoted
        b"S'hello\"\n.",  # with the same quote at both ends
        b"T" + struct.pack("<i", -5) + b"abc.",  # BINSTRING with a negative length
        b"\x8b" + struct.pack("<i", -1) + b".",  # LONG4 likewise
        b"c\n\n.",  # GLOBAL with empty names
        b"Vbad\\u12\n.",  # UNICODE with a broken escape
        b"ta.",  # TUPLE without a mark
        b".",  # STOP on an empty stack
        b"(.",  # STOP on a bare mark
    ],
)
def test_streams_the_unpickler_refuses_are_not_pickles(tmp_path, stream):
    with pytest.raises(Exception):  # noqa: B017 (what it raises varies: that it refuses is the point)
        _loads_safely(stream)
    with timed():
        found = check(put(tmp_path, "s.bin", stream))
    assert found.format != "pickle", found


def test_mutated_pickles_that_still_load_are_pickles(tmp_path):
    """Differential: any stream the unpickler takes whole (no globals) is called a pickle."""
    import pickletools

    rng = random.Random(99)
    bases = [pickle.dumps(PAYLOAD, protocol=p) for p in range(6)]
    bases += [pickle.dumps([1, (2, 3), {"a": None}, 2.5, "é", b"x"], protocol=p) for p in range(6)]
    seen = 0
    for i in range(3000):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        m = bytes(data[: rng.randrange(1, len(data) + 1)] if i % 3 == 0 else data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # escapes in mutated STRING opcodes
            try:  # only streams whose every length is within the data are loaded
                ops = list(pickletools.genops(m))
            except Exception:
                continue
            if not ops or ops[-1][0].name != "STOP" or ops[-1][2] + 1 != len(m):
                continue
            try:
                _loads_safely(m)
            except Exception:
                continue
        seen += 1
        found = check(put(tmp_path, "m.bin", m))
        assert found.format == "pickle", (m, found)
    assert seen > 150  # the check above ran on enough streams to mean something


def test_whole_tiny_pickle(tmp_path):
    assert check(put(tmp_path, "none.pkl", b"N.")).format == "pickle"
    assert check(put(tmp_path, "int.pkl", b"I1\n.")).format == "pickle"


@pytest.mark.parametrize(
    "text",
    [
        b"N.B. this file is a note, not a pickle.\n",
        b"cat\ndog\nmouse\n",
        b"(c) 2024 Example Corp\nLicense: Apache-2.0\nPermission is granted\nof this software\n",
        b"Important: read this first.\n",
        b"import os\nprint(os.getcwd())\n",
        b"def f():\n    return 1\n",
        b"Version 1.0\n",
        b"STRING without quotes\n",
        b"]]]]\n",
        b"GGUF models are quantized.\n",
        b"PK is a tokenizer prefix\n",
        b"1,2,3\n4,5,6\n",
    ],
)
def test_text_that_starts_with_opcode_letters_is_text(tmp_path, text):
    found = check(put(tmp_path, "notes.txt", text))
    assert found.format == "text", found
    assert not found.pickle_based


def test_binary_starting_with_a_length_opcode_is_not_a_pickle(tmp_path):
    # a BMP: 'B' reads as BINBYTES whose length fits the file; what follows is pixels
    pixels = bytes(random.Random(7).randbytes(300_000))
    bmp = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) + bytes(40) + pixels
    found = check(put(tmp_path, "image.bmp", bmp))
    assert found.format == "unknown", found
    assert not found.pickle_based


def test_binary_whose_first_length_fits_is_read_past_it(tmp_path):
    # BINBYTES of 100,000 bytes that fits the file: the walk reads on after it
    # (and finds no opcode), rather than calling whatever lies past its head a pickle
    data = b"B" + struct.pack("<I", 100_000) + bytes(100_000) + b"\xff\xfe\xfd" * 1000
    found = check(put(tmp_path, "blob.bin", data))
    assert found == Detected("unknown", False, None)


def test_pytorch_legacy_magic(tmp_path):
    magic = 0x1950A86A20F9469CFC6C
    for protocol in (2, 4):
        stream = b"".join(
            pickle.dumps(v, protocol=protocol) for v in (magic, 1001, {"little_endian": True})
        )
        found = check(put(tmp_path, f"legacy{protocol}.pt", stream + bytes(64)))
        assert found.format == "pytorch-legacy", found
        assert found.pickle_based
    # another protocol-2 pickle is not the legacy format
    other = check(put(tmp_path, "other.pt", pickle.dumps(magic + 1, protocol=2)))
    assert other.format == "pickle"


def test_pytorch_legacy_tar(tmp_path):
    p = tmp_path / "ancient.pt"
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [
            ("sys_info", pickle.dumps({"protocol_version": 1001}, 2)),
            ("pickle", pickle.dumps({"a": 1}, 2)),
            ("storages", pickle.dumps(0, 2)),
            ("tensors", pickle.dumps(0, 2)),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = check(p)
    assert found.format == "pytorch-legacy"
    assert found.pickle_based
    assert "pickle" in (found.detail or "")


def test_compressed_pickles_are_pickles(tmp_path):
    raw = pickle.dumps(PAYLOAD, protocol=4)
    for name, data, word in [
        ("m.pkl.gz", gzip.compress(raw), "gzip"),
        ("m.joblib", zlib.compress(raw, 3), "zlib"),  # joblib's default compressor
        ("m.pkl.xz", lzma.compress(raw), "xz"),
        ("m.pkl.lzma", lzma.compress(raw, format=lzma.FORMAT_ALONE), "lzma"),
        ("m.pkl.bz2", bz2.compress(raw), "bzip2"),
    ]:
        found = check(put(tmp_path, name, data))
        assert found.format == "pickle", (name, found)
        assert found.pickle_based
        assert found.detail == f"{word}-compressed pickle protocol 4"


def test_lzma_with_any_dictionary_size(tmp_path):
    # liblzma takes any dictionary size, not only the ones its encoder writes
    alone = bytearray(lzma.compress(pickle.dumps(PAYLOAD, 4), format=lzma.FORMAT_ALONE))
    alone[1:5] = struct.pack("<I", 0x00123457)
    assert lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(bytes(alone))
    assert check(put(tmp_path, "odd.lzma", bytes(alone))).format == "pickle"
    # the range coder's first byte is not 0: no lzma stream, not even tried
    fake = b"\x5d" + b"\xff" * 12 + b"\x01" + bytes(random.Random(5).randbytes(500))
    assert check(put(tmp_path, "fake.bin", fake)) == Detected("unknown", False, None)


def test_compressed_non_pickles(tmp_path):
    text = b"hello, this is a compressed README\n" * 10
    assert check(put(tmp_path, "a.gz", gzip.compress(text))) == Detected(
        "gzip", False, "gzip of text"
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("weights.safetensors")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    assert check(put(tmp_path, "a.tar.gz", buf.getvalue())) == Detected(
        "gzip", False, "gzip of a tar archive"
    )
    assert check(put(tmp_path, "a.xz", lzma.compress(bytes(1000)))) == Detected(
        "unknown", False, "xz-compressed data"
    )


# ---------------------------------------------------------------- zips


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def hand_zip(
    members: list[tuple[str, bytes]],
    *,
    zip64: bool = False,
    cd_offset: int | None = None,
    cd_size: int | None = None,
    flags: int = 0,
    extra: bytes = b"",
) -> bytes:
    """A stored zip written field by field (for layouts zipfile will not write)."""
    out = bytearray()
    cd = bytearray()
    for name, data in members:
        raw = name.encode()
        offset = len(out)
        crc = zlib.crc32(data)
        n = len(data)
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, 0, 0, 0, crc, n, n, len(raw), 0
        )
        out += raw + data
        cd += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            *(b"PK\x01\x02", 20, 20, flags, 0, 0, 0, crc, n, n, len(raw), len(extra), 0, 0, 0),
            *(0, offset),
        )
        cd += raw + extra
    start = len(out)
    out += cd
    count = len(members)
    size = len(cd) if cd_size is None else cd_size
    where = start if cd_offset is None else cd_offset
    if zip64:
        record = len(out)
        fields = (44, 45, 45, 0, 0, count, count, size, where)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", *fields)
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, record, 1)
        ff = (0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, *ff, 0)
    else:
        c = min(count, 0xFFFF)
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, c, c, size, where, 0)
    return bytes(out)


TORCH_MEMBERS = [
    ("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2)),
    ("archive/byteorder", b"little"),
    ("archive/data/0", bytes(16)),
    ("archive/version", b"3\n"),
]


def test_torch_zip(tmp_path):
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        found = check(put(tmp_path, "pytorch_model.bin", zip_bytes(TORCH_MEMBERS, method)))
        assert found == Detected("pytorch-zip", True, "zip with archive/data.pkl")


def test_torch_zip_variants(tmp_path):
    root = check(put(tmp_path, "a.pt", zip_bytes([("data.pkl", b"\x80\x02N.")])))
    assert root.format == "pytorch-zip"
    script = zip_bytes([("m/code/__torch__.py", b"x"), ("m/constants.pkl", b"\x80\x02N.")])
    assert check(put(tmp_path, "s.pt", script)).format == "pytorch-zip"
    # a deeper data.pkl is no torch checkpoint: a plain zip, its pickle named in the detail
    deep = check(put(tmp_path, "d.zip", zip_bytes([("a/b/data.pkl", b"\x80\x02N.")])))
    assert deep.format == "zip"
    assert not deep.pickle_based
    assert "a/b/data.pkl" in (deep.detail or "")


def test_torch_zip_listed_by_hand_matches_zipfile(tmp_path):
    data = hand_zip(TORCH_MEMBERS)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [n for n, _ in TORCH_MEMBERS]
    assert check(put(tmp_path, "h.bin", data)).format == "pytorch-zip"


def test_zip64_end_records(tmp_path):
    data = hand_zip(TORCH_MEMBERS, zip64=True)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [n for n, _ in TORCH_MEMBERS]
    assert check(put(tmp_path, "z64.bin", data)).format == "pytorch-zip"
    plain = hand_zip([("a.txt", b"x"), ("b.txt", b"y")], zip64=True)
    assert check(put(tmp_path, "z64.zip", plain)) == Detected(
        "zip", False, "zip archive of 2 files"
    )


def test_extra_fields_before_zip64(tmp_path):
    # an extended-timestamp field, then a zip64 field the entry does not need
    extra = struct.pack("<HHB4s", 0x5455, 5, 1, b"\0\0\0\0") + struct.pack("<HHQ", 1, 8, 0)
    data = hand_zip(TORCH_MEMBERS, extra=extra)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [n for n, _ in TORCH_MEMBERS]
    assert check(put(tmp_path, "x.bin", data)).format == "pytorch-zip"
    npz = hand_zip([("a.npy", npy("'<f4'"))], extra=extra)
    assert check(put(tmp_path, "x.npz", npz)) == Detected("npz", False, "npz of 1 array")


def test_member_names_are_shown_escaped(tmp_path):
    name = "evil\u202e\n/data.pkl"
    found = check(put(tmp_path, "e.bin", zip_bytes([(name, b"\x80\x02N.")])))
    assert found.format == "pytorch-zip"
    assert found.detail == "zip with evil\\u202e\\x0a/data.pkl"


def test_keras_zip(tmp_path):
    members = [
        ("metadata.json", b'{"keras_version": "3.3.3"}'),
        ("config.json", b'{"class_name": "Sequential"}'),
        ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64)),
    ]
    found = check(put(tmp_path, "model.keras", zip_bytes(members, zipfile.ZIP_DEFLATED)))
    assert found.format == "keras"
    assert not found.pickle_based
    assert "config.json, metadata.json, model.weights.h5" in (found.detail or "")


def test_plain_zip(tmp_path):
    found = check(put(tmp_path, "a.zip", zip_bytes([("x/readme.txt", b"hi"), ("x/", b"")])))
    assert found == Detected("zip", False, "zip archive of 1 files")
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    assert check(put(tmp_path, "e.zip", empty.getvalue())) == Detected(
        "zip", False, "zip archive of 0 files"
    )


# ---------------------------------------------------------------- numpy


def npy(
    descr: str, data: bytes = bytes(8), version: tuple[int, int] = (1, 0), pad: int = 0
) -> bytes:
    """A .npy file as the format's specification lays it out (``descr`` as a literal)."""
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (2,), }}" + " " * pad
    enc = header.encode("utf-8" if version[0] == 3 else "latin-1")
    prefix = 10 if version[0] == 1 else 12
    enc += b" " * ((-(prefix + len(enc) + 1)) % 64) + b"\n"
    width = 2 if version[0] == 1 else 4
    return b"\x93NUMPY" + bytes(version) + len(enc).to_bytes(width, "little") + enc + data


@pytest.mark.parametrize(
    ("descr", "pickle_based"),
    [
        ("'<f4'", False),
        ("'|u1'", False),
        ("'<M8[ns]'", False),
        ("'<U10'", False),
        ("[('offset', '<f8'), ('order', '<i4')]", False),  # field names are not dtypes
        ("[('a', '<f4', (2, 3)), ('b', [('c', '<i2')])]", False),
        ("'|O'", True),
        ("'O8'", True),
        ("'object'", True),
        ("'i4,O'", True),
        ("[('a', '<i4'), ('b', '|O')]", True),
        ("[(('title', 'a'), '<i4'), ('b', [('c', '|O')])]", True),
        ("('|O', (2,))", True),
        ("{'names': ['x'], 'formats': ['|O'], 'offsets': [0]}", True),
        ("{'names': ['Orange'], 'formats': ['<f8'], 'offsets': [0]}", False),
    ],
)
def test_npy_dtype(tmp_path, descr, pickle_based):
    found = check(put(tmp_path, "a.npy", npy(descr)))
    assert found.format == "numpy"
    assert found.pickle_based is pickle_based, found


def test_npy_versions(tmp_path):
    for version in ((1, 0), (2, 0), (3, 0)):
        found = check(put(tmp_path, "v.npy", npy("'<f8'", version=version)))
        assert found == Detected(
            "numpy", False, f"numpy format {version[0]}.{version[1]}, dtype '<f8'"
        )
    assert check(put(tmp_path, "u.npy", npy("[('é', '|O')]", version=(3, 0)))).pickle_based


def test_npy_object_array_with_its_pickle(tmp_path):
    data = npy("'|O'", pickle.dumps([1, "x"], protocol=3))
    found = check(put(tmp_path, "obj.npy", data))
    assert found.format == "numpy"
    assert found.pickle_based
    assert "Python objects" in (found.detail or "")


@pytest.mark.parametrize(
    "raw",
    [
        b"\x93NUMPY",  # no version
        b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 100,  # header longer than the file
        npy("'<f4'", pad=12_000),  # a header over 10,000 bytes
        b"\x93NUMPY\x09\x00" + bytes(100),  # unknown version
        npy("__import__('os')"),  # not a literal
        npy("'<f4'").replace(b"'descr'", b"'dexcr'"),  # no descr
        b"\x93NUMPY\x01\x00\x00\x10" + b"(" * 4096,  # nesting
    ],
)
def test_npy_headers_not_understood_are_pickle_based(tmp_path, raw):
    found = check(put(tmp_path, "bad.npy", raw))
    assert found.format == "numpy"
    assert found.pickle_based, found


def test_npz(tmp_path):
    plain = [("a.npy", npy("'<f4'")), ("b.npy", npy("[('x', '<i8')]"))]
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        found = check(put(tmp_path, "p.npz", zip_bytes(plain, method)))
        assert found == Detected("npz", False, "npz of 2 arrays")
        objs = [*plain, ("c.npy", npy("'|O'", pickle.dumps([1], 3)))]
        found = check(put(tmp_path, "o.npz", zip_bytes(objs, method)))
        assert found.format == "npz"
        assert found.pickle_based
        assert "c.npy" in (found.detail or "")


def test_npz_member_with_a_long_header(tmp_path):
    fields = ", ".join(f"('field_{i:04d}', '<f4')" for i in range(150))  # ~3.5 KB of header
    ok = check(put(tmp_path, "l.npz", zip_bytes([("a.npy", npy(f"[{fields}]"))])))
    assert ok == Detected("npz", False, "npz of 1 array")
    bad = check(put(tmp_path, "m.npz", zip_bytes([("a.npy", npy(f"[{fields}, ('z', '|O')]"))])))
    assert bad.pickle_based


def test_npz_member_not_examinable_is_pickle_based(tmp_path):
    for name, data in [
        ("bzip2.npz", zip_bytes([("a.npy", npy("'<f4'"))], zipfile.ZIP_BZIP2)),
        ("encrypted.npz", hand_zip([("a.npy", npy("'<f4'"))], flags=1)),
    ]:
        found = check(put(tmp_path, name, data))
        assert found.format == "npz"
        assert found.pickle_based, name
        assert "1 not examined" in (found.detail or "")


# ---------------------------------------------------------------- other signatures


def safetensors_bytes(pad: bool = True) -> bytes:
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        },
        separators=(",", ":"),
    ).encode()
    if pad:
        header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


def test_safetensors(tmp_path):
    data = safetensors_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    assert check(put(tmp_path, "model.safetensors", data)) == Detected(
        "safetensors", False, f"{length}-byte header"
    )
    assert check(put(tmp_path, "m", safetensors_bytes(pad=False))).format == "safetensors"
    # the smallest: an empty header
    assert check(put(tmp_path, "e.safetensors", struct.pack("<Q", 2) + b"{}")).format == (
        "safetensors"
    )


def test_safetensors_header_length_past_the_file(tmp_path):
    data = safetensors_bytes()
    bad = struct.pack("<Q", len(data)) + data[8:]
    found = check(put(tmp_path, "big.safetensors", bad))
    # a cut-off or damaged safetensors file: its checker says what is wrong
    assert found == Detected(
        "safetensors",
        False,
        f"damaged: its header length {len(data)} runs past the end of the file",
    )


def test_damaged_safetensors(tmp_path):
    # a length that fits and a brace, but no JSON object follows
    data = struct.pack("<Q", 16) + b"{xyz" + bytes(range(12)) + bytes(8)
    found = check(put(tmp_path, "x.safetensors", data))
    assert found == Detected(
        "safetensors", False, "damaged: its 16-byte header is not a JSON object"
    )


def test_not_safetensors(tmp_path):
    # eight bytes that are no header length, and a brace: maybe chance
    for head in (b"\xff" * 8, struct.pack("<Q", 1), struct.pack("<Q", (100 << 20) + 1)):
        data = head + b'{"a": 1}' + bytes(64)
        found = check(put(tmp_path, "x.bin", data))
        assert found.format == "unknown", head
        assert "out of bounds" in (found.detail or "")


def test_gguf(tmp_path):
    data = b"GGUF" + struct.pack("<IQQ", 3, 291, 24) + bytes(64)
    assert check(put(tmp_path, "m.gguf", data)) == Detected("gguf", False, "gguf version 3")
    big = b"GGUF" + struct.pack(">IQQ", 3, 291, 24) + bytes(64)
    assert check(put(tmp_path, "b.gguf", big)) == Detected(
        "gguf", False, "gguf version 3, big-endian"
    )


def test_hdf5(tmp_path):
    sig = b"\x89HDF\r\n\x1a\n"
    assert check(put(tmp_path, "a.h5", sig + bytes(200))) == Detected("hdf5", False, None)
    assert check(put(tmp_path, "b.h5", bytes(512) + sig + bytes(200))) == Detected(
        "hdf5", False, "superblock at byte 512"
    )


def test_tflite(tmp_path):
    data = struct.pack("<I", 0x1C) + b"TFL3" + bytes(200)
    assert check(put(tmp_path, "m.tflite", data)) == Detected("tflite", False, None)
    # a root offset outside the file is not a flatbuffer
    bad = struct.pack("<I", 10_000) + b"TFL3" + bytes(200)
    assert check(put(tmp_path, "n.tflite", bad)).format == "unknown"


def test_tar(tmp_path):
    p = tmp_path / "a.tar"
    with tarfile.open(p, "w") as tar:
        info = tarfile.TarInfo("model/config.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    assert check(p) == Detected("tar", False, None)
    # one byte off in the header: its checksum no longer matches
    broken = bytearray(p.read_bytes())
    broken[0] ^= 0x01
    assert check(put(tmp_path, "broken.tar", bytes(broken))).format == "unknown"
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        q = tmp_path / f"g{fmt}.tar"
        with tarfile.open(q, "w", format=fmt) as tar:
            info = tarfile.TarInfo("x")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        assert check(q).format == "tar"


def onnx_bytes() -> bytes:
    graph = b"\x0a\x05node0"  # inside the graph: not examined
    return (
        b"\x08\x08"  # ir_version 8
        + b"\x12\x07pytorch"  # producer_name
        + b"\x1a\x052.1.0"  # producer_version
        + b"\x3a"
        + bytes([len(graph)])
        + graph  # graph
        + b"\x42\x02\x10\x11"  # opset_import
    )


def test_onnx_needs_its_name_and_a_plausible_start(tmp_path):
    assert check(put(tmp_path, "model.onnx", onnx_bytes())) == Detected(
        "onnx", False, "ir_version 8"
    )
    assert check(put(tmp_path, "MODEL.ONNX", onnx_bytes())).format == "onnx"
    # onnx.load takes any name: without .onnx, ir_version first and a graph are needed
    assert check(put(tmp_path, "model.bin", onnx_bytes())).format == "onnx"
    assert check(put(tmp_path, "model.pb", b"\x12\x01a" + onnx_bytes())).format == "unknown"
    assert check(put(tmp_path, "v.bin", onnx_bytes()[:2] + b"\x12\x01a")).format == "unknown"
    # field 1 must be a varint; field 10 is no ModelProto field
    assert check(put(tmp_path, "w.onnx", b"\x0a\x03abc" + onnx_bytes())).format == "unknown"
    assert check(put(tmp_path, "f.onnx", b"\x50\x01" + onnx_bytes())).format == "unknown"
    junk = random.Random(3).randbytes(4096)
    assert check(put(tmp_path, "junk.onnx", b"\x07" + junk)).format == "unknown"
    assert check(put(tmp_path, "v.onnx", b"\x08\xff\x01" + onnx_bytes()[2:])).format == "unknown"
    # a large graph past the head: plausible as far as read
    large = b"\x08\x07\x3a" + b"\x80\x80\x10" + bytes(300_000)
    assert check(put(tmp_path, "large.onnx", large)).format == "onnx"


def test_json_and_text(tmp_path):
    assert check(put(tmp_path, "config.json", b'{"hidden_size": 768}\n')) == Detected(
        "json", False, None
    )
    assert check(put(tmp_path, "list", b"\xef\xbb\xbf [1, 2]")).format == "json"
    assert check(put(tmp_path, "bad.json", b'{"a": }')) == Detected(
        "text", False, "starts like JSON but is not one JSON value"
    )
    lines = b'{"a": 1}\n{"b": 2}\n'
    assert check(put(tmp_path, "model.intoto.jsonl", lines)).format == "text"
    readme = "# Model\n\nUnicode: é, ü, 漢字, emoji 🤖\n\tTabbed\r\n".encode()
    assert check(put(tmp_path, "README.md", readme)) == Detected("text", False, None)


def test_large_json_uses_the_name(tmp_path):
    body = b'{"model": {"vocab": {' + b",".join(b'"t%d": %d' % (i, i) for i in range(20_000))
    body += b"}}}"
    assert len(body) > HEAD
    assert check(put(tmp_path, "tokenizer.json", body)) == Detected(
        "json", False, "only the first 64 KiB examined"
    )
    assert check(put(tmp_path, "tokenizer.dat", body)).format == "text"


def test_utf8_character_split_by_the_head_is_text(tmp_path):
    data = b"a" * (HEAD - 1) + "é".encode() * 10
    assert data[HEAD - 1 : HEAD] == b"\xc3"
    assert check(put(tmp_path, "long.txt", data)).format == "text"
    # but a broken sequence inside the head is not
    bad = b"a" * 100 + b"\xc3(" + b"a" * 100
    assert check(put(tmp_path, "bad.txt", bad)).format == "unknown"


def test_text_with_nul_is_unknown(tmp_path):
    found = check(put(tmp_path, "notes.txt", b"hello world\n" * 10 + b"\x00" + b"more text\n"))
    assert found == Detected("unknown", False, None)
    ctrl = check(put(tmp_path, "c.txt", b"hello\x01world\n"))
    assert ctrl.format == "unknown"


def test_random_binary_is_unknown(tmp_path):
    rng = random.Random(1234)
    for i in range(20):
        data = rng.randbytes(rng.randrange(1, 200_000))
        found = check(put(tmp_path, f"r{i}.bin", data))
        assert found.format == "unknown", (i, data[:16], found)


# ---------------------------------------------------------------- hostile inputs


def timed(seconds: float = 1.0):
    class _Timer:
        def __enter__(self):
            self.start = time.perf_counter()
            return self

        def __exit__(self, *exc):
            elapsed = time.perf_counter() - self.start
            assert elapsed < seconds, f"took {elapsed:.2f}s"

    return _Timer()


def test_empty_and_one_byte_files(tmp_path):
    assert check(put(tmp_path, "empty", b"")) == Detected("text", False, "empty file")
    for value in range(256):
        found = check(put(tmp_path, "one", bytes([value])))
        assert found.format in ("text", "unknown"), (value, found)


def test_every_short_prefix_of_every_format_is_safe(tmp_path):
    samples = [
        pickle.dumps(PAYLOAD, 0),
        pickle.dumps(PAYLOAD, 4),
        zip_bytes(TORCH_MEMBERS),
        npy("'|O'"),
        safetensors_bytes(),
        onnx_bytes(),
        gzip.compress(pickle.dumps(PAYLOAD, 4)),
    ]
    for data in samples:
        for cut in range(len(data)):
            check(put(tmp_path, "cut.onnx", data[:cut]))


def test_safetensors_header_length_2_63(tmp_path, bytes_read):
    data = struct.pack("<Q", 1 << 63) + b'{"w":{}}' + bytes(100)
    with timed():
        found = check(put(tmp_path, "huge.safetensors", data))
    assert found.format == "unknown"
    assert "9223372036854775808" in (found.detail or "")
    assert max(bytes_read) <= HEAD


def test_huge_sparse_file_reads_only_its_head(tmp_path, bytes_read):
    p = tmp_path / "sparse.safetensors"
    head = safetensors_bytes()[:-8]
    with p.open("wb") as f:
        f.write(head)
        f.truncate(4 << 30)  # 4 GiB of holes: never read
    length = struct.unpack("<Q", head[:8])[0]
    with timed():
        found = detect(p)
    assert found == Detected("safetensors", False, f"{length}-byte header")
    assert sum(bytes_read) <= HEAD


def test_zip_with_100000_entries(tmp_path, bytes_read):
    members = [(f"f{i:06d}.txt", b"") for i in range(100_000)]
    members.append(("archive/data.pkl", b"\x80\x02N."))  # hidden past the bound
    p = put(tmp_path, "many.zip", hand_zip(members))
    with timed():
        found = detect(p)
    assert found.format == "zip"
    assert found.pickle_based  # data.pkl is not ruled out
    assert "more than 4096 entries" in (found.detail or "") or "larger than" in (found.detail or "")
    assert sum(bytes_read) < 700 << 10


def test_zip_whose_directory_offset_points_past_the_end(tmp_path):
    members = TORCH_MEMBERS
    data = hand_zip(members, cd_offset=0x7FFFFFFF)
    # zipfile still lists it (it looks just before the end record), so detection does too
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [n for n, _ in members]
    with timed():
        found = check(put(tmp_path, "off.bin", data))
    assert found.format == "pytorch-zip"
    plain = check(put(tmp_path, "off.zip", hand_zip([("a", b"x")], cd_offset=0x7FFFFFFF)))
    assert plain.format == "zip"
    assert "offset off by" in (plain.detail or "")


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda d: d[: d.rfind(b"PK\x05\x06")], "no end of central directory"),
        (lambda d: d[:-22] + d[-22:-10] + struct.pack("<I", 1 << 31) + d[-6:], "larger than"),
        (lambda d: d.replace(b"PK\x01\x02", b"PK\x01\x03", 1), "malformed central directory"),
        (lambda d: d[: len(d) // 2] + d[-22:], "malformed central directory"),
        (lambda d: _patch(d, d.find(b"PK\x01\x02") + 28, b"\xff\xff"), "truncated"),
        (lambda d: _patch(d, d.find(b"PK\x01\x02") + 20, b"\xff" * 4), "zip64 field"),
    ],
)
def test_malformed_zips_are_zip_and_not_ruled_out(tmp_path, mangle, words):
    data = mangle(zip_bytes([("x/readme.txt", b"hello"), ("x/other.txt", b"world")]))
    with timed():
        found = check(put(tmp_path, "bad.zip", data))
    assert found.format == "zip"
    assert found.pickle_based
    assert words in (found.detail or ""), found


def test_zip64_locator_without_record(tmp_path):
    data = hand_zip([("a", b"x")], zip64=True)
    at = data.rfind(b"PK\x06\x06")
    broken = data[:at] + b"XX" + data[at + 2 :]
    found = check(put(tmp_path, "z.zip", broken))
    assert found.format == "zip"
    assert found.pickle_based


def test_opcode_chain_reads_are_bounded(tmp_path, bytes_read):
    # BINBYTES after BINBYTES, each past the window: the walk stops at its budget
    link = b"B" + struct.pack("<I", 100_000) + bytes(100_000)
    data = link * 60
    with timed():
        found = detect(put(tmp_path, "chain.bin", data))
    assert found.format == "pickle"  # still valid when the budget ends
    assert sum(bytes_read) <= HEAD + 16 * 4096


def test_decompression_bomb_is_bounded(tmp_path):
    bomb = gzip.compress(bytes(64 << 20), compresslevel=1)  # 64 MiB of zeros in ~280 KiB
    with timed():
        found = check(put(tmp_path, "bomb.gz", bomb))
    assert found == Detected("gzip", False, "gzip of data")
    # an lzma stream of a pickle whose header asks for a 4 GiB dictionary
    alone = bytearray(lzma.compress(pickle.dumps(PAYLOAD, 4), format=lzma.FORMAT_ALONE))
    alone[1:5] = struct.pack("<I", 0xFFFFFFFF)
    with timed():
        found = check(put(tmp_path, "dict.lzma", bytes(alone)))
    assert found.format == "unknown"
    assert found.pickle_based  # not examined: not ruled out
    assert "256 MiB" in (found.detail or "")
    # the strongest xz preset is examined
    strong = lzma.compress(pickle.dumps(PAYLOAD, 4), preset=9 | lzma.PRESET_EXTREME)
    assert check(put(tmp_path, "strong.xz", strong)).format == "pickle"


def test_deep_nesting(tmp_path):
    with timed():
        assert check(put(tmp_path, "deep.json", b"[" * 60_000)).format == "text"
        nested = b"(" * 60_000 + b"t" * 60_000 + b"."
        assert check(put(tmp_path, "deep.pkl", nested)).format == "pickle"


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    outcome: list[BaseException | Detected] = []

    def run() -> None:
        try:
            outcome.append(detect(fifo))
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "detect blocked on a FIFO"
    (err,) = outcome
    assert isinstance(err, InputError)
    assert err.code == "not-regular"
    assert "FIFO" in str(err)


def test_fifo_descriptor_is_refused(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(InputError) as e:
            detect_fd(fd, 0, "f")
        assert e.value.code == "not-regular"
    finally:
        os.close(fd)


def test_symlink_is_refused(tmp_path):
    target = put(tmp_path, "real.pkl", pickle.dumps(1, 4))
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    with pytest.raises(InputError) as e:
        detect(link)
    assert e.value.code == "not-regular"
    assert "symbolic link" in str(e.value)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError) as e:
        detect(dangling)
    assert e.value.code == "not-regular"


def test_directory_and_missing_are_refused(tmp_path):
    with pytest.raises(InputError) as e:
        detect(tmp_path)
    assert e.value.code == "not-regular"
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(InputError) as e:
            detect_fd(fd, 0, "dir")
        assert e.value.code == "not-regular"
    finally:
        os.close(fd)
    with pytest.raises(InputError) as e:
        detect(tmp_path / "missing")
    assert e.value.code == "not-found"


def test_detect_fd_keeps_the_offset(tmp_path):
    p = put(tmp_path, "m.safetensors", safetensors_bytes())
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.read(fd, 5) == safetensors_bytes()[:5]
        found = detect_fd(fd, p.stat().st_size, "sub/m.safetensors")
        assert os.lseek(fd, 0, os.SEEK_CUR) == 5
    finally:
        os.close(fd)
    assert found.format == "safetensors"


def test_detect_fd_with_a_stale_size(tmp_path):
    p = put(tmp_path, "shrunk.bin", zip_bytes(TORCH_MEMBERS))
    fd = os.open(p, os.O_RDONLY)
    try:
        # the file is smaller than the caller thinks: no exception, same answer
        found = detect_fd(fd, p.stat().st_size + 10_000, "shrunk.bin")
        assert found.format in ("pytorch-zip", "zip")
        assert found.pickle_based
        with pytest.raises(ValueError):
            detect_fd(fd, -1, "x")
    finally:
        os.close(fd)


@pytest.mark.parametrize("length", [128, 384, 640, 896, 1152, 1408, 72, 136])
def test_a_safetensors_header_length_that_reads_as_pickle_proto_is_safetensors(tmp_path, length):
    """0x80 then 0x00..0x05 is PROTO: a header of 128, 384, ... bytes starts like a pickle.
    The zero bytes 4..7 and the '{' at byte 8 rule a pickle out."""
    import json as _json
    import struct as _struct

    header = _json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header = header.ljust(length)
    path = tmp_path / "model.safetensors"
    path.write_bytes(_struct.pack("<Q", len(header)) + header + b"\0" * 4)
    found = detect(path)
    assert (found.format, found.pickle_based) == ("safetensors", False), found
