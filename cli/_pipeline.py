"""What ``run``, ``layout`` and ``verify-pipeline`` share: the signer options in-toto allows.

in-toto signs with securesystemslib signers, so links and layouts take the
key sources ``provenance sign`` takes that securesystemslib has: a PEM key
file (``--key``) and a KMS/HSM URI (``--kms``, ``--kms-public-key``). The
Sigstore and certificate options are accepted only to say why they cannot
apply (see :data:`provenance.pipeline.SIGSTORE_UNSUPPORTED`), rather than
as unknown options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from provenance.errors import UsageError
from provenance_cli._common import OptionSpec, option_group
from provenance_cli._signer_options import _SPECS as _SIGN_SPECS
from provenance_cli._signer_options import _password_for

F = TypeVar("F", bound=Callable[..., Any])

_KEPT = {"key", "kms", "kms_public_key"}

_SPECS = (
    *(s for s in _SIGN_SPECS if s.field in _KEPT),
    OptionSpec("sigstore", ("--sigstore",), {"is_flag": True, "hidden": True}),
    OptionSpec("cert", ("--cert",), {"type": click.Path(path_type=str), "hidden": True}),
)


@dataclass(frozen=True)
class PipelineSignerOptions:
    """``--key`` or ``--kms`` (with ``--kms-public-key``), as given."""

    key: str | None = None
    kms: str | None = None
    kms_public_key: str | None = None
    sigstore: bool = False
    cert: str | None = None

    @classmethod
    def options(cls, fn: F) -> F:
        """Decorator: the command gets ``signer: PipelineSignerOptions``."""
        return option_group(cls, _SPECS, "signer")(fn)

    def build(self) -> Any:
        """The securesystemslib signer these options describe, or why there is none."""
        from provenance import pipeline

        if self.sigstore:
            raise UsageError(pipeline.SIGSTORE_UNSUPPORTED, code="sigstore-unsupported")
        if self.cert:
            raise UsageError(pipeline.CERTIFICATE_UNSUPPORTED, code="certificate-unsupported")
        if self.key and self.kms:
            raise UsageError("give either --key or --kms, not both")
        if self.kms_public_key and not self.kms:
            raise UsageError("--kms-public-key goes with --kms (a key file carries its own)")
        if self.kms:
            return pipeline.kms_signer(self.kms, public_key=self.kms_public_key)
        if self.key:
            return pipeline.key_signer(self.key, _password_for(self.key))
        raise UsageError("say how to sign: --key PRIVATE.pem, or --kms URI")


def short(keyid: str) -> str:
    """A key id as link file names show it (in-toto's 8 hex digits)."""
    return keyid[:8]
