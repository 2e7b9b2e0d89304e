"""Detecting a file's format by its content, within fixed bounds.

See :mod:`provenance.formats` for the rules and their limits. Every read
goes through one function (``os.pread`` on the open descriptor, so the
caller's file offset is untouched), and each reader asks for a bounded
number of bytes:

* the first :data:`HEAD` bytes, always (one read; most files need no other);
* for a zip: the last :data:`provenance.formats._zip.TAIL` bytes, at most
  :data:`~provenance.formats._zip.MAX_CD_BYTES` of central directory, and
  for an ``.npz`` the first bytes of at most :data:`NPZ_MEMBERS` members
  within :data:`NPZ_BYTES` bytes in all;
* for a stream that walks like a pickle: at most
  :data:`~provenance.formats._pickle.REFILLS` windows of
  :data:`~provenance.formats._pickle.WINDOW` bytes past large arguments.

Compressed streams are inflated to at most :data:`HEAD` bytes from the head
already read (never more input), with a memory limit for xz and lzma.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import stat
import zlib
from dataclasses import dataclass
from typing import Any

from provenance._internal.fsutil import open_regular
from provenance._internal.hfcache import own_blob
from provenance.errors import InputError
from provenance.formats import _npy, _pickle, _zip
from provenance.formats._names import FORMATS, PICKLE_BASED

__all__ = ["FORMATS", "PICKLE_BASED", "Detected", "detect", "detect_buffer", "detect_fd"]


#: Every format name :func:`detect` returns: the stable strings policies use.
@dataclass(frozen=True, slots=True)
class Detected:
    """What a file is, by its content."""

    #: One of :data:`FORMATS`.
    format: str
    #: Loading the file the way its format is loaded can run code through
    #: pickle (or detection could not rule that out).
    pickle_based: bool
    #: A short description of what was seen ("pickle protocol 4", "zip with
    #: archive/data.pkl"), with unprintable characters escaped; None when the
    #: format says it all.
    detail: str | None = None


HEAD = 64 << 10
MAX_SAFETENSORS_HEADER = 100 << 20
NPZ_MEMBERS = 256
NPZ_BYTES = 512 << 10
#: The most an xz or lzma decoder may allocate (a header can ask for 4 GiB; xz's
#: strongest preset needs under 100 MiB).
_LZMA_MEMLIMIT = 256 << 20

_TORCH_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_TORCH_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
#: Names that pickle.load, torch.load or joblib.load are pointed at.
_PICKLE_NAMES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".dat", ".npy")
_TORCH_PICKLES = frozenset({"data.pkl", "constants.pkl"})
_KERAS_FILES = ("config.json", "metadata.json", "model.weights.h5")
_HDF5 = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# ModelProto's fields (number: wire type): ir_version, producer_name,
# producer_version, domain, model_version, doc_string, graph, opset_import,
# metadata_props, training_info, functions, configuration.
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
# Control characters text may hold: tab, newline, vertical tab, form feed,
# carriage return, escape (coloured logs).
_CONTROL = bytes(set(range(32)) - {9, 10, 11, 12, 13, 27})
_NOT_CONTROL = bytes(set(range(256)) - set(_CONTROL))


def _show(text: str, limit: int = 80) -> str:
    """``text`` for a detail line: unprintable characters escaped, at most ``limit`` shown."""
    out = "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
        for c in text[:limit]
    )
    return out + ("..." if len(text) > limit else "")


class _File:
    """Bounded positional reads of one open descriptor."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        parts: list[bytes] = []
        try:
            while n > 0:
                chunk = os.pread(self.fd, n, offset)
                if not chunk:
                    break
                parts.append(chunk)
                offset += len(chunk)
                n -= len(chunk)
        except OSError as e:
            raise InputError(
                f"cannot read '{self.name}': {e.strerror or e}", code="unreadable"
            ) from None
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _Memory(_File):
    """The same bounded reads, of bytes already in memory (a verified loader's)."""

    def __init__(self, data: bytes | memoryview | Any, name: str) -> None:
        super().__init__(-1, name)
        self._data = memoryview(data).cast("B") if not isinstance(data, bytes) else data

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        return bytes(self._data[offset : offset + n])


