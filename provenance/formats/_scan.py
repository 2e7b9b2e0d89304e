"""``scan``: every file of a model checked by the rules of its format, found by content.

An allowlist gate, not a denylist: each format's checker says what a benign
file of that format looks like and reports everything else. Every check is
bounded (headers, directories, opcode streams; never tensor data) and
nothing is ever unpickled, imported or executed.

The checkers live one module per format family and are registered in
:data:`_CHECKERS` by name, so each loads only when a file of its format
turns up. A checker gets a :class:`Source` (bounded reads of the open
descriptor that was detected) and returns :class:`FormatFinding` objects;
folder-level checks (sharded indexes, ONNX external data, code files) get
the whole listing once.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance._internal.fsutil import open_regular
from provenance._internal.hfcache import own_blob
from provenance.errors import InputError, UsageError
from provenance.formats._detect import (
    CHECKED_FOR_ZIP,
    Detected,
    _File,
    _Memory,
    detect_buffer,
    detect_fd,
    embedded_zip,
)

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class FormatFinding:
    """One thing a format check found, in a file (and a member of it, inside an archive)."""

    file: str  # the path relative to the scanned folder ("." for a single file)
    format: str
    code: str  # kebab-case, stable: "pickle-global-denied", "safetensors-overlap", ...
    message: str
    offset: int | None = None  # byte offset in the file (or in the member) where it applies
    member: str | None = None  # the archive member it concerns
    severity: Severity = "error"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "format": self.format,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }
        if self.offset is not None:
            out["offset"] = self.offset
        if self.member is not None:
            out["member"] = self.member
        return out


#: An allowed global, exactly as a pickle names it (the policy schema's pattern).
_GLOBAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class ScanOptions:
    """What the caller adds to the built-in rules."""

    #: Extra pickle globals allowed, each exactly "module.qualname" (no wildcards).
    allow_globals: frozenset[str] = frozenset()
    #: Names a signature covers (relative paths), when the model is signed: ONNX
    #: external data must be among them.
    signed_files: frozenset[str] | None = None
    #: Files whose bytes the caller already holds (a verified loader's, by
    #: name): they are checked in memory, never read again from disk.
    contents: Mapping[str, Any] | None = None


class Source:
    """Bounded positional reads of one regular file (the one that was detected).

    Of an open descriptor, or of bytes in memory (:meth:`of_bytes`): a
    checker cannot tell which.
    """

    def __init__(self, fd: int, size: int, name: str) -> None:
        self.fd = fd
        self.size = size
        self.name = name
        self._file: _File = _File(fd, name)

    @classmethod
    def of_bytes(cls, data: Any, name: str) -> Source:
        src = cls(-1, 0, name)
        src._file = mem = _Memory(data, name)
        src.size = len(mem._data)
        return src

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the file)."""
        if offset >= self.size:
            return b""
        return self._file.read(offset, min(n, self.size - offset))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_source(root: Path, name: str, options: ScanOptions, what: str) -> Source:
    """The file ``name`` under ``root`` for a folder check: from memory if held, else opened.

    Opened as :func:`~provenance._internal.fsutil.open_regular` does (no
    link followed but a Hugging Face cache snapshot's own, no FIFO read);
    raises its ``InputError``. Close it after.
    """
    if options.contents is not None and name in options.contents:
        return Source.of_bytes(options.contents[name], name)
    fd = open_regular(own_blob(root / name), what)
    try:
        return Source(fd, os.fstat(fd).st_size, name)
    except OSError as e:
        os.close(fd)
        raise InputError(f"cannot read '{name}': {e.strerror}", code="unreadable") from None


#: A file checker: the open file, what it was detected as, the options, the
#: file's name relative to the scanned folder. Returns findings.
FileChecker = Callable[[Source, Detected, ScanOptions, str], list[FormatFinding]]
#: A folder checker: the scanned folder, every file with its detected format.
FolderChecker = Callable[[Path, Sequence["ScannedFile"], ScanOptions], list[FormatFinding]]

