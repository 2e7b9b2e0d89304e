"""A policy in plain words, and starter policies to begin from.

``describe`` is what ``provenance policy check`` prints: the person who
wrote the policy reads back what it will demand, one line per rule, so a
constraint that went missing (or a threshold that says 1 where 2 was meant)
shows before any model is judged by it.

``starter`` writes a commented policy for one signer; the comments teach
each section, and the optional ones are there, commented out, to switch on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from provenance._internal.timefmt import format_time
from provenance._internal.uris import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
)
from provenance.errors import UsageError
from provenance.policy._model import (
    AttestationRule,
    CertificateSigner,
    FileRules,
    FingerprintSigner,
    InputRules,
    KeySigner,
    Match,
    Policy,
    Revocation,
    SignerRule,
)

__all__ = ["StarterKind", "describe", "signer_text", "starter"]

_MODES = {
    "enforce": "Mode enforce: a rule that fails denies loading.",
    "warn": "Mode warn: every failure is reported, and the model still loads.",
    "audit": "Mode audit: the model loads, and every decision is recorded in the audit log.",
}

_TYPE_WORDS = {
    SLSA_PREDICATE_TYPE: "training (SLSA provenance)",
    DATASET_PREDICATE_TYPE: "dataset",
    EVALUATION_PREDICATE_TYPE: "evaluation",
}

_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
}

#: Revocations listed one by one; past this, counted.
_LISTED_REVOCATIONS = 20


# ---------------------------------------------------------------- signers


def _key_fingerprint(pem: bytes) -> str:
    """The key hint of a PEM public key (re-encoded, so comments and line ends do not count)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        return hashlib.sha256(pem).hexdigest()
    canonical = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(canonical).hexdigest()


def _root_subject(pem: bytes) -> str:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem)[0].subject.rfc4514_string()
    except (ValueError, IndexError):
        return "a root certificate"


def _match(what: str, match: Match | None) -> str | None:
    if match is None:
        return None
    if match.exact is not None:
        return f"{what} {match.exact}"
    return f"{what} matching '{match.regexp}'"


def signer_text(rule: SignerRule) -> str:
    """A signer entry in words; also its name when the policy gives none."""
    if isinstance(rule, KeySigner):
        return f"key {_key_fingerprint(rule.pem)[:16]}"
    if isinstance(rule, FingerprintSigner):
        return f"key {rule.fingerprint[:16]}"
    if isinstance(rule, CertificateSigner):
        roots = [_root_subject(pem) for pem in rule.roots]
        text = f"a certificate chaining to {roots[0]}" if roots else "a certificate"
        if len(roots) > 1:
            text += f" (or {len(roots) - 1} other root{'s' * (len(roots) > 2)})"
        parts = [
            _match("subject", rule.subject),
            _match("email", rule.email),
            _match("URI", rule.uri),
        ]
        if rule.eku:
            parts.append("usage " + "+".join(_EKU_NAMES.get(o, o) for o in rule.eku))
        constraints = [p for p in parts if p]
        return f"{text} with {', '.join(constraints)}" if constraints else text
    identity = rule.identity.exact or f"matching '{rule.identity.regexp}'"
    text = f"Sigstore identity {identity} from {rule.issuer}"
    claims = [f"{k} {v}" for k, v in vars(rule.github).items() if v is not None]
    if claims:
        text += f" (GitHub {', '.join(claims)})"
    if rule.trust.kind == "staging":
        text += " on the staging instance"
    elif rule.trust.kind != "public-good":
        text += f" trusting {rule.trust.path}"
    return text


def _label(rule: SignerRule) -> str:
    text = signer_text(rule)
    return text if rule.name == text else f"{text} ({rule.name})"


def _signed_by(lead: str, signers: Sequence[SignerRule], k: int) -> str:
    names = ", ".join(_label(s) for s in signers)
    if len(signers) == 1:
        return f"{lead} {names}."
    if k == 1:
        return f"{lead} one of: {names}."
    if k == len(signers):
        return f"{lead} {'both' if k == 2 else f'all {k}'} of: {names}."
    return f"{lead} {k} of: {names}."


# ---------------------------------------------------------------- the other rules


