"""Pickle streams checked opcode by opcode against an allowlist of globals (issue 10).

Nothing is unpickled, imported or called. The scanner reads the stream the
way :mod:`pickle`'s unpickler would, opcode by opcode, and keeps a model of
its stack and memo: every value is known by its kind (a string with its
text when it is short, a number, a tuple with its items, a list, a dict, a
global with its name, the result of a call with the name of what was
called, a storage from a persistent id), so that every import and every
call the unpickler would make is known by name before it is judged:

* every ``GLOBAL``, ``INST`` and ``STACK_GLOBAL`` (its module and name
  strings from wherever they were pushed, the memo included) is resolved to
  ``module.name`` as the unpickler would (with Python 2's names mapped to
  Python 3's below protocol 3) and must be in :data:`ALLOWED_GLOBALS`, or in
  :attr:`ScanOptions.allow_globals`, exactly: both the name as written and
  the name it maps to. A name with a dot (``os`` + ``path.join``, which
  protocol 4 resolves attribute by attribute) is never allowed;
* ``EXT1``/``EXT2``/``EXT4`` import whatever the loading process's
  ``copyreg`` extension registry holds: never allowed;
* a call (``REDUCE``, ``INST``, ``OBJ``, ``NEWOBJ``, ``NEWOBJ_EX``) must
  call an allowlisted global allowed to be called (a storage class or
  ``numpy.ndarray`` is allowed as a value, never called), with arguments of
  the shape its files use (``bytearray`` of bytes, never of a count;
  ``_codecs.encode`` of text to ``latin1`` only; ...); ``BUILD`` must apply
  to what an allowlisted function returned that its files build
  (an ``OrderedDict`` with a dict of attributes, a numpy array or dtype with
  its state tuple); item assignment, ``APPEND`` and ``ADDITEMS`` must apply
  to plain containers (on anything else they call its methods);
* ``PERSID``/``BINPERSID`` are allowed only in torch files, with the
  persistent id torch writes for a storage;
* a parse error, an unknown opcode, a stack or memo the unpickler would
  fault on, a truncated stream, out-of-band buffers, trailing data after
  ``STOP`` when one pickle is expected, and each bound below are findings.

Bounds: at most :data:`MAX_OPCODES` opcodes, :data:`MAX_MEMO` memo
entries, :data:`MAX_STACK` values on the stack and :data:`MAX_MARKS`
nested marks per pickle; lines of at most :data:`MAX_LINE` bytes; the
items of at most :data:`MAX_KEPT` tuple slots kept (so the values held are
bounded by the stack, the memo and those slots, a few million at most).
Arguments longer than :data:`READ_UP_TO` bytes are skipped by their length,
never read; reads go in windows of :data:`WINDOW` bytes.

The legacy ``torch.save`` layout (before 1.6) is five pickles in a row (the
magic number, the protocol version, the system information, the data, the
list of storage keys) then each storage's element count and raw bytes; each
pickle is scanned, the storages are stepped over by their lengths (never
read), and what is left over is a finding.

Finding codes (all errors): ``pickle-global-denied``,
``pickle-global-unresolved`` (a ``STACK_GLOBAL`` of values that are not two
known strings), ``pickle-extension``, ``pickle-call-denied``,
``pickle-call-arguments``, ``pickle-build-denied``,
``pickle-container-denied``, ``pickle-persistent-id``,
``pickle-out-of-band``, ``pickle-malformed``, ``pickle-truncated``,
``pickle-limit``, ``pickle-trailing-data``, ``pickle-multiple``, and for
files ``pickle-compressed``, ``pickle-legacy-structure``,
``pickle-legacy-tar``.

Known limits: the tar archive that torch wrote before 0.4 is reported as
not scanned; compressed pickles (joblib) are reported as not scanned; a
value's identity through the memo is tracked, but not what a container
holds once built (only tuples keep their items), so an allowlisted call
that would take a value out of a container is not modelled: none of the
allowlisted functions does.
"""

from __future__ import annotations

import _compat_pickle
import codecs
from collections.abc import Callable
from dataclasses import dataclass, field

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScanOptions, Source

__all__ = [
    "ALLOWED_GLOBALS",
    "MAX_OPCODES",
    "check_pickle_file",
    "scan_pickle",
    "scan_pickle_bytes",
]

#: ``read(offset, n) -> bytes``: bounded positional reads of whatever holds the stream.
Reader = Callable[[int, int], bytes]

MAX_OPCODES = 10_000_000
MAX_MEMO = 1 << 20
MAX_STACK = 1 << 20
MAX_MARKS = 10_000
MAX_LINE = 64 << 10
READ_UP_TO = 4096
#: Tuples keep their items (for the checks of arguments and persistent ids)
#: when they have at most this many, and while fewer than MAX_KEPT are kept.
TUPLE_ITEMS_KEPT = 64
#: A tuple of strings only (a structured dtype's field names) is kept up to this.
NAMES_KEPT = 4096
MAX_KEPT = 1 << 21
#: Tuples inside tuples: CPython hashes a tuple by recursing through its
#: items with no depth check (a dict key or set member nested a million deep
#: crashes any loader, most of all one on a thread's small stack).
MAX_TUPLE_DEPTH = 256
#: Items of tuples taken again from the memo or by DUP, counted through
#: their nesting: a tuple built of a shared tuple twice, again and again,
#: is small in the file and exponential to hash or compare.
MAX_TUPLE_REUSE = 1 << 24
#: Fields of numpy dtype states checked, in all.
MAX_DTYPE_FIELDS = 1 << 20
WINDOW = 1 << 20
#: Findings kept per stream; more are counted in one last finding.
MAX_FINDINGS = 64
#: Pickles looked at after the one expected (to say what the trailing data holds).
MAX_EXTRA = 4

HIGHEST_PROTOCOL = 5

# ---------------------------------------------------------------- the allowlist

# What an allowlisted global may be used for.
_CALL = 1  # called by REDUCE (or INST/OBJ)
_NEW = 2  # the class of NEWOBJ / NEWOBJ_EX (cls.__new__)
_BUILD_DICT = 4  # what it returns takes BUILD with a dict of attributes
_BUILD_TUPLE = 8  # what it returns takes BUILD with a state tuple (__setstate__)
_STORAGE = 16  # the storage class of a torch persistent id
_VALUE = 0  # only passed as a value (to an allowlisted call)
_ANY = _CALL | _NEW | _BUILD_DICT | _BUILD_TUPLE | _STORAGE  # what the user allows

_TORCH_STORAGES = {
    # torch.save writes the storage of a tensor as a persistent id naming its
    # class, which is its dtype (torch/storage.py, _dtype_to_storage_type_map);
    # the class is looked up, never called. The element size steps over the
    # raw storages of a legacy file. The quantized storages are left out: they
    # come with _rebuild_qtensor, which is not allowed.
    "torch.DoubleStorage": 8,
    "torch.FloatStorage": 4,
    "torch.HalfStorage": 2,
    "torch.BFloat16Storage": 2,
    "torch.LongStorage": 8,
    "torch.IntStorage": 4,
    "torch.ShortStorage": 2,
    "torch.CharStorage": 1,
    "torch.ByteStorage": 1,
    "torch.BoolStorage": 1,
    "torch.ComplexDoubleStorage": 16,
    "torch.ComplexFloatStorage": 8,
    # the dtypes torch.storage._new_dtypes() lists are saved as untyped
    # storage (a count of bytes) with the dtype among _rebuild_tensor_v3's arguments
    "torch.storage.UntypedStorage": 1,
}
# The dtypes _rebuild_tensor_v3 names (torch.storage._new_dtypes()); a dtype
# pickles as the global of its name. Values only.
_TORCH_V3_DTYPES = (
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e5m2fnuz",
    "float8_e4m3fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "complex32",
    "uint16",
    "uint32",
    "uint64",
)

# Every other dtype, by the name it pickles as (str(dtype) without "torch."):
# a checkpoint keeps {"dtype": torch.bfloat16} beside its tensors, as a
# value; torch.load(weights_only=True) allows them all.
_TORCH_DTYPES = (
    *_TORCH_V3_DTYPES,
    *("float16", "float32", "float64", "bfloat16", "complex64", "complex128", "bool"),
    *(f"int{n}" for n in (8, 16, 32, 64)),
    "uint8",
    *(f"int{n}" for n in range(1, 8)),
    *(f"uint{n}" for n in range(1, 8)),
    *("qint8", "quint8", "qint32", "quint4x2", "quint2x4"),
)

