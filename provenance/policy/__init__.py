"""Policies: one file decides whether a model may load.

A policy names who may sign the model (keys, certificate roots, Sigstore
identities; k of n of them), who may sign its attestations and what those
must say, which files and formats may be present, which base models and
datasets it may come from, pinned and revoked digests, keys and identities,
and whether it enforces, warns or only audits::

    from provenance import policy

    rules = policy.load("policy.yaml")          # PolicyError (exit 2) names path and line
    decision = policy.evaluate(rules, "model/")
    if not decision.allowed:
        for reason in decision.reasons:
            print(reason.rule, reason.message)
    policy.append_audit("audit.jsonl", decision)

``provenance.verify("model/", policy="policy.yaml")`` is the raising form.
The file format is ``schemas/policy.schema.json``; ``examples/policies/``
has one per signer kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provenance.policy._audit import append_audit, audit_record
    from provenance.policy._describe import describe, starter
    from provenance.policy._evaluate import (
        Decision,
        LineageDecision,
        PolicyDenied,
        Reason,
        RuleResult,
        evaluate,
    )
    from provenance.policy._load import PolicyError, load, loads
    from provenance.policy._model import Policy

# Loaded on first use: a service that verifies under a policy at start-up
# never pays for describe() or the audit log unless it asks for them.
_WHERE = {
    "append_audit": "_audit",
    "audit_record": "_audit",
    "describe": "_describe",
    "starter": "_describe",
    "Decision": "_evaluate",
    "LineageDecision": "_evaluate",
    "PolicyDenied": "_evaluate",
    "Reason": "_evaluate",
    "RuleResult": "_evaluate",
    "evaluate": "_evaluate",
    "PolicyError": "_load",
    "load": "_load",
    "loads": "_load",
    "Policy": "_model",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'provenance.policy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"provenance.policy.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Decision",
    "LineageDecision",
    "Policy",
    "PolicyDenied",
    "PolicyError",
    "Reason",
    "RuleResult",
    "append_audit",
    "audit_record",
    "describe",
    "evaluate",
    "load",
    "loads",
    "starter",
]
