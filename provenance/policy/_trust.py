"""A policy's signer rules as verifiers, and its revocations as checks on who signed.

Each rule becomes a verifier of the :mod:`provenance.signing` kinds, built
the first time a bundle of its kind turns up (a Sigstore trust root is never
loaded for a model signed with keys). A :class:`Trust` tries every rule that
fits a bundle and remembers which accepted it, so a threshold counts distinct
signers and an attestation rule can ask whether *its* signers signed.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from provenance.errors import ProvenanceError, VerificationError
from provenance.policy._model import (
    CertificateSigner,
    FingerprintSigner,
    KeySigner,
    Match,
    Revocation,
    SignerRule,
    SigstoreSigner,
)

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.signing import SignerInfo, Verified, Verifier

#: The bundle kinds each rule can verify.
_KINDS: dict[type, frozenset[str]] = {
    KeySigner: frozenset({"public_key"}),
    FingerprintSigner: frozenset({"public_key", "x509_chain"}),
    CertificateSigner: frozenset({"x509_chain"}),
    SigstoreSigner: frozenset({"sigstore"}),
}


def rule_label(rule: SignerRule) -> str:
    """A rule as a person reads it in a reason: its name, else what it trusts."""
    if rule.name:
        return rule.name
    if isinstance(rule, KeySigner):
        return f"the key of {rule.where}"
    if isinstance(rule, FingerprintSigner):
        return f"key {rule.fingerprint[:16]}"
    if isinstance(rule, CertificateSigner):
        return f"certificates under the roots of {rule.where}"
    shown = rule.identity.exact or f"/{rule.identity.regexp}/"
    return f"Sigstore identity {shown} from {rule.issuer}"


class Trust:
    """Verifies bundles against a list of signer rules; every accepting rule is recorded.

    It is a :class:`~provenance.signing.Verifier` (one ``verify`` method),
    so it can be handed to the attestation checker as it is.
    """

    def __init__(self, rules: Sequence[SignerRule]) -> None:
        self.rules = tuple(rules)
        self._verifiers: dict[int, Verifier] = {}
        self._accepted: dict[int, tuple[SignerInfo, frozenset[int]]] = {}

    def verify(self, bundle: Bundle) -> Verified:
        first: Verified | None = None
        accepted: set[int] = set()
        reasons: list[str] = []
        for i, rule in enumerate(self.rules):
            if bundle.kind not in _KINDS[type(rule)]:
                continue
            try:
                result = self._verifier(i).verify(bundle)
            except ProvenanceError as e:
                reasons.append(f"{rule_label(rule)}: {e}")
                continue
            accepted.add(i)
            if first is None:
                first = result
        if first is None:
            if not reasons:
                raise VerificationError(
                    f"no signer the policy trusts signs with {_KIND_WORDS[bundle.kind]}",
                    code="signer-untrusted",
                )
            more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
            raise VerificationError(
                f"no signer the policy trusts made this signature: {reasons[0]}{more}",
                reasons,
                code="signer-untrusted",
            )
        # Keyed by the object's id, kept alive by holding it: the attestation
        # checker hands back the very SignerInfo this returned.
        self._accepted[id(first.signer)] = (first.signer, frozenset(accepted))
        return first

    def acceptors(self, signer: SignerInfo) -> frozenset[int]:
        """Indexes of the rules that accepted the bundle ``signer`` came from."""
        entry = self._accepted.get(id(signer))
        return entry[1] if entry is not None and entry[0] is signer else frozenset()

    def _verifier(self, i: int) -> Verifier:
        if i not in self._verifiers:
            self._verifiers[i] = _build(self.rules[i])
        return self._verifiers[i]


_KIND_WORDS = {
    "public_key": "a plain key",
    "x509_chain": "a certificate chain",
    "sigstore": "a Sigstore identity",
}


def _build(rule: SignerRule) -> Verifier:
    from provenance import signing

    if isinstance(rule, KeySigner):
        return signing.KeyVerifier([_public_key(rule.pem, rule.where)])
    if isinstance(rule, FingerprintSigner):
        return _FingerprintVerifier(rule)
    if isinstance(rule, CertificateSigner):
        from cryptography import x509

        roots = [c for pem in rule.roots for c in x509.load_pem_x509_certificates(pem)]
        mids = [c for pem in rule.intermediates for c in x509.load_pem_x509_certificates(pem)]
        return _CertificateVerifier(rule, signing.CertificateVerifier(roots, mids))
    policy = signing.identity_policy(
        identity=rule.identity.exact,
        identity_regexp=rule.identity.regexp,
        issuer=rule.issuer,
        github_repository=rule.github.repository,
        github_ref=rule.github.ref,
        github_workflow_name=rule.github.workflow,
        github_trigger=rule.github.trigger,
        github_sha=rule.github.sha,
    )
    trust = rule.trust
    root = signing.load_trusted_root(
        trust.path if trust.kind == "trusted_root" else None,
        trust.path if trust.kind == "trust_config" else None,
        staging=trust.kind == "staging",
    )
    return signing.SigstoreVerifier(policy, root)


def _public_key(pem: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    from provenance.errors import UsageError

    try:
        return serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"policy {where}: the key does not load ({e})", code="policy-invalid"
        ) from None


class _FingerprintVerifier:
    """A key pinned by fingerprint: from the bundle's own material, or the keys given."""

    def __init__(self, rule: FingerprintSigner) -> None:
        self.rule = rule

    def verify(self, bundle: Bundle) -> Verified:
        from provenance import signing

        want = self.rule.fingerprint
        if bundle.kind == "x509_chain":
            from cryptography import x509

            from provenance.signing import Verified
            from provenance.signing._certs import certificate_info
            from provenance.signing._keys import verify_envelope

            if not bundle.certificates:
                raise VerificationError("the signature carries no certificate")
            leaf = x509.load_der_x509_certificate(bundle.certificates[0])
            info = certificate_info(leaf, [leaf])
            if info.key_fingerprint != want:
                raise VerificationError(
                    f"signed by key {(info.key_fingerprint or '?')[:16]}, not {want[:16]}"
                )
            legacy = verify_envelope(leaf.public_key(), bundle.envelope)  # type: ignore[arg-type]
            env = bundle.envelope
            return Verified(info, env.payload_type, env.payload, legacy)
        keys = [_public_key(pem, self.rule.where) for pem in self.rule.keys]
        if bundle.key_raw:
            keys.append(_public_key(bundle.key_raw, "the signature's embedded key"))
        if not keys:
            raise VerificationError(
                f"a plain-key signature names its key only by a hint; give key {want[:16]} "
                "itself under `keys` in the policy"
            )
        result = signing.KeyVerifier(keys).verify(bundle)
        if result.signer.key_fingerprint != want:
            raise VerificationError(
                f"signed by key {(result.signer.key_fingerprint or '?')[:16]}, not {want[:16]}"
            )
        return result


