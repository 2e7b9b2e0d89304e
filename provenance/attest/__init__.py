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

Inputs named by a local path (datasets, base models, logs) are recorded
relative to the attested model (its folder; for a single file, the folder
that holds it), so a published statement carries no build machine's paths;
verification and lineage resolve them against the model again.

The attestations file is read bounded and never through a link
(:mod:`provenance.attest._store`); a damaged line is reported and never
stops the others from being read. :func:`prune` drops the lines about
other digests after a model changed and was signed again.

This package uses only the public pipelines (:mod:`provenance.hashing`,
:mod:`provenance.bundle`, the :mod:`provenance.signing` protocols) and the
statement model of :mod:`provenance.intoto`; nothing here imports the
verify or sign pipelines at import time, so they may import it without a
cycle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provenance.attest._parse import MAX_FILE_VALUES, MAX_STATEMENT_VALUES, parse_statement
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
    input_base,
    load_config,
    now,
    parse_params,
    resolve,
    rfc3339,
    subject_manifest,
    training_predicate,
)
from provenance.attest._store import (
    ATTESTATIONS_NAME,
    MAX_FILE_BYTES,
    MAX_LINE_BYTES,
    MAX_LINES,
    Line,
    default_attestations_path,
    iter_lines,
)
from provenance.dsse import INTOTO_PAYLOAD_TYPE
from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.findings import Finding
from provenance.hashing import hash_as
from provenance.intoto import EVALUATION, SLSA_PROVENANCE, Statement
from provenance.manifest import DEFAULT_IGNORE_PATHS, Serialization

if TYPE_CHECKING:
    from provenance.attest._lineage import LineageEdge, LineageGraph, LineageNode
    from provenance.attest._lineage import build as build_lineage
    from provenance.intoto import ResourceDescriptor
    from provenance.signing import Signer, SignerInfo, Verifier

__all__ = [
    "ATTESTATIONS_NAME",
    "DATASET_PREDICATE_TYPE",
    "EVALUATION_PREDICATE_TYPE",
    "MAX_FILE_BYTES",
    "MAX_FILE_VALUES",
    "MAX_LINES",
    "MAX_LINE_BYTES",
    "MAX_STATEMENT_VALUES",
    "SLSA_PREDICATE_TYPE",
    "STALE_WARNING_LEAD",
    "TRAINING_BUILD_TYPE",
    "Artifact",
    "AttestResult",
    "AttestationCheck",
    "AttestationReport",
    "CiContext",
    "DroppedLine",
    "InputPaths",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "PruneResult",
    "StaleAttestations",
    "attest",
    "build_lineage",
    "check_output",
    "dataset_predicate",
    "default_attestations_path",
    "detect_ci",
    "evaluation_predicate",
    "input_base",
    "iter_lines",
    "load_config",
    "localize_input_paths",
    "now",
    "parse_params",
    "parse_statement",
    "prune",
    "read_statements",
    "resolve",
    "rfc3339",
    "stale_attestations",
    "subject_digest",
    "subject_manifest",
    "training_predicate",
    "verify_attestations",
]

# The lineage graph is loaded on first use: verification under a policy without
# lineage rules never needs it (4 ms of start-up).
_LINEAGE = {
    "LineageEdge": "LineageEdge",
    "LineageGraph": "LineageGraph",
    "LineageNode": "LineageNode",
    "build_lineage": "build",
}


def __getattr__(name: str) -> Any:
    if name not in _LINEAGE:
        raise AttributeError(f"module 'provenance.attest' has no attribute {name!r}")
    from provenance.attest import _lineage

    value = getattr(_lineage, _LINEAGE[name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LINEAGE))