def detect(path: str | os.PathLike[str]) -> Detected:
    """The format of the regular file at ``path``, by its content.

    The file is opened read-only, non-blocking, without following a
    symbolic link; a link, folder, FIFO, socket or device is refused (never
    read) with :class:`~provenance.errors.InputError` code ``not-regular``;
    a missing file is ``not-found``, one that cannot be read ``unreadable``.
    The one link read is a Hugging Face cache snapshot's own link to its blob
    (:func:`provenance._internal.hfcache.own_blob`), as a walk follows it.
    """
    p = own_blob(path)
    fd = open_regular(p, "file")
    try:
        try:
            size = os.fstat(fd).st_size
        except OSError as e:
            raise InputError(f"cannot read '{p}': {e.strerror}", code="unreadable") from None
        return _detect(_File(fd, p), size, os.path.basename(p))
    finally:
        os.close(fd)


def detect_fd(fd: int, size: int, name: str) -> Detected:
    """The format of the open regular file ``fd`` of ``size`` bytes, by its content.

    ``name`` is the file's name (only its last component counts), used to
    break ties the content leaves open (``.json``, ``.onnx``) and in error
    messages. Reads use ``os.pread``: the descriptor's offset is not moved,
    and the caller keeps it open. A descriptor that is not a regular file is
    refused (``not-regular``) before anything is read from it.
    """
    if size < 0:
        raise ValueError(f"size must not be negative, not {size}")
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise InputError(f"cannot read '{name}': {e.strerror}", code="unreadable") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"'{name}' is not a regular file; refusing to read it", code="not-regular")
    return _detect(_File(fd, name), size, name.rsplit("/", 1)[-1])


def detect_buffer(data: bytes | memoryview | Any, name: str) -> Detected:
    """The format of bytes in memory (any buffer), by the same rules as :func:`detect`.

    For a loader holding a file's verified bytes: the format is decided on
    the very bytes it will load, not on a file that could change since.
    """
    f = _Memory(data, name)
    size = len(f._data)
    return _detect(f, size, name.rsplit("/", 1)[-1])


def _detect(f: _File, size: int, name: str) -> Detected:
    head = f.read(0, min(size, HEAD))
    size = min(size, len(head)) if len(head) < HEAD else size  # a file shorter than it said
    if not head:
        return Detected("text", False, "empty file")
    # A safetensors header length below 2**32 has zero bytes 4..7, then '{'.
    # Its low byte may read as PROTO (0x80 0x00..0x05: a header of 128, 384,
    # ... bytes, multiples of 8 as safetensors pads them), so PROTO alone does
    # not make such a file a pickle. It still is one if the unpickler, walked
    # from byte 0, would import or call something: BINBYTES and the like
    # skip the zero bytes and the '{', and the header's own strings and the
    # tensor bytes can hold the rest (a file both loaders accept).
    if head[4:8] == b"\0\0\0\0" and head[8:9] == b"{":
        found = _safetensors(head, size)
        if found is not None:
            kind = _pickle.pickle_kind(head, size, f.read, walk_proto=True)
            if kind is None:
                return found
            return Detected("pickle", True, f"{kind}; it also reads as safetensors")
    if head[0] == 0x80 and len(head) >= 2 and head[1] <= _pickle.HIGHEST_PROTOCOL:
        body = head[2:]
        if body[:1] == b"\x95":  # a protocol 4 frame
            body = body[9:]
        if body.startswith(_TORCH_MAGIC):
            return Detected(
                "pytorch-legacy", True, f"legacy torch.save format, pickle protocol {head[1]}"
            )
        return Detected("pickle", True, f"pickle protocol {head[1]}")
    if head[:4] in _ZIP_MAGICS:
        # Not walked as a pickle: its 'P' is a persistent id, which no plain
        # unpickler resolves, and the loaders of zips read the central directory.
        return _zip_format(f, size)
    # Walked before the other signatures: a file can be both a pickle and
    # something else (a GGUF whose counts are opcodes, a tar whose first name
    # is a pickle, an HDF5 whose user block is one); pickle.load runs it.
    # In text, a first line like "cat" and a second like "dog" read as an
    # import of a module "at": that alone makes no text file a pickle, unless
    # its name is one a pickle loader opens.
    imports = name.lower().endswith(_PICKLE_NAMES) or not _is_text(head, size <= len(head))
    kind = _pickle.pickle_kind(head, size, f.read, imports=imports)
    if kind is not None:
        return Detected("pickle", True, kind)
    found = (
        _numpy(head)
        or _compressed(head)
        or _gguf(head)
        or _hdf5(head)
        or _tflite(head, size)
        or _safetensors(head, size)
        or _tar(head, f, size)
    )
    if found is not None:
        return found
    # onnx.load takes any name (model.pb, model.bin): without the name, the
    # stream must start as onnx writes one, ir_version first, and hold a graph
    onnx = _onnx(head, size, strict=not name.lower().endswith(".onnx"))
    if onnx is not None:
        return onnx
    # Last: a zip whose end record is at the end but whose start is not
    # (bytes prepended, as a self-extracting stub is). zipfile opens it, and
    # so does every loader built on it (Keras' .keras): it is a zip.
    zipped = embedded_zip(f, size, head)
    if zipped is not None:
        return zipped
    note = _safetensors_note(head, size)
    if note is not None and note.startswith("damaged"):
        # A header length no random or text start has, then "{": a damaged
        # or cut-off safetensors file, which its checker says what is wrong
        # with (a release gate must not call a broken weights file clean).
        return Detected("safetensors", False, note)
    return _text(head, size <= len(head), name) or Detected("unknown", False, note)


