"""provenance scan: safetensors headers and sharded-checkpoint indexes.

Benign files are written by the real ``safetensors`` package
(``safetensors.numpy.save_file``) and indexes as ``transformers`` writes
them; hostile ones are built here byte by byte, each breaking one rule.
Every hostile case is timed: a check must answer within a bound.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from provenance.formats import Detected, _safetensors, _scan, scan
from provenance.formats._safetensors import DTYPE_BITS, check_safetensors
from provenance.formats._scan import FormatFinding, ScanOptions, Source

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def only_these_checkers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """scan() with only the checkers under test, so other formats' findings stay out."""
    monkeypatch.setattr(_scan, "_CHECKERS", {"safetensors": "_safetensors:check_safetensors"})
    monkeypatch.setattr(_scan, "_FOLDER_CHECKERS", ("_index:check_indexes",))
    yield


def check_file(path: Path, bound: float = 2.0) -> list[FormatFinding]:
    """check_safetensors on a file, whatever detection says; must answer within ``bound`` s."""
    fd = os.open(path, os.O_RDONLY)
    try:
        start = time.monotonic()
        found = check_safetensors(
            Source(fd, os.fstat(fd).st_size, path.name),
            Detected("safetensors", False, None),
            ScanOptions(),
            path.name,
        )
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
    assert elapsed < bound, f"{elapsed:.2f} s"
    for f in found:
        assert f.format == "safetensors" and f.file == path.name
        assert f.message.isprintable(), f.message
    return found


def codes(found: list[FormatFinding]) -> set[str]:
    return {f.code for f in found}


def raw_file(tmp_path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    """A file of an 8-byte length, ``header`` and ``data``."""
    p = tmp_path / "t.safetensors"
    n = len(header) if length is None else length
    p.write_bytes(struct.pack("<Q", n) + header + data)
    return p


def hostile(
    tmp_path: Path, header: dict[str, Any] | str, data: bytes = b"", pad: bytes = b""
) -> list[FormatFinding]:
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    return check_file(raw_file(tmp_path, text.encode() + pad, data))


def build(
    tensors: list[tuple[str, str, list[int]]], metadata: dict[str, str] | None = None
) -> tuple[dict[str, Any], bytes]:
    """A valid header and buffer for ``tensors`` (name, dtype, shape), laid out in order."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * DTYPE_BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, bytes(range(256)) * (offset // 256) + bytes(offset % 256)


def st(tmp_path: Path, header: dict[str, Any], data: bytes, name: str = "t.safetensors") -> Path:
    """A file as the reference writes it: JSON padded with spaces to 8 bytes."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    p = tmp_path / name
    p.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return p


TENSOR = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


# ---------------------------------------------------------------- benign


NUMPY_DTYPES = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.uint64,
    np.int32,
    np.uint32,
    np.int16,
    np.uint16,
    np.int8,
    np.uint8,
    np.bool_,
    np.complex64,
]


def test_real_file_every_numpy_dtype_with_metadata_and_empty_tensors(tmp_path: Path) -> None:
    tensors: dict[str, np.ndarray] = {}
    for i, dt in enumerate(NUMPY_DTYPES):
        tensors[f"layer.{i}.weight"] = np.arange(6).reshape(2, 3).astype(dt)
        tensors[f"layer.{i}.empty"] = np.zeros((3, 0, 2), dtype=dt)
        tensors[f"layer.{i}.scalar"] = np.array(1, dtype=dt)
    tensors["zero.vector"] = np.zeros((0,), np.float32)
    p = tmp_path / "model.safetensors"
    save_file(tensors, str(p), metadata={"format": "np", "note": "line\nbreak, \u00e9"})
    assert check_file(p) == []
    report = scan(p)
    assert report.ok and report.files[0].format == "safetensors", report.to_json()


def test_real_file_without_metadata_and_with_no_tensors(tmp_path: Path) -> None:
    p = tmp_path / "a.safetensors"
    save_file({"w": np.ones((4, 4), np.float16)}, str(p))
    assert check_file(p) == []
    q = tmp_path / "b.safetensors"
    save_file({}, str(q), metadata={"k": "v"})
    assert check_file(q) == []


