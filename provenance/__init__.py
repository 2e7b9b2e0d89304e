"""provenance: hash, sign, attest and verify machine-learning models.

The public API is small::

    import provenance
    from provenance.signing import KeySigner, KeyVerifier

    manifest = provenance.hash_model("my-model/")
    provenance.sign("my-model/", KeySigner.from_file("key.pem"))
    result = provenance.verify("my-model/", KeyVerifier.from_files("key.pub"))
    print(result.signer, result.root_digest)

Everything raises a :class:`provenance.errors.ProvenanceError` subclass with a
one-line reason. Importing this package stays cheap: cryptography and the
Sigstore stack load only when a signer or verifier is used.
"""

from __future__ import annotations

from provenance._api import (
    SignResult,
    VerificationResult,
    default_signature_path,
    hash_model,
    sign,
    verify,
)
from provenance._version import __version__
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.manifest import Manifest, Resource, Serialization

__all__ = [
    "InputError",
    "Manifest",
    "ProvenanceError",
    "Resource",
    "Serialization",
    "SignResult",
    "UsageError",
    "VerificationError",
    "VerificationResult",
    "__version__",
    "default_signature_path",
    "hash_model",
    "sign",
    "verify",
]
