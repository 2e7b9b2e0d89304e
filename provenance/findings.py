"""Findings: one thing a check found, with a code a program can act on.

Verification, attestation checks (and later policies and format scans)
report every problem they find, not only the first, so a person fixes them
all at once and a CI step can filter by code. A result is ``ok`` when none
of its findings is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Finding", "Severity", "errors", "first_error_summary"]

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: its code (stable, kebab-case), words, and what it concerns."""

    code: str
    message: str
    path: str | None = None  # the file (model-relative) or input file it is about
    severity: Severity = "error"
    hint: str | None = None  # a provenance.errors.Hint name, for the caller to render

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }
        if self.path is not None:
            out["path"] = self.path
        if self.hint is not None:
            out["hint"] = self.hint
        return out


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def first_error_summary(findings: Iterable[Finding], lead: str = "") -> str:
    """``lead`` + the first error's message + ``(and N more)``."""
    errs = errors(findings)
    if not errs:
        return ""
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{lead}{errs[0].message}{more}"
