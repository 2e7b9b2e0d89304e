"""Plain-key signing: ECDSA P-256/P-384/P-521 and Ed25519 over the DSSE PAE.

ECDSA hashes by curve (P-256 with SHA-256, P-384 with SHA-384, P-521 with
SHA-512) and signatures are DER, as ``model-signing`` and Sigstore do, so
either tool verifies the other's signatures.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provenance._internal.fsutil import read_limited
from provenance._internal.jsonshape import array, opt_obj, opt_str
from provenance.bundle import Bundle
from provenance.dsse import INTOTO_PAYLOAD_TYPE, Envelope, b64decode, legacy_pae, pae
from provenance.errors import Hint, InputError, VerificationError
from provenance.signing._base import SignerInfo, Verified, envelope_for

if TYPE_CHECKING:
    from collections.abc import Iterable

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVE_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_CURVE_LABEL = {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384", "secp521r1": "ECDSA P-521"}


def describe_key(key: PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return _CURVE_LABEL.get(key.curve.name, key.curve.name)


def check_supported(key: object, source: str) -> None:
    """Refuse key types and curves other implementations could not verify."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name in _CURVE_HASH:
            return
        raise InputError(
            f"{source} uses curve {key.curve.name}; use P-256, P-384, P-521 or Ed25519"
        )
    kind = type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "")
    article = "an" if kind[:1].upper() in "AEIOU" or kind.startswith(("RSA", "X")) else "a"
    raise InputError(f"{source} is {article} {kind} key; use ECDSA P-256, P-384, P-521 or Ed25519")


def sign_raw(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_CURVE_HASH[key.curve.name]()))


def verify_raw(
    key: PublicKey, signature: bytes, data: bytes, *, prehash: str | None = None
) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            algo: hashes.HashAlgorithm = (
                hashes.SHA256() if prehash == "sha256" else _CURVE_HASH[key.curve.name]()
            )
            key.verify(signature, data, ec.ECDSA(algo))
    except InvalidSignature:
        return False
    return True


def _short_hint(hint: str) -> str:
    """A key hint as people compare them: 16 hex digits (or the hint as written)."""
    printable = "".join(c for c in hint[:88] if c.isprintable())
    return printable[:16] if len(printable) == 64 else printable