# format -> "module:function", imported on first use.
_CHECKERS: dict[str, str] = {
    "pickle": "_pickle_scan:check_pickle_file",
    "pytorch-legacy": "_pickle_scan:check_pickle_file",
    "pytorch-zip": "_archive:check_zip",
    "zip": "_archive:check_zip",
    "npz": "_archive:check_zip",
    "keras": "_archive:check_zip",
    "numpy": "_archive:check_npy",
    "safetensors": "_safetensors:check_safetensors",
    "gguf": "_gguf:check_gguf",
    "onnx": "_onnx:check_onnx",
    "hdf5": "_keras:check_hdf5",
    "json": "_code:check_json",
}
_FOLDER_CHECKERS: tuple[str, ...] = (
    "_index:check_indexes",
    "_onnx:check_external_data",
    "_code:check_code_files",
)


@dataclass(frozen=True)
class ScannedFile:
    name: str
    format: str
    detail: str | None
    pickle_based: bool
    size: int
    findings: tuple[FormatFinding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "detail": self.detail,
            "pickle_based": self.pickle_based,
            "size": self.size,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class ScanReport:
    """Every file scanned, and every finding (per file and about the folder)."""

    path: Path
    files: tuple[ScannedFile, ...] = ()
    folder_findings: tuple[FormatFinding, ...] = field(default=())

    @property
    def findings(self) -> tuple[FormatFinding, ...]:
        return tuple(f for s in self.files for f in s.findings) + self.folder_findings

    @property
    def ok(self) -> bool:
        """No finding of error or warning severity (notes are reported, not failed)."""
        return not any(f.severity != "info" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": str(self.path),
            "files": [f.to_json() for f in self.files],
            "findings": [f.to_json() for f in self.findings],
        }


def _resolve(spec: str) -> Callable[..., list[FormatFinding]]:
    module, _, name = spec.partition(":")
    fn: Callable[..., list[FormatFinding]] = getattr(
        importlib.import_module(f"provenance.formats.{module}"), name
    )
    return fn


def scan(
    path: str | os.PathLike[str],
    *,
    allow_globals: Iterable[str] = (),
    signed_files: Iterable[str] | None = None,
    follow_symlinks: bool = False,
    contents: Mapping[str, Any] | None = None,
) -> ScanReport:
    """Check every file under ``path`` (or the file itself) by the rules of its format.

    FIFOs, sockets and devices are reported, never opened; ``.git`` is left
    out. Links are reported too, unless ``follow_symlinks``: then a link is
    scanned as its target when that stays inside ``path``. A Hugging Face
    cache snapshot (``.../snapshots/REV``) is scanned through its own links
    into the repository's ``blobs/`` either way, and no other link in it is
    followed. Raises :class:`~provenance.errors.InputError` only when
    ``path`` itself cannot be read.

    ``contents`` maps names (as scanned: relative paths, or the file's own
    name for a single file) to bytes the caller holds, a verified loader's:
    those files are checked in memory, not read from disk again.
    """
    from provenance.hashing import Ignore, LinkPolicy, walk

    allow_globals = tuple(allow_globals)
    for name in allow_globals:
        if not _GLOBAL_NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not a global's exact name, MODULE.NAME (such as"
                " 'collections.Counter'; no wildcards): a pickle names each global it imports",
                code="scan-allow-global",
            )
    root = Path(path)
    options = ScanOptions(
        frozenset(allow_globals),
        frozenset(signed_files) if signed_files is not None else None,
        contents,
    )
    links = LinkPolicy(follow=follow_symlinks)
    found = walk(root, ignore=Ignore([".git"]), links=links)
    single = root.is_file()
    base = root.parent if single else root
    scanned: list[ScannedFile] = []
    folder: list[FormatFinding] = []
    for r in found.refused:
        folder.append(FormatFinding(r.name, "unknown", f"scan-{r.code}", r.reason))
    for entry in found.files:
        shown = entry.name if not single else root.name
        if contents is not None and shown in contents:
            scanned.append(_scan_source(Source.of_bytes(contents[shown], shown), shown, options))
        else:
            scanned.append(_scan_file(entry.path, shown, options))
    for spec in _FOLDER_CHECKERS:
        if single and spec.startswith("_index:"):
            # An index scanned alone: its shards are beside it, not in the listing.
            if root.name.endswith(".index.json"):
                folder.append(
                    FormatFinding(
                        root.name,
                        "json",
                        "index-shard-unchecked",
                        "the index was scanned alone, so its shards were not checked; "
                        "scan the folder that holds it",
                        severity="info",
                    )
                )
            continue
        folder.extend(_resolve(spec)(base, scanned, options))
    if not scanned and not folder:
        # A gate that passes an empty (or mistyped, but existing) release
        # folder would pass a model that is not there.
        folder.append(
            FormatFinding(
                root.name or str(root),
                "unknown",
                "scan-empty",
                f"'{root}' holds no file to scan",
                severity="warning",
            )
        )
    return ScanReport(root, tuple(scanned), tuple(folder))


