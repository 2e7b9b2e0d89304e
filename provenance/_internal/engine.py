"""The hashing engine: byte ranges of regular files in, digests out.

It knows open files and digests, nothing of manifests, walks or signatures,
so the same engine hashes models, datasets and pipeline artifacts.

Why it is shaped like this:

* ``hashlib`` and ``blake3`` release the GIL for large updates and
  ``os.preadv`` releases it for the read, so plain threads keep every core
  busy on big files; on small files the per-task overhead dominates, so many
  small files go into one batch, hashed by the calling thread.
* Each thread owns one reusable buffer; memory is threads x buffer size,
  whatever the model's size.
* Worker threads *pull* the next range when they are free, largest first
  (so one big file listed last cannot leave the other cores idle at the
  end). Nothing is queued ahead: the submission window is the set of ranges
  being hashed, one per worker. No ``concurrent.futures``: its import and
  per-future bookkeeping were measurable in a fresh process and bought
  nothing here.
* Special files are never read: a FIFO would block forever. Files are
  opened with ``O_NONBLOCK`` and every descriptor, whoever opened it, is
  checked with ``fstat`` before its first byte is read, so a file swapped
  for a FIFO between the walk and the open is still refused.
* A file whose size differs from what the walk saw, or that ends early
  while being read, is reported as changed, never hashed as it happens to
  be.

Two seams for callers that need more than digests:

* ``opener`` in :func:`hash_tasks` decides how a file is opened (relative to
  a verified directory descriptor with ``O_NOFOLLOW``, or a descriptor the
  caller already holds); the engine still checks and closes what it gets.
* :func:`hash_into` reads a byte range into a caller's buffer and hashes it
  from there, so a verified loader reads each byte once, into the memory
  that becomes its tensors.
* ``keep`` in :func:`hash_tasks` does the same for a whole model: each file
  is read once into memory of its own (an anonymous map for a large file,
  the read's ``bytes`` for a small one) and hashed from that memory, which
  the caller keeps once the digests match the signature. The bytes hashed
  are the bytes kept, whatever happens to the file afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from provenance.errors import InputError, UsageError

__all__ = [
    "ALGORITHMS",
    "FileEntry",
    "Kept",
    "Opener",
    "Task",
    "describe_mode",
    "hash_into",
    "hash_tasks",
    "open_entry",
]

#: Hash algorithms allowed anywhere in provenance (security invariant 6).
ALGORITHMS: tuple[str, ...] = ("sha256", "sha384", "sha512", "blake2b", "blake3")

_BUFFER_SIZE = 1 << 20  # per thread: big enough to amortise calls, small enough to stay in L2
_SMALL_FILE = 1 << 20  # files below this are batched
_BATCH_BYTES = 16 << 20  # target bytes in one batch of small files
_BATCH_FILES = 512  # and at most this many files in one batch
_REPORT_EVERY = 0.2  # seconds between progress reports while workers run
_FADVISE = hasattr(os, "posix_fadvise")
_O_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class _Hasher(Protocol):
    """What the engine needs of a hash object (hashlib's and blake3's both fit)."""

    def update(self, data: bytes | memoryview, /) -> object: ...
    def digest(self) -> bytes: ...


_Constructor = Callable[..., _Hasher]


def _constructor(algorithm: str) -> _Constructor:
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

        return blake3.blake3  # type: ignore[no-any-return,unused-ignore]
    raise InputError(
        f"unsupported hash algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
    )


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of the model: its manifest name and where to read it."""

    name: str  # relative POSIX path; "." for a single-file model
    path: str  # path to open
    size: int
    #: (st_dev, st_ino) the walk saw. The open descriptor must be that very
    #: file: a file or folder swapped for a link (or another file) between the
    #: walk and the read is refused, never hashed through the swap.
    ident: tuple[int, int] | None = None
    #: The path itself is a symbolic link the walk chose to follow; any other
    #: entry is opened with O_NOFOLLOW.
    link: bool = False


Opener = Callable[[FileEntry], int]
"""Opens a file for hashing and returns a descriptor that the engine owns from
then on: it checks that the descriptor is a regular file, reads it, and closes
it. An ``OSError`` raised here is reported as the file being unreadable. It
is called from the engine's worker threads too, so it must be thread-safe."""


