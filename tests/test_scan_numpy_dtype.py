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
    order: str = "|",
) -> tuple[Any, ...]:
    names = tuple(fields) if fields is not None else None
    return (3, order, subarray, names, fields, elsize, 1, flags)


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
    # numpy reads a NULL for a datetime's missing metadata; a multiplier of 0
    "datetime-without-metadata": Dt("M8", (3, "<", None, None, None, -1, -1, 0)),
    "datetime-with-a-zero-multiplier": Dt(
        "M8", (4, "<", None, None, None, -1, -1, 0, (None, (b"s", 0, 1, 1)))
    ),
    # -1 is "the code's size" only for fixed-size kinds: a V8 would get -1
    "void-of-item-size-minus-one": Dt("V8", state({"a": (Dt("V8", state(elsize=-1)), 0)})),
    "number-with-an-item-size": Dt("f8", (3, "<", None, None, None, 8, 8, 0)),
    # an alignment of 0 is a division by zero in the first copy
    "alignment-zero": Dt("V8", (3, "|", None, None, None, 8, 0, 0)),
    "alignment-not-a-power-of-two": Dt("U2", (3, "<", None, None, None, 8, 3, 8)),
    # a name without its field is a NULL; a field without its name
    "names-not-the-fields": Dt("V8", (3, "|", None, ("b",), {"a": (np.dtype("i8"), 0)}, 8, 1, 16)),
    "a-name-twice": Dt("V8", (3, "|", None, ("a", "a"), {"a": (np.dtype("i4"), 0)}, 8, 1, 16)),
    # byte-swapped pointers
    "big-endian-object": Dt("O8", (3, ">", None, None, None, -1, -1, 63)),
    "big-endian-structured": Dt("V8", state({"o": (np.dtype("O"), 0)}, flags=27, order=">")),
    # an empty dtype inside another: numpy resizes empty dtypes in place
    "empty-field": Dt("V8", state({"a": (np.dtype("V0"), 0)})),
    # flags other than numpy's: NPY_USE_GETITEM on plain bytes reads a NULL;
    # an object subarray without NPY_USE_GETITEM hands out raw pointers
    "getitem-flag-on-plain-bytes": Dt("V8", state(flags=0x20)),
    "object-subarray-with-struct-flags": Dt(
        "V16", state(subarray=(np.dtype("O"), (2,)), elsize=16, flags=0x1B)
    ),
    # the same bytes seen as an object and as something else
    "object-field-overlapping-a-number": Dt(
        "V8", state({"o": (np.dtype("O"), 0), "i": (np.dtype("<i8"), 0)}, flags=0x1B)
    ),
    "object-field-on-a-number": Dt(
        "<i8", (3, "<", None, ("o",), {"o": (np.dtype("O"), 0)}, -1, -1, 0x1B)
    ),
    "subarray-and-fields": Dt(
        "V8",
        (3, "|", (np.dtype("O"), (1,)), ("i",), {"i": (np.dtype("<i8"), 0)}, 8, 8, 0x3F),
    ),
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
NEW_ARRAY = b"cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
STATE_OF_MEMO_1 = b"(K\x01K\x01\x85h\x01\x89C\x08AAAAAAAAt"  # (1, (1,), memo[1], False, 8 bytes)
ARRAY_OF_MEMO_1 = NEW_ARRAY + STATE_OF_MEMO_1 + b"b"


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


def test_a_dtype_inside_itself_is_refused() -> None:
    # hashing it (as a dict key) recurses in C until the stack is gone
    for where in ("field", "subarray"):
        d = Dt("V8", None)
        if where == "field":
            d.state = state({"a": (d, 0)})
        else:
            d.state = state(subarray=(d, (1,)), flags=0)
        data = pickle.dumps({d: 1}, protocol=2)
        assert codes(data) == {"pickle-build-denied"}, (where, scan(data))


class Sc:
    def __init__(self, *args: object) -> None:
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.multiarray import scalar

        return (scalar, self.args)


def test_a_scalar_without_its_data_is_refused() -> None:
    # numpy writes scalar(dtype, data); scalar(dtype) resizes an empty
    # dtype in place, under an array that already took it
    d = Dt("V0", state(elsize=0, flags=0))
    data = pickle.dumps([Arr(d, (1,), b""), Sc(d)], protocol=2)
    assert "pickle-call-arguments" in codes(data), scan(data)