def _scan_file(path: str, name: str, options: ScanOptions) -> ScannedFile:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        f = FormatFinding(name, "unknown", "scan-unreadable", f"cannot open '{name}': {e.strerror}")
        return ScannedFile(name, "unknown", None, False, 0, (f,))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            f = FormatFinding(
                name, "unknown", "scan-not-regular", f"'{name}' is not a regular file"
            )
            return ScannedFile(name, "unknown", None, False, 0, (f,))
        return _scan_source(Source(fd, st.st_size, name), name, options)
    finally:
        os.close(fd)


_ZIP_FORMATS = frozenset({"zip", "pytorch-zip", "npz", "keras"})


def _polyglot_zip(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """A file of one format that is also a zip archive: an error, and the zip checked too.

    Loaders pick a reading by different rules (the start for safetensors,
    GGUF or HDF5; the end for ``zipfile``, and Keras loads any ``.keras``
    that ``zipfile`` opens), so what one reader shows clean another may run.
    """
    try:
        found = embedded_zip(src._file, src.size)
    except InputError:
        return []
    if found is None:
        return []
    out = [
        FormatFinding(
            name,
            detected.format,
            "format-polyglot",
            f"'{name}' is {detected.format} and also a zip archive ({found.detail}); "
            "zip-based loaders (Keras, anything using zipfile) read the archive, "
            "so its members are checked too",
        )
    ]
    try:
        out.extend(_resolve(_CHECKERS[found.format])(src, found, options, name))
    except InputError as e:
        out.append(FormatFinding(name, found.format, "scan-unreadable", str(e)))
    return out


def _scan_source(src: Source, name: str, options: ScanOptions) -> ScannedFile:
    """Detect and check one file, from its descriptor or its bytes in memory."""
    try:
        if isinstance(src._file, _Memory):
            detected = detect_buffer(src._file._data, name)
        else:
            detected = detect_fd(src.fd, src.size, name)
    except InputError as e:
        f = FormatFinding(name, "unknown", "scan-unreadable", str(e))
        return ScannedFile(name, "unknown", None, False, src.size, (f,))
    findings: list[FormatFinding] = []
    if detected.format == "unknown":
        findings.append(
            FormatFinding(
                name,
                "unknown",
                "format-unknown",
                "matches no known format, so nothing in it was checked"
                + (f" ({detected.detail})" if detected.detail else "")
                + "; a policy decides whether it may load",
                severity="info",
            )
        )
    spec = _CHECKERS.get(detected.format)
    if spec is None and detected.pickle_based:
        # detection could not rule out a pickle, and no checker reads this format
        findings.append(
            FormatFinding(
                name,
                detected.format,
                "pickle-not-ruled-out",
                f"'{name}' may load as a pickle"
                + (f" ({detected.detail})" if detected.detail else "")
                + ", and its opcodes are not scanned here: not shown to be safe",
            )
        )
    if spec is not None:
        try:
            findings.extend(_resolve(spec)(src, detected, options, name))
        except InputError as e:
            findings.append(FormatFinding(name, detected.format, "scan-unreadable", str(e)))
    if detected.format not in _ZIP_FORMATS and detected.format not in CHECKED_FOR_ZIP:
        findings.extend(_polyglot_zip(src, detected, options, name))
    return ScannedFile(
        name,
        detected.format,
        detected.detail,
        detected.pickle_based,
        src.size,
        tuple(findings),
    )
