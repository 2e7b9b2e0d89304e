"""The header of a NumPy ``.npy`` array, read far enough to see its dtype.

The format: ``\\x93NUMPY``, a major and a minor version byte, the header's
length (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3),
then the header: a Python dict literal such as
``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }``.

An array of Python objects (dtype ``O``, or a structured or sub-array dtype
with such a field) is stored as a pickle, and ``numpy.load`` unpickles it
when called with ``allow_pickle=True``: such a file is pickle-based.

The header is never handed to ``eval`` or ``ast`` whole: a small parser here
takes the literals NumPy writes (strings, integers, booleans, None, tuples,
lists, dicts; a string with escapes alone goes to ``ast.literal_eval``,
which decodes them as NumPy does), nested at most a few levels, from at most
:data:`MAX_HEADER` bytes (NumPy's own default limit; it reads a longer one
only with ``allow_pickle=True``). Whatever this parser cannot read is
reported as pickle-based: an object dtype is not ruled out.
"""

from __future__ import annotations

import ast
import re

__all__ = ["MAGIC", "MAX_HEADER", "has_object", "npy_header", "parse_literal"]

MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000
_MAX_DEPTH = 16

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<int>-?\d+)[lL]?
      | (?P<word>True|False|None)\b
      | (?P<punct>[{}()\[\],:])
    )""",
    re.VERBOSE | re.DOTALL,
)

_Value = object


class _Unreadable(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _next(self) -> tuple[str, str]:
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            raise _Unreadable
        self.pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        return kind, m.group(kind)

    def _peek_punct(self, char: str) -> bool:
        m = _TOKEN.match(self.text, self.pos)
        return m is not None and m.group("punct") == char

    def value(self, depth: int = 0) -> _Value:
        if depth > _MAX_DEPTH:
            raise _Unreadable
        kind, tok = self._next()
        if kind == "str":
            if "\\" not in tok:
                return tok[1:-1]
            # escapes mean what NumPy's literal_eval makes of them ('\x4f' is 'O'):
            # one string token, quoted and nothing else, is all literal_eval sees here
            try:
                text = ast.literal_eval(tok)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise _Unreadable from None
            if not isinstance(text, str):
                raise _Unreadable
            return text
        if kind == "int":
            return int(tok)
        if kind == "word":
            return {"True": True, "False": False, "None": None}[tok]
        if tok == "{":
            items: dict[object, object] = {}
            while not self._peek_punct("}"):
                key = self.value(depth + 1)
                if self._next() != ("punct", ":"):
                    raise _Unreadable
                try:
                    items[key] = self.value(depth + 1)
                except TypeError:  # an unhashable key
                    raise _Unreadable from None
                if not self._peek_punct("}") and self._next() != ("punct", ","):
                    raise _Unreadable
            self._next()
            return items
        if tok in "([":
            close = ")" if tok == "(" else "]"
            elems: list[object] = []
            while not self._peek_punct(close):
                elems.append(self.value(depth + 1))
                if not self._peek_punct(close) and self._next() != ("punct", ","):
                    raise _Unreadable
            self._next()
            return tuple(elems) if tok == "(" else elems
        raise _Unreadable

    def document(self) -> _Value:
        result = self.value()
        if self.text[self.pos :].strip():
            raise _Unreadable
        return result


_DICT_PLAIN = frozenset({"names", "titles", "offsets", "itemsize", "aligned"})
_WORD = re.compile(r"[A-Za-z_]+")


def _object_typestr(text: str) -> bool:
    """Whether a dtype string names Python objects anywhere (``|O``, ``O8``, ``object``, ``i4,O``).

    Any letter-word starting with ``O`` counts; no other NumPy type code or
    name starts with it.
    """
    return any(w[0] in "Oo" for w in _WORD.findall(text))


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return _object_typestr(descr)
    if isinstance(descr, tuple):  # (base, shape): a sub-array
        return not descr or _has_object(descr[0])
    if isinstance(descr, list):  # fields: (name, dtype) or (name, dtype, shape)
        for field in descr:
            if not isinstance(field, (tuple, list)) or len(field) < 2:
                return True  # not a field NumPy writes: not ruled out
            if _has_object(field[1]):
                return True
        return False
    if isinstance(descr, dict):
        # {'names': [...], 'formats': [...], 'offsets': [...]}, or {name: (dtype, offset)}
        for key, value in descr.items():
            if key == "formats" and isinstance(value, (list, tuple)):
                if any(_has_object(v) for v in value):
                    return True
            elif key not in _DICT_PLAIN and _has_object(value):
                return True
        return False
    return not (descr is None or isinstance(descr, (bool, int)))


def npy_header(data: bytes) -> tuple[str, bool]:
    """(detail, pickle_based) from the first bytes of a ``.npy`` array (starting with MAGIC)."""
    if len(data) < 10:
        return "numpy array with a truncated header: object dtype not ruled out", True
    major, minor = data[6], data[7]
    if major == 1:
        length, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        length, start = int.from_bytes(data[8:12], "little"), 12
    else:
        return f"numpy format version {major}.{minor}: header not examined", True
    version = f"numpy format {major}.{minor}"
    if length > MAX_HEADER:
        return f"{version} with a {length}-byte header: object dtype not ruled out", True
    raw = data[start : start + length]
    if len(raw) < length:
        return f"{version} with a truncated header: object dtype not ruled out", True
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        header = _Parser(text).document()
    except (_Unreadable, UnicodeDecodeError, ValueError):
        return f"{version} with a header not understood: object dtype not ruled out", True
    if not isinstance(header, dict) or "descr" not in header:
        return f"{version} with no dtype in its header: object dtype not ruled out", True
    descr = header["descr"]
    if _has_object(descr):
        return f"{version} holding Python objects (loading unpickles them)", True
    if isinstance(descr, str):
        return f"{version}, dtype {descr[:24]!r}", False
    return f"{version}, structured dtype", False


def parse_literal(text: str) -> object:
    """The value of a header's literal, read by the parser above (never ``eval``).

    Raises ValueError when ``text`` is not one of the literals NumPy writes.
    """
    try:
        return _Parser(text).document()
    except _Unreadable:
        raise ValueError("not a literal NumPy writes") from None


def has_object(descr: object) -> bool:
    """Whether a header's ``descr`` holds Python objects (or is not one NumPy writes)."""
    return _has_object(descr)