def test_every_dtype_of_the_spec_hand_built(tmp_path: Path) -> None:
    # Sub-byte types with whole-byte element counts (F4: 2 per byte, F6: 4 in 3 bytes).
    shapes = {"F4": [2, 4], "F6_E2M3": [4], "F6_E3M2": [8]}
    tensors = [(f"t.{d}", d, shapes.get(d, [3, 2])) for d in DTYPE_BITS]
    header, data = build(tensors, {"format": "pt"})
    assert check_file(st(tmp_path, header, data)) == []


def test_hand_built_files_load_in_the_reference(tmp_path: Path) -> None:
    """The builder is right: the reference library reads what it makes."""
    header, data = build([("a", "F32", [2, 3]), ("b", "I8", [0]), ("c", "U8", [])], {"x": "y"})
    p = st(tmp_path, header, data)
    with safe_open(str(p), framework="np") as f:
        assert sorted(f.keys()) == ["a", "b", "c"]
        assert f.metadata() == {"x": "y"}
    assert check_file(p) == []


def test_tensors_in_any_order_in_the_header(tmp_path: Path) -> None:
    header = {
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]},
        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "e": {"dtype": "U8", "shape": [0], "data_offsets": [8, 8]},
        "e2": {"dtype": "U8", "shape": [0], "data_offsets": [8, 8]},
    }
    assert check_file(st(tmp_path, header, bytes(8))) == []


def test_reads_only_the_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.safetensors"
    header, _ = build([("w", "U8", [64 << 20])])
    text = json.dumps(header).encode()
    with big.open("wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(8 + len(text) + (64 << 20))  # a sparse buffer
    asked: list[int] = []
    real = Source.read

    def read(self: Source, offset: int, n: int) -> bytes:
        asked.append(n)
        assert offset < 8 + len(text)
        return real(self, offset, n)

    monkeypatch.setattr(Source, "read", read)
    assert check_file(big) == []
    assert sum(asked) <= 8 + len(text)


# ---------------------------------------------------------------- the length and the bytes


def test_truncated_file(tmp_path: Path) -> None:
    p = tmp_path / "t.safetensors"
    p.write_bytes(b"\x05\x00\x00")
    assert codes(check_file(p)) == {"safetensors-truncated"}


def test_header_size_cap(tmp_path: Path) -> None:
    p = raw_file(tmp_path, b'{"a":1}', length=_safetensors.MAX_HEADER + 1)
    found = check_file(p)
    assert codes(found) == {"safetensors-header-too-large"} and found[0].offset == 0


def test_header_longer_than_the_file(tmp_path: Path) -> None:
    p = raw_file(tmp_path, b"{}", b"", length=3)
    assert codes(check_file(p)) == {"safetensors-header-out-of-bounds"}


def test_leading_space(tmp_path: Path) -> None:
    # serde_json (and so the reference) accepts it; the spec says '{' first.
    assert codes(hostile(tmp_path, " " + json.dumps({"a": TENSOR}), bytes(8))) == {
        "safetensors-header-start"
    }


def test_not_json_at_all(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, "GARBAGE!", b"")) == {"safetensors-header-start"}


@pytest.mark.parametrize("pad", [b"\n", b"\t  ", b"\x00\x00", b"  x", b" }"])
def test_padding_other_than_spaces(tmp_path: Path, pad: bytes) -> None:
    found = hostile(tmp_path, {"a": TENSOR}, bytes(8), pad=pad)
    assert "safetensors-header-padding" in codes(found) or "safetensors-header-json" in codes(
        found
    ), found
    assert codes(found) <= {"safetensors-header-padding", "safetensors-header-json"}


def test_padding_with_spaces_is_fine(tmp_path: Path) -> None:
    assert hostile(tmp_path, {"a": TENSOR}, bytes(8), pad=b"       ") == []


def test_invalid_utf8(tmp_path: Path) -> None:
    text = b'{"a\xff":' + json.dumps(TENSOR).encode() + b"}"
    found = check_file(raw_file(tmp_path, text, bytes(8)))
    assert codes(found) == {"safetensors-header-utf8"}
    assert found[0].offset == 8 + 3


