"""A verified model written out as a new, read-only folder.

Why: a Kubernetes init container verifies the model, but the main container
is another process, possibly much later; sealed memory files cannot cross
that line, and the model's volume may have other writers (a shared claim,
a sync side-car). Writing the bytes that were verified (from the memory they
were hashed in, never read again from the source) into a folder only this
pod can write, an ``emptyDir``, which the main container mounts read-only,
leaves no writer between verification and load.

The folder appears whole or not at all: everything is written into a hidden
temporary folder beside the destination, synced, then the folder is renamed
into place (security invariant 7). An init container runs again when its pod
sandbox is recreated (a node reboot): finding its own complete copy there,
byte for byte the verified bytes, it keeps it instead of failing. Files are made 0444 and
folders 0555: a guard against accidents, not against root, who ignores mode
bits; the read-only mount is what protects the copy. Only the signed files
are copied: nothing the signature does not cover is there to be loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path, PurePosixPath

from provenance._internal.sealed import VerifiedBytes
from provenance.errors import Hint, InputError

__all__ = ["copy_verified"]

_O_NEW = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def copy_verified(model: VerifiedBytes, into: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Write every verified file under the new folder ``into``.

    Returns the model's path there (``into`` itself for a folder model,
    ``into/NAME`` for a single file) and whether it was written (False: an
    identical copy was already there). ``into`` must not exist yet, or hold
    exactly the verified files, byte for byte: a restarted init container
    (after a node reboot, say) finds its own earlier copy and keeps it,
    while a folder holding anything else, which nobody verified, is refused,
    never replaced. Raises :class:`InputError` then, or when writing fails
    (nothing is left behind).
    """
    dest = Path(into)
    path = dest / model.path.name if model.single else dest
    if os.path.lexists(dest):
        if _holds_exactly(model, dest):
            return path, False
        raise InputError(
            f"'{dest}' exists and is not this model's verified copy: the copy goes into a "
            "new folder (name one inside the volume, e.g. /verified/model)",
            code="output-refused",
            hint=Hint.OUTPUT_PATH,
        )
    parent = dest.parent
    if not parent.is_dir():
        raise InputError(f"no folder '{parent}' to make '{dest.name}' in", code="not-found")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.provenance-", dir=parent))
    except OSError as e:
        raise InputError(
            f"cannot write in '{parent}': {e.strerror or e}", code="unreadable"
        ) from None
    try:
        folders, files = _write_all(model, tmp)
        for folder in sorted(folders, key=lambda f: -len(f.parts)):
            # Readable by all: the main container often runs as another user.
            os.chmod(folder, 0o555)  # noqa: S103 (read-only, on purpose)
        _sync(tmp, files)
        os.rename(tmp, dest)
        _fsync(parent)
    except OSError as e:
        _remove(tmp)
        raise InputError(f"cannot write the copy into '{dest}': {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise
    return path, True


def _relative(model: VerifiedBytes, name: str) -> tuple[str, ...]:
    """The file's path under the copy, as parts (checked: nothing climbs out)."""
    rel = model.path.name if model.single else name
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts or "\\" in rel or "\0" in rel:
        raise InputError(f"refusing to write the file name {rel!r}", code="bad-name")
    return parts


def _holds_exactly(model: VerifiedBytes, dest: Path) -> bool:
    """Whether ``dest`` is a folder of exactly the verified files, with the verified bytes."""
    if dest.is_symlink() or not dest.is_dir() or not _sealed_entry(os.lstat(dest), folder=True):
        return False
    wanted = {_relative(model, n): n for n in model.files}
    found: set[tuple[str, ...]] = set()
    for folder, dirs, names in os.walk(dest):
        rel = Path(folder).relative_to(dest).parts
        for d in dirs:
            info = os.lstat(os.path.join(folder, d))
            if stat.S_ISLNK(info.st_mode) or not _sealed_entry(info, folder=True):
                return False
        for n in names:
            found.add((*rel, n))
    if found != set(wanted):
        return False
    for parts, name in wanted.items():
        if not _same_bytes(dest.joinpath(*parts), model.buffer(name)):
            return False
    return True


def _sealed_entry(info: os.stat_result, *, folder: bool) -> bool:
    """An entry as this module leaves it: ours, read-only to all, and (a file) one link.

    A copy found in place is reused only if nobody else could have planted or
    still change it: a file with a second hard link, a write bit or another
    owner could be rewritten after the comparison, whatever its bytes are now.
    """
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid() or mode & 0o222:
        return False
    return folder or info.st_nlink == 1


def _same_bytes(target: Path, data: memoryview) -> bool:
    """Whether the regular file ``target`` holds exactly ``data`` (read a MiB at a time)."""
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_size != len(data)
            or not _sealed_entry(info, folder=False)
        ):
            return False
        chunk = bytearray(1 << 20)
        done = 0
        while done < len(data):
            n = os.readv(fd, [chunk])
            if n == 0 or chunk[:n] != data[done : done + n]:
                return False
            done += n
        return os.read(fd, 1) == b""
    finally:
        os.close(fd)


def _write_all(model: VerifiedBytes, root: Path) -> tuple[set[Path], list[Path]]:
    """Write the files; return every folder made (the root too) and every file."""
    folders = {root}
    files = []
    for name in model.files:
        target = root.joinpath(*_relative(model, name))
        for up in reversed(target.parents):
            if up != root and root in up.parents and up not in folders:
                up.mkdir(mode=0o755)
                folders.add(up)
        _write_file(target, model.buffer(name))
        model.release(name)  # on disk now: memory holds one file at a time, not the model twice
        files.append(target)
    return folders, files


def _write_file(target: Path, data: memoryview) -> None:
    fd = os.open(target, _O_NEW, 0o600)
    try:
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        done = 0
        while done < len(view):
            done += os.write(fd, view[done : done + (1 << 30)])
        os.fchmod(fd, 0o444)  # read-only, for whichever user loads it
    finally:
        os.close(fd)


def _sync(root: Path, files: list[Path]) -> None:
    """Make the copy durable before it is renamed into place.

    One ``syncfs`` of the volume where Linux has it: an fsync per file costs
    a journal commit each (minutes for 20,000 small files on a plain disk),
    and the copy is only published by the rename that follows.
    """
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _syncfs(fd):
            return
    finally:
        os.close(fd)
    for f in files:
        _fsync(f)
    for folder in {f.parent for f in files} | {root}:
        _fsync(folder)


def _syncfs(fd: int) -> bool:
    """``syncfs(2)`` on the file system holding ``fd``; False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library Python itself runs on
        return bool(libc.syncfs(fd) == 0)
    except (OSError, AttributeError):
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(tmp: Path) -> None:
    """Remove a half-written copy, read-only folders included."""
    for folder, dirs, _files in os.walk(tmp):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, d), 0o700)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o700)
    shutil.rmtree(tmp, ignore_errors=True)
