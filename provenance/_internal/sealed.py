"""Verified bytes in sealed memory files, reachable by path (Linux).

Why: a loader that only takes a path (llama.cpp, ONNX Runtime, a C++
server) opens the model *after* provenance verified it, so whoever can write
the model's folder in between decides what it loads. Here the verified bytes
are copied out of provenance's memory (where they were hashed) into one
``memfd`` per file, and each memfd is sealed (``F_SEAL_WRITE``,
``F_SEAL_SHRINK``, ``F_SEAL_GROW``, then ``F_SEAL_SEAL`` so no seal can be
lifted): from then on nobody, not even the owner or root, can change those
bytes. The kernel refuses ``write``, ``ftruncate`` and a writable shared
``mmap`` with ``EPERM``.

How a path reaches them: a private folder (``mkdtemp``, mode 0700) mirrors
the model's tree, each signed file a symbolic link to
``/proc/PID/fd/N``, where PID is this process and N the memfd's descriptor.
The descriptors are inheritable, so after ``execve`` the command holds them
under the same numbers *and the same PID* (``execve`` keeps the PID): every
open of a link reaches the sealed file. ``/proc/PID`` rather than
``/proc/self`` because ``self`` is whoever opens the link: a worker the
command starts with its descriptors closed (Python's ``subprocess`` closes
them by default) would find nothing, or worse, an unrelated file that
happens to have number N in it. ``/proc/PID`` is the command itself, for
its children too, as long as it runs and keeps the descriptors open.
Bind mounts would need privileges (``CAP_SYS_ADMIN``) a container rarely
has; FUSE needs ``/dev/fuse``; ``/proc/PID/map_files`` needs
``CAP_SYS_ADMIN`` to open.

What it costs, plainly:

* Memory: the verified bytes are read into provenance's memory, hashed,
  then copied file by file into the memfds, each file's first copy dropped
  once made: the peak is the model plus its largest file. Then every
  file's size, in shared memory (``shmem``) charged to the
  memory cgroup of this process (so to the container's limit), not to
  ``/dev/shm``'s size limit, and not reclaimable without swap. It is not in
  any process's RSS until mapped: a loader that ``mmap``s the file (llama.cpp,
  safetensors) maps these very pages, so the model is in memory once; one
  that reads it into its own buffers holds it twice.
* Descriptors: one per signed file, kept open in the command. The soft
  ``RLIMIT_NOFILE`` is raised to the hard one when the files need it; a model
  with more files than the hard limit allows is refused (say ``ulimit -n``).
* A loader that resolves links before opening (``realpath`` then ``open``)
  gets ``/memfd:NAME (deleted)``, which it cannot open: pass it the path as is.

The folder holds only symbolic links (a few hundred bytes each); after
``execve`` nothing is left to remove it, so it stays in ``$TMPDIR`` (else
``/dev/shm``, else ``/tmp``) until the machine or container goes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provenance.errors import InputError, UsageError

__all__ = ["SEALS", "SealedTree", "VerifiedBytes", "available", "seal"]

#: The seals every file gets: no write, no size change, no further seal change.
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL

# Linux 6.3 and later: the file can never be made executable (F_SEAL_EXEC),
# and the kernel stops warning about memfds created without saying so.
_MFD_NOEXEC_SEAL = getattr(os, "MFD_NOEXEC_SEAL", 0x0008)
_WRITE_CHUNK = 1 << 30  # write() moves at most about 2 GiB at a time anyway
_SPARE_FDS = 64  # descriptors left for the command beyond the sealed files
_LABEL_MAX = 200  # memfd names may be 249 bytes; only /proc shows them


class VerifiedBytes(Protocol):
    """What :func:`seal` needs of a verified model (``provenance.loading.VerifiedModel``)."""

    @property
    def path(self) -> Path: ...
    @property
    def single(self) -> bool: ...
    @property
    def files(self) -> tuple[str, ...]: ...
    def buffer(self, name: str) -> memoryview: ...
    def release(self, name: str) -> None: ...


@dataclass
class SealedTree:
    """Sealed copies of a model's files and the private folder of links to them.

    ``path`` is what a command is given: the folder for a folder model, the
    one link inside it for a single file. ``fds`` maps each signed name to
    its memfd; they stay open (and inheritable) until :meth:`close`.
    """

    root: Path
    path: Path
    fds: dict[str, int] = field(default_factory=dict)
    #: Bytes held in shared memory (the sum of the files' sizes).
    size: int = 0

    def close(self) -> None:
        """Close the descriptors and remove the folder (not after ``exec``: nothing is left)."""
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SealedTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available() -> bool:
    """Whether this system has sealed memory files (Linux with ``memfd_create``)."""
    return sys.platform.startswith("linux") and hasattr(os, "memfd_create")


def seal(
    model: VerifiedBytes, *, pid: int | None = None, folder: str | os.PathLike[str] | None = None
) -> SealedTree:
    """Copy every verified file into a sealed memfd and link a private folder to them.

    ``pid`` is the process the links name (default: this one, which keeps
    its PID across ``execve``); ``folder`` is where the private folder is
    made (default ``$TMPDIR``, else ``/dev/shm``, else ``/tmp``). Raises
    :class:`UsageError` off Linux and :class:`InputError` when the files do
    not fit (descriptors, memory); nothing is left behind then.
    """
    if not available():
        raise UsageError("sealed memory files need Linux (memfd_create)", code="sealed-unavailable")
    names = _link_names(model)
    _raise_fd_limit(len(names))
    floor = _high_floor(len(names))
    root = tempfile.mkdtemp(prefix="provenance-sealed-", dir=_folder(folder))
    tree = SealedTree(Path(root), Path(root, names[0][1]) if model.single else Path(root))
    owner = os.getpid() if pid is None else pid
    made: set[str] = {""}
    # Plain strings, not Path objects: for 20,000 small files pathlib's
    # parsing cost more than the system calls.
    try:
        for name, link in names:
            fd = _sealed_copy(name, model.buffer(name), floor)
            model.release(name)  # held once: the memfd now, not both
            tree.fds[name] = fd
            tree.size += os.fstat(fd).st_size
            parent = link.rpartition("/")[0]
            if parent not in made:
                os.makedirs(f"{root}/{parent}", mode=0o700, exist_ok=True)
                made.add(parent)
            os.symlink(f"/proc/{owner}/fd/{fd}", f"{root}/{link}")
    except BaseException:
        tree.close()
        raise
    return tree


def _link_names(model: VerifiedBytes) -> list[tuple[str, str]]:
    """(name the model knows the file by, relative link path) for every signed file."""
    files: Sequence[str] = model.files
    if model.single:
        if len(files) != 1:
            raise UsageError(f"a single-file model with {len(files)} files")
        return [(files[0], model.path.name)]
    out = []
    for name in files:
        # The manifest's names are validated when it is read (invariant 4);
        # a link outside the folder would still be a link to nowhere we made.
        parts = name.split("/")
        if not name or "" in parts or "." in parts or ".." in parts or "\\" in name or "\0" in name:
            raise InputError(f"refusing to link the file name {name!r}", code="bad-name")
        out.append((name, name))
    return out


def _folder(folder: str | os.PathLike[str] | None) -> str | None:
    """Where the link folder goes: as given, ``$TMPDIR``, ``/dev/shm``, else ``/tmp``.

    ``/dev/shm`` before ``/tmp`` because it is a tmpfs: making 20,000 links
    there takes a tenth of a second, on a journalled disk several seconds; it
    goes when the container does; and a hardened container's root file
    system (so its ``/tmp``) is often read-only while ``/dev/shm`` is not.
    """
    if folder is not None:
        return os.fspath(folder)
    if os.environ.get("TMPDIR"):
        return None  # tempfile's choice, which starts with $TMPDIR
    for candidate in ("/dev/shm", "/tmp"):  # noqa: S108 (mkdtemp makes a private folder)
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _raise_fd_limit(files: int) -> None:
    """Make room for one descriptor per file, raising the soft limit to the hard one.

    The command inherits the raised limit, which it needs anyway: the
    sealed files take the top numbers (:func:`_high_floor`), its own files
    the ones below.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = _open_fds() + files + _SPARE_FDS
    if need <= soft:
        return
    if hard != resource.RLIM_INFINITY and need > hard:
        raise InputError(
            f"sealed mode keeps one descriptor open per file: {files} files need about "
            f"{need}, and the limit here is {hard} (raise it: ulimit -n, docker run "
            "--ulimit nofile=N:N)",
            code="too-many-files",
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def _high_floor(files: int) -> int:
    """The lowest descriptor number the sealed files get: as high as the limit allows.

    ``open`` returns the lowest free number, so a command that closes a
    descriptor it inherited and opens something else would take that very
    number, and the link to ``/proc/PID/fd/N`` would then reach the wrong
    file. Kept at the top of the range, the sealed files are out of the way
    of the numbers a program's own opens use. 0 when there is no room above
    what is open (they stay where ``memfd_create`` puts them).
    """
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    floor = soft - files - _SPARE_FDS
    return floor if floor > _open_fds() + _SPARE_FDS else 0


def _sealed_copy(name: str, data: memoryview, floor: int = 0) -> int:
    """A new memfd holding ``data``, sealed; inheritable so a command exec'd keeps it."""
    label = "provenance:" + (name.rsplit("/", 1)[-1] or "model")[:_LABEL_MAX]
    try:
        try:
            fd = os.memfd_create(label, os.MFD_ALLOW_SEALING | _MFD_NOEXEC_SEAL)
        except OSError as e:
            if e.errno != errno.EINVAL:  # before Linux 6.3: no MFD_NOEXEC_SEAL
                raise
            fd = os.memfd_create(label, os.MFD_ALLOW_SEALING)
    except OSError as e:
        raise _no_room(name, e) from None
    try:
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        done = 0
        while done < len(view):
            done += os.write(fd, view[done : done + _WRITE_CHUNK])
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS != SEALS:
            raise InputError(f"the kernel did not seal '{name}'", code="seal-failed")
        if floor:
            high = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)  # no close-on-exec: inherited
            os.close(fd)
            fd = high
        os.set_inheritable(fd, True)
    except OSError as e:
        os.close(fd)
        raise _no_room(name, e) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _no_room(name: str, e: OSError) -> InputError:
    if e.errno in (errno.EMFILE, errno.ENFILE):
        return InputError(
            f"no descriptor left for a sealed copy of '{name}' (raise ulimit -n)",
            code="too-many-files",
        )
    if e.errno in (errno.ENOMEM, errno.ENOSPC):
        return InputError(
            f"no memory left for a sealed copy of '{name}': sealed mode holds the whole "
            "model in memory (the container's memory limit counts it)",
            code="out-of-memory",
        )
    return InputError(f"cannot make a sealed copy of '{name}': {e.strerror or e}", code="sealed")