Kept = dict[str, "bytes | mmap.mmap"]
"""File name -> the very bytes that were hashed (see ``keep`` in :func:`hash_tasks`)."""


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


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_entry(entry: FileEntry) -> int:
    """The default opener: ``os.open`` read-only, non-blocking, close-on-exec,
    and ``O_NOFOLLOW`` unless the walk followed this very link.

    Non-blocking, so that opening a FIFO does not wait for a writer; the
    engine then refuses it when it checks the descriptor (type and identity).
    """
    return os.open(entry.path, _O_FLAGS if entry.link else _O_FLAGS | _O_NOFOLLOW)


def _check_fd(fd: int, entry: FileEntry) -> None:
    """The descriptor is a regular file, and the one the walk saw when it recorded it."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(entry.name, st.st_mode)
    if entry.ident is not None and (st.st_dev, st.st_ino) != entry.ident:
        raise _replaced(entry.name)


def _replaced(name: str) -> InputError:
    return InputError(
        f"'{name}' was replaced after the tree was listed (a link or another file was "
        "swapped in); refusing to read it",
        code="changed-while-hashing",
    )


def _unreadable(entry: FileEntry, verb: str, e: OSError) -> InputError:
    return InputError(f"cannot {verb} '{entry.name}': {e.strerror or e}", code="unreadable")


def _not_regular(name: str, mode: int) -> InputError:
    return InputError(
        f"'{name}' is {describe_mode(mode)}; refusing to read it", code="special-file"
    )


def _changed(name: str) -> InputError:
    return InputError(f"'{name}' changed while it was being hashed", code="changed-while-hashing")


def _open_checked(entry: FileEntry, opener: Opener | None) -> int:
    """A descriptor of a regular file for ``entry``; anything else is closed and refused."""
    try:
        fd = open_entry(entry) if opener is None else opener(entry)
    except OSError as e:
        raise _open_failed(entry, e) from None
    try:
        _check_fd(fd, entry)
    except OSError as e:
        os.close(fd)
        raise _unreadable(entry, "read", e) from None
    except InputError:
        os.close(fd)
        raise
    return fd


def _open_failed(entry: FileEntry, e: OSError) -> InputError:
    # O_NOFOLLOW on a link: ELOOP. It was a regular file when the tree was listed.
    if e.errno == errno.ELOOP and not entry.link:
        return _replaced(entry.name)
    return _unreadable(entry, "open", e)


def _hash_small(
    entry: FileEntry, ctor: _Constructor, opener: Opener | None, keep: Kept | None = None
) -> bytes:
    """A whole small file in one read; asking for one byte more detects growth.

    The hottest loop for datasets of many small files, so the open and the
    check are inlined here (one ``open``, one ``fstat``, one ``read``).
    """
    try:
        fd = open_entry(entry) if opener is None else opener(entry)
    except OSError as e:
        raise _open_failed(entry, e) from None
    try:
        _check_fd(fd, entry)
        data = os.read(fd, entry.size + 1)
    except OSError as e:
        raise _unreadable(entry, "read", e) from None
    finally:
        os.close(fd)
    if len(data) != entry.size:
        raise _changed(entry.name)
    if keep is not None:
        keep[entry.name] = data
    return ctor(data).digest()


def _hash_range(
    task: Task,
    ctor: _Constructor,
    opener: Opener | None,
    buf: memoryview,
    done: list[int],
    slot: int,
    cancel: threading.Event | None,
    target: memoryview | None = None,
) -> bytes:
    """A byte range streamed through this thread's reusable buffer.

    The loop holds the GIL only between two GIL-free calls (``preadv`` and
    ``update``), and adds what it hashed to its own slot of ``done``: one
    writer per slot, so no lock is taken per chunk.

    With ``target`` (the whole file's kept memory), each chunk is read into
    its own place there instead, and hashed from it while still in cache.
    """
    entry = task.entry
    fd = _open_checked(entry, opener)
    try:
        if _FADVISE:  # a no-op on cached pages, a larger read-ahead on cold ones
            os.posix_fadvise(fd, task.start, task.end - task.start, os.POSIX_FADV_SEQUENTIAL)
        hasher = ctor()
        update = hasher.update
        size = len(buf)
        whole = [buf]
        offset, end = task.start, task.end
        while offset < end:
            left = end - offset
            if target is not None:
                chunk = target[offset : offset + min(left, size)]
                n = os.preadv(fd, [chunk], offset)
                if not n:
                    raise _changed(entry.name)
                update(chunk[:n] if n < len(chunk) else chunk)
            else:
                n = os.preadv(fd, whole if left >= size else [buf[:left]], offset)
                if n == size:
                    update(buf)
                elif n:
                    update(buf[:n])
                else:
                    raise _changed(entry.name)  # it ended early: it shrank
            offset += n
            done[slot] += n
            if cancel is not None and cancel.is_set():
                return b""  # another thread failed; the caller raises its error
        if end == entry.size and os.fstat(fd).st_size != entry.size:
            raise _changed(entry.name)
        return hasher.digest()
    except OSError as e:
        raise _unreadable(entry, "read", e) from None
    finally:
        os.close(fd)


_FILL_CHUNK = 8 << 20  # a kept file is read in pieces this large, by whichever thread is free


class _Fill:
    """One range being read into its kept memory: any free thread reads, one hashes.

    Filling fresh memory (page faults, zeroing, the copy) costs about as much
    as hashing it, and a digest can only be computed in order, by one thread.
    So the thread that owns the range hashes piece after piece while idle
    threads read the pieces ahead of it: one large file takes the longer of
    the two, not their sum. Pieces are claimed in order under the lock; the
    owner reads a piece itself when nobody has claimed it yet.
    """

    def __init__(self, task: Task, target: memoryview, fd: int) -> None:
        self.task = task
        self.target = target
        self.fd = fd
        self.count = (task.end - task.start + _FILL_CHUNK - 1) // _FILL_CHUNK
        self.claimed = 0  # pieces [0, claimed) have a reader
        self.ready = [False] * self.count
        self.inflight = 0  # pieces being read right now
        self.failed: BaseException | None = None
        self.cond = threading.Condition()

    def claim(self, only: int | None = None) -> int | None:
        """The next unclaimed piece (``only``: that one, if still unclaimed), or None."""
        with self.cond:
            i = self.claimed
            if self.failed is not None or i >= self.count or (only is not None and i != only):
                return None
            self.claimed = i + 1
            self.inflight += 1
            return i

    def read(self, i: int) -> None:
        """Read piece ``i`` (claimed by this thread) into its place in the kept memory."""
        t = self.task
        start = t.start + i * _FILL_CHUNK
        view = self.target[start : min(t.end, start + _FILL_CHUNK)]
        error: BaseException | None = None
        try:
            got = 0
            while got < len(view):
                n = os.preadv(self.fd, [view[got:]], start + got)
                if not n:
                    raise _changed(t.entry.name)  # it ended early: it shrank
                got += n
        except OSError as e:
            error = _unreadable(t.entry, "read", e)
        except BaseException as e:  # handed to the owner, which raises it
            error = e
        with self.cond:
            self.inflight -= 1
            if error is not None:
                self.failed = self.failed or error
            else:
                self.ready[i] = True
            self.cond.notify_all()

    def wait(self, i: int) -> None:
        with self.cond:
            while not self.ready[i] and self.failed is None:
                self.cond.wait()
            if self.failed is not None:
                raise self.failed

    def settle(self) -> None:
        """Stop handing out pieces and wait for readers still at work (before the close)."""
        with self.cond:
            self.claimed = self.count
            while self.inflight:
                self.cond.wait()


class _Fills:
    """The ranges being filled, for threads with nothing else to do to help read."""

    def __init__(self) -> None:
        self.active: list[_Fill] = []
        self.lock = threading.Lock()

    def help(self, cancel: threading.Event | None) -> None:
        """Read pieces of any range being filled until none is left unclaimed."""
        while cancel is None or not cancel.is_set():
            with self.lock:
                fills = list(self.active)
            for fill in fills:
                i = fill.claim()
                if i is not None:
                    fill.read(i)
                    break
            else:
                return


def _fill_range(
    task: Task,
    ctor: _Constructor,
    opener: Opener | None,
    target: memoryview,
    done: list[int],
    slot: int,
    cancel: threading.Event | None,
    fills: _Fills,
) -> bytes:
    """A range read into ``target`` (with help, see :class:`_Fill`) and hashed from it, in order."""
    entry = task.entry
    fd = _open_checked(entry, opener)
    fill = _Fill(task, target, fd)
    with fills.lock:
        fills.active.append(fill)
    try:
        if _FADVISE:
            os.posix_fadvise(fd, task.start, task.end - task.start, os.POSIX_FADV_SEQUENTIAL)
        hasher = ctor()
        for i in range(fill.count):
            if fill.claim(only=i) is not None:
                fill.read(i)  # nobody was ahead: read it here
            fill.wait(i)
            start = task.start + i * _FILL_CHUNK
            end = min(task.end, start + _FILL_CHUNK)
            hasher.update(target[start:end])
            done[slot] += end - start
            if cancel is not None and cancel.is_set():
                return b""  # another thread failed; the caller raises its error
        if task.end == entry.size and os.fstat(fd).st_size != entry.size:
            raise _changed(entry.name)
        return hasher.digest()
    except OSError as e:
        raise _unreadable(entry, "read", e) from None
    finally:
        with fills.lock:
            fills.active.remove(fill)
        fill.settle()
        os.close(fd)


def hash_into(
    fd: int,
    start: int,
    end: int,
    buffer: memoryview,
    algorithm: str,
    *,
    name: str = "file",
) -> bytes:
    """Read bytes ``[start, end)`` of ``fd`` into ``buffer`` and hash them from there.

    For verified loading: each byte is read once, into memory the caller owns
    (the buffer that becomes a tensor), and hashed from that same memory, a
    chunk at a time while it is still in cache. The bytes land at
    ``buffer[0 : end - start]``; the digest is returned. Compare it with the
    verified manifest before using the buffer.

    ``fd`` stays open (the caller owns it) and must be a regular file; a
    range that ends early (the file shrank) raises ``InputError`` with code
    ``changed-while-hashing``, as does a read returning no bytes. ``name``
    only labels errors.
    """
    ctor = _constructor(algorithm)
    length = end - start
    if start < 0 or length < 0:
        raise UsageError(f"invalid byte range {start}:{end}")
    if not buffer.c_contiguous:
        raise UsageError("hash_into needs a contiguous buffer")
    view = buffer if buffer.format == "B" and buffer.ndim == 1 else buffer.cast("B")
    if view.readonly:
        raise UsageError("hash_into needs a writable buffer")
    if len(view) < length:
        raise UsageError(f"buffer of {len(view)} bytes cannot hold {length} bytes")
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(name, mode)
        hasher = ctor()
        done = 0
        while done < length:
            chunk = view[done : min(length, done + _BUFFER_SIZE)]
            n = os.preadv(fd, [chunk], start + done)
            if not n:
                raise _changed(name)
            hasher.update(chunk[:n])
            done += n
    except OSError as e:
        raise InputError(f"cannot read '{name}': {e.strerror or e}", code="unreadable") from None
    return hasher.digest()


_local = threading.local()


def _caller_buffer() -> memoryview:
    """The calling thread's buffer, kept between calls (worker threads own theirs)."""
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(_BUFFER_SIZE))
    return buf


