"""Tensors over a verified safetensors buffer, without copying it.

Verified loading reads a model file once into memory the library owns,
hashes that memory and compares it with the signed manifest; this module
then builds the tensors over that very memory, so what a caller computes
with is byte for byte what was verified: no second read of the file that
could see different bytes, and no copy that doubles the memory a model takes.

The header is parsed by the scanner's strict checker
(:func:`provenance.formats._safetensors.read_header`), never by
``safetensors`` itself, and any error or warning it finds refuses the whole
file: among them, ranges that overlap, leave a gap or run past the end
(the ranges must tile the data exactly), an unknown dtype, a shape whose
size is not its byte range, duplicate keys and a header that is not UTF-8.
Beyond the header, every BOOL tensor's bytes must be 0 or 1: NumPy and
PyTorch take any other byte as undefined behaviour.

Tensors are views of ``buf``: writable when ``buf`` is, and they keep it
alive. Two exceptions, both documented where they happen: a tensor with no
elements is a fresh empty one (``torch.frombuffer`` refuses a count of 0),
and a PyTorch tensor whose data is not aligned to its element size is
copied into aligned memory (PyTorch's kernels may assume alignment; NumPy
handles unaligned arrays itself, so its arrays are never copied).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from provenance.errors import InputError, UsageError
from provenance.formats._detect import _show
from provenance.formats._safetensors import read_header
from provenance.formats._scan import FormatFinding, Source

__all__ = ["Entry", "ParsedHeader", "header", "tensors"]

Framework = Literal["numpy", "torch"]

#: safetensors dtype -> NumPy dtype, little-endian whatever the host (the
#: format is little-endian). The same types as ``safetensors.numpy``; BF16,
#: F8_*, F4 and F6_* have no NumPy dtype.
NUMPY_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
    "C64": "<c8",
}

#: safetensors dtype -> the name of the ``torch`` dtype, the mapping of
#: ``safetensors.torch`` (plus F8_E8M0, which its Rust side also loads). A
#: name this torch lacks (an old version) is refused like an unknown one. F4
#: is two values a byte (``float4_e2m1fn_x2``): its last dimension halves.
TORCH_DTYPES: dict[str, str] = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu",
    "F4": "float4_e2m1fn_x2",
}

#: Findings named in an error's reason; all of them are in its details.
_LISTED = 5
#: Bytes of a BOOL tensor checked at a time (each chunk is copied once).
_CHUNK = 1 << 16


class Entry(NamedTuple):
    """One tensor as its header gives it; ``begin``/``end`` are relative to the data."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class ParsedHeader:
    """A safetensors header the strict checker found nothing wrong with."""

    metadata: dict[str, str] | None
    #: Every tensor, in the header's order.
    entries: dict[str, Entry]
    #: Where the data starts in the buffer (8 + the header's length): a
    #: tensor's bytes are ``buf[data_start + begin : data_start + end]``.
    data_start: int


def header(buf: memoryview, name: str) -> ParsedHeader:
    """The header of the safetensors file held in ``buf``; ``name`` is for messages.

    Raises :class:`InputError` (code ``format-denied``) listing what is wrong
    when the strict checker finds any error or warning.
    """
    view = _bytes_view(buf)
    parsed, findings = read_header(Source.of_bytes(view, name), name, entries=True)
    bad = [f for f in findings if f.severity in ("error", "warning")]
    if bad:
        from provenance.formats import detect_buffer

        found = detect_buffer(view, name)
        if found.format not in ("safetensors", "unknown"):
            # Not a broken safetensors file but another kind: say that, not its "header".
            raise InputError(
                f"'{_show(name, 200)}' is not a safetensors file (by its content it is "
                f"{found.format}{f': {found.detail}' if found.detail else ''})",
                [f"{f.code}: {f.message}" for f in bad],
                code="format-denied",
            )
        raise _denied(name, bad)
    if parsed is None or not parsed.parsed or parsed.entries.keys() != parsed.tensors.keys():
        # never so without a finding; refused all the same (fail closed)
        raise InputError(
            f"safetensors file '{_show(name, 200)}' cannot be loaded: its header did not parse",
            code="format-denied",
        )
    entries = {k: Entry(*e) for k, e in parsed.entries.items()}
    return ParsedHeader(parsed.metadata, entries, 8 + parsed.length)


def tensors(buf: memoryview, name: str, framework: Framework = "numpy") -> dict[str, Any]:
    """Every tensor of the safetensors file held in ``buf``, as views of ``buf``.

    ``buf`` must be C-contiguous (a writable one gives writable tensors; a
    read-only one only NumPy arrays). Nothing is built before the whole
    file is accepted: the header, every dtype in ``framework`` and every
    BOOL tensor's bytes.
    """
    if framework not in ("numpy", "torch"):
        raise UsageError(f"unknown framework {framework!r}: 'numpy' or 'torch'")
    view = _bytes_view(buf)
    parsed = header(view, name)
    if framework == "numpy":
        _numpy()
        _supported(parsed, name, framework, lambda dtype: dtype in NUMPY_DTYPES)
        _check_bools(view, parsed, name)
        return _np_tensors(view, parsed)
    torch = _torch(view)
    _supported(parsed, name, framework, lambda dtype: _torch_dtype(torch, dtype) is not None)
    _check_f4(parsed, name)
    _check_bools(view, parsed, name)
    return {k: _torch_tensor(torch, view, parsed.data_start, e) for k, e in parsed.entries.items()}