_ROLES: dict[str, int] = {
    # collections.OrderedDict: every torch state dict is one (REDUCE with no
    # arguments, SETITEMS, and a BUILD with {'_metadata': ...}); an empty one
    # is each tensor's backward hooks.
    "collections.OrderedDict": _CALL | _BUILD_DICT,
    # Plain data as pickle.dumps writes it (checked at protocols 0 to 5):
    # set and frozenset below protocol 4, complex always, bytearray below 5;
    # bytes below protocol 3 (b"" as bytes(), others as
    # _codecs.encode(text, "latin1")). Below protocol 3 builtins are written
    # __builtin__ (mapped to builtins by the unpickler).
    "builtins.set": _CALL,
    "__builtin__.set": _CALL,
    "builtins.frozenset": _CALL,
    "__builtin__.frozenset": _CALL,
    "builtins.complex": _CALL,
    "__builtin__.complex": _CALL,
    "builtins.bytearray": _CALL,
    "__builtin__.bytearray": _CALL,
    "builtins.bytes": _CALL,
    "__builtin__.bytes": _CALL,
    "_codecs.encode": _CALL,
    # numpy arrays, dtypes and scalars as numpy 1.x (numpy.core) and 2.x
    # (numpy._core) pickle them: _reconstruct(ndarray, (0,), b"b") then BUILD
    # with (version, shape, dtype, fortran, data); at protocol 5
    # _frombuffer(data, dtype, shape, order); scalar(dtype, data);
    # dtype(name, False, True) then BUILD with its state tuple.
    "numpy.core.multiarray._reconstruct": _CALL | _BUILD_TUPLE,
    "numpy._core.multiarray._reconstruct": _CALL | _BUILD_TUPLE,
    "numpy.core.numeric._frombuffer": _CALL,
    "numpy._core.numeric._frombuffer": _CALL,
    "numpy.core.multiarray.scalar": _CALL,
    "numpy._core.multiarray.scalar": _CALL,
    "numpy.dtype": _CALL | _BUILD_TUPLE,
    "numpy.ndarray": _VALUE,  # the first argument of _reconstruct
    # torch tensors as torch.save writes them (torch/_tensor.py,
    # _reduce_ex_internal, dense tensors): _rebuild_tensor_v2(storage, offset,
    # size, stride, requires_grad, hooks[, metadata]); _rebuild_tensor_v3 with
    # the dtype for the newer dtypes; _rebuild_tensor in files from before
    # torch 0.4; nn.Parameter as _rebuild_parameter(tensor, requires_grad, hooks).
    # Left out: torch.storage._load_from_bytes (a storage pickled by itself:
    # it calls torch.load on its argument, a nested pickle with no
    # allowlist), _rebuild_parameter_with_state and
    # torch._tensor._rebuild_from_type_v2 (setattr of arbitrary attributes;
    # the latter calls the function it is given), and the sparse, quantized,
    # nested, meta and subclass rebuilds with torch.Size, torch.device and
    # torch.serialization._get_layout (none is in a state dict of dense
    # tensors). ScanOptions.allow_globals adds any of them by name.
    "torch._utils._rebuild_tensor": _CALL,
    "torch._utils._rebuild_tensor_v2": _CALL,
    "torch._utils._rebuild_tensor_v3": _CALL,
    "torch._utils._rebuild_parameter": _CALL,
    **dict.fromkeys(_TORCH_STORAGES, _STORAGE),
    **dict.fromkeys((f"torch.{d}" for d in _TORCH_DTYPES), _VALUE),
    # torch.Size(tuple of ints) and torch.device(type[, index]): what a
    # checkpoint records of a shape or a device; both make a plain value.
    "torch.Size": _CALL,
    "torch.device": _CALL,
}
# Left out on purpose: collections.defaultdict (its default factory is a
# callable global, run later by whoever reads a missing key; allowing it
# means allowing the factories too), slice, range, datetime and any class
# instance (copyreg._reconstructor, NEWOBJ): none is in a state dict or an
# array, and each is one more thing an exploit could use.

#: Every global a pickle may name, exactly ``module.name``; see ``_ROLES``
#: above for what each may be used for and why it is there.
ALLOWED_GLOBALS: frozenset[str] = frozenset(_ROLES)

_TORCH_FORMATS = frozenset({"pytorch-zip", "pytorch-legacy"})
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001
_BYTES_CALLS = frozenset({"_codecs.encode", "builtins.bytes", "__builtin__.bytes"})
_RECONSTRUCTS = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")
_TENSOR_REBUILDS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
    }
)

# ---------------------------------------------------------------- values

# value kinds
(
    K_NONE,
    K_BOOL,
    K_INT,
    K_FLOAT,
    K_STR,
    K_BYTES,
    K_TUPLE,
    K_LIST,
    K_DICT,
    K_SET,
    K_FROZENSET,
    K_GLOBAL,
    K_RESULT,
    K_STORAGE,
    K_UNKNOWN,
    K_BUFFER,
) = range(16)


#: What the globals an attack most often names do, for whoever reads the
#: finding without knowing pickle (names as loading sees them; whole
#: modules where every name in them is one).
_DANGEROUS: dict[str, str] = {
    **dict.fromkeys(
        ["os.system", "posix.system", "nt.system", "os.popen", "posix.popen", "nt.popen"],
        "runs a shell command",
    ),
    **dict.fromkeys(["subprocess", "pty", "commands"], "runs a program"),
    **dict.fromkeys(
        ["os.execv", "os.execve", "os.execl", "os.spawnv", "os.spawnl", "posix.execv"],
        "runs a program",
    ),
    **dict.fromkeys(
        ["builtins.eval", "builtins.exec", "builtins.compile", "runpy", "code"],
        "runs Python code",
    ),
    "builtins.__import__": "imports any module",
    "importlib.import_module": "imports any module",
    "builtins.getattr": "reaches any attribute of what it is given",
    "builtins.open": "opens a file",
    "io.open": "opens a file",
    "shutil.rmtree": "deletes a folder",
    "os.remove": "deletes a file",
    "posix.remove": "deletes a file",
    "os.unlink": "deletes a file",
    "webbrowser.open": "opens a web page",
    **dict.fromkeys(["socket", "urllib.request", "http.client", "requests"], "reaches the network"),
}


class _V:
    """A value on the simulated stack: its kind and what is known of it."""

    __slots__ = ("built", "data", "depth", "kind", "name", "size")

    #: K_TUPLE only: how deep tuples nest in it, and how many values it
    #: holds counted through its nested tuples (what hashing it visits).
    depth: int
    size: int

    def __init__(self, kind: int, data: object = None, name: str | None = None) -> None:
        #: BUILD was applied to it once: a second BUILD could call the
        #: ``__setstate__`` the first one planted in its attributes.
        self.built = False
        self.kind = kind
        #: K_STR: the text (None when too long to read); K_INT: the value
        #: (None when too long); K_TUPLE: the list of items; K_GLOBAL: allowed;
        #: K_DICT: what a dtype's fields would be read from (see _add_pairs);
        #: the K_RESULT of numpy.dtype: its _Dtype.
        self.data = data
        #: K_GLOBAL: module.name; K_RESULT: what was called.
        self.name = name


_NONE = _V(K_NONE)
_BOOL = _V(K_BOOL)
_FLOAT = _V(K_FLOAT)
_BYTES = _V(K_BYTES)
_UNKNOWN = _V(K_UNKNOWN)  # what came of something already reported
_EMPTY_TUPLE = _V(K_TUPLE, [])
_EMPTY_TUPLE.depth = _EMPTY_TUPLE.size = 1


def _is_str(v: _V, text: str | None = None) -> bool:
    return v.kind == K_STR and (text is None or v.data == text)


def _is_bytes(v: _V) -> bool:
    # protocols 0 to 2 write bytes as _codecs.encode(text, "latin1"), and
    # empty bytes as bytes()
    return v.kind == K_BYTES or (v.kind == K_RESULT and v.name in _BYTES_CALLS)


def _is_result(v: _V, *names: str) -> bool:
    return v.kind == K_RESULT and v.name in names


def _describe(v: _V) -> str:
    if v.kind == K_GLOBAL:
        return f"the global '{v.name}'"
    if v.kind == K_RESULT:
        return f"what '{v.name}' returned"
    return {
        K_NONE: "None",
        K_BOOL: "a bool",
        K_INT: "an int",
        K_FLOAT: "a float",
        K_STR: "a str",
        K_BYTES: "bytes",
        K_TUPLE: "a tuple",
        K_LIST: "a list",
        K_DICT: "a dict",
        K_SET: "a set",
        K_FROZENSET: "a frozenset",
        K_STORAGE: "a torch storage",
        K_BUFFER: "a buffer",
    }.get(v.kind, "an unknown value")


# Argument checks of the allowlisted calls: None when the arguments have the
# shape the files use, else what is wrong.
def _args_ordered_dict(a: list[_V]) -> str | None:
    return None if len(a) <= 1 else "takes at most one argument"


def _args_one_iterable(a: list[_V]) -> str | None:
    if len(a) == 0 or (len(a) == 1 and a[0].kind in (K_LIST, K_TUPLE, K_SET, K_FROZENSET)):
        return None
    return "takes nothing or a list"


def _args_complex(a: list[_V]) -> str | None:
    if len(a) <= 2 and all(v.kind in (K_INT, K_FLOAT, K_BOOL) for v in a):
        return None
    return "takes two numbers"


def _args_bytearray(a: list[_V]) -> str | None:
    # bytearray(n) allocates n bytes: only bytes are passed
    if len(a) == 0 or (len(a) == 1 and _is_bytes(a[0])):
        return None
    return "takes nothing or bytes"


def _args_bytes(a: list[_V]) -> str | None:
    return None if not a else "takes no arguments"


def _args_codecs_encode(a: list[_V]) -> str | None:
    if len(a) == 2 and _is_str(a[0]) and _is_str(a[1], "latin1"):
        return None
    return "takes a str and 'latin1'"


def _args_reconstruct(a: list[_V]) -> str | None:
    # numpy writes _reconstruct(ndarray, (0,), b"b"): an empty array, which
    # BUILD then sizes and fills; any other shape is allocated right here
    if (
        len(a) == 3
        and a[0].kind == K_GLOBAL
        and a[0].name == "numpy.ndarray"
        and a[1].kind == K_TUPLE
        and isinstance(a[1].data, list)
        and [_known_int(v) for v in a[1].data] == [0]
        and _is_bytes(a[2])
    ):
        return None
    return "takes numpy.ndarray, the shape (0,) and bytes"


def _is_dtype(v: _V) -> bool:
    return _is_result(v, "numpy.dtype")


# numpy trusts a pickled dtype's state: ``dtype.__setstate__`` takes the
# field offsets, the item size, a subarray's shape and the flags as written,
# and checks none of them against the others. A field past the item size
# reads memory outside the array; flags without the object bits on a dtype
# with an object field make numpy copy raw bytes into it and later use them
# as object pointers (a crash, or worse, in ``pickle.load``, ``numpy.load``
# and ``torch.load(weights_only=False)``); a dtype changed after an array
# took it changes that array. So a dtype state passes only when it is one
# numpy itself writes, and a dtype is sealed once anything uses it.

#: The flags numpy gives a dtype: each bit changes how its items are read
#: (NPY_USE_GETITEM on plain bytes reads through a NULL; an object without
#: NPY_LIST_PICKLE takes raw bytes for pointers), so a state must carry
#: exactly the flags numpy computes from its kind, fields and subarray.
_PLAIN_FLAGS = {"O": 0x3F, "U": 0x08}
#: A structured dtype's own flag (NPY_NEEDS_PYAPI), the bits it takes from
#: its fields (NPY_FROM_FIELDS), and the one align=True adds (NPY_ALIGNED_STRUCT).
_NPY_STRUCT = 0x10
_NPY_FROM_FIELDS = 0x1B
_NPY_ALIGNED_STRUCT = 0x80
#: Nesting numpy's C code recurses through (hashing, comparing, copying).
_MAX_DTYPE_DEPTH = 32
_POINTER_SIZE = 8
#: The dtype kinds numpy's ``dtype.__reduce__`` writes, each followed by its
#: item size in bytes (in characters for U): 'f8', 'b1', 'O8', 'U3', 'V20'.
_DTYPE_KINDS = frozenset("biufcmMOSUV")
#: Bounds on a dtype a pickle describes (numpy's own limit is 2**31 - 1 bytes).
_MAX_ITEMSIZE = 2**31 - 1
#: Kinds whose item size the state gives (others: -1, the type code's), and
#: the alignments numpy gives them; kinds that may have fields; the byte
#: orders numpy writes per kind (a byte-swapped object is a wrong pointer).
_SIZED_KINDS = frozenset("VSU")
_ALIGNMENTS = frozenset({1, 2, 4, 8, 16, 32, 64})
_FIELD_KINDS = frozenset("Vbiufc")
_ORDERS: dict[str, tuple[str, ...]] = {"O": ("|",), "V": ("|",), "S": ("|",)}
_MAX_DICT_PAIRS = 4096
#: numpy's NPY_MAXDIMS.
_MAX_DIMS = 64


