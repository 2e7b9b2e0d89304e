"""The pickle scanner (provenance/formats/_pickle_scan.py): an allowlist, opcode by opcode.

Benign pickles come from ``pickle.dumps`` (plain data at every protocol),
numpy (when installed) and a torch-like pickler built here: fake ``torch``
modules whose functions and classes carry torch's names, pickled with the
persistent ids ``torch.save`` writes. Hostile pickles are written by hand
(opcode by opcode) or by ``pickle`` with a ``__reduce__``; they are only
ever written and scanned, never loaded.
"""

from __future__ import annotations

import _compat_pickle
import collections
import copyreg
import io
import os
import pickle
import struct
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.formats import _pickle_scan
from provenance.formats._detect import detect_fd
from provenance.formats._pickle_scan import (
    ALLOWED_GLOBALS,
    MAX_OPCODES,
    check_pickle_file,
    scan_pickle,
    scan_pickle_bytes,
)
from provenance.formats._scan import FormatFinding, ScanOptions, Source

OPTS = ScanOptions()


def scan(data: bytes, fmt: str = "pickle", **options: object) -> list[FormatFinding]:
    return scan_pickle_bytes(
        data,
        file="f",
        fmt=fmt,
        options=ScanOptions(**options),  # type: ignore[arg-type]
        member=None,
    )


def codes(data: bytes, fmt: str = "pickle", **options: object) -> set[str]:
    return {f.code for f in scan(data, fmt, **options)}


def assert_clean(data: bytes, fmt: str = "pickle", **options: object) -> None:
    found = scan(data, fmt, **options)
    assert found == [], found


def assert_flagged(data: bytes, code: str, fmt: str = "pickle", **options: object) -> None:
    found = scan(data, fmt, **options)
    assert code in {f.code for f in found}, found
    assert all(f.severity == "error" for f in found), found


def check_file(path: Path, options: ScanOptions = OPTS) -> list[FormatFinding]:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        detected = detect_fd(fd, size, path.name)
        return check_pickle_file(Source(fd, size, path.name), detected, options, path.name)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- hand-written opcodes


def s4(text: str) -> bytes:
    """SHORT_BINUNICODE then MEMOIZE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw + b"\x94"


def call0(module: str, name: str, arg: str = "id") -> bytes:
    """Protocol 0: GLOBAL module name, then a call with one string argument."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


def call4(module: str, name: str, arg: str = "id") -> bytes:
    """Protocol 4: STACK_GLOBAL of memoized strings, then a call."""
    return b"\x80\x04" + s4(module) + s4(name) + b"\x93\x94" + s4(arg) + b"\x85R."


# ---------------------------------------------------------------- plain data