# ---------------------------------------------------------------- signatures


def _numpy(head: bytes) -> Detected | None:
    if not head.startswith(_npy.MAGIC):
        return None
    detail, pickle_based = _npy.npy_header(head)
    return Detected("numpy", pickle_based, detail)


def _gguf(head: bytes) -> Detected | None:
    if head[:4] != b"GGUF" or len(head) < 8:
        return None
    version = int.from_bytes(head[4:8], "little")
    if 1 <= version <= 255:
        return Detected("gguf", False, f"gguf version {version}")
    version = int.from_bytes(head[4:8], "big")
    if 1 <= version <= 255:
        return Detected("gguf", False, f"gguf version {version}, big-endian")
    return None


def _hdf5(head: bytes) -> Detected | None:
    for offset in _HDF5_OFFSETS:
        if head[offset : offset + 8] == _HDF5:
            return Detected("hdf5", False, f"superblock at byte {offset}" if offset else None)
    return None


def _tflite(head: bytes, size: int) -> Detected | None:
    if len(head) < 8 or head[4:8] != b"TFL3":
        return None
    root = int.from_bytes(head[:4], "little")
    if not 8 <= root < size:
        return None
    return Detected("tflite", False, None)


def _safetensors(head: bytes, size: int) -> Detected | None:
    if len(head) < 10 or head[8:9] != b"{":
        return None
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
        return None
    rest = head[9 : 9 + min(length - 1, 256)].lstrip(b" \t\r\n")
    if rest and rest[:1] not in (b'"', b"}"):
        return None
    return Detected("safetensors", False, f"{length}-byte header")


def _safetensors_note(head: bytes, size: int) -> str | None:
    """For a file that starts like safetensors but is not one: why, else None."""
    if len(head) >= 9 and head[8:9] == b"{":
        length = int.from_bytes(head[:8], "little")
        if not 2 <= length <= MAX_SAFETENSORS_HEADER:
            # as likely eight bytes and a "{" by chance: said, not judged
            return f"starts like safetensors, but its header length {length} is out of bounds"
        if length > size - 8:
            return f"damaged: its header length {length} runs past the end of the file"
        return f"damaged: its {length}-byte header is not a JSON object"
    return None


def _onnx(head: bytes, size: int, *, strict: bool = False) -> Detected | None:
    """A ModelProto by its first protobuf fields.

    ``strict`` (a file not named ``.onnx``): ir_version must come first and a
    graph must follow among the fields examined.
    """
    pos, fields, ir_version, graph = 0, 0, None, False
    while fields < 16 and pos < min(len(head), size):
        tag, pos = _varint(head, pos)
        if tag is None:
            return None
        number, wire = tag >> 3, tag & 7
        if _ONNX_FIELDS.get(number) != wire:
            return None
        value, pos = _varint(head, pos)
        if value is None:
            return None
        fields += 1
        graph = graph or number == 7
        if strict and fields == 1 and number != 1:
            return None
        if wire == 0:
            if number == 1:
                if not 1 <= value <= 100:
                    return None
                ir_version = value
            continue
        pos += value
        if pos > size:
            return None
        if pos > len(head):
            break  # the graph, most likely: plausible so far
    if not fields or (strict and not graph):
        return None
    return Detected("onnx", False, f"ir_version {ir_version}" if ir_version else None)


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            return None, pos
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    return None, pos


# ---------------------------------------------------------------- tar