class _Dtype:
    """What a pickle's ``numpy.dtype`` call made, as far as the scan follows it."""

    __slots__ = ("depth", "flags", "has_object", "itemsize", "kind", "sealed", "subarray")

    def __init__(self, kind: str, itemsize: int | None) -> None:
        self.kind = kind
        #: Something uses it (an array, a scalar, another dtype): a BUILD now
        #: would change that behind the check.
        self.sealed = False
        #: Bytes per item; None when the code does not say it exactly.
        self.itemsize = itemsize
        #: It holds Python objects (itself, a field or a subarray's base).
        self.has_object = kind == "O"
        #: Its flags, as numpy computes them (and a checked state gave them).
        self.flags = _PLAIN_FLAGS.get(kind, 0)
        #: How many dtypes deep its fields and subarrays nest.
        self.depth = 0
        #: A subarray dtype (``('f4', (2, 3))``): numpy writes one only as a
        #: field's, never as an array's, a scalar's or another subarray's base.
        self.subarray = False


def _dtype_code(code: str) -> _Dtype | None:
    """The dtype ``numpy.dtype(code, False, True)`` makes, or None for a code numpy never writes."""
    body = code[1:] if code[:1] in ("<", ">", "|", "=") else code
    kind, digits = body[:1], body[1:]
    if kind not in _DTYPE_KINDS or not (digits.isascii() and digits.isdecimal()):
        return None
    if len(digits) > 10:
        return None
    size = int(digits) * (4 if kind == "U" else 1)
    if size > _MAX_ITEMSIZE or size != {"O": _POINTER_SIZE, "m": 8, "M": 8}.get(kind, size):
        return None
    return _Dtype(kind, size)


def _known_int(v: _V) -> int | None:
    return v.data if v.kind == K_INT and isinstance(v.data, int) else None


def _component(v: _V, outer: _Dtype) -> tuple[_Dtype, int] | None:
    """A dtype used inside ``outer``, and its size; None unless it is known,
    not empty (an empty dtype is one numpy resizes) and not ``outer`` itself."""
    dt = v.data if _is_dtype(v) else None
    if not isinstance(dt, _Dtype) or dt is outer or not dt.itemsize:
        return None
    return dt, dt.itemsize


class _Sealed(tuple):  # type: ignore[type-arg]
    """The fields of a dict a dtype took (the same pairs): it may not change now."""

    __slots__ = ()


def _seal(v: _V) -> None:
    if v.kind == K_RESULT and isinstance(v.data, _Dtype):
        v.data.sealed = True


def _dtype_state(s: _Scanner, dt: _Dtype, state: _V) -> str | None:
    """None when ``state`` is a dtype state numpy writes and fits ``dt``, else what is wrong.

    The layout is numpy's ``arraydescr_reduce``: (version, byte order,
    subarray, names, fields, item size, alignment, flags[, metadata]).
    Each rule below is one numpy's ``__setstate__`` leaves out and a crash
    it would otherwise allow: a NULL metadata (datetimes), an item size of
    -1 taken as is (V, S, U), an alignment of 0 (a division), a name
    without its field, byte-swapped pointers, a dtype inside itself.
    """
    items = state.data if state.kind == K_TUPLE else None
    if not isinstance(items, list):
        return "its state is not a tuple the scan can read"
    version = _known_int(items[0]) if items else None
    if not ((version == 3 and len(items) == 8) or (version == 4 and len(items) == 9)):
        return "its state is not numpy's (version 3 or 4, of 8 or 9 items)"
    order, subarray, names, fields, elsize_v, align_v, flags_v = items[1:8]
    elsize, align, flags = _known_int(elsize_v), _known_int(align_v), _known_int(flags_v)
    if align is None or elsize is None or flags is None or not 0 <= flags < 256:
        return "its item size, alignment or flags are not small numbers"
    if dt.itemsize is None:
        return "its type code does not give its size"
    sized = dt.kind in _SIZED_KINDS
    if sized and (elsize != dt.itemsize or align not in _ALIGNMENTS):
        return (
            f"its item size ({elsize}) or alignment ({align}) is not the one numpy"
            f" writes for '{dt.kind}{dt.itemsize}'"
        )
    if not sized and (elsize, align) != (-1, -1):
        return "its item size or alignment is set where numpy leaves them to the type code"
    if not _is_str(order) or order.data not in _ORDERS.get(dt.kind, ("<", ">", "|")):
        return "its byte order is not one numpy writes for its kind"
    wrong = _dtype_metadata(dt, items[8] if version == 4 else None)
    if wrong is not None:
        return wrong
    size = dt.itemsize
    parts: list[_V] = []
    has_object = dt.kind == "O"
    if subarray.kind != K_NONE:
        sub = subarray.data if subarray.kind == K_TUPLE else None
        if dt.kind != "V" or not isinstance(sub, list) or len(sub) != 2:
            return "its subarray is not a dtype and a shape"
        base, shape = sub
        got = _component(base, dt)
        dims = shape.data if shape.kind == K_TUPLE else None
        if got is None or not isinstance(dims, list) or fields.kind != K_NONE:
            return "its subarray is not another dtype, of a size, and a shape (without fields)"
        base_dt, base_size = got
        if base_dt.subarray:
            return "its subarray's base is a subarray (numpy joins the two shapes into one)"
        if len(dims) > _MAX_DIMS:
            return f"its subarray has more than {_MAX_DIMS} dimensions"
        count = nonzero = 1
        for d in dims:
            n = _known_int(d)
            if n is None or n < 0:
                return "its subarray's shape is not a tuple of sizes"
            count *= n
            # numpy multiplies the shape in C: a zero does not excuse the rest
            nonzero *= max(n, 1)
            if nonzero > _MAX_ITEMSIZE:
                return "its subarray is larger than numpy allows"
        if base_size * count != size:
            return f"its subarray holds {base_size * count} bytes where its item size is {size}"
        parts.append(base)
        has_object |= base_dt.has_object
        expected: tuple[int, ...] = (base_dt.flags,)
    else:
        expected = (_PLAIN_FLAGS.get(dt.kind, 0),)
    if (names.kind == K_NONE) != (fields.kind == K_NONE):
        return "it has field names without fields, or fields without names"
    if fields.kind != K_NONE:
        pairs = fields.data if fields.kind == K_DICT else None
        listed = names.data if names.kind == K_TUPLE else None
        if dt.kind not in _FIELD_KINDS or not isinstance(pairs, (list, tuple)):
            return "its fields are not a dict of (dtype, offset) entries"
        if not isinstance(listed, list) or not all(_is_text(n) for n in listed):
            return "its field names are not a tuple of names the scan can read"
        # one fields dict can serve many dtypes: the checks are bounded in all
        s.dtype_fields += len(pairs) + len(listed)
        if s.dtype_fields > MAX_DTYPE_FIELDS:
            raise s.fail(
                "pickle-limit",
                f"numpy dtype states with more than {MAX_DTYPE_FIELDS} fields in all",
            )
        # the dict numpy gets: an equal key again keeps the first key object
        # and takes the last value
        final: dict[str, tuple[_V, _V]] = {}
        for key, value in pairs:
            if not _is_text(key) or not isinstance(key.data, str):
                return "its fields are not keyed by names the scan can read"
            first = final.get(key.data)
            final[key.data] = (key if first is None else first[0], value)
        named: dict[str, tuple[_Dtype, int, _V | None]] = {}
        titles: list[tuple[str, _Dtype, int]] = []
        spans: list[tuple[int, int, bool]] = []
        from_fields = 0
        for text, (key, value) in final.items():
            name = _show_name(text)
            entry = value.data if value.kind == K_TUPLE else None
            if not isinstance(entry, list) or len(entry) not in (2, 3):
                return f"its field {name} is not a dtype and an offset"
            got = _component(entry[0], dt)
            offset = _known_int(entry[1])
            if got is None or offset is None:
                return f"its field {name} is not another dtype, of a size, and an offset"
            field_dt, field_size = got
            if offset < 0 or offset + field_size > size:
                return (
                    f"its field {name} spans bytes {offset} to"
                    f" {offset + field_size} of an item of {size}"
                )
            title = entry[2] if len(entry) == 3 else None
            if title is key:
                # numpy (CPython) tells a title's entry by identity alone:
                # its third item is the very object that keys it
                titles.append((text, field_dt, offset))
                continue
            if title is not None and _is_str(title) and title.data == text:
                return (
                    f"its field {name} is titled by an equal name that is not its key,"
                    " which numpy reads as a field and this scan as a title"
                )
            named[text] = (field_dt, offset, title)
            parts.append(entry[0])
            has_object |= field_dt.has_object
            from_fields |= field_dt.flags & _NPY_FROM_FIELDS
            spans.append((offset, offset + field_size, field_dt.has_object))
        for text, field_dt, offset in titles:
            # a title repeats its field: the same dtype at the same offset
            if not any(
                t is not None and _is_str(t, text) and d is field_dt and o == offset
                for d, o, t in named.values()
            ):
                return f"its title {_show_name(text)} is not the title of one of its fields"
        order_of_names = [n.data for n in listed]
        if len(set(order_of_names)) != len(order_of_names) or set(order_of_names) != set(named):
            return "its field names are not the names of its fields, each once"
        if dt.kind != "V" and has_object:
            return "it is a number with fields that hold objects, which numpy never makes"
        if _objects_overlap(spans):
            return "a field that holds objects overlaps another field (numpy refuses that)"
        fields.data = _Sealed(pairs)
        if dt.kind == "V":
            struct = _NPY_STRUCT | from_fields
            expected = (struct, struct | _NPY_ALIGNED_STRUCT)
    if flags not in expected:
        return (
            f"its flags (0x{flags:02x}) are not the ones numpy gives it"
            f" (0x{expected[0]:02x}): they change how its items are read"
        )
    depth = 1 + max((p.data.depth for p in parts if isinstance(p.data, _Dtype)), default=-1)
    if depth > _MAX_DTYPE_DEPTH:
        return f"it nests more than {_MAX_DTYPE_DEPTH} dtypes deep"
    for part in parts:
        _seal(part)
    dt.subarray = subarray.kind != K_NONE
    dt.has_object = has_object
    dt.flags = flags
    dt.depth = max(depth, 0)
    return None


