"""``provenance verify``: check a model against its signature."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from provenance.errors import UsageError
from provenance_cli._common import EXIT_FAILED, emit_json, handle_errors, json_option, progress_bar

_TRUST_KEYS = ("trust_root", "trust_config", "staging", "offline")


def _build_verifier(
    keys: tuple[str, ...], roots: tuple[str, ...], chain: tuple[str, ...], keyless: dict[str, Any]
) -> object:
    """Exactly one kind of trust: plain keys, certificate roots, or a keyless identity."""
    from provenance import signing

    trust = {k: keyless.pop(k) for k in _TRUST_KEYS}
    wants_keyless = any(keyless.values())
    if sum(map(bool, (keys, roots, wants_keyless))) > 1:
        raise UsageError("give one kind of trust: --key, --root, or --identity/--issuer")
    if chain and not roots:
        raise UsageError("--chain needs --root")
    if any(trust.values()) and not wants_keyless:
        raise UsageError("--trust-root/--trust-config/--staging/--offline go with --identity")
    if keys:
        return signing.KeyVerifier.from_files(*keys)
    if roots:
        return signing.CertificateVerifier.from_files(roots, chain)
    if wants_keyless:
        policy = signing.identity_policy(**keyless)
        return signing.SigstoreVerifier(policy, signing.load_trusted_root(**trust))
    raise UsageError(
        "say whom to trust: --key PUBLIC.pem, --root CA.pem, or --identity ID --issuer URL"
    )


def _keyless_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    path = click.Path(path_type=str)
    options = [
        click.option(
            "--identity",
            metavar="ID",
            help="Keyless: the signer's exact identity (e-mail, or workflow URI for CI).",
        ),
        click.option(
            "--identity-regexp",
            metavar="PATTERN",
            help="Keyless: a regular expression the whole identity must match.",
        ),
        click.option(
            "--issuer",
            metavar="URL",
            help="Keyless: the OIDC issuer that vouched for the identity, "
            "e.g. https://token.actions.githubusercontent.com.",
        ),
        click.option(
            "--github-repository",
            metavar="OWNER/REPO",
            help="Keyless: the GitHub repository whose workflow signed.",
        ),
        click.option(
            "--github-ref",
            metavar="REF",
            help="Keyless: the git ref the workflow ran on, e.g. refs/heads/main.",
        ),
        click.option("--github-workflow-name", metavar="NAME", help="Keyless: the workflow name."),
        click.option(
            "--github-trigger",
            metavar="EVENT",
            help="Keyless: the event that started the workflow, e.g. push.",
        ),
        click.option(
            "--github-sha", metavar="SHA", help="Keyless: the commit the workflow ran at."
        ),
        click.option(
            "--trust-root",
            type=path,
            metavar="FILE",
            help="Keyless: a trusted_root.json, for private deployments and air-gapped machines.",
        ),
        click.option(
            "--trust-config",
            type=path,
            metavar="FILE",
            help="Keyless: a Sigstore client trust config (its trusted root is used).",
        ),
        click.option("--staging", is_flag=True, help="Keyless: trust Sigstore's staging instance."),
        click.option(
            "--offline",
            is_flag=True,
            help="Keyless: use the pinned or cached trust root; no network.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


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
@_keyless_options
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
@click.option(
    "--attestations",
    "check_attestations",
    is_flag=True,
    help="Also check MODEL/model.intoto.jsonl: every attestation signed by a trusted "
    "signer, about this model, valid against its schema, with local inputs re-hashed.",
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
    check_attestations: bool,
    as_json: bool,
    **keyless: Any,
) -> None:
    """Verify that MODEL matches its signature and that a trusted signer made it.

    \b
    Plain key:    provenance verify my-model --key key.pub
    Certificate:  provenance verify my-model --root ca.pem
    Keyless:      provenance verify my-model --identity alice@example.com \\
                      --issuer https://accounts.google.com
    GitHub CI:    provenance verify my-model \\
                      --issuer https://token.actions.githubusercontent.com \\
                      --identity-regexp 'https://github.com/org/repo/.*' \\
                      --github-ref refs/heads/main

    The hashing settings (method, algorithm, shard size, ignored paths) are
    read from the signature. Every signed file must match and, unless
    --ignore-unsigned-files, no unsigned file may be present.
    Exit codes: 0 verified, 1 verification failed, 2 usage error, 3 bad input.
    """
    import provenance
    from provenance.verification import check_attestations_only, check_model

    verifier = _build_verifier(keys, roots, chain, keyless)
    sig = signature_path or provenance.default_signature_path(model)
    if check_attestations and not os.path.exists(sig):
        # A dataset has attestations but often no signature: check them
        # against a fresh hash of it.
        report = check_attestations_only(model, verifier)
    else:
        with progress_bar("verifying", not as_json) as progress:
            report = check_model(
                model,
                verifier,  # type: ignore[arg-type]
                signature_path=signature_path,
                ignore_paths=ignore_paths,
                ignore_unsigned_files=ignore_unsigned_files,
                attestations=check_attestations,
                progress=progress,
            )
    _render(report, as_json)


def _render(report: Any, as_json: bool) -> None:
    from provenance.errors import VerificationError

    if not report.ok:
        if as_json and report.attestations is not None:
            # every line's verdict, the good ones too
            try:
                report.raise_for_failure()
            except VerificationError as e:
                emit_json(
                    {
                        "ok": False,
                        "error": str(e),
                        "details": e.details,
                        "attestations": report.attestations.to_json(),
                    }
                )
            sys.exit(EXIT_FAILED)
        report.raise_for_failure()
    m = report.manifest
    attestations = report.attestations
    if report.verified is None:  # attestations only
        if as_json:
            emit_json(
                {"ok": True, "root_digest": m.root_digest, "attestations": attestations.to_json()}
            )
            return
        click.secho(
            f"No signature; attestations checked against sha256:{m.root_digest}", fg="green"
        )
        _print_report(attestations)
        return
    signer = report.verified.signer
    if as_json:
        emit_json(
            {
                "ok": True,
                "signer": signer.description,
                "method": report.verified.method,
                "root_digest": m.root_digest,
                "files": len(m.files),
                "signature": str(report.signature_path),
                "unsigned_files_ignored": list(report.unsigned_files),
                "warnings": list(report.warnings),
                "manifest": m.to_json(),
                **({"attestations": attestations.to_json()} if attestations else {}),
            }
        )
        return
    click.secho(f"Verified: {len(m.files)} file(s) signed by {signer.description}", fg="green")
    click.echo(f"  root digest  sha256:{m.root_digest}")
    for f in report.unsigned_files:
        click.echo(f"  not signed (ignored): {f}")
    for w in report.warnings:
        click.secho(f"  warning: {w}", fg="yellow", err=True)
    if attestations is not None:
        _print_report(attestations)


def _print_report(report: Any) -> None:
    click.secho(f"Attestations: {len(report.checks)} verified in {report.path}", fg="green")
    for c in report.checks:
        click.echo(f"  line {c.line}: {c.predicate_type} by {c.signer}")
        for n in c.notes:
            click.echo(f"    note: {n}")
