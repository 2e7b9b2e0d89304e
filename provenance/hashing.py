"""Walking a model tree and hashing it into a manifest.

Hashing knows files, digests and the serialization that says how they were
taken; it knows nothing of signatures, so the same engine hashes models,
datasets and pipeline artifacts. Two rules keep it safe to call on hostile
trees:

* The walk decides which links it follows from a *local* :class:`LinkPolicy`,
  never from a file it found: a signature's ``allow_symlinks`` flag only says
  how the manifest was made, and is honoured only once that signature has
  been verified by the caller.
* :func:`hash_as` re-hashes exactly as a given serialization records. Callers
  pass a serialization they trust (one from a verified signature or a signed
  attestation, or the user's own choice); nothing here reads one from disk.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from provenance._internal import hfcache
from provenance._internal.engine import (
    ALGORITHMS,
    FileEntry,
    Kept,
    Opener,
    Task,
    describe_mode,
    hash_tasks,
)
from provenance.errors import Hint, InputError
from provenance.manifest import DEFAULT_IGNORE_PATHS, Manifest, Resource, Serialization

__all__ = [
    "ALGORITHMS",
    "DEFAULT_IGNORE_PATTERNS",
    "FileEntry",
    "Ignore",
    "LinkPolicy",
    "Progress",
    "Refusal",
    "Walk",
    "hash_as",
    "hash_digests",
    "hash_entries",
    "hash_model",
    "hash_tree",
    "ignore_warnings",
    "model_name",
    "relative_ignores",
    "walk",
]

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while hashing."""


@dataclass(frozen=True)
class LinkPolicy:
    """Which symbolic links a walk may follow: a local decision, never a signed one.

    ``follow`` allows links whose real target stays inside the model root or
    inside one of the ``within`` folders (real paths).

    ``hub_cache``: inside a Hugging Face cache snapshot
    (``models--ORG--NAME/snapshots/REV/``), follow exactly the cache's own
    links (relative, to a regular file directly in that repository's
    ``blobs/``) and refuse every other link there, whatever ``follow`` says.
    The layout is recognised from real paths, never from a file's content,
    and following those links changes no byte that is hashed: a snapshot
    file *is* its blob.
    """

    follow: bool = False
    within: tuple[str, ...] = ()
    hub_cache: bool = True


#: Left out wherever they stand, by name (any depth): version control, OS and
#: notebook litter, and Python's bytecode caches, which importing a model's
#: own code rewrites. A signature records the concrete paths they hid, so
#: ``model-signing`` (which knows only exact paths) verifies it too.
DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    ".git",
    ".gitattributes",
    ".github",
    ".gitignore",
    ".gitmodules",
    ".gitkeep",
    ".DS_Store",
    ".ipynb_checkpoints",
    "__pycache__",
    "*.pyc",
)

#: Patterns whose unsigned matches a verifier reports as a warning: Python may
#: run such bytecode instead of the signed source beside it.
BYTECODE_PATTERNS: frozenset[str] = frozenset({"__pycache__", "*.pyc"})

_GLOB = re.compile(r"[*?\[]")


def is_pattern(text: str) -> bool:
    """A glob (``*.pyc``, ``**/cache``) rather than an exact path."""
    return bool(_GLOB.search(text))


class Ignore:
    """Which walked names to leave out: exact paths and glob patterns.

    Exact paths hide that file or folder (``model-signing``'s semantics, and
    what a signature records). A pattern without ``/`` matches a name at any
    depth (``*.pyc``, ``__pycache__``); one with ``/`` matches the whole
    relative path (``logs/*.txt``, ``**/tmp``). Names in ``keep`` (files a
    signature lists, and their folders) are never hidden by a pattern.
    """

    def __init__(
        self,
        exact: Iterable[str] = (),
        patterns: Iterable[str] = (),
        keep: AbstractSet[str] = frozenset(),
    ) -> None:
        self.exact = {normalize_ignore(p) for p in exact} - {""}
        self.patterns = tuple(dict.fromkeys(normalize_ignore(p) for p in patterns if p))
        base = [p for p in self.patterns if "/" not in p]
        full = [p for p in self.patterns if "/" in p]
        self._base = re.compile("|".join(f"(?:{_glob_regex(p)})" for p in base)) if base else None
        self._full = [(p, re.compile(_glob_regex(p))) for p in full]
        self._base_list = [(p, re.compile(_glob_regex(p))) for p in base]
        self.keep = keep

    def match(self, name: str, basename: str) -> str | None:
        """The exact path or pattern that hides ``name``, or None."""
        if name in self.exact:
            return name
        if name in self.keep:
            return None
        if self._base is not None and self._base.fullmatch(basename):
            return next(p for p, rx in self._base_list if rx.fullmatch(basename))
        for p, rx in self._full:
            if rx.fullmatch(name):
                return p
        return None