def _size(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def _files(rules: FileRules) -> list[str]:
    if rules.unsigned == "allow":
        lines = ["Files the signature does not list are tolerated."]
    elif rules.allow_unsigned:
        globs = ", ".join(rules.allow_unsigned)
        lines = [f"Every file of the model must be signed, except files matching: {globs}."]
    else:
        lines = ["Every file of the model must be signed."]
    if rules.formats.allow is not None:
        lines.append(f"Every signed file must be one of: {', '.join(rules.formats.allow)}.")
    if rules.formats.deny:
        lines.append(f"Files in these formats are refused: {', '.join(rules.formats.deny)}.")
    if rules.scan:
        extra = (
            f" (pickles may also import {', '.join(rules.allow_globals)})"
            if rules.allow_globals
            else ""
        )
        lines.append(f"Every file must pass the format-safety scan{extra}.")
    if rules.max_total_bytes is not None:
        lines.append(f"The model's files may hold at most {_size(rules.max_total_bytes)}.")
    return lines


def _attestation(rule: AttestationRule, signers: str) -> str:
    words = _TYPE_WORDS.get(rule.predicate_type)
    kind = f"{words} attestation" if words else f"attestation of type {rule.predicate_type}"
    text = f"The model must carry a verified {kind}"
    if rule.signers is not None:
        text += ", " + _signed_by("signed by", rule.signers, 1).rstrip(".")
    else:
        text += f", signed by one of the {signers}"
    if rule.predicate_schema is not None:
        text += ", whose predicate satisfies the policy's JSON Schema"
    if rule.enforce_thresholds:
        text += ", and every threshold it records must hold"
    return text + "."


def _inputs(what: str, rules: InputRules) -> str:
    options = []
    if rules.digests:
        n = len(rules.digests)
        options.append(
            f"have the digest {rules.digests[0][:16]}" if n == 1 else f"have one of {n} digests"
        )
    if rules.uris:
        options.append(f"come from {' or '.join(rules.uris)}")
    if rules.policy is not None:
        source = rules.policy.source
        inline = source.startswith("<inline")
        options.append("pass the policy written inline" if inline else f"pass the policy {source}")
    if not options:
        return f"No {what} is allowed."
    return f"Every {what} must {', or '.join(options)}."


def _revocation(r: Revocation) -> str:
    value = r.value[:16] if r.kind in ("digest", "key") else r.value
    text = f"Revoked {r.kind} {value}"
    if r.issuer:
        text += f" from {r.issuer}"
    if r.since:
        text += f", for signatures from {format_time(r.since)} on"
    if r.reason:
        text += f" ({r.reason})"
    return text + ": denied whatever else holds."


def describe(policy: Policy) -> list[str]:
    """What ``policy`` requires, in plain words, one line per rule."""
    lines = [_MODES[policy.mode]]
    if policy.expires is not None:
        at = format_time(policy.expires)
        lines.append(f"The policy expires at {at}; after that it denies every model.")
    lines.append(_signed_by("The model must be signed by", policy.signers, policy.threshold))
    if policy.attestation_signers is not None:
        lines.append(_signed_by("Attestations must be signed by", policy.attestation_signers, 1))
    lines.extend(_files(policy.files))
    signers = "signers" if policy.attestation_signers is None else "attestation signers"
    lines.extend(_attestation(rule, signers) for rule in policy.attestations)
    if policy.lineage is not None:
        depth = policy.lineage.depth
        back = "its direct inputs" if depth == 1 else f"inputs up to {depth} generations back"
        lines.append(f"Lineage: {back} are checked.")
        if policy.lineage.base_models is not None:
            lines.append(_inputs("base model", policy.lineage.base_models))
        if policy.lineage.datasets is not None:
            lines.append(_inputs("dataset", policy.lineage.datasets))
    if len(policy.pins) == 1:
        lines.append(f"The model's root digest must be {policy.pins[0]}.")
    elif policy.pins:
        lines.append(f"The model's root digest must be one of {len(policy.pins)} pinned digests.")
    lines.extend(_revocation(r) for r in policy.revocations[:_LISTED_REVOCATIONS])
    more = len(policy.revocations) - _LISTED_REVOCATIONS
    if more > 0:
        lines.append(f"... and {more} more revocations.")
    if policy.pipeline is not None:
        rule = policy.pipeline
        step = f"step '{rule.step}'" if rule.step else "its last step"
        where = f" under '{rule.path}'" if rule.path else ""
        owners = len(rule.layout_keys)
        lines.append(
            f"The model must be the product of a verified in-toto pipeline: links in "
            f"{rule.links} against the layout {rule.layout} (signed by {owners} owner "
            f"key{'s' * (owners != 1)}), the model's files exactly the products of {step}{where}."
        )
    if policy.loading.trust_remote_code:
        # Said only when allowed: refusing is the default, and a line per default would
        # bury the rules the author did write.
        lines.append(
            "Loaders may run the model's own Python code (trust_remote_code); "
            "every .py file of the model must be signed."
        )
    return lines


# ---------------------------------------------------------------- starter policies

StarterKind = Literal["key", "root", "identity"]

_HEAD = """\
# A provenance policy: what a model must show before it may be loaded.
# Check it with:  provenance policy check THIS-FILE
# Every key is described in schemas/policy.schema.json; unknown keys are errors.
# Paths are relative to this file's folder.
version: 1

# enforce: a rule that fails denies loading. warn: report failures, still load.
# audit: load, and record every decision in the audit log.
mode: enforce

# After this day (UTC) the policy denies every model, whatever its mode:
# set it, so a forgotten policy cannot allow forever.
# expires: 2027-06-30

# Who may sign the model.
signers:
"""

_TAIL = """\
  # - name: second signer           # more signers: one list item each
  #   key: "keys/second.pub"

# With several signers: how many distinct ones must have signed, each with
# its own bundle (the first in MODEL/model.sig; the others co-sign with
# `provenance sign MODEL --key KEY --cosign`, into MODEL/model.sig.d/).
# Default 1.
# threshold: 2

files:
  # A file the signature does not list denies loading...
  unsigned: deny
  # ...unless it matches one of these globs.
  # allow_unsigned: ["README.md", "*.md"]
  # formats:                      # detected by content, not by name
  #   deny: [pickle]              # pickle and all pickle-based files run code on load
  # Format names: pickle, pytorch-legacy, pytorch-zip, keras, npz, zip, numpy,
  # gguf, hdf5, tflite, safetensors, tar, gzip, onnx, json, text, unknown.
  # scan: true                    # what `provenance scan` finds: errors deny

# Attestations the model must carry (made with `provenance attest ...`):
# attestations:
#   - type: training              # or dataset, evaluation, a predicate-type URI
#   - type: evaluation
#     thresholds: enforce         # every threshold it recorded must hold

# Only these releases (root digests, as `provenance hash MODEL` prints):
# pins: ["sha256:<64 hex digits>"]

# Denied whatever else holds:
# revocations:
#   include: [revoked.yaml]       # a file of revocations, updated without a new policy
#   digests: [{digest: "sha256:<64 hex digits>", reason: "CVE-2026-1234"}]
#   keys: [{fingerprint: "<64 hex digits>", reason: "key leaked", since: 2026-03-01}]

# The model must come out of an in-toto pipeline that verifies (provenance run,
# layout, verify-pipeline), its files exactly the products of the last step:
# pipeline:
#   layout: root.layout
#   layout_keys: [keys/owner.pub]
#   links: links/
#   model: {step: package, path: release}

# What the verified loaders (provenance.loaders) may do. Remote code runs with
# your process's rights: allow it only for models whose code you trust.
# loading:
#   trust_remote_code: false      # true: every .py of the model must be signed
"""


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def starter(
    kind: StarterKind,
    *,
    key: str | None = None,
    root: str | None = None,
    identity: str | None = None,
    issuer: str | None = None,
) -> str:
    """A commented starter policy (YAML) with one signer.

    ``key``: a public key file; ``root``: a root CA certificate file, with an
    optional ``identity`` (an email or URI the leaf must carry); ``identity``
    with ``issuer``: a Sigstore identity. File paths are written as given:
    pass them relative to the folder the policy will be written to.
    """
    if kind == "key":
        if not key:
            raise UsageError("a key policy needs the public key's path")
        signer = (
            "  - name: release key\n"
            "    # A PEM public key file (provenance key fingerprint shows its fingerprint),\n"
            "    # or the PEM text itself.\n"
            f"    key: {_q(key)}\n"
        )
    elif kind == "root":
        if not root:
            raise UsageError("a certificate policy needs the root certificate's path")
        san = ""
        if identity:
            field = "uri" if "://" in identity else "email"
            san = f"      {field}: {_q(identity)}        # the leaf must carry this SAN\n"
        signer = (
            "  - name: release certificate\n"
            "    certificate:\n"
            "      # Leaves must chain to one of these roots.\n"
            f"      roots: [{_q(root)}]\n"
            '      # intermediates: ["intermediate.pem"]\n'
            f"{san}"
            '      # subject: "CN=Release Engineering,O=Example"   # or subject_regexp\n'
            "      # eku: [codeSigning]          # the leaf must be for code signing\n"
        )
    elif kind == "identity":
        if not identity or not issuer:
            raise UsageError("a Sigstore policy needs both an identity and its issuer")
        signer = (
            "  - name: release identity\n"
            "    sigstore:\n"
            "      # Keyless signatures: the OIDC identity and the issuer that vouched for it.\n"
            f"      identity: {_q(identity)}    # or identity_regexp (must match it all)\n"
            f"      issuer: {_q(issuer)}\n"
            "      # github:                      # GitHub Actions claims that must hold\n"
            "      #   repository: org/repo\n"
            "      #   ref: refs/heads/main\n"
            "      # trust: public-good           # or staging, or {trusted_root: FILE}\n"
        )
    else:
        raise UsageError(f"no starter policy of kind {kind!r}")
    return _HEAD + signer + _TAIL
