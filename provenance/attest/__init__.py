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
    print(attest.build_lineage("model/").render_tree())

This package uses only the public pipelines (:mod:`provenance.hashing`,
:mod:`provenance.bundle`, the :mod:`provenance.signing` protocols) and the
statement model of :mod:`provenance.intoto`; nothing here imports the
verify or sign pipelines, so they may import it without a cycle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.attest._lineage import LineageEdge, LineageGraph, LineageNode
from provenance.attest._lineage import build as build_lineage
from provenance.attest._predicates import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    TRAINING_BUILD_TYPE,
    Artifact,
    CiContext,
    dataset_predicate,
    detect_ci,
    evaluation_predicate,
    load_config,
    now,
    parse_params,
    resolve,
    rfc3339,
    subject_manifest,
    training_predicate,
)
from provenance.attest._store import ATTESTATIONS_NAME, Line, default_attestations_path
from provenance.dsse import INTOTO_PAYLOAD_TYPE
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.findings import Finding
from provenance.hashing import hash_as
from provenance.intoto import EVALUATION, SLSA_PROVENANCE, Statement
from provenance.manifest import DEFAULT_IGNORE_PATHS, Serialization

if TYPE_CHECKING:
    from provenance.intoto import ResourceDescriptor
    from provenance.signing import Signer, SignerInfo, Verifier

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
    "CiContext",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "attest",
    "build_lineage",
    "dataset_predicate",
    "default_attestations_path",
    "detect_ci",
    "evaluation_predicate",
    "load_config",
    "now",
    "parse_params",
    "read_statements",
    "resolve",
    "rfc3339",
    "subject_digest",
    "subject_manifest",
    "training_predicate",
    "verify_attestations",
]


def subject_digest(model_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(name, root digest) of :func:`subject_manifest` with the default settings."""
    manifest = subject_manifest(model_path)
    return manifest.model_name, manifest.root_digest


@dataclass(frozen=True)
class AttestResult:
    """The statement signed, who signed it, and where its bundle was appended."""

    statement: Statement
    path: Path
    line: int
    #: The signer's own description (``Signer.describe()``), the shape sign and
    #: verify report; None for a signer that cannot describe itself.
    signer: SignerInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """``attestations_file`` is the file's path (``attestations`` is a list of lines
        in verify and inspect, so the path has a name of its own)."""
        out: dict[str, Any] = {
            "ok": True,
            "attestations_file": str(self.path),
            "line": self.line,
            "statement": self.statement.to_json(),
        }
        if self.signer is not None:
            out["signer"] = self.signer.to_json()
        return out


def attest(
    model_path: str | os.PathLike[str],
    predicate_type: str,
    predicate: Mapping[str, Any],
    signer: Signer,
    *,
    output: str | os.PathLike[str] | None = None,
    subject: tuple[str, str] | None = None,
    serialization: Serialization | None = None,
) -> AttestResult:
    """Sign a statement about ``model_path`` and append it to its attestations file.

    The predicate is validated against its schema first, so a malformed
    attestation is never signed. The subject is ``subject`` (name, root
    digest) when the caller has just hashed the target, else a hash of it
    with ``serialization`` (the defaults unless given): sign and attest with
    the same settings and the digests meet.
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
    if subject is None:
        manifest = subject_manifest(path, serialization)
        subject = (manifest.model_name, manifest.root_digest)
    stmt = Statement.about(subject[0], subject[1], predicate_type, dict(predicate))
    bundle = signer.sign(stmt.to_bytes())
    target = Path(output) if output else default_attestations_path(path)
    line = append(target, bundle)
    # Who signed, as sign reports it: the signer's own description, else what
    # the bundle it wrote says (read, not verified).
    describe = getattr(signer, "describe", None)
    if callable(describe):
        info = describe()
    else:
        from provenance.signing import describe_bundle

        info = describe_bundle(bundle)
    return AttestResult(stmt, target, line, info)


