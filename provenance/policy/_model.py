"""The parsed policy: plain frozen dataclasses, one per section of the file.

The loader (:mod:`provenance.policy._load`) builds these from a file that
passed ``schemas/policy.schema.json``; the evaluator reads nothing else.
Every rule keeps ``where``, its path in the file (``signers[1]``), so each
reason of a decision names the rule it comes from.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["enforce", "warn", "audit"]


@dataclass(frozen=True)
class KeySigner:
    """A plain public key (PEM, read from a file or given inline)."""

    where: str
    name: str
    pem: bytes


@dataclass(frozen=True)
class FingerprintSigner:
    """A key known by its SHA-256 fingerprint (64 lowercase hex digits).

    The key itself comes from the bundle (a certificate leaf, a keyless
    certificate, a key model-signing embedded) or from ``keys``, PEM keys
    given beside the fingerprint for plain-key bundles.
    """

    where: str
    name: str
    fingerprint: str
    keys: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Match:
    """An exact value or a full-match regular expression (exactly one is set)."""

    exact: str | None = None
    regexp: str | None = None


@dataclass(frozen=True)
class CertificateSigner:
    """Leaves that chain to one of ``roots``, with constraints on the leaf."""

    where: str
    name: str
    roots: tuple[bytes, ...]  # PEM, each may hold several certificates
    intermediates: tuple[bytes, ...] = ()
    subject: Match | None = None
    email: Match | None = None
    uri: Match | None = None
    eku: tuple[str, ...] = ()  # dotted OIDs


@dataclass(frozen=True)
class GitHubClaims:
    repository: str | None = None
    ref: str | None = None
    workflow: str | None = None
    trigger: str | None = None
    sha: str | None = None


@dataclass(frozen=True)
class SigstoreTrust:
    """Which Sigstore instance: ``public-good``, ``staging``, or a file."""

    kind: Literal["public-good", "staging", "trusted_root", "trust_config"] = "public-good"
    path: Path | None = None


@dataclass(frozen=True)
class SigstoreSigner:
    where: str
    name: str
    identity: Match
    issuer: str
    github: GitHubClaims = field(default_factory=GitHubClaims)
    trust: SigstoreTrust = field(default_factory=SigstoreTrust)


SignerRule = KeySigner | FingerprintSigner | CertificateSigner | SigstoreSigner


@dataclass(frozen=True)
class FormatRules:
    allow: tuple[str, ...] | None = None  # None: any format not denied
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileRules:
    unsigned: Literal["deny", "allow"] = "deny"
    allow_unsigned: tuple[str, ...] = ()
    formats: FormatRules = field(default_factory=FormatRules)
    max_total_bytes: int | None = None
    scan: bool = False  # the format-safety scan (provenance.formats.scan)
    allow_globals: tuple[str, ...] = ()  # pickle globals beyond the scan's allowlist


@dataclass(frozen=True)
class LoadingRules:
    """What verified loaders may do beyond handing on the signed files.

    Remote code is the one switch: a model's own ``modeling_*.py`` runs with
    the loading process's rights, so a signature over the weights alone is not
    enough; the policy has to say that this model's code may run.
    """

    trust_remote_code: bool = False


@dataclass(frozen=True)
class AttestationRule:
    where: str
    predicate_type: str  # a URI; aliases are resolved by the loader
    signers: tuple[SignerRule, ...] | None = None  # None: the policy's attestation signers
    predicate_schema: dict[str, object] | None = None
    enforce_thresholds: bool = False


@dataclass(frozen=True)
class InputRules:
    """What inputs of one kind (base models, datasets) may be."""

    where: str
    digests: tuple[str, ...] = ()  # lowercase hex, no "sha256:"
    uris: tuple[str, ...] = ()  # fnmatch globs
    policy: Policy | None = None


@dataclass(frozen=True)
class LineageRules:
    depth: int = 1
    base_models: InputRules | None = None
    datasets: InputRules | None = None


@dataclass(frozen=True)
class Revocation:
    """One revoked thing; ``value`` is a digest, fingerprint, identity or serial (normalized)."""

    where: str
    kind: Literal["digest", "key", "identity", "serial"]
    value: str
    reason: str | None = None
    issuer: str | None = None  # identities only
    since: datetime.datetime | None = None  # keys and identities only


@dataclass(frozen=True)
class PipelineRule:
    """The model must be the final product of an in-toto pipeline that verifies.

    ``layout`` and ``links`` are read when a model is checked (they change
    with every run of the pipeline); the owners' keys are read with the
    policy, like every other key it names.
    """

    where: str
    layout: Path
    layout_keys: tuple[bytes, ...]  # SubjectPublicKeyInfo PEM
    links: Path
    step: str | None = None  # None: the layout's last step
    path: str = ""  # the products under this path are the model; "": all of them


@dataclass(frozen=True)
class Policy:
    """A whole policy, nested and included files resolved."""

    source: str  # the file it came from, or "<inline in FILE>"
    digest: str  # hex SHA-256 over the policy's bytes and every file it pulls in
    signers: tuple[SignerRule, ...]
    mode: Mode = "enforce"
    expires: datetime.datetime | None = None
    threshold: int = 1
    attestation_signers: tuple[SignerRule, ...] | None = None  # None: ``signers``
    files: FileRules = field(default_factory=FileRules)
    attestations: tuple[AttestationRule, ...] = ()
    lineage: LineageRules | None = None
    pins: tuple[str, ...] = ()  # lowercase hex root digests
    revocations: tuple[Revocation, ...] = ()
    loading: LoadingRules = field(default_factory=LoadingRules)
    pipeline: PipelineRule | None = None

    @property
    def effective_attestation_signers(self) -> tuple[SignerRule, ...]:
        return self.attestation_signers if self.attestation_signers is not None else self.signers
