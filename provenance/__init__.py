"""provenance: hash, sign, attest and verify machine-learning models.

The public API is small::

    import provenance
    from provenance.signing import KeySigner, KeyVerifier

    manifest = provenance.hash_model("my-model/")
    provenance.sign("my-model/", KeySigner.from_file("key.pem"))
    result = provenance.verify("my-model/", KeyVerifier.from_files("key.pub"))
    print(result.signer, result.root_digest)

    with provenance.open_verified("my-model/", policy="policy.yaml") as model:
        weights = model.buffer("model.safetensors")  # the very bytes verified

    report = provenance.check_model("my-model/", verifier)   # every finding, no raise
    for finding in report.findings:
        print(finding.code, finding.path, finding.message)

Everything raises a :class:`provenance.errors.ProvenanceError` subclass with a
one-line reason. Importing this package stays cheap: cryptography and the
Sigstore stack load only when a signer or verifier is used.

The pipelines live in :mod:`provenance.hashing`, ``provenance.sign`` and
``provenance.verify``; the functions of the last two are re-exported here
under the modules' own names, so import the modules' other names with
``from provenance.verification import VerificationReport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provenance._version import __version__
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError

if TYPE_CHECKING:
    from provenance.bundle import default_signature_path
    from provenance.findings import Finding
    from provenance.hashing import hash_model
    from provenance.loading import VerifiedModel, open_verified
    from provenance.manifest import Manifest, Resource, Serialization
    from provenance.signature import SignResult, sign
    from provenance.verification import (
        VerificationReport,
        VerificationResult,
        check_model,
        verify,
    )

# Loaded on first use: a loader that only hashes, or `provenance --version`,
# does not pay for the signing and verification modules at start-up.
_WHERE = {
    "default_signature_path": "bundle",
    "Finding": "findings",
    "hash_model": "hashing",
    "VerifiedModel": "loading",
    "open_verified": "loading",
    "Manifest": "manifest",
    "Resource": "manifest",
    "Serialization": "manifest",
    "SignResult": "signature",
    "sign": "signature",
    "VerificationReport": "verification",
    "VerificationResult": "verification",
    "check_model": "verification",
    "verify": "verification",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'provenance' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"provenance.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "Finding",
    "InputError",
    "Manifest",
    "ProvenanceError",
    "Resource",
    "Serialization",
    "SignResult",
    "UsageError",
    "VerificationError",
    "VerificationReport",
    "VerificationResult",
    "VerifiedModel",
    "__version__",
    "check_model",
    "default_signature_path",
    "hash_model",
    "open_verified",
    "sign",
    "verify",
]
