"""A verified model written out as a new, read-only folder.

Why: a Kubernetes init container verifies the model, but the main container
is another process, possibly much later; sealed memory files cannot cross
that line, and the model's volume may have other writers (a shared claim,
a sync side-car). Writing the bytes that were verified (from the memory they
were hashed in, never read again from the source) into a folder only this
pod can write, an ``emptyDir``, which the main container mounts read-only,
leaves no writer between verification and load.

The folder appears whole or not at all: everything is written into a hidden
temporary folder beside the destination, each file synced, then the folder
is renamed into place (security invariant 7). Files are made 0444 and
folders 0555: a guard against accidents, not against root, who ignores mode
bits; the read-only mount is what protects the copy. Only the signed files
are copied: nothing the signature does not cover is there to be loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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


def copy_verified(model: VerifiedBytes, into: str | os.PathLike[str]) -> Path:
    """Write every verified file under the new folder ``into``; return the model's path there.

    That is ``into`` itself for a folder model, ``into/NAME`` for a single
    file. ``into`` must not exist yet (its parent must): an existing folder
    could hold files nobody verified. Raises :class:`InputError` otherwise,
    or when writing fails (nothing is left behind then).
    """
    dest = Path(into)
    if os.path.lexists(dest):
        raise InputError(
            f"'{dest}' exists: the verified copy goes into a new folder "
            "(name one inside the volume, e.g. /verified/model)",
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
        folders = _write_all(model, tmp)
        for folder in sorted(folders, key=lambda f: -len(f.parts)):
            # Readable by all: the main container often runs as another user.
            os.chmod(folder, 0o555)  # noqa: S103 (read-only, on purpose)
        _fsync_dir(tmp)
        os.rename(tmp, dest)
        _fsync_dir(parent)
    except OSError as e:
        _remove(tmp)
        raise InputError(f"cannot write the copy into '{dest}': {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise
    return dest / model.path.name if model.single else dest


def _write_all(model: VerifiedBytes, root: Path) -> set[Path]:
    """Write the files; return every folder made (the root too), to be made read-only."""
    folders = {root}
    for name in model.files:
        rel = model.path.name if model.single else name
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts or "\\" in rel or "\0" in rel:
            raise InputError(f"refusing to write the file name {rel!r}", code="bad-name")
        target = root.joinpath(*parts)
        for up in reversed(target.parents):
            if up != root and root in up.parents and up not in folders:
                up.mkdir(mode=0o755)
                folders.add(up)
        _write_file(target, model.buffer(name))
    return folders


def _write_file(target: Path, data: memoryview) -> None:
    fd = os.open(target, _O_NEW, 0o600)
    try:
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        done = 0
        while done < len(view):
            done += os.write(fd, view[done : done + (1 << 30)])
        os.fchmod(fd, 0o444)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
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
