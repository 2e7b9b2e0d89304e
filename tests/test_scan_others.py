"""GGUF, ONNX, Keras and code checks (issue 10): benign files pass, hostile ones are flagged.

Every file is made here: real GGUF files by the ``gguf`` package, real ONNX
models (with external data) by ``onnx``, hostile ones byte by byte.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from provenance.formats._code import check_code_files
from provenance.formats._gguf import GGML_TYPES
from provenance.formats._keras import check_keras_config
from provenance.formats._onnx import check_external_data
from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions, _scan_file

gguf = pytest.importorskip("gguf", reason="the gguf package (test extra) writes real GGUF files")
onnx = pytest.importorskip("onnx", reason="the onnx package (test extra) writes real ONNX models")
np = pytest.importorskip("numpy")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

BOUND = 5.0  # seconds any hostile file may take


def scan_file(path: Path, options: ScanOptions | None = None) -> ScannedFile:
    start = time.monotonic()
    got = _scan_file(str(path), path.name, options or ScanOptions())
    assert time.monotonic() - start < BOUND
    return got


def codes(findings: tuple[FormatFinding, ...] | list[FormatFinding]) -> set[str]:
    return {f.code for f in findings}


def errors(findings: tuple[FormatFinding, ...] | list[FormatFinding]) -> list[FormatFinding]:
    return [f for f in findings if f.severity == "error"]


# ---------------------------------------------------------------- GGUF


def real_gguf(path: Path, template: str | None = None) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint32("llama.context_length", 128)
    w.add_token_list([f"tok{i}" for i in range(2000)])
    if template is not None:
        w.add_chat_template(template)
    w.add_tensor("a", np.zeros((4, 8), np.float32))
    w.add_tensor("b", np.zeros((3,), np.float16))
    # two rows of one Q8_0 block (34 bytes each), as raw bytes
    w.add_tensor("q", np.zeros((2, 34), np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def kv_u32(key: bytes, v: int) -> bytes:
    return s(key) + struct.pack("<II", 4, v)


def kv_str(key: bytes, v: bytes) -> bytes:
    return s(key) + struct.pack("<I", 8) + s(v)


def tinfo(name: bytes, dims: list[int], ggml_type: int, offset: int) -> bytes:
    return (
        s(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def hand_gguf(
    kvs: list[bytes] = (),  # type: ignore[assignment]
    tensors: list[bytes] = (),  # type: ignore[assignment]
    data: int = 0,
    *,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    head = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if n_tensors is None else n_tensors,
        len(kvs) if n_kv is None else n_kv,
    )
    body = head + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * (-len(body) % alignment)
    return body + b"\0" * data


def gguf_file(tmp_path: Path, content: bytes, name: str = "m.gguf") -> ScannedFile:
    p = tmp_path / name
    p.write_bytes(content)
    got = scan_file(p)
    assert got.format == "gguf"
    return got


def test_gguf_real_file_passes(tmp_path: Path) -> None:
    got = scan_file(real_gguf(tmp_path / "m.gguf"))
    assert got.format == "gguf"
    assert got.findings == ()


def test_gguf_chat_template_is_a_warning_with_an_excerpt(tmp_path: Path) -> None:
    template = "{% for m in messages %}{{ m['content'] }}\x01{% endfor %}"
    got = scan_file(real_gguf(tmp_path / "m.gguf", template))
    (f,) = got.findings
    assert (f.code, f.severity) == ("gguf-chat-template", "warning")
    assert f"{len(template)}-byte" in f.message
    assert "{% for m in messages %}" in f.message and "\\x01" in f.message


def test_gguf_hand_built_benign_passes(tmp_path: Path) -> None:
    # F32 4x8 = 128 bytes at 0, Q4_0 64x2 = 2 blocks of 18 per row = 72 bytes at 128
    got = gguf_file(
        tmp_path,
        hand_gguf(
            [kv_u32(b"general.alignment", 32), kv_str(b"general.name", b"x")],
            [tinfo(b"a", [8, 4], 0, 0), tinfo(b"b", [64, 2], 2, 128)],
            128 + 72,
        ),
    )
    assert got.findings == ()


def test_ggml_type_sizes_match_the_gguf_package() -> None:
    sizes = gguf.GGML_QUANT_SIZES
    for t, (block, nbytes) in sizes.items():
        if int(t) not in GGML_TYPES:
            assert int(t) > 39, f"{t.name} missing"  # types newer than the table
            continue
        name, my_block, my_bytes = GGML_TYPES[int(t)]
        assert name == t.name and my_block == block
        if name == "Q8_1":
            # gguf-py says 40; ggml's static_assert says 2*sizeof(ggml_half) + 32 = 36
            assert my_bytes == 36
        else:
            assert my_bytes == nbytes, name


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (hand_gguf(n_tensors=1 << 62), "gguf-count-too-large"),
        (hand_gguf(n_kv=(1 << 64) - 1), "gguf-count-too-large"),
        (hand_gguf(version=1), "gguf-version-unsupported"),
        (hand_gguf(version=4), "gguf-version-unsupported"),
        # a key whose length runs past the end of the file
        (hand_gguf([struct.pack("<Q", 1 << 40) + b"abc" + b"\0" * 20]), "gguf-string-past-end"),
        # a string value past the end
        (hand_gguf([s(b"k") + struct.pack("<IQ", 8, 1 << 50)], data=64), "gguf-string-past-end"),
        # an array of 2**60 uint32
        (hand_gguf([s(b"k") + struct.pack("<IIQ", 9, 4, 1 << 60)], data=64), "gguf-array-past-end"),
        # an array of 2**40 strings
        (hand_gguf([s(b"k") + struct.pack("<IIQ", 9, 8, 1 << 40)], data=64), "gguf-array-past-end"),
        (hand_gguf([s(b"k") + struct.pack("<II", 13, 0)], data=64), "gguf-value-type"),
        (hand_gguf([s(b"k") + struct.pack("<III", 9, 99, 0)], data=64), "gguf-value-type"),
        (hand_gguf([kv_u32(b"general.alignment", 3)]), "gguf-alignment"),
        (hand_gguf([kv_u32(b"general.alignment", 0)]), "gguf-alignment"),
        (hand_gguf([kv_str(b"general.alignment", b"32")]), "gguf-alignment"),
        (hand_gguf([kv_u32(b"a", 1), kv_u32(b"a", 2)]), "gguf-key-duplicate"),
        (hand_gguf([kv_u32(b"a\x1b[31m", 1)]), "gguf-key-name"),
        (
            hand_gguf([], [tinfo(b"t", [1 << 32, 1 << 32], 0, 0)], 64),
            "gguf-tensor-overflow",
        ),
        (hand_gguf([], [tinfo(b"t", [4, 0], 0, 0)], 64), "gguf-tensor-dims"),
        (hand_gguf([], [tinfo(b"t", [1 << 63], 0, 0)], 64), "gguf-tensor-dims"),
        (hand_gguf([], [tinfo(b"t", [1, 1, 1, 1, 1], 0, 0)], 64), "gguf-tensor-dims"),
        (hand_gguf([], [tinfo(b"t", [4], 4, 0)], 64), "gguf-tensor-type"),
        (hand_gguf([], [tinfo(b"t", [4], 1000, 0)], 64), "gguf-tensor-type"),
        (hand_gguf([], [tinfo(b"t", [33], 2, 0)], 64), "gguf-tensor-block"),
        (hand_gguf([], [tinfo(b"t", [4], 0, 8)], 64), "gguf-tensor-misaligned"),
        (hand_gguf([], [tinfo(b"t", [4], 0, 1 << 40)], 64), "gguf-tensor-out-of-bounds"),
        (hand_gguf([], [tinfo(b"t", [32], 0, 0)], 64), "gguf-tensor-out-of-bounds"),
        (
            hand_gguf([], [tinfo(b"a", [16], 0, 0), tinfo(b"b", [16], 0, 32)], 128),
            "gguf-tensor-overlap",
        ),
        (
            hand_gguf([], [tinfo(b"a", [8], 0, 0), tinfo(b"b", [8], 0, 64)], 96),
            "gguf-tensor-gap",
        ),
        (
            hand_gguf([], [tinfo(b"a", [8], 0, 0), tinfo(b"a", [8], 0, 32)], 64),
            "gguf-tensor-duplicate",
        ),
        (hand_gguf([], [tinfo(b"x" * 64, [8], 0, 0)], 32), "gguf-tensor-name"),
        (hand_gguf([], [tinfo(b"a", [8], 0, 0)], 32 + 4096), "gguf-trailing-data"),
        (hand_gguf()[:20], "gguf-truncated"),
        (
            hand_gguf([s(b"k") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 4, 0)]),
            "gguf-nested-array",
        ),
    ],
)
def test_gguf_hostile_is_flagged(tmp_path: Path, content: bytes, code: str) -> None:
    got = gguf_file(tmp_path, content)
    assert code in codes(got.findings), got.findings
    assert all(f.severity == "error" for f in got.findings if f.code == code)


def test_gguf_overlap_found_whatever_the_order(tmp_path: Path) -> None:
    content = hand_gguf([], [tinfo(b"b", [16], 0, 32), tinfo(b"a", [64], 0, 0)], 256)
    got = gguf_file(tmp_path, content)
    assert "gguf-tensor-overlap" in codes(got.findings)


def test_gguf_many_empty_strings_are_bounded(tmp_path: Path) -> None:
    # two arrays of 2**21 + 1 empty strings (a sparse file of zeros): the first is
    # walked, the second passes the item budget and stops the walk
    n = (1 << 21) + 1
    array = s(b"k") + struct.pack("<IIQ", 9, 8, n)
    p = tmp_path / "m.gguf"
    with p.open("wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + array)
        f.write(b"\0" * 8 * n)
        f.write(s(b"j") + struct.pack("<IIQ", 9, 8, n))
        f.truncate(f.tell() + 8 * n)
    got = scan_file(p)
    assert codes(got.findings) == {"gguf-too-many-items"}
    assert got.findings[0].offset is not None and got.findings[0].offset > 8 * n


def test_gguf_too_many_pairs_or_tensors_for_a_real_model(tmp_path: Path) -> None:
    p = tmp_path / "m.gguf"
    with p.open("wb") as f:
        f.write(hand_gguf(n_kv=(1 << 16) + 1, n_tensors=(1 << 16) + 1))
        f.truncate(64 << 20)
    got = scan_file(p)
    assert codes(got.findings) == {"gguf-count-too-large"}
    assert "more than 65536" in got.findings[0].message


def test_gguf_big_endian_is_read_in_its_order(tmp_path: Path) -> None:
    be = (
        b"GGUF"
        + struct.pack(">IQQ", 3, 1, 1)
        + struct.pack(">Q", 1)
        + b"k"
        + struct.pack(">II", 4, 7)
        + struct.pack(">Q", 1)
        + b"t"
        + struct.pack(">IQIQ", 1, 8, 0, 0)
    )
    be += b"\0" * (-len(be) % 32) + b"\0" * 32
    got = gguf_file(tmp_path, be)
    assert codes(got.findings) == {"gguf-big-endian"}
    assert not errors(got.findings)


# ---------------------------------------------------------------- ONNX


def onnx_model(
    initializers: list[TensorProto],
    nodes: list[onnx.NodeProto] | None = None,
    opsets: list[tuple[str, int]] = (("", 17),),  # type: ignore[assignment]
    functions: list[onnx.FunctionProto] | None = None,
) -> onnx.ModelProto:
    nodes = nodes or [helper.make_node("Identity", [initializers[0].name], ["Y"])]
    g = helper.make_graph(
        nodes,
        "g",
        [],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializers,
    )
    return helper.make_model(
        g,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        functions=functions or [],
    )


def external(name: str, location: str, offset: int | None = None, length: int = 16) -> TensorProto:
    t = numpy_helper.from_array(np.zeros(4, np.float32), name)
    onnx.external_data_helper.set_external_data(t, location=location, offset=offset, length=length)
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    return t


def scan_onnx(folder: Path, options: ScanOptions | None = None) -> list[FormatFinding]:
    options = options or ScanOptions()
    f = scan_file(folder / "model.onnx", options)
    assert f.format == "onnx"
    start = time.monotonic()
    folder_findings = check_external_data(folder, [f], options)
    assert time.monotonic() - start < BOUND
    return list(f.findings) + folder_findings


def test_onnx_real_external_data_passes(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "W")
    b = numpy_helper.from_array(np.ones((64,), np.float32), "B")
    node = helper.make_node("Gemm", ["X", "W", "B"], ["Y"])
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 64])
    m = helper.make_model(helper.make_graph([node], "g", [x], [y], [w, b]))
    onnx.save_model(
        m,
        str(tmp_path / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").stat().st_size >= 64 * 65 * 4
    assert scan_onnx(tmp_path) == []
    signed = ScanOptions(signed_files=frozenset({"model.onnx", "weights.bin"}))
    assert scan_onnx(tmp_path, signed) == []
    onnx.checker.check_model(str(tmp_path / "model.onnx"))  # it is a real model


def test_onnx_inline_model_passes(tmp_path: Path) -> None:
    t = numpy_helper.from_array(np.ones((8, 8), np.float32), "W")
    onnx.save(onnx_model([t]), str(tmp_path / "model.onnx"))
    assert scan_onnx(tmp_path) == []


@pytest.mark.parametrize(
    "location",
    [
        "../../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "C:/Windows/win.ini",
        "sub\\..\\x",
        "w.bin\0.txt",
        "./w.bin",
        "a//b",
        "",
    ],
)
def test_onnx_location_not_plain_is_an_error(tmp_path: Path, location: str) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    onnx.save(onnx_model([external("W", location)]), str(tmp_path / "model.onnx"))
    found = scan_onnx(tmp_path)
    assert codes(found) == {"onnx-external-location"}, found
    assert all(f.severity == "error" for f in found)


def test_onnx_location_through_a_symlinked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.bin").write_bytes(b"\0" * 64)
    model = tmp_path / "model"
    model.mkdir()
    (model / "sub").symlink_to(outside, target_is_directory=True)
    onnx.save(onnx_model([external("W", "sub/w.bin")]), str(model / "model.onnx"))
    found = scan_onnx(model)
    assert codes(found) == {"onnx-external-symlink"}
    assert "'sub' is a symbolic link" in found[0].message


def test_onnx_location_a_symlinked_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"\0" * 64)
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").symlink_to(tmp_path / "secret")
    onnx.save(onnx_model([external("W", "w.bin")]), str(model / "model.onnx"))
    assert codes(scan_onnx(model)) == {"onnx-external-symlink"}


def test_onnx_location_a_hardlink(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"\0" * 64)
    model = tmp_path / "model"
    model.mkdir()
    os.link(tmp_path / "secret", model / "w.bin")
    onnx.save(onnx_model([external("W", "w.bin")]), str(model / "model.onnx"))
    found = scan_onnx(model)
    assert codes(found) == {"onnx-external-hardlink"}
    assert "2 hard links" in found[0].message


def test_onnx_location_missing_or_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    model = onnx_model(
        [external("W", "missing.bin"), external("V", "dir"), external("U", "no/such.bin")],
        [helper.make_node("Sum", ["W", "V", "U"], ["Y"])],
    )
    onnx.save(model, str(tmp_path / "model.onnx"))
    found = scan_onnx(tmp_path)
    assert [f.code for f in found] == [
        "onnx-external-missing",
        "onnx-external-not-regular",
        "onnx-external-missing",
    ]


def test_onnx_offset_or_length_past_the_end(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    model = onnx_model(
        [
            external("ok", "w.bin", 48, 16),
            external("W", "w.bin", 1 << 40),
            external("V", "w.bin", 60, 16),
        ],
        [helper.make_node("Sum", ["ok", "W", "V"], ["Y"])],
    )
    onnx.save(model, str(tmp_path / "model.onnx"))
    found = scan_onnx(tmp_path)
    assert [f.code for f in found] == ["onnx-external-out-of-bounds"] * 2
    assert "'W'" in found[0].message and "'V'" in found[1].message


def test_onnx_unsigned_location(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    onnx.save(onnx_model([external("W", "w.bin")]), str(tmp_path / "model.onnx"))
    found = scan_onnx(tmp_path, ScanOptions(signed_files=frozenset({"model.onnx"})))
    assert codes(found) == {"onnx-external-unsigned"}
    assert scan_onnx(tmp_path) == []


def test_onnx_location_in_a_subgraph_and_a_model_in_a_subfolder(tmp_path: Path) -> None:
    sub = tmp_path / "onnx"
    sub.mkdir()
    (sub / "w.bin").write_bytes(b"\0" * 64)
    inner = helper.make_graph(
        [helper.make_node("Identity", ["C"], ["Z"])],
        "then",
        [],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, None)],
        [external("C", "../../etc/passwd")],
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=inner, else_branch=inner)
    onnx.save(onnx_model([cond, external("W", "w.bin")], [node]), str(sub / "model.onnx"))
    f = _scan_file(str(sub / "model.onnx"), "onnx/model.onnx", ScanOptions())
    assert [x.code for x in f.findings] == ["onnx-external-location"] * 2  # then and else
    signed = ScanOptions(signed_files=frozenset({"onnx/w.bin"}))
    assert check_external_data(tmp_path, [f], signed) == []
    signed = ScanOptions(signed_files=frozenset({"w.bin"}))
    assert codes(check_external_data(tmp_path, [f], signed)) == {"onnx-external-unsigned"}


def test_onnx_external_data_keys_checked(tmp_path: Path) -> None:
    t = external("W", "w.bin")
    t.external_data.add(key="offset", value="-1")
    t.external_data.add(key="location", value="v.bin")
    t.external_data.add(key="evil", value="x")
    onnx.save(onnx_model([t]), str(tmp_path / "model.onnx"))
    got = scan_file(tmp_path / "model.onnx")
    messages = " ".join(f.message for f in got.findings)
    assert codes(got.findings) == {"onnx-external-data"}
    assert "unknown external_data key 'evil'" in messages and "twice" in messages
    assert "offset '-1' is not a decimal number" in messages


def test_onnx_custom_domain_is_a_warning(tmp_path: Path) -> None:
    t = numpy_helper.from_array(np.ones(4, np.float32), "W")
    nodes = [
        helper.make_node("MyOp", ["W"], ["A"], domain="com.example"),
        helper.make_node("Relu", ["A"], ["B"], domain="ai.onnx"),
        helper.make_node("LinearRegressor", ["B"], ["Y"], domain="ai.onnx.ml"),
    ]
    opsets = [("", 17), ("com.example", 1), ("ai.onnx.ml", 3), ("org.unused", 1)]
    onnx.save(onnx_model([t], nodes, opsets), str(tmp_path / "model.onnx"))
    found = scan_file(tmp_path / "model.onnx").findings
    assert [(f.code, f.severity) for f in found] == [("onnx-custom-domain", "warning")] * 2
    assert "'com.example' (1 nodes, such as MyOp)" in found[0].message
    assert "'org.unused'" in found[1].message


def test_onnx_model_local_function_is_not_a_custom_op(tmp_path: Path) -> None:
    fn = helper.make_function(
        "local.fns",
        "Double",
        ["x"],
        ["y"],
        [helper.make_node("Add", ["x", "x"], ["y"])],
        [helper.make_opsetid("", 17)],
    )
    t = numpy_helper.from_array(np.ones(4, np.float32), "W")
    node = helper.make_node("Double", ["W"], ["Y"], domain="local.fns")
    model = onnx_model([t], [node], [("", 17), ("local.fns", 1)], [fn])
    onnx.save(model, str(tmp_path / "model.onnx"))
    assert scan_file(tmp_path / "model.onnx").findings == ()


def varint(n: int) -> bytes:
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_onnx_malformed_protobuf_is_a_finding(tmp_path: Path) -> None:
    # ir_version 8, then a graph whose node claims more bytes than the graph holds
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x08" + field(7, b"\x0a\xff\xff\xff\x0f" + b"\0" * 8))
    got = scan_file(p)
    assert got.format == "onnx"
    (f,) = got.findings
    assert f.code == "onnx-malformed" and "past the end of its message" in f.message


def test_onnx_deep_subgraphs_are_bounded(tmp_path: Path) -> None:
    graph = b""
    for _ in range(40):  # graph { node { attribute { g: graph } } }
        graph = field(1, field(5, field(6, graph)))
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x08" + field(7, graph))
    got = scan_file(p)
    assert got.format == "onnx"
    assert codes(got.findings) == {"onnx-malformed"}
    assert "nested more than 32 deep" in got.findings[0].message


# ---------------------------------------------------------------- Keras


def obj(module: str | None, cls: str, config: object = None, **extra: object) -> dict[str, object]:
    out: dict[str, object] = {"class_name": cls, "config": config if config is not None else {}}
    if module is not None:
        out["module"] = module
        out["registered_name"] = None
    out.update(extra)
    return out


def dense(name: str) -> dict[str, object]:
    init = obj("keras.initializers", "GlorotUniform", {"seed": None})
    return obj(
        "keras.layers",
        "Dense",
        {
            "name": name,
            "units": 4,
            "activation": "relu",
            "kernel_initializer": init,
            "bias_initializer": obj("keras.initializers", "Zeros"),
            "dtype": obj("keras", "DTypePolicy", {"name": "float32"}),
        },
        build_config={"input_shape": [None, 4]},
    )


def sequential(*layers: dict[str, object]) -> dict[str, object]:
    model = obj(
        "keras",
        "Sequential",
        {
            "name": "sequential",
            "layers": [obj("keras.layers", "InputLayer", {"batch_shape": [None, 4]}), *layers],
        },
    )
    model["compile_config"] = {
        "optimizer": obj("keras.optimizers", "Adam", {"learning_rate": 0.001}),
        "loss": obj("keras.losses", "MeanSquaredError"),
        "metrics": [obj("keras.metrics", "function", "mean_absolute_error")],
    }
    return model


def keras_check(config: object) -> list[FormatFinding]:
    start = time.monotonic()
    raw = config if isinstance(config, bytes) else json.dumps(config).encode()
    found = check_keras_config(raw, file="m.keras", member="config.json", options=ScanOptions())
    assert time.monotonic() - start < BOUND
    return found


def test_keras_dense_config_passes() -> None:
    assert keras_check(sequential(dense("a"), dense("b"))) == []


def test_keras_legacy_config_without_modules_passes() -> None:
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}},
                {"class_name": "Dropout", "config": {"rate": 0.5}},
            ]
        },
        "keras_version": "2.15.0",
    }
    assert keras_check(config) == []


def test_keras_lambda_layer_with_bytecode() -> None:
    fn = {"class_name": "__lambda__", "config": {"value": ["4wEAAAA=", None, None]}}
    found = keras_check(sequential(dense("a"), obj("keras.layers", "Lambda", {"function": fn})))
    assert codes(found) == {"keras-lambda-layer", "keras-lambda-function"}
    assert "bytecode" in found[0].message and "layers[2]" in found[0].message
    assert all(f.member == "config.json" for f in found)


def test_keras_tf_op_lambda() -> None:
    layer = {"class_name": "TFOpLambda", "config": {"function": "math.add"}}
    found = keras_check({"class_name": "Functional", "config": {"layers": [layer]}})
    assert codes(found) == {"keras-lambda-layer"}
    assert "'math.add'" in found[0].message


@pytest.mark.parametrize(
    ("o", "code"),
    [
        (obj("os", "system", "id"), "keras-module-outside"),
        (obj("builtins", "function", "eval"), "keras-module-outside"),
        (obj("keras_hub.src.models", "Backbone"), "keras-module-outside"),
        (obj("keras.utils", "get_file", {"origin": "http://x"}), "keras-class-unknown"),
        (obj("keras.layers", "NotALayer"), "keras-class-unknown"),
        (obj("keras.activations", "function", "deserialize"), "keras-class-unknown"),
        (obj(None, "MyLayer"), "keras-class-unknown"),
        (obj("keras.layers", "TorchModuleWrapper"), "keras-code-layer"),
        (obj("keras.layers", "TFSMLayer", {"filepath": "/x"}), "keras-code-layer"),
        (obj("keras.layers", "Dense", registered_name="pkg>Dense"), "keras-custom-object"),
    ],
)
def test_keras_objects_outside_the_allowlist(o: dict[str, object], code: str) -> None:
    # anywhere in the tree: here as an initializer of a layer
    layer = dense("a")
    layer["config"]["kernel_initializer"] = o  # type: ignore[index]
    found = keras_check(sequential(layer))
    assert codes(found) == {code}
    assert all(f.severity == "error" for f in found)


def test_keras_config_bounds() -> None:
    deep = b'{"class_name": "Sequential", "config": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert codes(keras_check(deep)) == {"keras-config-invalid"}
    nested: object = {}
    for _ in range(300):
        nested = {"a": nested}
    assert codes(keras_check({"class_name": "Sequential", "config": nested})) == {
        "keras-config-too-large"
    }
    dup = b'{"class_name": "Sequential", "class_name": "Functional", "config": {}}'
    found = keras_check(dup)
    assert codes(found) == {"keras-config-invalid"} and "duplicate key" in found[0].message
    assert codes(keras_check(b"\xff\xfe")) == {"keras-config-invalid"}


def test_keras_config_json_beside_weights(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(sequential(obj("keras.layers", "Lambda", {"function": "f"}))))
    got = scan_file(p)
    assert got.format == "json"
    assert codes(got.findings) == {"keras-lambda-layer"}
    p.write_text(json.dumps(sequential(dense("a"))))
    assert scan_file(p).findings == ()


def fake_h5(config: bytes | None) -> bytes:
    """An HDF5 signature, a root group with a model_config attribute, a global heap."""
    out = b"\x89HDF\r\n\x1a\n" + b"\0" * 120
    if config is None:
        return out + b"layer_names\0" + b"\0" * 64
    out += b"\x0c\0\0\0model_config\0\0\0\0" + b"\0" * 40
    obj_ = struct.pack("<HHIQ", 1, 1, 0, len(config)) + config + b"\0" * (-len(config) % 8)
    heap = b"GCOL\x01\0\0\0" + struct.pack("<Q", 16 + len(obj_) + 16) + obj_ + b"\0" * 16
    return out + heap


def test_legacy_h5_with_model_config(tmp_path: Path) -> None:
    layer = {"class_name": "Lambda", "config": {"function": ["4wEA", None, None]}}
    config = json.dumps({"class_name": "Sequential", "config": {"layers": [layer]}}).encode()
    p = tmp_path / "model.h5"
    p.write_bytes(fake_h5(config))
    got = scan_file(p)
    assert got.format == "hdf5"
    assert [f.code for f in got.findings] == ["keras-h5-model", "keras-lambda-layer"]
    assert "unsafe to load" in got.findings[0].message


def test_legacy_h5_benign_model_still_flagged_and_weights_noted(tmp_path: Path) -> None:
    config = json.dumps({"class_name": "Sequential", "config": {"layers": []}}).encode()
    p = tmp_path / "model.h5"
    p.write_bytes(fake_h5(config))
    assert [f.code for f in scan_file(p).findings] == ["keras-h5-model"]
    p.write_bytes(fake_h5(None))
    (f,) = scan_file(p).findings
    assert (f.code, f.severity) == ("keras-h5-weights", "info")


def test_legacy_h5_real_file_where_h5py_is_installed(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (not a test dependency)")
    config = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    with h5py.File(tmp_path / "model.h5", "w") as f:
        f.attrs["model_config"] = config
        f.create_group("model_weights")
    got = scan_file(tmp_path / "model.h5")
    assert [x.code for x in got.findings] == ["keras-h5-model"]


# ---------------------------------------------------------------- code and auto_map


def json_file(tmp_path: Path, value: object, name: str = "config.json") -> ScannedFile:
    p = tmp_path / name
    p.write_text(value if isinstance(value, str) else json.dumps(value))
    got = scan_file(p)
    assert got.format == "json"
    return got


def test_config_without_auto_map_passes(tmp_path: Path) -> None:
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "x": {"auto_map": 1}}
    assert json_file(tmp_path, config).findings == ()
    assert json_file(tmp_path, [1, 2, {"auto_map": {}}], "list.json").findings == ()


def test_auto_map_is_a_warning_naming_the_classes(tmp_path: Path) -> None:
    config = {
        "model_type": "x",
        "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"},
    }
    (f,) = json_file(tmp_path, config).findings
    assert (f.code, f.severity) == ("code-auto-map", "warning")
    assert "AutoConfig -> configuration_x.XConfig" in f.message
    assert "AutoModel -> modeling_x.XModel" in f.message


def test_auto_map_in_a_tokenizer_config_with_a_list(tmp_path: Path) -> None:
    config = {"auto_map": {"AutoTokenizer": ["tok.XTokenizer", None]}}
    (f,) = json_file(tmp_path, config, "tokenizer_config.json").findings
    assert f.code == "code-auto-map" and "tok.XTokenizer" in f.message


def test_auto_map_escaped_key_and_duplicate_are_seen(tmp_path: Path) -> None:
    text = '{"auto\\u005fmap": {"AutoModel": "a.B"}, "auto_map": {"AutoModel": "c.D"}}'
    found = json_file(tmp_path, text).findings
    assert [f.code for f in found] == ["code-auto-map", "code-auto-map"]
    assert "a.B" in found[0].message and "c.D" in found[1].message


def test_auto_map_to_another_repo_and_outside_the_folder(tmp_path: Path) -> None:
    config = {
        "auto_map": {
            "AutoModel": "evil-org/payload--modeling.Model",
            "AutoConfig": "../../x.Config",
            "AutoTokenizer": "sub/../../tok.T",
        }
    }
    found = json_file(tmp_path, config).findings
    by_code = {f.code: f for f in found}
    assert by_code["code-auto-map-remote"].severity == "warning"
    assert "'evil-org/payload'" in by_code["code-auto-map-remote"].message
    paths = [f for f in found if f.code == "code-auto-map-path"]
    assert len(paths) == 2 and all(f.severity == "error" for f in paths)


def test_auto_map_not_references_is_an_error(tmp_path: Path) -> None:
    found = json_file(tmp_path, {"auto_map": {"AutoModel": {"x": 1}}}).findings
    assert "code-auto-map-invalid" in codes(found)
    found = json_file(tmp_path, {"auto_map": 7}).findings
    assert codes(found) == {"code-auto-map-invalid"}


def test_custom_pipelines(tmp_path: Path) -> None:
    config = {"custom_pipelines": {"my-task": {"impl": "pipe.MyPipeline", "pt": ["AutoModel"]}}}
    (f,) = json_file(tmp_path, config).findings
    assert (f.code, f.severity) == ("code-custom-pipeline", "warning")
    assert "my-task -> pipe.MyPipeline" in f.message


def test_large_json_is_walked_fast(tmp_path: Path) -> None:
    vocab = {f'tok{i}\\"x': i for i in range(300_000)}
    found = json_file(tmp_path, {"model": {"vocab": vocab}, "added": []}, "tokenizer.json")
    assert found.findings == ()
    tail = {"model": {"vocab": vocab}, "auto_map": {"AutoTokenizer": ["t.T", None]}}
    assert codes(json_file(tmp_path, tail, "tokenizer.json").findings) == {"code-auto-map"}


def test_python_files_are_warnings(tmp_path: Path) -> None:
    files = [
        ScannedFile("modeling_x.py", "text", None, False, 10),
        ScannedFile("__pycache__/modeling_x.cpython-312.pyc", "unknown", None, False, 10),
        ScannedFile("config.json", "json", None, False, 10),
        ScannedFile("README.md", "text", None, False, 10),
    ]
    found = check_code_files(tmp_path, files, ScanOptions())
    assert [(f.file, f.code, f.severity) for f in found] == [
        ("modeling_x.py", "code-python-file", "warning"),
        ("__pycache__/modeling_x.cpython-312.pyc", "code-python-file", "warning"),
    ]
    assert "bytecode" in found[1].message


def test_native_extension_modules_are_code(tmp_path):
    # a pickle's GLOBAL of `hubconf_ext` imports hubconf_ext.so from the folder
    files = [
        ScannedFile("hubconf_ext.cpython-311-x86_64-linux-gnu.so", "unknown", None, False, 10),
        ScannedFile("ext.pyd", "unknown", None, False, 10),
        ScannedFile("weights.bin", "unknown", None, False, 10),
    ]
    found = check_code_files(tmp_path, files, ScanOptions())
    assert [(f.file, f.code) for f in found] == [
        ("hubconf_ext.cpython-311-x86_64-linux-gnu.so", "code-native-module"),
        ("ext.pyd", "code-native-module"),
    ]