def test_an_octal_flag_is_read_as_octal() -> None:
    # I031 is 25 to the C unpickler: an object dtype without NPY_LIST_PICKLE,
    # so the array's 8 raw bytes become a pointer
    def i(text: bytes) -> bytes:
        return b"I" + text + b"\n"

    data = (
        b"\x80\x03cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(b"0")
        + b"\x85C\x01b\x87R(" + i(b"1") + i(b"1") + b"\x85" + DTYPE + _str("O8")
        + b"\x89\x88\x87R(" + i(b"3") + _str("|") + b"NNN" + i(b"-1") + i(b"-1") + i(b"031")
        + b"tb\x89C\x08AAAAAAAAtb."
    )  # fmt: skip
    assert codes(data) == {"pickle-build-denied"}, scan(data)
    # with the flags numpy writes (63, octal 077) and a list of one object
    # for its one item, it is the object array numpy pickles
    fine = data.replace(i(b"031"), i(b"077")).replace(b"C\x08AAAAAAAA", b"]Na")
    assert scan(fine) == []


def test_an_array_state_past_the_bound_on_kept_tuples_is_refused() -> None:
    # once no tuple is kept the array's dtype is not known, so it cannot be
    # sealed: its BUILD is refused rather than passed
    from provenance.formats._pickle_scan import MAX_KEPT

    pad = (b"(" + b"N" * 64 + b"t0") * (MAX_KEPT // 64 + 2)
    head = b"\x80\x03" + NEW_V8 + b"q\x01" + NEW_ARRAY
    data = head + pad + STATE_OF_MEMO_1 + b"b."
    assert codes(data) == {"pickle-build-denied"}, scan(data)[:3]
    assert codes(head + STATE_OF_MEMO_1 + b"b.") == set()


# -- arrays and scalars over a dtype numpy writes


class Raw:
    """An array as numpy pickles it, with any BUILD state."""

    def __init__(self, state: tuple[Any, ...], shape: tuple[int, ...] = (0,)) -> None:
        self.state, self.shape = state, shape

    def __reduce__(self) -> tuple[Any, ...]:
        return (RECONSTRUCT, (np.ndarray, self.shape, b"b"), self.state)


OBJECTS = np.dtype([("a", "O"), ("b", "i8")])
EMPTY = np.dtype({"names": [], "formats": [], "itemsize": 0})


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # numpy reads one list item per element, without checking the length
        (Raw((1, (1,), np.dtype("O"), False, [])), "pickle-build-denied"),
        (Raw((1, (50,), OBJECTS, False, [(1, 2)])), "pickle-build-denied"),
        (Raw((1, (2,), np.dtype("O"), False, b"A" * 16)), "pickle-build-denied"),
        (Raw((0, (1,), np.dtype("f8"), False, b"A" * 8)), "pickle-build-denied"),
        # a scalar of a structured dtype with objects reads its array's first
        # item, there or not
        (Sc(OBJECTS, Raw((1, (0,), OBJECTS, False, []))), "pickle-call-arguments"),
        (Sc(OBJECTS, b"A" * 16), "pickle-call-arguments"),
        # _reconstruct allocates the shape it is given (numpy writes (0,))
        (Raw((1, (1,), np.dtype("f8"), False, b"A" * 8), (1 << 31,)), "pickle-call-arguments"),
        # no bytes bound an array of empty items: 2**62 of them
        (Raw((1, (1 << 62,), EMPTY, False, b"")), "pickle-build-denied"),
    ],
    ids=["short-list", "short-list-struct", "object-bytes", "version-0", "scalar-of-empty",
         "scalar-bytes", "huge-shape", "empty-items"],
)  # fmt: skip
def test_an_array_or_scalar_numpy_would_read_past_is_refused(value: object, code: str) -> None:
    data = pickle.dumps(value, protocol=2)
    assert code in codes(data), scan(data)


def test_an_object_array_with_as_many_items_as_its_shape_passes() -> None:
    for value in (
        Raw((1, (2,), np.dtype("O"), False, [1, None])),
        Raw((1, (2,), OBJECTS, False, [(1, 2), (None, 3)])),
        Sc(OBJECTS, Raw((1, (), OBJECTS, False, [(1, 2)]))),
    ):
        assert scan(pickle.dumps(value, protocol=2)) == []


