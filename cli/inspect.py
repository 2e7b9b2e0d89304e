"""``provenance inspect``: describe a signature and attestations, without trusting them.

Everything shown is what the files *claim*: signers come from
:func:`provenance.signing.describe_bundle` (the :class:`~provenance.signing.SignerInfo`
shape sign and verify report, read and not verified), statements from
:func:`provenance.attest.read_statements`. ``--json`` prints the contract head
and :meth:`Inspection.to_json` (``schemas/cli-inspect.schema.json``); text
has its control characters escaped, since none of it has been verified.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit

if TYPE_CHECKING:
    from provenance.attest import LineageGraph
    from provenance.intoto import Statement
    from provenance.manifest import Manifest
    from provenance.signing import SignerInfo

#: Controls, line separators and bidirectional overrides (a name must read as it is).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    """Escape control characters: what is shown here is unverified, the terminal is not."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _signer_words(signer: SignerInfo) -> str:
    """Who a bundle says signed it, in one line."""
    if signer.kind == "keyless":
        words = f"Sigstore keyless identity {signer.identity} (issuer {signer.issuer or 'unknown'})"
        if signer.log_index is not None:
            words += f", log index {signer.log_index}"
        if signer.signed_at:
            words += f", signed at {signer.signed_at}"
        return words + "; verify with --identity and --issuer"
    if signer.kind == "certificate" and signer.certificate_chain:
        return f"{signer.description} ({len(signer.certificate_chain)} certificate(s) in chain)"
    return signer.description


def _signer_short(signer: SignerInfo) -> str:
    """Who a line claims signed it, short enough for the end of a line."""
    if signer.kind in ("key", "kms") and signer.key_fingerprint:
        return f"key {signer.key_fingerprint[:16]}"
    if signer.kind == "keyless" and signer.identity:
        return f"Sigstore {signer.identity}"
    return signer.certificate_subject or signer.description


# ---------------------------------------------------------------- what inspect found


@dataclass(frozen=True)
class SignatureSummary:
    """A signature file as it reads: its claimed signer and the manifest it holds."""

    path: Path
    signer: SignerInfo
    manifest: Manifest

    @classmethod
    def read(cls, path: Path) -> SignatureSummary:
        from provenance.bundle import Bundle
        from provenance.errors import InputError
        from provenance.intoto import Statement
        from provenance.manifest import Manifest
        from provenance.signing import describe_bundle

        bundle = Bundle.read(path)
        try:
            manifest = Manifest.from_statement(Statement.parse(bundle.envelope.payload))
        except InputError as e:
            raise InputError(
                f"signature '{path}' does not hold a readable model manifest: {e}"
            ) from None
        return cls(path, describe_bundle(bundle), manifest)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "signature": str(self.path),
            "signer": self.signer.to_json(),
            "model_name": m.model_name,
            "root_digest": m.root_digest,
            "files": len(m.files),
            "resource_count": len(m.resources),
            "serialization": m.serialization.to_json(),
        }

    def lines(self) -> list[str]:
        m = self.manifest
        s = m.serialization
        method = s.method + (f" ({s.shard_size:,}-byte shards)" if s.method == "shards" else "")
        shards = f" in {len(m.resources)} shards" if s.method == "shards" else ""
        text = [
            f"Signature    {self.path}  (not verified)",
            f"Signed by    {_signer_words(self.signer)}",
            f"Model        {m.model_name or '(unnamed, legacy format)'}",
            f"Method       {method}",
            f"Algorithm    {s.hash_type}",
            f"Files        {len(m.files)}{shards}",
            f"Root digest  sha256:{m.root_digest}",
        ]
        if s.ignore_paths:
            text.append(f"Ignored      {', '.join(sorted(s.ignore_paths))}")
        return text


@dataclass(frozen=True)
class Claim:
    """One line of an attestations file as it reads (nothing here is verified).

    ``duplicate_of``: an earlier line with the same bytes (described as that
    line is); ``same_statement_as``: an earlier line with the same statement,
    signed again or by another signer.
    """

    line: int
    signer: SignerInfo | None = None  # None when the line's bundle is unreadable
    statement: Statement | None = None  # None when the bundle or its statement is unreadable
    problem: str | None = None
    duplicate_of: int | None = None
    same_statement_as: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "readable": self.statement is not None}
        if self.statement is not None:
            out["predicate_type"] = self.statement.predicate_type
            out["subjects"] = [s.to_json() for s in self.statement.subjects]
        if self.signer is not None:
            out["signer"] = self.signer.to_json()
        out["problems"] = [self.problem] if self.problem else []
        if self.duplicate_of is not None:
            out["duplicate_of"] = self.duplicate_of
        if self.same_statement_as is not None:
            out["same_statement_as"] = self.same_statement_as
        return out

    def text(self) -> str:
        from provenance.intoto import predicate_type

        if self.duplicate_of is not None:
            return f"  line {self.line}: repeats line {self.duplicate_of} byte for byte"
        by = f" (signed by {_signer_short(self.signer)})" if self.signer is not None else ""
        if self.statement is None:
            return f"  line {self.line}: unreadable ({self.problem}){by}"
        stmt = self.statement
        subject = stmt.subjects[0]
        algorithm = "sha256" if "sha256" in subject.digest else next(iter(subject.digest), "sha256")
        digest = subject.digest.get(algorithm, "")
        known = predicate_type(stmt.predicate_type)
        what = f" ({known.name})" if known is not None else ""
        more = f" (and {len(stmt.subjects) - 1} more)" if len(stmt.subjects) > 1 else ""
        again = (
            f"; the statement of line {self.same_statement_as} again"
            if self.same_statement_as is not None
            else ""
        )
        return (
            f"  line {self.line}: {stmt.predicate_type}{what} about "
            f"{subject.name} {algorithm}:{digest[:12]}{more}{by}{again}"
        )


