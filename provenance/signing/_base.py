"""The signing seam: what a signer and a verifier are, and what verifying returns.

A signer turns a payload into a bundle; a verifier checks a bundle and
returns :class:`Verified`: who signed (a structured :class:`SignerInfo`) and
the exact payload type and bytes the signature covers. Pipelines parse only
those returned bytes (security invariant 2), so a verifier that checks one
thing and hands back another cannot slip a payload past them.

Verifiers compose with :class:`AnyOf`, :class:`AllOf` and :class:`Threshold`;
this module imports no cryptography, so composing costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from provenance.dsse import INTOTO_PAYLOAD_TYPE, Envelope, pae
from provenance.errors import ProvenanceError, UsageError, VerificationError

if TYPE_CHECKING:
    from provenance.bundle import Bundle

__all__ = [
    "AllOf",
    "AnyOf",
    "PaeSigner",
    "Signer",
    "SignerInfo",
    "SignerKind",
    "Threshold",
    "Verified",
    "Verifier",
    "envelope_for",
]

SignerKind = Literal["key", "certificate", "keyless", "kms"]


@dataclass(frozen=True)
class SignerInfo:
    """Who signed, in fields a policy can match and words a person can read.

    The same shape describes a signer before signing (``sign``, ``attest``)
    and after verification (``verify``); ``inspect`` fills what it can read
    without verifying.
    """

    kind: SignerKind
    description: str
    key_fingerprint: str | None = None  # hex SHA-256 of the SubjectPublicKeyInfo PEM
    key_type: str | None = None  # e.g. "ECDSA P-256", "Ed25519"
    certificate_subject: str | None = None
    certificate_sans: tuple[str, ...] = ()
    certificate_serial: str | None = None  # hex
    certificate_chain: tuple[bytes, ...] = field(default=(), repr=False)  # DER, leaf first
    root_subject: str | None = None
    identity: str | None = None
    issuer: str | None = None
    log_index: int | None = None
    signed_at: str | None = None  # RFC 3339, UTC, second precision

    @property
    def principal(self) -> str:
        """One string per distinct signer, for counting k-of-n signatures.

        Two bundles by the same key (or certificate key, or keyless identity
        and issuer) are one signer, however many times they sign.
        """
        if self.kind == "keyless":
            return f"keyless:{self.issuer}:{self.identity}"
        if self.key_fingerprint:
            return f"key:{self.key_fingerprint}"
        return f"{self.kind}:{self.certificate_subject or self.description}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "description": self.description}
        optional: dict[str, Any] = {
            "key_fingerprint": self.key_fingerprint,
            "key_type": self.key_type,
            "certificate_subject": self.certificate_subject,
            "certificate_sans": list(self.certificate_sans) or None,
            "certificate_serial": self.certificate_serial,
            "chain_length": len(self.certificate_chain) or None,
            "root_subject": self.root_subject,
            "identity": self.identity,
            "issuer": self.issuer,
            "log_index": self.log_index,
            "signed_at": self.signed_at,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class Verified:
    """A verified signature: its signer(s) and the exact bytes it covers."""

    signer: SignerInfo
    payload_type: str
    payload: bytes = field(repr=False)
    legacy: bool = False  # only model-signing 0.2's malformed PAE matched
    #: Every signer that counted, for composed verifiers (``signer`` first).
    signers: tuple[SignerInfo, ...] = ()

    def __post_init__(self) -> None:
        if not self.signers:
            object.__setattr__(self, "signers", (self.signer,))

    @property
    def method(self) -> str:
        """``key``, ``certificate`` or ``sigstore`` (the kind, in older words)."""
        return {"keyless": "sigstore", "kms": "key"}.get(self.signer.kind, self.signer.kind)


class Signer(Protocol):
    """Anything that turns a payload into a signed bundle."""

    def sign(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Bundle: ...

    def describe(self) -> SignerInfo: ...


class Verifier(Protocol):
    """Anything that checks a bundle's signature and says who made it."""

    def verify(self, bundle: Bundle) -> Verified: ...


class PaeSigner(Protocol):
    """A private key that signs raw bytes (the DSSE PAE): on disk, in a KMS or an HSM."""

    def public_key(self) -> Any: ...

    def sign_pae(self, data: bytes) -> bytes: ...


def envelope_for(
    key: PaeSigner, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> Envelope:
    """The DSSE envelope every key-based signer (file, certificate, KMS) produces."""
    return Envelope(payload, payload_type, key.sign_pae(pae(payload_type, payload)), "")


# ---------------------------------------------------------------- composition


def _combine(results: Sequence[Verified]) -> Verified:
    first = results[0]
    for r in results[1:]:
        if r.payload != first.payload or r.payload_type != first.payload_type:
            raise VerificationError("composed verifiers returned different payloads")
    signers: list[SignerInfo] = []
    seen: set[str] = set()
    for r in results:
        for s in r.signers:
            if s.principal not in seen:
                seen.add(s.principal)
                signers.append(s)
    return Verified(
        first.signer,
        first.payload_type,
        first.payload,
        legacy=any(r.legacy for r in results),
        signers=tuple(signers),
    )


class AnyOf:
    """Accept a bundle that any one of the verifiers accepts (the first that does)."""

    def __init__(self, verifiers: Iterable[Verifier]) -> None:
        self.verifiers = list(verifiers)
        if not self.verifiers:
            raise UsageError("AnyOf needs at least one verifier")

    def verify(self, bundle: Bundle) -> Verified:
        reasons: list[str] = []
        for v in self.verifiers:
            try:
                return v.verify(bundle)
            except ProvenanceError as e:
                reasons.append(str(e))
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise VerificationError(
            f"no trusted signer accepts the signature: {reasons[0]}{more}", reasons
        )


class AllOf:
    """Accept a bundle only if every verifier accepts it (e.g. a key *and* a pin)."""

    def __init__(self, verifiers: Iterable[Verifier]) -> None:
        self.verifiers = list(verifiers)
        if not self.verifiers:
            raise UsageError("AllOf needs at least one verifier")

    def verify(self, bundle: Bundle) -> Verified:
        return _combine([v.verify(bundle) for v in self.verifiers])


class Threshold:
    """At least ``k`` *distinct* signers, each with its own bundle over the same payload.

    A single bundle carries one signature, so a threshold verifies a set of
    bundles (:meth:`verify_all`); each verifier is one trusted signer, and a
    signer counts once however many bundles it made.
    """

    def __init__(self, k: int, verifiers: Iterable[Verifier]) -> None:
        self.verifiers = list(verifiers)
        if k < 1 or k > len(self.verifiers):
            raise UsageError(
                f"a threshold of {k} needs between 1 and {len(self.verifiers)} signers"
            )
        self.k = k

    def verify(self, bundle: Bundle) -> Verified:
        return self.verify_all([bundle])

    def verify_all(self, bundles: Sequence[Bundle]) -> Verified:
        counted: list[Verified] = []
        principals: set[str] = set()
        used: set[int] = set()
        reasons: list[str] = []
        for v in self.verifiers:
            for i, bundle in enumerate(bundles):
                if i in used:
                    continue
                try:
                    result = v.verify(bundle)
                except ProvenanceError as e:
                    reasons.append(str(e))
                    continue
                if result.signer.principal in principals:
                    continue
                principals.add(result.signer.principal)
                used.add(i)
                counted.append(result)
                break
        if len(counted) < self.k:
            raise VerificationError(
                f"{len(counted)} of the {self.k} required distinct signers verified",
                reasons,
                code="threshold-not-met",
            )
        return _combine(counted)