def test_a_dtype_nested_past_the_bound_is_refused() -> None:
    # numpy's C code recurses through a dtype's fields (hashing it, for one)
    d: object = np.dtype("i8")
    for _ in range(40):
        d = Dt("V8", state({"a": (d, 0)}))
    data = pickle.dumps({d: 1}, protocol=4)
    assert codes(data) == {"pickle-build-denied"}


def test_a_huge_memo_index_is_refused() -> None:
    # the C unpickler sizes its memo by the index: 2 GB for this one
    for data in (b"\x80\x02Nr\x00\x00\x00\x08.", b"Np134217728\n."):
        assert "pickle-limit" in codes(data), scan(data)


def test_field_names_that_are_bytes_under_encoding_bytes_are_refused() -> None:
    # SHORT_BINSTRING is bytes to pickle.load(encoding="bytes"): names and
    # fields would no longer match
    data = (
        b"\x80\x02" + NEW_V8 + b"(K\x03" + _str("|") + b"N" + _str("a") + b"\x85}U\x01a"
        + DTYPE + _str("i8") + b"\x89\x88\x87R(K\x03" + _str("<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbK\x00\x86sK\x08K\x01K\x10tb."
    )  # fmt: skip
    assert codes(data) == {"pickle-build-denied"}, scan(data)
    assert scan(data.replace(b"U\x01a", _str("a"))) == []


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
    np.dtype([("a", "i4")], metadata={"unit": "m"}),
    np.dtype("M8[10s]", metadata={"tz": "UTC"}),
    ">U3",
    ">M8[D]",
    ("U2", (3,)),
    ("S3", (2,)),
    ("M8[s]", (2,)),
    [("t", "M8[ms]"), ("big", ">f8")],
    np.dtype([("x", "i1"), ("y", "f16")], align=True),
    np.dtype(("i4", [("lo", "<i2"), ("hi", "<i2")])),
    [(f"c{i}", "f4") for i in range(300)],
]


@pytest.mark.parametrize("spec", GOOD, ids=repr)
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_every_dtype_numpy_writes_passes(spec: object, protocol: int) -> None:
    dtype = np.dtype(spec)  # type: ignore[call-overload]
    for value in (dtype, np.zeros(3, dtype=dtype), np.zeros((), dtype=dtype)[()]):
        data = pickle.dumps(value, protocol=protocol)
        assert scan(data) == [], (spec, type(value), scan(data))


# -- numbers in text opcodes, read as the C unpickler reads them


def _scanned_value(data: bytes) -> object:
    from provenance.formats import _pickle_scan as ps

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n] if offset >= 0 else b""

    got = ps._Scanner(
        read, 0, len(data), file="f", fmt="pickle", options=ScanOptions(), member=None, layout=None
    ).run()
    if any(f.code == "pickle-malformed" for f in got.findings):
        return "error"
    v = got.value
    assert v is not None
    if v.kind == ps.K_BOOL:
        return "bool"
    assert v.kind == ps.K_INT, v.kind
    return v.data


def _loaded_value(data: bytes) -> object:
    try:
        v = pickle.loads(data)  # the C unpickler; INT and LONG build no object
    except Exception:
        return "error"
    return "bool" if isinstance(v, bool) else v


def _lines() -> list[bytes]:
    import random

    fixed = [
        b"", b"0", b"1", b"00", b"01", b"031", b" 1", b"+1", b"-0", b"-1", b"0x1f", b"0X1F",
        b"0x", b"0xg", b"08", b"1_0", b"0o17", b"0b11", b" 12", b"12 ", b"\t5", b"\v5", b"\f7",
        b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
        b"-9223372036854775809", b"0777777777777777777777777", b"12\x0099", b"\x001", b"1\x00",
        b"+", b"-", b" ", b"0_1", b"0x_1", b"1__0", b"00_0", b"0 ", b"1" * 120, b"0" + b"7" * 30,
        b"I", b"1L", b"0x1fL", b"031L", b"L",
    ]  # fmt: skip
    rnd = random.Random(7)
    alphabet = b"0123456789xXabfo_+- \t\x00\vL"
    return fixed + [bytes(rnd.choices(alphabet, k=rnd.randint(0, 7))) for _ in range(3000)]


@pytest.mark.parametrize("opcode", [b"I", b"L"])
def test_text_integers_are_read_as_the_c_unpickler_reads_them(opcode: bytes) -> None:
    # "I031" is 25 to _pickle (strtol, base 0), and a dtype's flags of 031
    # would pass a check that read 31
    for line in _lines():
        data = opcode + line + b"\n."
        want, got = _loaded_value(data), _scanned_value(data)
        if got is None:  # too long to keep: the scan only checked it is a number
            assert isinstance(want, int), line
            continue
        assert got == want, (opcode, line, want, got)


