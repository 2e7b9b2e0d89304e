"""Signing: hash a model, sign its OMS statement, write the bundle atomically.

Data flows one way: files -> manifest (:mod:`provenance.hashing`) ->
statement bytes (:mod:`provenance.manifest`) -> signer -> bundle on disk.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._internal.interop import model_signing_warnings
from provenance.bundle import Bundle, default_signature_path, refuse_bundle_as_model
from provenance.errors import Hint, InputError
from provenance.hashing import (
    Progress,
    Walk,
    hash_tree,
    ignore_warnings,
    relative_ignores,
    serialization_for,
)
from provenance.manifest import Manifest, Serialization

if TYPE_CHECKING:
    from provenance._internal.engine import FileEntry
    from provenance.signing import Signer, SignerInfo

__all__ = ["SignResult", "refuse_bundle_as_model", "refuse_private_keys", "sign"]


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` produced: the manifest signed, the bundle and where it went."""

    manifest: Manifest
    bundle: Bundle
    signature_path: Path
    signer: SignerInfo | None = None
    #: Things the signer should know: ignores that hid nothing, settings
    #: model-signing cannot verify, attestations about another digest than
    #: the one signed (they start with
    #: :data:`provenance.attest.STALE_WARNING_LEAD`). The signature was
    #: written regardless.
    warnings: tuple[str, ...] = ()

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
            "warnings": list(self.warnings),
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
    key_file: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SignResult:
    """Hash a model and write a signed OMS bundle (default ``MODEL/model.sig``).

    The bundle is written atomically; on any failure nothing is left behind
    and the model's own files are never touched. The signature path must be
    new or already hold a signature, and may not be one of the model's own
    files (:func:`provenance._internal.fsutil.safe_output`); both are
    checked before any hashing.

    A model that holds a private key is refused (a signed, published model
    would publish the key): any file of the manifest that is the signing
    key's file (``key_file``, the file the signer was loaded from, when there
    is one) or a PEM file with a private key in it. Leaving such a file out
    with ``ignore_paths`` is the way out.
    """
    from provenance._internal.fsutil import safe_output, write_output

    path = Path(model_path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"model path '{path}' does not exist", code="not-found")
    refuse_bundle_as_model(path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    target = safe_output(sig_path, "signature", model_root=path)
    serialization = serialization_for(
        path,
        method=method,
        algorithm=algorithm,
        shard_size=shard_size,
        ignore_paths=[*ignore_paths, *_signature_ignore(path, sig_path)],
        allow_symlinks=allow_symlinks,
    )
    manifest, found = _hash_for_signing(path, serialization, workers=workers, progress=progress)
    refuse_private_keys(path, serialization, key_file=key_file, files=found.files)
    bundle = signer.sign(manifest.statement_bytes())
    write_output(target, bundle.to_bytes())
    describe = getattr(signer, "describe", None)
    info = describe() if callable(describe) else None
    warnings = ignore_warnings(path, serialization, found, ignore_paths)
    warnings += model_signing_warnings(manifest.serialization, info.key_type if info else None)
    warnings += _stale_attestations(path, manifest.root_digest)
    return SignResult(manifest, bundle, sig_path, info, tuple(warnings))


def _stale_attestations(path: Path, root_digest: str) -> list[str]:
    """A warning when the model's attestations name another digest than the one signed.

    Read, not verified (nobody needs to trust a line to know it is stale);
    a file that cannot be read is a warning too, never a failure of sign.
    """
    from provenance.attest import stale_attestations
    from provenance.errors import ProvenanceError

    try:
        stale = stale_attestations(path, root_digest)
    except ProvenanceError as e:
        return [f"the model's attestations could not be checked against the new digest: {e}"]
    return [stale.message] if stale is not None else []


#: Files up to this size are looked at for private keys (a PEM key is a few KiB).
PRIVATE_KEY_SCAN_BYTES = 64 << 10
#: The smallest PEM private key (Ed25519 in PKCS #8) is 119 bytes.
_MIN_PEM_KEY_BYTES = 100
_KEY_SUFFIXES = (".pem", ".key", ".crt", ".cer", ".der", ".p8", ".pk8", ".pkcs8", ".priv")
_KEY_NAMES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")


def _named_like_a_key(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(_KEY_SUFFIXES) or base.startswith(_KEY_NAMES)


_O_PEEK = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----")


def refuse_private_keys(
    model_path: str | os.PathLike[str],
    serialization: Serialization,
    *,
    key_file: str | os.PathLike[str] | None = None,
    files: Sequence[FileEntry] | None = None,
) -> None:
    """Refuse a model whose manifest would include a private key.

    ``files`` are the walked files when the caller has them (``sign`` passes
    those it just hashed, so the tree is walked once).

    Looked at: every file the signature would list (the same walk, ignores
    and link rule as hashing) that is the size of ``key_file`` (compared
    byte for byte), or of at most :data:`PRIVATE_KEY_SCAN_BYTES` and named
    like a key (``*.pem``, ``*.key``, ...; searched for a PEM ``PRIVATE KEY``
    header line). Other files cost nothing beyond the walk's ``stat``.
    """
    from provenance._internal.fsutil import read_limited
    from provenance.hashing import LinkPolicy, walk

    path = Path(model_path)
    key_bytes = None
    if key_file is not None:
        key_bytes = read_limited(key_file, "private key", 1 << 20)
    if files is None:
        ignores = list(serialization.ignore_paths) if path.is_dir() else []
        links = LinkPolicy(follow=serialization.allow_symlinks)
        files = walk(path, ignore_paths=ignores, links=links).files
    key_size = len(key_bytes) if key_bytes is not None else -1
    # Only files that could be the key (its size) or are named like keys are
    # opened: a 200,000-file dataset must not pay an extra open per file.
    candidates = [
        e
        for e in files
        if e.size == key_size
        or (_MIN_PEM_KEY_BYTES <= e.size <= PRIVATE_KEY_SCAN_BYTES and _named_like_a_key(e.name))
    ]

    reasons = [_private_key_in(e.path, e.size, key_bytes) for e in candidates]
    found_keys = zip(candidates, reasons, strict=True)
    problems = [(e.name, why) for e, why in found_keys if why is not None]
    if not problems:
        return
    if problems[0][0] == ".":
        raise InputError(
            f"model '{path}' is {problems[0][1]}; refusing to sign a private key",
            code="private-key-in-model",
        )
    messages = [f"'{name}' in the model is {why}" for name, why in problems]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise InputError(
        f"{messages[0]}{more}; refusing to sign a private key into the model",
        details=messages,
        code="private-key-in-model",
        hint=Hint.IGNORE_PATH,
    )


def _private_key_in(file: str, size: int, key_bytes: bytes | None) -> str | None:
    """Why this file is a private key (in words), or None; unreadable files are hashing's."""
    same_size = key_bytes is not None and size == len(key_bytes)
    if size == 0 or (size > PRIVATE_KEY_SCAN_BYTES and not same_size):
        return None
    # The walk saw a regular file; opened without blocking and checked again
    # (as hashing does), since it is opened by path once more.
    try:
        fd = os.open(file, _O_PEEK)
    except OSError:
        return None  # hashing reports what changed
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, 4096)
        named = _named_like_a_key(os.path.basename(file))
        pem = head.lstrip().startswith(b"-----BEGIN")
        if not (same_size or named or pem):
            return None
        want = max(size, PRIVATE_KEY_SCAN_BYTES) + 1
        data = head
        while len(data) < want:
            chunk = os.read(fd, want - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    if same_size and data == key_bytes:
        return "a copy of the signing key"
    if (named or pem) and len(data) <= PRIVATE_KEY_SCAN_BYTES and _PEM_PRIVATE_KEY.search(data):
        return "a PEM private key"
    if named and data[:1] == b"\x30" and len(data) <= PRIVATE_KEY_SCAN_BYTES:
        return _der_private_key(data)
    return None


def _der_private_key(data: bytes) -> str | None:
    """A DER private key (PKCS#8, SEC1 or PKCS#1; encrypted or not), in words."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:  # it is encrypted: still a private key
        return "an encrypted DER private key"
    except (ValueError, UnsupportedAlgorithm):
        return None
    return "a DER private key"


def _hash_for_signing(
    path: Path,
    serialization: Serialization,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[Manifest, Walk]:
    """The manifest a new signature covers; a tree with no files cannot be signed."""
    manifest, found = hash_tree(path, serialization, workers=workers, progress=progress)
    if not manifest.resources:
        raise InputError(f"model '{path}' has no files to sign", code="empty-model")
    return manifest, found


def _signature_ignore(model_path: Path, signature: Path) -> list[str]:
    if not model_path.is_dir():
        return []
    return relative_ignores(model_path, [os.path.abspath(signature)])
