"""Keys held in a KMS or an HSM, through securesystemslib's signers.

securesystemslib already speaks to Google Cloud KMS, AWS KMS, Azure Key
Vault, HashiCorp Vault, PKCS#11 tokens and more, each behind a private-key
URI. This module adapts any of them to the DSSE/bundle signer used here, so
the bundle is the same as for a key on disk: a key hint and a DSSE
signature, verifiable with the public key alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provenance.bundle import Bundle
from provenance.dsse import INTOTO_PAYLOAD_TYPE
from provenance.errors import Hint, InputError, UsageError
from provenance.signing._base import SignerInfo, envelope_for
from provenance.signing._keys import (
    PublicKey,
    check_supported,
    key_hint,
    key_info,
    load_public_key,
    verify_raw,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
    from securesystemslib.signer import Signer

# The securesystemslib scheme that hashes as DSSE-over-ECDSA needs for each curve.
_SCHEME_FOR_CURVE = {
    "secp256r1": "ecdsa-sha2-nistp256",
    "secp384r1": "ecdsa-sha2-nistp384",
    "secp521r1": "ecdsa-sha2-nistp521",
}


PIN_ENV = "PROVENANCE_HSM_PIN"


def _secret(what: str) -> str:
    """securesystemslib asks for a PIN (HSMs) this way; take it from the environment."""
    value = os.environ.get(PIN_ENV)
    if value is None:
        raise InputError(f"the key needs a {what}: set ${PIN_ENV}")
    return value


@dataclass(frozen=True)
class KmsSigner:
    """Adapts a securesystemslib ``Signer`` to provenance's signer shape."""

    signer: Signer
    key: PublicKey
    uri: str

    def public_key(self) -> PublicKey:
        return self.key

    def sign_pae(self, data: bytes) -> bytes:
        try:
            signature = self.signer.sign(data)
        except Exception as e:  # each backend raises its own types
            reason = str(e) or type(e).__name__
            if type(e).__name__ == "PinIncorrect":
                reason = f"the PIN in ${PIN_ENV} is incorrect"
            raise InputError(f"signing with '{self.uri}' failed: {reason}") from None
        raw = bytes.fromhex(signature.signature)
        # Backends do not all check that the private key matches the public
        # key we were given; a signature nobody can verify must not be written.
        if not verify_raw(self.key, raw, data):
            raise InputError(
                f"the signature from '{self.uri}' does not verify with the given public key; "
                "is the public key given this key's?",
                code="kms-key-mismatch",
                hint=Hint.KMS_PUBLIC_KEY,
            )
        return raw

    def sign(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Bundle:
        return Bundle.for_key(envelope_for(self, payload, payload_type), key_hint(self.key))

    def describe(self) -> SignerInfo:
        return key_info(self.key, kind="kms")


def _refuse_non_regular(path: str) -> None:
    """A key file URI must name a regular file: a FIFO would block the signer forever."""
    import stat

    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"cannot read key file '{path}': {e.strerror}", code="not-found") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"key file '{path}' is not a regular file", code="not-regular")


def kms_signer(uri: str, public_key: str | os.PathLike[str] | None = None) -> KmsSigner:
    """A signer for a securesystemslib private-key URI.

    Cloud KMS URIs need the public key (``public_key``, a PEM file) because
    looking it up would need credentials at a different moment than signing;
    an ``hsm:`` URI reads it from the token.
    """
    try:
        import securesystemslib.signer as sslib
    except ImportError:
        raise UsageError(
            "signing with a KMS or HSM key needs securesystemslib (the kms extra)",
            hint=Hint.KMS_EXTRA,
        ) from None
    scheme = uri.split(":", 1)[0]
    if scheme not in sslib.SIGNER_FOR_URI_SCHEME:
        known = ", ".join(sorted(sslib.SIGNER_FOR_URI_SCHEME))
        raise UsageError(f"unknown key URI scheme {scheme!r}; securesystemslib knows {known}")
    if scheme in ("file", "file2"):
        _refuse_non_regular(uri.split(":", 1)[1].split("?", 1)[0])
    key: PublicKeyTypes
    if public_key is not None:
        key = load_public_key(public_key)
        uri_for_signer = uri
    elif scheme == "hsm":
        from urllib.parse import parse_qs, urlparse

        parsed = urlparse(uri)
        try:
            keyid = int(parsed.path) if parsed.path else None
        except ValueError:
            raise UsageError(f"HSM key id in '{uri}' is not a number") from None
        label = parse_qs(parsed.query).get("label", [None])[0]
        try:
            uri_for_signer, sslib_key = sslib.HSMSigner.import_(
                hsm_keyid=keyid, token_label=label, secrets_handler=_secret
            )
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"cannot read the public key from the HSM: {e}") from None
        key = serialization.load_pem_public_key(sslib_key.keyval["public"].encode())
    else:
        raise UsageError(
            f"key '{uri}' needs its public key (a PEM file): it cannot be looked up here",
            hint=Hint.KMS_PUBLIC_KEY,
        )
    check_supported(key, f"key '{uri}'")
    # check_supported refused every other key type; this only tells the type checker.
    assert isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey))
    sslib_key = sslib.SSlibKey.from_crypto(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        sslib_key.scheme = _SCHEME_FOR_CURVE[key.curve.name]
    try:
        signer = sslib.Signer.from_priv_key_uri(uri_for_signer, sslib_key, _secret)
    except FileNotFoundError:
        raise InputError(f"no private key at '{uri.split(':', 1)[1]}' ({uri})") from None
    except Exception as e:
        raise InputError(f"cannot open key '{uri}': {e}") from None
    return KmsSigner(signer, key, uri)