def test_empty_setitems_and_dict_are_fine() -> None:
    # MARK then SETITEMS with nothing, or DICT of nothing: what no pickler
    # writes, and no reason to fail
    assert scan(b"\x80\x02}(u(d.") == []


# -- titles, shared offsets and subarrays: where the scan's model of the
# state could differ from numpy's


def _equal_but_distinct(text: str) -> tuple[str, str]:
    a, b = "".join(text), "".join([text[:1], text[1:]])
    assert a == b and a is not b
    return a, b


F8 = np.dtype("f8")
SUB = Dt("V16", state(subarray=(F8, (2,)), elsize=16, flags=0))  # ('f8', (2,))
_KEY, _TITLE = _equal_but_distinct("TT")

OBJ = np.dtype("O")


def _fields_state(fields: dict[str, tuple[Any, ...]], names: tuple[str, ...], size: int) -> Any:
    flags = 0x1B if any(v[0] is OBJ for v in fields.values()) else 0x10
    return Dt(f"V{size}", (3, "|", None, names, fields, size, 1, flags))


SUBTLE = {
    # numpy on CPython knows a title's entry by identity (its third item is
    # the very key): an equal str that is another object makes it a second
    # object field over the first
    "title-equal-not-identical": _fields_state(
        {"a": (OBJ, 0, _KEY), _KEY: (OBJ, 0, _TITLE)}, ("a",), 8
    ),
    # a title's entry that is not where its field is
    "title-elsewhere": _fields_state({"a": (F8, 0, "T"), "T": (OBJ, 8, "T")}, ("a",), 16),
    "title-of-no-field": _fields_state({"a": (F8, 0), "T": (F8, 0, "T")}, ("a",), 8),
    # two object fields over the same bytes, of one dtype at one offset
    "two-objects-one-offset": Dt(
        "V8", state({"a": (np.dtype("O"), 0), "b": (np.dtype("O"), 0)}, flags=0x1B)
    ),
    # a zero in a subarray's shape hid the rest from the size check
    "subarray-zero-then-huge": Dt(
        "V0", state(subarray=(F8, (0, 1 << 40, 1 << 40)), elsize=0, flags=0)
    ),
    "subarray-of-65-dimensions": Dt("V8", state(subarray=(F8, (1,) * 65), elsize=8, flags=0)),
    # numpy joins nested subarray shapes: it never writes a subarray of one
    "subarray-of-a-subarray": Dt("V32", state(subarray=(SUB, (2,)), elsize=32, flags=0)),
}


@pytest.mark.parametrize("name", sorted(SUBTLE))
@pytest.mark.parametrize("protocol", [2, 5])
def test_a_dtype_state_numpy_reads_otherwise_is_refused(name: str, protocol: int) -> None:
    data = pickle.dumps(SUBTLE[name], protocol=protocol)
    assert "pickle-build-denied" in codes(data), scan(data)


def test_the_title_numpy_writes_is_the_key_itself() -> None:
    # what the identity rule rests on: numpy's own titled dtype pickles its
    # title once and takes it again from the memo
    titled = np.dtype({"names": ["a"], "formats": ["O"], "titles": ["TT"]})
    key, value = next((k, v) for k, v in titled.fields.items() if len(v) == 3 and k == v[2])
    assert value[2] is key
    for protocol in (0, 2, 5):
        assert scan(pickle.dumps(np.zeros(2, dtype=titled), protocol=protocol)) == []


@pytest.mark.parametrize(
    "value",
    [
        Arr(SUB, (1,), b"A" * 16),
        Sc(SUB, b"A" * 16),
    ],
    ids=["array", "scalar"],
)
def test_a_subarray_dtype_given_to_an_array_or_scalar_is_refused(value: object) -> None:
    # numpy makes ('f8', (2,)) arrays f8 arrays of one more dimension; the
    # subarray dtype on an array is a state no numpy writes
    data = pickle.dumps(value, protocol=2)
    assert codes(data) & {"pickle-build-denied", "pickle-call-arguments"}, scan(data)


