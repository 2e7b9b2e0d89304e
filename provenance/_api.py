"""The hash, sign and verify pipelines behind the public API.

Data flows one way: files -> manifest -> statement -> signer -> bundle on
disk; and back: bundle -> verifier -> signed bytes -> manifest -> compared
with a fresh hash of the files, using the serialization the signer recorded.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from provenance._internal import hashing
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.manifest import (
    DEFAULT_IGNORE_PATHS,
    Manifest,
    Resource,
    Serialization,
)

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.signing import Verified

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while hashing."""

SIGNATURE_NAME = "model.sig"


class Signer(Protocol):
    """Anything that turns a payload into a signed bundle."""

    def sign(self, payload: bytes, payload_type: str = ...) -> Bundle: ...


class Verifier(Protocol):
    """Anything that checks a bundle's signature and says who made it."""

    def verify(self, bundle: Bundle) -> Verified: ...


def default_signature_path(model_path: str | os.PathLike[str]) -> Path:
    """``MODEL/model.sig`` for a folder, ``MODEL.sig`` beside a single file."""
    p = Path(model_path)
    return p / SIGNATURE_NAME if p.is_dir() else p.with_name(p.name + ".sig")


def _model_name(model_path: Path) -> str:
    return Path(os.path.abspath(model_path)).name


