"""``provenance inspect``: describe a signature, without trusting it."""

from __future__ import annotations

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
    from provenance.signing._sigstore import describe_keyless

    info = describe_keyless(bundle)
    words = f"Sigstore keyless identity {info.get('identity')} (issuer {info.get('issuer')})"
    if info.get("log_index") is not None:
        words += f", log index {info['log_index']}"
    if info.get("signed_at"):
        words += f", logged at {info['signed_at']}"
    return words + "; verify with --identity and --issuer", info


@click.command("inspect")
@click.argument("signature", type=click.Path(path_type=str))
@json_option
@handle_errors()
def inspect_command(signature: str, as_json: bool) -> None:
    """Describe SIGNATURE (a bundle, or a model folder holding model.sig).

    Shows who signed, how the model was hashed and its root digest. Nothing
    is verified: use `provenance verify` before trusting any of it.
    """
    import json

    from provenance._api import read_bundle
    from provenance.errors import InputError
    from provenance.manifest import Manifest

    path = Path(signature)
    if path.is_dir():
        path = path / "model.sig"
    bundle = read_bundle(path)
    signer, signer_json = _signer_words(bundle)
    try:
        manifest = Manifest.from_statement(json.loads(bundle.envelope.payload))
    except (ValueError, InputError) as e:
        raise InputError(
            f"signature '{path}' does not hold a readable model manifest: {e}"
        ) from None
    s = manifest.serialization
    method = s.method + (f" ({s.shard_size:,}-byte shards)" if s.method == "shards" else "")
    if as_json:
        emit_json(
            {
                "signature": str(path),
                "verified": False,
                "signer": signer_json,
                "model_name": manifest.model_name,
                "root_digest": manifest.root_digest,
                "files": len(manifest.files),
                "resources": len(manifest.resources),
                "serialization": s.to_json(),
            }
        )
        return
    click.echo(f"Signature    {path}  (not verified)")
    click.echo(f"Signed by    {signer}")
    click.echo(f"Model        {manifest.model_name or '(unnamed, legacy format)'}")
    click.echo(f"Method       {method}")
    click.echo(f"Algorithm    {s.hash_type}")
    click.echo(
        f"Files        {len(manifest.files)}"
        + (f" in {len(manifest.resources)} shards" if s.method == "shards" else "")
    )
    click.echo(f"Root digest  sha256:{manifest.root_digest}")
    if s.ignore_paths:
        click.echo(f"Ignored      {', '.join(sorted(s.ignore_paths))}")