@pytest.mark.parametrize(
    "bad",
    [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],  # overlong, surrogate, > U+10FFFF
)
def test_utf8_forms_the_reference_refuses(tmp_path: Path, bad: bytes) -> None:
    text = b'{"__metadata__":{"k":"' + bad + b'"}}'
    assert codes(check_file(raw_file(tmp_path, text))) == {"safetensors-header-utf8"}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity(tmp_path: Path, constant: str) -> None:
    text = '{"a":{"dtype":"F32","shape":[' + constant + '],"data_offsets":[0,8]}}'
    assert codes(hostile(tmp_path, text, bytes(8))) == {"safetensors-header-json"}


def test_json_syntax_error_gives_the_byte(tmp_path: Path) -> None:
    found = hostile(tmp_path, '{"a":{"dtype":"F32",,}}', bytes(8))
    assert codes(found) == {"safetensors-header-json"}
    assert found[0].offset == 8 + 20


def test_raw_control_character_in_a_string(tmp_path: Path) -> None:
    text = '{"a\x01":' + json.dumps(TENSOR) + "}"
    assert codes(hostile(tmp_path, text, bytes(8))) == {"safetensors-header-json"}


def test_top_level_not_an_object(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, " []", b"")) >= {"safetensors-header-start"}
    assert codes(hostile(tmp_path, "{}", b"")) == set()


def test_deep_nesting(tmp_path: Path) -> None:
    text = '{"a":' + "[" * 200_000 + "]" * 200_000 + "}"
    assert codes(hostile(tmp_path, text, b"")) == {"safetensors-header-json"}


# ---------------------------------------------------------------- keys


def test_duplicate_tensor_at_top_level(tmp_path: Path) -> None:
    # The reference keeps the last of two (a HashMap): the first's bytes would hide.
    t = json.dumps(TENSOR)
    found = hostile(tmp_path, '{"a":' + t + ',"a":' + t + "}", bytes(8))
    assert codes(found) == {"safetensors-duplicate-key"}
    assert "'a'" in found[0].message


def test_duplicate_key_inside_a_tensor(tmp_path: Path) -> None:
    text = '{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}'
    found = hostile(tmp_path, text, bytes(8))
    assert codes(found) == {"safetensors-duplicate-key"}
    assert "tensor 'a'" in found[0].message and "'dtype'" in found[0].message


def test_duplicate_key_in_metadata(tmp_path: Path) -> None:
    text = '{"__metadata__":{"k":"1","k":"2"}}'
    assert codes(hostile(tmp_path, text)) == {"safetensors-duplicate-key"}


def test_duplicate_metadata_block(tmp_path: Path) -> None:
    text = '{"__metadata__":{"k":"1"},"__metadata__":{"k":"2"}}'
    assert codes(hostile(tmp_path, text)) == {"safetensors-duplicate-key"}


def test_extra_key_in_a_tensor(tmp_path: Path) -> None:
    found = hostile(tmp_path, {"a": {**TENSOR, "format": "pickle"}}, bytes(8))
    assert codes(found) == {"safetensors-tensor-extra-key"}
    assert "'format'" in found[0].message and found[0].offset == 8 + len(
        json.dumps({"a": {**TENSOR, "format": "pickle"}}, separators=(",", ":"))
    )


@pytest.mark.parametrize("key", ["dtype", "shape", "data_offsets"])
def test_missing_key(tmp_path: Path, key: str) -> None:
    t = {k: v for k, v in TENSOR.items() if k != key}
    want = {"safetensors-tensor-missing-key"}
    if key == "data_offsets":
        want.add("safetensors-trailing-data")  # its 8 bytes then belong to no tensor
    assert codes(hostile(tmp_path, {"a": t}, bytes(8))) == want


def test_tensor_not_an_object(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, {"a": [1, 2]})) == {"safetensors-tensor-not-object"}


