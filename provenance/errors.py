"""The one error hierarchy of provenance.

Every failure the library reports is a :class:`ProvenanceError` carrying a
one-line reason a person can act on, a machine-readable ``code`` and, where
there is an obvious way out, a ``hint``. The subclasses exist so that callers
(and the CLI's exit codes) can tell *what kind* of failure happened without
parsing messages: the model or signature did not check out, the input could
not be read at all, or the request itself made no sense.

Messages never name command-line flags: the library is used from Python too.
A hint is one of the :class:`Hint` names; the CLI renders it as the option to
pass, a Python caller as the keyword argument.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Hint",
    "InputError",
    "ProvenanceError",
    "UsageError",
    "VerificationError",
]


class Hint:
    """Ways out of an error, by name: what the caller could give or allow."""

    ALLOW_SYMLINKS = "allow_symlinks"
    SIGNATURE_PATH = "signature_path"
    KEY = "key"
    ROOT = "root"
    IDENTITY = "identity"
    ISSUER = "issuer"
    KEY_PASSWORD = "key_password"  # noqa: S105 (a name, not a secret)
    OFFLINE = "offline"
    TRUST_ROOT = "trust_root"
    KMS_PUBLIC_KEY = "kms_public_key"
    KMS_EXTRA = "kms_extra"
    SIGN_FIRST = "sign_first"
    IDENTITY_TOKEN = "identity_token"  # noqa: S105 (a name, not a secret)
    IGNORE_UNSIGNED = "ignore_unsigned_files"
    ATTESTATIONS_FILE = "attestations_file"
    IGNORE_PATH = "ignore_path"
    OUTPUT_PATH = "output_path"
    ATTESTATIONS_ONLY = "attestations_only"
    SUBJECT_DIGEST = "subject_digest"
    PRUNE = "prune"
    REQUIRE_INPUTS = "require_inputs"


class ProvenanceError(Exception):
    """Base class: a failure with a one-line, human-readable reason."""

    #: The code when none is given: the kind of failure.
    default_code = "error"

    def __init__(
        self,
        reason: str,
        details: list[str] | None = None,
        *,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Every individual finding when there is more than one (e.g. each
        #: modified file), for ``--json`` output and callers that list them.
        self.details: list[str] = list(details or [])
        self.code = code or self.default_code
        self.hint = hint

    def __str__(self) -> str:
        return self.reason


class VerificationError(ProvenanceError):
    """The model, signature or chain of trust did not verify (fail closed)."""

    default_code = "verification-failed"
    #: The :class:`~provenance.verification.VerificationReport` with every
    #: finding, when the error was raised from one (a verified load's).
    report: Any = None


class InputError(ProvenanceError):
    """Something the user pointed at is missing, unreadable or malformed."""

    default_code = "bad-input"


class UsageError(ProvenanceError):
    """The request is inconsistent: options that conflict or make no sense."""

    default_code = "usage"
