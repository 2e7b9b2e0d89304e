"""Signing: hash a model, sign its OMS statement, write the bundle atomically.

Data flows one way: files -> manifest (:mod:`provenance.hashing`) ->
statement bytes (:mod:`provenance.manifest`) -> signer -> bundle on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.bundle import Bundle, default_signature_path
from provenance.errors import InputError, UsageError
from provenance.hashing import Progress, hash_as, relative_ignores, serialization_for
from provenance.manifest import Manifest, Serialization

if TYPE_CHECKING:
    from provenance.signing import Signer, SignerInfo

__all__ = ["SignResult", "sign"]


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` produced: the manifest signed, the bundle and where it went."""

    manifest: Manifest
    bundle: Bundle
    signature_path: Path
    signer: SignerInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """What was signed, by whom, and where the signature went (``sign --json``).

        ``signer`` has the shape ``verify`` reports, so a release log and a
        verification log name a signer alike. A signer that cannot describe
        itself is described from the bundle it wrote (read, not verified).
        ``files`` counts files, ``resource_count`` the digests (shards).
        """
        from provenance.signing import describe_bundle

        m = self.manifest
        signer = self.signer if self.signer is not None else describe_bundle(self.bundle)
        return {
            "ok": True,
            "model_name": m.model_name,
            "root_digest": m.root_digest,
            "signature": str(self.signature_path),
            "signer": signer.to_json(),
            "files": len(m.files),
            "resource_count": len(m.resources),
            "serialization": m.serialization.to_json(),
        }


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
    serialization = serialization_for(
        path,
        method=method,
        algorithm=algorithm,
        shard_size=shard_size,
        ignore_paths=[*ignore_paths, *_signature_ignore(path, sig_path)],
        allow_symlinks=allow_symlinks,
    )
    manifest = sign_manifest_of(path, serialization, workers=workers, progress=progress)
    bundle = signer.sign(manifest.statement_bytes())
    atomic_write(sig_path, bundle.to_bytes())
    describe = getattr(signer, "describe", None)
    return SignResult(manifest, bundle, sig_path, describe() if callable(describe) else None)


def sign_manifest_of(
    path: Path,
    serialization: Serialization,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """The manifest a new signature covers; a tree with no files cannot be signed."""
    manifest = hash_as(path, serialization, workers=workers, progress=progress)
    if not manifest.resources:
        raise InputError(f"model '{path}' has no files to sign", code="empty-model")
    return manifest


def _signature_ignore(model_path: Path, signature: Path) -> list[str]:
    if not model_path.is_dir():
        return []
    return relative_ignores(model_path, [os.path.abspath(signature)])