@pytest.mark.parametrize(
    "meta", [{"k": 1}, {"k": {"nested": "x"}}, {"k": None}, {"k": ["a"]}, "string", [1]]
)
def test_metadata_not_a_flat_string_map(tmp_path: Path, meta: object) -> None:
    assert codes(hostile(tmp_path, {"__metadata__": meta})) == {"safetensors-metadata"}


def test_metadata_lone_surrogate(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, '{"__metadata__":{"k":"\\ud800"}}')) == {"safetensors-metadata"}


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["", "a\u0000b", "evil\x1b[2J", "a\u007f", "a\u0085", "admin\u202egnp.", "x\u2066", "\ud800"],
)
def test_bad_tensor_names(tmp_path: Path, name: str) -> None:
    found = hostile(tmp_path, json.dumps({name: TENSOR}), bytes(8))
    assert codes(found) == {"safetensors-tensor-name"}, found
    assert found[0].message.isprintable()


def test_unicode_names_are_fine(tmp_path: Path) -> None:
    assert hostile(tmp_path, json.dumps({"poids.é.权重": TENSOR}), bytes(8)) == []


# ---------------------------------------------------------------- dtypes and shapes


@pytest.mark.parametrize("dtype", ["F128", "f32", "float32", "", "F8_E4M3FN", 5, None, ["F32"]])
def test_unknown_dtype(tmp_path: Path, dtype: object) -> None:
    t = {**TENSOR, "dtype": dtype}
    assert codes(hostile(tmp_path, {"a": t}, bytes(8))) == {"safetensors-dtype"}


def test_shape_size_mismatch(tmp_path: Path) -> None:
    found = hostile(tmp_path, {"a": {**TENSOR, "shape": [3]}}, bytes(8))
    assert codes(found) == {"safetensors-size-mismatch"}
    assert "12 bytes" in found[0].message


def test_sub_byte_dtype_must_fill_whole_bytes(tmp_path: Path) -> None:
    t = {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}
    assert codes(hostile(tmp_path, {"a": t}, bytes(2))) == {"safetensors-misaligned"}


@pytest.mark.parametrize(
    "shape",
    [[2**62, 2**62], [2**62, 4], [0, 2**62, 2**62], [2**32, 2**32], [2**61, 0, 8]],
)
def test_overflowing_shape(tmp_path: Path, shape: list[int]) -> None:
    t = {"dtype": "U8", "shape": shape, "data_offsets": [0, 8]}
    assert codes(hostile(tmp_path, {"a": t}, bytes(8))) == {"safetensors-shape-overflow"}


def test_large_but_fitting_zero_size_shape(tmp_path: Path) -> None:
    t = {"dtype": "U8", "shape": [0, 2**40], "data_offsets": [0, 0]}
    assert hostile(tmp_path, {"a": t}) == []


@pytest.mark.parametrize(
    "shape", ["[-1]", "[2.0]", "[1e3]", "[true]", "[null]", '["2"]', "[[2]]", "2",
              "[9223372036854775808]", "[123456789012345678901234567890]"]
)  # fmt: skip
def test_shape_not_a_list_of_dims(tmp_path: Path, shape: str) -> None:
    text = '{"a":{"dtype":"U8","shape":' + shape + ',"data_offsets":[0,2]}}'
    assert codes(hostile(tmp_path, text, bytes(2))) == {"safetensors-shape"}


def test_too_many_dims(tmp_path: Path) -> None:
    t = {"dtype": "U8", "shape": [1] * (_safetensors.MAX_DIMS + 1), "data_offsets": [0, 1]}
    assert codes(hostile(tmp_path, {"a": t}, bytes(1))) == {"safetensors-shape"}
    t["shape"] = [1] * _safetensors.MAX_DIMS
    assert hostile(tmp_path, {"a": t}, bytes(1)) == []


# ---------------------------------------------------------------- offsets and the buffer


def two(a: list[int], b: list[int], data: int, dtype: str = "U8") -> dict[str, Any]:
    return {
        "a": {"dtype": dtype, "shape": [a[1] - a[0]], "data_offsets": a},
        "b": {"dtype": dtype, "shape": [max(b[1] - b[0], 0)], "data_offsets": b},
    }


