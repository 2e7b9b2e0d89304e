"""The Hugging Face cache layout, and which of its links a walk may follow.

``huggingface_hub`` stores each file once, as ``REPO/blobs/<etag>``, and a
snapshot ``REPO/snapshots/<commit>/<path>`` is a relative symbolic link to
that blob. Hashing a snapshot in place therefore means following links, but
only these: a relative link, read once, whose target is a direct child of
that same repository's ``blobs/`` and is itself a regular file. Anything
else in a snapshot (an absolute link, a link into another repository, a
link to a link, a link to a folder) is refused, whatever the caller's link
setting, because no cache the client writes contains one.

The layout is recognised from the real path alone, so the rule is a local
decision: nothing a signature or a downloaded file says turns it on.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

#: What ``huggingface_hub`` names a repository's cache folder by repository type.
REPO_PREFIXES = ("models--", "datasets--", "spaces--")

#: How far above a walk's root a snapshot folder is looked for (a root may be
#: a subfolder of a snapshot, such as ``text_encoder/``).
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class CacheSnapshot:
    """A snapshot folder of a Hugging Face cache, by real paths."""

    repo: str
    blobs: str
    snapshot: str

    @property
    def revision(self) -> str:
        """The snapshot's folder name: the commit id the client downloaded."""
        return os.path.basename(self.snapshot)

    @property
    def repo_id(self) -> str | None:
        """``org/name`` from the folder name (``models--org--name``), if it parses."""
        base = os.path.basename(self.repo)
        for prefix in REPO_PREFIXES:
            if base.startswith(prefix):
                return base[len(prefix) :].replace("--", "/") or None
        return None

    def blob_of(self, link: str) -> str | None:
        """The blob ``link`` (a path to a symbolic link) names, if it is a cache link.

        ``None`` for anything else: the link text is read once and resolved
        lexically from the link's real folder, so a chain of links or a
        ``..`` through a linked folder cannot lead outside ``blobs/``.
        """
        try:
            text = os.readlink(link)
        except OSError:
            return None
        if not text or os.path.isabs(text) or "\0" in text:
            return None
        folder = os.path.realpath(os.path.dirname(link) or ".")
        if not _is_within(folder, self.snapshot):
            return None
        # Exactly what the client writes (os.path.relpath from the link's
        # folder): one "../" per level up to the repository, then
        # "blobs/NAME". Text with any other "..", "." or "/" could mean one
        # thing on paper and another to the kernel, which resolves ".."
        # after following a linked folder on the way.
        inner = os.path.relpath(folder, self.snapshot)
        depth = 2 if inner == "." else len(inner.split(os.sep)) + 2
        prefix = "../" * depth + "blobs/"
        name = text[len(prefix) :]
        if not text.startswith(prefix) or not name or "/" in name or name in (".", ".."):
            return None
        target = os.path.join(self.blobs, name)
        try:
            st = os.lstat(target)
            # And the kernel must agree: the link, followed, is that very blob.
            real = os.path.realpath(link)
        except OSError:
            return None
        if real != target or not stat.S_ISREG(st.st_mode):
            return None
        return target


def snapshot_of(path: str | os.PathLike[str]) -> CacheSnapshot | None:
    """The cache snapshot that ``path`` (a folder, or a file or link in one) lies in.

    A snapshot is ``<prefix>ORG--NAME/snapshots/<revision>/`` whose
    repository folder holds a real (not linked) ``blobs/`` folder.
    """
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    start = path if stat.S_ISDIR(st.st_mode) else os.path.dirname(path) or "."
    here = os.path.realpath(start)
    for _ in range(_MAX_DEPTH):
        parent = os.path.dirname(here)
        if parent == here:
            return None
        if os.path.basename(parent) == "snapshots":
            repo = os.path.dirname(parent)
            if not os.path.basename(repo).startswith(REPO_PREFIXES):
                return None
            blobs = os.path.join(repo, "blobs")
            try:
                bst = os.lstat(blobs)
            except OSError:
                return None
            if not stat.S_ISDIR(bst.st_mode):
                return None
            return CacheSnapshot(repo, blobs, here)
        here = parent
    return None


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def own_blob(path: str | os.PathLike[str]) -> str:
    """``path``, or the blob it links to when it is a cache snapshot's own link.

    For readers that open one named file of a model (format detection, a
    folder check) and refuse links: a cache snapshot's files are all links,
    and these, exactly as a walk follows them, are read as their blobs.
    """
    p = os.fspath(path)
    try:
        if not stat.S_ISLNK(os.lstat(p).st_mode):
            return p
    except OSError:
        return p
    cache = snapshot_of(p)
    blob = cache.blob_of(p) if cache is not None else None
    return blob if blob is not None else p