class _CertificateVerifier:
    """A chain to the rule's roots, then the rule's constraints on the leaf."""

    def __init__(self, rule: CertificateSigner, chain: Verifier) -> None:
        self.rule = rule
        self.chain = chain

    def verify(self, bundle: Bundle) -> Verified:
        from cryptography import x509

        result = self.chain.verify(bundle)
        info = result.signer
        rule = self.rule
        if rule.subject is not None and not _matches(rule.subject, [info.certificate_subject]):
            raise VerificationError(
                f"certificate subject {info.certificate_subject} is not {_shown(rule.subject)}"
            )
        if rule.email is None and rule.uri is None and not rule.eku:
            return result
        leaf = x509.load_der_x509_certificate(info.certificate_chain[0])
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            emails = san.get_values_for_type(x509.RFC822Name)
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            emails, uris = [], []
        if rule.email is not None and not _matches(rule.email, emails):
            raise VerificationError(
                f"certificate e-mail {', '.join(emails) or '(none)'} is not {_shown(rule.email)}"
            )
        if rule.uri is not None and not _matches(rule.uri, uris):
            raise VerificationError(
                f"certificate URI {', '.join(uris) or '(none)'} is not {_shown(rule.uri)}"
            )
        if rule.eku:
            try:
                eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                have = {oid.dotted_string for oid in eku}
            except x509.ExtensionNotFound:
                have = set()
            missing = [e for e in rule.eku if e not in have]
            if missing:
                raise VerificationError(
                    f"certificate lacks the extended key usage {', '.join(missing)}"
                )
        return result