def test_overlapping_ranges(tmp_path: Path) -> None:
    found = hostile(tmp_path, two([0, 8], [4, 12], 12), bytes(12))
    assert codes(found) == {"safetensors-overlap"}
    assert found[0].offset is not None and found[0].offset > 8
    assert "'b'" in found[0].message and "'a'" in found[0].message


def test_same_range_twice(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, two([0, 8], [0, 8], 8), bytes(8))) == {"safetensors-overlap"}


def test_empty_tensor_inside_another(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, two([0, 8], [4, 4], 8), bytes(8))) == {"safetensors-overlap"}


def test_gap(tmp_path: Path) -> None:
    found = hostile(tmp_path, two([0, 4], [6, 10], 10), bytes(10))
    assert codes(found) == {"safetensors-gap"}
    assert "[4, 6]" in found[0].message


def test_gap_at_the_start(tmp_path: Path) -> None:
    t = {"a": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}
    assert codes(hostile(tmp_path, t, bytes(8))) == {"safetensors-gap"}


def test_trailing_bytes(tmp_path: Path) -> None:
    found = hostile(tmp_path, {"a": TENSOR}, bytes(8) + b"PK\x03\x04 polyglot")
    assert codes(found) == {"safetensors-trailing-data"}
    assert found[0].offset == 8 + len(json.dumps({"a": TENSOR}, separators=(",", ":"))) + 8


def test_no_tensors_but_data(tmp_path: Path) -> None:
    assert codes(hostile(tmp_path, {}, b"hidden")) == {"safetensors-trailing-data"}


def test_range_out_of_bounds(tmp_path: Path) -> None:
    found = hostile(tmp_path, {"a": {**TENSOR, "data_offsets": [0, 8]}}, bytes(4))
    assert codes(found) == {"safetensors-out-of-bounds"}


@pytest.mark.parametrize(
    "offsets", ["[8,0]", "[0]", "[0,8,9]", "[0.0,8]", "[0,8e0]", "[-8,0]", '["0","8"]', "{}",
                "[0,18446744073709551616]", "[true,8]"]
)  # fmt: skip
def test_bad_offsets(tmp_path: Path, offsets: str) -> None:
    text = '{"a":{"dtype":"U8","shape":[8],"data_offsets":' + offsets + "}}"
    found = codes(hostile(tmp_path, text, bytes(8)))
    assert "safetensors-offsets" in found, found
    # the unusable tensor covers nothing, so its bytes are left over
    assert found <= {"safetensors-offsets", "safetensors-trailing-data"}


# ---------------------------------------------------------------- bounds


def test_million_tensors_bound_is_fast(tmp_path: Path) -> None:
    # Over the limit by more than the top-level and __metadata__ objects: refused by
    # counting braces, before any parsing (the exact limit is tested below).
    n = _safetensors.MAX_TENSORS + 3
    entry = '"t%d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}'
    text = "{" + ",".join(entry % i for i in range(n)) + "}"
    found = check_file(raw_file(tmp_path, text.encode()), bound=5.0)
    assert codes(found) == {"safetensors-too-many-tensors"}


def test_tensor_count_limit_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_safetensors, "MAX_TENSORS", 100)
    entry = '"t%d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}'
    meta = '"__metadata__":{"a":"b"},'
    at_limit = "{" + meta + ",".join(entry % i for i in range(100)) + "}"
    assert check_file(raw_file(tmp_path, at_limit.encode())) == []
    over = "{" + meta + ",".join(entry % i for i in range(101)) + "}"
    assert codes(check_file(raw_file(tmp_path, over.encode()))) == {"safetensors-too-many-tensors"}


def test_braces_inside_strings_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_safetensors, "MAX_TENSORS", 10)
    header, data = build([("a", "U8", [2])], {"config": "{[,]}" * 1000})
    assert check_file(st(tmp_path, header, data)) == []


def test_millions_of_empty_arrays_are_not_parsed(tmp_path: Path) -> None:
    text = '{"a":[' + ",".join(["[]"] * 3_000_000) + "]}"
    found = check_file(raw_file(tmp_path, text.encode()), bound=5.0)
    assert codes(found) == {"safetensors-header-too-complex"}