def _glob_regex(pattern: str) -> str:
    """fnmatch-style, but ``*`` stays within a path component and ``**/`` spans folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An entry the walk would not hash, and why (a machine code and words)."""

    name: str
    code: str
    reason: str
    hint: str | None = None


@dataclass
class Walk:
    """The regular files of a tree in manifest order, and what was refused."""

    files: list[FileEntry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    #: (name, the exact path or pattern that hid it), for the outermost hidden entries.
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def unmatched(self, wanted: Iterable[str]) -> list[str]:
        """Which of ``wanted`` (exact paths or patterns) hid nothing."""
        hit = {by for _, by in self.ignored}
        return [w for w in dict.fromkeys(normalize_ignore(w) for w in wanted) if w not in hit]

    def raise_for_refusals(self) -> None:
        if self.refused:
            r = self.refused[0]
            raise InputError(r.reason, code=r.code, hint=r.hint)


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def normalize_ignore(path: str) -> str:
    path = path.replace(os.sep, "/").strip("/")
    while path.startswith("./"):
        path = path[2:]
    return path


_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_Child = tuple[str, str, os.stat_result]  # name, path, lstat


def _children(folder: str, expect: tuple[int, int], *, followed: bool = False) -> Iterator[_Child]:
    """A folder's entries in name order, each with its ``lstat``, listed from a
    descriptor that is verifiably the folder the parent listing saw.

    Listing by path would follow a folder swapped for a link after its parent
    was read; the descriptor is opened with ``O_NOFOLLOW`` (unless this is a
    link the walk chose to follow) and its device and inode compared.
    """
    try:
        fd = os.open(folder, _O_DIR if followed else _O_DIR | _O_NOFOLLOW)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise InputError(
                f"folder '{folder}' was replaced after it was listed; refusing to read it",
                code="changed-while-hashing",
            ) from None
        raise InputError(
            f"cannot list folder '{folder}': {e.strerror}", code="unreadable"
        ) from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != expect:
            raise InputError(
                f"folder '{folder}' was replaced after it was listed; refusing to read it",
                code="changed-while-hashing",
            )
        out: list[_Child] = []
        base = folder if folder.endswith(os.sep) else folder + os.sep
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    out.append((entry.name, base + entry.name, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # vanished while listing: it is simply not there
    except OSError as e:
        raise InputError(
            f"cannot list folder '{folder}': {e.strerror}", code="unreadable"
        ) from None
    finally:
        os.close(fd)
    out.sort(key=lambda c: c[0])
    return iter(out)


def walk(
    root: str | os.PathLike[str],
    *,
    ignore_paths: Iterable[str] = (),
    ignore: Ignore | None = None,
    links: LinkPolicy = LinkPolicy(),
) -> Walk:
    """List the regular files of a model in manifest order, without reading any.

    ``ignore_paths`` are POSIX paths relative to the root; each hides that file
    or that folder and everything in it. Entries that cannot be hashed (special
    files, links the policy refuses) are collected in ``refused``, so a
    verifier can report them as findings and a signer can refuse the tree.

    Order is by path component (``a/b`` before ``a-c``), as ``model-signing``
    writes it, so both tools produce the same root digest for the same tree.
    A folder's children are visited in name order, so no global sort is needed.
    """
    root = os.fspath(root)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        raise InputError(f"model path '{root}' does not exist", code="not-found") from None
    except OSError as e:
        raise InputError(
            f"cannot read model path '{root}': {e.strerror}", code="unreadable"
        ) from None

    cache = hfcache.snapshot_of(root) if links.hub_cache else None
    if stat.S_ISLNK(st.st_mode) and cache is not None:
        blob = cache.blob_of(root)
        if blob is None:
            raise InputError(_foreign_link(root, cache).reason, code="symlink-escapes")
        bst = os.lstat(blob)
        return Walk([FileEntry(".", blob, bst.st_size, (bst.st_dev, bst.st_ino))])
    if stat.S_ISLNK(st.st_mode):
        if not links.follow:
            raise InputError(
                f"model path '{root}' is a symbolic link; symbolic links are refused unless "
                "allowed",
                code="symlink-refused",
                hint=Hint.ALLOW_SYMLINKS,
            )
        st = os.stat(root)
    if stat.S_ISREG(st.st_mode):
        followed = stat.S_ISLNK(os.lstat(root).st_mode)
        return Walk([FileEntry(".", root, st.st_size, (st.st_dev, st.st_ino), link=followed)])
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(
            f"model path '{root}' is {describe_mode(st.st_mode)}; refusing to read it",
            code="special-file",
        )

    if ignore is None:
        ignore = Ignore(exact=ignore_paths)
    elif ignore_paths:
        ignore = Ignore([*ignore.exact, *ignore_paths], ignore.patterns, ignore.keep)
    real_root = os.path.realpath(root)
    allowed_roots = (real_root, *links.within)
    out = Walk()
    files, refused, hidden = out.files, out.refused, out.ignored
    match = ignore.match
    root_st = os.stat(root)
    top = _children(
        root, (root_st.st_dev, root_st.st_ino), followed=stat.S_ISLNK(os.lstat(root).st_mode)
    )
    stack: list[tuple[str, Iterator[_Child]]] = [("", top)]
    seen_dirs = {real_root}
    while stack:
        prefix, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        base, path, cst = child
        name = prefix + base
        by = match(name, base)
        if by is not None:
            hidden.append((name, by))
            continue
        if not base.isascii() and not _utf8(base):
            # A manifest is UTF-8 JSON: such a name cannot be signed or named.
            shown = base.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            # The refusal names it printably: it goes into messages and JSON.
            printable = prefix + shown
            refused.append(
                Refusal(printable, "name-not-utf8", f"'{printable}' has a name that is not UTF-8")
            )
            continue
        mode = cst.st_mode
        if stat.S_ISLNK(mode):
            if cache is not None:
                blob = cache.blob_of(path)
                if blob is None:
                    refused.append(_foreign_link(name, cache))
                    continue
                try:
                    bst = os.lstat(blob)
                except OSError:
                    refused.append(
                        Refusal(name, "symlink-broken", f"symbolic link '{name}' is broken")
                    )
                    continue
                files.append(FileEntry(name, blob, bst.st_size, (bst.st_dev, bst.st_ino)))
                continue
            refusal = _follow(path, name, links, allowed_roots, seen_dirs, stack, files)
            if refusal is not None:
                refused.append(refusal)
        elif stat.S_ISDIR(mode):
            stack.append((name + "/", _children(path, (cst.st_dev, cst.st_ino))))
        elif stat.S_ISREG(mode):
            files.append(FileEntry(name, path, cst.st_size, (cst.st_dev, cst.st_ino)))
        else:
            refused.append(
                Refusal(
                    name, "special-file", f"'{name}' is {describe_mode(mode)}; refusing to read it"
                )
            )
    return out


def _foreign_link(name: str, cache: hfcache.CacheSnapshot) -> Refusal:
    return Refusal(
        name,
        "symlink-escapes",
        f"'{name}' is a symbolic link that is not the Hugging Face cache's own: in a cache "
        "snapshot only relative links to a file directly in "
        f"'{os.path.basename(cache.repo)}/blobs/' are followed",
    )


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by os.fsdecode
        return False
    return True


def _follow(
    path: str,
    name: str,
    links: LinkPolicy,
    allowed_roots: tuple[str, ...],
    seen_dirs: set[str],
    stack: list[tuple[str, Iterator[_Child]]],
    files: list[FileEntry],
) -> Refusal | None:
    if not links.follow:
        return Refusal(
            name,
            "symlink-refused",
            f"'{name}' is a symbolic link; links are refused unless allowed "
            "(and then must stay inside the model)",
            Hint.ALLOW_SYMLINKS,
        )
    try:
        target = os.path.realpath(path)
    except OSError:  # realpath itself races: the link can vanish between its lstat and readlink
        return Refusal(name, "symlink-broken", f"symbolic link '{name}' changed while listed")
    if not any(_is_within(target, r) for r in allowed_roots):
        return Refusal(name, "symlink-escapes", f"symbolic link '{name}' points outside the model")
    # From here on only the resolved, checked target is used, never the link
    # again: a link retargeted after the check must not decide what is read.
    # ``lstat`` of a realpath is the final object itself; if it became a link
    # meanwhile it is refused here, and reads open it with O_NOFOLLOW and
    # compare its device and inode with this record.
    try:
        tst = os.lstat(target)
    except OSError:
        return Refusal(name, "symlink-broken", f"symbolic link '{name}' is broken")
    if stat.S_ISDIR(tst.st_mode):
        if target in seen_dirs:
            return Refusal(name, "symlink-loop", f"symbolic link '{name}' makes a loop")
        seen_dirs.add(target)
        stack.append((name + "/", _children(target, (tst.st_dev, tst.st_ino))))
    elif stat.S_ISREG(tst.st_mode):
        files.append(FileEntry(name, target, tst.st_size, (tst.st_dev, tst.st_ino)))
    elif stat.S_ISLNK(tst.st_mode):
        return Refusal(
            name,
            "changed-while-hashing",
            f"symbolic link '{name}' changed while the tree was listed; refusing it",
        )
    else:
        return Refusal(
            name,
            "special-file",
            f"'{name}' links to {describe_mode(tst.st_mode)}; refusing to read it",
        )
    return None


def relative_ignores(
    model_path: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]
) -> list[str]:
    """Model-relative POSIX forms of ignore paths (absolute ones must lie inside)."""
    root = Path(os.path.abspath(model_path))
    out = []
    for p in paths:
        path = Path(p)
        if path.is_absolute():
            try:
                path = Path(os.path.abspath(path)).relative_to(root)
            except ValueError:
                continue  # outside the model: nothing to ignore
        rel = path.as_posix().strip("/")
        while rel.startswith("./"):
            rel = rel[2:]
        if rel and rel != "." and not rel.startswith("../"):
            out.append(rel)
    return out


def model_name(model_path: str | os.PathLike[str]) -> str:
    """The subject name of a model: its folder or file basename."""
    return Path(os.path.abspath(model_path)).name


def tasks_for(entries: Sequence[FileEntry], serialization: Serialization) -> list[Task]:
    """Byte ranges to hash: one per file, or one per shard (empty files have none)."""
    if serialization.method == "files":
        return [Task(e, 0, e.size) for e in entries]
    size = serialization.shard_size or 1
    return [
        Task(e, start, min(start + size, e.size))
        for e in entries
        for start in range(0, e.size, size)
    ]


def _resource_name(task: Task, serialization: Serialization) -> str:
    if serialization.method == "files":
        return task.entry.name
    return f"{task.entry.name}:{task.start}:{task.end}"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large, acyclic lists.

    Hashing a 200,000-file dataset allocates a few objects per file, none in
    cycles; the collector would otherwise rescan them again and again (a
    quarter of the run time, measured). Reference counting still frees
    everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def hash_entries(
    entries: Sequence[FileEntry],
    serialization: Serialization,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    opener: Opener | None = None,
) -> tuple[Resource, ...]:
    """Hash walked files into resources, as ``serialization`` says.

    ``opener`` opens each file (see :data:`provenance._internal.engine.Opener`);
    the engine still refuses anything that is not a regular file.
    """
    names, digests = hash_digests(
        entries, serialization, workers=workers, progress=progress, opener=opener
    )
    algorithm = serialization.resource_algorithm
    with gc_paused():
        # tuple.__new__ is what Resource() does, without its Python-level
        # __new__: a third of the cost of 200,000 resources.
        new = tuple.__new__
        return tuple(
            [new(Resource, (n, algorithm, d)) for n, d in zip(names, digests, strict=True)]
        )


def hash_digests(
    entries: Sequence[FileEntry],
    serialization: Serialization,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    opener: Opener | None = None,
    keep: Kept | None = None,
) -> tuple[list[str], list[bytes]]:
    """What :func:`hash_entries` hashes, as resource names and raw digests in order.

    A verifier compares them with a signature's columns
    (:meth:`~provenance.manifest.Manifest.lists`) and builds resources only
    for a model that differs. ``keep`` receives every file's bytes, read
    once and hashed from that memory (the engine's ``keep``), for a loader
    to hand on once they match.
    """
    with gc_paused():
        tasks = tasks_for(entries, serialization)
        callback = None
        if progress is not None:
            total = sum(t.end - t.start for t in tasks)
            done = 0

            def callback(n: int) -> None:
                nonlocal done
                done += n
                progress(done, total)

        digests = hash_tasks(
            tasks,
            serialization.hash_type,
            workers=workers,
            progress=callback,
            opener=opener,
            keep=keep,
        )
        if serialization.method == "files":
            names = [e.name for e in entries]
        else:
            names = [_resource_name(t, serialization) for t in tasks]
        return names, digests


def hash_tree(
    model_path: str | os.PathLike[str],
    serialization: Serialization,
    *,
    links: LinkPolicy | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[Manifest, Walk]:
    """Hash a model as ``serialization`` says; also return the walk (what it hid).

    The returned manifest's serialization lists, as exact paths, everything
    the default and user patterns hid, so the signature that records it can
    be repeated by any verifier; its ``ignore_patterns`` are dropped.
    """
    path = Path(model_path)
    if links is None:
        links = LinkPolicy(follow=serialization.allow_symlinks)
    elif not serialization.allow_symlinks:
        links = LinkPolicy(hub_cache=links.hub_cache)
    if _is_dir(path):
        ignore = Ignore(
            [*serialization.ignore_paths, *DEFAULT_IGNORE_PATHS],
            [*DEFAULT_IGNORE_PATTERNS, *serialization.ignore_patterns],
        )
    else:
        ignore = Ignore()
    found = walk(path, ignore=ignore, links=links)
    found.raise_for_refusals()
    resources = hash_entries(found.files, serialization, workers=workers, progress=progress)
    recorded = serialization
    hidden = [name for name, by in found.ignored if name not in serialization.ignore_paths]
    if hidden or serialization.ignore_patterns:
        recorded = Serialization(
            serialization.method,
            serialization.hash_type,
            serialization.allow_symlinks,
            serialization.shard_size,
            tuple(dict.fromkeys([*serialization.ignore_paths, *hidden])),
        )
    return Manifest(model_name(path), resources, recorded), found


def hash_as(
    model_path: str | os.PathLike[str],
    serialization: Serialization,
    *,
    links: LinkPolicy | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Hash a model exactly as a *trusted* serialization records.

    The one place a serialization is replayed: verifying a signature's
    manifest, re-hashing an attested dataset, hashing for a new signature.
    Its ignore list and the defaults hide files; links are followed only when
    both the serialization allows them and ``links`` (the local rule, default:
    inside the model only) permits the target.
    """
    return hash_tree(model_path, serialization, links=links, workers=workers, progress=progress)[0]


def ignore_warnings(
    model_path: str | os.PathLike[str],
    serialization: Serialization,
    found: Walk,
    given: Iterable[str | os.PathLike[str]],
) -> list[str]:
    """Warnings for ignores the user gave that hid nothing: a typo, a missing
    folder, a path outside the model. Silence here would sign what the user
    meant to leave out."""
    texts = [os.fspath(g) for g in given]
    out = outside_ignores(model_path, texts)
    wanted = [*relative_ignores(model_path, [g for g in texts if not is_pattern(g)])]
    wanted += [normalize_ignore(g) for g in texts if is_pattern(g)]
    out += [f"ignore '{w}' matched nothing in the model" for w in found.unmatched(wanted)]
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def hash_model(
    model_path: str | os.PathLike[str],
    *,
    method: str = "files",
    algorithm: str = "sha256",
    shard_size: int | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    allow_symlinks: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Hash a model (a file or a folder) into a manifest.

    ``ignore_paths`` add to the defaults (version-control files and the
    signature and attestation files). A ``shard_size`` alone selects the
    ``shards`` method.
    """
    return hash_as(
        model_path,
        serialization_for(
            model_path,
            method=method,
            algorithm=algorithm,
            shard_size=shard_size,
            ignore_paths=ignore_paths,
            allow_symlinks=allow_symlinks,
        ),
        workers=workers,
        progress=progress,
    )


def serialization_for(
    model_path: str | os.PathLike[str],
    *,
    method: str = "files",
    algorithm: str = "sha256",
    shard_size: int | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    allow_symlinks: bool = False,
) -> Serialization:
    """The serialization a user's choices describe (defaults for what they left out)."""
    path = Path(model_path)
    if shard_size is not None and method == "files":
        method = "shards"
    given = [os.fspath(p) for p in ignore_paths]
    patterns = [normalize_ignore(p) for p in given if is_pattern(p)]
    exact = relative_ignores(path, [p for p in given if not is_pattern(p)])
    ignores = list(dict.fromkeys([*DEFAULT_IGNORE_PATHS, *exact]))
    folder = _is_dir(path)
    return Serialization(
        method=method,
        hash_type=algorithm,
        allow_symlinks=allow_symlinks,
        shard_size=shard_size,
        ignore_paths=tuple(ignores) if folder else (),
        ignore_patterns=tuple(dict.fromkeys(patterns)) if folder else (),
    )


def outside_ignores(
    model_path: str | os.PathLike[str], ignore_paths: Iterable[str | os.PathLike[str]]
) -> list[str]:
    """Warnings for ignores that cannot name anything in the model (``../x``, ``/etc``)."""
    root = Path(os.path.abspath(model_path))
    out = []
    for p in ignore_paths:
        text = os.fspath(p)
        if is_pattern(text):
            continue
        path = Path(text)
        absolute = Path(os.path.abspath(path if path.is_absolute() else root / path))
        if absolute != root and root not in absolute.parents:
            out.append(f"ignore '{text}' is outside the model and hides nothing")
    return out
