"""Signer options shared by every command that signs (sign, later attest)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from provenance.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_ENV = "PROVENANCE_KEY_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def signer_options(fn: F) -> F:
    options = [
        click.option(
            "--key",
            "key_path",
            type=click.Path(path_type=str),
            metavar="PRIVATE.pem",
            help="PEM private key: ECDSA P-256/P-384/P-521 or Ed25519. If it is encrypted, "
            f"the password comes from ${PASSWORD_ENV} or a prompt.",
        ),
        click.option(
            "--cert",
            "cert_path",
            type=click.Path(path_type=str),
            metavar="LEAF.pem",
            help="Signing certificate for --key (or --kms); goes into the signature.",
        ),
        click.option(
            "--chain",
            "chain_paths",
            multiple=True,
            type=click.Path(path_type=str),
            metavar="INT.pem",
            help="Intermediate certificate(s) to ship with --cert (repeatable; not the root).",
        ),
        click.option(
            "--kms",
            "kms_uri",
            metavar="URI",
            help="Sign with a key held in a KMS or HSM, by securesystemslib signer URI "
            "(gcpkms:…, awskms:…, azurekms:…, hv:…, hsm:…, file2:…); needs the kms extra.",
        ),
        click.option(
            "--kms-public-key",
            type=click.Path(path_type=str),
            metavar="PUBLIC.pem",
            help="Public key of the --kms key, for URIs that cannot look it up.",
        ),
        click.option(
            "--sigstore",
            "use_sigstore",
            is_flag=True,
            help="Sign keyless with Sigstore: an OIDC identity, a short-lived certificate "
            "and a transparency-log entry.",
        ),
        click.option(
            "--identity-token",
            metavar="TOKEN",
            envvar="SIGSTORE_ID_TOKEN",
            help="OIDC token for --sigstore (also $SIGSTORE_ID_TOKEN). Without it, ambient CI "
            "credentials are used (GitHub Actions, GitLab, Buildkite, Google Cloud), "
            "else a browser sign-in on a terminal.",
        ),
        click.option(
            "--trust-config",
            "trust_config",
            type=click.Path(path_type=str),
            metavar="FILE",
            help="Sigstore client trust config for a private deployment (with --sigstore).",
        ),
        click.option(
            "--staging", is_flag=True, help="Use Sigstore's staging instance (with --sigstore)."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _password(key_path: str) -> str | None:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    try:
        with open(key_path, "rb") as f:
            encrypted = b"ENCRYPTED" in f.read(1 << 20)
    except OSError:
        return None  # the loader reports the missing or unreadable file
    if encrypted and sys.stdin.isatty():
        return click.prompt(f"Password for {key_path}", hide_input=True, err=True)
    return None


def build_signer(
    key_path: str | None,
    cert_path: str | None,
    chain_paths: tuple[str, ...],
    kms_uri: str | None,
    kms_public_key: str | None,
    use_sigstore: bool = False,
    identity_token: str | None = None,
    trust_config: str | None = None,
    staging: bool = False,
) -> Any:
    """Turn the signer options into one signer object, or explain what is missing."""
    from provenance import signing

    if use_sigstore:
        if key_path or kms_uri or cert_path or chain_paths:
            raise UsageError("--sigstore signs without a key: drop --key/--kms/--cert/--chain")
        config = signing.load_trust_config(trust_config, staging=staging)
        token = signing.get_identity_token(
            identity_token, trust_config=config, interactive=sys.stdin.isatty()
        )
        return signing.SigstoreSigner(token, config)
    if identity_token or trust_config or staging:
        raise UsageError("--identity-token, --trust-config and --staging go with --sigstore")
    if key_path and kms_uri:
        raise UsageError("give either --key or --kms, not both")
    if chain_paths and not cert_path:
        raise UsageError("--chain needs --cert")
    if kms_uri:
        base: Any = signing.kms_signer(kms_uri, public_key=kms_public_key)
    elif key_path:
        base = signing.KeySigner.from_file(key_path, _password(key_path))
    else:
        raise UsageError(
            "say how to sign: --key PRIVATE.pem (with --cert for a certificate), "
            "--kms URI, or --sigstore"
        )
    if cert_path:
        return signing.CertificateSigner.from_files(base, cert_path, chain_paths)
    return base


def describe_signer(signer: Any) -> str:
    describe = getattr(signer, "describe", None)
    return str(describe().description) if callable(describe) else type(signer).__name__
