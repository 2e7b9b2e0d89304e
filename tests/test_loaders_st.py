"""Verified loading, safetensors part: tensors built over the verified buffer (issue 11).

Benign files are written by the real ``safetensors`` package and read back
by it for comparison; hostile ones are built byte by byte, each breaking one
rule, and must be refused with an :class:`InputError` that names the file,
before any framework sees them. Torch tests run only where torch is installed.
"""

from __future__ import annotations

import ctypes
import json
import math
import struct
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from provenance.errors import InputError, UsageError
from provenance.loaders._st import NUMPY_DTYPES, TORCH_DTYPES, Entry, header, tensors

NAME = "model.safetensors"

# ---------------------------------------------------------------- helpers


def file_bytes(path: Path) -> bytearray:
    """A file read once into memory the test owns, as the loader's caller does."""
    return bytearray(path.read_bytes())


def raw(text: str | bytes, data: bytes = b"") -> bytearray:
    """A safetensors file built byte by byte: the length, the header as given, the data."""
    head = text.encode("utf-8") if isinstance(text, str) else text
    return bytearray(struct.pack("<Q", len(head)) + head + data)


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def built(entries: dict[str, Any], data: bytes) -> bytearray:
    return raw(json.dumps(entries), data)


def denied(buf: bytearray | bytes, code: str = "format-denied") -> InputError:
    """tensors() refuses ``buf`` with an InputError naming the file (never another exception)."""
    with pytest.raises(InputError) as info:
        tensors(memoryview(buf), NAME)
    err = info.value
    assert err.code == code, (err.code, str(err))
    assert f"'{NAME}'" in str(err), str(err)
    assert str(err).isprintable(), str(err)
    return err


def padded(buf: bytearray, spaces: int) -> bytearray:
    """``buf`` with ``spaces`` more spaces padding its header: its data moves by that much."""
    n = int.from_bytes(buf[:8], "little")
    return bytearray(struct.pack("<Q", n + spaces) + buf[8 : 8 + n] + b" " * spaces + buf[8 + n :])


