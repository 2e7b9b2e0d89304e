"""Signers and public keys for in-toto links and layouts.

in-toto signs with securesystemslib signers and names keys by
securesystemslib key ids, so this module is the bridge: it turns the key
files and KMS/HSM URIs that ``provenance sign`` takes into securesystemslib
signers, and PEM public keys into the key dictionaries a layout lists.
The key types are this project's (ECDSA P-256/P-384/P-521, Ed25519), so a
functionary's key signs models and links alike.

What does not cross over, and why: Sigstore keyless signing and X.509
certificates. securesystemslib's Sigstore key type is marked unstable, is
not registered by default (so in-toto's verifier cannot read such a layout
unless every verifier opts in) and verifies only against the public
Sigstore instance, online; in-toto has no notion of a certificate chain.
Both are refused with that reason rather than producing links no verifier
can check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError

if TYPE_CHECKING:
    from securesystemslib.signer import Key, Signer

__all__ = [
    "SIGSTORE_UNSUPPORTED",
    "as_signer",
    "key_dict",
    "key_signer",
    "keyid_of",
    "kms_signer",
    "public_key_dict",
]

#: Why links and layouts cannot be signed keyless (shown to users as is).
SIGSTORE_UNSUPPORTED = (
    "in-toto links and layouts cannot be signed with Sigstore keyless here: "
    "securesystemslib's Sigstore keys are unstable and not registered by default, "
    "so in-toto's verifier (in-toto-verify, verify-pipeline) cannot check them, "
    "and they verify only online against the public Sigstore; sign with a key file "
    "or a KMS/HSM key"
)
CERTIFICATE_UNSUPPORTED = (
    "in-toto links and layouts name functionaries by public key, not by certificate: "
    "sign with the certificate's private key alone, and list its public key in the layout"
)

_Password = str | bytes | None


def key_signer(
    path: str | os.PathLike[str],
    password: _Password | Callable[[], _Password] = None,
) -> Signer:
    """A securesystemslib signer for a PEM private key file (ECDSA or Ed25519).

    ``password`` (or a callable asked only when needed) decrypts an
    encrypted key, as for ``provenance sign``.
    """
    from provenance.signing._keys import load_private_key

    return _crypto_signer(load_private_key(path, password))


def kms_signer(uri: str, public_key: str | os.PathLike[str] | None = None) -> Signer:
    """A securesystemslib signer for a KMS or HSM key URI (``gcpkms:``, ``awskms:``,
    ``azurekms:``, ``hv:``, ``hsm:``, ``file2:`` ...), as ``provenance sign --kms``.

    ``public_key`` is the key's PEM file where the URI cannot look it up.
    """
    from provenance.signing._kms import kms_signer as _kms

    return _kms(uri, public_key=public_key).signer


def as_signer(signer: object) -> Signer:
    """Any signer this project or securesystemslib makes, as a securesystemslib signer.

    Accepts a securesystemslib ``Signer`` as it is, and this project's
    :class:`~provenance.signing.KeySigner` and KMS signers (what
    :class:`~provenance.signing` builds for ``provenance sign``). Sigstore
    and certificate signers are refused, saying why.
    """
    from securesystemslib.signer import Signer as SslibSigner

    if isinstance(signer, SslibSigner):
        return signer
    from provenance.signing._certs import CertificateSigner
    from provenance.signing._keys import KeySigner
    from provenance.signing._kms import KmsSigner
    from provenance.signing._sigstore import SigstoreSigner

    if isinstance(signer, KeySigner):
        return _crypto_signer(signer.private_key)
    if isinstance(signer, KmsSigner):
        return signer.signer
    if isinstance(signer, SigstoreSigner):
        raise UsageError(SIGSTORE_UNSUPPORTED, code="sigstore-unsupported")
    if isinstance(signer, CertificateSigner):
        raise UsageError(CERTIFICATE_UNSUPPORTED, code="certificate-unsupported")
    raise TypeError(
        f"signer must be a securesystemslib Signer or a provenance key signer, "
        f"not {type(signer).__name__}"
    )


def _crypto_signer(private_key: Any) -> Signer:
    from securesystemslib.signer import CryptoSigner, SSlibKey

    return CryptoSigner(private_key, SSlibKey.from_crypto(private_key.public_key()))


def key_dict(key: Key) -> dict[str, Any]:
    """A securesystemslib key as in-toto lists it in a layout: its dict plus ``keyid``."""
    return {"keyid": key.keyid, **key.to_dict()}


def keyid_of(signer: Signer) -> str:
    """The key id a signer's links are named after (``STEP.KEYID8.link``)."""
    return str(signer.public_key.keyid)


def public_key_dict(source: str | os.PathLike[str] | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """A functionary or owner public key as in-toto's key dictionary.

    ``source`` is a PEM public key file, its PEM bytes, or an in-toto key
    dictionary already (with its ``keyid``; checked by securesystemslib).
    """
    from securesystemslib.signer import SSlibKey

    if isinstance(source, Mapping):
        return _checked_dict(source)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    from provenance.signing._keys import check_supported, load_public_key

    if isinstance(source, bytes):
        try:
            key: Any = serialization.load_pem_public_key(source)
        except (ValueError, UnsupportedAlgorithm, TypeError):
            raise InputError("not a PEM public key", code="not-a-public-key") from None
        check_supported(key, "the public key")
    else:
        key = load_public_key(source)
    return key_dict(SSlibKey.from_crypto(key))


def _checked_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    from securesystemslib.signer import Key

    keyid = data.get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise InputError("a public key dictionary needs its 'keyid'", code="not-a-key")
    body = {k: v for k, v in data.items() if k != "keyid"}
    try:
        Key.from_dict(keyid, dict(body))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a usable public key dictionary: {e}", code="not-a-key") from None
    return {"keyid": keyid, **body}