def _describe(bundle: Any) -> SignerInfo | None:
    """Who a bundle says signed it; None when even that cannot be read (never fatal)."""
    from provenance.errors import ProvenanceError
    from provenance.signing import describe_bundle

    try:
        return describe_bundle(bundle)
    except (ProvenanceError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def read_claims(file: Path) -> tuple[Claim, ...]:
    """Every line of an attestations file, with the signer each line claims.

    A damaged line is a claim that says why; it never stops the others.
    """
    from provenance.attest import iter_lines

    claims: list[Claim] = []
    by_line: dict[int, Claim] = {}
    for line in iter_lines(file, statements=True):
        if line.duplicate_of is not None:
            first = by_line[line.duplicate_of]
            claim = Claim(
                line.number,
                first.signer,
                first.statement,
                first.problem,
                duplicate_of=line.duplicate_of,
            )
        elif line.bundle is None:
            claim = Claim(line.number, problem=line.error or "unreadable")
        else:
            signer = _describe(line.bundle)
            problem = None
            if line.statement is None:
                problem = f"statement unreadable: {line.statement_error or 'unknown reason'}"
            elif signer is None:
                problem = "its signer cannot be read from the bundle"
            claim = Claim(
                line.number,
                signer,
                line.statement if signer is not None else None,
                problem,
                same_statement_as=line.same_statement_as,
            )
        by_line[line.number] = claim
        claims.append(claim)
    return tuple(claims)


@dataclass(frozen=True)
class Inspection:
    """What ``inspect`` found: a signature, attestations and their lineage, any of them."""

    target: Path
    signature: SignatureSummary | None = None
    attestations_file: Path | None = None
    claims: tuple[Claim, ...] = ()
    lineage: LineageGraph | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": str(self.target), "verified": False}
        if self.signature is not None:
            out.update(self.signature.to_json())
        else:
            out["signature"] = None
        if self.attestations_file is not None:
            out["attestations_file"] = str(self.attestations_file)
            out["attestations"] = [c.to_json() for c in self.claims]
        if self.lineage is not None:
            out["lineage"] = self.lineage.to_json()
        return out

    def lines(self) -> list[Line]:
        text = self.signature.lines() if self.signature is not None else []
        if self.attestations_file is not None:
            if text:
                text.append("")
            text.append(f"Attestations {self.attestations_file}  (not verified)")
            text.extend(c.text() for c in self.claims)
        if self.lineage is not None:
            text.append(
                f"Lineage      (root sha256:{self.lineage.root[:12]}: {self.lineage.root_note})"
            )
            text.extend("  " + row for row in self.lineage.render_tree().splitlines())
        return [Line(_printable(t)) for t in text]


def inspect_target(target: str, attestations_file: str | None = None) -> Inspection:
    """Read TARGET: a signature file, or a model (its signature and attestations).

    Nothing is verified and nothing is hashed: the lineage is named by the
    root digest the signature claims, or else by the attestations' subject.
    """
    from provenance import default_signature_path
    from provenance.attest import build_lineage, default_attestations_path
    from provenance.errors import InputError

    path = Path(target)
    # A folder is a model; so is a single file that has a signature or
    # attestations beside it (MODEL.sig, MODEL.intoto.jsonl), or that is
    # inspected with an attestations file.
    is_model = (
        path.is_dir()
        or attestations_file is not None
        or (
            path.is_file()
            and (
                os.path.lexists(default_signature_path(path))
                or os.path.lexists(default_attestations_path(path))
            )
        )
    )
    if not is_model:
        return Inspection(path, SignatureSummary.read(path))
    sig = default_signature_path(path)
    file = Path(attestations_file) if attestations_file else default_attestations_path(path)
    has_sig, has_file = os.path.lexists(sig), os.path.lexists(file)
    if attestations_file is not None and not has_file:
        raise InputError(f"no attestations at '{file}'", code="attestations-missing")
    if not has_sig and not has_file:
        raise InputError(
            f"'{path}' has neither model.sig nor model.intoto.jsonl", code="nothing-to-inspect"
        )
    signature = SignatureSummary.read(sig) if has_sig else None
    if not has_file:
        return Inspection(path, signature)
    claims = read_claims(file)
    # The file is read once: the lineage is drawn from the claims' statements
    # (each once), and follows their inputs as lineage does.
    statements = [
        c.statement
        for c in claims
        if c.statement is not None and c.duplicate_of is None and c.same_statement_as is None
    ]
    if signature is not None:
        lineage = build_lineage(
            path,
            statements=statements,
            root_digest=signature.manifest.root_digest,
            root_source="signature",
            follow=True,
        )
    else:
        lineage = build_lineage(path, statements=statements, follow=True)
    return Inspection(path, signature, file, claims, lineage)


@click.command("inspect")
@click.argument("target", type=click.Path(path_type=str))
@click.option(
    "--attestations-file",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="Read the attestations from PATH (e.g. written with attest --output) instead of "
    "TARGET/model.intoto.jsonl.",
)
@json_option
@handle_errors()
def inspect_command(target: str, attestations_file: str | None, as_json: bool) -> None:
    """Describe TARGET: a signature file, or a model folder (its signature,
    its attestations and its lineage).

    Shows who signed, how the model was hashed, its root digest, and what
    the attestations say. Nothing is verified and the model is not hashed:
    use `provenance verify` (with --attestations) before trusting any of it.
    """
    result = inspect_target(target, attestations_file)
    emit(result, as_json=as_json, lines=result.lines())