def _objects_overlap(spans: list[tuple[int, int, bool]]) -> bool:
    """A field holding objects shares bytes with another field.

    Sorted by start, a field overlaps one before it when the furthest end
    before it passes its start, and one after it when the next start comes
    before its end (fields are never empty): n log n, where comparing every
    pair would be quadratic in a pickle's thousands of fields.
    """
    spans = sorted(spans)
    reach = -1
    for i, (start, end, obj) in enumerate(spans):
        if obj and (reach > start or (i + 1 < len(spans) and spans[i + 1][0] < end)):
            return True
        reach = max(reach, end)
    return False


def _is_text(v: _V) -> bool:
    """A str whatever the unpickler's encoding: not STRING or BINSTRING, which
    ``encoding='bytes'`` makes bytes."""
    return v.kind == K_STR and v.name is None and isinstance(v.data, str)


class _Array:
    """What a checked array state gave the array ``_reconstruct`` made."""

    __slots__ = ("count", "dtype")

    def __init__(self, dtype: _Dtype, count: int) -> None:
        self.dtype = dtype
        self.count = count


def _array_state(state: _V) -> _Array | str:
    """The array a ``_reconstruct`` BUILD state makes, or what is wrong with it.

    numpy writes (1, shape, dtype, is_fortran, data): data is the raw bytes,
    whose length numpy checks, or for a dtype holding objects a list, whose
    length it does not (a short list reads past its end).
    """
    items = state.data if state.kind == K_TUPLE else None
    if not isinstance(items, list):
        return "a state the scan could not keep (too many tuple items before it)"
    if len(items) != 5 or _known_int(items[0]) != 1:
        return "a state that is not numpy's (1, shape, dtype, is_fortran, data)"
    _, shape, dtype, _fortran, data = items
    dims = shape.data if shape.kind == K_TUPLE else None
    dt = dtype.data if _is_dtype(dtype) else None
    if not isinstance(dims, list) or not isinstance(dt, _Dtype):
        return "a state without a shape and a dtype the scan can read"
    if dt.subarray:
        return "a subarray dtype, which numpy never gives an array (it joins the shapes)"
    if len(dims) > _MAX_DIMS:
        return f"a shape of more than {_MAX_DIMS} dimensions"
    count = 1
    for d in dims:
        n = _known_int(d)
        if n is None or n < 0:
            return "a shape that is not a tuple of sizes"
        count = min(count * n, 1 << 62)
    if dt.has_object:
        listed = data.data if data.kind == K_LIST else None
        if listed != count:
            return (
                f"{count} items of objects from a list of {listed} (numpy reads each item"
                " without checking the list is long enough)"
                if isinstance(listed, int)
                else "objects from something other than a list the scan counted"
            )
    elif not _is_bytes(data):
        return "its data not as bytes"
    elif dt.itemsize == 0 and count > _MAX_ITEMSIZE:
        # numpy checks the bytes against the shape: for empty items no bytes
        # bound it, and whoever iterates the array never finishes
        return f"{count} items of an empty dtype"
    return _Array(dt, count)


def _dtype_metadata(dt: _Dtype, meta: _V | None) -> str | None:
    """None when a dtype's metadata is what numpy writes for its kind."""
    if dt.kind not in "mM":
        if meta is None or meta.kind in (K_NONE, K_DICT):
            return None
        return "its metadata is not a dict"
    # a datetime's: (user metadata, (unit, multiplier, 1, 1)); without it
    # numpy reads a NULL
    outer = meta.data if meta is not None and meta.kind == K_TUPLE else None
    if isinstance(outer, list) and len(outer) == 2 and outer[0].kind in (K_NONE, K_DICT):
        inner = outer[1].data if outer[1].kind == K_TUPLE else None
        if isinstance(inner, list) and len(inner) == 4 and _is_bytes(inner[0]):
            num, den, events = (_known_int(v) for v in inner[1:])
            if num is not None and 1 <= num < 2**31 and den == 1 and events == 1:
                return None
    return "it is a datetime without the (unit, multiplier, 1, 1) numpy writes for one"


def _args_frombuffer(a: list[_V]) -> str | None:
    if (
        len(a) == 4
        and (_is_bytes(a[0]) or a[0].kind == K_BUFFER)
        and _is_dtype(a[1])
        and isinstance(a[1].data, _Dtype)
        and not a[1].data.subarray
        and a[2].kind == K_TUPLE
        and _is_str(a[3])
    ):
        return None
    return "takes a buffer, a dtype, a shape and an order"


def _args_scalar(a: list[_V]) -> str | None:
    # numpy writes scalar(dtype, data); with no data it resizes an empty
    # dtype in place, under whatever already uses it. The data is bytes
    # (numpy checks their length), the object itself for an object dtype, or
    # for a structured dtype holding objects an array of that dtype, whose
    # first item numpy reads without checking there is one.
    dt = a[0].data if a and _is_dtype(a[0]) else None
    if len(a) != 2 or not isinstance(dt, _Dtype):
        return "takes a dtype and its data"
    if dt.subarray:
        return "takes a dtype that is not a subarray's"
    if dt.kind == "O" or (not dt.has_object and _is_bytes(a[1])):
        return None
    arr = a[1].data if _is_result(a[1], *_RECONSTRUCTS) else None
    if dt.has_object and isinstance(arr, _Array) and arr.dtype is dt and arr.count >= 1:
        return None
    return "takes a dtype and its data (bytes, or an array of it with an item)"


def _args_dtype(a: list[_V]) -> str | None:
    if (
        1 <= len(a) <= 3
        and _is_str(a[0])
        and isinstance(a[0].data, str)
        and _dtype_code(a[0].data) is not None
        and all(v.kind in (K_BOOL, K_INT) for v in a[1:])
    ):
        return None
    return "takes a type code as numpy writes it ('f8', 'V16') and two flags"


def _args_torch_size(a: list[_V]) -> str | None:
    if len(a) == 1 and a[0].kind in (K_TUPLE, K_LIST):
        return None
    return "takes a tuple of sizes"


def _args_torch_device(a: list[_V]) -> str | None:
    if 1 <= len(a) <= 2 and _is_str(a[0]) and all(v.kind == K_INT for v in a[1:]):
        return None
    return "takes a device type and an index"


def _args_rebuild(low: int, high: int) -> Callable[[list[_V]], str | None]:
    def check(a: list[_V]) -> str | None:
        if low <= len(a) <= high and a[0].kind == K_STORAGE:
            return None
        return f"takes a storage (a persistent id) and {low - 1} to {high - 1} more arguments"

    return check


def _args_parameter(a: list[_V]) -> str | None:
    if len(a) == 3 and _is_result(a[0], *_TENSOR_REBUILDS):
        return None
    return "takes a tensor and two more arguments"


_ARGS: dict[str, Callable[[list[_V]], str | None]] = {
    "collections.OrderedDict": _args_ordered_dict,
    "builtins.set": _args_one_iterable,
    "builtins.frozenset": _args_one_iterable,
    "builtins.complex": _args_complex,
    "builtins.bytearray": _args_bytearray,
    "builtins.bytes": _args_bytes,
    "_codecs.encode": _args_codecs_encode,
    "numpy.core.multiarray._reconstruct": _args_reconstruct,
    "numpy._core.multiarray._reconstruct": _args_reconstruct,
    "numpy.core.numeric._frombuffer": _args_frombuffer,
    "numpy._core.numeric._frombuffer": _args_frombuffer,
    "numpy.core.multiarray.scalar": _args_scalar,
    "numpy._core.multiarray.scalar": _args_scalar,
    "numpy.dtype": _args_dtype,
    "torch._utils._rebuild_tensor": _args_rebuild(4, 4),
    "torch._utils._rebuild_tensor_v2": _args_rebuild(6, 7),
    "torch._utils._rebuild_tensor_v3": _args_rebuild(7, 8),
    "torch._utils._rebuild_parameter": _args_parameter,
    "torch.Size": _args_torch_size,
    "torch.device": _args_torch_device,
}
for _name in ("set", "frozenset", "complex", "bytearray", "bytes"):
    _ARGS[f"__builtin__.{_name}"] = _ARGS[f"builtins.{_name}"]


# ---------------------------------------------------------------- the scanner


class _Stop(Exception):
    """The walk of this pickle ends (a structural finding was made, or a bound hit)."""


@dataclass
class _Result:
    findings: list[FormatFinding]
    stop: int  # where the walk ended (after STOP when it stopped)
    stopped: bool  # reached STOP
    clean_structure: bool  # no malformed/truncated/limit finding
    value: _V | None = None  # what STOP returned
    #: torch storages named by persistent ids: key -> (storage class, count)
    storages: dict[str, tuple[str, int]] = field(default_factory=dict)


_STRUCTURAL = frozenset({"pickle-malformed", "pickle-truncated", "pickle-limit"})