def address(buf: bytearray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def root(arr: np.ndarray[Any, Any]) -> object:
    """The object at the end of an array's ``base`` chain: whatever owns its memory."""
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


#: One array of each dtype NumPy and safetensors share, in assorted shapes.
SAMPLES: dict[str, np.ndarray[Any, Any]] = {
    "f64": np.linspace(-1, 1, 12).reshape(3, 4),
    "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    "f16": np.array([0.5, -2.0, np.inf, 65504.0], dtype=np.float16),
    "i64": np.array([-(2**63), 2**63 - 1, 0], dtype=np.int64),
    "i32": np.arange(-5, 5, dtype=np.int32).reshape(2, 5),
    "i16": np.array([[-32768, 32767]], dtype=np.int16),
    "i8": np.array([-128, 127, 0, 1], dtype=np.int8),
    "u64": np.array([2**64 - 1, 0], dtype=np.uint64),
    "u32": np.array([2**32 - 1], dtype=np.uint32),
    "u16": np.arange(6, dtype=np.uint16).reshape(1, 2, 3),
    "u8": np.arange(256, dtype=np.uint8),
    "bool": np.array([[True, False], [False, True]]),
    "c64": np.array([1 + 2j, -3.5j], dtype=np.complex64),
    "scalar": np.array(3.25, dtype=np.float32),
    "scalar_i8": np.array(-7, dtype=np.int8),
    "empty": np.zeros((0,), dtype=np.float32),
    "empty_mid": np.zeros((2, 0, 3), dtype=np.int64),
    "one": np.ones((1, 1, 1, 1), dtype=np.float64),
}


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = tmp_path / NAME
    save_file(SAMPLES, str(path), metadata={"format": "np", "note": "é ✓"})
    return path


def same(got: dict[str, Any], want: dict[str, np.ndarray[Any, Any]]) -> None:
    assert set(got) == set(want)
    for key, arr in want.items():
        assert got[key].dtype == arr.dtype, key
        assert got[key].shape == arr.shape, key
        assert np.array_equal(got[key], arr, equal_nan=arr.dtype.kind in "fc"), key


# ---------------------------------------------------------------- numpy: benign


def test_numpy_matches_safetensors(sample_file: Path) -> None:
    buf = file_bytes(sample_file)
    got = tensors(memoryview(buf), NAME)
    same(got, load_file(str(sample_file)))
    same(got, SAMPLES)


def test_header_is_the_files(sample_file: Path) -> None:
    buf = file_bytes(sample_file)
    parsed = header(memoryview(buf), NAME)
    n = int.from_bytes(buf[:8], "little")
    on_disk = json.loads(buf[8 : 8 + n])
    meta = on_disk.pop("__metadata__")
    with safe_open(str(sample_file), framework="np") as f:
        assert parsed.metadata == meta == f.metadata()
    assert parsed.data_start == 8 + n
    assert list(parsed.entries) == list(on_disk)  # the header's order
    for key, e in on_disk.items():
        assert parsed.entries[key] == Entry(e["dtype"], tuple(e["shape"]), *e["data_offsets"])
    with pytest.raises(AttributeError):
        parsed.data_start = 0  # type: ignore[misc]


def test_arrays_are_views_of_the_buffer(sample_file: Path) -> None:
    buf = file_bytes(sample_file)
    got = tensors(memoryview(buf), NAME)
    whole = np.frombuffer(buf, dtype=np.uint8)
    for key, arr in got.items():
        if arr.size == 0:
            continue  # nothing to view: a fresh empty array
        assert np.shares_memory(arr, whole), key
        assert root(arr) is buf, key
        assert arr.flags.writeable, key
    got["f32"][0, 0, 0] = 42.0  # a write lands in the buffer itself
    assert tensors(memoryview(buf), NAME)["f32"][0, 0, 0] == 42.0


def test_read_only_buffer_gives_read_only_views(sample_file: Path) -> None:
    data = sample_file.read_bytes()
    got = tensors(memoryview(data), NAME)
    same(got, SAMPLES)
    assert not any(a.flags.writeable for a in got.values() if a.size)
    assert root(got["u8"]) is data


def test_unaligned_data_is_still_a_view(sample_file: Path) -> None:
    # A header padded by 3 spaces (allowed) puts every tensor at an odd address.
    buf = padded(file_bytes(sample_file), 3)
    got = tensors(memoryview(buf), NAME)
    same(got, SAMPLES)
    assert not got["f64"].flags.aligned
    assert root(got["f64"]) is buf


def test_zero_dim_and_zero_size(tmp_path: Path) -> None:
    path = tmp_path / NAME
    want = {
        "s": np.array(1.5),
        "z": np.zeros((0, 5), np.uint16),
        "zz": np.zeros((3, 0), np.bool_),
    }
    save_file(want, str(path))
    got = tensors(memoryview(file_bytes(path)), NAME)
    same(got, want)
    assert got["s"].ndim == 0 and got["z"].shape == (0, 5)


def test_no_tensors(tmp_path: Path) -> None:
    path = tmp_path / NAME
    save_file({}, str(path), metadata={"only": "metadata"})
    buf = file_bytes(path)
    assert tensors(memoryview(buf), NAME) == {}
    assert header(memoryview(buf), NAME).metadata == {"only": "metadata"}


def test_a_view_of_another_format_is_read_as_bytes(sample_file: Path) -> None:
    buf = file_bytes(sample_file)
    chars = memoryview(buf).cast("c")  # one-byte items of format 'c', not 'B'
    same(tensors(chars, NAME), SAMPLES)  # type: ignore[arg-type]


def test_a_strided_buffer_is_refused(sample_file: Path) -> None:
    buf = file_bytes(sample_file)
    with pytest.raises(UsageError, match="C-contiguous"):
        tensors(memoryview(buf)[::2], NAME)


def test_unknown_framework() -> None:
    buf = built({"a": entry("U8", [1], 0, 1)}, b"\x00")
    with pytest.raises(UsageError, match="unknown framework"):
        tensors(memoryview(buf), NAME, "jax")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dtype", ["BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4"]
)
def test_numpy_has_no_type_for_these_use_torch(dtype: str) -> None:
    nbytes = {"BF16": 8, "F4": 2}.get(dtype, 4)  # four values
    entries = {"w": entry(dtype, [4], 0, nbytes), "b": entry("U8", [1], nbytes, nbytes + 1)}
    err = denied(built(entries, bytes(nbytes + 1)), "dtype-unsupported")
    assert dtype in str(err) and 'framework="torch"' in str(err)