def read_statements(model_path: str | os.PathLike[str]) -> list[tuple[Line, Statement | None]]:
    """Every line of a target's attestations file and its statement (read, NOT verified).

    For describing what a file claims (``inspect``); a line whose bundle or
    statement cannot be read comes with None. Trust only
    :func:`verify_attestations`.
    """
    from provenance.attest._store import read

    out: list[tuple[Line, Statement | None]] = []
    for line in read(default_attestations_path(model_path)):
        stmt = None
        if line.bundle is not None:
            try:
                stmt = Statement.parse(line.bundle.envelope.payload)
            except InputError:
                stmt = None
        out.append((line, stmt))
    return out


@dataclass(frozen=True)
class AttestationCheck:
    """The verdict on one line of the attestations file."""

    line: int
    ok: bool
    predicate_type: str | None = None
    statement: Statement | None = None
    signer: str | None = None  # who signed, in words (``signer_info`` has the fields)
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    signer_info: SignerInfo | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """``signer`` is the SignerInfo shape sign, verify, inspect and attest report;
        it is left out when the line's signature did not verify."""
        out: dict[str, Any] = {
            "line": self.line,
            "ok": self.ok,
            "predicate_type": self.predicate_type,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }
        if self.signer_info is not None:
            out["signer"] = self.signer_info.to_json()
        return out


@dataclass(frozen=True)
class AttestationReport:
    """Every line's verdict; the file vouches for the model only if all lines pass."""

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

    def statements(self) -> list[Statement]:
        """The statements of the lines that verified, and only those."""
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
        return [c.to_json() for c in self.checks]


def _inputs(stmt: Statement) -> tuple[ResourceDescriptor, ...]:
    """The datasets and models a statement names as inputs (typed; InputError if malformed)."""
    if stmt.predicate_type == SLSA_PROVENANCE.uri:
        return SLSA_PROVENANCE.parse(stmt.predicate).resolved_dependencies
    if stmt.predicate_type == EVALUATION.uri:
        return EVALUATION.parse(stmt.predicate).datasets
    return ()


def _rehash_problems(stmt: Statement) -> tuple[list[str], list[str]]:
    """Hash again every dataset or base model the statement names by a local path."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        inputs = _inputs(stmt)
    except InputError as e:
        return [f"an input descriptor is malformed ({e})"], []
    for desc in inputs:
        local, want = desc.path, desc.digest.get("sha256")
        if local is None or want is None:
            continue
        label = f"{desc.role or 'input'} '{desc.name or local}'"
        if not Path(local).exists():
            notes.append(f"{label} not re-hashed: '{local}' is not on this machine")
            continue
        try:
            got = _rehash(local, desc.serialization)
        except ProvenanceError as e:
            problems.append(f"{label} at '{local}' cannot be hashed: {e}")
            continue
        if got != want.lower():
            problems.append(f"{label} at '{local}' no longer matches its digest")
    return problems, notes


def _rehash(local: str, recorded: Mapping[str, Any] | None) -> str:
    """Hash an input again exactly as the (signed) attestation recorded.

    Never from the input's own ``model.sig``, which nobody has verified here
    and which could, say, add a poisoned file to its ignore list.
    """
    if recorded is None:
        s = Serialization(ignore_paths=DEFAULT_IGNORE_PATHS)
    else:
        s = Serialization.from_json(recorded)
    return hash_as(Path(local), s).root_digest


def _check_line(line: Line, verifier: Verifier, root_digest: str, rehash: bool) -> AttestationCheck:
    from provenance.attest._schemas import validate

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
        stmt = Statement.parse(verified.payload)
    except InputError as e:
        return AttestationCheck(line.number, False, problems=(str(e),))
    problems: list[str] = []
    notes: list[str] = []
    if not stmt.has_subject_digest(root_digest):
        problems.append(f"its subject ({stmt.subject_names}) is another model, not this one")
    try:
        validate(stmt.predicate_type, stmt.predicate, where="the predicate")
    except VerificationError as e:
        problems.append(str(e))
    except InputError as e:
        notes.append(str(e))
    if rehash and not problems:
        more, more_notes = _rehash_problems(stmt)
        problems += more
        notes += more_notes
    return AttestationCheck(
        line.number,
        not problems,
        stmt.predicate_type,
        stmt,
        verified.signer.description,
        tuple(problems),
        tuple(notes),
        verified.signer,
    )


def verify_attestations(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
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
