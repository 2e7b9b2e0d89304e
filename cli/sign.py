"""``provenance sign``: hash a model and write its signature."""

from __future__ import annotations

import click

from provenance_cli._common import (
    emit_json,
    handle_errors,
    hashing_kwargs,
    hashing_options,
    json_option,
    progress_bar,
)
from provenance_cli._signer_options import build_signer, describe_signer, signer_options


@click.command("sign")
@click.argument("model", type=click.Path(path_type=str))
@signer_options
@click.option(
    "--signature",
    "signature_path",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="Where to write the signature (default MODEL/model.sig, or MODEL.sig for a file).",
)
@hashing_options
@json_option
@handle_errors()
def sign_command(
    model: str,
    key_path: str | None,
    cert_path: str | None,
    chain_paths: tuple[str, ...],
    kms_uri: str | None,
    kms_public_key: str | None,
    use_sigstore: bool,
    identity_token: str | None,
    trust_config: str | None,
    staging: bool,
    signature_path: str | None,
    algorithm: str,
    method: str | None,
    shard_size: int | None,
    ignore_paths: tuple[str, ...],
    allow_symlinks: bool,
    as_json: bool,
) -> None:
    """Hash MODEL (a file or a folder) and sign it.

    \b
    With a plain key:          provenance sign my-model --key key.pem
    With a certificate chain:  provenance sign my-model --key key.pem \\
                                   --cert leaf.pem --chain intermediate.pem
    Keyless, with Sigstore:    provenance sign my-model --sigstore

    The signature is an OpenSSF Model Signing bundle that model-signing can
    verify too. The model's own files are never modified.
    """
    import provenance

    kwargs = hashing_kwargs(algorithm, method, shard_size)
    signer = build_signer(
        key_path,
        cert_path,
        chain_paths,
        kms_uri,
        kms_public_key,
        use_sigstore,
        identity_token,
        trust_config,
        staging,
    )
    with progress_bar("hashing", not as_json) as progress:
        result = provenance.sign(
            model,
            signer,
            signature_path=signature_path,
            ignore_paths=ignore_paths,
            allow_symlinks=allow_symlinks,
            progress=progress,
            **kwargs,
        )
    m = result.manifest
    if as_json:
        emit_json(
            {
                "ok": True,
                "signature": str(result.signature_path),
                "signer": describe_signer(signer),
                "root_digest": m.root_digest,
                "files": len(m.files),
                "resources": len(m.resources),
                "serialization": m.serialization.to_json(),
            }
        )
    else:
        click.echo(
            f"Signed {len(m.files)} file(s) of '{m.model_name}' as {describe_signer(signer)}\n"
            f"  root digest  sha256:{m.root_digest}\n"
            f"  signature    {result.signature_path}"
        )
