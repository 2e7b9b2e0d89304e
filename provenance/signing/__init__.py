"""Signers and verifiers: plain keys, certificate chains, KMS/HSM keys, Sigstore keyless.

A signer turns a payload into a Sigstore bundle (``sign(payload, type)``); a
verifier checks a bundle and returns :class:`Verified` (who signed, as a
structured :class:`SignerInfo`, and the exact signed bytes), raising
:class:`provenance.errors.VerificationError` otherwise. Both are small objects
with one method each (the :class:`Signer` and :class:`Verifier` protocols),
so new kinds compose without a class hierarchy: :class:`AnyOf`,
:class:`AllOf` and :class:`Threshold` combine verifiers.

The classes load lazily: importing this package does not import
``cryptography``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provenance.signing._base import (
    AllOf,
    AnyOf,
    Signer,
    SignerInfo,
    Threshold,
    Verified,
    Verifier,
)

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.signing._certs import CertificateSigner, CertificateVerifier
    from provenance.signing._keys import KeySigner, KeyVerifier, describe_key_file, generate_key
    from provenance.signing._kms import kms_signer
    from provenance.signing._sigstore import (
        IdentityRegexp,
        SigstoreSigner,
        SigstoreVerifier,
        get_identity_token,
        identity_policy,
        load_trust_config,
        load_trusted_root,
    )

__all__ = [
    "AllOf",
    "AnyOf",
    "CertificateSigner",
    "CertificateVerifier",
    "IdentityRegexp",
    "KeySigner",
    "KeyVerifier",
    "Signer",
    "SignerInfo",
    "SigstoreSigner",
    "SigstoreVerifier",
    "Threshold",
    "Verified",
    "Verifier",
    "describe_bundle",
    "describe_key_file",
    "generate_key",
    "get_identity_token",
    "identity_policy",
    "kms_signer",
    "load_trust_config",
    "load_trusted_root",
]

_WHERE = {
    "KeySigner": "_keys",
    "describe_key_file": "_keys",
    "generate_key": "_keys",
    "KeyVerifier": "_keys",
    "CertificateSigner": "_certs",
    "CertificateVerifier": "_certs",
    "kms_signer": "_kms",
    "IdentityRegexp": "_sigstore",
    "SigstoreSigner": "_sigstore",
    "SigstoreVerifier": "_sigstore",
    "get_identity_token": "_sigstore",
    "identity_policy": "_sigstore",
    "load_trust_config": "_sigstore",
    "load_trusted_root": "_sigstore",
}


def describe_bundle(bundle: Bundle) -> SignerInfo:
    """Who a bundle *says* signed it, read and not verified (for ``inspect`` and reports).

    The same :class:`SignerInfo` shape a verifier returns, so a report can
    show one signer shape whether or not it verified; nothing here is a
    claim anyone checked. A plain key is known only by its hint (a
    fingerprint when it is the OMS hex form); a certificate or Sigstore
    bundle by its leaf certificate.
    """
    import re

    if bundle.kind == "public_key":
        if bundle.key_raw:  # model-signing before 1.1 embedded the key itself
            from cryptography.exceptions import UnsupportedAlgorithm
            from cryptography.hazmat.primitives import serialization

            from provenance.errors import InputError
            from provenance.signing._keys import check_supported, key_info

            try:
                key = serialization.load_pem_public_key(bundle.key_raw)
                check_supported(key, "the embedded key")
            except (ValueError, TypeError, UnsupportedAlgorithm, InputError):
                return SignerInfo(kind="key", description="a plain key (embedded, unreadable)")
            return key_info(key)  # type: ignore[arg-type]
        hint = bundle.key_hint
        if not hint:
            return SignerInfo(kind="key", description="a plain key (no key hint)")
        fingerprint = hint if re.fullmatch(r"[0-9a-f]{64}", hint) else None
        return SignerInfo(
            kind="key",
            # The same 16 hex digits `verify` shows for the key ("... key 27d58223...").
            description=f"key {hint[:16]}" if fingerprint else f"a plain key (hint {hint[:88]})",
            key_fingerprint=fingerprint,
        )
    if bundle.kind == "sigstore":
        from provenance.signing._sigstore import keyless_info

        return keyless_info(bundle)
    from cryptography import x509

    from provenance.signing._certs import certificate_info

    try:
        chain = [x509.load_der_x509_certificate(der) for der in bundle.certificates]
    except (ValueError, x509.InvalidVersion):
        chain = []
    if not chain:
        return SignerInfo(kind="certificate", description="an unreadable certificate")
    return certificate_info(chain[0], chain)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        module = importlib.import_module(f"provenance.signing.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'provenance.signing' has no attribute {name!r}")