PLAIN = [
    None,
    True,
    False,
    0,
    -1,
    255,
    65536,
    -(2**31),
    2**100,
    -(2**1000),
    1.5,
    float("inf"),
    float("nan"),
    1 + 2j,
    "",
    "text",
    "é\u1234\U0001f600",
    "\ud800",
    "x" * 10_000,
    b"",
    b"\x00\xff",
    b"y" * 10_000,
    bytearray(),
    bytearray(b"ab"),
    (),
    (1,),
    (1, 2),
    (1, 2, 3),
    tuple(range(10)),
    tuple(range(1000)),
    [],
    list(range(2000)),
    {},
    {"a": 1, 2: [3, (4, 5)]},
    {i: str(i) for i in range(2000)},
    set(),
    {1, "a"},
    frozenset(),
    frozenset({1, (2, 3)}),
    collections.OrderedDict(a=1, b=[1, 2]),
    [[[[[]]]]],
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_data_passes_at_every_protocol(value: object, protocol: int) -> None:
    assert_clean(pickle.dumps(value, protocol=protocol))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_shared_and_recursive_references_pass(protocol: int) -> None:
    shared = [1, 2]
    loop: list[object] = []
    loop.append(loop)
    assert_clean(pickle.dumps({"a": shared, "b": shared, "loop": loop}, protocol=protocol))


_hashable = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.complex_numbers(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8,
)
_values = st.recursive(
    _hashable | st.builds(bytearray, st.binary(max_size=20)),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner, inner)
        | st.dictionaries(_hashable, inner, max_size=5)
        | st.builds(
            collections.OrderedDict, st.dictionaries(st.text(max_size=5), inner, max_size=4)
        )
        | st.sets(_hashable, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_differential_random_plain_data_has_no_findings(value: object) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(value, protocol=protocol)
        assert scan(data) == [], (protocol, value)


def test_every_allowlisted_name_still_allowlisted_once_mapped_from_python_2() -> None:
    # Below protocol 3 the unpickler maps Python 2 names; both must be allowed.
    for name in ALLOWED_GLOBALS:
        module, _, attr = name.rpartition(".")
        mapped = _compat_pickle.NAME_MAPPING.get((module, attr))
        if mapped is None and module in _compat_pickle.IMPORT_MAPPING:
            mapped = (_compat_pickle.IMPORT_MAPPING[module], attr)
        if mapped is not None:
            assert ".".join(mapped) in ALLOWED_GLOBALS, name
        assert "." not in attr and "*" not in name


# ---------------------------------------------------------------- numpy


def _numpy() -> types.ModuleType:
    return pytest.importorskip("numpy", reason="numpy is not installed (a test dependency)")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_dtypes_and_scalars_pass(protocol: int) -> None:
    numpy = _numpy()
    values = [
        numpy.arange(12).reshape(3, 4),
        numpy.asfortranarray(numpy.ones((2, 3), dtype=numpy.float32)),
        numpy.zeros(3, dtype=[("a", "<i4"), ("b", "f8", (2,))]),
        numpy.array(["ab", "c"]),
        numpy.array([1, "a", None], dtype=object),
        numpy.array([], dtype=numpy.float16),
        numpy.float32(1.5),
        numpy.int64(-3),
        numpy.bool_(True),
        numpy.complex128(1j),
        numpy.datetime64("2020-01-01"),
        numpy.dtype(">u2"),
        {"weights": numpy.ones(4), "bias": [numpy.zeros(2)]},
    ]
    for value in values:
        data = pickle.dumps(value, protocol=protocol)
        assert scan(data) == [], (value, protocol)


def test_numpy_object_array_holding_a_gadget_is_flagged() -> None:
    numpy = _numpy()

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, ("id",))

    data = pickle.dumps(numpy.array([Evil()], dtype=object), protocol=2)
    assert_flagged(data, "pickle-global-denied")


# ---------------------------------------------------------------- a torch-like pickler


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Modules named like torch's, with functions and classes named like torch's."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storage_mod = types.ModuleType("torch.storage")

    def named(module: types.ModuleType, name: str) -> types.FunctionType:
        def fn(*args: object) -> None:
            raise AssertionError("never called")

        fn.__module__ = module.__name__
        fn.__name__ = fn.__qualname__ = name
        setattr(module, name, fn)
        return fn  # type: ignore[return-value]

    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"):
        named(utils, name)
    named(utils, "_rebuild_parameter")
    named(storage_mod, "_load_from_bytes")
    classes = {}
    for name in ("FloatStorage", "LongStorage", "HalfStorage", "QInt8Storage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        classes[name] = cls
    untyped = type("UntypedStorage", (), {"__module__": "torch.storage"})
    storage_mod.UntypedStorage = untyped  # type: ignore[attr-defined]
    dtype = types.SimpleNamespace()

    class _Dtype:
        __module__ = "torch"

        def __init__(self, name: str) -> None:
            self.name = name

        def __reduce__(self) -> str:
            return self.name

    torch.uint16 = _Dtype("uint16")  # type: ignore[attr-defined]
    dtype.uint16 = torch.uint16  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    torch.storage = storage_mod  # type: ignore[attr-defined]
    for mod in (torch, utils, storage_mod):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return types.SimpleNamespace(
        torch=torch, utils=utils, storage=storage_mod, classes=classes, untyped=untyped
    )


class Storage:
    def __init__(self, key: str, cls: type, values: list[float]) -> None:
        self.key, self.cls, self.values = key, cls, values


class Tensor:
    def __init__(self, ft: types.SimpleNamespace, storage: Storage, shape: tuple[int, ...]):
        self.ft, self.storage, self.shape = ft, storage, shape

    def __reduce_ex__(self, protocol: int) -> tuple[object, ...]:
        stride = tuple(1 for _ in self.shape)
        return (
            self.ft.utils._rebuild_tensor_v2,
            (self.storage, 0, self.shape, stride, False, collections.OrderedDict()),
        )


class TorchPickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, Storage):
            pid: tuple[object, ...] = ("storage", obj.cls, obj.key, "cpu", len(obj.values))
            return (*pid, None) if self.legacy else pid
        return None


def torch_pickle(obj: object, protocol: int = 2, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    p = TorchPickler(buf, protocol=protocol)
    p.legacy = legacy
    p.dump(obj)
    return buf.getvalue()


def state_dict(ft: types.SimpleNamespace) -> tuple[collections.OrderedDict[str, object], list]:
    w = Storage("0", ft.classes["FloatStorage"], [1.0, 2.0, 3.0, 4.0])
    b = Storage("1", ft.classes["LongStorage"], [7, 8])
    sd: collections.OrderedDict[str, object] = collections.OrderedDict()
    sd["layer.weight"] = Tensor(ft, w, (2, 2))
    sd["layer.weight_view"] = Tensor(ft, w, (4,))  # a storage shared by two tensors
    sd["layer.bias"] = Tensor(ft, b, (2,))
    sd._metadata = collections.OrderedDict({"": {"version": 1}})  # type: ignore[attr-defined]
    return sd, [w, b]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_torch_state_dict_pickle_passes_in_torch_files_only(
    fake_torch: types.SimpleNamespace, protocol: int
) -> None:
    sd, _ = state_dict(fake_torch)
    data = torch_pickle(sd, protocol)
    assert b"_rebuild_tensor_v2" in data and b"FloatStorage" in data
    assert_clean(data, fmt="pytorch-zip")
    # Outside a torch file a persistent id is something only an unknown loader resolves.
    assert_flagged(data, "pickle-persistent-id", fmt="pickle")


def test_torch_parameter_and_v3_tensor_pass(fake_torch: types.SimpleNamespace) -> None:
    ft = fake_torch
    raw = Storage("0", ft.untyped, [0.0] * 8)

    class V3:
        def __reduce_ex__(self, protocol: int) -> tuple[object, ...]:
            hooks = collections.OrderedDict()
            return (
                ft.utils._rebuild_tensor_v3,
                (raw, 0, (4,), (1,), False, hooks, ft.torch.uint16),
            )

    class Param:
        def __reduce_ex__(self, protocol: int) -> tuple[object, ...]:
            w = Tensor(ft, Storage("1", ft.classes["HalfStorage"], [0.0]), (1,))
            return (ft.utils._rebuild_parameter, (w, True, collections.OrderedDict()))

    data = torch_pickle({"v3": V3(), "p": Param()}, 2)
    assert b"torch.storage" in data and b"uint16" in data
    assert_clean(data, fmt="pytorch-zip")


def test_torch_hostile_pickles_are_flagged(fake_torch: types.SimpleNamespace) -> None:
    ft = fake_torch

    class Reduce:
        def __init__(self, fn: object, args: tuple[object, ...]) -> None:
            self.fn, self.args = fn, args

        def __reduce__(self) -> tuple[object, ...]:
            return (self.fn, self.args)

    inner = call4("os", "system")
    # A storage pickled by itself: torch.load of the nested bytes, which no allowlist covers.
    nested = torch_pickle(Reduce(ft.storage._load_from_bytes, (inner,)), 3)
    assert inner in nested
    assert_flagged(nested, "pickle-global-denied", fmt="pytorch-zip")
    # A tensor rebuilt from something that is not a storage.
    fake = torch_pickle(Reduce(ft.utils._rebuild_tensor_v2, ("x", 0, (1,), (1,), False, None)))
    assert_flagged(fake, "pickle-call-arguments", fmt="pytorch-zip")
    # A storage class is a value, never called.
    called = torch_pickle(Reduce(ft.classes["FloatStorage"], (10**12,)))
    assert_flagged(called, "pickle-call-denied", fmt="pytorch-zip")
    # The quantized storages are not allowlisted (their rebuild is not).
    q = torch_pickle(Tensor(ft, Storage("0", ft.classes["QInt8Storage"], [1]), (1,)))
    assert_flagged(q, "pickle-persistent-id", fmt="pytorch-zip")


def test_torch_persistent_ids_of_other_shapes_are_flagged(
    fake_torch: types.SimpleNamespace,
) -> None:
    ft = fake_torch

    def pid_pickle(pid: object) -> bytes:
        class P(pickle.Pickler):
            def persistent_id(self, obj: object) -> object:
                return pid if obj == "here" else None

        buf = io.BytesIO()
        P(buf, protocol=2).dump(["here"])
        return buf.getvalue()

    fc = ft.classes["FloatStorage"]
    for pid in (
        ("module", fc, "0", "cpu", 1),  # a legacy whole-model save names a module class
        ("storage", fc, "0", "cpu"),
        ("storage", "FloatStorage", "0", "cpu", 1),
        ("storage", fc, 0, "cpu", 1),
        ("storage", fc, "0", "cpu", -1),
        "storage",
    ):
        assert_flagged(pid_pickle(pid), "pickle-persistent-id", fmt="pytorch-zip")
    assert_clean(pid_pickle(("storage", fc, "0", "cpu", 1)), fmt="pytorch-zip")
    # The text PERSID opcode: a string id, never torch's tuple.
    assert_flagged(b"(Pabc\nl.", "pickle-persistent-id", fmt="pytorch-zip")
    assert_flagged(b"(Pabc\nl.", "pickle-persistent-id")


# ---------------------------------------------------------------- legacy torch.save files

MAGIC = 0x1950A86A20F9469CFC6C


def legacy_file(ft: types.SimpleNamespace, protocol: int = 2, tail: bytes = b"") -> bytes:
    sd, storages = state_dict(ft)
    out = io.BytesIO()
    pickle.dump(MAGIC, out, protocol=protocol)
    pickle.dump(1001, out, protocol=protocol)
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    pickle.dump(sys_info, out, protocol=protocol)
    out.write(torch_pickle(sd, protocol, legacy=True))
    keys = sorted(s.key for s in storages)
    pickle.dump(keys, out, protocol=protocol)
    for key in keys:
        s = next(s for s in storages if s.key == key)
        fmt = "<" + ("f" if s.cls.__name__ == "FloatStorage" else "q") * len(s.values)
        out.write(struct.pack("<q", len(s.values)) + struct.pack(fmt, *s.values))
    return out.getvalue() + tail


def test_legacy_torch_file_passes(tmp_path: Path, fake_torch: types.SimpleNamespace) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(legacy_file(fake_torch))
    assert check_file(path) == []


def test_legacy_torch_file_at_protocol_1_is_followed_too(
    tmp_path: Path, fake_torch: types.SimpleNamespace
) -> None:
    # Detection sees a pickle (no PROTO); its first pickle is torch's magic number.
    path = tmp_path / "model.bin"
    path.write_bytes(legacy_file(fake_torch, protocol=1))
    assert check_file(path) == []


def test_legacy_torch_file_layout_problems_are_flagged(
    tmp_path: Path, fake_torch: types.SimpleNamespace
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(legacy_file(fake_torch, tail=call4("os", "system")))
    assert {f.code for f in check_file(path)} == {"pickle-trailing-data"}
    good = legacy_file(fake_torch)
    path.write_bytes(good[:-3])
    assert {f.code for f in check_file(path)} == {"pickle-legacy-structure"}
    # A storage header that does not match the persistent id's count.
    count = struct.pack("<q", 4)
    at = good.rindex(count, 0, len(good) - 16)
    path.write_bytes(good[:at] + struct.pack("<q", 5) + good[at + 8 :])
    assert "pickle-legacy-structure" in {f.code for f in check_file(path)}
    # A hostile data pickle inside the layout.
    bad = good.replace(b"\x8c\x0bcollections", b"\x8c\x0bcollectionz", 1)
    if bad == good:
        bad = good.replace(b"ccollections\nOrderedDict", b"ccollectionz\nOrderedDict", 1)
    assert bad != good
    path.write_bytes(bad)
    assert "pickle-global-denied" in {f.code for f in check_file(path)}


def test_legacy_tar_layout_is_reported_not_scanned(tmp_path: Path) -> None:
    import tarfile

    path = tmp_path / "old.pt"
    with tarfile.open(path, "w") as tar:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            info = tarfile.TarInfo(name)
            data = pickle.dumps(1, protocol=2)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = check_file(path)
    assert [f.code for f in found] == ["pickle-legacy-tar"]


def test_real_torch_save_legacy_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (too heavy for CI)")
    path = tmp_path / "legacy.pt"
    model = torch.nn.Linear(3, 2)
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    assert check_file(path) == []


# ---------------------------------------------------------------- hostile globals

GADGETS = [
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("subprocess", "Popen"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "compile"),
    ("builtins", "open"),
    ("__builtin__", "eval"),
    ("pip", "main"),
    ("pip._internal", "main"),
    ("pkgutil", "resolve_name"),
    ("logging", "FileHandler"),
    ("timeit", "timeit"),
    ("asyncio", "create_subprocess_shell"),
    ("asyncio.subprocess", "create_subprocess_exec"),
    ("asyncio.unix_events", "_UnixSubprocessTransport"),
    ("torch.storage", "_load_from_bytes"),
    ("torch.serialization", "load"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("numpy", "load"),
    ("numpy.testing._private.utils", "runstring"),
    ("runpy", "run_path"),
    ("code", "InteractiveInterpreter"),
    ("operator", "attrgetter"),
    ("functools", "partial"),
    ("copyreg", "_reconstructor"),
    ("collections", "defaultdict"),
    ("webbrowser", "open"),
    ("shutil", "rmtree"),
]


@pytest.mark.parametrize(("module", "name"), GADGETS)
def test_gadget_globals_are_flagged_however_written(module: str, name: str) -> None:
    for data in (call0(module, name), call4(module, name)):
        found = scan(data)
        assert [f.code for f in found] == ["pickle-global-denied"], found
        assert f"'{module}.{name}'" in found[0].message
        assert found[0].severity == "error"
    # INST (protocol 0's class call)
    inst = f"(S'id'\ni{module}\n{name}\n.".encode()
    assert_flagged(inst, "pickle-global-denied")
    # In torch files too, and whatever the user allows besides.
    assert_flagged(call4(module, name), "pickle-global-denied", fmt="pytorch-zip")
    assert_flagged(
        call4(module, name), "pickle-global-denied", allow_globals=frozenset({"os.getcwd"})
    )


def test_stack_global_from_memo_games_is_resolved() -> None:
    # 'os' and 'system' pushed far earlier, memoized, popped, fetched back with
    # BINGET and LONG_BINGET; the STACK_GLOBAL names them.
    data = (
        b"\x80\x04"
        + b"\x8c\x02osq\x05"  # BINPUT 5
        + b"0"  # POP
        + b"\x8c\x06systemr\x00\x01\x00\x00"  # LONG_BINPUT 256
        + b"0"
        + b"h\x05j\x00\x01\x00\x00\x93"  # BINGET 5, LONG_BINGET 256, STACK_GLOBAL
        + s4("id")
        + b"\x85R."
    )
    found = scan(data)
    assert [f.code for f in found] == ["pickle-global-denied"]
    assert "'os.system'" in found[0].message
    # The same through protocol 0's PUT/GET text indices and a DUP.
    data0 = b"Vos\np1\n0Vsystem\np2\n0g1\ng2\n\x93(S'id'\ntR."
    assert "'os.system'" in scan(data0)[0].message


def test_stack_global_of_unknown_operands_is_flagged() -> None:
    # the module name is a call's result (unknowable without running it)
    data = b"\x80\x04" + s4("abc") + b"\x85" + b"c_codecs\nencode\n" + b")R" + s4("x") + b"\x93."
    assert_flagged(data, "pickle-global-unresolved")
    # a module name too long to read is skipped, never resolved
    long_name = b"X" + struct.pack("<I", 5000) + b"a" * 5000
    assert_flagged(b"\x80\x04" + long_name + s4("x") + b"\x93.", "pickle-global-unresolved")


def test_ext_opcodes_are_always_flagged() -> None:
    module = os.system.__module__  # posix or nt
    copyreg.add_extension(module, "system", 0xF1)
    try:
        data = pickle.dumps(os.system, protocol=2)
    finally:
        copyreg.remove_extension(module, "system", 0xF1)
    assert b"\x82\xf1" in data
    assert_flagged(data, "pickle-extension")
    for ext in (b"\x82\x01", b"\x83\x01\x02", b"\x84\x01\x02\x03\x04"):
        assert_flagged(b"\x80\x02" + ext + b").", "pickle-extension")
        assert_flagged(b"\x80\x02" + ext + b").", "pickle-extension", fmt="pytorch-zip")


def test_dotted_names_are_never_allowed() -> None:
    # module os.path + name join, and module os + attribute path path.join
    assert_flagged(call0("os.path", "join"), "pickle-global-denied")
    found = scan(call4("os", "path.join"))
    assert "attribute path" in found[0].message
    # allowing os.path.join allows that module and name, not the attribute path
    allow = frozenset({"os.path.join"})
    assert_clean(b"\x80\x04" + s4("os.path") + s4("join") + b"\x93.", allow_globals=allow)
    assert_flagged(call4("os", "path.join"), "pickle-global-denied", allow_globals=allow)
    # an allowlisted class's attribute is no allowlisted global
    assert_flagged(call4("collections", "OrderedDict.fromkeys"), "pickle-global-denied")
    assert_flagged(call4("builtins", "set.__init__"), "pickle-global-denied")
    # nor a module wildcard
    assert_flagged(call4("collections", "Counter"), "pickle-global-denied")
    assert_flagged(call4("collections", "*"), "pickle-global-denied")


def test_unicode_confusable_names_are_flagged() -> None:
    for module, name in (
        ("c\u043ellections", "OrderedDict"),  # Cyrillic o
        ("collections", "\uff2frderedDict"),  # fullwidth O
        ("numpy", "dtyp\u0435"),
        ("collections\u200b", "OrderedDict"),  # zero-width space
    ):
        found = scan(call4(module, name))
        assert found and found[0].code == "pickle-global-denied", found
        assert "not ASCII" in found[0].message
        assert all(c.isascii() for c in found[0].message)


def test_python_2_names_are_judged_as_the_unpickler_maps_them() -> None:
    # Below protocol 3, __builtin__ is builtins; at protocol 3 and up it is not mapped.
    assert_clean(b"c__builtin__\nset\n(]tR.")
    assert_flagged(b"c__builtin__\neval\n(S'1'\ntR.", "pickle-global-denied")
    found = scan(b"c__builtin__\nreduce\n.")
    assert "loaded as 'functools.reduce'" in found[0].message
    assert_flagged(b"cUserDict\nUserDict\n.", "pickle-global-denied")


# ---------------------------------------------------------------- calls and builds


def test_allowlisted_globals_called_outside_their_use_are_flagged() -> None:
    # numpy.ndarray is a value (the first argument of _reconstruct), never called
    assert_flagged(b"cnumpy\nndarray\n(K\x05tR.", "pickle-call-denied")
    # bytearray of a count allocates it
    assert_flagged(
        b"\x80\x03cbuiltins\nbytearray\nJ\x00\x00\x00\x7f\x85R.", "pickle-call-arguments"
    )
    # _codecs.encode to a codec other than latin1
    assert_flagged(b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "pickle-call-arguments")
    # numpy's _reconstruct of another class
    assert_flagged(
        b"cnumpy.core.multiarray\n_reconstruct\n(c__builtin__\nset\n(K\x00tC\x01btR.",
        "pickle-call-arguments",
    )
    # a tuple of arguments too long to keep: no allowlisted call takes one
    many = b"(" + b"K\x01" * 100 + b"t"
    assert_flagged(b"c__builtin__\nset\n" + many + b"R.", "pickle-call-arguments")
    # REDUCE whose arguments are not a tuple
    assert_flagged(b"c__builtin__\nset\n]R.", "pickle-call-arguments")
    # calling what a call returned, or a plain value
    assert_flagged(b"c__builtin__\nset\n)R)R.", "pickle-call-denied")
    assert_flagged(b"\x80\x02Vabc\n)R.", "pickle-call-denied")
    # NEWOBJ / NEWOBJ_EX / OBJ of allowlisted classes (none is instantiated that way)
    assert_flagged(b"\x80\x02ccollections\nOrderedDict\n)\x81.", "pickle-call-denied")
    assert_flagged(b"\x80\x04ccollections\nOrderedDict\n)}\x92.", "pickle-call-denied")
    assert_flagged(b"(cnumpy\nndarray\nK\x01o.", "pickle-call-denied")
    # what the user allows may be instantiated
    assert_clean(b"\x80\x02cmylib\nThing\n)\x81}b.", allow_globals=frozenset({"mylib.Thing"}))


def test_build_only_on_what_allowlisted_functions_return() -> None:
    # BUILD on a class (setattr on the class itself)
    assert_flagged(b"\x80\x02ccollections\nOrderedDict\n}b.", "pickle-build-denied")
    # BUILD with a slot-state tuple on an OrderedDict (setattr of arbitrary names)
    assert_flagged(b"\x80\x02ccollections\nOrderedDict\n)R(N}tb.", "pickle-build-denied")
    # BUILD on a set or plain data
    assert_flagged(b"\x80\x02c__builtin__\nset\n)R}b.", "pickle-build-denied")
    assert_flagged(b"\x80\x02]}b.", "pickle-build-denied")
    # and the benign one: an OrderedDict with a dict of attributes
    assert_clean(b"\x80\x02ccollections\nOrderedDict\n)R}b.")


def test_container_opcodes_on_other_objects_are_flagged() -> None:
    # SETITEM on a set would call its __setitem__; APPEND on a dict its append; ...
    assert_flagged(b"\x80\x02c__builtin__\nset\n)RK\x01K\x02s.", "pickle-container-denied")
    assert_flagged(b"\x80\x02}K\x01a.", "pickle-container-denied")
    assert_flagged(b"\x80\x04](K\x01\x90.", "pickle-container-denied")
    assert_flagged(b"\x80\x02cnumpy\ndtype\n(K\x01e.", "pickle-container-denied")
    assert_clean(b"\x80\x02ccollections\nOrderedDict\n)R(K\x01K\x02u.")


def test_nested_pickle_bytes_as_plain_data_are_not_run() -> None:
    # Bytes holding a pickle are data: loading the outer one runs nothing. No
    # allowlisted function unpickles its argument (torch.storage._load_from_bytes,
    # which does, is left out: see test_torch_hostile_pickles_are_flagged).
    inner = call4("os", "system")
    assert_clean(pickle.dumps({"blob": inner}, protocol=4))
    assert_clean(pickle.dumps([bytearray(inner)], protocol=5))


# ---------------------------------------------------------------- structure


def test_trailing_data_and_second_pickles_are_flagged() -> None:
    one = pickle.dumps({"a": 1}, protocol=4)
    assert_flagged(one + b"junk", "pickle-trailing-data")
    found = scan(one + call4("os", "system"))
    assert {f.code for f in found} == {"pickle-multiple", "pickle-global-denied"}
    # scan_pickle with single=False leaves the rest to the caller
    data = one + one

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n]

    findings, stop = scan_pickle(
        read, 0, len(data), file="f", fmt="pickle", options=OPTS, single=False
    )
    assert findings == [] and stop == len(one)
    findings, stop = scan_pickle(read, stop, len(data), file="f", fmt="pickle", options=OPTS)
    assert findings == [] and stop == len(data)


def test_truncated_and_malformed_streams_are_flagged() -> None:
    good = pickle.dumps({"a": [1, 2, "x" * 300]}, protocol=4)
    for cut in (1, 2, 5, len(good) // 2, len(good) - 1):
        assert_flagged(good[:cut], "pickle-truncated")
    assert_flagged(b"", "pickle-truncated")
    assert_flagged(b"\x80\x02\xff.", "pickle-malformed")  # unknown opcode
    assert_flagged(b"\x80\x06N.", "pickle-malformed")  # unknown protocol
    assert_flagged(b"\x80\x02.", "pickle-malformed")  # STOP on an empty stack
    assert_flagged(b"\x80\x02(.", "pickle-malformed")  # STOP below the mark
    assert_flagged(b"\x80\x02t.", "pickle-malformed")  # TUPLE without a mark
    assert_flagged(b"\x80\x02N(0s.", "pickle-malformed")
    assert_flagged(b"I12x\n.", "pickle-malformed")
    assert_flagged(b"Sunquoted\n.", "pickle-malformed")
    assert_flagged(b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", "pickle-malformed")  # not UTF-8
    assert_flagged(b"c\xff\nx\n.", "pickle-malformed")
    assert_flagged(b"(K\x01d.", "pickle-malformed")  # odd DICT


def test_memo_index_games_are_flagged() -> None:
    assert_flagged(b"\x80\x02h\x07.", "pickle-malformed")  # BINGET never PUT
    assert_flagged(b"\x80\x02j\xff\xff\xff\xff.", "pickle-malformed")
    assert_flagged(b"g3\n.", "pickle-malformed")
    assert_flagged(b"Np-1\n.", "pickle-malformed")  # a negative PUT
    assert_flagged(b"\x80\x02\x94.", "pickle-malformed")  # MEMOIZE of nothing


def test_frames_are_checked() -> None:
    good = pickle.dumps(list(range(100)), protocol=4)
    assert good[2] == 0x95
    assert_clean(good)
    # an opcode crossing the end of its frame
    framed = b"\x80\x04\x95" + struct.pack("<Q", 2) + b"\x8c\x03abc."
    assert_flagged(framed, "pickle-malformed")
    # a frame inside a frame
    nested = b"\x80\x04\x95" + struct.pack("<Q", 11) + b"\x95" + struct.pack("<Q", 1) + b"N."
    assert_flagged(nested, "pickle-malformed")
    # a frame of 2**60 bytes in a small file: a truncation, found at once
    huge = b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N."
    assert_flagged(huge, "pickle-truncated")


def test_out_of_band_buffers_are_flagged() -> None:
    assert_flagged(b"\x80\x05\x97\x98.", "pickle-out-of-band")


def test_huge_length_claims_are_bounded(tmp_path: Path) -> None:
    # BINBYTES8 / BINUNICODE8 / BYTEARRAY8 claiming a GiB in a small file
    for op in (b"\x8e", b"\x8d", b"\x96"):
        data = b"\x80\x04" + op + struct.pack("<Q", 1 << 30) + b"x" * 100 + b"."
        path = tmp_path / "claim.pkl"
        path.write_bytes(data)
        start = time.monotonic()
        found = check_file(path)
        assert time.monotonic() - start < 2
        assert "pickle-truncated" in {f.code for f in found}


def test_large_arguments_are_skipped_not_read(tmp_path: Path) -> None:
    # A real 64 MiB argument: stepped over by its length, reads stay small.
    path = tmp_path / "big.pkl"
    with path.open("wb") as f:
        f.write(b"\x80\x04\x8e" + struct.pack("<Q", 64 << 20))
        f.truncate(f.tell() + (64 << 20))
        f.seek(0, 2)
        f.write(call4("os", "system")[2:])
    asked: list[int] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        src = Source(fd, size, "big.pkl")

        def read(offset: int, n: int) -> bytes:
            asked.append(n)
            return src.read(offset, n)

        findings, _ = scan_pickle(read, 0, size, file="big.pkl", fmt="pickle", options=OPTS)
    finally:
        os.close(fd)
    codes_ = {f.code for f in findings}
    assert "pickle-global-denied" in codes_ and "pickle-call-denied" not in codes_
    assert sum(asked) < 4 * _pickle_scan.WINDOW


def test_ten_million_opcodes_are_bounded_in_time() -> None:
    data = b"\x80\x02" + b"N0" * (MAX_OPCODES // 2 + 1000) + b"N."
    start = time.monotonic()
    found = scan(data)
    elapsed = time.monotonic() - start
    assert [f.code for f in found] == ["pickle-limit"]
    assert "opcodes" in found[0].message
    assert elapsed < 60, elapsed


def test_deep_marks_and_big_stacks_are_bounded() -> None:
    start = time.monotonic()
    assert_flagged(b"(" * 1_000_000 + b"N.", "pickle-limit")
    # marks over a deep stack cost nothing per mark (no copy of the stack)
    assert_clean(b"\x80\x02" + b"N" * 200_000 + b"(1" * 200_000 + b".")
    assert time.monotonic() - start < 30


def test_long_lines_are_bounded() -> None:
    assert_flagged(b"I" + b"1" * (_pickle_scan.MAX_LINE + 10) + b"\n.", "pickle-limit")
    assert_flagged(b"S'" + b"a" * 100_000 + b"'\n.", "pickle-limit")
    assert_flagged(b"S'abc", "pickle-truncated")


def test_findings_are_capped_and_printable() -> None:
    data = (
        b"\x80\x04"
        + b"".join(s4("os") + s4(f"name{i}\x1b") + b"\x93" + b"0" for i in range(500))
        + b"N."
    )
    found = scan(data)
    assert len(found) <= _pickle_scan.MAX_FINDINGS + 1
    assert found[-1].code == "pickle-limit"
    assert all(f.message.isprintable() for f in found)
    assert all(f.offset is not None for f in found[:-1])


def test_findings_name_file_member_and_offset() -> None:
    data = b"\x80\x02N0" + b"cos\nsystem\n."
    (f,) = scan_pickle_bytes(
        data, file="m.pt", fmt="pytorch-zip", options=OPTS, member="a/data.pkl"
    )
    assert (f.file, f.format, f.member, f.offset) == ("m.pt", "pytorch-zip", "a/data.pkl", 4)
    assert f.to_json()["member"] == "a/data.pkl"


def test_raw_pickle_files_through_check_pickle_file(tmp_path: Path) -> None:
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"a": [1, 2.5, "x"]}, protocol=4))
    assert check_file(good) == []
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(call0("os", "system"))
    assert {f.code for f in check_file(bad)} == {"pickle-global-denied"}
    two = tmp_path / "two.pkl"
    two.write_bytes(pickle.dumps(1, protocol=0) + pickle.dumps(2, protocol=0))
    assert {f.code for f in check_file(two)} == {"pickle-multiple"}


# -- what a checkpoint keeps beside its tensors: dtypes, shapes, devices


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def test_torch_dtypes_sizes_and_devices_as_values_pass() -> None:
    # {"size": torch.Size([2, 3]), "dtype": torch.bfloat16, "device":
    # torch.device("cuda", 1)}, as pickle.dumps writes it (torch.load with
    # weights_only=True allows all three)
    data = (
        b"\x80\x02}(" + _u("size") + b"ctorch\nSize\nK\x02K\x03\x86\x85R"
        + _u("dtype") + b"ctorch\nbfloat16\n"
        + _u("f32") + b"ctorch\nfloat32\n"
        + _u("device") + b"ctorch\ndevice\n" + _u("cuda") + b"K\x01\x86R"
        + _u("cpu") + b"ctorch\ndevice\n" + _u("cpu") + b"\x85Ru."
    )  # fmt: skip
    assert scan(data) == []


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (b"ctorch\nSize\n" + _u("x") + b"\x85R", "pickle-call-arguments"),
        (b"ctorch\ndevice\n}\x85R", "pickle-call-arguments"),
        (b"ctorch\nfloat32\n)R", "pickle-call-denied"),  # a value, never called
        (b"ctorch\nSize\n)\x81", "pickle-call-denied"),  # NEWOBJ
    ],
)
def test_torch_values_used_otherwise_are_refused(call: bytes, code: str) -> None:
    assert_flagged(b"\x80\x02" + call + b".", code)


def test_a_real_checkpoint_with_dtypes_sizes_and_devices_passes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (too heavy for CI)")
    dtypes = [getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)]
    value = {
        "state_dict": torch.nn.Sequential(
            torch.nn.Linear(2, 3), torch.nn.LayerNorm(3)
        ).state_dict(),
        "size": torch.Size([2, 3]),
        "devices": [torch.device("cpu"), torch.device("cuda", 1)],
        "dtypes": dtypes,
    }
    path = tmp_path / "checkpoint.pt"
    torch.save(value, path)
    from provenance.formats._scan import _scan_file

    found = _scan_file(str(path), path.name, OPTS)
    assert found.format == "pytorch-zip"
    assert found.findings == ()
    torch.load(path, weights_only=True)  # what torch itself calls safe, for comparison