@pytest.mark.parametrize("dtype", ["F6_E2M3", "F6_E3M2"])
def test_no_framework_has_these(dtype: str) -> None:
    err = denied(built({"w": entry(dtype, [4], 0, 3)}, bytes(3)), "dtype-unsupported")
    assert dtype in str(err) and "torch" not in str(err)


def test_dtype_tables_cover_only_known_dtypes() -> None:
    from provenance.formats._safetensors import DTYPE_BITS

    assert set(NUMPY_DTYPES) <= set(TORCH_DTYPES) <= set(DTYPE_BITS)
    for st, np_name in NUMPY_DTYPES.items():
        dt = np.dtype(np_name)
        assert dt.itemsize * 8 == DTYPE_BITS[st], st
        assert dt.str[0] in "<|", st  # little-endian on any host


# ---------------------------------------------------------------- memory


def test_building_tensors_allocates_nothing_like_the_data(tmp_path: Path) -> None:
    path = tmp_path / NAME
    mib = 1 << 20
    save_file(
        {
            "big": np.ones(40 * mib // 4, dtype=np.float32),
            "mask": np.ones(16 * mib, dtype=np.bool_),  # its bytes are checked, in chunks
            "ids": np.arange(8 * mib // 8, dtype=np.int64).reshape(1024, -1),
        },
        str(path),
    )
    buf = file_bytes(path)
    assert len(buf) > 64 * mib
    tracemalloc.start()
    try:
        got = tensors(memoryview(buf), NAME)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < mib, peak
    assert float(got["big"][-1]) == 1.0 and int(got["ids"][-1, -1]) == 8 * mib // 8 - 1


# ---------------------------------------------------------------- hostile


def test_offsets_past_the_end() -> None:
    err = denied(built({"a": entry("U8", [8], 0, 8)}, bytes(4)))
    assert "past the end" in str(err)


def test_offsets_overlap() -> None:
    buf = built({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, bytes(6))
    assert "overlaps" in str(denied(buf))


def test_offsets_leave_a_gap() -> None:
    buf = built({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 4, 6)}, bytes(6))
    assert "belong to no tensor" in str(denied(buf))


def test_bytes_after_the_last_tensor() -> None:
    assert "after the last tensor" in str(denied(built({"a": entry("U8", [4], 0, 4)}, bytes(6))))


def test_two_tensors_over_the_same_bytes() -> None:
    buf = built({"a": entry("F32", [1], 0, 4), "b": entry("I32", [1], 0, 4)}, bytes(4))
    assert "overlaps" in str(denied(buf))


def test_begin_after_end() -> None:
    assert "after end" in str(denied(built({"a": entry("U8", [0], 4, 0)}, bytes(4))))


def test_header_length_past_the_end() -> None:
    err = denied(bytearray(struct.pack("<Q", 1000) + b"{}"))
    assert "past the end of the file" in str(err)


def test_header_length_over_the_limit() -> None:
    assert "over the limit" in str(denied(bytearray(struct.pack("<Q", 2**63) + b"{}")))


@pytest.mark.parametrize("size", [0, 3, 7])
def test_shorter_than_the_length(size: int) -> None:
    denied(bytearray(size))


def test_unknown_dtype() -> None:
    err = denied(built({"a": entry("X9", [4], 0, 4)}, bytes(4)))
    assert "'X9' is not a known dtype" in str(err)


def test_shape_does_not_match_the_size() -> None:
    err = denied(built({"a": entry("F32", [2], 0, 4)}, bytes(4)))
    assert "shape and dtype make 8 bytes" in str(err)


def test_shape_overflowing_64_bits() -> None:
    denied(built({"a": entry("U8", [2**32, 2**32], 0, 0)}, b""))


def test_duplicate_keys() -> None:
    # safetensors itself keeps the last 'a' silently (it covers the data exactly)
    text = (
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
        '"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'
    )
    assert "more than once" in str(denied(raw(text, bytes(4))))


def test_header_not_utf8() -> None:
    text = b'{"a\xff":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'
    assert "not UTF-8" in str(denied(raw(text, bytes(4))))


def test_header_not_json() -> None:
    assert "not JSON" in str(denied(raw('{"a": nope}')))


@pytest.mark.parametrize(
    "text",
    [
        ' {"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}',  # leading space
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}\t',  # tab padding
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"x":1}}',  # an extra key
    ],
)
def test_what_safetensors_accepts_and_the_checker_does_not(text: str) -> None:
    denied(raw(text, bytes(4)))


