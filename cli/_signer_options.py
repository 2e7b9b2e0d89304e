"""Signer options shared by every command that signs (sign, attest).

They parse into one frozen :class:`SignerOptions`, whose :meth:`~SignerOptions.build`
is the only place that decides which signer the options describe, so
``sign`` and ``attest`` cannot drift apart in what they accept::

    @click.command("sign")
    @SignerOptions.options            # the command gets signer: SignerOptions
    def sign_command(signer: SignerOptions, ...) -> None:
        result = provenance.sign(model, signer.build(), ...)

``signer_options`` / ``build_signer`` remain as a thin compatibility layer
for commands that still take the options as loose keywords.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from provenance.errors import UsageError
from provenance_cli._common import OptionSpec, add_options, option_group

if TYPE_CHECKING:
    from provenance.signing import Signer

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_ENV = "PROVENANCE_KEY_PASSWORD"  # noqa: S105 (a variable name, not a secret)

_PATH = click.Path(path_type=str)

_SPECS = (
    OptionSpec(
        "key",
        ("--key",),
        {
            "type": _PATH,
            "metavar": "PRIVATE.pem",
            "help": "PEM private key: ECDSA P-256/P-384/P-521 or Ed25519. If it is encrypted, "
            f"the password comes from ${PASSWORD_ENV} or a prompt.",
        },
        legacy="key_path",
    ),
    OptionSpec(
        "cert",
        ("--cert",),
        {
            "type": _PATH,
            "metavar": "LEAF.pem",
            "help": "Signing certificate for --key (or --kms); goes into the signature.",
        },
        legacy="cert_path",
    ),
    OptionSpec(
        "chain",
        ("--chain",),
        {
            "multiple": True,
            "type": _PATH,
            "metavar": "INT.pem",
            "help": "Intermediate certificate(s) to ship with --cert (repeatable; not the root).",
        },
        legacy="chain_paths",
    ),
    OptionSpec(
        "kms",
        ("--kms",),
        {
            "metavar": "URI",
            "help": "Sign with a key held in a KMS or HSM, by securesystemslib signer URI "
            "(gcpkms:…, awskms:…, azurekms:…, hv:…, hsm:…, file2:…); needs the kms extra.",
        },
        legacy="kms_uri",
    ),
    OptionSpec(
        "kms_public_key",
        ("--kms-public-key",),
        {
            "type": _PATH,
            "metavar": "PUBLIC.pem",
            "help": "Public key of the --kms key, for URIs that cannot look it up.",
        },
    ),
    OptionSpec(
        "sigstore",
        ("--sigstore",),
        {
            "is_flag": True,
            "help": "Sign keyless with Sigstore: an OIDC identity, a short-lived certificate "
            "and a transparency-log entry.",
        },
        legacy="use_sigstore",
    ),
    OptionSpec(
        "identity_token",
        ("--identity-token",),
        {
            "metavar": "TOKEN",
            "envvar": "SIGSTORE_ID_TOKEN",
            "help": "OIDC token for --sigstore (also $SIGSTORE_ID_TOKEN). Without it, ambient CI "
            "credentials are used (GitHub Actions, GitLab, Buildkite, Google Cloud), "
            "else a browser sign-in on a terminal.",
        },
    ),
    OptionSpec(
        "trust_config",
        ("--trust-config",),
        {
            "type": _PATH,
            "metavar": "FILE",
            "help": "Sigstore client trust config for a private deployment (with --sigstore).",
        },
    ),
    OptionSpec(
        "staging",
        ("--staging",),
        {"is_flag": True, "help": "Use Sigstore's staging instance (with --sigstore)."},
    ),
)


@dataclass(frozen=True)
class SignerOptions:
    """How to sign, as given on the command line (checked by :meth:`build`)."""

    key: str | None = None
    cert: str | None = None
    chain: tuple[str, ...] = ()
    kms: str | None = None
    kms_public_key: str | None = None
    sigstore: bool = False
    identity_token: str | None = None
    trust_config: str | None = None
    staging: bool = False

    @classmethod
    def options(cls, fn: F) -> F:
        """Decorator: add the signer options; the command gets ``signer: SignerOptions``."""
        return option_group(cls, _SPECS, "signer")(fn)

    def build(self) -> Signer:
        """The one signer these options describe, or a UsageError saying what is missing.

        Exactly one source of a signature: a key file, a KMS/HSM key (either
        optionally under a certificate), or Sigstore keyless; options that
        belong to another source are refused rather than ignored.
        """
        from provenance import signing

        if self.sigstore:
            if self.key or self.kms or self.cert or self.chain or self.kms_public_key:
                raise UsageError(
                    "--sigstore signs without a key: drop --key, --kms, --kms-public-key, "
                    "--cert and --chain"
                )
            config = signing.load_trust_config(self.trust_config, staging=self.staging)
            token = signing.get_identity_token(
                self.identity_token, trust_config=config, interactive=sys.stdin.isatty()
            )
            return signing.SigstoreSigner(token, config)
        if self.identity_token or self.trust_config or self.staging:
            raise UsageError("--identity-token, --trust-config and --staging go with --sigstore")
        if self.key and self.kms:
            raise UsageError("give either --key or --kms, not both")
        if self.chain and not self.cert:
            raise UsageError("--chain needs --cert")
        if self.kms_public_key and not self.kms:
            raise UsageError("--kms-public-key goes with --kms (a key file carries its own)")
        base: Any
        if self.kms:
            base = signing.kms_signer(self.kms, public_key=self.kms_public_key)
        elif self.key:
            # The password is asked for only if the key turns out to be encrypted.
            base = signing.KeySigner.from_file(self.key, _password_for(self.key))
        else:
            raise UsageError(
                "say how to sign: --key PRIVATE.pem (with --cert for a certificate), "
                "--kms URI, or --sigstore"
            )
        if self.cert:
            return signing.CertificateSigner.from_files(base, self.cert, self.chain)
        plain: Signer = base  # a key file or a KMS key: each is a Signer and a PaeSigner
        return plain


def _password_for(key_path: str) -> Callable[[], str | None]:
    """The password of an encrypted key, asked for only when the key is encrypted.

    From ``$PROVENANCE_KEY_PASSWORD`` if set, else a prompt on a terminal;
    for a key that is not encrypted it is never asked for (the variable is
    then ignored). The key file itself is read once, by the loader.
    """

    def password() -> str | None:
        value = os.environ.get(PASSWORD_ENV)
        if value is not None:
            return value
        if sys.stdin.isatty():
            return str(click.prompt(f"Password for {key_path}", hide_input=True, err=True))
        return None

    return password


# ---------------------------------------------------------------- compatibility


def signer_options(fn: F) -> F:
    """Compatibility: the signer options as loose keywords (``key_path``, ``cert_path``,
    ``chain_paths``, ``kms_uri``, ``kms_public_key``, ``use_sigstore``,
    ``identity_token``, ``trust_config``, ``staging``).

    New code uses :meth:`SignerOptions.options`.
    """
    return add_options(_SPECS, legacy=True)(fn)


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
) -> Signer:
    """Compatibility: ``SignerOptions(...).build()`` from the loose keywords, in order."""
    return SignerOptions(
        key=key_path,
        cert=cert_path,
        chain=tuple(chain_paths),
        kms=kms_uri,
        kms_public_key=kms_public_key,
        sigstore=use_sigstore,
        identity_token=identity_token,
        trust_config=trust_config,
        staging=staging,
    ).build()
