"""``provenance sign``: hash a model and write its signature."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from provenance_cli._common import HashingOptions, handle_errors, json_option, progress_bar
from provenance_cli._output import Line, emit
from provenance_cli._signer_options import SignerOptions

if TYPE_CHECKING:
    from provenance.signature import SignResult


@click.command("sign")
@handle_errors()
@click.argument("model", type=click.Path(path_type=str))
@SignerOptions.options
@click.option(
    "--signature",
    "signature_path",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="Where to write the signature (default MODEL/model.sig, or MODEL.sig for a file).",
)
@HashingOptions.options
@json_option
def sign_command(
    model: str,
    signer: SignerOptions,
    signature_path: str | None,
    hashing: HashingOptions,
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

    method = hashing.resolved_method()  # before any sign-in: a usage error costs nothing
    the_signer = signer.build()
    with progress_bar("hashing", not as_json) as progress:
        result = provenance.sign(
            model,
            the_signer,
            signature_path=signature_path,
            method=method,
            algorithm=hashing.algorithm,
            shard_size=hashing.shard_size,
            ignore_paths=hashing.ignore_paths,
            allow_symlinks=hashing.allow_symlinks,
            key_file=signer.key,
            progress=progress,
        )
    emit(result, as_json=as_json, lines=_text(result))


def _text(result: SignResult) -> list[Line]:
    """What was signed, in three lines for people; warnings on stderr.

    A warning about stale attestations gets the commands that fix it.
    """
    from provenance.attest import STALE_WARNING_LEAD

    m = result.manifest
    who = result.signer.description if result.signer is not None else "the given signer"
    lines = [
        Line(f"Signed {len(m.files)} file(s) of '{m.model_name}' as {who}"),
        Line(f"  root digest  sha256:{m.root_digest}"),
        Line(f"  signature    {result.signature_path}"),
    ]
    for w in result.warnings:
        lines.append(Line(f"warning: {w}", "yellow", err=True))
        if w.startswith(STALE_WARNING_LEAD):
            lines.append(
                Line(
                    "  hint: run provenance attest training|eval|dataset MODEL ... again "
                    "(with the same --hash/--method/--ignore as sign), then "
                    "provenance attest prune MODEL --key PUBLIC.pem",
                    err=True,
                )
            )
    return lines
