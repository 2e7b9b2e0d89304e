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
@click.option(
    "--cosign",
    is_flag=True,
    help="Add a co-signature: write the bundle to SIGNATURE.d/NAME.sig beside the "
    "signature (model.sig.d/ in a folder) instead of the signature itself.",
)
@click.option(
    "--cosign-name",
    metavar="NAME",
    help="File name of the co-signature (with --cosign): 1-64 of A-Z a-z 0-9 . _ -, not "
    "starting with '.'. Default: the signer's key fingerprint (16 hex digits) or identity.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a co-signature of that name (with --cosign); a signature is always replaced.",
)
@HashingOptions.options
@json_option
def sign_command(
    model: str,
    signer: SignerOptions,
    signature_path: str | None,
    cosign: bool,
    cosign_name: str | None,
    force: bool,
    hashing: HashingOptions,
    as_json: bool,
) -> None:
    """Hash MODEL (a file or a folder) and sign it.

    \b
    With a plain key:          provenance sign my-model --key key.pem
    With a certificate chain:  provenance sign my-model --key key.pem \\
                                   --cert leaf.pem --chain intermediate.pem
    Keyless, with Sigstore:    provenance sign my-model --sigstore

    A co-signer:               provenance sign my-model --key bob.pem --cosign

    The signature is an OpenSSF Model Signing bundle that model-signing can
    verify too. The model's own files are never modified. With --cosign the
    model is signed as usual, but the bundle goes beside the signature as
    one more, for a policy that asks for several signers.
    """
    import provenance
    from provenance.bundle import cosignature_path, default_signature_path
    from provenance.errors import InputError, UsageError

    method = hashing.resolved_method()  # before any sign-in: a usage error costs nothing
    if (cosign_name is not None or force) and not cosign:
        raise UsageError("--cosign-name and --force go with --cosign")
    if cosign_name is not None:
        cosignature_path(signature_path or default_signature_path(model), cosign_name)
    the_signer = signer.build()
    with progress_bar("hashing", not as_json) as progress:
        try:
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
                cosign=(cosign_name or True) if cosign else False,
                overwrite=force,
            )
        except InputError as e:  # the library names no flags; here is the one that helps
            if e.code != "cosignature-exists":
                raise
            raise InputError(f"{e} without --force", code=e.code) from None
        except UsageError as e:
            if e.code != "cosignature-name-needed":
                raise
            raise UsageError(f"{e} with --cosign-name NAME", code=e.code) from None
    emit(result, as_json=as_json, lines=_text(result))


def _text(result: SignResult) -> list[Line]:
    """What was signed, in three lines for people; warnings on stderr.

    A warning about stale attestations gets the commands that fix it.
    """
    from provenance.attest import STALE_WARNING_LEAD
    from provenance.signature import COSIGNATURE_WARNING_LEAD

    m = result.manifest
    who = result.signer.description if result.signer is not None else "the given signer"
    lines = [
        Line(f"Signed {len(m.files)} file(s) of '{m.model_name}' as {who}"),
        Line(f"  root digest  sha256:{m.root_digest}"),
        Line(f"  signature    {result.signature_path}"),
    ]
    for w in result.warnings:
        lines.append(Line(f"warning: {w}", "yellow", err=True))
        if w.startswith(COSIGNATURE_WARNING_LEAD):
            lines.append(
                Line(
                    "  hint: sign the model again (provenance sign MODEL ... without --cosign), "
                    "then have every co-signer run provenance sign MODEL ... --cosign again",
                    err=True,
                )
            )
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