def _relative_ignores(model_path: Path, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
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


def _signature_ignore(model_path: Path, signature: Path) -> list[str]:
    if not model_path.is_dir():
        return []
    return _relative_ignores(model_path, [os.path.abspath(signature)])


def _tasks(entries: list[hashing.FileEntry], serialization: Serialization) -> list[hashing.Task]:
    if serialization.method == "files":
        return [hashing.Task(e, 0, e.size) for e in entries]
    size = serialization.shard_size or 1
    return [
        hashing.Task(e, start, min(start + size, e.size))
        for e in entries
        for start in range(0, e.size, size)
    ]


def _resource_name(task: hashing.Task, serialization: Serialization) -> str:
    if serialization.method == "files":
        return task.entry.name
    return f"{task.entry.name}:{task.start}:{task.end}"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
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


def _hash(
    model_path: Path,
    serialization: Serialization,
    *,
    extra_ignores: Iterable[str] = (),
    only: Iterable[str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    with _gc_paused():
        return _hash_unpaused(
            model_path,
            serialization,
            extra_ignores=extra_ignores,
            only=only,
            workers=workers,
            progress=progress,
        )


def _hash_unpaused(
    model_path: Path,
    serialization: Serialization,
    *,
    extra_ignores: Iterable[str],
    only: Iterable[str] | None,
    workers: int | None,
    progress: Progress | None,
) -> Manifest:
    entries = hashing.walk(
        model_path,
        ignore_paths=[*serialization.ignore_paths, *extra_ignores],
        allow_symlinks=serialization.allow_symlinks,
        only=only,
    )
    tasks = _tasks(entries, serialization)
    callback = None
    if progress is not None:
        total = sum(t.end - t.start for t in tasks)
        done = 0

        def callback(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

    digests = hashing.hash_tasks(tasks, serialization.hash_type, workers=workers, progress=callback)
    algorithm = serialization.resource_algorithm
    resources = tuple(
        Resource(_resource_name(t, serialization), algorithm, d)
        for t, d in zip(tasks, digests, strict=True)
    )
    return Manifest(_model_name(model_path), resources, serialization)


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
    path = Path(model_path)
    if shard_size is not None and method == "files":
        method = "shards"
    ignores = list(dict.fromkeys([*DEFAULT_IGNORE_PATHS, *_relative_ignores(path, ignore_paths)]))
    serialization = Serialization(
        method=method,
        hash_type=algorithm,
        allow_symlinks=allow_symlinks,
        shard_size=shard_size,
        ignore_paths=tuple(ignores) if path.is_dir() else (),
    )
    return _hash(path, serialization, workers=workers, progress=progress)


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` produced: the manifest signed and where the bundle went."""

    manifest: Manifest
    bundle: Bundle
    signature_path: Path


def statement_bytes(manifest: Manifest) -> bytes:
    """The exact payload that gets signed: compact UTF-8 JSON of the statement."""
    return manifest.statement_bytes()


def sign(
    model_path: str | os.PathLike[str],
    signer: Signer,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    method: str = "files",
    algorithm: str = "sha256",
    shard_size: int | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    allow_symlinks: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SignResult:
    """Hash a model and write a signed OMS bundle (default ``MODEL/model.sig``).

    The bundle is written atomically; on any failure nothing is left behind
    and the model's own files are never touched.
    """
    from provenance._internal.fsutil import atomic_write

    path = Path(model_path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    if sig_path.is_dir():
        raise UsageError(f"signature path '{sig_path}' is a folder; give a file name")
    if path.is_file() and sig_path.exists() and os.path.samefile(path, sig_path):
        raise UsageError("the signature path is the model file itself")
    ignores = [*ignore_paths, *_signature_ignore(path, sig_path)]
    manifest = hash_model(
        path,
        method=method,
        algorithm=algorithm,
        shard_size=shard_size,
        ignore_paths=ignores,
        allow_symlinks=allow_symlinks,
        workers=workers,
        progress=progress,
    )
    if not manifest.resources:
        raise InputError(f"model '{path}' has no files to sign")
    bundle = signer.sign(statement_bytes(manifest))
    atomic_write(sig_path, bundle.to_bytes())
    return SignResult(manifest, bundle, sig_path)


@dataclass(frozen=True)
class VerificationResult:
    """A verified model: who signed it and the manifest its files now match."""

    manifest: Manifest
    signer: str
    method: str
    signature_path: Path
    unsigned_files_ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def root_digest(self) -> str:
        return self.manifest.root_digest


def read_bundle(signature_path: str | os.PathLike[str]) -> Bundle:
    from provenance._internal.fsutil import read_limited
    from provenance.bundle import Bundle

    p = Path(signature_path)
    if not p.exists():
        raise InputError(f"no signature at '{p}'; sign the model first or pass --signature")
    return Bundle.from_bytes(read_limited(p, "signature", 256 << 20), source=f"signature '{p}'")


def _signed_manifest(bundle: Bundle) -> Manifest:
    from provenance.dsse import INTOTO_PAYLOAD_TYPE

    envelope = bundle.envelope
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"signed payload type is {envelope.payload_type!r}, not an in-toto statement"
        )
    try:
        statement = json.loads(envelope.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VerificationError("signed statement is not valid JSON") from None
    try:
        return Manifest.from_statement(statement)
    except InputError as e:
        raise VerificationError(f"signed statement is unusable: {e}") from None
    except (TypeError, AttributeError, ValueError) as e:  # a field of the wrong JSON type
        raise VerificationError(f"signed statement is malformed ({e})") from None


def _compare(
    expected: Manifest, actual: Manifest, ignore_unsigned: bool
) -> tuple[list[str], list[str]]:
    """Per-file differences in words, and the unsigned files that were let through."""
    want = {r.name: r for r in expected.resources}
    have = {r.name: r for r in actual.resources}
    modified: dict[str, None] = {}
    for name, r in want.items():
        other = have.get(name)
        if other is not None and other.digest != r.digest:
            modified[r.path] = None
    missing_res = [want[n] for n in want if n not in have]
    extra_res = [have[n] for n in have if n not in want]
    present_files = {r.path for r in actual.resources}
    signed_files = {r.path for r in expected.resources}
    problems: list[str] = []
    resized = {r.path for r in missing_res} & {r.path for r in extra_res}
    for f in modified:
        problems.append(f"'{f}' was modified")
    for f in dict.fromkeys(r.path for r in missing_res):
        if f in modified:
            continue
        if f in resized or f in present_files:
            problems.append(f"'{f}' was modified (its size changed)")
        else:
            problems.append(f"'{f}' is missing")
    # A signed file that grew by whole shards has every signed shard intact
    # and extra ones besides.
    grown = {r.path for r in extra_res if r.path in signed_files} - set(modified)
    grown -= {r.path for r in missing_res}
    problems.extend(f"'{f}' was modified (its size changed)" for f in sorted(grown))
    unsigned = [f for f in dict.fromkeys(r.path for r in extra_res) if f not in signed_files]
    if not ignore_unsigned:
        problems.extend(f"'{f}' is not covered by the signature" for f in unsigned)
        unsigned = []
    return problems, unsigned


def verify(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_unsigned_files: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerificationResult:
    """Verify a model against its signature; raise :class:`VerificationError` if not.

    The signature is checked first, over the exact signed bytes; only then is
    the statement parsed, and the model re-hashed with the serialization the
    signer recorded. Every file the signature lists must match and, unless
    ``ignore_unsigned_files``, no other file may be present.
    """
    path = Path(model_path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    if not path.exists():
        raise InputError(f"model path '{path}' does not exist")
    bundle = read_bundle(sig_path)
    verified = verifier.verify(bundle)
    expected = _signed_manifest(bundle)
    warnings: list[str] = []
    if verified.legacy:
        warnings.append("signature uses the pre-0.3 model-signing encoding; re-sign the model")

    single = expected.files == ["."]
    if single and path.is_dir():
        raise VerificationError(f"signature is for a single file, but '{path}' is a folder")
    if not single and not path.is_dir():
        raise VerificationError(f"signature is for a folder, but '{path}' is a single file")

    signed_files = set(expected.files)
    ignores = [
        p
        for p in dict.fromkeys(
            [
                *expected.serialization.ignore_paths,
                *DEFAULT_IGNORE_PATHS,
                *_relative_ignores(path, ignore_paths),
                *_signature_ignore(path, sig_path),
            ]
        )
        # A file the signature lists is always checked, whatever the ignore list says.
        if p not in signed_files
    ]
    serialization = expected.serialization
    try:
        actual = _hash(
            path,
            Serialization(
                method=serialization.method,
                hash_type=serialization.hash_type,
                allow_symlinks=serialization.allow_symlinks,
                shard_size=serialization.shard_size,
                ignore_paths=(),
            ),
            extra_ignores=ignores,
            only=expected.files if ignore_unsigned_files and not single else None,
            workers=workers,
            progress=progress,
        )
    except InputError as e:
        # The signed serialization forbids what is on disk (e.g. a symlink).
        raise VerificationError(f"model cannot be checked: {e}") from None
    problems, unsigned = _compare(expected, actual, ignore_unsigned_files)
    if single:  # name the file, not the manifest's "."
        problems = [p.replace("'.'", f"'{path.name}'", 1) for p in problems]
    if ignore_unsigned_files and path.is_dir():
        unsigned = [
            n for n in hashing.list_names(path, ignore_paths=ignores) if n not in signed_files
        ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(
            f"model does not match its signature: {problems[0]}{more}", details=problems
        )
    return VerificationResult(
        manifest=expected,
        signer=verified.signer,
        method=verified.method,
        signature_path=sig_path,
        unsigned_files_ignored=tuple(unsigned),
        warnings=tuple(warnings),
    )


__all__ = [
    "ProvenanceError",
    "SignResult",
    "VerificationResult",
    "default_signature_path",
    "hash_model",
    "sign",
    "verify",
]
