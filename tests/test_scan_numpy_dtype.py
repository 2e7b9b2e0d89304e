"""Pickled numpy dtypes whose state numpy trusts (a hostile review of ``provenance scan``).

``numpy.dtype.__setstate__`` takes field offsets, the item size, a
subarray's shape and the flags as the pickle writes them and checks none
of them against the others. Each pickle here uses only allowlisted globals
(``numpy.dtype``, ``_reconstruct``, ``numpy.ndarray``) and would, loaded,
read memory outside an array or use raw bytes as object pointers: a crash
or worse in ``pickle.load``, ``numpy.load(allow_pickle=True)`` and
``torch.load(weights_only=False)``. None is ever loaded here; each test
checks that the scan refuses it, and the last ones that every dtype numpy
itself writes still passes.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from provenance.formats._pickle_scan import scan_pickle_bytes
from provenance.formats._scan import FormatFinding, ScanOptions, _scan_file

np = pytest.importorskip("numpy", reason="numpy is not installed (a test dependency)")

RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]


def scan(data: bytes) -> list[FormatFinding]:
    return scan_pickle_bytes(data, file="f", fmt="pickle", options=ScanOptions(), member=None)


def codes(data: bytes) -> set[str]:
    return {f.code for f in scan(data) if f.severity == "error"}


class Dt:
    """Pickles as numpy does a dtype, ``numpy.dtype(code, False, True)``, with any state."""

    def __init__(self, code: str, state: tuple[Any, ...] | None) -> None:
        self.code, self.state = code, state

    def __reduce__(self) -> tuple[Any, ...]:
        if self.state is None:
            return (np.dtype, (self.code, False, True))
        return (np.dtype, (self.code, False, True), self.state)


class Arr:
    """Pickles as numpy does an array of ``dtype`` over the raw bytes ``data``."""

    def __init__(self, dtype: object, shape: tuple[int, ...], data: bytes) -> None:
        self.dtype, self.shape, self.data = dtype, shape, data

    def __reduce__(self) -> tuple[Any, ...]:
        state = (1, self.shape, self.dtype, False, self.data)
        return (RECONSTRUCT, (np.ndarray, (0,), b"b"), state)


def state(
    fields: dict[str, tuple[Any, ...]] | None = None,
    elsize: int = 8,
    flags: int = 16,
    subarray: tuple[Any, ...] | None = None,
) -> tuple[Any, ...]:
    names = tuple(fields) if fields is not None else None
    return (3, "|", subarray, names, fields, elsize, 1, flags)


HOSTILE = {
    # an object field, flags saying "no objects": 8 raw bytes become a PyObject*
    "object-field-without-object-flags": Arr(
        Dt("V8", state({"a": (np.dtype("O"), 0)})), (1,), b"A" * 8
    ),
    "object-field-with-zero-flags": Dt("V8", state({"a": (np.dtype("O"), 0)}, flags=0)),
    # the object is one level down, in a structured field whose own flags are right
    "nested-object-field": Dt("V8", state({"a": (np.dtype([("c", "O")]), 0)})),
    "object-subarray-without-object-flags": Dt(
        "V16", state(subarray=(np.dtype("O"), (2,)), elsize=16, flags=0)
    ),
    # a field past the item: reads (and writes) memory outside every element
    "field-past-the-item": Dt("V8", state({"a": (np.dtype("i8"), 1 << 20)})),
    "field-straddling-the-end": Dt("V8", state({"a": (np.dtype("i8"), 4)})),
    "negative-offset": Dt("V8", state({"a": (np.dtype("i4"), -4)})),
    # an item size that is not the type code's
    "item-size-larger-than-the-code": Dt("V8", state(elsize=1 << 40, flags=0)),
    "item-size-smaller-than-the-fields": Dt("V16", state({"a": (np.dtype("i8"), 8)}, elsize=8)),
    # a subarray of 8,000 bytes in an item of 8
    "subarray-larger-than-the-item": Dt(
        "V8", state(subarray=(np.dtype("f8"), (1000,)), elsize=8, flags=0)
    ),
    # flags saying "objects" on a dtype of plain bytes
    "object-flags-on-plain-bytes": Dt("V8", state(flags=27)),
    "pointer-flag-on-plain-bytes": Dt("V8", state(flags=0x04)),
    # what numpy never writes
    "fields-on-a-number": Dt("f8", state({"a": (np.dtype("i4"), 0)}, elsize=-1)),
    "names-without-fields": Dt("V8", (3, "|", None, ("a",), None, 8, 1, 16)),
    "fields-in-a-list": Dt("V8", (3, "|", None, ("a",), [(np.dtype("i4"), 0)], 8, 1, 16)),
    "state-version-2": Dt("V8", (2, "|", None, None, None, 8, 1)),
    "field-dtype-of-unknown-size": Dt("V8", state({"a": ("not a dtype", 0)})),
    "huge-flags": Dt("V8", state(flags=1 << 40)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_dtype_state_numpy_would_trust_is_refused(name: str, protocol: int) -> None:
    data = pickle.dumps(HOSTILE[name], protocol=protocol)
    assert codes(data) == {"pickle-build-denied"}, scan(data)


@pytest.mark.parametrize("code", ["object", "O", "O4", "f", "float64", "M16", "V-1", "V٣", "x8"])
def test_a_type_code_numpy_never_writes_is_refused(code: str) -> None:
    # 'object' is an object dtype no flag check would see; 'O4' would be an
    # 8-byte pointer the scan thought 4 bytes wide
    data = pickle.dumps(Dt(code, None), protocol=2)
    assert "pickle-call-arguments" in codes(data), scan(data)


# -- hand-assembled: a dtype changed after something took it


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


DTYPE = b"cnumpy\ndtype\n"
NEW_V8 = DTYPE + _str("V8") + b"\x89\x88\x87R"  # numpy.dtype('V8', False, True)
OBJECT_DTYPE = (  # numpy.dtype('O8', False, True) with numpy's own state
    DTYPE + _str("O8") + b"\x89\x88\x87R"
    b"(K\x03" + _str("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ftb"
)
# a consistent state with one object field: flags 0x1b
OBJECT_FIELD_STATE = (
    b"(K\x03" + _str("|") + b"N" + _str("a") + b"\x85}" + _str("a") + OBJECT_DTYPE + b"K\x00\x86s"
    b"K\x08K\x01K\x1bt"
)
ARRAY_OF_MEMO_1 = (  # _reconstruct(ndarray, (0,), b'b') BUILD (1, (1,), memo[1], False, 8 bytes)
    b"cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
    b"(K\x01K\x01\x85h\x01\x89C\x08AAAAAAAAtb"
)


def test_a_dtype_built_after_an_array_took_it_is_refused() -> None:
    # the array holds 8 plain bytes; building its dtype afterwards gives it
    # an object field, and the array's bytes become a pointer
    data = (
        b"\x80\x03" + NEW_V8 + b"q\x01" + ARRAY_OF_MEMO_1 + b"q\x02"
        b"0h\x01" + OBJECT_FIELD_STATE + b"b0h\x02."
    )
    assert "pickle-malformed" not in {f.code for f in scan(data)}
    assert codes(data) == {"pickle-build-denied"}, scan(data)


def test_a_field_dtype_built_after_the_outer_one_is_refused() -> None:
    # the outer dtype checked an inner 'V8' of plain bytes, then the inner
    # one is given an object field
    outer_state = (
        b"(K\x03" + _str("|") + b"N" + _str("a") + b"\x85}" + _str("a") + b"h\x01K\x00\x86s"
        b"K\x08K\x01K\x10t"
    )
    data = (
        b"\x80\x03" + NEW_V8 + b"q\x01" + NEW_V8 + outer_state + b"bq\x02"
        b"0h\x01" + OBJECT_FIELD_STATE + b"b0h\x02."
    )
    assert "pickle-malformed" not in {f.code for f in scan(data)}
    assert codes(data) == {"pickle-build-denied"}, scan(data)


def test_fields_changed_after_the_dtype_was_built_are_refused() -> None:
    # numpy keeps the very dict: a SETITEM on it later adds an object field
    int64 = DTYPE + _str("i8") + b"\x89\x88\x87R(K\x03" + _str("<")
    int64 += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    head = b"(K\x03" + _str("|") + b"N" + _str("a") + b"\x85}q\x05" + _str("a")
    good_state = head + int64 + b"K\x00\x86sK\x08K\x01K\x10t"
    data = (
        b"\x80\x03" + NEW_V8 + good_state + b"bq\x01"
        b"0h\x05" + _str("a") + OBJECT_DTYPE + b"K\x00\x86s0h\x01."
    )
    assert "pickle-malformed" not in {f.code for f in scan(data)}
    assert codes(data) == {"pickle-build-denied"}, scan(data)


def test_a_good_dtype_assembled_by_hand_passes() -> None:
    # the same bytes as above without the late change: the check is the change
    data = b"\x80\x03" + NEW_V8 + OBJECT_FIELD_STATE + b"b."
    assert scan(data) == []


# -- the same dtype in the files a loader opens


def test_in_an_npy_object_array(tmp_path: Path) -> None:
    path = tmp_path / "w.npy"
    np.save(path, np.array([HOSTILE["object-field-without-object-flags"]], dtype=object))
    got = _scan_file(str(path), "w.npy", ScanOptions())
    assert "pickle-build-denied" in {f.code for f in got.findings if f.severity == "error"}


def test_in_a_torch_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (the transformers extra)")
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2), "x": HOSTILE["object-field-without-object-flags"]}, path)
    got = _scan_file(str(path), "w.pt", ScanOptions())
    assert "pickle-build-denied" in {f.code for f in got.findings if f.severity == "error"}


# -- every dtype numpy writes still passes


GOOD: list[object] = [
    *["f8", ">u2", "?", "b", "c16", "g", "e", "O", "S4", "U3", "V8", "M8[s]", "m8[ns]", "M8"],
    [("a", "<i4"), ("b", "f8", (2,))],
    [("a", "<i4"), ("o", "O")],
    [("a", [("c", "O"), ("d", "i1")])],
    [("o", "O", (3,))],
    ("f8", (2, 3)),
    ("O", (2,)),
    ("V4", [("lo", "<i2"), ("hi", "<i2")]),
    {"names": ["a"], "formats": ["i4"], "offsets": [4], "itemsize": 16},
    {"names": ["a", "b"], "formats": ["i4", "O"], "offsets": [0, 8], "titles": ["A", "B"]},
    np.dtype([("x", "i1"), ("y", "<i8")], align=True),
    np.dtype({"names": [], "formats": [], "itemsize": 0}),
    np.dtype("f8", metadata={"unit": "m"}),
]


@pytest.mark.parametrize("spec", GOOD, ids=repr)
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_every_dtype_numpy_writes_passes(spec: object, protocol: int) -> None:
    dtype = np.dtype(spec)  # type: ignore[call-overload]
    for value in (dtype, np.zeros(3, dtype=dtype), np.zeros((), dtype=dtype)[()]):
        data = pickle.dumps(value, protocol=protocol)
        assert scan(data) == [], (spec, type(value), scan(data))
