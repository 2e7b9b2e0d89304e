"""``provenance verify``: check a model against its signature."""

from __future__ import annotations

import click

from provenance.errors import UsageError
from provenance_cli._common import EXIT_FAILED, emit_json, handle_errors, json_option, progress_bar


def _build_verifier(
    keys: tuple[str, ...], roots: tuple[str, ...], chain: tuple[str, ...]
) -> object:
    from provenance import signing

    if keys and roots:
        raise UsageError("give either --key or --root, not both")
    if chain and not roots:
        raise UsageError("--chain needs --root")
    if keys:
        return signing.KeyVerifier.from_files(*keys)
    if roots:
        return signing.CertificateVerifier.from_files(roots, chain)
    raise UsageError("say whom to trust: --key PUBLIC.pem or --root CA.pem")


@click.command("verify")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(path_type=str),
    metavar="PUBLIC.pem",
    help="Trusted public key (repeatable: any one of them may have signed).",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(path_type=str),
    metavar="CA.pem",
    help="Trusted root certificate(s) for certificate signatures (repeatable).",
)
@click.option(
    "--chain",
    "chain",
    multiple=True,
    type=click.Path(path_type=str),
    metavar="INT.pem",
    help="Extra intermediate certificate(s), if the signature does not carry them.",
)
@click.option(
    "--signature",
    "signature_path",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="The signature to check (default MODEL/model.sig, or MODEL.sig for a file).",
)
@click.option(
    "--ignore",
    "ignore_paths",
    multiple=True,
    metavar="PATH",
    help="A local file or folder, relative to the model, to leave out (repeatable). "
    "Files the signature lists are checked regardless.",
)
@click.option(
    "--ignore-unsigned-files",
    is_flag=True,
    help="Let files the signature does not list be present (they are reported, not checked).",
)
@json_option
@handle_errors(failure_code=EXIT_FAILED)
def verify_command(
    model: str,
    keys: tuple[str, ...],
    roots: tuple[str, ...],
    chain: tuple[str, ...],
    signature_path: str | None,
    ignore_paths: tuple[str, ...],
    ignore_unsigned_files: bool,
    as_json: bool,
) -> None:
    """Verify that MODEL matches its signature and that a trusted signer made it.

    \b
    Plain key:    provenance verify my-model --key key.pub
    Certificate:  provenance verify my-model --root ca.pem

    The hashing settings (method, algorithm, shard size, ignored paths) are
    read from the signature. Every signed file must match and, unless
    --ignore-unsigned-files, no unsigned file may be present.
    Exit codes: 0 verified, 1 verification failed, 2 usage error, 3 bad input.
    """
    import provenance

    verifier = _build_verifier(keys, roots, chain)
    with progress_bar("verifying", not as_json) as progress:
        result = provenance.verify(
            model,
            verifier,  # type: ignore[arg-type]
            signature_path=signature_path,
            ignore_paths=ignore_paths,
            ignore_unsigned_files=ignore_unsigned_files,
            progress=progress,
        )
    m = result.manifest
    if as_json:
        emit_json(
            {
                "ok": True,
                "signer": result.signer,
                "method": result.method,
                "root_digest": m.root_digest,
                "files": len(m.files),
                "signature": str(result.signature_path),
                "unsigned_files_ignored": list(result.unsigned_files_ignored),
                "warnings": list(result.warnings),
                "manifest": m.to_json(),
            }
        )
        return
    click.secho(f"Verified: {len(m.files)} file(s) signed by {result.signer}", fg="green")
    click.echo(f"  root digest  sha256:{m.root_digest}")
    for f in result.unsigned_files_ignored:
        click.echo(f"  not signed (ignored): {f}")
    for w in result.warnings:
        click.secho(f"  warning: {w}", fg="yellow", err=True)