def _tar_header(block: bytes) -> bool:
    if len(block) < 512:
        return False
    digits = block[148:156].replace(b"\0", b" ").strip()
    if not digits or not all(0x30 <= c <= 0x37 for c in digits):
        return False
    stored = int(digits, 8)
    unsigned = sum(block[:148]) + sum(block[156:512]) + 8 * 0x20
    high = sum(1 for c in block[:148] if c >= 0x80) + sum(1 for c in block[156:512] if c >= 0x80)
    return stored in (unsigned, unsigned - 256 * high)


def _tar_names(head: bytes) -> list[str] | None:
    """Member names in the headers ``head`` holds; None when it does not start a tar."""
    if not _tar_header(head[:512]):
        return None
    names: list[str] = []
    offset = 0
    while offset + 512 <= len(head) and len(names) < 64:
        block = head[offset : offset + 512]
        if not _tar_header(block):
            break
        name = block[:100].split(b"\0", 1)[0]
        if block[257:262] == b"ustar":
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        names.append(name.decode("utf-8", "replace"))
        field = block[124:136]
        if field[0] & 0x80:
            length = int.from_bytes(field[1:], "big")
        else:
            digits = field.replace(b"\0", b" ").strip()
            if digits and not all(0x30 <= c <= 0x37 for c in digits):
                break
            length = int(digits, 8) if digits else 0
        offset += 512 + (length + 511) // 512 * 512
    return names


#: Members listed in a tar before its check gives up (and calls it torch's).
MAX_TAR_MEMBERS = 100_000


_MAX_TAR_RECORD = 16 << 20


class _TarTooBig(Exception):
    pass


class _Reader(io.RawIOBase):
    """A file object over :class:`_File`'s bounded reads, for ``tarfile``."""

    def __init__(self, f: _File, size: int) -> None:
        self._f, self._size, self._pos = f, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        # tarfile reads a pax or GNU long-name record whole: one that claims
        # gigabytes is refused here rather than allocated.
        left = max(0, self._size - self._pos)
        n = left if n is None or n < 0 else min(n, left)
        if n > _MAX_TAR_RECORD:
            raise _TarTooBig
        data = self._f.read(self._pos, n)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self._f.read(self._pos, min(len(buffer), max(0, self._size - self._pos)))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _tar_members(f: _File, size: int) -> tuple[list[str], bool]:
    """Every member name as ``tarfile`` reads them (torch's legacy loader uses it).

    Long names (GNU ``L`` records, pax ``path``) are names too, and a
    member may sit anywhere in the file, so the head's headers are not
    enough. Returns (names, whether the listing stopped at the bound).
    """
    import tarfile  # here: it imports shutil, which no other format needs

    names: list[str] = []
    try:
        with tarfile.open(fileobj=_Reader(f, size), mode="r:") as tar:
            while len(names) < MAX_TAR_MEMBERS:
                member = tar.next()
                if member is None:
                    return names, False
                names.append(member.name)
    except _TarTooBig:
        return names, True  # more lies past a record too big to read: not shown safe
    except (tarfile.TarError, EOFError, ValueError, UnicodeError):
        return names, False  # torch's tarfile fails here too; what it listed is what it finds
    return names, True


def _tar(head: bytes, f: _File | None = None, size: int = 0) -> Detected | None:
    names = _tar_names(head)
    if names is None:
        return None
    if f is not None:
        names, cut = _tar_members(f, size)
        if cut:
            return Detected(
                "pytorch-legacy",
                True,
                f"tar archive too large to list (over {MAX_TAR_MEMBERS} members, or a record "
                "over 16 MiB): not all checked for the ones early torch.save wrote",
            )
    torch = sorted({n.removeprefix("./") for n in names} & _TORCH_TAR_MEMBERS)
    if torch:
        return Detected(
            "pytorch-legacy", True, f"tar archive as early torch.save wrote ({', '.join(torch)})"
        )
    return Detected("tar", False, None)


# ---------------------------------------------------------------- compressed


_TOO_BIG = "too-big"