def _small_batches(tasks: Sequence[Task], small: list[int]) -> Iterator[list[int]]:
    """Group small tasks so progress reports stay infrequent."""
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


def _targets(tasks: Sequence[Task], keep: Kept) -> dict[str, memoryview]:
    """Memory for every file not read whole in one small read: an anonymous map per file.

    Anonymous and private, so the pages are the process's own (a file
    mapping would show later changes to the file); allocated up front by the
    calling thread, so the workers only fill them. The map is zero-filled
    lazily: pages cost memory as they are read into, not before.
    """
    out: dict[str, memoryview] = {}
    for t in tasks:
        e = t.entry
        if e.name in out or (t.start == 0 and t.end == e.size and e.size < _SMALL_FILE):
            continue
        if e.size == 0:
            keep[e.name] = b""
            continue
        # Private: a shared anonymous map is shmem, whose pages fault in through
        # tmpfs at about twice the cost. No MADV_HUGEPAGE: with the kernel's
        # usual defrag=madvise it compacts memory synchronously on first touch,
        # and a 2 GiB load measured 1.84x load_file with it against 1.35x without.
        try:
            m = mmap.mmap(-1, e.size, flags=_MAP_PRIVATE) if _MAP_PRIVATE else mmap.mmap(-1, e.size)
        except (OSError, OverflowError) as x:
            raise InputError(
                f"no memory to read '{e.name}' ({e.size} bytes) into: "
                f"{getattr(x, 'strerror', None) or x}",
                code="out-of-memory",
            ) from None
        keep[e.name] = m
        out[e.name] = memoryview(m)
    return out


