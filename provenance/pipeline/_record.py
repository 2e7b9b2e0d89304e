"""Materials and products: hashed by this project's engine, keyed as in-toto keys them.

in-toto's own recorder hashes file by file in pure Python, follows linked
folders and opens whatever a path names (a FIFO would hang it). A step of an
ML pipeline reads and writes datasets and checkpoints of many gigabytes and
many thousands of files, so the trees are walked by :func:`provenance.hashing.walk`
(no link followed unless allowed, and then only inside the base folder;
FIFOs, sockets and devices refused, never opened) and hashed by the engine
(threads, large reads, small files batched). The result is the dictionary
in-toto's link holds, ``{path: {"sha256": hex}}``, keyed by exactly the
relative paths in-toto's recorder would use (the path as given, normalized,
joined with each file's place below it), so a layout's artifact rules match
links made here and links made by ``in-toto-run`` alike.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path

from provenance.errors import Hint, InputError, UsageError
from provenance.hashing import (
    DEFAULT_IGNORE_PATTERNS,
    FileEntry,
    Ignore,
    LinkPolicy,
    hash_digests,
    walk,
)
from provenance.manifest import Serialization

__all__ = ["DEFAULT_EXCLUDES", "Recorded", "artifact_name", "record_artifacts"]

#: Left out of every material and product tree: this project's defaults
#: (version control, bytecode, OS litter) and in-toto's own link files.
#: Also this tool's own signature files: signing a released model after its
#: step ran must not make a re-run's products differ from what it recorded.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    *DEFAULT_IGNORE_PATTERNS,
    "*.link",
    "*.link-unfinished",
    "model.sig",
    "model.sig.d",
    "model.intoto.jsonl",
)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """Artifacts as a link records them, and what recording them had to say."""

    artifacts: dict[str, str]  # in-toto path -> hex sha256, in walk order
    total_bytes: int
    warnings: tuple[str, ...] = ()

    def as_link_dict(self) -> dict[str, dict[str, str]]:
        return {name: {"sha256": digest} for name, digest in self.artifacts.items()}


def artifact_name(path: str | os.PathLike[str], base: Path) -> str:
    """The in-toto name of a path given for recording: relative to ``base``, POSIX, normalized.

    in-toto records a path as given, normalized (``./data/`` is ``data``,
    ``.`` is the folder's files by their own names). A path that leaves the
    base folder would be recorded with ``..`` and match no rule another
    machine can write, so it is refused; an absolute path inside the base
    folder is taken relative to it.
    """
    text = os.fspath(path)
    if not text:
        raise UsageError("an empty path cannot be recorded")
    p = Path(text)
    if p.is_absolute():
        try:
            p = Path(os.path.abspath(p)).relative_to(os.path.abspath(base))
        except ValueError:
            raise UsageError(
                f"'{text}' is outside the base folder '{base}'; in-toto records paths "
                "relative to it, so give paths inside it (or another base folder)",
                code="artifact-outside-base",
            ) from None
    name = posixpath.normpath(p.as_posix())
    if name == ".." or name.startswith("../"):
        raise UsageError(
            f"'{text}' is outside the base folder '{base}'; in-toto records paths relative "
            "to it, so give paths inside it (or another base folder)",
            code="artifact-outside-base",
        )
    return name


def record_artifacts(
    paths: Iterable[str | os.PathLike[str]],
    *,
    base: str | os.PathLike[str] = ".",
    exclude: Sequence[str] = (),
    allow_symlinks: bool = False,
    missing_ok: bool = False,
    what: str = "material",
    workers: int | None = None,
) -> Recorded:
    """Hash files and trees into in-toto artifacts (``{path: sha256 hex}``).

    ``paths`` are files or folders, relative to ``base`` (in-toto's base
    path). ``exclude`` adds glob patterns to :data:`DEFAULT_EXCLUDES`
    (without ``/`` a name at any depth, with ``/`` a path inside each given
    folder). Symbolic links are refused unless ``allow_symlinks``, and then
    must stay inside ``base``. A path that does not exist is an error, or,
    with ``missing_ok`` (products of a command that may have failed), a
    warning and no artifact.
    """
    root = Path(base)
    if not root.is_dir():
        raise InputError(f"base folder '{base}' does not exist", code="not-found")
    real_base = os.path.realpath(root)
    ignore = Ignore(patterns=[*DEFAULT_EXCLUDES, *exclude])
    links = LinkPolicy(follow=allow_symlinks, within=(real_base,), hub_cache=False)
    entries: list[FileEntry] = []
    seen: set[str] = set()
    warnings: list[str] = []
    for given in paths:
        name = artifact_name(given, root)
        target = root if name == "." else root / name
        if not os.path.lexists(target):
            if missing_ok:
                warnings.append(f"{what} '{given}' does not exist; the link records none there")
                continue
            raise InputError(f"{what} '{given}' does not exist", code="not-found")
        if name != "." and ignore.match(name, posixpath.basename(name)) is not None:
            warnings.append(f"{what} '{given}' is left out by the exclude patterns")
            continue
        if allow_symlinks and os.path.islink(target):
            real = os.path.realpath(target)
            if real != real_base and not real.startswith(real_base.rstrip(os.sep) + os.sep):
                raise InputError(
                    f"{what} '{given}' is a symbolic link that points outside the base "
                    f"folder '{base}'",
                    code="symlink-escapes",
                )
        found = walk(target, ignore=ignore, links=links)
        if found.refused:
            first = found.refused[0]
            where = first.name if first.name == "." else posixpath.join(name, first.name)
            more = f" (and {len(found.refused) - 1} more)" if len(found.refused) > 1 else ""
            raise InputError(
                f"{what} '{where}': {first.reason}{more}",
                code=first.code,
                hint=Hint.ALLOW_SYMLINKS if first.code == "symlink-refused" else None,
            )
        left_out = [n for n, by in found.ignored if not by.endswith((".link", ".link-unfinished"))]
        if left_out:
            # A step may read such a file (a .git config, a notebook checkpoint)
            # that no link records: say so, so nobody takes the chain to cover it.
            more = f" and {len(left_out) - 1} more" if len(left_out) > 1 else ""
            warnings.append(
                f"{what} '{_join(name, left_out[0])}'{more} left out by the exclude patterns "
                "(not recorded, so not covered by the chain)"
            )
        for entry in found.files:
            key = name if entry.name == "." else _join(name, entry.name)
            if key in seen:
                continue  # named twice (a folder and a file in it): in-toto keeps one
            seen.add(key)
            entries.append(dataclasses.replace(entry, name=key))
    names, digests = hash_digests(entries, Serialization(), workers=workers)
    return Recorded(
        dict(zip(names, (d.hex() for d in digests), strict=True)),
        sum(e.size for e in entries),
        tuple(warnings),
    )


def _join(prefix: str, name: str) -> str:
    return name if prefix == "." else f"{prefix}/{name}"
