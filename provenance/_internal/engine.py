"""The hashing engine: byte ranges of regular files in, digests out.

It knows open files and digests, nothing of manifests, walks or signatures,
so the same engine hashes models, datasets and pipeline artifacts.

Why it is shaped like this:

* ``hashlib`` and ``blake3`` release the GIL for large updates and
  ``readinto`` releases it for the read, so plain threads keep every core busy
  on big files; on small files the per-task overhead dominates, so many small
  files go into one task.
* Each worker owns one reusable buffer; memory is workers x buffer size,
  whatever the model's size.
* Special files are never opened for reading a byte: a FIFO would block
  forever. Files are opened with ``O_NONBLOCK`` and checked with ``fstat``
  after opening, so a file swapped for a FIFO between the walk and the open
  is still refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provenance.errors import InputError

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["ALGORITHMS", "FileEntry", "Task", "describe_mode", "hash_tasks"]

#: Hash algorithms allowed anywhere in provenance (security invariant 6).
ALGORITHMS: tuple[str, ...] = ("sha256", "sha384", "sha512", "blake2b", "blake3")

_BUFFER_SIZE = 1 << 20  # per worker: big enough to amortise calls, small enough to stay in L2
_SMALL_FILE = 1 << 20  # files below this are batched
_BATCH_BYTES = 16 << 20  # target bytes in one batch of small files
_BATCH_FILES = 512  # and at most this many files in one batch
_O_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _constructor(algorithm: str) -> Callable[..., hashlib._Hash]:
    """The hasher factory for an allowed algorithm (direct constructors are fastest)."""
    if algorithm == "sha256":
        return hashlib.sha256
    if algorithm == "sha384":
        return hashlib.sha384
    if algorithm == "sha512":
        return hashlib.sha512
    if algorithm == "blake2b":
        return hashlib.blake2b
    if algorithm == "blake3":
        import blake3  # imported lazily: a compiled extension most runs never need

        return blake3.blake3  # type: ignore[no-any-return]
    raise InputError(
        f"unsupported hash algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
    )


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of the model: its manifest name and where to read it."""

    name: str  # relative POSIX path; "." for a single-file model
    path: str  # path to open
    size: int


def describe_mode(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


@dataclass(frozen=True, slots=True)
class Task:
    """A byte range of one file to hash into one digest."""

    entry: FileEntry
    start: int
    end: int


_local = threading.local()


def _buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(_BUFFER_SIZE))
    return buf


def _open_regular(entry: FileEntry) -> int:
    """Open without blocking and refuse anything that is not a regular file."""
    try:
        fd = os.open(entry.path, _O_FLAGS)
    except OSError as e:
        raise InputError(f"cannot open '{entry.name}': {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise InputError(f"cannot read '{entry.name}': {e.strerror}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"'{entry.name}' is {describe_mode(mode)}; refusing to read it")
    return fd


def _changed(entry: FileEntry) -> InputError:
    return InputError(f"'{entry.name}' changed while it was being hashed")


def _hash_small(entry: FileEntry, ctor: Callable[..., hashlib._Hash]) -> bytes:
    """A whole small file in one read; asking for one byte more detects growth.

    The hottest loop for datasets of many small files, so _open_regular is
    inlined here.
    """
    try:
        fd = os.open(entry.path, _O_FLAGS)
    except OSError as e:
        raise InputError(f"cannot open '{entry.name}': {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"'{entry.name}' is {describe_mode(mode)}; refusing to read it")
        data = os.read(fd, entry.size + 1)
    except OSError as e:
        raise InputError(f"cannot read '{entry.name}': {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) != entry.size:
        raise _changed(entry)
    return ctor(data).digest()


class _Counter:
    """Bytes hashed so far, added to by workers and drained by the caller's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    def take(self) -> int:
        with self._lock:
            n, self._bytes = self._bytes, 0
        return n


def _hash_range(task: Task, ctor: Callable[..., hashlib._Hash], counter: _Counter) -> bytes:
    """A byte range streamed through this thread's reusable buffer."""
    entry = task.entry
    fd = _open_regular(entry)
    try:
        hasher = ctor()
        remaining = task.end - task.start
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, task.start, remaining, os.POSIX_FADV_SEQUENTIAL)
        buf = _buffer()
        offset = task.start
        while remaining:
            want = min(remaining, len(buf))
            n = os.preadv(fd, [buf[:want]], offset)
            if n == 0:
                raise _changed(entry)
            hasher.update(buf[:n])
            counter.add(n)
            remaining -= n
            offset += n
        if task.end == entry.size and os.fstat(fd).st_size != entry.size:
            raise _changed(entry)
        return hasher.digest()
    except OSError as e:
        raise InputError(f"cannot read '{entry.name}': {e.strerror}") from None
    finally:
        os.close(fd)


def _small_batches(tasks: Sequence[Task], small: list[int]) -> Iterator[list[int]]:
    """Group small tasks so progress reports and GIL hand-offs stay infrequent."""
    batch: list[int] = []
    size = 0
    for i in small:
        batch.append(i)
        size += tasks[i].end - tasks[i].start
        if size >= _BATCH_BYTES or len(batch) >= _BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_tasks(
    tasks: Sequence[Task],
    algorithm: str,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[bytes]:
    """Hash every task; digests come back in task order.

    Large ranges go to a thread pool, where hashing and reading run without
    the GIL. Small files are hashed by the calling thread meanwhile: their
    cost is per-file Python work that holds the GIL, so spreading them over
    threads only adds contention (measured: slower than one thread).

    ``progress`` is called from the calling thread with the number of bytes
    hashed since its last call (several times a second within large files),
    so a progress bar needs no locking.
    """
    ctor = _constructor(algorithm)  # fails early on a bad name, before any thread starts
    digests: list[bytes] = [b""] * len(tasks)
    if workers is None:
        workers = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    workers = max(1, workers or 1)

    counter = _Counter()

    def run(batch: list[int]) -> None:
        small_bytes = 0
        for i in batch:
            t = tasks[i]
            if t.start == 0 and t.end == t.entry.size and t.end < _SMALL_FILE:
                digests[i] = _hash_small(t.entry, ctor)
                small_bytes += t.end
            else:
                digests[i] = _hash_range(t, ctor, counter)
        counter.add(small_bytes)

    def report() -> None:
        n = counter.take()
        if progress and n:
            progress(n)

    large = [i for i, t in enumerate(tasks) if t.end - t.start >= _SMALL_FILE]
    small = [i for i, t in enumerate(tasks) if t.end - t.start < _SMALL_FILE]
    if workers == 1 or len(large) <= 1:
        for batch in [*([i] for i in large), *_small_batches(tasks, small)]:
            run(batch)
            report()
        return digests

    # A bounded window of submissions: a million shards must not become a
    # million queued futures.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provenance-hash") as pool:
        pending: set[Future[None]] = set()
        queue = iter(large)
        limit = workers * 2

        def refill() -> None:
            for i in queue:
                pending.add(pool.submit(run, [i]))
                if len(pending) >= limit:
                    return

        def harvest(finished: set[Future[None]]) -> None:
            pending.difference_update(finished)
            for f in finished:
                f.result()  # re-raises a worker's error here
            refill()
            report()

        try:
            refill()
            for batch in _small_batches(tasks, small):
                run(batch)
                harvest({f for f in pending if f.done()})
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                harvest(finished)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return digests