def _inflate(head: bytes, kind: str) -> tuple[bytes, bool] | str | None:
    """The start of a compressed stream (at most HEAD bytes) and whether that is all of it.

    None when it does not decompress; :data:`_TOO_BIG` when its decoder asks
    for more memory than :data:`_LZMA_MEMLIMIT` (an xz or lzma header can).
    """
    try:
        # gzip, bzip2 and xz readers (gzip.open, bz2.open, lzma.open, joblib) go
        # on into the next member after one ends: the stream is all of them.
        out = b""
        data = head
        while True:
            if kind in ("gzip", "zlib"):
                d: Any = zlib.decompressobj(31 if kind == "gzip" else 15)
            elif kind == "bzip2":
                import bz2

                d = bz2.BZ2Decompressor()
            else:
                import lzma

                fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
                d = lzma.LZMADecompressor(format=fmt, memlimit=_LZMA_MEMLIMIT)
            try:
                out += d.decompress(data, HEAD - len(out))
            except MemoryError:
                raise
            except Exception as e:  # zlib.error, OSError, EOFError, lzma.LZMAError
                if kind in ("xz", "lzma") and "memory" in str(e).lower():
                    return _TOO_BIG
                if not out:
                    return None
                return out, False  # a later member is broken: the start is known
            data = d.unused_data if d.eof else b""
            if not data or kind == "zlib" or len(out) >= HEAD:
                return out, bool(d.eof and not data)
    except MemoryError:
        return _TOO_BIG
    except (zlib.error, OSError, EOFError, ValueError, ImportError, LookupError):
        return None