class _Scanner:
    def __init__(
        self,
        read: Reader,
        start: int,
        end: int,
        *,
        file: str,
        fmt: str,
        options: ScanOptions,
        member: str | None,
        layout: str | None,
    ) -> None:
        #: the torch layout whose persistent ids are allowed, if any
        self.layout = layout
        self.read_fn = read
        self.pos = start
        self.end = end
        self.file = file
        self.fmt = fmt
        self.member = member
        self.roles = dict(_ROLES)
        for name in options.allow_globals:
            self.roles[name] = self.roles.get(name, 0) | _ANY
        self.buf = b""
        self.base = start
        self.findings: list[FormatFinding] = []
        self.dropped = 0
        self.seen: set[tuple[str, str]] = set()
        self.storages: dict[str, tuple[str, int]] = {}
        self.op_pos = start
        self.proto = 0
        self.fence = 0
        self.kept = 0
        self.reused = 0
        self.dtype_fields = 0
        self.frame_end = -1
        self.stop_value: _V = _NONE

    # -- findings

    def add(self, code: str, message: str, offset: int | None = None) -> None:
        if len(self.findings) >= MAX_FINDINGS:
            # counted, not remembered: a flood of distinct findings must not
            # grow memory with the file
            self.dropped += 1
            return
        key = (code, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.findings.append(
            FormatFinding(
                self.file,
                self.fmt,
                code,
                message,
                offset=self.op_pos if offset is None else offset,
                member=self.member,
            )
        )

    def fail(self, code: str, message: str) -> _Stop:
        self.add(code, f"{message} (byte {self.op_pos})")
        return _Stop()

    # -- reading

    def _fill(self, pos: int, n: int) -> None:
        want = min(max(n, WINDOW), max(self.end - pos, 0))
        self.buf = self.read_fn(pos, want)
        self.base = pos
        if len(self.buf) < want:  # the file is shorter than it said
            self.end = pos + len(self.buf)

    def take(self, n: int) -> bytes:
        """``n`` bytes at the current position (n is small), or a truncation finding."""
        pos = self.pos
        off = pos - self.base
        if off < 0 or off + n > len(self.buf):
            if pos + n > self.end:
                raise self.fail("pickle-truncated", "the stream ends inside an opcode")
            self._fill(pos, n)
            off = 0
            if len(self.buf) < n:
                raise self.fail("pickle-truncated", "the file ends inside an opcode")
        self.pos = pos + n
        return self.buf[off : off + n]

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise self.fail(
                "pickle-truncated",
                f"an argument of {n} bytes runs past the end of the stream",
            )
        self.pos += n

    def line(self) -> bytes:
        """The line at the current position, without its newline."""
        pos = self.pos
        for attempt in range(2):
            off = pos - self.base
            if 0 <= off <= len(self.buf):
                cut = self.buf.find(b"\n", off, off + MAX_LINE + 1)
                if cut >= 0:
                    self.pos = self.base + cut + 1
                    return self.buf[off:cut]
                if len(self.buf) - off > MAX_LINE:
                    break
                if self.base + len(self.buf) >= self.end:
                    raise self.fail("pickle-truncated", "the stream ends inside a line argument")
            if attempt == 0:
                self._fill(pos, MAX_LINE + 1)
        raise self.fail("pickle-limit", f"a line argument longer than {MAX_LINE} bytes")

    def text(self, n: int) -> str | None:
        """A UTF-8 argument of ``n`` bytes: its text when short, else skipped (None)."""
        if n > READ_UP_TO:
            self.skip(n)
            return None
        raw = self.take(n)
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise self.fail("pickle-malformed", "a string argument is not UTF-8") from None

    def raw_string(self, n: int) -> str | None:
        """A BINSTRING argument: bytes decoded as the unpickler would (ASCII or latin-1)."""
        if n > READ_UP_TO:
            self.skip(n)
            return None
        return self.take(n).decode("latin-1")

    # -- names

    def resolve(self, module: str, name: str, how: str) -> _V:
        """The global ``module.name``, judged against the allowlist."""
        written = f"{module}.{name}"
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        effective = f"{module}.{name}"
        shown = _show_name(written)
        if written != effective:
            shown += f" (loaded as {_show_name(effective)})"
        why = None
        if "." in name:
            why = "names an attribute path, which is never allowed"
        elif not module or not name:
            why = "is not a module and a name"
        elif written not in self.roles or effective not in self.roles:
            why = "is not in the allowlist"
            does = _DANGEROUS.get(effective) or _DANGEROUS.get(module)
            if does:
                why += f": it {does}"
        if why is not None:
            self.add("pickle-global-denied", f"{how} {shown} {why} (byte {self.op_pos})")
            return _V(K_GLOBAL, False, effective)
        return _V(K_GLOBAL, True, effective)

    # -- calls

    def call(self, callee: _V, args: object, how: str, role: int = _CALL) -> _V:
        """The call ``how`` of ``callee`` with ``args`` (a list, or None: a long tuple)."""
        if callee.kind == K_UNKNOWN or (callee.kind == K_GLOBAL and not callee.data):
            return _UNKNOWN  # reported already
        if callee.kind != K_GLOBAL:
            self.add(
                "pickle-call-denied",
                f"{how} calls {_describe(callee)}, which is not an allowlisted global"
                f" (byte {self.op_pos})",
            )
            return _UNKNOWN
        name = callee.name or ""
        if not self.roles.get(name, 0) & role:
            self.add(
                "pickle-call-denied",
                f"{how} on {_show_name(name)}, which is allowlisted as a value,"
                f" not to be {'called' if role == _CALL else 'instantiated'} (byte {self.op_pos})",
            )
            return _UNKNOWN
        check = _ARGS.get(name)
        if check is not None:
            wrong = check(args) if isinstance(args, list) else "takes a few arguments"
            if wrong is not None:
                self.add(
                    "pickle-call-arguments",
                    f"{how} calls {_show_name(name)} with arguments outside the shape its"
                    f" files use: it {wrong} (byte {self.op_pos})",
                )
                return _UNKNOWN
        if isinstance(args, list):
            for arg in args:
                _seal(arg)  # an array or a scalar holds a dtype from now on
        if name == "numpy.dtype" and isinstance(args, list) and isinstance(args[0].data, str):
            return _V(K_RESULT, _dtype_code(args[0].data), name)
        return _V(K_RESULT, None, name)

    # -- the walk

    def run(self) -> _Result:
        self.proto = 0
        stack: list[_V] = []
        metastack: Marks = []
        self.fence = 0
        memo: dict[int, _V] = {}
        frame_end = -1
        ops = 0
        value: _V | None = None
        stopped = False
        simple = _SIMPLE  # opcodes without an argument: no read, no frame change
        handlers = _HANDLERS
        pos = self.op_pos = self.pos
        buf, base = self.buf, self.base
        size = len(buf)
        try:
            while True:
                ops += 1
                if not ops & 0x3FF:  # the bounds, every 1024 opcodes (one pushes one value)
                    self.op_pos = pos
                    if ops > MAX_OPCODES:
                        raise self.fail("pickle-limit", f"more than {MAX_OPCODES} opcodes")
                    if len(stack) > MAX_STACK:
                        raise self.fail(
                            "pickle-limit", f"more than {MAX_STACK} values on the stack"
                        )
                off = pos - base
                if 0 <= off < size:
                    code = buf[off]
                else:
                    self.pos = self.op_pos = pos
                    if pos >= self.end:
                        raise self.fail("pickle-truncated", "the stream ends before STOP")
                    code = self.take(1)[0]
                    buf, base = self.buf, self.base
                    size = len(buf)
                quick = simple.get(code)
                if quick is not None:
                    self.op_pos = pos
                    quick(self, stack, metastack, memo)
                    pos += 1
                    if pos == frame_end:
                        frame_end = -1
                    continue
                handler = handlers.get(code)
                self.op_pos = pos
                if handler is None:
                    raise self.fail("pickle-malformed", f"unknown opcode 0x{code:02x}")
                self.pos = pos + 1
                got = handler(self, stack, metastack, memo)
                pos = self.pos
                buf, base = self.buf, self.base
                size = len(buf)
                if got is not None:
                    if got is _STOP_MARK:
                        value = self.stop_value
                        stopped = True
                        break
                    # a FRAME
                    if frame_end >= 0:
                        raise self.fail("pickle-malformed", "a FRAME starts inside another frame")
                    frame_end = self.frame_end if self.frame_end > pos else -1
                elif frame_end >= 0 and pos >= frame_end:
                    if pos > frame_end:
                        raise self.fail(
                            "pickle-malformed", "an opcode crosses the end of its frame"
                        )
                    frame_end = -1
        except _Stop:
            self.pos = self.op_pos  # where the walk broke off
        if self.dropped:
            self.findings.append(
                FormatFinding(
                    self.file,
                    self.fmt,
                    "pickle-limit",
                    f"{self.dropped} more findings in this pickle not shown",
                    member=self.member,
                )
            )
        clean = not any(f.code in _STRUCTURAL for f in self.findings)
        return _Result(self.findings, self.pos, stopped, clean, value, self.storages)


def _show_name(name: str) -> str:
    shown = _show(name, 120)
    if not name.isascii():
        shown = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in shown)
        return f"'{shown}' (not ASCII)"
    return f"'{shown}'"


_FRAME_MARK = object()
_STOP_MARK = object()

Stack = list[_V]
Marks = list[int]
Handler = Callable[[_Scanner, Stack, Marks, dict[int, _V]], object]
_HANDLERS: dict[int, Handler] = {}


def _op(code: bytes) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[code[0]] = fn
        return fn

    return register


# The stack is one list; a MARK records its length (the unpickler's "fence"),
# and no opcode but a mark's consumer reaches below it.


def _pop(s: _Scanner, stack: Stack, n: int = 1) -> list[_V]:
    cut = len(stack) - n
    if cut < s.fence:
        raise s.fail("pickle-malformed", "stack underflow")
    items = stack[cut:]
    del stack[cut:]
    return items


def _pop_mark(s: _Scanner, stack: Stack, marks: Marks) -> list[_V]:
    if not marks:
        raise s.fail("pickle-malformed", "no MARK for an opcode that needs one")
    cut = marks.pop()
    s.fence = marks[-1] if marks else 0
    items = stack[cut:]
    del stack[cut:]
    return items


def _top(s: _Scanner, stack: Stack) -> _V:
    if len(stack) <= s.fence:
        raise s.fail("pickle-malformed", "stack underflow")
    return stack[-1]


# -- pushes of plain values