def test_bool_bytes_other_than_0_or_1() -> None:
    err = denied(built({"m": entry("BOOL", [4], 0, 4)}, b"\x00\x01\x02\x01"))
    assert "BOOL tensor 'm'" in str(err)


def test_every_finding_is_in_the_details() -> None:
    entries = {f"t{i}": entry("X9", [1], i, i + 1) for i in range(8)}
    err = denied(built(entries, bytes(8)))
    assert len(err.details) == 8 and all(d.startswith("safetensors-dtype: ") for d in err.details)
    assert "and 3 more" in str(err)


def test_a_hostile_name_is_shown_escaped() -> None:
    buf = built({"a": entry("U8", [8], 0, 8)}, bytes(4))
    with pytest.raises(InputError) as info:
        tensors(memoryview(buf), "evil\x1b[2J.safetensors")
    assert "evil\\x1b[2J.safetensors" in str(info.value)


# ---------------------------------------------------------------- torch


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")


def torch_bytes(t: Any, torch: Any) -> bytes:
    """A tensor's bytes, whatever its dtype (float8 types have no equality)."""
    return bytes(t.reshape(-1).view(torch.uint8).tolist())


def denied_torch(buf: bytearray, code: str = "format-denied") -> InputError:
    with pytest.raises(InputError) as info:
        tensors(memoryview(buf), NAME, "torch")
    assert info.value.code == code and f"'{NAME}'" in str(info.value)
    return info.value


def torch_samples(torch: Any) -> dict[str, Any]:
    """One tensor of each dtype torch and safetensors share, including scalar and empty."""
    pattern = torch.arange(256, dtype=torch.uint8)
    out: dict[str, Any] = {}
    for st, attr in TORCH_DTYPES.items():
        dt = getattr(torch, attr)
        size = torch.empty(0, dtype=dt).element_size()
        flat = pattern[: 24 * size] if dt is not torch.bool else pattern[:24] % 2
        out[st] = flat.clone().view(dt).reshape(4, 6)
    out["scalar"] = torch.tensor(2.5, dtype=torch.bfloat16)
    out["empty"] = torch.zeros((0, 3), dtype=torch.float8_e4m3fn)
    out["f32"] = torch.linspace(-3, 3, 10)
    return out


def test_torch_matches_safetensors(tmp_path: Path, torch: Any) -> None:
    from safetensors.torch import load_file as torch_load
    from safetensors.torch import save_file as torch_save

    path = tmp_path / NAME
    want = torch_samples(torch)
    torch_save(want, str(path))
    got = tensors(memoryview(file_bytes(path)), NAME, "torch")
    ref = torch_load(str(path))
    assert set(got) == set(ref) == set(want)
    for key, t in ref.items():
        assert got[key].dtype == t.dtype == want[key].dtype, key
        assert got[key].shape == t.shape == want[key].shape, key
        assert torch_bytes(got[key], torch) == torch_bytes(t, torch), key


