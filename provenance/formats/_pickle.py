"""Recognising a pickle stream by its opcodes, without unpickling anything.

A stream that starts with ``PROTO n`` (``\\x80`` then 0..5: what
``pickle.dumps`` writes for protocol 2 and later) is a pickle at once.
Anything else is walked opcode by opcode from byte 0, as the unpickler would
read it, with its stack depth and marks counted (no values built, no memo
kept, nothing imported or called):

* an opcode the unpickler does not know, an argument it would refuse (an
  ``INT`` line without digits, an unquoted ``STRING``, a ``GLOBAL`` whose
  names are not dotted identifiers, a negative length), a stack or mark
  underflow, or the end of the file inside an opcode ends the walk as
  *invalid*;
* a stream is a pickle when its walk reaches ``STOP`` exactly at the end of
  the file; or when, before it turned invalid or stopped, it executed an
  opcode that calls something (``REDUCE``, ``BUILD``, ``INST``, ``OBJ``,
  ``NEWOBJ``, ``NEWOBJ_EX``): the unpickler would already have run that
  call, whatever follows; or when the walk is still valid where its reading
  budget ends (a long stream of valid opcodes is no accident);
* after a ``STOP`` short of the end the walk goes on from the next byte
  with an empty stack (files of several pickles in a row, as ``torch.save``
  wrote them before 1.6).

Large arguments (``BINBYTES`` and the like) are skipped by their length, and
the walk reads a small window after them, so a payload cannot hide behind
one big string. The reading budget is the head the caller already holds
plus :data:`REFILLS` windows of :data:`WINDOW` bytes.

Known limits. False positives: a file whose first bytes happen to be a
complete little pickle (``N.`` alone is one: ``pickle.loads`` returns
None), or whose first line starts with ``V``, ``S`` or ``P`` and runs past
the budget. False negatives: a stream of data-only opcodes followed by
something invalid (it calls nothing, so loading it runs no code: it fails or
returns plain data); a ``GLOBAL`` naming a module that is not a dotted
identifier (no normal import finds one). A stream whose only effect before
it turns invalid is a ``GLOBAL``/``STACK_GLOBAL`` import is a pickle:
importing a module runs its code (except in a text file, see
:func:`pickle_kind`'s ``imports``). ``APPEND``, ``SETITEM`` and
the other mutations count as calls once anything was imported: they call
the object below them, which may then be a module's. Numeric lines are
read as the C unpickler reads them: up to the first NUL, after any C
whitespace.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["REFILLS", "WINDOW", "pickle_kind"]

HIGHEST_PROTOCOL = 5
WINDOW = 4096
REFILLS = 16
#: Arguments up to this many bytes are checked (UTF-8 of the unicode opcodes);
#: longer ones are skipped by their length.
_CHECK_UP_TO = 4096

# argument kinds
_NONE, _FIXED, _LINE, _LINE2, _LEN1, _LEN4, _SLEN4, _LEN8 = range(8)
# stack effects
_FX, _MARK, _POP, _POP_MARK, _TO_MARK, _STOP, _PROTO = range(7)

# line checks
_INT, _FLOAT, _QUOTED, _ASCII, _RAWUNI, _NAMES = range(6)

_Op = tuple[int, int, int, int, int, bool]  # arg, size/check, effect, pop, push, calls

_TABLE: dict[int, _Op] = {}


def _op(code: bytes, arg: int, extra: int, effect: int, pop: int = 0, push: int = 0) -> None:
    _TABLE[code[0]] = (arg, extra, effect, pop, push, False)


def _call(code: bytes, arg: int, extra: int, effect: int, pop: int = 0, push: int = 0) -> None:
    _TABLE[code[0]] = (arg, extra, effect, pop, push, True)


def _push(code: bytes, arg: int = _NONE, extra: int = 0) -> None:
    _op(code, arg, extra, _FX, 0, 1)


# Protocol 0 and 1.
_op(b"(", _NONE, 0, _MARK)
_op(b".", _NONE, 0, _STOP)
_op(b"0", _NONE, 0, _POP)
_op(b"1", _NONE, 0, _POP_MARK)
_op(b"2", _NONE, 0, _FX, 1, 2)  # DUP
_push(b"F", _LINE, _FLOAT)
_push(b"I", _LINE, _INT)
_push(b"J", _FIXED, 4)  # BININT
_push(b"K", _FIXED, 1)  # BININT1
_push(b"L", _LINE, _INT)  # LONG
_push(b"M", _FIXED, 2)  # BININT2
_push(b"N")
_push(b"P", _LINE, _ASCII)  # PERSID
_op(b"Q", _NONE, 0, _FX, 1, 1)  # BINPERSID
_call(b"R", _NONE, 0, _FX, 2, 1)  # REDUCE
_push(b"S", _LINE, _QUOTED)  # STRING
_push(b"T", _SLEN4, 0)  # BINSTRING
_push(b"U", _LEN1, 0)  # SHORT_BINSTRING
_push(b"V", _LINE, _RAWUNI)  # UNICODE
_push(b"X", _LEN4, 1)  # BINUNICODE (extra 1: UTF-8)
_op(b"a", _NONE, 0, _FX, 2, 1)  # APPEND
_call(b"b", _NONE, 0, _FX, 2, 1)  # BUILD
_push(b"c", _LINE2, _NAMES)  # GLOBAL
_op(b"d", _NONE, 0, _TO_MARK, 0, 1)  # DICT
_push(b"}")  # EMPTY_DICT
_op(b"e", _NONE, 0, _TO_MARK, 1, 0)  # APPENDS (pop: a list below the mark)
_push(b"g", _LINE, _INT)  # GET
_push(b"h", _FIXED, 1)  # BINGET
_call(b"i", _LINE2, _NAMES, _TO_MARK, 0, 1)  # INST
_push(b"j", _FIXED, 4)  # LONG_BINGET
_op(b"l", _NONE, 0, _TO_MARK, 0, 1)  # LIST
_push(b"]")  # EMPTY_LIST
_call(b"o", _NONE, 0, _TO_MARK, -1, 1)  # OBJ (pop -1: a class above the mark)
_op(b"p", _LINE, _INT, _FX, 1, 1)  # PUT
_op(b"q", _FIXED, 1, _FX, 1, 1)  # BINPUT
_op(b"r", _FIXED, 4, _FX, 1, 1)  # LONG_BINPUT
_op(b"s", _NONE, 0, _FX, 3, 1)  # SETITEM
_op(b"t", _NONE, 0, _TO_MARK, 0, 1)  # TUPLE
_push(b")")  # EMPTY_TUPLE
_op(b"u", _NONE, 0, _TO_MARK, 1, 0)  # SETITEMS
_push(b"G", _FIXED, 8)  # BINFLOAT
# Protocol 2.
_op(b"\x80", _FIXED, 1, _PROTO)
_call(b"\x81", _NONE, 0, _FX, 2, 1)  # NEWOBJ
_push(b"\x82", _FIXED, 1)  # EXT1
_push(b"\x83", _FIXED, 2)  # EXT2
_push(b"\x84", _FIXED, 4)  # EXT4
_op(b"\x85", _NONE, 0, _FX, 1, 1)  # TUPLE1
_op(b"\x86", _NONE, 0, _FX, 2, 1)  # TUPLE2
_op(b"\x87", _NONE, 0, _FX, 3, 1)  # TUPLE3
_push(b"\x88")  # NEWTRUE
_push(b"\x89")  # NEWFALSE
_push(b"\x8a", _LEN1, 0)  # LONG1
_push(b"\x8b", _SLEN4, 0)  # LONG4
# Protocol 3.
_push(b"B", _LEN4, 0)  # BINBYTES
_push(b"C", _LEN1, 0)  # SHORT_BINBYTES
# Protocol 4.
_push(b"\x8c", _LEN1, 1)  # SHORT_BINUNICODE
_push(b"\x8d", _LEN8, 1)  # BINUNICODE8
_push(b"\x8e", _LEN8, 0)  # BINBYTES8
_push(b"\x8f")  # EMPTY_SET
_op(b"\x90", _NONE, 0, _TO_MARK, 1, 0)  # ADDITEMS
_op(b"\x91", _NONE, 0, _TO_MARK, 0, 1)  # FROZENSET
_call(b"\x92", _NONE, 0, _FX, 3, 1)  # NEWOBJ_EX
_op(b"\x93", _NONE, 0, _FX, 2, 1)  # STACK_GLOBAL
_op(b"\x94", _NONE, 0, _FX, 1, 1)  # MEMOIZE
_op(b"\x95", _FIXED, 8, _FX, 0, 0)  # FRAME
# Protocol 5.
_push(b"\x96", _LEN8, 0)  # BYTEARRAY8
_push(b"\x97")  # NEXT_BUFFER
_op(b"\x98", _NONE, 0, _FX, 1, 1)  # READONLY_BUFFER

_IMPORTS = frozenset(b"c\x93")  # GLOBAL, STACK_GLOBAL
_MUTATIONS = frozenset(b"aesu\x90")  # APPEND, APPENDS, SETITEM, SETITEMS, ADDITEMS

# strtol and int() skip any C whitespace (\v and \f too) before the digits.
_INT_CHARS = frozenset(b"0123456789abcdefABCDEFxXoObB_+- \t\r\v\f")
_DIGITS = frozenset(b"0123456789")


def _line_ok(check: int, line: bytes, partial: bool) -> bool:
    """Whether the unpickler could accept this argument line (a superset of it).

    ``partial``: the line runs past the reading budget; only its start is known.
    """
    if check in (_INT, _FLOAT):
        # The C unpickler parses a number from a C string: it ends at the first
        # NUL, and whatever follows on the line is never looked at.
        line = line.split(b"\0", 1)[0]
    if check == _INT:  # INT, LONG, GET, PUT: what strtol or int() might take
        body = line[:-1] if line.endswith((b"L", b"l")) else line
        return bool(body) and _INT_CHARS.issuperset(body) and not _DIGITS.isdisjoint(body)
    if check == _FLOAT:
        try:
            float(line.strip(b" \t\r\v\f"))
        except ValueError:
            return False
        return True
    if check == _QUOTED:  # STRING: 'text' or "text", trailing blanks stripped
        body = line.rstrip(b" \t\r\x00")
        if partial:
            return body[:1] in (b"'", b'"')
        return len(body) >= 2 and body[0] == body[-1] and body[:1] in (b"'", b'"')
    if check == _ASCII:  # PERSID
        return line.isascii()
    if check == _RAWUNI:  # UNICODE
        if partial:
            return True
        try:
            line.decode("raw_unicode_escape")
        except UnicodeDecodeError:
            return False
        return True
    # _NAMES: a module or attribute name as an import would find it
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(part.isidentifier() for part in text.split("."))


def _name_start_ok(start: bytes) -> bool:
    """Whether a name line cut short by the budget could still be dotted identifiers."""
    try:
        # final=False: the cut may split the last character.
        text = codecs.getincrementaldecoder("utf-8")().decode(start, final=False)
    except UnicodeDecodeError:
        return False
    # The cut may also fall just after a dot ("os.").
    parts = text.split(".")
    return all(p.isidentifier() for p in parts[:-1]) and (not parts[-1] or parts[-1].isidentifier())


Reader = Callable[[int, int], bytes]


class _Stream:
    """Bytes of a stream by absolute position: a window, refilled a bounded number of times."""

    def __init__(self, head: bytes, size: int | None, read: Reader | None) -> None:
        self.buf = head
        self.base = 0
        #: Total length when known (a file, or a fully decompressed stream).
        self.size = size
        self.read = read
        self.refills = 0

    def _refill(self, pos: int) -> bool:
        if self.read is None or self.refills >= REFILLS or self.at_end(pos):
            return False
        self.refills += 1
        self.buf = self.read(pos, WINDOW)
        self.base = pos
        if len(self.buf) < WINDOW:  # the file ends here (it may be shorter than it said)
            self.size = pos + len(self.buf)
        return True

    def at_end(self, pos: int) -> bool:
        return self.size is not None and pos >= self.size

    def _reaches_end(self) -> bool:
        return self.size is not None and self.base + len(self.buf) >= self.size

    def take(self, pos: int, n: int) -> bytes | None:
        """``n`` bytes at ``pos``; fewer when the stream ends first; None when the budget does."""
        off = pos - self.base
        if off >= 0 and off + n <= len(self.buf):
            return self.buf[off : off + n]
        if self.size is not None and pos + n > self.size:
            return b""  # short: the stream ends inside
        if n <= WINDOW and self._refill(pos):
            return self.buf[:n]
        return None

    def line(self, pos: int) -> tuple[bytes, bool] | None:
        """The line at ``pos`` (newline included) and whether only its start is known.

        None: the stream ends without a newline (the unpickler fails there).
        """
        for _ in range(2):
            off = pos - self.base
            if 0 <= off <= len(self.buf):
                cut = self.buf.find(b"\n", off)
                if cut >= 0:
                    return self.buf[off : cut + 1], False
                if self._reaches_end():
                    return None
                if len(self.buf) - off >= WINDOW:  # a refill would hold no more of it
                    return self.buf[off:], True
            if not self._refill(pos):
                break
        off = pos - self.base
        return (self.buf[off:] if 0 <= off <= len(self.buf) else b""), True


_INVALID, _STOPPED, _BOUND = range(3)


class _Seen:
    """What a walk saw, besides where it ended."""

    def __init__(self) -> None:
        self.calls = False  # an opcode that calls something was executed
        self.proto = -1  # PROTO's argument
        self.modern = False  # an opcode of protocol 2 or later
        self.imported = False  # a GLOBAL or STACK_GLOBAL was executed


def _walk(stream: _Stream, pos: int, seen: _Seen) -> tuple[int, int]:
    """Walk one pickle from ``pos``: (outcome, position where the walk ended)."""
    depth = 0
    marks: list[int] = []
    while True:
        code = stream.take(pos, 1)
        if code is None:
            return _BOUND, pos
        if not code:
            return _INVALID, pos
        op = _TABLE.get(code[0])
        if op is None:
            return _INVALID, pos
        arg, extra, effect, pop, push, is_call = op
        seen.modern = seen.modern or code[0] >= 0x80 or code in (b"B", b"C")
        pos += 1
        # The argument.
        if arg == _FIXED:
            data = stream.take(pos, extra)
            if data is None:
                return _BOUND, pos
            if len(data) < extra:
                return _INVALID, pos
            if effect == _PROTO:
                if data[0] > HIGHEST_PROTOCOL:
                    return _INVALID, pos
                seen.proto = data[0]
            pos += extra
        elif arg in (_LINE, _LINE2):
            for _ in range(1 if arg == _LINE else 2):
                got = stream.line(pos)
                if got is None:
                    return _INVALID, pos
                line, partial = got
                body = line if partial else line[:-1]
                if partial:
                    # The budget ends inside the line. A name runs on as long as
                    # its start is dotted identifiers: protocol 4 resolves a
                    # dotted name of any length attribute by attribute
                    # (``eval.__self__.eval.__self__....exec``), so length is
                    # no sign of an accident.
                    if extra == _NAMES:
                        if not _name_start_ok(body):
                            return _INVALID, pos
                    elif not _line_ok(extra, body, partial):
                        return _INVALID, pos
                    return _BOUND, pos
                if not _line_ok(extra, body, partial):
                    return _INVALID, pos
                pos += len(line)
        elif arg != _NONE:
            width = {_LEN1: 1, _LEN4: 4, _SLEN4: 4, _LEN8: 8}[arg]
            data = stream.take(pos, width)
            if data is None:
                return _BOUND, pos
            if len(data) < width:
                return _INVALID, pos
            length = int.from_bytes(data, "little", signed=arg == _SLEN4)
            if length < 0:
                return _INVALID, pos
            pos += width
            if extra and length <= _CHECK_UP_TO:  # a unicode argument: UTF-8
                text = stream.take(pos, length)
                if text is not None and len(text) == length:
                    try:
                        text.decode("utf-8", "surrogatepass")
                    except UnicodeDecodeError:
                        return _INVALID, pos
            pos += length
            if stream.size is not None and pos > stream.size:
                return _INVALID, pos
        # The stack.
        if effect == _FX:
            if depth < pop:
                return _INVALID, pos
            depth += push - pop
        elif effect == _MARK:
            marks.append(depth)
            depth = 0
        elif effect == _POP:
            if depth:
                depth -= 1
            elif marks:
                depth = marks.pop()
            else:
                return _INVALID, pos
        elif effect == _POP_MARK:
            if not marks:
                return _INVALID, pos
            depth = marks.pop()
        elif effect == _TO_MARK:
            if not marks or depth < -pop:
                return _INVALID, pos
            depth = marks.pop()
            if depth < pop:  # APPENDS, SETITEMS, ADDITEMS: a container below the mark
                return _INVALID, pos
            depth += push
        elif effect == _STOP:
            if depth < 1:
                return _INVALID, pos
            return _STOPPED, pos
        if code[0] in _IMPORTS:
            seen.imported = True
        # APPEND, SETITEM and the like call the object below them (append,
        # __setitem__, extend, add): once anything was imported, that object
        # may be a module's (sys.path_hooks.append(os.system)), so they call.
        seen.calls = seen.calls or is_call or (seen.imported and code[0] in _MUTATIONS)


def pickle_kind(
    head: bytes,
    size: int | None,
    read: Reader | None = None,
    *,
    imports: bool = True,
    walk_proto: bool = False,
) -> str | None:
    """A description of the pickle stream ``head`` starts, or None when it starts none.

    ``head``: the first bytes of the stream; ``size``: the stream's full
    length when known (``len(head)`` when ``head`` is all of it); ``read``:
    reads ``n`` bytes at an offset, for the windows after large arguments
    (None: only ``head`` is examined).

    ``imports``: an import the unpickler would execute makes the stream a
    pickle, even when nothing is called and the stream turns invalid after
    it. Importing a module runs its code (``this``, a ``__main__`` module, a
    native extension shipped beside the file). The caller turns it off only
    for a file that is text, where a first line such as ``cat`` followed by
    one such as ``dog`` reads as an import of a module ``at``.

    ``walk_proto``: walk a stream that starts with ``PROTO`` instead of
    calling it a pickle at once, for a caller that knows the bytes as
    another format (a safetensors header length can read as ``PROTO``) and
    asks whether they are also a pickle that does something.
    """
    if not walk_proto and len(head) >= 2 and head[0] == 0x80 and head[1] <= HIGHEST_PROTOCOL:
        return f"pickle protocol {head[1]}"
    stream = _Stream(head, size, read)
    pos = 0
    while True:
        seen = _Seen()
        outcome, pos = _walk(stream, pos, seen)
        if seen.proto >= 0:
            shown = f"pickle protocol {seen.proto}"
        elif seen.modern:
            shown = "pickle without a PROTO opcode"
        else:
            shown = "pickle protocol 0 or 1"
        if seen.calls or outcome == _BOUND or (imports and seen.imported):
            return shown
        if outcome == _INVALID:
            return None
        if stream.at_end(pos):
            return shown