def _bytes_view(buf: memoryview) -> memoryview:
    """``buf`` as one dimension of bytes, which frombuffer's offsets count in."""
    view = memoryview(buf)
    if not view.c_contiguous:
        raise UsageError("the buffer of a safetensors file must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _denied(name: str, bad: list[FormatFinding]) -> InputError:
    listed = "; ".join(f.message for f in bad[:_LISTED])
    more = f"; and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
    return InputError(
        f"safetensors file '{_show(name, 200)}' cannot be loaded: {listed}{more}",
        [f"{f.code}: {f.message}" for f in bad],
        code="format-denied",
    )


def _supported(
    parsed: ParsedHeader, name: str, framework: Framework, has: Callable[[str], bool]
) -> None:
    """Every dtype of the file has a ``framework`` type, or nothing is built."""
    missing = list(dict.fromkeys(e.dtype for e in parsed.entries.values() if not has(e.dtype)))
    if not missing:
        return
    which = ", ".join(missing)
    instead = (
        '; use framework="torch"'
        if framework == "numpy" and all(d in TORCH_DTYPES for d in missing)
        else ""
    )
    raise InputError(
        f"safetensors file '{_show(name, 200)}' holds tensors of dtype {which},"
        f" which {framework} has no type for{instead}",
        code="dtype-unsupported",
    )


def _check_bools(view: memoryview, parsed: ParsedHeader, name: str) -> None:
    """Every byte of a BOOL tensor is 0 or 1 (any other is undefined behaviour downstream)."""
    for key, e in parsed.entries.items():
        if e.dtype != "BOOL":
            continue
        start, stop = parsed.data_start + e.begin, parsed.data_start + e.end
        for at in range(start, stop, _CHUNK):
            if view[at : min(at + _CHUNK, stop)].tobytes().translate(None, b"\x00\x01"):
                raise InputError(
                    f"safetensors file '{_show(name, 200)}': BOOL tensor '{_show(key)}'"
                    " holds a byte other than 0 or 1",
                    code="format-denied",
                )


def _numpy() -> None:
    """numpy is importable (it is no dependency of provenance's own)."""
    try:
        importlib.import_module("numpy")
    except ImportError:
        raise UsageError(
            "numpy is not installed (pip install 'ml-provenance[numpy]')", code="framework-missing"
        ) from None


def _np_tensors(view: memoryview, parsed: ParsedHeader) -> dict[str, Any]:
    """Views of each tensor's bytes; unaligned ones too (NumPy reads those correctly)."""
    import numpy as np

    out: dict[str, Any] = {}
    for key, e in parsed.entries.items():
        dtype = np.dtype(NUMPY_DTYPES[e.dtype])
        count = math.prod(e.shape)
        if count == 0:  # nothing to view: an empty array of the right shape
            out[key] = np.empty(e.shape, dtype=dtype)
        else:
            flat = np.frombuffer(view, dtype=dtype, count=count, offset=parsed.data_start + e.begin)
            out[key] = flat.reshape(e.shape)
    return out


def _torch(view: memoryview) -> Any:
    """The ``torch`` module, once it is sure to wrap ``view`` without copying or harm."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise UsageError(
            "torch is not installed (install the torch build for your machine)",
            code="framework-missing",
        ) from None
    if sys.byteorder != "little":  # torch.frombuffer reads in the host's order
        raise UsageError(
            "safetensors tensors are little-endian: torch cannot view them on this host",
            code="framework-unsupported",
        )
    if view.readonly:  # torch tensors are always writable: a write would fault
        raise UsageError(
            "torch tensors need a writable buffer (read-only memory cannot be wrapped)",
            code="buffer-read-only",
        )
    return torch


def _torch_dtype(torch: Any, dtype: str) -> Any:
    attr = TORCH_DTYPES.get(dtype)
    return getattr(torch, attr, None) if attr is not None else None


def _torch_shape(e: Entry) -> tuple[int, ...]:
    """The torch shape: F4 packs two values a byte, so its last dimension halves."""
    if e.dtype != "F4":
        return e.shape
    return (*e.shape[:-1], e.shape[-1] // 2)


def _check_f4(parsed: ParsedHeader, name: str) -> None:
    """An F4 tensor's last dimension is even: torch has no type for a lone half byte."""
    for key, e in parsed.entries.items():
        if e.dtype == "F4" and (not e.shape or e.shape[-1] % 2):
            raise InputError(
                f"safetensors file '{_show(name, 200)}': F4 tensor '{_show(key)}' has shape"
                f" {list(e.shape)}; torch packs F4 two values a byte and needs the last"
                " dimension even",
                code="dtype-unsupported",
            )


def _torch_tensor(torch: Any, view: memoryview, data_start: int, e: Entry) -> Any:
    """A view of the tensor's bytes, or an aligned copy when they are not aligned."""
    dtype = _torch_dtype(torch, e.dtype)
    shape = _torch_shape(e)
    count = math.prod(shape)
    if count == 0:  # torch.frombuffer refuses a count of 0
        return torch.empty(shape, dtype=dtype)
    offset = data_start + e.begin
    flat = torch.frombuffer(view, dtype=dtype, count=count, offset=offset)
    if flat.data_ptr() % flat.element_size():
        # Its kernels may assume aligned data: this one tensor is copied into
        # memory torch allocates (aligned), byte for byte.
        flat = torch.empty(count, dtype=dtype)
        flat.view(torch.uint8).copy_(
            torch.frombuffer(view, dtype=torch.uint8, count=e.end - e.begin, offset=offset)
        )
    return flat.reshape(shape)
