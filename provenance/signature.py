"""Signing: hash a model, sign its OMS statement, write the bundle atomically.

Data flows one way: files -> manifest (:mod:`provenance.hashing`) ->
statement bytes (:mod:`provenance.manifest`) -> signer -> bundle on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._internal.interop import model_signing_warnings
from provenance.bundle import (
    MAX_BUNDLE_BYTES,
    Bundle,
    cosignature_dir,
    cosignature_path,
    default_signature_path,
    refuse_bundle_as_model,
)
from provenance.errors import Hint, InputError, UsageError
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
    from provenance._internal.fsutil import OutputTarget
    from provenance.signing import Signer, SignerInfo

__all__ = [
    "COSIGNATURE_WARNING_LEAD",
    "SignResult",
    "refuse_bundle_as_model",
    "refuse_private_keys",
    "sign",
]

#: How the warning starts when a new co-signature covers another statement
#: than the signature beside it (see :func:`sign`).
COSIGNATURE_WARNING_LEAD = "co-signature over another statement: "


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
    #: :data:`provenance.attest.STALE_WARNING_LEAD`), a co-signature over
    #: another statement than its signature's (starting with
    #: :data:`COSIGNATURE_WARNING_LEAD`). The signature was written regardless.
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
    cosign: bool | str = False,
    overwrite: bool = False,
    extra_predicate: Mapping[str, Any] | None = None,
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

    With ``cosign`` (``True``, or the co-signature's name), the model is
    signed exactly as usual, but the bundle is a *co-signature*: it goes to
    ``<signature>.d/<name>.sig`` (:func:`provenance.bundle.cosignature_path`;
    the signature is ``signature_path`` or the default one, and is not
    written). The ``.d`` folder is made when missing (never through a link).
    ``cosign=True`` names the file after the signer: the first 16 hex digits
    of its key's fingerprint (a certificate's: its leaf key's), or a Sigstore
    identity in file-name letters. An existing co-signature is replaced only
    with ``overwrite`` (then, as a signature is, only if it holds a bundle).
    The signature beside it, when there is one, is read (not verified): a
    warning starting :data:`COSIGNATURE_WARNING_LEAD` says when it covers
    another statement (the model or its hashing settings changed since), as
    co-signatures count toward a threshold only over one statement.
    :attr:`SignResult.signature_path` is where the co-signature went.

    ``extra_predicate`` adds fields to the signed OMS predicate (OMS v1.0
    verifiers ignore fields they do not know); :mod:`provenance.hub`
    records there where on the Hub the signed files came from.
    """
    from provenance._internal.fsutil import safe_output, write_output

    path = Path(model_path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"model path '{path}' does not exist", code="not-found")
    refuse_bundle_as_model(path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    plan = None
    if cosign is False:
        if overwrite:
            raise UsageError(
                "overwrite is for a co-signature; a signature is replaced whenever it holds one"
            )
        target = safe_output(sig_path, "signature", model_root=path)
    else:
        plan = _Cosignature.prepare(sig_path, signer, cosign, overwrite)
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
    statement = manifest.statement_bytes(extra_predicate)
    bundle = signer.sign(statement)
    out_path = sig_path
    if plan is None:
        write_output(target, bundle.to_bytes())
    else:
        out_path = plan.write(bundle)
    describe = getattr(signer, "describe", None)
    info = describe() if callable(describe) else None
    warnings = ignore_warnings(path, serialization, found, ignore_paths)
    warnings += model_signing_warnings(manifest.serialization, info.key_type if info else None)
    warnings += _stale_attestations(path, manifest.root_digest)
    warnings += _cosignature_folder_warnings(path, sig_path)
    if plan is not None:
        warnings += plan.statement_warnings(manifest, statement)
    return SignResult(manifest, bundle, out_path, info, tuple(warnings))


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
    """The signature and its co-signature folder, when they lie inside the model folder."""
    if not model_path.is_dir():
        return []
    own = os.path.abspath(signature)
    return relative_ignores(model_path, [own, own + ".d"])


def _cosignature_folder_warnings(model_path: Path, signature: Path) -> list[str]:
    """A warning when the co-signature folder inside the model holds more than co-signatures.

    The folder is left out of every signature, so anything else in it is
    covered by none; the listing stops after a few thousand entries.
    """
    folder = cosignature_dir(signature)
    rel = relative_ignores(model_path, [os.path.abspath(folder)]) if model_path.is_dir() else []
    if not rel:
        return []
    others: list[str] = []
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []  # a link or a file there is never listed (co-signing refuses it)
        with os.scandir(folder) as entries:
            for i, entry in enumerate(entries):
                if i >= 4096:
                    break
                if not (entry.name.endswith(".sig") and entry.is_file(follow_symlinks=False)):
                    others.append(entry.name)
    except OSError:
        return []  # no folder (the usual case), or a link or file there: nothing to list
    if not others:
        return []
    shown = ", ".join(f"'{n}'" for n in sorted(others)[:3])
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return [
        f"'{rel[0]}' is left out of the signature (it holds co-signatures), but also holds "
        f"{shown}{more}, which no signature covers"
    ]


#: A name derived from a Sigstore identity: file-name letters, the rest as '_'.
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _cosignature_name(info: SignerInfo) -> str:
    """A co-signature's file name for a signer: its key or its identity, as a file name."""
    if info.kind == "keyless" and info.identity:
        name = _NOT_NAME.sub("_", info.identity)
        if name.startswith("."):
            name = "_" + name
        if len(name) > 64:  # two long identities that start alike keep apart
            import hashlib

            tail = hashlib.sha256(info.identity.encode("utf-8")).hexdigest()[:8]
            name = f"{name[:55]}-{tail}"
        return name
    if info.kind != "keyless" and info.key_fingerprint:
        return info.key_fingerprint[:16]
    raise UsageError(
        f"cannot name a co-signature after {info.description}; give it a name",
        code="cosignature-name-needed",
    )


@dataclass
class _Cosignature:
    """Where a co-signature goes, checked before any hashing, and the signature beside it."""

    signature: Path
    overwrite: bool
    name: str | None  # None: named after the signer once it has signed
    existing: Bundle | InputError | None  # the signature beside it (None: there is none)

    @classmethod
    def prepare(
        cls, signature: Path, signer: Signer, cosign: bool | str, overwrite: bool
    ) -> _Cosignature:
        name: str | None = None
        if isinstance(cosign, str):
            name = cosign
        elif cosign is not True:
            raise UsageError(f"cosign is True or a name, not {cosign!r}")
        else:
            describe = getattr(signer, "describe", None)
            if callable(describe):
                name = _cosignature_name(describe())
        if name is not None:
            cosignature_path(signature, name)  # the name is checked before anything is hashed
        plan = cls(signature, overwrite, name, _read_beside(signature))
        folder = cosignature_dir(signature)
        if plan._folder_exists():
            if name is not None:
                plan._check_target(cosignature_path(signature, name))
        elif not os.path.isdir(folder.parent):
            raise InputError(
                f"cannot write co-signatures into '{folder}': folder '{folder.parent}' "
                "does not exist",
                code="not-found",
            )
        return plan

    def _folder_exists(self) -> bool:
        """Whether the ``.d`` folder is there; anything but a folder there is refused."""
        from provenance._internal.fsutil import _kind_of

        folder = cosignature_dir(self.signature)
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise InputError(
                f"cannot write co-signatures into '{folder}': {e.strerror}", code="output-refused"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"refusing to write co-signatures into '{folder}': it is "
                f"{_kind_of(st.st_mode)}, not a folder",
                code="output-refused",
                hint=Hint.SIGNATURE_PATH,
            )
        return True

    def _check_target(self, target: Path) -> OutputTarget:
        """The co-signature's path: new, or (with overwrite) a regular file holding a bundle.

        The folder is left out of the model's manifest, so what is in it is
        not one of the model's files: the model-file rule does not apply.
        """
        from provenance._internal.fsutil import safe_output

        if os.path.lexists(target) and not self.overwrite:
            raise InputError(
                f"co-signature '{target}' already exists; refusing to replace it",
                code="cosignature-exists",
            )
        checked = safe_output(target, "signature")
        folder = target.parent
        if checked.folder != os.path.join(os.path.realpath(folder.parent), folder.name):
            # safe_output resolved the folder through a link put there meanwhile.
            raise InputError(
                f"refusing to write co-signatures into '{folder}': it is no longer a folder",
                code="output-refused",
            )
        return checked

    def write(self, bundle: Bundle) -> Path:
        """Write the co-signature, making its folder if needed; returns where it went."""
        from provenance._internal.fsutil import write_output

        name = self.name
        if name is None:
            from provenance.signing import describe_bundle

            name = _cosignature_name(describe_bundle(bundle))
        path = cosignature_path(self.signature, name)
        made = _make_folder(cosignature_dir(self.signature)) if not self._folder_exists() else False
        try:
            write_output(self._check_target(path), bundle.to_bytes())
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(cosignature_dir(self.signature))  # only if still empty
            raise
        return path

    def statement_warnings(self, manifest: Manifest, statement: bytes) -> list[str]:
        """What the signature beside this co-signature says about the statement signed."""
        sig = self.signature
        if self.existing is None:
            return [
                f"there is no signature at '{sig}' yet; a co-signature counts toward a "
                "threshold beside a signature over the same statement"
            ]
        if isinstance(self.existing, InputError):
            return [
                f"the signature at '{sig}' could not be read to compare it with this "
                f"co-signature ({self.existing})"
            ]
        if self.existing.envelope.payload == statement:
            return []
        why = "covers another statement"
        try:
            from provenance.intoto import Statement

            theirs = Manifest.from_statement(Statement.parse(self.existing.envelope.payload))
        except InputError:
            theirs = None
        if theirs is not None:
            ours, recorded = manifest.serialization, theirs.serialization
            if dataclasses.replace(recorded, ignore_paths=ours.ignore_paths) != ours:
                why = "records other hashing settings (method, hash, shard size or links)"
            elif theirs.root_digest != manifest.root_digest:
                why = (
                    f"covers other model contents (root digest sha256:"
                    f"{theirs.root_digest[:16]}... there, sha256:{manifest.root_digest[:16]}... "
                    "here)"
                )
            elif recorded.ignore_paths != ours.ignore_paths:
                why = "covers the same files but records another ignore list"
                folder = "model.sig.d"
                if folder in ours.ignore_paths and folder not in recorded.ignore_paths:
                    why += " (without 'model.sig.d': it was made before co-signatures existed)"
            elif theirs.model_name != manifest.model_name:
                why = f"names the model {theirs.model_name!r}, not {manifest.model_name!r}"
        return [
            f"{COSIGNATURE_WARNING_LEAD}'{sig}' {why}; co-signatures over different "
            "statements do not count together toward a threshold"
        ]


def _read_beside(signature: Path) -> Bundle | InputError | None:
    """The signature a co-signature goes beside: None when absent, read and not verified.

    It must be what ``sign`` could write over (a regular file, not a link,
    holding a signature); anything else there is refused, since a model file
    named as the signature would be left out of the statement signed.
    """
    from provenance._internal.fsutil import _kind_of, holds_bundles, read_regular

    try:
        st = os.lstat(signature)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(
            f"cannot examine the signature at '{signature}': {e.strerror}", code="unreadable"
        ) from None
    refuse = f"refusing to co-sign beside '{signature}': it is "
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{refuse}{_kind_of(st.st_mode)}, not a signature",
            code="output-refused",
            hint=Hint.SIGNATURE_PATH,
        )
    try:
        data = read_regular(signature, "signature", MAX_BUNDLE_BYTES)
    except InputError as e:
        return e
    if not holds_bundles(data, "signature"):
        raise InputError(
            f"{refuse}a file that does not hold a signature",
            code="output-refused",
            hint=Hint.SIGNATURE_PATH,
        )
    try:
        return Bundle._parse_file(data, signature, "signature")
    except InputError as e:
        return e


def _make_folder(folder: Path) -> bool:
    """Make the co-signature folder (mode 0o755); False when it appeared meanwhile."""
    from provenance._internal.fsutil import _kind_of

    try:
        os.mkdir(folder, 0o755)
    except FileExistsError:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"refusing to write co-signatures into '{folder}': it is "
                f"{_kind_of(st.st_mode)}, not a folder",
                code="output-refused",
            ) from None
        return False
    except OSError as e:
        why = e.strerror
        raise InputError(f"cannot make folder '{folder}': {why}", code="unwritable") from None
    # The mode whatever the umask, as signatures get theirs; set through the
    # folder just made, never through a link put in its place.
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(folder, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(
            f"refusing to write co-signatures into '{folder}': it changed as it was made "
            f"({e.strerror})",
            code="output-refused",
        ) from None
    try:
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)
    return True