def _pusher(code: bytes, value: _V) -> None:
    def push(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
        stack.append(value)
        return None

    _HANDLERS[code[0]] = push


_pusher(b"N", _NONE)
_pusher(b"\x88", _BOOL)
_pusher(b"\x89", _BOOL)


@_op(b"}")
def _empty_dict(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    stack.append(_V(K_DICT, ()))  # its own: a dtype's fields are read from it
    return None


@_op(b"]")
def _empty_list(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    stack.append(_V(K_LIST, 0))  # its own, counted: an object array's items come from it
    return None


_pusher(b")", _EMPTY_TUPLE)
_pusher(b"\x8f", _V(K_SET))


@_op(b"I")
def _int(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    # As _pickle's load_int reads it: strtol(line, base 0), so a leading 0
    # is octal and 0x hex, up to a NUL; a bool when the line is two bytes
    # and says 0 or 1 (" 1", "+0"); Python's int rules past a C long.
    line = s.line()
    if not line:
        raise s.fail("pickle-malformed", "an INT argument that is empty")
    text = line.split(b"\0", 1)[0]
    value = _strtol0(text)
    if value is None:
        stack.append(_V(K_INT, _parse_int(s, text)))
    elif len(line) == 2 and value in (0, 1):
        stack.append(_BOOL)
    else:
        stack.append(_V(K_INT, value))
    return None


@_op(b"L")
def _long(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    line = s.line()  # load_long drops a last "L" and reads the rest as int(text, 0)
    stack.append(_V(K_INT, _parse_int(s, (line[:-1] if line.endswith(b"L") else line))))
    return None


_C_SPACE = b" \t\n\v\f\r"
_DIGITS = {8: frozenset(b"01234567"), 10: frozenset(b"0123456789")}
_DIGITS[16] = frozenset(b"0123456789abcdefABCDEF")


def _strtol0(text: bytes) -> int | None:
    """``strtol(text, &end, 0)`` when it reads all of ``text`` and fits a C long, else None."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = i < n and text[i] == 0x2D
    if i < n and text[i] in b"+-":
        i += 1
    if text[i : i + 2] in (b"0x", b"0X") and i + 2 < n and text[i + 2] in _DIGITS[16]:
        base, i = 16, i + 2
    else:
        base = 8 if text[i : i + 1] == b"0" else 10
    digits = text[i:]
    if not digits:
        # nothing converted: the end is the line's start, fine only if empty
        return 0 if not text else None
    if len(digits) > 64 or not _DIGITS[base].issuperset(digits):
        return None
    value = -int(digits, base) if negative else int(digits, base)
    return value if -(2**63) <= value < 2**63 else None


def _parse_int(s: _Scanner, text: bytes) -> int | None:
    """``int(text, 0)`` up to a NUL, as PyLong_FromString reads it."""
    text = text.split(b"\0", 1)[0]
    if len(text) > 100:
        body = text.strip().lstrip(b"+-").replace(b"_", b"")
        if body.isdigit() and body[:1] != b"0":
            return None  # too long to matter (and to convert cheaply)
    try:
        return int(text, 0)
    except ValueError:
        raise s.fail("pickle-malformed", "an integer argument that is not a number") from None


def _fixed_int(code: bytes, width: int, signed: bool) -> None:
    def push(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
        stack.append(_V(K_INT, int.from_bytes(s.take(width), "little", signed=signed)))
        return None

    _HANDLERS[code[0]] = push


_fixed_int(b"J", 4, True)  # BININT
_fixed_int(b"K", 1, False)  # BININT1
_fixed_int(b"M", 2, False)  # BININT2


@_op(b"\x8a")  # LONG1
def _long1(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    n = s.take(1)[0]
    stack.append(_V(K_INT, int.from_bytes(s.take(n), "little", signed=True) if n else 0))
    return None


@_op(b"\x8b")  # LONG4
def _long4(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    n = int.from_bytes(s.take(4), "little", signed=True)
    if n < 0:
        raise s.fail("pickle-malformed", "LONG4 with a negative length")
    if n > READ_UP_TO:
        s.skip(n)
        stack.append(_V(K_INT, None))
    else:
        stack.append(_V(K_INT, int.from_bytes(s.take(n), "little", signed=True) if n else 0))
    return None


@_op(b"F")
def _float(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    line = s.line()
    try:
        float(line)
    except ValueError:
        raise s.fail("pickle-malformed", "a FLOAT argument that is not a number") from None
    stack.append(_FLOAT)
    return None


@_op(b"G")
def _binfloat(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    s.take(8)
    stack.append(_FLOAT)
    return None


@_op(b"S")  # STRING: a quoted repr
def _string(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    data = s.line().rstrip(b" \t\r\x00")
    if len(data) < 2 or data[0] != data[-1] or data[:1] not in (b"'", b'"'):
        raise s.fail("pickle-malformed", "a STRING argument that is not quoted")
    try:
        raw = codecs.escape_decode(data[1:-1])[0]
    except ValueError:
        raise s.fail("pickle-malformed", "a STRING argument with a bad escape") from None
    text = raw.decode("latin-1") if len(raw) <= READ_UP_TO else None
    stack.append(_V(K_STR, text, _BYTES_STR))  # bytes under encoding="bytes"
    return None


@_op(b"V")  # UNICODE: raw-unicode-escape
def _unicode(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    data = s.line()
    try:
        text = data.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise s.fail("pickle-malformed", "a UNICODE argument with a bad escape") from None
    stack.append(_V(K_STR, text if len(text) <= READ_UP_TO else None))
    return None


def _sized(code: bytes, width: int, kind: int, signed: bool = False) -> None:
    def push(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
        n = int.from_bytes(s.take(width), "little", signed=signed)
        if n < 0:
            raise s.fail("pickle-malformed", "a negative length")
        if kind == K_STR:
            stack.append(_V(K_STR, s.text(n)))
        elif kind == K_BYTES:
            s.skip(n)
            stack.append(_BYTES)
        else:  # BINSTRING, SHORT_BINSTRING: str by the unpickler's encoding
            stack.append(_V(K_STR, s.raw_string(n), _BYTES_STR))
        return None

    _HANDLERS[code[0]] = push


_RAWSTR = -1
#: The name of a K_STR from STRING or BINSTRING: bytes under encoding="bytes".
_BYTES_STR = "8-bit"
_sized(b"T", 4, _RAWSTR, signed=True)  # BINSTRING
_sized(b"U", 1, _RAWSTR)  # SHORT_BINSTRING
_sized(b"X", 4, K_STR)  # BINUNICODE
_sized(b"\x8c", 1, K_STR)  # SHORT_BINUNICODE
_sized(b"\x8d", 8, K_STR)  # BINUNICODE8
_sized(b"B", 4, K_BYTES)  # BINBYTES
_sized(b"C", 1, K_BYTES)  # SHORT_BINBYTES
_sized(b"\x8e", 8, K_BYTES)  # BINBYTES8
_sized(b"\x96", 8, K_BYTES)  # BYTEARRAY8


@_op(b"\x97")  # NEXT_BUFFER
def _next_buffer(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    s.add(
        "pickle-out-of-band",
        f"NEXT_BUFFER: the stream refers to out-of-band buffers, which a file cannot carry"
        f" (byte {s.op_pos})",
    )
    stack.append(_V(K_BUFFER))
    return None


@_op(b"\x98")  # READONLY_BUFFER
def _readonly_buffer(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _top(s, stack)
    return None


# -- stack and marks


@_op(b"(")
def _mark(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    if len(metastack) >= MAX_MARKS:
        raise s.fail("pickle-limit", f"more than {MAX_MARKS} nested marks")
    metastack.append(len(stack))
    s.fence = len(stack)
    return None


@_op(b"0")
def _pop_op(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    if len(stack) > s.fence:
        stack.pop()
    else:
        _pop_mark(s, stack, metastack)
    return None


@_op(b"1")
def _pop_mark_op(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    _pop_mark(s, stack, metastack)
    return None


@_op(b"2")
def _dup(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    got = _top(s, stack)
    if got.kind == K_TUPLE:
        _reuse(s, got)
    stack.append(got)
    return None


def _reuse(s: _Scanner, got: _V) -> None:
    """Count a tuple used a second time, through all it holds."""
    if got.size > TUPLE_ITEMS_KEPT:
        s.reused += got.size
        if s.reused > MAX_TUPLE_REUSE:
            raise s.fail(
                "pickle-limit",
                f"tuples used again (through the memo or DUP) hold more than"
                f" {MAX_TUPLE_REUSE} values in all, counted through their nesting:"
                " hashing or comparing them would take that long again and again",
            )


# -- memo


def _memo_get(s: _Scanner, stack: Stack, memo: dict[int, _V], index: int) -> None:
    got = memo.get(index)
    if got is None:
        raise s.fail("pickle-malformed", f"memo entry {index} read before it was stored")
    if got.kind == K_TUPLE:
        _reuse(s, got)
    stack.append(got)


def _memo_put(s: _Scanner, stack: Stack, memo: dict[int, _V], index: int) -> None:
    if index < 0:
        raise s.fail("pickle-malformed", "a negative memo index")
    if index >= MAX_MEMO:
        # the C unpickler sizes its memo by the index (twice it, 8 bytes each)
        raise s.fail("pickle-limit", f"a memo index of {index}, past {MAX_MEMO - 1}")
    if index not in memo and len(memo) >= MAX_MEMO:
        raise s.fail("pickle-limit", f"more than {MAX_MEMO} memo entries")
    memo[index] = _top(s, stack)


def _text_index(s: _Scanner) -> int:
    line = s.line()
    try:
        return int(line)
    except ValueError:
        raise s.fail("pickle-malformed", "a memo index that is not a number") from None


@_op(b"g")
def _get(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_get(s, stack, memo, _text_index(s))
    return None


@_op(b"h")
def _binget(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_get(s, stack, memo, s.take(1)[0])
    return None


@_op(b"j")
def _long_binget(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_get(s, stack, memo, int.from_bytes(s.take(4), "little"))
    return None


@_op(b"p")
def _put(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_put(s, stack, memo, _text_index(s))
    return None


@_op(b"q")
def _binput(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_put(s, stack, memo, s.take(1)[0])
    return None


@_op(b"r")
def _long_binput(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_put(s, stack, memo, int.from_bytes(s.take(4), "little"))
    return None


@_op(b"\x94")
def _memoize(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _memo_put(s, stack, memo, len(memo))
    return None


# -- containers


def _tuple_value(s: _Scanner, items: list[_V]) -> _V:
    """A tuple; its items are kept only when few (arguments, persistent ids, shapes)."""
    depth, size = 0, 1 + len(items)
    for v in items:
        if v.kind == K_TUPLE:
            size += v.size - 1
            if v.depth > depth:
                depth = v.depth
    if depth >= MAX_TUPLE_DEPTH:
        raise s.fail(
            "pickle-limit",
            f"tuples nested more than {MAX_TUPLE_DEPTH} deep (hashing one, as a dict key"
            " or a set member, recurses that deep in C and can crash whoever loads it)",
        )
    if s.kept > MAX_KEPT or (
        len(items) > TUPLE_ITEMS_KEPT
        # names, such as a structured dtype's, are kept up to a bound
        and (len(items) > NAMES_KEPT or not all(v.kind == K_STR for v in items))
    ):
        got = _V(K_TUPLE, None)
    else:
        s.kept += len(items)
        got = _V(K_TUPLE, items)
    got.depth = depth + 1
    got.size = size
    return got


def _tuple_of(n: int) -> Handler:
    def build(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
        stack.append(_tuple_value(s, _pop(s, stack, n)))
        return None

    return build


_HANDLERS[0x85] = _tuple_of(1)
_HANDLERS[0x86] = _tuple_of(2)
_HANDLERS[0x87] = _tuple_of(3)


@_op(b"t")
def _tuple(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    stack.append(_tuple_value(s, _pop_mark(s, stack, metastack)))
    return None


@_op(b"l")
def _list(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    items = _pop_mark(s, stack, metastack)
    stack.append(_V(K_LIST, len(items)))
    return None


@_op(b"d")
def _dict(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    items = _pop_mark(s, stack, metastack)
    if len(items) % 2:
        raise s.fail("pickle-malformed", "DICT with an odd number of items")
    stack.append(_V(K_DICT, ()))
    if items:
        _add_pairs(s, stack[-1], items)
    return None


def _add_pairs(s: _Scanner, target: _V, items: list[_V]) -> None:
    """Keep a plain dict's items while they could be a dtype's fields.

    Only (dtype, offset[, title]) entries are kept, and only while every
    item is one: the first other item (what nearly every dict holds) drops
    them, so a state dict's values are not kept alive for nothing.
    """
    if target.kind != K_DICT:
        return
    pairs = target.data
    if pairs is None or not items:
        return
    if isinstance(pairs, _Sealed):
        s.add(
            "pickle-build-denied",
            f"changes the fields of a numpy dtype after it was built (byte {s.op_pos})",
        )
        return
    if not isinstance(pairs, list):
        pairs = target.data = []
    for i in range(1, len(items), 2):
        entry = items[i].data if items[i].kind == K_TUPLE else None
        if (
            not isinstance(entry, list)
            or not 2 <= len(entry) <= 3
            or not _is_dtype(entry[0])
            or len(pairs) >= _MAX_DICT_PAIRS
        ):
            target.data = None  # no dtype may take it for its fields
            return
        pairs.append((items[i - 1], items[i]))


@_op(b"\x91")
def _frozenset(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    _pop_mark(s, stack, metastack)
    stack.append(_V(K_FROZENSET))
    return None


def _target(s: _Scanner, target: _V, how: str, kinds: tuple[int, ...], results: bool) -> None:
    """Item assignment, APPEND, ADDITEMS on anything else call that object's methods."""
    if target.kind in kinds or target.kind == K_UNKNOWN:
        return
    if results and target.kind == K_RESULT and target.name == "collections.OrderedDict":
        return
    if target.kind == K_RESULT and s.roles.get(target.name or "", 0) & _ANY == _ANY:
        return  # a user-allowed global: trusted
    s.add(
        "pickle-container-denied",
        f"{how} on {_describe(target)}, not a plain container (byte {s.op_pos})",
    )


@_op(b"s")
def _setitem(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    items = _pop(s, stack, 2)
    _set_items(s, _top(s, stack), items, "SETITEM")
    return None


@_op(b"u")
def _setitems(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    items = _pop_mark(s, stack, metastack)
    if len(items) % 2:
        raise s.fail("pickle-malformed", "SETITEMS with an odd number of items")
    _set_items(s, _top(s, stack), items, "SETITEMS")
    return None


def _set_items(s: _Scanner, target: _V, items: list[_V], how: str) -> None:
    _target(s, target, how, (K_DICT,), True)
    pairs = target.data
    if pairs is not None and items and target.kind == K_DICT:
        if items[1].kind == K_TUPLE or pairs.__class__ is _Sealed:
            _add_pairs(s, target, items)
        else:
            target.data = None  # the common case, kept cheap: not a dtype's fields


@_op(b"a")
def _append(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    _pop(s, stack, 1)
    target = _top(s, stack)
    _target(s, target, "APPEND", (K_LIST,), False)
    if target.kind == K_LIST and isinstance(target.data, int):
        target.data += 1
    return None


@_op(b"e")
def _appends(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    items = _pop_mark(s, stack, metastack)
    target = _top(s, stack)
    _target(s, target, "APPENDS", (K_LIST,), False)
    if target.kind == K_LIST and isinstance(target.data, int):
        target.data += len(items)
    return None


@_op(b"\x90")
def _additems(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    _pop_mark(s, stack, metastack)
    _target(s, _top(s, stack), "ADDITEMS", (K_SET,), False)
    return None


# -- globals and calls


def _name_line(s: _Scanner) -> str:
    raw = s.line()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise s.fail("pickle-malformed", "a GLOBAL or INST name that is not UTF-8") from None


@_op(b"c")
def _global(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    module = _name_line(s)
    name = _name_line(s)
    stack.append(s.resolve(module, name, "GLOBAL"))
    return None


@_op(b"\x93")
def _stack_global(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    module, name = _pop(s, stack, 2)
    if module.kind != K_STR or name.kind != K_STR or module.data is None or name.data is None:
        s.add(
            "pickle-global-unresolved",
            f"STACK_GLOBAL of {_describe(module)} and {_describe(name)}: not two known strings"
            f" (byte {s.op_pos})",
        )
        stack.append(_UNKNOWN)
        return None
    assert isinstance(module.data, str) and isinstance(name.data, str)
    stack.append(s.resolve(module.data, name.data, "STACK_GLOBAL"))
    return None


@_op(b"i")
def _inst(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    module = _name_line(s)
    name = _name_line(s)
    cls = s.resolve(module, name, "INST")
    args = _pop_mark(s, stack, metastack)
    stack.append(s.call(cls, args, "INST"))
    return None


@_op(b"o")
def _obj(s: _Scanner, stack: Stack, metastack: Marks, memo: dict[int, _V]) -> object:
    items = _pop_mark(s, stack, metastack)
    if not items:
        raise s.fail("pickle-malformed", "OBJ without a class")
    stack.append(s.call(items[0], items[1:], "OBJ"))
    return None


@_op(b"R")
def _reduce(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    callee, args = _pop(s, stack, 2)
    if args.kind != K_TUPLE:
        if callee.kind != K_UNKNOWN and not (callee.kind == K_GLOBAL and not callee.data):
            s.add(
                "pickle-call-arguments",
                f"REDUCE with {_describe(args)} for arguments, not a tuple (byte {s.op_pos})",
            )
        stack.append(_UNKNOWN)
        return None
    stack.append(s.call(callee, args.data, "REDUCE"))
    return None


@_op(b"\x81")
def _newobj(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    cls, args = _pop(s, stack, 2)
    items = args.data if args.kind == K_TUPLE else None
    stack.append(s.call(cls, items, "NEWOBJ", _NEW))
    return None


@_op(b"\x92")
def _newobj_ex(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    cls, args, _kwargs = _pop(s, stack, 3)
    items = args.data if args.kind == K_TUPLE else None
    stack.append(s.call(cls, items, "NEWOBJ_EX", _NEW))
    return None


@_op(b"b")
def _build(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    (state,) = _pop(s, stack, 1)
    target = _top(s, stack)
    if target.kind == K_UNKNOWN:
        return None
    role = s.roles.get(target.name or "", 0) if target.kind == K_RESULT else 0
    if role & _ANY == _ANY:
        return None  # a user-allowed global
    if role & (_BUILD_DICT | _BUILD_TUPLE) and target.built:
        s.add(
            "pickle-build-denied",
            f"a second BUILD on what {_show_name(target.name or '')} returned: the first "
            f"may have set its __setstate__, which this one would call (byte {s.op_pos})",
        )
        return None
    if role & _BUILD_DICT and state.kind == K_DICT:
        target.built = True
        return None
    if _is_dtype(target) and state.kind == K_TUPLE:
        dt = target.data
        wrong = (
            "its type code is not one numpy writes"
            if not isinstance(dt, _Dtype)
            else "something already uses it, so this would change that behind the check"
            if dt.sealed
            else _dtype_state(s, dt, state)
        )
        target.built = True
        if wrong is not None:
            s.add(
                "pickle-build-denied",
                f"BUILD on a numpy dtype with a state numpy does not write: {wrong}"
                f" (byte {s.op_pos})",
            )
        return None
    if role & _BUILD_TUPLE and state.kind == K_TUPLE:
        target.built = True
        got = _array_state(state)
        if isinstance(got, str):
            s.add(
                "pickle-build-denied",
                f"BUILD on what {_show_name(target.name or '')} returned with {got}"
                f" (byte {s.op_pos})",
            )
            return None
        _seal(state.data[2])  # type: ignore[index]  # the array holds its dtype from now on
        target.data = got
        return None
    if role & (_BUILD_DICT | _BUILD_TUPLE):
        s.add(
            "pickle-build-denied",
            f"BUILD on what {_show_name(target.name or '')} returned with {_describe(state)}"
            f" for its state, not the state its files hold (byte {s.op_pos})",
        )
    else:
        s.add(
            "pickle-build-denied",
            f"BUILD on {_describe(target)}, which is not allowlisted to be built (byte {s.op_pos})",
        )
    return None


@_op(b"\x82")
def _ext1(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    return _ext(s, stack, s.take(1))


@_op(b"\x83")
def _ext2(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    return _ext(s, stack, s.take(2))


@_op(b"\x84")
def _ext4(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    return _ext(s, stack, s.take(4))


def _ext(s: _Scanner, stack: Stack, raw: bytes) -> object:
    code = int.from_bytes(raw, "little", signed=len(raw) == 4)
    s.add(
        "pickle-extension",
        f"EXT{len(raw)} {code}: imports whatever the loading process's copyreg extension"
        f" registry holds under that code, which no file can show (byte {s.op_pos})",
    )
    stack.append(_UNKNOWN)
    return None


# -- persistent ids


@_op(b"P")
def _persid(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    line = s.line()
    _persistent(s, stack, _V(K_STR, line.decode("latin-1")[:READ_UP_TO]), "PERSID")
    return None


@_op(b"Q")
def _binpersid(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    (pid,) = _pop(s, stack, 1)
    _persistent(s, stack, pid, "BINPERSID")
    return None


def _persistent(s: _Scanner, stack: Stack, pid: _V, how: str) -> None:
    if s.layout not in _TORCH_FORMATS:
        s.add(
            "pickle-persistent-id",
            f"{how}: a persistent id, which only the loader of the file's format resolves;"
            f" allowed in torch files only (byte {s.op_pos})",
        )
        stack.append(_UNKNOWN)
        return
    wrong = _storage_id(s, pid)
    if wrong is not None:
        s.add(
            "pickle-persistent-id",
            f"{how} with a persistent id that is not a torch storage: {wrong} (byte {s.op_pos})",
        )
        stack.append(_UNKNOWN)
        return
    stack.append(_V(K_STORAGE))


def _storage_id(s: _Scanner, pid: _V) -> str | None:
    """None when ``pid`` is ('storage', class, key, location, count[, view]) as torch writes it."""
    if pid.kind != K_TUPLE or not isinstance(pid.data, list):
        return f"{_describe(pid)}, not a tuple"
    items: list[_V] = pid.data
    size = 6 if s.layout == "pytorch-legacy" else 5
    if len(items) != size:
        return f"a tuple of {len(items)} items, not {size}"
    kind, cls, key, location, count = items[:5]
    if not _is_str(kind, "storage"):
        return f"its first item is {_describe(kind)}, not 'storage'"
    if cls.kind != K_GLOBAL or not cls.data or not s.roles.get(cls.name or "", 0) & _STORAGE:
        return f"its storage class is {_describe(cls)}, not a torch storage class"
    if not _is_str(key) or not isinstance(key.data, str):
        return "its key is not a string"
    if not _is_str(location):
        return "its location is not a string"
    if count.kind != K_INT or not isinstance(count.data, int) or count.data < 0:
        return "its element count is not a count"
    if size == 6:
        view = items[5]
        ok = view.kind == K_NONE or (
            view.kind == K_TUPLE
            and isinstance(view.data, list)
            and len(view.data) == 3
            and _is_str(view.data[0])
            and all(v.kind == K_INT for v in view.data[1:])
        )
        if not ok:
            return "its view is neither None nor (key, offset, size)"
    name = cls.name or ""
    seen = s.storages.get(key.data)
    if seen is not None and seen != (name, count.data):
        return f"storage {_show(key.data)!r} named again with another class or count"
    s.storages[key.data] = (name, count.data)
    return None


# -- protocol, frames, stop


@_op(b"\x80")
def _proto(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    proto = s.take(1)[0]
    if proto > HIGHEST_PROTOCOL:
        raise s.fail("pickle-malformed", f"unsupported pickle protocol {proto}")
    s.proto = proto
    return None


@_op(b"\x95")
def _frame(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    size = int.from_bytes(s.take(8), "little")
    if s.pos + size > s.end:
        raise s.fail("pickle-truncated", f"a frame of {size} bytes runs past the end")
    s.frame_end = s.pos + size
    return _FRAME_MARK


@_op(b".")
def _stop(s: _Scanner, stack: Stack, m: Marks, memo: dict[int, _V]) -> object:
    (s.stop_value,) = _pop(s, stack, 1)
    return _STOP_MARK


# Opcodes without an argument, which neither read nor end a pickle.
_SIMPLE: dict[int, Handler] = {
    code: _HANDLERS[code]
    for code in b"N\x88\x89}])\x8f(012\x85\x86\x87tld\x91suae\x90\x93\x94Rob\x81\x92Q\x97\x98"
}

# ---------------------------------------------------------------- entry points


def _scan(
    read: Reader,
    start: int,
    end: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    member: str | None,
    layout: str | None = None,
) -> _Result:
    if layout is None and fmt in _TORCH_FORMATS:
        layout = fmt
    scanner = _Scanner(
        read, start, end, file=file, fmt=fmt, options=options, member=member, layout=layout
    )
    result = scanner.run()
    if not result.stopped and not any(f.code in _STRUCTURAL for f in result.findings):
        # cannot happen: a walk ends at STOP or with a structural finding
        result.findings.append(
            FormatFinding(file, fmt, "pickle-malformed", "the walk ended early", member=member)
        )
    return result


def _trailing(
    read: Reader,
    pos: int,
    end: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    member: str | None,
    layout: str | None = None,
) -> list[FormatFinding]:
    """Findings for data after the pickle that was expected alone."""
    extra: list[FormatFinding] = []
    pickles = 0
    start = pos
    while pos < end and pickles < MAX_EXTRA:
        got = _scan(
            read, pos, end, file=file, fmt=fmt, options=options, member=member, layout=layout
        )
        if not got.stopped:
            # not a pickle (or a broken one): what it calls before it breaks still counts
            extra.extend(f for f in got.findings if f.code not in _STRUCTURAL)
            break
        pickles += 1
        extra.extend(got.findings)
        pos = got.stop
    what = (
        f"{pickles} more pickle{'s' if pickles > 1 else ''}"
        + (" and other data" if pos < end else "")
        if pickles
        else "data that is not a pickle"
    )
    code = "pickle-multiple" if pickles else "pickle-trailing-data"
    first = FormatFinding(
        file,
        fmt,
        code,
        f"{end - start} bytes after the pickle's STOP at byte {start}: {what}"
        " (a loader that reads on would run them)",
        offset=start,
        member=member,
    )
    return [first, *extra]


def scan_pickle(
    read: Reader,
    start: int,
    end: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    member: str | None = None,
    single: bool = True,
) -> tuple[list[FormatFinding], int]:
    """Check the pickle stream at ``[start, end)``; return the findings and where it stopped.

    ``single``: exactly one pickle is expected there (trailing data after
    its STOP is a finding); otherwise the caller reads further pickles from
    the position returned (just after STOP, or where the walk broke off).
    """
    got = _scan(read, start, end, file=file, fmt=fmt, options=options, member=member)
    findings = list(got.findings)
    if single and got.stopped and got.stop < end:
        findings.extend(
            _trailing(read, got.stop, end, file=file, fmt=fmt, options=options, member=member)
        )
    return findings, got.stop


def scan_pickle_bytes(
    data: bytes,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    member: str | None = None,
) -> list[FormatFinding]:
    """One whole pickle held in memory (an archive member): its findings."""

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n] if offset >= 0 else b""

    return scan_pickle(
        read, 0, len(data), file=file, fmt=fmt, options=options, member=member, single=True
    )[0]


def check_pickle_file(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """A raw pickle file (``pickle``) or a legacy ``torch.save`` file (``pytorch-legacy``)."""
    fmt = detected.format
    head = src.read(0, 16)
    if fmt == "pickle" and _compressed(head, detected.detail):
        return [
            FormatFinding(
                name,
                fmt,
                "pickle-compressed",
                f"a compressed pickle ({_show(detected.detail or '')}): its opcodes are not"
                " scanned here, so it is not shown to be safe",
            )
        ]
    if fmt == "pytorch-legacy" and not head.startswith(b"\x80"):
        return [
            FormatFinding(
                name,
                fmt,
                "pickle-legacy-tar",
                "a tar archive as torch.save wrote before 0.4: its pickles are not scanned,"
                " so it is not shown to be safe",
            )
        ]
    first = _scan(src.read, 0, src.size, file=name, fmt=fmt, options=options, member=None)
    is_legacy = (
        first.stopped
        and first.value is not None
        and first.value.kind == K_INT
        and first.value.data == _TORCH_MAGIC
    )
    if fmt == "pytorch-legacy" or (is_legacy and first.stop < src.size):
        return _check_legacy(src, first, options, name, fmt)
    findings = list(first.findings)
    if first.stopped and first.stop < src.size:
        findings.extend(
            _trailing(
                src.read, first.stop, src.size, file=name, fmt=fmt, options=options, member=None
            )
        )
    return findings


def _compressed(head: bytes, detail: str | None) -> bool:
    return bool(detail and "-compressed" in detail) and not head.startswith(b"\x80")


def _check_legacy(
    src: Source, first: _Result, options: ScanOptions, name: str, fmt: str
) -> list[FormatFinding]:
    """The legacy layout: magic, protocol, sys_info, data, storage keys, then storages."""
    findings = list(first.findings)

    def structure(message: str, offset: int | None) -> list[FormatFinding]:
        findings.append(FormatFinding(name, fmt, "pickle-legacy-structure", message, offset=offset))
        return findings

    if not first.stopped:
        return findings
    if first.value is None or first.value.kind != K_INT or first.value.data != _TORCH_MAGIC:
        return structure("the first pickle is not torch's magic number", 0)
    pos = first.stop
    results = [first]
    labels = ("protocol version", "system information", "data", "storage keys")
    for label in labels:
        if pos >= src.size:
            return structure(f"the file ends before its {label} pickle", pos)
        got = _scan(
            src.read,
            pos,
            src.size,
            file=name,
            fmt=fmt,
            options=options,
            member=None,
            layout="pytorch-legacy",
        )
        findings.extend(got.findings)
        if not got.stopped:
            return findings
        results.append(got)
        pos = got.stop
    version = results[1].value
    if version is None or version.kind != K_INT or version.data != _TORCH_PROTOCOL:
        structure(f"the protocol version pickle is not {_TORCH_PROTOCOL}", results[1].stop)
    storages = results[3].storages
    keys = results[4].value
    if keys is None or keys.kind != K_LIST:
        return structure("the storage keys pickle is not a list", results[3].stop)
    # The keys' order is the list's (sorted keys as torch writes them); the list's
    # items are not kept, so the storages are stepped over in sorted order and
    # each header is checked against the count of some storage not yet seen.
    return _step_storages(src, name, fmt, storages, pos, findings, structure)


def _step_storages(
    src: Source,
    name: str,
    fmt: str,
    storages: dict[str, tuple[str, int]],
    pos: int,
    findings: list[FormatFinding],
    structure: Callable[[str, int | None], list[FormatFinding]],
) -> list[FormatFinding]:
    for key in sorted(storages):
        cls, count = storages[key]
        raw = src.read(pos, 8)
        if len(raw) < 8:
            return structure(f"the file ends before storage {_show(key)!r}", pos)
        stored = int.from_bytes(raw, "little")
        if stored != count:
            return structure(
                f"storage {_show(key)!r} holds {stored} elements where its persistent id"
                f" says {count}",
                pos,
            )
        pos += 8 + count * _TORCH_STORAGES.get(cls, 1)
        if pos > src.size:
            return structure(f"storage {_show(key)!r} runs past the end of the file", pos)
    if pos < src.size:
        findings.append(
            FormatFinding(
                name,
                fmt,
                "pickle-trailing-data",
                f"{src.size - pos} bytes after the last storage, at byte {pos}",
                offset=pos,
            )
        )
    return findings