def _compression(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        # a block, or the end of an empty stream (bz2.open reads on into the next)
        return "bzip2"
    if (
        len(head) >= 2
        and head[0] & 0x0F == 8
        and head[0] >> 4 <= 7
        and not head[1] & 0x20
        and (head[0] << 8 | head[1]) % 31 == 0
    ):
        return "zlib"  # as joblib compresses by default
    if head[:1] == b"\x5d" and len(head) >= 14 and head[13] == 0:
        # .lzma (as joblib writes): the default properties byte, any dictionary size
        # (liblzma takes any), and the range coder's first byte, always 0
        return "lzma"
    return None


def _compressed(head: bytes) -> Detected | None:
    kind = _compression(head)
    if kind is None:
        return None
    got = _inflate(head, kind)
    if got == _TOO_BIG:
        return Detected(
            "unknown",
            True,
            f"{kind} stream whose decoder asks for more than {_LZMA_MEMLIMIT >> 20} MiB:"
            " not examined, a compressed pickle not ruled out",
        )
    if not isinstance(got, tuple):
        if kind == "gzip":
            return Detected("gzip", False, "does not decompress")
        if kind in ("xz", "bzip2"):
            return Detected("unknown", False, f"{kind} stream that does not decompress")
        return None  # the weak signatures: probably not compressed at all
    data, whole = got
    if not data and whole:
        return Detected(kind if kind == "gzip" else "unknown", False, f"{kind} of nothing")
    if not data and kind in ("zlib", "lzma") and len(head) < HEAD:
        return None  # the weak signatures: a short file that inflates to nothing
    inner = _pickle.pickle_kind(data, len(data) if whole else None) if data else None
    if inner is not None:
        return Detected("pickle", True, f"{kind}-compressed {inner}")
    if not data:
        # nothing inflated from the head (a long gzip header, an empty first
        # member): a compressed pickle is not ruled out
        return Detected(
            "gzip" if kind == "gzip" else "unknown",
            True,
            f"{kind} stream whose content starts past the bytes examined:"
            " a compressed pickle not ruled out",
        )
    if _tar_names(data) is not None:
        what = "a tar archive"
    elif _is_text(data, whole):
        what = "text"
    else:
        what = "data"
    if kind == "gzip":
        return Detected("gzip", False, f"gzip of {what}")
    return Detected("unknown", False, f"{kind}-compressed {what}")


# ---------------------------------------------------------------- text


def _is_text(data: bytes, whole: bool) -> bool:
    """UTF-8 without NUL or other control characters (a split last character allowed)."""
    if data.translate(None, _NOT_CONTROL):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def _text(head: bytes, whole: bool, name: str) -> Detected | None:
    if not _is_text(head, whole):
        return None
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    named = name.lower().endswith(".json")
    if body[:1] not in (b"{", b"["):
        return Detected("text", False, None)
    if not whole:
        if named:
            return Detected("json", False, f"only the first {HEAD >> 10} KiB examined")
        return Detected("text", False, "starts like JSON; too long to parse here")
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return Detected("text", False, "starts like JSON but is not one JSON value")
    return Detected("json", False, None)


# ---------------------------------------------------------------- zip


def _is_torch_pickle(name: str) -> bool:
    parts = name.split("/")
    # torch finds members case-insensitively (miniz's default): Data.pkl is its data.pkl.
    in_place = len(parts) == 1 or (len(parts) == 2 and bool(parts[0]))
    return parts[-1].lower() in _TORCH_PICKLES and in_place


#: Formats :func:`_detect` returns only after :func:`embedded_zip` found no archive.
CHECKED_FOR_ZIP = frozenset({"text", "json", "unknown"})


def embedded_zip(f: _File, size: int, head: bytes = b"") -> Detected | None:
    """The zip archive that ``zipfile`` would find in a file that does not start as one.

    ``zipfile`` looks only at the end: the end record, the directory just
    before it, each member where the directory says (shifted by any bytes
    before the archive). A file with a complete directory of at least one
    member whose first local header is in place opens as a zip, whatever it
    starts with. None when there is no such archive. ``head``, the file's
    first bytes if already read, spares a read when it is the whole file.
    """
    if size < 22:
        return None
    tail = head if len(head) >= size else f.read(max(0, size - _zip.TAIL), _zip.TAIL)
    if b"PK\x05\x06" not in tail:
        return None  # the common case, decided without parsing anything
    listing = _zip.list_zip(f.read, size)
    if not listing.complete or not listing.entries:
        return None
    first = min(e.offset for e in listing.entries)
    if first < 0 or f.read(first, 4) != b"PK\x03\x04":
        return None
    found = _zip_format(f, size, listing)
    return Detected(
        found.format,
        found.pickle_based,
        f"{found.detail}, after {first} bytes that are not part of the archive",
    )


def _zip_format(f: _File, size: int, listing: _zip.Listing | None = None) -> Detected:
    listing = listing or _zip.list_zip(f.read, size)
    files = [e for e in listing.entries if not e.name.endswith("/")]
    for e in files:
        if _is_torch_pickle(e.name):
            return Detected("pytorch-zip", True, f"zip with {_show(e.name)}")
    if not listing.complete:
        return Detected(
            "zip",
            True,
            f"{listing.problem}: a pickle member (such as data.pkl) is not ruled out",
        )
    note = f" ({listing.problem})" if listing.problem else ""
    names = {e.name for e in files}
    if "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names):
        held = ", ".join(n for n in _KERAS_FILES if n in names)
        return Detected(
            "keras",
            False,
            f"keras archive ({held}); Lambda layers checked by scan, not by detection{note}",
        )
    if files and all(e.name.endswith(".npy") for e in files):
        return _npz(f, files, note)
    detail = f"zip archive of {len(files)} files"
    pickles = [e.name for e in files if e.name.endswith((".pkl", ".pickle"))]
    if pickles:
        detail += f", with pickle members such as {_show(pickles[0])}"
    return Detected("zip", False, detail + note)


def _npy_length(data: bytes) -> int | None:
    """How many bytes a ``.npy`` needs for its header, from its first bytes."""
    if not data.startswith(_npy.MAGIC) or len(data) < 12:
        return None
    if data[6] in (2, 3):
        return 12 + int.from_bytes(data[8:12], "little")
    return 10 + int.from_bytes(data[8:10], "little")


def _npz(f: _File, files: list[_zip.Entry], note: str) -> Detected:
    """An ``.npz``: the header of each member (within the budgets), for object dtypes."""
    budget, tried, unexamined = NPZ_BYTES, 0, 0
    objects: list[str] = []
    for e in files:
        if tried >= NPZ_MEMBERS or budget <= 0:
            unexamined += 1
            continue
        tried += 1
        got = _zip.member_head(f.read, e, 1024)
        budget -= 30 if got is None else got[1]
        need = None if got is None else _npy_length(got[0])
        if got is not None and need is not None and len(got[0]) < need <= 12 + _npy.MAX_HEADER:
            got = _zip.member_head(f.read, e, need)
            budget -= 30 if got is None else got[1]
        if got is None:
            unexamined += 1
            continue
        # A member that is not an array loads as plain bytes.
        if got[0].startswith(_npy.MAGIC) and _npy.npy_header(got[0])[1]:
            objects.append(e.name)
    detail = f"npz of {len(files)} array{'' if len(files) == 1 else 's'}"
    if objects:
        detail += (
            f"; {len(objects)} may hold Python objects (loading unpickles them),"
            f" such as {_show(objects[0])}"
        )
    if unexamined:
        detail += f"; {unexamined} not examined, object dtype not ruled out"
    return Detected("npz", bool(objects) or unexamined > 0, detail + note)
