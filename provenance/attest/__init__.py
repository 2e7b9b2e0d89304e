"""Lineage attestations: signed in-toto statements about a model or dataset.

A model's signature says who released it; its attestations say what it was
made from. Each attestation is an in-toto Statement v1 whose subject is the
model's (or dataset's) root digest, signed with the same signers as models
and appended to ``model.intoto.jsonl`` beside ``model.sig``::

    from provenance import attest
    from provenance.signing import KeySigner

    signer = KeySigner.from_file("key.pem")
    attest.attest("data/", attest.DATASET_PREDICATE_TYPE,
                  attest.dataset_predicate(name="corpus", license="CC-BY-4.0"), signer)
    report = attest.verify_attestations("model/", verifier, root_digest)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.attest._predicates import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    TRAINING_BUILD_TYPE,
    Artifact,
    dataset_predicate,
    detect_ci,
    evaluation_predicate,
    load_config,
    now,
    parse_params,
    resolve,
    rfc3339,
    training_predicate,
)
from provenance.attest._store import ATTESTATIONS_NAME, default_attestations_path
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.findings import Finding
from provenance.manifest import STATEMENT_TYPE, Manifest, Serialization

__all__ = [
    "ATTESTATIONS_NAME",
    "DATASET_PREDICATE_TYPE",
    "EVALUATION_PREDICATE_TYPE",
    "SLSA_PREDICATE_TYPE",
    "TRAINING_BUILD_TYPE",
    "Artifact",
    "AttestResult",
    "AttestationCheck",
    "AttestationReport",
    "attest",
    "dataset_predicate",
    "default_attestations_path",
    "detect_ci",
    "evaluation_predicate",
    "load_config",
    "now",
    "parse_params",
    "resolve",
    "rfc3339",
    "subject_digest",
    "subject_manifest",
    "training_predicate",
    "verify_attestations",
]


def subject_manifest(
    model_path: str | os.PathLike[str], serialization: Serialization | None = None
) -> Manifest:
    """The manifest whose root digest an attestation about this model names.

    Hashed with the settings the caller chose (the defaults unless given),
    never with settings read from a signature file beside the model: nobody
    has verified that file here, and its ignore list could hide a poisoned
    file. Sign and attest with the same settings and the digests meet.
    """
    from provenance.hashing import hash_as, serialization_for

    if serialization is not None and not Path(model_path).is_dir():
        serialization = Serialization(
            serialization.method,
            serialization.hash_type,
            serialization.allow_symlinks,
            serialization.shard_size,
        )  # a single file has nothing to ignore
    return hash_as(model_path, serialization or serialization_for(model_path))


def subject_digest(model_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(name, root digest) of :func:`subject_manifest`."""
    manifest = subject_manifest(model_path)
    return manifest.model_name, manifest.root_digest


@dataclass(frozen=True)
class AttestResult:
    """The statement signed, and where its bundle was appended."""

    statement: dict[str, Any]
    path: Path
    line: int


def statement(name: str, digest: str, predicate_type: str, predicate: Any) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def attest(
    model_path: str | os.PathLike[str],
    predicate_type: str,
    predicate: Mapping[str, Any],
    signer: Any,
    *,
    output: str | os.PathLike[str] | None = None,
    subject: tuple[str, str] | None = None,
) -> AttestResult:
    """Sign a statement about ``model_path`` and append it to its attestations file.

    The predicate is validated against its schema first, so a malformed
    attestation is never signed.
    """
    from provenance.attest._schemas import validate
    from provenance.attest._store import append

    path = Path(model_path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist")
    try:
        validate(predicate_type, predicate, where="the new attestation")
    except VerificationError as e:  # the caller's own input, not a failed check
        raise UsageError(str(e), code="predicate-invalid") from None
    # ``subject`` lets a caller that has just hashed the target skip a second pass.
    name, digest = subject or subject_digest(path)
    stmt = statement(name, digest, predicate_type, dict(predicate))
    payload = json.dumps(stmt, separators=(",", ":"), ensure_ascii=False).encode()
    bundle = signer.sign(payload)
    target = Path(output) if output else default_attestations_path(path)
    line = append(target, bundle)
    return AttestResult(stmt, target, line)


@dataclass(frozen=True)
class AttestationCheck:
    """The verdict on one line of the attestations file."""

    line: int
    ok: bool
    predicate_type: str | None = None
    statement: dict[str, Any] | None = None
    signer: str | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttestationReport:
    path: Path
    checks: tuple[AttestationCheck, ...] = field(default=())

    @property
    def ok(self) -> bool:
        # An empty file vouches for nothing: checking attestations needs one.
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        if not self.checks:
            return [f"'{self.path}' holds no attestation"]
        return [f"attestation line {c.line}: {p}" for c in self.checks for p in c.problems]

    def statements(self) -> list[dict[str, Any]]:
        return [c.statement for c in self.checks if c.ok and c.statement is not None]

    def findings(self) -> list[Finding]:
        """Every problem as an error finding naming this file; notes as info."""
        where = str(self.path)
        if not self.checks:
            return [Finding("attestations-empty", f"'{self.path}' holds no attestation", where)]
        out = []
        for c in self.checks:
            out += [
                Finding("attestation-invalid", f"attestation line {c.line}: {p}", where)
                for p in c.problems
            ]
            out += [
                Finding("attestation-note", f"attestation line {c.line}: {n}", where, "info")
                for n in c.notes
            ]
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "line": c.line,
                "ok": c.ok,
                "predicate_type": c.predicate_type,
                "signer": c.signer,
                "problems": list(c.problems),
                "notes": list(c.notes),
            }
            for c in self.checks
        ]