_MAP_PRIVATE: int = getattr(mmap, "MAP_PRIVATE", 0)


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hash_tasks(
    tasks: Sequence[Task],
    algorithm: str,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    opener: Opener | None = None,
    keep: Kept | None = None,
) -> list[bytes]:
    """Hash every task; digests come back in task order.

    Large ranges go to worker threads, where reading and hashing run without
    the GIL. Small files are hashed by the calling thread meanwhile: their
    cost is per-file Python work that holds the GIL, so spreading them over
    threads only adds contention (measured: slower than one thread).

    ``progress`` is called from the calling thread with the number of bytes
    hashed since its last call (several times a second within large files),
    so a progress bar needs no locking.

    ``opener`` opens each file (default :func:`open_entry`); whatever it
    returns is checked to be a regular file, read, and closed by the engine.

    ``keep``, a dict, receives each file's bytes by name: the memory they
    were read into and hashed from. A file hashed in several ranges (shards)
    gets one buffer the ranges fill side by side. It is the caller's to
    drop when a digest does not match.
    """
    if keep is None:
        return _hash_tasks(tasks, algorithm, workers, progress, opener, None)
    try:
        return _hash_tasks(tasks, algorithm, workers, progress, opener, keep)
    except BaseException:
        # Nothing partial escapes: a map the failure left half read (or never
        # read: zeros) must not pass for a file's content.
        keep.clear()
        raise