#: How input paths are recorded: relative to the attested model (the
#: default), as given on the build machine, or not at all.
InputPaths = Literal["relative", "absolute", "none"]
_INPUT_PATHS = ("relative", "absolute", "none")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def subject_digest(model_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(name, root digest) of :func:`subject_manifest` with the default settings."""
    manifest = subject_manifest(model_path)
    return manifest.model_name, manifest.root_digest


def _check_digest(digest: str) -> str:
    value = digest.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not _HEX64.fullmatch(value):
        raise UsageError(
            f"subject digest {digest!r} is not a SHA-256 root digest (64 hex digits)",
            code="subject-digest-invalid",
        )
    return value


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


# ---------------------------------------------------------------- recording input paths


def _relative(path: str, base: str) -> str:
    """``path`` relative to ``base`` (both as the file system resolves them), POSIX form."""
    if not os.path.isabs(path):
        return Path(path).as_posix()  # already relative to the model
    return Path(os.path.relpath(os.path.realpath(path), base)).as_posix()


def _localized(items: object, base: str, mode: str) -> object:
    if not isinstance(items, list):
        return items
    out: list[object] = []
    for desc in items:
        annotations = desc.get("annotations") if isinstance(desc, Mapping) else None
        if not isinstance(annotations, Mapping) or not isinstance(annotations.get("path"), str):
            out.append(desc)
            continue
        assert isinstance(desc, Mapping)
        notes = dict(annotations)
        if mode == "none":
            del notes["path"]
        else:
            notes["path"] = _relative(notes["path"], base)
        fixed = dict(desc)
        if notes:
            fixed["annotations"] = notes
        else:
            del fixed["annotations"]
        out.append(fixed)
    return out


def localize_input_paths(
    predicate_type: str, predicate: Mapping[str, Any], model_path: str | os.PathLike[str], mode: str
) -> dict[str, Any]:
    """The predicate with its inputs' local paths recorded as ``mode`` says.

    ``relative``: relative to the attested model (``../data/train``);
    ``none``: left out (the digest and the name stay); ``absolute``: as given.
    Only the descriptors this project writes are touched (SLSA
    ``resolvedDependencies`` and ``byproducts``, evaluation ``datasets``);
    the caller's predicate is not modified.
    """
    if mode not in _INPUT_PATHS:
        raise UsageError(f"input paths are recorded {', '.join(_INPUT_PATHS)}, not {mode!r}")
    out = dict(predicate)
    if mode == "absolute":
        return out
    base = input_base(model_path)
    if predicate_type == SLSA_PREDICATE_TYPE:
        for part, key in (
            ("buildDefinition", "resolvedDependencies"),
            ("runDetails", "byproducts"),
        ):
            section = out.get(part)
            if isinstance(section, Mapping) and key in section:
                out[part] = {**section, key: _localized(section[key], base, mode)}
    elif predicate_type == EVALUATION_PREDICATE_TYPE and "datasets" in out:
        out["datasets"] = _localized(out["datasets"], base, mode)
    return out


# ---------------------------------------------------------------- attesting


def check_output(
    model_path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> Path:
    """The attestations file an attestation about ``model_path`` would go to, checked.

    Refused (an :class:`InputError` with the reason) unless it is a new path
    or a file that holds attestations, outside the model's own files; call it
    before hashing or signing anything. :func:`attest` checks again.
    """
    from provenance.attest._store import check_append

    target = Path(output) if output else default_attestations_path(model_path)
    check_append(target, model_root=model_path)
    return target


def attest(
    model_path: str | os.PathLike[str],
    predicate_type: str,
    predicate: Mapping[str, Any],
    signer: Signer,
    *,
    output: str | os.PathLike[str] | None = None,
    subject: tuple[str, str] | None = None,
    serialization: Serialization | None = None,
    input_paths: InputPaths = "relative",
) -> AttestResult:
    """Sign a statement about ``model_path`` and append it to its attestations file.

    The predicate is validated against its schema first, so a malformed
    attestation is never signed; NaN and infinite numbers are refused (JSON
    has none). The subject is ``subject`` (name, root digest) when the
    caller has just hashed the target, else a hash of it with
    ``serialization`` (the defaults unless given): sign and attest with the
    same settings and the digests meet. Inputs' local paths are recorded as
    ``input_paths`` says (:func:`localize_input_paths`). ``output`` must be a
    new path or a file that holds attestations (:func:`check_output`).
    """
    from provenance._internal.fsutil import refuse_bundle_as_model
    from provenance.attest._parse import non_finite
    from provenance.attest._schemas import validate
    from provenance.attest._store import append

    path = Path(model_path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"'{path}' does not exist", code="not-found")
    refuse_bundle_as_model(path)
    body = localize_input_paths(predicate_type, predicate, path, input_paths)
    where = non_finite(body)
    if where is not None:
        raise UsageError(
            f"the new attestation's {where} is NaN, infinite or not JSON; "
            "an attestation holds JSON numbers only",
            code="predicate-invalid",
        )
    try:
        validate(predicate_type, body, where="the new attestation")
    except VerificationError as e:  # the caller's own input, not a failed check
        raise UsageError(str(e), code="predicate-invalid") from None
    target = check_output(path, output)  # before anything is hashed or signed
    if subject is None:
        manifest = subject_manifest(path, serialization)
        subject = (manifest.model_name, manifest.root_digest)
    stmt = Statement.about(subject[0], subject[1], predicate_type, body)
    bundle = signer.sign(stmt.to_bytes())
    line = append(target, bundle, model_root=path)
    # Who signed, as sign reports it: the signer's own description, else what
    # the bundle it wrote says (read, not verified).
    describe = getattr(signer, "describe", None)
    if callable(describe):
        info = describe()
    else:
        from provenance.signing import describe_bundle

        info = describe_bundle(bundle)
    return AttestResult(stmt, target, line, info)


def read_statements(
    model_path: str | os.PathLike[str],
    *,
    attestations_path: str | os.PathLike[str] | None = None,
) -> list[tuple[Line, Statement | None]]:
    """Every line of a target's attestations file and its statement (read, NOT verified).

    For describing what a file claims (``inspect``); a line whose bundle or
    statement cannot be read comes with None (``Line.statement_error`` says
    why), a repeat of an earlier line too (``Line.duplicate_of``). Trust only
    :func:`verify_attestations`.
    """
    file = Path(attestations_path) if attestations_path else default_attestations_path(model_path)
    return [(line, line.statement) for line in iter_lines(file, statements=True)]


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class AttestationCheck:
    """The verdict on one line of the attestations file.

    ``duplicate_of`` names an earlier line this one repeats (byte for byte,
    or the same statement signed again): it is checked, and its verdict
    given, but it is counted, re-hashed and returned by
    :meth:`AttestationReport.statements` once.
    """

    line: int
    ok: bool
    predicate_type: str | None = None
    statement: Statement | None = None
    signer: str | None = None  # who signed, in words (``signer_info`` has the fields)
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    signer_info: SignerInfo | None = field(default=None, compare=False)
    duplicate_of: int | None = None

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
        if self.duplicate_of is not None:
            out["duplicate_of"] = self.duplicate_of
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
    def counted(self) -> tuple[AttestationCheck, ...]:
        """The checks of distinct statements (repeats left out)."""
        return tuple(c for c in self.checks if c.duplicate_of is None)

    @property
    def problems(self) -> list[str]:
        if not self.checks:
            return [f"'{self.path}' holds no attestation"]
        return [f"attestation line {c.line}: {p}" for c in self.checks for p in c.problems]

    def statements(self) -> list[Statement]:
        """The statements of the lines that verified, and only those, each once."""
        return [c.statement for c in self.counted if c.ok and c.statement is not None]

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


def _rehash(local: Path, recorded: Mapping[str, Any] | None) -> str:
    """Hash an input again exactly as the (signed) attestation recorded.

    Never from the input's own ``model.sig``, which nobody has verified here
    and which could, say, add a poisoned file to its ignore list.
    """
    if recorded is None:
        s = Serialization(ignore_paths=DEFAULT_IGNORE_PATHS)
    else:
        s = Serialization.from_json(recorded)
    return hash_as(local, s).root_digest


class _Checker:
    """One pass over a file: each line checked, each input hashed once."""

    def __init__(
        self, verifier: Verifier, root_digest: str, rehash: bool, require: bool, base: Path
    ) -> None:
        from provenance.attest._parse import Budget

        self.verifier = verifier
        self.root = root_digest
        self.rehash = rehash
        self.require = require
        self.base = base
        self.budget = Budget()
        self.by_line: dict[int, AttestationCheck] = {}
        self.by_payload: dict[bytes, int] = {}  # statement digest -> first line that verified
        self.hashed: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def check(self, line: Line) -> AttestationCheck:
        result = self._check(line)
        self.by_line[line.number] = result
        return result

    def _check(self, line: Line) -> AttestationCheck:
        from provenance.attest._schemas import validate

        if line.duplicate_of is not None:
            first = self.by_line[line.duplicate_of]
            return AttestationCheck(
                line.number,
                first.ok,
                first.predicate_type,
                None,
                first.signer,
                () if first.ok else (f"repeats line {line.duplicate_of}, which did not verify",),
                (f"repeats line {line.duplicate_of} byte for byte; counted once",),
                first.signer_info,
                line.duplicate_of,
            )
        if line.bundle is None:
            return AttestationCheck(line.number, False, problems=(f"unreadable: {line.error}",))
        try:
            verified = self.verifier.verify(line.bundle)
        except ProvenanceError as e:
            return AttestationCheck(line.number, False, problems=(f"signature: {e}",))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            # A malformed bundle the verifier choked on: not verified (fail closed).
            why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            return AttestationCheck(
                line.number, False, problems=(f"signature: cannot be checked ({why})",)
            )
        # Only the bytes the verifier vouched for are parsed.
        if verified.payload_type != INTOTO_PAYLOAD_TYPE:
            return AttestationCheck(line.number, False, problems=("payload is not in-toto",))
        try:
            stmt = parse_statement(verified.payload, self.budget)
        except InputError as e:
            return AttestationCheck(line.number, False, problems=(str(e),))
        key = hashlib.sha256(verified.payload).digest()
        first_line = self.by_payload.get(key)
        if first_line is not None:  # the same statement, signed again: checked once
            first = self.by_line[first_line]
            return AttestationCheck(
                line.number,
                True,
                stmt.predicate_type,
                stmt,
                verified.signer.description,
                (),
                (f"same statement as line {first_line}; counted once",),
                verified.signer,
                first_line,
            )
        problems: list[str] = []
        notes: list[str] = []
        if not stmt.has_subject_digest(self.root):
            problems.append(f"its subject ({stmt.subject_names}) is another model, not this one")
        try:
            validate(stmt.predicate_type, stmt.predicate, where="the predicate")
        except VerificationError as e:
            problems.append(str(e))
        except InputError as e:
            notes.append(str(e))
        if self.rehash and not problems:
            more, more_notes = self._inputs(stmt)
            problems += more
            notes += more_notes
        result = AttestationCheck(
            line.number,
            not problems,
            stmt.predicate_type,
            stmt,
            verified.signer.description,
            tuple(problems),
            tuple(notes),
            verified.signer,
        )
        if result.ok:
            self.by_payload[key] = line.number
        return result

    def _inputs(self, stmt: Statement) -> tuple[list[str], list[str]]:
        """Hash again every dataset or base model the statement names by a local path."""
        problems: list[str] = []
        notes: list[str] = []
        try:
            inputs = _inputs(stmt)
        except InputError as e:
            return [f"an input descriptor is malformed ({e})"], []
        for desc in inputs:
            local, want = desc.path, desc.digest.get("sha256")
            if want is None:
                continue
            label = f"{desc.role or 'input'} '{desc.name or local or want[:12]}'"
            where: Path | None = None
            if local is None and desc.uri is not None and desc.uri.startswith("hf://"):
                # A Hub model by commit: found in this machine's cache, or not at all.
                where, local, missing = _cached_input(desc.uri)
                if where is None:
                    if self.require:
                        problems.append(f"{label} is required but {missing}")
                    else:
                        notes.append(f"{label} not re-hashed: {missing}")
                    continue
            if local is None:
                # Hashed from a local path when attested, recorded without it.
                if self.require and desc.serialization is not None:
                    problems.append(f"{label} was recorded without a path; it cannot be re-hashed")
                continue
            if where is None:
                where = Path(local) if os.path.isabs(local) else self.base / local
            if not os.path.lexists(where):
                if self.require:
                    problems.append(f"{label} is required but '{local}' is not on this machine")
                else:
                    notes.append(f"{label} not re-hashed: '{local}' is not on this machine")
                continue
            recorded = desc.serialization
            key = (os.path.realpath(where), json.dumps(recorded, sort_keys=True, default=str))
            if key not in self.hashed:
                try:
                    self.hashed[key] = (_rehash(where, recorded), None)
                except ProvenanceError as e:
                    self.hashed[key] = (None, str(e))
            got, error = self.hashed[key]
            if error is not None:
                problems.append(f"{label} at '{local}' cannot be hashed: {error}")
            elif got != want.lower():
                problems.append(f"{label} at '{local}' no longer matches its digest")
        return problems, notes


def _cached_input(uri: str) -> tuple[Path | None, str, str]:
    """The cached snapshot an ``hf://ORG/NAME@COMMIT`` input names: (folder, label, why not)."""
    from provenance import hub

    ref = hub.parse_reference(uri)
    if ref is None or ref.commit is None:
        return None, uri, f"'{uri}' names no commit of a Hub repository"
    try:
        _, folder = hub.cached_snapshot(ref.repo_id, ref.commit)
    except ProvenanceError:
        return (
            None,
            uri,
            f"'{uri}' is not in the local Hugging Face cache ({hub.default_cache()}; "
            "HF_HUB_CACHE sets it); fetch it with: provenance hub verify "
            f"{ref.repo_id} --revision {ref.commit} ...",
        )
    return folder, uri, ""


def verify_attestations(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    root_digest: str,
    *,
    attestations_path: str | os.PathLike[str] | None = None,
    rehash: bool = True,
    require_inputs: bool = False,
) -> AttestationReport:
    """Check every attestation: signature, subject, predicate schema, re-hashed inputs.

    ``root_digest`` must come from a verified signature, a fresh hash or the
    caller's own pin: an attestation counts only if its subject is exactly
    that digest. Inputs recorded by a relative path are found relative to
    ``model_path`` (its folder; for a file, the folder that holds it). An
    input that is not on this machine is a note, or a problem with
    ``require_inputs`` (then an input hashed from a local path but recorded
    without one is a problem too). A line that repeats another is checked
    and counted once.
    """
    path = Path(attestations_path) if attestations_path else default_attestations_path(model_path)
    checker = _Checker(verifier, root_digest, rehash, require_inputs, Path(input_base(model_path)))
    checks = tuple(checker.check(line) for line in iter_lines(path))
    return AttestationReport(path, checks)


# ---------------------------------------------------------------- stale lines and pruning

#: How the warning :meth:`StaleAttestations.message` starts, for a front end
#: that adds its own advice to it.
STALE_WARNING_LEAD = "stale attestations: "


@dataclass(frozen=True)
class StaleAttestations:
    """Lines of an attestations file about another digest than the model's current one."""

    path: Path
    root_digest: str
    lines: tuple[int, ...]
    digests: tuple[str, ...]
    total: int

    @property
    def message(self) -> str:
        named = ", ".join(f"sha256:{d[:12]}" for d in self.digests[:3])
        if len(self.digests) > 3:
            named += f" and {len(self.digests) - 3} more"
        return (
            f"{STALE_WARNING_LEAD}{len(self.lines)} of the {self.total} line(s) of "
            f"'{self.path}' name {named or 'another digest'}, not sha256:{self.root_digest[:12]} "
            "just signed; attest the model again (hashed as it was signed), then prune "
            "the lines about other digests"
        )


def stale_attestations(
    model_path: str | os.PathLike[str],
    root_digest: str,
    *,
    attestations_path: str | os.PathLike[str] | None = None,
) -> StaleAttestations | None:
    """The lines (read, not verified) whose subject is not ``root_digest``; None if none.

    None too when there is no attestations file. An unreadable file is an
    :class:`InputError`.
    """
    path = Path(attestations_path) if attestations_path else default_attestations_path(model_path)
    if not os.path.lexists(path):
        return None
    stale: list[int] = []
    digests: dict[str, None] = {}
    total = 0
    for line in iter_lines(path, statements=True):
        stmt = line.statement
        if stmt is None:
            continue
        total += 1
        if not stmt.has_subject_digest(root_digest):
            stale.append(line.number)
            for s in stmt.subjects:
                digests[s.digest.get("sha256", "?")] = None
    if not stale:
        return None
    return StaleAttestations(path, root_digest, tuple(stale), tuple(digests), total)


@dataclass(frozen=True)
class DroppedLine:
    """A line :func:`prune` took out, and why: ``other-digest``, ``unreadable``, ``duplicate``."""

    line: int
    reason: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "message": self.message}


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` kept and dropped, and the digest it kept lines about."""

    path: Path
    root_digest: str
    #: Where the digest came from: ``given``, ``signature`` (verified), ``hash`` (fresh).
    subject_source: str
    kept: int
    dropped: tuple[DroppedLine, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "attestations_file": str(self.path),
            "root_digest": self.root_digest,
            "subject_source": self.subject_source,
            "kept": self.kept,
            "dropped": [d.to_json() for d in self.dropped],
        }


def _current_digest(
    path: Path,
    root_digest: str | None,
    verifier: Verifier | None,
    signature_path: str | os.PathLike[str] | None,
    serialization: Serialization | None,
) -> tuple[str, str]:
    if sum(x is not None for x in (root_digest, verifier, serialization)) > 1:
        raise UsageError(
            "give one source of the current digest: the digest itself, a verifier for the "
            "model's signature, or the hashing settings for a fresh hash",
            code="usage",
        )
    if signature_path is not None and verifier is None:
        raise UsageError("a signature path needs a verifier to check it", code="usage")
    if root_digest is not None:
        return _check_digest(root_digest), "given"
    if verifier is not None:
        from provenance.verification import verify  # lazily: verification imports this package

        result = verify(path, verifier, signature_path=signature_path)
        return result.root_digest, "signature"
    if not path.exists() and not path.is_symlink():
        raise InputError(f"'{path}' does not exist", code="not-found")
    return subject_manifest(path, serialization).root_digest, "hash"


def prune(
    model_path: str | os.PathLike[str],
    *,
    root_digest: str | None = None,
    verifier: Verifier | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    serialization: Serialization | None = None,
    attestations_path: str | os.PathLike[str] | None = None,
) -> PruneResult:
    """Drop, atomically, every line that is not about the model's current root digest.

    The current digest is ``root_digest`` when given; else the root digest
    of the model's signature, verified with ``verifier`` (the files must
    match it too); else a fresh hash with ``serialization`` (the defaults
    unless given). Dropped: lines about other digests, damaged lines (not a
    readable bundle or statement) and byte-for-byte repeats; the lines kept
    are kept byte for byte, in order. The file is rewritten only if
    something was dropped, under the same folder lock as appends.

    A file with no readable bundle at all is refused (it is not an
    attestations file), as is one with more lines than are read
    (:data:`MAX_LINES`), whose last lines nobody could have looked at.
    """
    from provenance._internal.fsutil import safe_output, write_output
    from provenance.attest._store import folder_lock, read_file

    path = Path(model_path)
    file = Path(attestations_path) if attestations_path else default_attestations_path(path)
    if not os.path.lexists(file):  # before anything is verified or hashed
        raise InputError(f"no attestations at '{file}'", code="attestations-missing")
    digest, source = _current_digest(path, root_digest, verifier, signature_path, serialization)
    with folder_lock(file.parent):
        data = read_file(file)
        out = safe_output(file, None)  # a regular file, not a link (content checked below)
        st = os.stat(file, follow_symlinks=False)
        if out.identity != (st.st_dev, st.st_ino):
            raise InputError(f"'{file}' changed while it was read; try again", code="unreadable")
        kept: list[bytes] = []
        dropped: list[DroppedLine] = []
        bundles = 0
        for line in iter_lines(file, statements=True, keep_raw=True, data=data):
            if line.duplicate_of is not None:
                dropped.append(
                    DroppedLine(line.number, "duplicate", f"repeats line {line.duplicate_of}")
                )
                continue
            if line.bundle is None:
                if line.error and line.error.startswith(f"more than {MAX_LINES:,} lines"):
                    raise InputError(
                        f"'{file}' holds more than {MAX_LINES:,} lines; not pruned, since "
                        "its last lines are not read",
                        code="attestations-too-large",
                    )
                dropped.append(DroppedLine(line.number, "unreadable", line.error or "unreadable"))
                continue
            bundles += 1
            stmt = line.statement
            if stmt is None:
                why = line.statement_error or "statement unreadable"
                dropped.append(DroppedLine(line.number, "unreadable", why))
                continue
            if not stmt.has_subject_digest(digest):
                named = ", ".join(
                    f"sha256:{s.digest['sha256']}" if "sha256" in s.digest else s.name
                    for s in stmt.subjects
                )
                dropped.append(DroppedLine(line.number, "other-digest", f"about {named}"))
                continue
            assert line.raw is not None
            kept.append(line.raw)
        if data.strip() and bundles == 0:
            raise InputError(
                f"'{file}' holds no attestation at all; it is not an attestations file, "
                "so it is left alone",
                code="not-attestations",
            )
        if dropped:
            write_output(out, b"".join(raw + b"\n" for raw in kept))
    return PruneResult(file, digest, source, len(kept), tuple(dropped))
