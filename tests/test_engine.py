"""The hashing engine's seams and safety checks, on real files (no mocks).

* ``opener``: the caller decides how each file is opened; the engine still
  refuses a descriptor that is not a regular file, and closes what it gets.
* ``hash_into``: read a byte range into a caller's buffer and hash it there.
* A file that changes between the walk and the hash is reported, not hashed.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import threading
from pathlib import Path

import pytest

from provenance import hashing
from provenance._internal import engine
from provenance._internal.engine import FileEntry, Task, hash_into, hash_tasks
from provenance.errors import InputError, UsageError
from provenance.manifest import Serialization

BUF = engine._BUFFER_SIZE
SMALL = engine._SMALL_FILE
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
needs_nofollow = pytest.mark.skipif(not O_NOFOLLOW, reason="no O_NOFOLLOW here")


def write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def entry(path: Path, size: int | None = None) -> FileEntry:
    return FileEntry(path.name, str(path), path.stat().st_size if size is None else size)


def whole(e: FileEntry) -> Task:
    return Task(e, 0, e.size)


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as e:
        assert e.errno == errno.EBADF
        return False
    return True


class CountingOpener:
    """Opens relative to a directory descriptor, never following a final link."""

    def __init__(self, root: Path) -> None:
        self.dir_fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        self.calls: list[str] = []
        self.fds: list[int] = []
        self._lock = threading.Lock()  # called from worker threads too

    def __call__(self, e: FileEntry) -> int:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | O_NOFOLLOW
        fd = os.open(e.name, flags, dir_fd=self.dir_fd)
        with self._lock:
            self.calls.append(e.name)
            self.fds.append(fd)
        return fd

    def close(self) -> None:
        os.close(self.dir_fd)


# --------------------------------------------------------------------- opener


SIZES = [0, 1, 4096, SMALL - 1, SMALL, SMALL + 1, 3 * BUF + 17]


@needs_nofollow
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_opener_opens_every_file_and_digests_match(tmp_path, workers):
    contents = {f"f{i}": write(tmp_path / f"f{i}", size) for i, size in enumerate(SIZES)}
    tasks = [whole(entry(tmp_path / name)) for name in contents]
    opener = CountingOpener(tmp_path)
    try:
        digests = hash_tasks(tasks, "sha256", workers=workers, opener=opener)
    finally:
        opener.close()
    assert digests == [hashlib.sha256(c).digest() for c in contents.values()]
    assert sorted(opener.calls) == sorted(contents)
    assert not any(fd_is_open(fd) for fd in opener.fds)  # the engine closed each one


@needs_nofollow
def test_opener_sees_each_shard(tmp_path):
    data = write(tmp_path / "w.bin", 5 * BUF + 3)
    e = entry(tmp_path / "w.bin")
    tasks = [Task(e, s, min(s + 2 * BUF, e.size)) for s in range(0, e.size, 2 * BUF)]
    opener = CountingOpener(tmp_path)
    try:
        digests = hash_tasks(tasks, "sha384", workers=2, opener=opener)
    finally:
        opener.close()
    assert digests == [hashlib.sha384(data[t.start : t.end]).digest() for t in tasks]
    assert opener.calls == ["w.bin"] * len(tasks)


@needs_nofollow
@pytest.mark.parametrize("size", [10, 3 * BUF])  # the small-file path and the range path
def test_symlink_refused_through_a_nofollow_opener(tmp_path, size):
    target = tmp_path / "real.bin"
    write(target, size)
    (tmp_path / "link.bin").symlink_to(target.name)
    # The entry names the link, as a hostile tree swapped in after the walk would.
    tasks = [whole(FileEntry("link.bin", str(tmp_path / "link.bin"), size))]
    opener = CountingOpener(tmp_path)
    try:
        with pytest.raises(InputError) as info:
            hash_tasks(tasks, "sha256", workers=2, opener=opener)
    finally:
        opener.close()
    # ELOOP from O_NOFOLLOW: a link where the walk saw a file was swapped in.
    assert info.value.code == "changed-while-hashing"
    assert "link.bin" in str(info.value)


@needs_nofollow
def test_hash_entries_passes_the_opener_through(tmp_path):
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    contents = {"a.bin": write(root / "a.bin", 100), "sub/b.bin": write(root / "sub" / "b.bin", 3)}
    found = hashing.walk(root)
    opener = CountingOpener(root)
    try:
        resources = hashing.hash_entries(
            found.files, Serialization(method="files", hash_type="sha256"), opener=opener
        )
    finally:
        opener.close()
    assert sorted(opener.calls) == sorted(contents)
    assert {r.name: r.digest for r in resources} == {
        n: hashlib.sha256(c).digest() for n, c in contents.items()
    }


@needs_fifo
@pytest.mark.parametrize("size", [0, 10, 3 * BUF])
@pytest.mark.parametrize("workers", [1, 2])
def test_opener_returning_a_fifo_is_refused_and_closed(tmp_path, size, workers):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    write(tmp_path / "ok-1.bin", 2 * BUF)
    write(tmp_path / "ok-2.bin", 2 * BUF)
    handed: list[int] = []

    def opener(e: FileEntry) -> int:
        # A caller's opener with a bug: it opens whatever it is told to, FIFOs too.
        path = str(fifo) if e.name == "pipe" else e.path
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        handed.append(fd)
        return fd

    tasks = [
        whole(entry(tmp_path / "ok-1.bin")),
        whole(FileEntry("pipe", str(fifo), size)),
        whole(entry(tmp_path / "ok-2.bin")),
    ]
    with pytest.raises(InputError) as info:
        hash_tasks(tasks, "sha256", workers=workers, opener=opener)
    assert info.value.code == "special-file"
    assert "'pipe' is a FIFO" in str(info.value)
    assert not any(fd_is_open(fd) for fd in handed)
    assert not [t for t in threading.enumerate() if t.name.startswith("provenance-hash")]


def test_opener_oserror_is_an_unreadable_file(tmp_path):
    def opener(e: FileEntry) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", e.path)

    write(tmp_path / "f", 5)
    with pytest.raises(InputError) as info:
        hash_tasks([whole(entry(tmp_path / "f"))], "sha256", opener=opener)
    assert info.value.code == "unreadable"
    assert "cannot open 'f': Permission denied" in str(info.value)


def test_default_opener_refuses_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError) as info:
        hash_tasks([whole(FileEntry("d", str(tmp_path / "d"), 10))], "sha256")
    assert info.value.code == "special-file"


# ------------------------------------------------------------------ hash_into


@pytest.mark.parametrize("size", [0, 1, BUF - 1, BUF, BUF + 1, 2 * BUF, 3 * BUF + 17])
@pytest.mark.parametrize("algorithm", ["sha256", "blake2b"])
def test_hash_into_equals_hashlib(tmp_path, size, algorithm):
    data = write(tmp_path / "f", size)
    buffer = bytearray(size)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        digest = hash_into(fd, 0, size, memoryview(buffer), algorithm)
        assert fd_is_open(fd)  # the caller's descriptor stays the caller's
    finally:
        os.close(fd)
    assert digest == hashlib.new(algorithm, data).digest()
    assert buffer == data  # the very bytes that were hashed


@pytest.mark.parametrize(
    ("start", "end"), [(0, 0), (5, 6), (BUF - 1, BUF + 1), (7, 2 * BUF + 7), (BUF, 3 * BUF)]
)
def test_hash_into_ranges_and_larger_buffers(tmp_path, start, end):
    data = write(tmp_path / "f", 3 * BUF)
    buffer = bytearray(end - start + 100)
    with open(tmp_path / "f", "rb") as f:
        digest = hash_into(f.fileno(), start, end, memoryview(buffer), "sha256")
    assert digest == hashlib.sha256(data[start:end]).digest()
    assert buffer[: end - start] == data[start:end]
    assert buffer[end - start :] == bytes(100)  # nothing written past the range


def test_hash_into_a_typed_buffer(tmp_path):
    import array

    data = write(tmp_path / "f", 4096)
    floats = array.array("f", bytes(4096))  # what becomes a tensor: not a byte buffer
    with open(tmp_path / "f", "rb") as f:
        digest = hash_into(f.fileno(), 0, 4096, memoryview(floats), "sha256")
    assert digest == hashlib.sha256(data).digest()
    assert floats.tobytes() == data


@pytest.mark.parametrize("size", [0, 10, BUF, 2 * BUF + 5])
def test_hash_into_a_range_past_the_end_is_a_changed_file(tmp_path, size):
    write(tmp_path / "f", size)
    buffer = memoryview(bytearray(size + BUF))
    with open(tmp_path / "f", "rb") as f, pytest.raises(InputError) as info:
        hash_into(f.fileno(), 0, size + 1, buffer, "sha256", name="weights.bin")
    assert info.value.code == "changed-while-hashing"
    assert "'weights.bin' changed while it was being hashed" in str(info.value)


@needs_fifo
def test_hash_into_refuses_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    fd = os.open(tmp_path / "pipe", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(InputError) as info:
            hash_into(fd, 0, 10, memoryview(bytearray(10)), "sha256", name="pipe")
    finally:
        os.close(fd)
    assert info.value.code == "special-file"


def test_hash_into_refuses_bad_buffers_and_algorithms(tmp_path):
    write(tmp_path / "f", 100)
    with open(tmp_path / "f", "rb") as f:
        fd = f.fileno()
        with pytest.raises(UsageError):
            hash_into(fd, 0, 100, memoryview(bytearray(99)), "sha256")
        with pytest.raises(UsageError):
            hash_into(fd, 0, 10, memoryview(bytes(10)), "sha256")
        with pytest.raises(UsageError):
            hash_into(fd, 10, 5, memoryview(bytearray(10)), "sha256")
        with pytest.raises(UsageError):  # every other byte: not contiguous
            hash_into(fd, 0, 5, memoryview(bytearray(20))[::2], "sha256")
        with pytest.raises(InputError):
            hash_into(fd, 0, 10, memoryview(bytearray(10)), "md5")


# ------------------------------------------------- changed between walk and hash


@pytest.mark.parametrize("size", [100, SMALL - 1, SMALL, 3 * BUF + 1])
@pytest.mark.parametrize("workers", [1, 2])
def test_file_truncated_between_walk_and_hash(tmp_path, size, workers):
    root = tmp_path / "model"
    root.mkdir()
    write(root / "a.bin", size)
    write(root / "b.bin", 2 * BUF)  # a second large file, so workers run in threads
    found = hashing.walk(root)
    os.truncate(root / "a.bin", size // 2)
    with pytest.raises(InputError) as info:
        hashing.hash_entries(found.files, Serialization(), workers=workers)
    assert info.value.code == "changed-while-hashing"
    assert "'a.bin' changed while it was being hashed" in str(info.value)


@pytest.mark.parametrize("size", [100, 3 * BUF + 1])
def test_file_grown_between_walk_and_hash(tmp_path, size):
    root = tmp_path / "model"
    root.mkdir()
    write(root / "a.bin", size)
    found = hashing.walk(root)
    with open(root / "a.bin", "ab") as f:
        f.write(b"more")
    with pytest.raises(InputError) as info:
        hashing.hash_entries(found.files, Serialization(), workers=2)
    assert info.value.code == "changed-while-hashing"


def test_truncated_shard_in_the_middle_is_detected(tmp_path):
    root = tmp_path / "model"
    root.mkdir()
    write(root / "w.bin", 4 * BUF)
    found = hashing.walk(root)
    os.truncate(root / "w.bin", BUF + 10)
    serialization = Serialization(method="shards", hash_type="sha256", shard_size=BUF)
    with pytest.raises(InputError) as info:
        hashing.hash_entries(found.files, serialization, workers=2)
    assert info.value.code == "changed-while-hashing"


# ------------------------------------------------------------------ scheduling


@pytest.mark.parametrize("workers", [2, 3])
def test_unequal_large_files_keep_task_order_and_report_every_byte(tmp_path, workers):
    sizes = [SMALL, 5 * BUF + 1, 10, 2 * BUF, 0, 7 * BUF, SMALL + 3]
    contents = [write(tmp_path / f"f{i}", s) for i, s in enumerate(sizes)]
    tasks = [whole(entry(tmp_path / f"f{i}")) for i in range(len(sizes))]
    seen: list[int] = []
    threads: set[str] = set()

    def progress(n: int) -> None:
        assert threading.current_thread() is threading.main_thread()
        threads.update(t.name for t in threading.enumerate() if t.name.startswith("provenance"))
        seen.append(n)

    digests = hash_tasks(tasks, "sha256", workers=workers, progress=progress)
    assert digests == [hashlib.sha256(c).digest() for c in contents]
    assert sum(seen) == sum(sizes)
    assert len(threads) <= workers  # memory stays workers x buffer size


def test_a_worker_failure_stops_the_others(tmp_path):
    tasks: list[Task] = []
    for i in range(6):
        write(tmp_path / f"f{i}", 2 * BUF)
        tasks.append(whole(entry(tmp_path / f"f{i}")))
    tasks.insert(2, whole(FileEntry("gone", str(tmp_path / "gone"), 2 * BUF)))
    with pytest.raises(InputError) as info:
        hash_tasks(tasks, "sha256", workers=2)
    assert "cannot open 'gone'" in str(info.value)
    assert not [t for t in threading.enumerate() if t.name.startswith("provenance-hash")]


# --------------------------------------------------------------------- keep

FILL = engine._FILL_CHUNK


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize(
    "sizes",
    [[5 * FILL + 3], [FILL, 2 * FILL + 1, SMALL + 1, 17, 0], [3 * FILL] * 4],
    ids=["one-large", "mixed", "four-large"],
)
def test_keep_holds_exactly_the_bytes_hashed(tmp_path, workers, sizes):
    """Kept memory equals the file, whichever threads read its pieces, and digests match."""
    data, entries = {}, []
    for i, size in enumerate(sizes):
        p = tmp_path / f"f{i}"
        data[p.name] = write(p, size)
        entries.append(entry(p))
    kept: dict[str, object] = {}
    opener = CountingOpener(tmp_path)
    digests = hash_tasks(
        [whole(e) for e in entries], "sha256", workers=workers, keep=kept, opener=opener
    )
    assert digests == [hashlib.sha256(data[e.name]).digest() for e in entries]
    assert {n: bytes(v) for n, v in kept.items()} == data  # type: ignore[call-overload]
    assert not any(fd_is_open(fd) for fd in opener.fds)
    opener.close()


def test_keep_shards_of_one_file_fill_one_buffer(tmp_path):
    p = tmp_path / "f"
    data = write(p, 4 * FILL + 5)
    e = entry(p)
    cuts = [0, FILL + 3, 2 * FILL, 4 * FILL + 5]
    tasks = [Task(e, a, b) for a, b in itertools.pairwise(cuts)]
    kept: dict[str, object] = {}
    digests = hash_tasks(tasks, "blake3", workers=2, keep=kept)
    import blake3

    assert digests == [blake3.blake3(data[t.start : t.end]).digest() for t in tasks]
    assert bytes(kept["f"]) == data  # type: ignore[call-overload]


@pytest.mark.parametrize("change", ["truncate", "flip"])
def test_keep_a_file_changed_while_filled_fails_or_matches_what_was_kept(tmp_path, change):
    """Whatever a writer does meanwhile, a digest returned is the digest of the kept bytes."""
    p = tmp_path / "f"
    good = write(p, 6 * FILL + 1)
    stop = threading.Event()

    def writer() -> None:
        fd = os.open(p, os.O_RDWR)
        try:
            while not stop.is_set():
                if change == "truncate":
                    os.truncate(fd, 2 * FILL)
                    os.pwrite(fd, good[2 * FILL :], 2 * FILL)
                else:
                    os.pwrite(fd, b"\xff", 5 * FILL)
                    os.pwrite(fd, good[5 * FILL : 5 * FILL + 1], 5 * FILL)
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    failed = 0
    try:
        for _ in range(12):
            kept: dict[str, object] = {}
            try:
                (digest,) = hash_tasks([whole(entry(p, len(good)))], "sha256", workers=2, keep=kept)
            except InputError as e:
                assert e.code == "changed-while-hashing"
                failed += 1
                continue
            assert digest == hashlib.sha256(kept["f"]).digest()  # type: ignore[arg-type]
    finally:
        stop.set()
        thread.join()
    if change == "truncate":
        assert failed, "the writer never got in"


def test_keep_is_emptied_when_hashing_fails(tmp_path):
    """A failure leaves nothing kept: no half-read (or zero) map passes for a file."""
    big = tmp_path / "big"
    write(big, 3 * FILL)
    small = tmp_path / "small"
    write(small, 100)
    kept: dict[str, object] = {}
    grown = FileEntry("big", str(big), 4 * FILL)  # the walk saw more than is there
    with pytest.raises(InputError) as e:
        hash_tasks([whole(entry(small)), whole(grown)], "sha256", workers=2, keep=kept)
    assert e.value.code == "changed-while-hashing"
    assert kept == {}