def key_hint(key: PublicKey) -> str:
    """Lower-case hex SHA-256 of the SubjectPublicKeyInfo PEM (model-signing's hint)."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _hint_forms(key: PublicKey) -> set[str]:
    """Every spelling of a key hint seen in the wild, for reading."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forms = set()
    for blob in (pem, der):
        digest = hashlib.sha256(blob).digest()
        forms.add(digest.hex())
        forms.add(base64.b64encode(digest).decode("ascii"))
        forms.add(base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="))
        forms.add(base64.b64encode(digest).decode("ascii").rstrip("="))
    return forms


#: Largest key file read: a PEM key is a few hundred bytes, with comments a few KiB.
MAX_KEY_BYTES = 1 << 20

Password = str | bytes | None


def load_private_key(
    path: str | os.PathLike[str],
    password: Password | Callable[[], Password] = None,
) -> PrivateKey:
    """A PEM private key from a file; ``password`` is used only if the key is encrypted.

    ``password`` may be a callable, asked only for an encrypted key (so a
    caller can prompt, or read an environment variable, just when needed).
    A password given for a key that is not encrypted is ignored.
    """
    data = read_limited(path, "private key", MAX_KEY_BYTES)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: it needs the password
        secret = password() if callable(password) else password
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not secret:
            raise InputError(
                f"private key '{path}' is encrypted; give its password",
                code="key-encrypted",
                hint=Hint.KEY_PASSWORD,
            ) from None
        key = _decrypt(path, data, secret)
    except ValueError:
        raise _not_a_private_key(path, data) from None
    except UnsupportedAlgorithm:
        raise InputError(f"private key '{path}' uses an unsupported algorithm") from None
    check_supported(key, f"private key '{path}'")
    return key  # type: ignore[return-value]


def _decrypt(path: str | os.PathLike[str], data: bytes, secret: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except (TypeError, ValueError):
        raise InputError(
            f"wrong password for private key '{path}'",
            code="wrong-password",
            hint=Hint.KEY_PASSWORD,
        ) from None
    except UnsupportedAlgorithm:
        raise InputError(f"private key '{path}' uses an unsupported algorithm") from None


def _not_a_private_key(path: str | os.PathLike[str], data: bytes) -> InputError:
    if b"PUBLIC KEY-----" in data or b"CERTIFICATE-----" in data:
        return InputError(
            f"'{path}' is a public key or certificate, not a private key; sign with the "
            "private key",
            code="not-a-private-key",
        )
    return InputError(f"'{path}' is not a PEM private key", code="not-a-private-key")


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """A PEM public key from a file (a private key is refused, with the reason)."""
    data = read_limited(path, "public key", MAX_KEY_BYTES)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY" in data:
            raise InputError(
                f"'{path}' is a private key; verify with the public key",
                code="not-a-public-key",
            ) from None
        raise InputError(f"'{path}' is not a PEM public key", code="not-a-public-key") from None
    check_supported(key, f"public key '{path}'")
    return key  # type: ignore[return-value]


def verify_envelope(key: PublicKey, envelope: Envelope) -> bool:
    """Check the DSSE signature; returns True when only the legacy 0.2 PAE matched.

    ``model-signing`` 0.2 signed a malformed PAE, with SHA-256 on every curve;
    accepting it changes nothing for a standard PAE since the two encodings
    cannot collide (see :func:`provenance.dsse.legacy_pae`).
    """
    if verify_raw(key, envelope.signature, pae(envelope.payload_type, envelope.payload)):
        return False
    if envelope.payload_type == INTOTO_PAYLOAD_TYPE and isinstance(key, ec.EllipticCurvePublicKey):
        old = legacy_pae(envelope.payload)
        if verify_raw(key, envelope.signature, old) or verify_raw(
            key, envelope.signature, old, prehash="sha256"
        ):
            return True
    raise VerificationError("the signature does not match the signed statement (bad signature)")


@dataclass(frozen=True)
class KeySigner:
    """Signs with a private key held in memory; the bundle carries a key hint."""

    private_key: PrivateKey

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        password: Password | Callable[[], Password] = None,
    ) -> KeySigner:
        """Load the key; ``password`` (or a callable) is used only if it is encrypted."""
        return cls(load_private_key(path, password))

    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def sign_pae(self, data: bytes) -> bytes:
        return sign_raw(self.private_key, data)

    def sign(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Bundle:
        return Bundle.for_key(
            envelope_for(self, payload, payload_type), key_hint(self.public_key())
        )

    def describe(self) -> SignerInfo:
        return key_info(self.public_key())


def describe_key_file(path: str | os.PathLike[str]) -> SignerInfo:
    """A key file's type and fingerprint, from its public or its private half.

    The fingerprint is the hex SHA-256 of the public key's SubjectPublicKeyInfo
    PEM: the OMS key hint a signature carries, and what a policy pins.
    """
    data = read_limited(path, "key", 1 << 20)
    if b"-----BEGIN" not in data:
        raise InputError(
            f"'{path}' is not a PEM key (neither a public nor a private key)", code="not-a-key"
        )
    if b"PRIVATE KEY" in data:
        password = os.environ.get("PROVENANCE_KEY_PASSWORD")
        return key_info(
            load_private_key(path, password if b"ENCRYPTED" in data else None).public_key()
        )
    return key_info(load_public_key(path))


def key_info(key: PublicKey, kind: str = "key") -> SignerInfo:
    """A plain key as a signer: its type and fingerprint (the OMS key hint)."""
    fingerprint = key_hint(key)
    label = describe_key(key)
    return SignerInfo(
        kind="kms" if kind == "kms" else "key",
        description=f"{label} key {fingerprint[:16]}",
        key_fingerprint=fingerprint,
        key_type=label,
    )


class KeyVerifier:
    """Accepts bundles signed by one of the given public keys."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise InputError("no public key given to verify with")

    @classmethod
    def from_files(cls, *paths: str | os.PathLike[str]) -> KeyVerifier:
        return cls(load_public_key(p) for p in paths)

    def verify_artifact(
        self,
        artifact: bytes,
        raw_bundle: Mapping[str, Any],
        trusted_root: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    ) -> Verified:
        """A key-signed Sigstore bundle over any artifact; see :func:`verify_artifact`."""
        return verify_artifact(self, artifact, raw_bundle, trusted_root)

    def verify(self, bundle: Bundle) -> Verified:
        if bundle.kind != "public_key":
            raise wrong_kind(bundle, "a plain key")
        candidates = self.keys
        if bundle.key_hint:
            candidates = [k for k in self.keys if bundle.key_hint in _hint_forms(k)]
            if not candidates:
                given = ", ".join(key_hint(k)[:16] for k in self.keys)
                raise VerificationError(
                    f"signature was made with a different key: it names key "
                    f"{_short_hint(bundle.key_hint)}, the key given is {given}",
                    code="wrong-key",
                    hint=Hint.KEY,
                )
        elif bundle.key_raw:
            try:
                embedded = serialization.load_pem_public_key(bundle.key_raw)
            except (ValueError, UnsupportedAlgorithm):
                raise InputError("signature's embedded public key is malformed") from None
            candidates = [k for k in self.keys if k == embedded]
            if not candidates:
                raise VerificationError(
                    "signature was made with a different key", code="wrong-key", hint=Hint.KEY
                )
        last: VerificationError | None = None
        for key in candidates:
            try:
                legacy = verify_envelope(key, bundle.envelope)
            except VerificationError as e:
                last = e
                continue
            envelope = bundle.envelope
            return Verified(key_info(key), envelope.payload_type, envelope.payload, legacy)
        assert last is not None
        raise last


_KIND_WORDS = {
    "public_key": "a plain key",
    "x509_chain": "a certificate chain",
    "sigstore": "a Sigstore keyless identity",
}
_KIND_HINT = {
    "public_key": ("the signer's public key", Hint.KEY),
    "x509_chain": ("the trusted root certificate", Hint.ROOT),
    "sigstore": ("the signer's Sigstore identity and issuer", Hint.IDENTITY),
}


def wrong_kind(bundle: Bundle, wanted: str) -> VerificationError:
    """The signature is of another kind than the verifier checks; say which to use."""
    words, hint = _KIND_HINT[bundle.kind]
    return VerificationError(
        f"signature was made with {_KIND_WORDS[bundle.kind]}, not {wanted}; verify it with {words}",
        code="wrong-signature-kind",
        hint=hint,
    )


def _message_signature(raw_bundle: Mapping[str, Any]) -> tuple[bytes, bytes | None]:
    message = raw_bundle.get("messageSignature")
    if not isinstance(message, Mapping):
        raise InputError("bundle has no messageSignature")
    signature = b64decode(message.get("signature"), "messageSignature.signature")
    digest_info = message.get("messageDigest")
    digest = None
    if isinstance(digest_info, Mapping):
        if digest_info.get("algorithm") not in ("SHA2_256", None):
            raise VerificationError(f"unsupported message digest {digest_info.get('algorithm')}")
        digest = b64decode(digest_info.get("digest"), "messageDigest.digest")
    return signature, digest


def verify_artifact(
    verifier: KeyVerifier,
    artifact: bytes,
    raw_bundle: Mapping[str, Any] | str | bytes,
    trusted_root: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> Verified:
    """Check a key-signed bundle over an arbitrary artifact (not a model).

    Both a ``messageSignature`` over the artifact and a DSSE in-toto statement
    whose subject is the artifact's SHA-256 are accepted. Log entries, if the
    bundle has them, are checked against ``trusted_root`` (required then).
    The bundle is untrusted input of any shape: whatever is malformed in it
    is a verification failure, never another exception.
    """
    if isinstance(raw_bundle, (str, bytes)):
        try:
            raw_bundle = json.loads(raw_bundle)
        except ValueError:
            raise VerificationError("bundle is not valid JSON") from None
    if not isinstance(raw_bundle, Mapping):
        raise VerificationError("bundle is not a JSON object")
    try:
        return _verify_artifact(verifier, artifact, raw_bundle, trusted_root)
    except InputError as e:  # a malformed bundle: it does not verify
        raise VerificationError(f"bundle is malformed: {e}", code="bundle-malformed") from None


def _verify_artifact(
    verifier: KeyVerifier,
    artifact: bytes,
    raw_bundle: Mapping[str, Any],
    trusted_root: Mapping[str, Any] | str | os.PathLike[str] | None,
) -> Verified:
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    root: Mapping[str, Any] | None
    if isinstance(trusted_root, (str, os.PathLike)):
        try:
            root = json.loads(read_limited(trusted_root, "trusted root", 16 << 20))
        except ValueError:
            raise InputError(f"trusted root '{trusted_root}' is not valid JSON") from None
        if not isinstance(root, Mapping):
            raise InputError(f"trusted root '{trusted_root}' is not a JSON object")
    else:
        root = trusted_root
    digest = hashlib.sha256(artifact).digest()
    material = opt_obj(raw_bundle.get("verificationMaterial"), "verificationMaterial")
    hint = opt_str(
        opt_obj(material.get("publicKey"), "verificationMaterial.publicKey").get("hint"),
        "publicKey.hint",
    )
    candidates = [k for k in verifier.keys if not hint or hint in _hint_forms(k)]
    if not candidates:
        raise VerificationError("bundle was signed with a different key (the key hint differs)")
    if "dsseEnvelope" in raw_bundle:
        envelope = Envelope.from_json(raw_bundle["dsseEnvelope"])
        signature = envelope.signature
        for key in candidates:
            with contextlib.suppress(VerificationError):
                verify_envelope(key, envelope)
                break
        else:
            raise VerificationError("the signature does not match the signed statement")
        _check_subject(envelope.payload, digest)
        signed_key = key
        logged_digest = hashlib.sha256(pae(envelope.payload_type, envelope.payload)).digest()
    else:
        signature, claimed = _message_signature(raw_bundle)
        if claimed is not None and claimed != digest:
            raise VerificationError("bundle signs a different artifact (message digest differs)")
        for key in candidates:
            if isinstance(key, ed25519.Ed25519PublicKey):
                ok = verify_raw(key, signature, artifact)
            else:
                try:
                    key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
                    ok = True
                except InvalidSignature:
                    ok = False
            if ok:
                signed_key = key
                break
        else:
            raise VerificationError("the signature does not match the artifact and key")
        logged_digest = digest
    entries = array(material.get("tlogEntries") or [], "verificationMaterial.tlogEntries")
    if entries:
        if root is None:
            raise VerificationError("bundle has log entries but no trusted root was given")
        from provenance.signing._rekor import verify_log_entry

        pem = signed_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        needs_proof = raw_bundle.get("mediaType") not in (
            "application/vnd.dev.sigstore.bundle+json;version=0.1",
        )
        for entry in entries:
            if needs_proof and not (isinstance(entry, Mapping) and entry.get("inclusionProof")):
                raise VerificationError("log entry lacks the inclusion proof bundles v0.2+ require")
            verify_log_entry(
                entry,
                trusted_root=root,
                signature=signature,
                public_key_pem=pem,
                artifact_digest=logged_digest,
            )
    if "dsseEnvelope" in raw_bundle:
        return Verified(key_info(signed_key), envelope.payload_type, envelope.payload)
    return Verified(key_info(signed_key), "application/octet-stream", artifact)


def _check_subject(payload: bytes, digest: bytes) -> None:
    """The signed statement names the artifact's SHA-256 among its subjects."""
    from provenance.intoto import Statement

    try:
        statement = Statement.parse(payload)
    except InputError as e:
        raise VerificationError(f"signed statement is malformed: {e}") from None
    if not statement.has_subject_digest(digest.hex()):
        raise VerificationError("signed statement is about a different artifact")


#: The key types ``generate_key`` makes, by the name the CLI takes.
KEY_TYPES: dict[str, Callable[[], PrivateKey]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def generate_key(
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str],
    *,
    key_type: str = "p256",
    password: str | None = None,
) -> SignerInfo:
    """Make a signing key: its private half (PKCS#8, mode 0600) and its public half.

    Both files must be new: a key is never written over another, nor through
    a link. With ``password`` the private key is encrypted (the password
    ``sign`` reads from $PROVENANCE_KEY_PASSWORD or a prompt).
    """
    make = KEY_TYPES.get(key_type)
    if make is None:
        raise InputError(
            f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}", code="key-type"
        )
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise InputError(
                f"'{os.fspath(path)}' exists; a key is never written over a file",
                code="key-exists",
                hint=Hint.OUTPUT_PATH,
            )
    key = make()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private, 0o600)
    try:
        _write_new(public_path, public, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(private_path)
        raise
    return key_info(key.public_key())


def _write_new(path: str | os.PathLike[str], data: bytes, mode: int) -> None:
    # O_EXCL: fails on anything already there, a link included
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as e:
        raise InputError(
            f"cannot write '{os.fspath(path)}': {e.strerror}", code="unwritable"
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
