"""``provenance inspect``: describe a signature, without trusting it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from provenance_cli._common import emit_json, handle_errors, json_option


def _signer_words(bundle: Any) -> tuple[str, dict[str, Any]]:
    if bundle.kind == "public_key":
        hint = bundle.key_hint or "(none; the key is embedded in older releases' format)"
        return f"a plain key (hint {hint})", {"kind": "key", "key_hint": bundle.key_hint}
    from cryptography import x509

    from provenance.signing._certs import describe_certificate

    try:
        leaf = x509.load_der_x509_certificate(bundle.certificates[0])
    except ValueError:
        return "an unreadable certificate", {"kind": bundle.kind}
    if bundle.kind == "x509_chain":
        return (
            f"{describe_certificate(leaf)} ({len(bundle.certificates)} certificate(s) in chain)",
            {"kind": "certificate", "subject": leaf.subject.rfc4514_string()},
        )
    from provenance.signing._sigstore import keyless_info

    info = keyless_info(bundle).to_json()
    info["kind"] = "sigstore"
    words = f"Sigstore keyless identity {info.get('identity')} (issuer {info.get('issuer')})"
    if info.get("log_index") is not None:
        words += f", log index {info['log_index']}"
    if info.get("signed_at"):
        words += f", logged at {info['signed_at']}"
    return words + "; verify with --identity and --issuer", info


def _signature_summary(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A signature in JSON and in lines of text (read, not verified)."""
    from provenance.bundle import Bundle
    from provenance.errors import InputError
    from provenance.intoto import Statement
    from provenance.manifest import Manifest

    bundle = Bundle.read(path)
    signer, signer_json = _signer_words(bundle)
    try:
        manifest = Manifest.from_statement(Statement.parse(bundle.envelope.payload))
    except InputError as e:
        raise InputError(
            f"signature '{path}' does not hold a readable model manifest: {e}"
        ) from None
    s = manifest.serialization
    method = s.method + (f" ({s.shard_size:,}-byte shards)" if s.method == "shards" else "")
    data = {
        "signature": str(path),
        "verified": False,
        "signer": signer_json,
        "model_name": manifest.model_name,
        "root_digest": manifest.root_digest,
        "files": len(manifest.files),
        "resources": len(manifest.resources),
        "serialization": s.to_json(),
    }
    shards = f" in {len(manifest.resources)} shards" if s.method == "shards" else ""
    text = [
        f"Signature    {path}  (not verified)",
        f"Signed by    {signer}",
        f"Model        {manifest.model_name or '(unnamed, legacy format)'}",
        f"Method       {method}",
        f"Algorithm    {s.hash_type}",
        f"Files        {len(manifest.files)}{shards}",
        f"Root digest  sha256:{manifest.root_digest}",
    ]
    if s.ignore_paths:
        text.append(f"Ignored      {', '.join(sorted(s.ignore_paths))}")
    return data, text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Escape control characters: what is shown here is unverified, the terminal is not."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_MATERIAL = {"public_key": "key", "x509_chain": "certificate", "sigstore": "Sigstore"}


def _attestation_summary(model: Path, file: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """What each line claims and the lineage it draws (read, not verified)."""
    from provenance.attest import build_lineage, read_statements
    from provenance.intoto import predicate_type

    items: list[dict[str, Any]] = []
    text = [f"Attestations {file}  (not verified)"]
    for line, stmt in read_statements(model):
        if line.bundle is None:
            items.append({"line": line.number, "error": line.error})
            text.append(f"  line {line.number}: unreadable ({line.error})")
            continue
        if stmt is None:
            items.append({"line": line.number, "error": "statement unreadable"})
            text.append(f"  line {line.number}: statement unreadable")
            continue
        subject = stmt.subjects[0]
        algorithm = "sha256" if "sha256" in subject.digest else next(iter(subject.digest), "sha256")
        digest = subject.digest.get(algorithm, "")
        known = predicate_type(stmt.predicate_type)
        what = f" ({known.name})" if known is not None else ""
        items.append(
            {
                "line": line.number,
                "predicate_type": stmt.predicate_type,
                "subject": subject.to_json(),
            }
        )
        text.append(
            f"  line {line.number}: {stmt.predicate_type}{what} about "
            f"{subject.name} {algorithm}:{digest[:12]} "
            f"(signed by {_MATERIAL[line.bundle.kind]})"
        )
    text.append("Lineage")
    text.extend("  " + row for row in build_lineage(model).render_tree().splitlines())
    return items, text


@click.command("inspect")
@click.argument("target", type=click.Path(path_type=str))
@json_option
@handle_errors()
def inspect_command(target: str, as_json: bool) -> None:
    """Describe TARGET: a signature file, or a model folder (its signature,
    its attestations and its lineage).

    Shows who signed, how the model was hashed, its root digest, and what
    the attestations say. Nothing is verified: use `provenance verify`
    (with --attestations) before trusting any of it.
    """
    from provenance import default_signature_path
    from provenance.attest import default_attestations_path
    from provenance.errors import InputError

    path = Path(target)
    # A folder is a model; so is a single file that has a signature or
    # attestations beside it (MODEL.sig, MODEL.intoto.jsonl).
    is_model = path.is_dir() or (
        path.is_file()
        and (default_signature_path(path).exists() or default_attestations_path(path).exists())
    )
    model = path if is_model else None
    sig = default_signature_path(path) if model is not None else path
    out: dict[str, Any] = {}
    lines: list[str] = []
    if model is None or sig.exists():
        out, lines = _signature_summary(sig)
    if model is not None:
        file = default_attestations_path(model)
        if file.exists():
            out["attestations"], more = _attestation_summary(model, file)
            lines += ["", *more] if lines else more
        elif not sig.exists():
            raise InputError(f"'{model}' has neither model.sig nor model.intoto.jsonl")
    if as_json:
        emit_json(out)
    else:
        click.echo("\n".join(_printable(line) for line in lines))