def test_millions_of_numbers_are_not_parsed(tmp_path: Path) -> None:
    text = '{"a":{"dtype":"U8","shape":[' + ",".join(["1"] * 17_000_000) + "]}}"
    found = check_file(raw_file(tmp_path, text.encode()), bound=8.0)
    assert codes(found) == {"safetensors-header-too-complex"}


def test_findings_are_capped(tmp_path: Path) -> None:
    header = {f"t{i}": {"dtype": "X", "shape": [0], "data_offsets": [0, 0]} for i in range(500)}
    found = hostile(tmp_path, header)
    assert len(found) == _safetensors.FINDINGS_PER_CODE + 1
    assert "480 more" in found[-1].message and found[-1].code == "safetensors-dtype"


def test_scan_reports_a_hostile_file_through_the_dispatcher(tmp_path: Path) -> None:
    st(tmp_path, two([0, 8], [4, 12], 12), bytes(12), name="model.safetensors")
    report = scan(tmp_path)
    assert not report.ok
    assert {f.code for f in report.findings} == {"safetensors-overlap"}
    assert report.findings[0].file == "model.safetensors"


# ---------------------------------------------------------------- sharded checkpoints


def write_shards(folder: Path, shards: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Shards by save_file and the index as transformers' save_pretrained writes it."""
    weight_map: dict[str, str] = {}
    total = 0
    for name, tensors in shards.items():
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        for t, a in tensors.items():
            weight_map[t] = name
            total += a.nbytes
    return {"metadata": {"total_size": total}, "weight_map": weight_map}


def write_index(folder: Path, index: object, name: str = "model.safetensors.index.json") -> None:
    (folder / name).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


S1 = "model-00001-of-00002.safetensors"
S2 = "model-00002-of-00002.safetensors"


def sharded(folder: Path) -> dict[str, Any]:
    index = write_shards(
        folder,
        {
            S1: {"embed.weight": np.ones((8, 4), np.float32), "norm": np.ones(4, np.float16)},
            S2: {"lm_head.weight": np.ones((8, 4), np.float32), "empty": np.zeros(0, np.int8)},
        },
    )
    write_index(folder, index)
    (folder / "config.json").write_text('{"architectures": ["X"]}')
    return index


def index_codes(folder: Path, bound: float = 2.0) -> list[FormatFinding]:
    start = time.monotonic()
    report = scan(folder)
    assert time.monotonic() - start < bound
    found = [f for f in report.findings if f.code.startswith("index-")]
    for f in found:
        assert f.message.isprintable(), f.message
        assert f.file.endswith(".index.json")
    return found


def test_real_sharded_checkpoint_passes(tmp_path: Path) -> None:
    sharded(tmp_path)
    report = scan(tmp_path)
    assert report.ok and report.findings == (), report.to_json()


def test_sharded_checkpoint_in_a_subfolder(tmp_path: Path) -> None:
    sub = tmp_path / "text_encoder"
    sub.mkdir()
    sharded(sub)
    assert scan(tmp_path).findings == ()


def test_shard_names_relative_to_the_index(tmp_path: Path) -> None:
    sub = tmp_path / "text_encoder"
    sub.mkdir()
    index = sharded(sub)
    (sub / "model.safetensors.index.json").unlink()
    write_index(tmp_path, {**index, "weight_map": {k: v for k, v in index["weight_map"].items()}})
    found = {f.code for f in index_codes(tmp_path)}
    assert "index-shard-missing" in found  # the shards are in text_encoder/, not beside it


def test_index_missing_shard(tmp_path: Path) -> None:
    sharded(tmp_path)
    (tmp_path / S2).unlink()
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-shard-missing"}
    assert S2 in found[0].message


def test_unreferenced_shard(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    save_file({"extra": np.ones(2, np.float32)}, str(tmp_path / "model-00003-of-00003.safetensors"))
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-shard-unreferenced"}
    assert "model-00003-of-00003" in found[0].message
    assert index["weight_map"]  # the index itself is untouched


@pytest.mark.parametrize(
    "shard",
    ["../model-00002-of-00002.safetensors", "/etc/passwd", "sub\\x.safetensors",
     "C:x.safetensors", "a//b.safetensors", "./model-00002-of-00002.safetensors", "",
     "sub/../model-00002-of-00002.safetensors", "x\u0000.safetensors"],
)  # fmt: skip
def test_shard_names_that_escape_or_are_not_plain(tmp_path: Path, shard: str) -> None:
    inner = tmp_path / "model"
    inner.mkdir()
    index = sharded(inner)
    save_file({"lm_head.weight": np.ones((8, 4), np.float32)}, str(tmp_path / S2))
    index["weight_map"]["lm_head.weight"] = shard
    write_index(inner, index)
    found = {f.code for f in index_codes(inner)}
    assert "index-shard-name" in found, found
    assert "index-shard-missing" not in found


def test_tensor_in_the_wrong_shard(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["weight_map"]["lm_head.weight"] = S1
    write_index(tmp_path, index)
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-tensor-wrong-shard"}
    assert "lm_head.weight" in found[0].message and S2 in found[0].message


def test_tensor_in_no_shard(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["weight_map"]["ghost"] = S1
    write_index(tmp_path, index)
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-tensor-missing"}


def test_tensor_the_index_does_not_list(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    del index["weight_map"]["norm"]
    index["metadata"]["total_size"] -= 8
    write_index(tmp_path, index)
    found = index_codes(tmp_path)
    # the tensor is still in the shard and counts in its size
    assert {f.code for f in found} == {"index-tensor-unlisted", "index-total-size"}


def test_tensor_in_two_shards(tmp_path: Path) -> None:
    index = write_shards(
        tmp_path,
        {
            S1: {"a": np.ones(2, np.float32), "c": np.ones(2, np.float32)},
            S2: {"a": np.ones(2, np.float32), "b": np.ones(1)},
        },
    )
    assert index["weight_map"] == {"a": S2, "b": S2, "c": S1}
    index["metadata"]["total_size"] = 24  # each tensor name once
    write_index(tmp_path, index)
    assert {f.code for f in index_codes(tmp_path)} == {"index-tensor-duplicate"}


def test_total_size_mismatch(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["metadata"]["total_size"] += 1
    write_index(tmp_path, index)
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-total-size"}


@pytest.mark.parametrize("total", ["100", 1.5, -1, True, None])
def test_total_size_not_an_integer(tmp_path: Path, total: object) -> None:
    index = sharded(tmp_path)
    index["metadata"]["total_size"] = total
    write_index(tmp_path, index)
    assert {f.code for f in index_codes(tmp_path)} == {"index-total-size"}


def test_no_total_size_is_fine(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["metadata"] = {"total_parameters": 3}
    write_index(tmp_path, index)
    assert index_codes(tmp_path) == []


def test_shard_that_is_not_safetensors(tmp_path: Path) -> None:
    sharded(tmp_path)
    (tmp_path / S2).write_bytes(pickle.dumps({"lm_head.weight": 1}, protocol=4))
    found = {f.code for f in index_codes(tmp_path)}
    assert "index-shard-format" in found


def test_duplicate_key_in_the_index(tmp_path: Path) -> None:
    sharded(tmp_path)
    p = tmp_path / "model.safetensors.index.json"
    text = p.read_text().replace('"weight_map": {', f'"weight_map": {{"norm": "{S2}",', 1)
    p.write_text(text)
    found = {f.code for f in index_codes(tmp_path)}
    assert "index-duplicate-key" in found


@pytest.mark.parametrize(
    "text",
    ['{"weight_map": {"a": NaN}}', "[1]", '{"weight_map": {}} trailing', "\ufeff{}", "{",
     '{"weight_map": {"a": "x"}, "weight_map": {}}'],
)  # fmt: skip
def test_index_not_json_as_loaders_read_it(tmp_path: Path, text: str) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(text)
    found = {f.code for f in index_codes(tmp_path)}
    assert found & {"index-json", "index-duplicate-key"}, found


def test_index_without_weight_map(tmp_path: Path) -> None:
    write_index(tmp_path, {"metadata": {}})
    assert {f.code for f in index_codes(tmp_path)} == {"index-weight-map"}


def test_index_too_complex_is_not_parsed(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": [' + ",".join(["{}"] * 500_000) + "]}}"
    )
    assert {f.code for f in index_codes(tmp_path)} == {"index-too-complex"}


def test_shadowed_by_the_unsharded_file(tmp_path: Path) -> None:
    sharded(tmp_path)
    save_file({"w": np.ones(1, np.float32)}, str(tmp_path / "model.safetensors"))
    found = index_codes(tmp_path)
    assert {f.code for f in found} == {"index-shadowed"}
    assert found[0].severity == "info"
    assert scan(tmp_path).ok


def fake_torch_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        z.writestr("archive/version", "3\n")


B1 = "pytorch_model-00001-of-00002.bin"
B2 = "pytorch_model-00002-of-00002.bin"


def torch_sharded(folder: Path) -> None:
    fake_torch_zip(folder / B1)
    fake_torch_zip(folder / B2)
    write_index(
        folder,
        {"metadata": {"total_size": 64}, "weight_map": {"a": B1, "b": B2}},
        "pytorch_model.bin.index.json",
    )


def test_torch_index_passes(tmp_path: Path) -> None:
    torch_sharded(tmp_path)
    assert index_codes(tmp_path) == []


def test_torch_index_missing_and_unreferenced_shards(tmp_path: Path) -> None:
    torch_sharded(tmp_path)
    (tmp_path / B2).unlink()
    fake_torch_zip(tmp_path / "pytorch_model-00003-of-00003.bin")
    assert {f.code for f in index_codes(tmp_path)} == {
        "index-shard-missing",
        "index-shard-unreferenced",
    }


def test_torch_index_shard_that_is_not_torch(tmp_path: Path) -> None:
    torch_sharded(tmp_path)
    (tmp_path / B2).write_text("hello")
    assert {f.code for f in index_codes(tmp_path)} == {"index-shard-format"}


def test_index_shard_is_a_link(tmp_path: Path) -> None:
    """A link is refused by the walk, so it is no shard of the listing."""
    sharded(tmp_path)
    outside = tmp_path.parent / (tmp_path.name + "-outside.safetensors")
    (tmp_path / S2).rename(outside)
    (tmp_path / S2).symlink_to(outside)
    found = {f.code for f in index_codes(tmp_path)}
    assert "index-shard-missing" in found


def test_shard_whose_header_does_not_parse(tmp_path: Path) -> None:
    sharded(tmp_path)
    text = b'{"lm_head.weight": {"dtype": "F32",,}}'
    (tmp_path / S2).write_bytes(struct.pack("<Q", len(text)) + text + bytes(128))
    report = scan(tmp_path)
    found = {f.code: f for f in report.findings}
    assert found["safetensors-header-json"].file == S2  # the shard's own finding
    assert found["index-shard-unchecked"].severity == "info"
    assert not {"index-tensor-missing", "index-total-size"} & set(found)


def test_index_metadata_and_names(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["metadata"] = "big"
    index["extra"] = 1
    index["weight_map"]["bad\u0007name"] = S1
    write_index(tmp_path, index)
    found = {f.code: f for f in index_codes(tmp_path)}
    assert found["index-metadata"].severity == "error"
    assert found["index-unknown-key"].severity == "info"
    assert "\\x07" in found["index-tensor-name"].message
    assert "index-tensor-missing" in found  # and no shard holds it


def test_index_weight_map_value_not_a_string(tmp_path: Path) -> None:
    index = sharded(tmp_path)
    index["weight_map"]["norm"] = [S1]
    write_index(tmp_path, index)
    found = {f.code for f in index_codes(tmp_path)}
    assert "index-weight-map" in found and "index-tensor-unlisted" in found


def test_many_bad_entries_are_capped_and_fast(tmp_path: Path) -> None:
    weight_map = {f"t{i}": f"../x{i}.safetensors" for i in range(200_000)}
    write_index(tmp_path, {"weight_map": weight_map})
    found = index_codes(tmp_path, bound=10.0)
    assert len(found) == 21 and "199980 more" in found[-1].message