def _hash_tasks(
    tasks: Sequence[Task],
    algorithm: str,
    workers: int | None,
    progress: Callable[[int], None] | None,
    opener: Opener | None,
    keep: Kept | None,
) -> list[bytes]:
    ctor = _constructor(algorithm)  # fails early on a bad name, before any thread starts
    digests: list[bytes] = [b""] * len(tasks)
    targets = _targets(tasks, keep) if keep is not None else None
    workers = max(1, workers if workers is not None else _default_workers())
    large = [i for i, t in enumerate(tasks) if t.end - t.start >= _SMALL_FILE]
    small = [i for i, t in enumerate(tasks) if t.end - t.start < _SMALL_FILE]
    threads = min(workers, len(large)) if workers > 1 else 0
    done = [0] * (threads + 1)  # bytes hashed, one slot per thread; slot 0 is the caller's
    reported = 0

    def report() -> None:
        nonlocal reported
        if progress is not None:
            total = sum(done)
            if total != reported:
                progress(total - reported)
                reported = total

    def hash_small_batch(batch: list[int]) -> None:
        hashed = 0
        for i in batch:
            t = tasks[i]
            target = targets.get(t.entry.name) if targets is not None else None
            if target is None and t.start == 0 and t.end == t.entry.size:
                digests[i] = _hash_small(t.entry, ctor, opener, keep)
                hashed += t.end
            else:
                buf = _caller_buffer()
                digests[i] = _hash_range(t, ctor, opener, buf, done, 0, None, target)
        done[0] += hashed

    def target_of(i: int) -> memoryview | None:
        return targets.get(tasks[i].entry.name) if targets is not None else None

    fills = _Fills() if targets else None

    def hash_large(i: int, buf: memoryview, slot: int, cancel: threading.Event | None) -> bytes:
        target = target_of(i)
        if target is not None and fills is not None:
            return _fill_range(tasks[i], ctor, opener, target, done, slot, cancel, fills)
        return _hash_range(tasks[i], ctor, opener, buf, done, slot, cancel)

    if threads == 0:
        for i in large:
            digests[i] = hash_large(i, _caller_buffer(), 0, None)
            report()
        for batch in _small_batches(tasks, small):
            hash_small_batch(batch)
            report()
        return digests

    # Largest first (stable, so equal shards keep file order): the classic
    # longest-processing-time rule bounds the idle tail at the end.
    large.sort(key=lambda i: tasks[i].start - tasks[i].end)
    queue = iter(large)
    lock = threading.Lock()
    cancel = threading.Event()
    failures: list[BaseException] = []

    def work(slot: int) -> None:
        buf = memoryview(bytearray(_BUFFER_SIZE))
        try:
            while not cancel.is_set():
                with lock:
                    i = next(queue, None)
                if i is None:
                    if fills is not None:
                        fills.help(cancel)  # read ahead for ranges still being hashed
                    return
                digests[i] = hash_large(i, buf, slot, cancel)
        except BaseException as e:  # handed to the calling thread, which re-raises it
            failures.append(e)
            cancel.set()

    pool = [
        threading.Thread(target=work, args=(slot,), name=f"provenance-hash-{slot}", daemon=True)
        for slot in range(1, threads + 1)
    ]
    for thread in pool:
        thread.start()
    try:
        for batch in _small_batches(tasks, small):
            if cancel.is_set():
                break
            hash_small_batch(batch)
            report()
        if fills is not None:
            # Kept files: with the small files done, this thread reads ahead too.
            while not cancel.is_set() and any(t.is_alive() for t in pool):
                fills.help(cancel)
                next(t for t in pool if t.is_alive() or t is pool[-1]).join(0.002)
                report()
        for thread in pool:
            if progress is None:
                thread.join()
            else:
                while thread.is_alive():
                    thread.join(_REPORT_EVERY)
                    report()
    except BaseException:
        cancel.set()
        for thread in pool:
            thread.join()
        raise
    if failures:
        raise failures[0]
    report()
    return digests