def _rehash_problems(predicate: Any) -> tuple[list[str], list[str]]:
    """Hash again every dataset or base model the predicate names by a local path."""
    problems, notes = [], []
    for desc in _descriptors(predicate):
        annotations = desc.get("annotations") or {}
        local = annotations.get("path") if isinstance(annotations, Mapping) else None
        want = (desc.get("digest") or {}).get("sha256")
        if not isinstance(local, str) or not isinstance(want, str):
            continue
        label = f"{annotations.get('role', 'input')} '{desc.get('name', local)}'"
        if not Path(local).exists():
            notes.append(f"{label} not re-hashed: '{local}' is not on this machine")
            continue
        try:
            got = _rehash(local, annotations.get("serialization"))
        except ProvenanceError as e:
            problems.append(f"{label} at '{local}' cannot be hashed: {e}")
            continue
        if got != want:
            problems.append(f"{label} at '{local}' no longer matches its digest")
    return problems, notes


def _rehash(local: str, recorded: Any) -> str:
    """Hash an input again exactly as the (signed) attestation recorded.

    Never from the input's own ``model.sig``, which nobody has verified here
    and which could, say, add a poisoned file to its ignore list.
    """
    from provenance.hashing import hash_as
    from provenance.manifest import DEFAULT_IGNORE_PATHS

    if recorded is None:
        s = Serialization(ignore_paths=DEFAULT_IGNORE_PATHS)
    else:
        s = Serialization.from_json(recorded)
    return hash_as(Path(local), s).root_digest


def _descriptors(predicate: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(predicate, Mapping):
        return []
    build = predicate.get("buildDefinition")
    found: list[Any] = []
    if isinstance(build, Mapping):
        found += build.get("resolvedDependencies") or []
    found += predicate.get("datasets") or []
    return [d for d in found if isinstance(d, Mapping)]


def _check_line(line: Any, verifier: Any, root_digest: str, rehash: bool) -> AttestationCheck:
    from provenance.attest._schemas import validate
    from provenance.dsse import INTOTO_PAYLOAD_TYPE

    if line.bundle is None:
        return AttestationCheck(line.number, False, problems=(f"unreadable: {line.error}",))
    try:
        verified = verifier.verify(line.bundle)
    except ProvenanceError as e:
        return AttestationCheck(line.number, False, problems=(f"signature: {e}",))
    # Only the bytes the verifier vouched for are parsed.
    if verified.payload_type != INTOTO_PAYLOAD_TYPE:
        return AttestationCheck(line.number, False, problems=("payload is not in-toto",))
    try:
        stmt = json.loads(verified.payload)
    except (ValueError, RecursionError):
        return AttestationCheck(line.number, False, problems=("statement is not JSON",))
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        return AttestationCheck(line.number, False, problems=("not an in-toto Statement v1",))
    ptype = stmt.get("predicateType")
    problems: list[str] = []
    notes: list[str] = []
    subjects = stmt.get("subject") if isinstance(stmt.get("subject"), list) else []
    digests = [(s.get("digest") or {}).get("sha256") for s in subjects if isinstance(s, Mapping)]
    if root_digest not in digests:
        names = ", ".join(str(s.get("name")) for s in subjects if isinstance(s, Mapping))
        problems.append(f"its subject ({names or 'none'}) is another model, not this one")
    try:
        validate(ptype, stmt.get("predicate"), where="the predicate")
    except VerificationError as e:
        problems.append(str(e))
    except InputError as e:
        notes.append(str(e))
    if rehash and not problems:
        try:
            more, notes2 = _rehash_problems(stmt.get("predicate"))
        except (TypeError, AttributeError, ValueError) as e:
            more, notes2 = [f"an input descriptor is malformed ({e})"], []
        problems += more
        notes += notes2
    return AttestationCheck(
        line.number,
        not problems,
        ptype if isinstance(ptype, str) else None,
        stmt,
        verified.signer.description,
        tuple(problems),
        tuple(notes),
    )


def verify_attestations(
    model_path: str | os.PathLike[str],
    verifier: Any,
    root_digest: str,
    *,
    attestations_path: str | os.PathLike[str] | None = None,
    rehash: bool = True,
) -> AttestationReport:
    """Check every attestation: signature, subject, predicate schema, re-hashed inputs.

    ``root_digest`` must come from a verified signature (or a fresh hash): an
    attestation counts only if its subject is exactly that digest.
    """
    from provenance.attest._store import read

    path = Path(attestations_path) if attestations_path else default_attestations_path(model_path)
    if not path.exists():
        raise InputError(f"no attestations at '{path}'")
    checks = tuple(_check_line(line, verifier, root_digest, rehash) for line in read(path))
    return AttestationReport(path, checks)