def test_torch_tensors_are_views_of_the_buffer(tmp_path: Path, torch: Any) -> None:
    from safetensors.torch import save_file as torch_save

    path = tmp_path / NAME
    torch_save(torch_samples(torch), str(path))
    buf = file_bytes(path)
    parsed = header(memoryview(buf), NAME)
    got = tensors(memoryview(buf), NAME, "torch")
    base = address(buf)
    for key, t in got.items():
        e = parsed.entries[key]
        if e.begin == e.end:
            continue
        assert t.data_ptr() == base + parsed.data_start + e.begin, key
    got["F32"].view(-1)[0] = 1234.5  # writes land in the buffer
    assert tensors(memoryview(buf), NAME, "torch")["F32"].view(-1)[0] == 1234.5


def test_torch_copies_only_an_unaligned_tensor(tmp_path: Path, torch: Any) -> None:
    from safetensors.torch import save_file as torch_save

    path = tmp_path / NAME
    want = {"f": torch.arange(6, dtype=torch.float32), "u": torch.arange(5, dtype=torch.uint8)}
    torch_save(want, str(path))
    buf = padded(file_bytes(path), 1)  # every tensor one byte off
    parsed = header(memoryview(buf), NAME)
    got = tensors(memoryview(buf), NAME, "torch")
    assert torch.equal(got["f"], want["f"]) and torch.equal(got["u"], want["u"])
    start, stop = address(buf), address(buf) + len(buf)
    assert not start <= got["f"].data_ptr() < stop  # copied ...
    assert got["f"].data_ptr() % 4 == 0  # ... into aligned memory
    assert got["u"].data_ptr() == start + parsed.data_start + parsed.entries["u"].begin


def test_torch_scalar_and_empty(torch: Any) -> None:
    buf = built(
        {
            "s": entry("F32", [], 0, 4),
            "z": entry("BF16", [0, 7], 4, 4),
            "f4": entry("F4", [2, 0], 4, 4),
        },
        struct.pack("<f", 0.75),
    )
    got = tensors(memoryview(buf), NAME, "torch")
    assert got["s"].shape == () and float(got["s"]) == 0.75
    assert got["z"].shape == (0, 7) and got["z"].dtype == torch.bfloat16
    assert got["f4"].shape == (2, 0) and got["f4"].dtype == torch.float4_e2m1fn_x2


def test_torch_f4_needs_an_even_last_dimension(torch: Any) -> None:
    err = denied_torch(built({"w": entry("F4", [2, 3], 0, 3)}, bytes(3)), "dtype-unsupported")
    assert "last dimension even" in str(err)


def test_torch_refuses_hostile_files_the_same(torch: Any) -> None:
    buf = built({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, bytes(6))
    assert "overlaps" in str(denied_torch(buf))
    assert "BOOL" in str(denied_torch(built({"m": entry("BOOL", [1], 0, 1)}, b"\x07")))


def test_torch_refuses_a_read_only_buffer(tmp_path: Path, torch: Any) -> None:
    buf = bytes(built({"a": entry("U8", [4], 0, 4)}, bytes(4)))
    with pytest.raises(UsageError, match="writable"):
        tensors(memoryview(buf), NAME, "torch")


def test_torch_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if it were not installed
    buf = built({"a": entry("U8", [4], 0, 4)}, bytes(4))
    with pytest.raises(UsageError, match="torch is not installed"):
        tensors(memoryview(buf), NAME, "torch")


def test_the_samples_hold_every_numpy_dtype() -> None:
    assert {np.dtype(v) for v in NUMPY_DTYPES.values()} <= {a.dtype for a in SAMPLES.values()}
    assert any(a.ndim == 0 for a in SAMPLES.values())
    assert any(math.prod(a.shape) == 0 and a.ndim > 1 for a in SAMPLES.values())
