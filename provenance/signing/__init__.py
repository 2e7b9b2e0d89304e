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
    from provenance.signing._certs import CertificateSigner, CertificateVerifier
    from provenance.signing._keys import KeySigner, KeyVerifier
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
    "get_identity_token",
    "identity_policy",
    "kms_signer",
    "load_trust_config",
    "load_trusted_root",
]

_WHERE = {
    "KeySigner": "_keys",
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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        module = importlib.import_module(f"provenance.signing.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'provenance.signing' has no attribute {name!r}")