def test_a_subarray_dtype_given_to_frombuffer_is_refused() -> None:
    from numpy._core.numeric import _frombuffer

    class Fb:
        def __reduce__(self) -> tuple[Any, ...]:
            return (_frombuffer, (b"A" * 16, SUB, (1,), "C"))

    class Good:
        def __reduce__(self) -> tuple[Any, ...]:
            return (_frombuffer, (b"A" * 16, F8, (2,), "C"))

    assert "pickle-call-arguments" in codes(pickle.dumps(Fb(), protocol=2))
    assert scan(pickle.dumps(Good(), protocol=2)) == []


def _many_fields(n: int, builds: int) -> bytes:
    """A dtype of ``n`` object fields, then ``builds`` more built from its memoized dict."""
    head = OBJECT_DTYPE + b"q\x04"  # one object dtype, memo 4, for every field
    names = b"(" + b"".join(_str(f"f{i}") for i in range(n)) + b"tq\x03"
    fields = b"}q\x01(" + b"".join(
        _str(f"f{i}") + b"h\x04J" + struct.pack("<i", 8 * i) + b"\x86" for i in range(n)
    ) + b"u"  # fmt: skip
    size = struct.pack("<i", 8 * n)
    new = DTYPE + _str(f"V{8 * n}") + b"\x89\x88\x87R(K\x03" + _str("|") + b"N"
    tail = b"J" + size + b"K\x01K\x1btb0"
    first = new + names + fields + tail
    again = (new + b"h\x03h\x01" + tail) * builds
    return b"\x80\x03" + head + b"0" + first + again + b"N."


def test_fields_checks_are_bounded_across_dtypes() -> None:
    import time

    from provenance.formats._pickle_scan import MAX_DTYPE_FIELDS

    one = _many_fields(4000, 0)
    assert scan(one) == [], scan(one)[:3]  # thousands of object fields, no pair compared
    many = _many_fields(4000, MAX_DTYPE_FIELDS // 8000 + 2)
    started = time.perf_counter()
    assert "pickle-limit" in codes(many), scan(many)[:3]
    # each dtype is a few bytes; its checks stop at the bound (no timing
    # bar: the figure is for the message)
    assert time.perf_counter() - started < 120


# -- tuples the loader hashes: nesting and reuse


def test_tuples_nested_past_the_bound_are_refused() -> None:
    # {((((...)))): None}: CPython hashes the key by recursing in C, with no
    # depth check; a million deep crashes any loader
    from provenance.formats._pickle_scan import MAX_TUPLE_DEPTH

    def key(depth: int) -> bytes:
        return b"\x80\x02}" + b")" + b"\x85" * (depth - 1) + b"Ns."

    assert codes(key(MAX_TUPLE_DEPTH)) == set()
    pickle.loads(key(MAX_TUPLE_DEPTH))  # what passes loads (shallow enough)
    assert codes(key(MAX_TUPLE_DEPTH + 1)) == {"pickle-limit"}
    assert codes(key(1_000_000)) == {"pickle-limit"}


@pytest.mark.parametrize("how", ["memo", "dup"])
def test_a_tuple_of_a_shared_tuple_again_and_again_is_refused(how: str) -> None:
    # 60 levels of (t, t): a few hundred bytes, 2**60 items to hash or compare
    data = b"\x80\x02(" + b"K\x01" * 65 + b"tq\x00"
    for i in range(60):
        data += b"h%ch%c\x86q%c" % (i, i, i + 1) if how == "memo" else b"2\x86"
    assert codes(data + b".") == {"pickle-limit"}
    # a shared small tuple (a tensor's shape, say) used many times is fine
    shape = b"\x80\x02(K\x02K\x03\x86q\x00" + b"h\x00" * 100_000 + b"t."
    assert codes(shape) == set()


def test_a_flood_of_findings_does_not_grow_memory() -> None:
    from provenance.formats import _pickle_scan as ps

    data = b"\x80\x02N" + b"Nb" * 200_000 + b"."
    scanner = ps._Scanner(
        lambda o, n: data[o : o + n], 0, len(data), file="f", fmt="pickle",
        options=ScanOptions(), member=None, layout=None,
    )  # fmt: skip
    got = scanner.run()
    assert len(got.findings) == ps.MAX_FINDINGS + 1
    assert len(scanner.seen) <= ps.MAX_FINDINGS  # each message once, and no more kept
    assert got.findings[-1].message.startswith(f"{200_000 - ps.MAX_FINDINGS} more findings")
