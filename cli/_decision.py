"""A policy's decision in words: shared by ``verify --policy`` and ``policy explain``.

The decision is the library's (:class:`provenance.policy.Decision`); this
only chooses the words and colours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provenance.errors import VerificationError
from provenance_cli._output import Line

if TYPE_CHECKING:
    from provenance.policy import Decision

_MARK = {"error": "✗", "warning": "!", "info": "·"}
_COLOUR = {"error": "red", "warning": "yellow", "info": None}


def verdict(decision: Decision) -> Line:
    """The first line: allowed or denied, by which policy, in which mode."""
    d = decision
    policy = f"policy {d.policy_source}"
    if d.allowed and d.passed:
        return Line(f"Allowed by {policy}: '{d.model_path}'", "green")
    if d.allowed:
        return Line(
            f"Allowed by {policy} in {d.mode} mode, though it would deny: '{d.model_path}'",
            "yellow",
        )
    return Line(f"Denied by {policy}: '{d.model_path}'", "red")


def summary_lines(decision: Decision) -> list[Line]:
    """Who signed, the digest, and every reason (errors first), for ``verify --policy``."""
    d = decision
    lines = [verdict(d)]
    if d.signers:
        lines.append(Line(f"  signed by    {', '.join(s.description for s in d.signers)}"))
    if d.root_digest:
        files = len(d.manifest.files) if d.manifest is not None else 0
        lines.append(Line(f"  signed digest sha256:{d.root_digest} ({files} file(s))"))
    for a in d.attestations:
        lines.append(Line(f"  attestation  line {a.line}: {a.predicate_type} by {a.signer}"))
    for n in d.lineage:
        state = "allowed" if n.allowed else "not allowed"
        lines.append(Line(f"  lineage      {n.role} '{n.name}': {state} ({n.how})"))
    for r in d.rules:
        if r.rule == "pipeline":
            lines.append(Line(f"  pipeline     {'✓' if r.held else '✗'} {r.summary}"))
    # A denial's errors are the error block's (stderr, see denial()): not twice.
    lines.extend(reason_lines(d, errors=d.allowed))
    return lines


def reason_lines(decision: Decision, *, notes: bool = False, errors: bool = True) -> list[Line]:
    order = {"error": 0, "warning": 1, "info": 2}
    shown = [
        r
        for r in decision.reasons
        if (notes or r.severity != "info") and (errors or r.severity != "error")
    ]
    out = []
    for r in sorted(shown, key=lambda r: order[r.severity]):
        out.append(Line(f"  {_MARK[r.severity]} [{r.rule}] {r.message}", _COLOUR[r.severity]))
    return out


def explain_lines(decision: Decision) -> list[Line]:
    """Rule by rule: what held and what did not, then every reason with notes."""
    lines = [verdict(decision)]
    for r in decision.rules:
        mark, colour = ("✓", "green") if r.held else ("✗", "red")
        lines.append(Line(f"  {mark} {r.rule}: {r.summary}", colour))
    reasons = reason_lines(decision, notes=True)
    if reasons:
        lines.append(Line("Reasons:"))
        lines.extend(reasons)
    return lines


def denial(decision: Decision) -> VerificationError:
    """The error a denial ends with (on stderr): every error reason, each with its rule.

    :func:`summary_lines` leaves the errors out of a denial's lines, so each
    reason is printed once.
    """
    errs = decision.errors or decision.reasons
    shown = [f"[{r.rule}] {r.message}" for r in errs]
    more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
    first = shown[0] if shown else "denied"
    return VerificationError(
        f"policy {decision.policy_source} denies '{decision.model_path}': {first}{more}",
        shown,
        code=errs[0].code if errs else "policy-denied",
    )