def _matches(m: Match, values: Sequence[str | None]) -> bool:
    present = [v for v in values if v is not None]
    if m.exact is not None:
        return m.exact in present
    assert m.regexp is not None
    return any(re.fullmatch(m.regexp, v) for v in present)


def _shown(m: Match) -> str:
    return m.exact if m.exact is not None else f"a match of /{m.regexp}/"


# ---------------------------------------------------------------- revocations


def revoked(signer: SignerInfo, revocations: Sequence[Revocation]) -> list[tuple[Revocation, str]]:
    """The revocations that deny this signer, each with the words of why."""
    out: list[tuple[Revocation, str]] = []
    serials: set[str] | None = None
    keys: set[str] | None = None
    for r in revocations:
        if r.kind == "key":
            if keys is None:
                keys = _key_fingerprints(signer)
            if r.value not in keys:
                continue
            what = f"key {r.value[:16]}"
        elif (
            r.kind == "identity"
            and _loose(signer.identity) == _loose(r.value)
            and (r.issuer is None or _loose(r.issuer) == _loose(signer.issuer))
        ):
            what = f"identity {r.value}"
        elif r.kind == "serial":
            if serials is None:
                serials = _serials(signer)
            if (r.value.lower().replace(":", "").lstrip("0") or "0") not in serials:
                continue
            what = f"certificate serial {r.value}"
        else:
            continue
        if r.since is not None:
            signed = _parse_time(signer.signed_at)
            if signed is None:
                why = (
                    f"{what} is revoked for signatures made from {_day(r.since)} on, and this "
                    "signature has no trusted signing time to show it came before"
                )
            elif signed >= r.since:
                why = f"{what} is revoked for signatures made from {_day(r.since)} on"
            else:
                continue
        else:
            why = f"{what} is revoked"
        if r.reason:
            why += f" ({r.reason})"
        out.append((r, why))
    return out


def _loose(text: str | None) -> str | None:
    """An identity or issuer as a revocation compares it: no surrounding blanks, no
    trailing slash, letter case folded. A revocation should deny what it names
    however a hand-written incident list spells it; matching a little more fails
    closed, matching nothing fails open."""
    return text.strip().rstrip("/").casefold() if text is not None else None


def _key_fingerprints(signer: SignerInfo) -> set[str]:
    """The signing key's fingerprint, also where the signer's description has none
    (a keyless certificate's ephemeral key): the leaf's, read from the chain."""
    out = {signer.key_fingerprint} if signer.key_fingerprint else set()
    if signer.certificate_chain:
        import hashlib

        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            key = x509.load_der_x509_certificate(signer.certificate_chain[0]).public_key()
            pem = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (ValueError, TypeError):
            return out
        out.add(hashlib.sha256(pem).hexdigest())
    return out


def _serials(signer: SignerInfo) -> set[str]:
    out = {signer.certificate_serial.lower()} if signer.certificate_serial else set()
    if signer.certificate_chain:
        from cryptography import x509

        for der in signer.certificate_chain:
            try:
                out.add(format(x509.load_der_x509_certificate(der).serial_number, "x"))
            except ValueError:
                continue
    return {s.lower().lstrip("0") or "0" for s in out}


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _day(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
