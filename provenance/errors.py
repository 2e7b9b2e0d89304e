"""The one error hierarchy of provenance.

Every failure the library reports is a :class:`ProvenanceError` carrying a
one-line reason a person can act on. The subclasses exist so that callers (and
the CLI's exit codes) can tell *what kind* of failure happened without parsing
messages: the model or signature did not check out, the input could not be
read at all, or the request itself made no sense.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "ProvenanceError",
    "UsageError",
    "VerificationError",
]


class ProvenanceError(Exception):
    """Base class: a failure with a one-line, human-readable reason."""

    def __init__(self, reason: str, details: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Every individual finding when there is more than one (e.g. each
        #: modified file), for ``--json`` output and callers that list them.
        self.details: list[str] = list(details or [])

    def __str__(self) -> str:
        return self.reason


class VerificationError(ProvenanceError):
    """The model, signature or chain of trust did not verify (fail closed)."""


class InputError(ProvenanceError):
    """Something the user pointed at is missing, unreadable or malformed."""


class UsageError(ProvenanceError):
    """The request is inconsistent: options that conflict or make no sense."""
