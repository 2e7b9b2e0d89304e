"""Small input files and output files, read and written safely.

Every small file the tool reads (keys, certificates, signatures, trust roots,
trust configs, policies, the attestations file) goes through
:func:`read_regular`: it never blocks and never reads more than a limit.

* The path is checked with ``lstat``/``stat`` *before* it is opened, so a
  FIFO, socket or device is never opened at all (opening some devices has
  effects of its own), then opened with ``O_NONBLOCK`` and checked again with
  ``fstat``, so one swapped in meanwhile is refused without blocking.
* Symbolic links are refused (``O_NOFOLLOW``) unless the caller allows a link
  at that path: a key, certificate or trust file the user named may well be a
  link (a Kubernetes secret mount is one), a file the tool finds inside a
  model folder may not.
* At most ``limit + 1`` bytes are read, whatever the file claims to be
  (``/proc`` files report size 0).

Every output file goes through :func:`safe_output` and :func:`write_output`
(security invariant 7): a new path, or a regular file, not a link, that
already holds what the tool writes there; never a FIFO, device, socket,
folder, link or someone else's file, and never a model's own file. The
write is atomic: a temporary file in the same folder, fsync, then a link (for
a new path: fails rather than replace something created meanwhile) or a
rename (over the file that was checked, checked again just before).

Errors are :class:`~provenance.errors.InputError` with a ``code``:
``not-found``, ``not-regular``, ``too-large``, ``unreadable`` when reading;
``output-refused`` (and ``not-found`` for a missing folder) when writing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provenance.errors import Hint, InputError

__all__ = [
    "OutputKind",
    "OutputTarget",
    "atomic_write",
    "bundle_file_kind",
    "holds_bundles",
    "open_regular",
    "read_limited",
    "read_regular",
    "refuse_bundle_as_model",
    "safe_output",
    "write_output",
]

_O_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CHUNK = 8 << 20


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _not_regular(what: str, path: str, mode: int) -> InputError:
    return InputError(
        f"{what} '{path}' is {_kind_of(mode)}; only a regular file is read",
        code="not-regular",
    )


def _os_error(what: str, path: str, e: OSError) -> InputError:
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return InputError(f"{what} '{path}' does not exist", code="not-found")
    if e.errno == errno.ELOOP:
        return InputError(
            f"{what} '{path}' is a symbolic link; refusing to follow it", code="not-regular"
        )
    if e.errno == errno.ENXIO:  # a socket (or a device without its driver)
        return InputError(f"{what} '{path}' is not a regular file", code="not-regular")
    return InputError(f"cannot read {what} '{path}': {e.strerror}", code="unreadable")


def open_regular(
    path: str | os.PathLike[str],
    what: str,
    *,
    follow_symlinks: bool = False,
    dir_fd: int | None = None,
) -> int:
    """Open a regular file for reading, without blocking; returns the descriptor.

    Refuses (never opens) FIFOs, sockets, devices and folders; refuses a
    symbolic link unless ``follow_symlinks``. ``dir_fd``: ``path`` is
    relative to that open folder. The caller closes the descriptor.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    except OSError as e:
        if e.errno == errno.ENOENT and follow_symlinks and dir_fd is None and os.path.lexists(p):
            raise InputError(
                f"{what} '{p}' is a broken symbolic link (its target does not exist)",
                code="not-found",
            ) from None
        raise _os_error(what, p, e) from None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISLNK(st.st_mode):
            raise InputError(
                f"{what} '{p}' is a symbolic link; refusing to follow it", code="not-regular"
            )
        raise _not_regular(what, p, st.st_mode)
    try:
        fd = os.open(p, _O_READ | (0 if follow_symlinks else _O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as e:
        raise _os_error(what, p, e) from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):  # swapped since the stat above
            raise _not_regular(what, p, fst.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, what: str, path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of an open regular file, else ``too-large``."""
    too_large = InputError(f"{what} '{path}' is larger than {_size(limit)}", code="too-large")
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise too_large
        parts: list[bytes] = []
        remaining = limit + 1
        # The size the file reports (0 for /proc files) is a first guess only.
        want = size + 1 if size else 1 << 16
        while remaining > 0:
            chunk = os.read(fd, min(remaining, max(want, 1 << 16)))
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
            want = _CHUNK
    except OSError as e:
        raise InputError(f"cannot read {what} '{path}': {e.strerror}", code="unreadable") from None
    if remaining <= 0:
        raise too_large
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_regular(
    path: str | os.PathLike[str], what: str, limit: int, *, follow_symlinks: bool = False
) -> bytes:
    """The bytes of a small regular file, read without blocking and bounded by ``limit``.

    A symbolic link is refused unless ``follow_symlinks`` (then its target
    must be a regular file). Use this for files the tool finds by name
    (``model.intoto.jsonl`` inside a model) with the default; use
    :func:`read_limited` for files the user named.
    """
    fd = open_regular(path, what, follow_symlinks=follow_symlinks)
    try:
        return _read_fd(fd, what, os.fspath(path), limit)
    finally:
        os.close(fd)


def read_limited(
    path: str | os.PathLike[str],
    what: str,
    limit: int = 64 << 20,
    *,
    follow_symlinks: bool = True,
) -> bytes:
    """Read a small input file the user named (key, bundle, certificate, trust root).

    Links are followed (a key may be a link into a secret mount), but the
    file itself must be regular: FIFOs, sockets, devices and folders are
    refused without being read; see :func:`read_regular`.
    """
    return read_regular(path, what, limit, follow_symlinks=follow_symlinks)


# ---------------------------------------------------------------- what our files hold

OutputKind = Literal["signature", "attestations"]

#: The largest existing output file read to see whether it is ours.
_OUTPUT_LIMITS: dict[str, int] = {"signature": 40 << 20, "attestations": 32 << 20}
_DEFAULT_NAMES: dict[str, str] = {"signature": "model.sig", "attestations": "model.intoto.jsonl"}
_WORDS: dict[str, str] = {"signature": "signature", "attestations": "attestations file"}
#: Objects and arrays a line may hold before it is parsed (as Bundle.from_bytes).
_MAX_CONTAINERS = 10_000
_BUNDLE_MARK = b"application/vnd.dev.sigstore.bundle"


def _is_bundle_line(line: bytes) -> bool:
    """One JSON object with a known Sigstore bundle ``mediaType`` (parsed, not verified)."""
    from provenance.bundle import _MEDIA_TYPES

    text = line.strip()
    if not text.startswith(b"{") or _BUNDLE_MARK not in text:
        return False
    if text.count(b"[") + text.count(b"{") > _MAX_CONTAINERS:
        return False
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    media_type = doc.get("mediaType") if isinstance(doc, dict) else None
    return isinstance(media_type, str) and media_type in _MEDIA_TYPES


def holds_bundles(data: bytes, kind: OutputKind) -> bool:
    """Whether ``data`` is what the tool writes as ``kind``.

    A signature is one Sigstore bundle; an attestations file is one bundle
    per non-empty line. Empty content holds nothing anybody could lose, so
    it counts as either (``mktemp`` makes such files for a script to fill).
    """
    if not data.strip():
        return True
    if kind == "signature":
        return _is_bundle_line(data)
    return all(_is_bundle_line(line) for line in data.split(b"\n") if line.strip())


def bundle_file_kind(path: str | os.PathLike[str]) -> OutputKind | None:
    """``signature`` or ``attestations`` when ``path`` is such a file, else None.

    Decided by content: the first line must be a Sigstore bundle; more
    non-empty lines make it an attestations file. Only the first line is
    read (in chunks, up to the signature size cap), and only when the file
    starts with ``{``; anything that cannot be read is simply not a bundle.
    """
    limit = _OUTPUT_LIMITS["signature"]
    try:
        fd = open_regular(path, "file", follow_symlinks=True)
    except InputError:
        return None
    try:
        first = bytearray()  # grows in place: no quadratic copying
        rest = b""
        total = 0
        while total <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if not first:
                chunk = chunk.lstrip()
                if not chunk:
                    continue  # leading blank space: read on (within the cap)
                if not chunk.startswith(b"{"):
                    return None
            cut = chunk.find(b"\n")
            if cut >= 0:
                first += chunk[:cut]
                rest = chunk[cut + 1 :] + os.read(fd, 1 << 16)
                break
            first += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(first) > limit or not _is_bundle_line(bytes(first)):
        return None
    return "attestations" if rest.strip() else "signature"


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class OutputTarget:
    """An output path checked by :func:`safe_output`, to hand to :func:`write_output`.

    ``existing`` is the file's current content (``None`` for a new path),
    already read once, so a caller that appends (the attestations file)
    need not read it again.
    """

    path: Path
    folder: str  # the real path of the folder that will hold the file
    name: str
    kind: OutputKind | None
    existing: bytes | None
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the checked file
    model_root: str | None = None  # real path, when the output belongs to a model
    limit: int | None = None  # the largest existing file read to check it


def _refuse(target: str, why: str, kind: OutputKind | None) -> InputError:
    word = _WORDS[kind] if kind else "output"
    return InputError(
        f"refusing to write the {word} to '{target}': {why}",
        code="output-refused",
        hint=Hint.OUTPUT_PATH,
    )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_existing(
    shown: str,
    folder: str,
    name: str,
    kind: OutputKind | None,
    model_root: str | None,
    limit: int | None = None,
    dir_fd: int | None = None,
) -> tuple[bytes | None, tuple[int, int] | None]:
    """Validate what is at ``folder/name`` now; returns its content and identity.

    (None, None) when nothing is there. With ``dir_fd`` (that folder, open),
    the file is looked up relative to it, so a folder swapped meanwhile does
    not redirect the check.
    """
    full = os.path.join(folder, name)
    where = name if dir_fd is not None else full
    try:
        st = os.stat(where, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise _refuse(shown, f"it cannot be examined ({e.strerror})", kind) from None
    if not stat.S_ISREG(st.st_mode):
        what = _kind_of(st.st_mode)
        raise _refuse(shown, f"it is {what}, not a regular file", kind)
    if model_root is not None:
        if full == model_root:
            raise _refuse(shown, "it is the model file itself", kind)
        if _within(full, model_root):
            default = os.path.join(model_root, _DEFAULT_NAMES[kind]) if kind else None
            if full != default:
                raise _refuse(shown, "it is one of the model's own files", kind)
    if kind is None:
        return None, (st.st_dev, st.st_ino)
    try:
        fd = open_regular(where, _WORDS[kind], dir_fd=dir_fd)
        try:
            fst = os.fstat(fd)
            data = _read_fd(fd, _WORDS[kind], full, limit or _OUTPUT_LIMITS[kind])
        finally:
            os.close(fd)
    except InputError as e:
        raise _refuse(shown, f"it cannot be read to check it ({e})", kind) from None
    if not holds_bundles(data, kind):
        holds = "a signature" if kind == "signature" else "attestations"
        raise _refuse(shown, f"the file exists and does not hold {holds}", kind)
    return data, (fst.st_dev, fst.st_ino)


def safe_output(
    path: str | os.PathLike[str],
    kind: OutputKind | None,
    *,
    model_root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> OutputTarget:
    """Check that ``path`` may receive a new ``kind`` file; nothing is written yet.

    Allowed: a path that does not exist yet (in an existing folder), or an
    existing regular file, not a symbolic link, that already holds ``kind``
    (:func:`holds_bundles`; an empty file too). Refused, with the reason:
    a link, FIFO, socket, device or folder; another file; and, when
    ``model_root`` is given, the model file itself or any existing file
    inside the model folder other than its default ``model.sig`` /
    ``model.intoto.jsonl``. ``kind`` None checks only the file type.
    An existing file is read (no link followed) up to ``limit`` bytes
    (default 40 MiB for a signature, 32 MiB for attestations) and handed
    back as :attr:`OutputTarget.existing`.
    """
    target = Path(path)
    shown = os.fspath(target)
    if target.name in ("", ".", ".."):
        raise _refuse(shown, "it names a folder, not a file", kind)
    folder = target.parent
    try:
        real_folder = os.path.realpath(folder)
        fst = os.stat(real_folder)
    except OSError:
        raise InputError(
            f"cannot write '{shown}': folder '{folder}' does not exist", code="not-found"
        ) from None
    if not stat.S_ISDIR(fst.st_mode):
        raise InputError(f"cannot write '{shown}': '{folder}' is not a folder", code="not-found")
    root = None
    if model_root is not None:
        root = os.path.realpath(model_root)
    existing, identity = _check_existing(shown, real_folder, target.name, kind, root, limit)
    return OutputTarget(target, real_folder, target.name, kind, existing, identity, root, limit)


def _recheck(dfd: int, target: OutputTarget) -> None:
    """Right before the rename: the name still holds what was checked, or passes again."""
    try:
        st = os.stat(target.name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return  # gone meanwhile: a new file is fine
    except OSError as e:
        why = f"it cannot be examined ({e.strerror})"
        raise _refuse(os.fspath(target.path), why, target.kind) from None
    if (
        target.identity is not None
        and stat.S_ISREG(st.st_mode)
        and (st.st_dev, st.st_ino) == target.identity
    ):
        return
    # Something else is there now: it must pass the rules on its own.
    _check_existing(
        os.fspath(target.path),
        target.folder,
        target.name,
        target.kind,
        target.model_root,
        target.limit,
        dir_fd=dfd,
    )


def _open_folder(target: OutputTarget) -> int:
    try:
        return os.open(target.folder, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(
            f"cannot write '{target.path}': {e.strerror}", code="output-refused"
        ) from None


def write_output(target: OutputTarget, data: bytes) -> None:
    """Write ``data`` atomically to a path :func:`safe_output` accepted.

    The bytes go to a temporary file beside the target, are fsynced, then
    take the target's name: by a hard link for a path that was new (which
    fails instead of replacing anything created meanwhile), else by a rename
    over the file checked, after checking right before that it is still
    that file (or again acceptable). Nothing is ever written through a link.
    """
    shown = os.fspath(target.path)
    dfd = _open_folder(target)
    tmp = f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=dfd,
            )
        except OSError as e:
            raise InputError(f"cannot write '{shown}': {e.strerror}", code="unwritable") from None
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fchmod(f.fileno(), 0o644)
                    os.fsync(f.fileno())
                _commit(dfd, tmp, target)
            except OSError as e:
                raise InputError(
                    f"cannot write '{shown}': {e.strerror}", code="unwritable"
                ) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
        with contextlib.suppress(OSError):
            os.fsync(dfd)
    finally:
        os.close(dfd)


def _commit(dfd: int, tmp: str, target: OutputTarget) -> None:
    if target.identity is None:
        try:
            os.link(tmp, target.name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            return
        except FileExistsError:
            pass  # created meanwhile: it must pass the rules before it is replaced
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            # A file system without hard links: check again, then rename.
    _recheck(dfd, target)
    os.replace(tmp, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    kind: OutputKind | None = None,
    *,
    model_root: str | os.PathLike[str] | None = None,
) -> None:
    """:func:`safe_output` then :func:`write_output`, for a caller with nothing to reuse.

    Without ``kind`` only the type is checked: a new path or a regular file
    that is not a link; never a FIFO, device, socket, folder or link.
    """
    write_output(safe_output(path, kind, model_root=model_root), data)


def refuse_bundle_as_model(path: str | os.PathLike[str]) -> None:
    """A signature or attestations file given where a model belongs is a usage error.

    Decided by content (:func:`bundle_file_kind`), whatever the file is called.
    """
    from provenance.errors import UsageError

    kind = bundle_file_kind(path)
    if kind == "signature":
        raise UsageError(
            f"'{path}' is a signature, not a model; give the model folder (or file) it signs",
            code="signature-as-model",
        )
    if kind == "attestations":
        raise UsageError(
            f"'{path}' is an attestations file, not a model; give the model folder "
            "(or file) it belongs to",
            code="attestations-as-model",
        )
