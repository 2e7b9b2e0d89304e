"""Evaluate a policy against a model: every rule checked, every reason kept.

Order matters only for cost, never for the outcome: the signatures are
verified first (nothing else is trusted before), then the files against the
statement enough signers signed, then the attestations about that digest,
then the lineage they name. A rule that cannot be checked (no verified
manifest, say) is a reason too, so a denial always says why.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provenance._internal.uris import EVALUATION_PREDICATE_TYPE
from provenance.errors import InputError, ProvenanceError, VerificationError
from provenance.policy._model import (
    AttestationRule,
    InputRules,
    Mode,
    Policy,
    SignerRule,
)
from provenance.policy._trust import Trust, revoked, rule_label

if TYPE_CHECKING:
    from provenance._internal.engine import Kept
    from provenance.attest import AttestationCheck
    from provenance.bundle import Bundle
    from provenance.manifest import Manifest
    from provenance.signing import SignerInfo, Verified
    from provenance.verification import VerificationReport

Severity = Literal["error", "warning", "info"]

#: How deep nested lineage policies may go, whatever a policy says.
MAX_LINEAGE_DEPTH = 8


@dataclass(frozen=True)
class Reason:
    """One thing a policy found: a code, the rule it comes from, and words."""

    code: str
    rule: str  # the rule's path in the policy file: "signers", "attestations[1]", ...
    message: str
    subject: str | None = None  # the file, signature, attestation line or input concerned
    severity: Severity = "error"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        return out


@dataclass(frozen=True)
class RuleResult:
    """Whether one rule held, in a line (what ``policy explain`` prints)."""

    rule: str
    held: bool
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "held": self.held, "summary": self.summary}


@dataclass(frozen=True)
class LineageDecision:
    """One input (base model or dataset) a counted attestation names, and its verdict."""

    role: str
    name: str
    digest: str
    path: str | None
    allowed: bool
    how: str  # "digest listed", "uri listed", "policy", or why not
    decision: Decision | None = None  # the nested policy's, when one was applied

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "name": self.name,
            "digest": self.digest,
            "path": self.path,
            "allowed": self.allowed,
            "how": self.how,
        }
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        return out


@dataclass(frozen=True)
class Decision:
    """Whether a model may load under a policy, and every reason.

    ``allowed`` is what a loader acts on; ``passed`` is what enforce mode
    would have said (warn and audit modes allow a model that did not pass,
    and say why). An expired policy never allows.
    """

    allowed: bool
    passed: bool
    mode: Mode
    model_path: Path
    policy_source: str
    policy_digest: str
    checked_at: str
    reasons: tuple[Reason, ...] = ()
    rules: tuple[RuleResult, ...] = ()
    manifest: Manifest | None = None
    signers: tuple[SignerInfo, ...] = ()
    attestations: tuple[AttestationCheck, ...] = ()
    lineage: tuple[LineageDecision, ...] = ()
    report: VerificationReport | None = field(default=None, compare=False, repr=False)

    @property
    def root_digest(self) -> str | None:
        return self.manifest.root_digest if self.manifest is not None else None

    @property
    def errors(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity == "error")

    def raise_for_denial(self) -> None:
        """Raise :class:`PolicyDenied` unless allowed (warn and audit modes allow)."""
        if self.allowed:
            return
        errs = self.errors or self.reasons
        first = errs[0].message if errs else "denied"
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise PolicyDenied(
            f"policy {self.policy_source} denies '{self.model_path}': {first}{more}",
            [r.message for r in errs],
            code=errs[0].code if errs else "policy-denied",
            decision=self,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "passed": self.passed,
            "mode": self.mode,
            "model": str(self.model_path),
            "policy": {"source": self.policy_source, "digest": self.policy_digest},
            "checked_at": self.checked_at,
            "root_digest": self.root_digest,
            "files": len(self.manifest.files) if self.manifest is not None else 0,
            "signers": [s.to_json() for s in self.signers],
            "reasons": [r.to_json() for r in self.reasons],
            "rules": [r.to_json() for r in self.rules],
            "attestations": [a.to_json() for a in self.attestations],
            "lineage": [d.to_json() for d in self.lineage],
        }


class PolicyDenied(VerificationError):
    """A policy denied the model; ``decision`` holds every reason."""

    def __init__(
        self,
        reason: str,
        details: Iterable[str] = (),
        *,
        code: str = "policy-denied",
        decision: Decision,
    ) -> None:
        super().__init__(reason, list(details), code=code)
        self.decision = decision


# ---------------------------------------------------------------- evaluation


def evaluate(
    policy: Policy | str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    *,
    signature_path: str | os.PathLike[str] | None = None,
    attestations_path: str | os.PathLike[str] | None = None,
    now: datetime.datetime | None = None,
    workers: int | None = None,
    progress: Any = None,
    _kept: Kept | None = None,
) -> Decision:
    """Decide whether the model may load under ``policy``.

    ``policy`` is a loaded :class:`Policy` or a policy file's path (loaded
    with :func:`~provenance.policy.load`). Raises only for input nothing can
    be decided on (a bad policy: :class:`~provenance.policy.PolicyError`; a
    model path that does not exist: :class:`~provenance.errors.InputError`);
    everything checked and failed is a reason in the decision.

    ``_kept`` is the verified loader's (:func:`provenance.open_verified`):
    it receives every signed file's bytes as hashed, and the format rules
    and the scan then examine those bytes, not the files again.
    """
    if not isinstance(policy, Policy):
        if not isinstance(policy, (str, os.PathLike)):
            raise TypeError(f"policy must be a Policy or a path, not {type(policy).__name__}")
        from provenance.policy._load import load

        policy = load(policy)
    return _Evaluation(
        policy, Path(model_path), now, workers, progress, MAX_LINEAGE_DEPTH, set(), _kept
    ).run(
        Path(signature_path) if signature_path else None,
        Path(attestations_path) if attestations_path else None,
    )


def signature_reasons(policy: Policy, signature_path: Path) -> list[Reason]:
    """What the policy's signer rules say of a signature alone: nothing hashed, no files.

    For refusing before a model is fetched (:func:`provenance.hub.fetch`):
    the same trust, threshold and revocations as :func:`evaluate`; an error
    among the reasons means :func:`evaluate` would deny the model too.
    """
    ev = _Evaluation(policy, signature_path.parent, None, None, None, 0, set())
    ev._signatures(signature_path)
    return ev.reasons


def unsigned_allowed(policy: Policy, name: str) -> bool:
    """Whether the policy lets an unsigned file ``name`` be present (``files.unsigned``)."""
    rules = policy.files
    return rules.unsigned == "allow" or any(_glob(name, p) for p in rules.allow_unsigned)


class _Evaluation:
    def __init__(
        self,
        policy: Policy,
        path: Path,
        now: datetime.datetime | None,
        workers: int | None,
        progress: Any,
        depth_left: int,
        seen: set[str],
        kept: Kept | None = None,
    ) -> None:
        self.policy = policy
        self.kept = kept
        self.path = path
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self.workers = workers
        self.progress = progress
        self.depth_left = depth_left
        self.seen = seen
        self.reasons: list[Reason] = []
        self.rules: list[RuleResult] = []

    def reason(
        self,
        code: str,
        rule: str,
        message: str,
        subject: str | None = None,
        severity: Severity = "error",
    ) -> None:
        self.reasons.append(Reason(code, rule, message, subject, severity))

    def held(self, rule: str, ok: bool, summary: str) -> None:
        self.rules.append(RuleResult(rule, ok, summary))

    # ------------------------------------------------------------ the whole

    def run(self, signature_path: Path | None, attestations_path: Path | None) -> Decision:
        from provenance.bundle import default_signature_path, refuse_bundle_as_model

        policy, path = self.policy, self.path
        refuse_bundle_as_model(path)
        if not path.exists() and not path.is_symlink():
            raise InputError(f"model path '{path}' does not exist", code="not-found")
        self.seen.add(os.path.realpath(path))
        expired = policy.expires is not None and self.now > policy.expires
        if policy.expires is not None:
            day = _time(policy.expires)
            if expired:
                self.reason("policy-expired", "expires", f"the policy expired at {day}")
            self.held("expires", not expired, f"valid until {day}")

        sig_path = signature_path or default_signature_path(path)
        counted, verified = self._signatures(sig_path)
        report = None
        manifest = None
        if verified is not None:
            report = self._files(sig_path, verified)
            manifest = report.manifest
        attestations: tuple[AttestationCheck, ...] = ()
        lineage: tuple[LineageDecision, ...] = ()
        if manifest is not None:
            self._digest(manifest.root_digest)
            if report is not None:
                self._formats(report)
                self._scan(report)
            if policy.attestations or policy.lineage is not None:
                attestations, lineage = self._attestations(manifest.root_digest, attestations_path)
            if policy.pipeline is not None:
                self._pipeline(manifest)
        else:
            pipeline = ("pipeline",) if policy.pipeline is not None else ()
            for rule in ("pins", "files", *(r.where for r in policy.attestations), *pipeline):
                if rule == "pins" and not policy.pins:
                    continue
                if rule == "files" and not self._has_file_rules():
                    continue
                self.reason(
                    "not-checked",
                    rule,
                    "not checked: the model's signatures do not meet the policy's signer "
                    "rules, so no signed statement says what its files are",
                    severity="info",
                )
                self.held(rule, False, "not checked (no trusted signature)")

        if policy.revocations:
            hits = [r for r in self.reasons if r.code.startswith("revoked-")]
            self.held(
                "revocations",
                not hits,
                f"{len(hits)} of {len(policy.revocations)} revocation(s) apply"
                if hits
                else f"none of {len(policy.revocations)} revocation(s) applies",
            )
        passed = not any(r.severity == "error" for r in self.reasons)
        allowed = not expired and (passed or policy.mode != "enforce")
        return Decision(
            allowed=allowed,
            passed=passed,
            mode=policy.mode,
            model_path=path,
            policy_source=policy.source,
            policy_digest=policy.digest,
            checked_at=_time(self.now),
            reasons=tuple(self.reasons),
            rules=tuple(self.rules),
            manifest=manifest,
            signers=counted,
            attestations=attestations,
            lineage=lineage,
            report=report,
        )

    # ------------------------------------------------------------ signatures

    def _signatures(self, sig_path: Path) -> tuple[tuple[SignerInfo, ...], Verified | None]:
        """Every bundle verified; the statement signed by the most distinct trusted signers."""
        policy = self.policy
        trust = Trust(policy.signers)
        groups: dict[tuple[str, bytes], list[tuple[Path, Verified]]] = {}
        read = _read_signatures(sig_path)
        nothing = all(isinstance(i, InputError) and i.code == "signature-missing" for _, i in read)
        for where, item in read:
            shown = str(where)
            if isinstance(item, InputError):
                primary = where == sig_path
                self.reason(
                    "signature-missing"
                    if item.code == "signature-missing"
                    else "signature-unreadable",
                    "signers",
                    str(item),
                    shown,
                    # A damaged co-signature only fails to count; the threshold decides.
                    "error" if primary and item.code != "signature-missing" else "warning",
                )
                continue
            try:
                v = trust.verify(item)
            except ProvenanceError as e:
                self.reason("signer-untrusted", "signers", f"'{shown}': {e}", shown, "warning")
                continue
            denied = revoked(v.signer, policy.revocations)
            for r, why in denied:
                self.reason(f"revoked-{r.kind}", r.where, f"'{shown}': {why}", shown)
            if denied:
                continue
            # Keyed by the exact statement: co-signatures of one statement share its
            # payload bytes (read_signatures decodes it once), whose hash is cached.
            groups.setdefault((v.payload_type, v.payload), []).append((where, v))
        best: list[tuple[Path, Verified]] = []
        signers: list[SignerInfo] = []
        for members in groups.values():
            counted = _distinct_entries(members, trust)
            primary_in = any(w == sig_path for w, _ in members)
            if len(counted) > len(signers) or (len(counted) == len(signers) and primary_in):
                best, signers = members, counted
        for members in groups.values():
            if members is not best:
                for w, v in members:
                    self.reason(
                        "signature-other-statement",
                        "threshold",
                        f"'{w}' by {v.signer.description} signs another statement than the "
                        "one counted (the model or its hashing options changed since); "
                        "it does not count",
                        str(w),
                        "warning",
                    )
        k = policy.threshold
        who = ", ".join(s.description for s in signers) or "nobody the policy trusts"
        if len(signers) < k:
            need = "a trusted signature" if k == 1 else f"{k} distinct trusted signers"
            if nothing:
                message = (
                    f"the model needs {need} and has no signature: none at '{sig_path}' "
                    "(sign it, or give the path of its signature)"
                )
            else:
                signed = {i for _, v in best for i in trust.acceptors(v.signer)}
                missing = [rule_label(r) for i, r in enumerate(policy.signers) if i not in signed]
                message = f"the model needs {need}; it has {len(signers)} ({who})"
                if not signers:
                    # Say who did sign: the reason a denial is read for.
                    untrusted = [r.message for r in self.reasons if r.code == "signer-untrusted"]
                    if untrusted:
                        message += f": {untrusted[0]}" + (
                            f" (and {len(untrusted) - 1} more signature(s))"
                            if len(untrusted) > 1
                            else ""
                        )
                if missing and k > 1:
                    message += (
                        f"; not signed by {', '.join(missing)} (a co-signer adds theirs with "
                        "`provenance sign MODEL --key KEY --cosign`)"
                    )
            self.reason(
                "threshold-not-met", "threshold" if k > 1 else "signers", message, str(sig_path)
            )
            self.held("threshold" if k > 1 else "signers", False, f"{len(signers)} of {k}: {who}")
            return tuple(signers), None
        self.held("threshold" if k > 1 else "signers", True, f"{len(signers)} of {k}: {who}")
        first = next((v for w, v in best if w == sig_path), best[0][1])
        return tuple(signers), first

    # ------------------------------------------------------------ files

    def _has_file_rules(self) -> bool:
        f = self.policy.files
        return bool(f.formats.allow is not None or f.formats.deny or f.max_total_bytes or f.scan)

    def _files(self, sig_path: Path, verified: Verified) -> VerificationReport:
        from provenance.verification import check_verified

        rules = self.policy.files
        report = check_verified(
            self.path,
            verified,
            signature_path=sig_path,  # it and its co-signature folder are left out
            ignore_unsigned_files=True,
            workers=self.workers,
            progress=self.progress,
            keep=self.kept,
        )
        failed = False
        for f in report.findings:
            if f.code == "file-unsigned":
                continue  # decided below, by the policy
            if f.severity == "error":
                failed = True
            # What the signed statement itself says (unusable, an old encoding) is about
            # the signature; everything else found walking the model is about its files.
            rule = "signers" if f.code.startswith(("signature-", "statement-")) else "files"
            self.reason(f.code, rule, f.message, f.path, f.severity)
        unsigned_bad = []
        for name in report.unsigned_files:
            if rules.unsigned == "allow":
                continue
            pattern = next((p for p in rules.allow_unsigned if _glob(name, p)), None)
            if pattern is not None:
                self.reason(
                    "file-unsigned-allowed",
                    "files.allow_unsigned",
                    f"'{name}' is not signed; allowed by '{pattern}'",
                    name,
                    "info",
                )
                continue
            unsigned_bad.append(name)
            self.reason(
                "file-unsigned",
                "files.unsigned",
                f"'{name}' is not covered by the signature",
                name,
            )
        if report.manifest is None:
            self.held("files", False, "the signed statement is unusable")
        else:
            n = len(report.manifest.files)
            self.held(
                "files",
                not failed and not unsigned_bad,
                f"{n} signed file(s) match"
                if not failed
                else "signed files do not match their signature",
            )
            if rules.unsigned == "deny":
                self.held(
                    "files.unsigned",
                    not unsigned_bad,
                    f"{len(unsigned_bad)} unsigned file(s)" if unsigned_bad else "no unsigned file",
                )
        cap = rules.max_total_bytes
        if cap is not None and report.manifest is not None:
            over = report.total_bytes > cap
            if over:
                self.reason(
                    "size-exceeded",
                    "files.max_total_bytes",
                    f"the model holds {report.total_bytes} bytes, more than the {cap} allowed",
                )
            self.held("files.max_total_bytes", not over, f"{report.total_bytes} of {cap} bytes")
        return report

    def _scan(self, report: VerificationReport) -> None:
        """The format-safety scan of every file, signed and unsigned alike."""
        rules = self.policy.files
        if not rules.scan or report.manifest is None:
            return
        from provenance import formats

        result = formats.scan(
            self.path,
            allow_globals=rules.allow_globals,
            signed_files=report.manifest.files,
            contents=self._held(),
        )
        bad = 0
        for f in result.findings:
            where = f.file + (f" [{f.member}]" if f.member else "")
            if f.severity == "error":
                bad += 1
            self.reason(f.code, "files.scan", f"'{where}': {f.message}", f.file, f.severity)
        self.held(
            "files.scan",
            not bad,
            f"{len(result.files)} file(s) scanned, {bad} with errors"
            if bad
            else f"{len(result.files)} file(s) scanned clean",
        )

    def _held(self) -> dict[str, Any] | None:
        """The verified loader's bytes by scanned name (a single file by its own name)."""
        if self.kept is None:
            return None
        if "." in self.kept:
            return {self.path.name: self.kept["."]}
        return dict(self.kept)

    def _formats(self, report: VerificationReport) -> None:
        rules = self.policy.files.formats
        if rules.allow is None and not rules.deny:
            return
        from provenance import formats

        assert report.manifest is not None
        names = list(report.manifest.files)
        names += [n for n in report.unsigned_files if n not in names]
        bad = 0
        held = self._held()
        for name in names:
            target = self.path if name == "." else self.path / name
            try:
                shown = target.name if name == "." else name
                if held is not None and shown in held:
                    found = formats.detect_buffer(held[shown], shown)
                else:
                    found = formats.detect(target)
            except ProvenanceError as e:
                self.reason("format-unknown", "files.formats", f"'{name}': {e}", name)
                bad += 1
                continue
            fmt = found.format
            denied = fmt in rules.deny or ("pickle" in rules.deny and found.pickle_based)
            if denied:
                detail = f" ({found.detail})" if found.detail else ""
                # Say which rule: "pickle" denies every format that loads
                # through pickle (torch files, numpy object arrays), not numpy.
                why = (
                    "a format the policy denies"
                    if fmt in rules.deny
                    else "pickle-based, which the policy denies (deny: [pickle])"
                )
                self.reason(
                    "format-denied", "files.formats.deny", f"'{name}' is {fmt}{detail}, {why}", name
                )
                bad += 1
            elif rules.allow is not None and fmt not in rules.allow:
                self.reason(
                    "format-not-allowed",
                    "files.formats.allow",
                    f"'{name}' is {fmt}, not one of the allowed formats ({', '.join(rules.allow)})",
                    name,
                )
                bad += 1
            elif (
                rules.allow is not None
                and found.pickle_based
                and fmt not in formats.PICKLE_BASED
                and "pickle" not in rules.allow
            ):
                # An allow list is what may load; a pickle inside an allowed format (an
                # object-dtype .npy, a zip whose listing could not rule out data.pkl)
                # is a pickle, allowed only when the list says pickle (or its format
                # is one that is always pickle-based, named on purpose).
                detail = f" ({found.detail})" if found.detail else ""
                self.reason(
                    "format-not-allowed",
                    "files.formats.allow",
                    f"'{name}' is {fmt}{detail} that loads through pickle, and the allowed "
                    f"formats ({', '.join(rules.allow)}) do not include pickle",
                    name,
                )
                bad += 1
        self.held("files.formats", not bad, f"{len(names) - bad} of {len(names)} file(s) allowed")

    # ------------------------------------------------------------ digest rules

    def _digest(self, root: str) -> None:
        policy = self.policy
        if policy.pins:
            ok = root in policy.pins
            if not ok:
                self.reason(
                    "pin-mismatch",
                    "pins",
                    f"the model's root digest sha256:{root} is not one the policy pins",
                )
            self.held("pins", ok, f"sha256:{root[:16]}… {'is' if ok else 'is not'} pinned")
        for r in policy.revocations:
            if r.kind == "digest" and r.value == root:
                why = f" ({r.reason})" if r.reason else ""
                self.reason("revoked-digest", r.where, f"the model sha256:{root} is revoked{why}")

    # ------------------------------------------------------------ pipeline

    def _pipeline(self, manifest: Manifest) -> None:
        """The pipeline verifies (in-toto) and its final products are the signed model."""
        from provenance.pipeline import model_products, verify_pipeline

        rule = self.policy.pipeline
        assert rule is not None
        try:
            report = verify_pipeline(rule.layout, list(rule.layout_keys), rule.links)
        except ProvenanceError as e:
            self.reason("pipeline-unreadable", "pipeline", f"the pipeline cannot be checked: {e}")
            self.held("pipeline", False, "not checked (layout or links unreadable)")
            return
        for f in report.findings:
            self.reason(f.code, "pipeline", f.message, f.path, f.severity)
        if not report.ok:
            self.held("pipeline", False, f"{len(report.errors)} problem(s) in the pipeline")
            return
        problems = model_products(report, manifest, step=rule.step, path=rule.path)
        for f in problems:
            self.reason(f.code, "pipeline.model", f.message, f.path, f.severity)
        step = rule.step or report.steps[-1].name
        self.held(
            "pipeline",
            not problems,
            f"{len(report.steps)} step(s) verified; the model is "
            + ("not " if problems else "")
            + f"the products of step '{step}'",
        )

    # ------------------------------------------------------------ attestations

    def _attestations(
        self, root: str, attestations_path: Path | None
    ) -> tuple[tuple[AttestationCheck, ...], tuple[LineageDecision, ...]]:
        from provenance.attest import verify_attestations

        policy = self.policy
        # One verifier over every rule that may sign some attestation: the
        # policy's attestation signers and each rule's own.
        pool: list[SignerRule] = list(policy.effective_attestation_signers)
        for rule in policy.attestations:
            for s in rule.signers or ():
                if s not in pool:
                    pool.append(s)
        trust = Trust(pool)
        try:
            report = verify_attestations(
                self.path, trust, root, attestations_path=attestations_path
            )
        except InputError as e:
            self.reason("attestations-unreadable", "attestations", str(e))
            for rule in policy.attestations:
                self.held(rule.where, False, "the attestations could not be read")
            return (), ()
        general = {i for i, s in enumerate(pool) if s in policy.effective_attestation_signers}
        usable: list[AttestationCheck] = []
        failed = [c for c in report.checks if not c.ok]
        for c in failed[:_SHOWN_FAILED_LINES]:
            # Said, not denied: the lines that do verify decide the rules. A damaged
            # newer evaluation could otherwise hide behind an older one unnoticed.
            why = c.problems[0] if c.problems else "it does not verify"
            self.reason(
                "attestation-line-ignored",
                "attestations",
                f"attestation line {c.line} does not count: {why}",
                f"line {c.line}",
                "warning",
            )
        if len(failed) > _SHOWN_FAILED_LINES:
            self.reason(
                "attestation-line-ignored",
                "attestations",
                f"and {len(failed) - _SHOWN_FAILED_LINES} more attestation line(s) do not count",
                None,
                "warning",
            )
        for c in report.checks:
            if not c.ok or c.signer_info is None:
                continue
            if c.duplicate_of is not None and c.statement is None:
                continue  # a line repeated byte for byte: the same signature, counted once
            # The same statement signed again (by its own bundle, maybe another signer)
            # stays: an attestation rule may accept that signer and not the first.
            denied = revoked(c.signer_info, policy.revocations)
            for r, why in denied:
                self.reason(
                    f"revoked-{r.kind}",
                    r.where,
                    f"attestation line {c.line}: {why}",
                    f"line {c.line}",
                )
            if not denied:
                usable.append(c)
        satisfied: list[AttestationCheck] = []
        for rule in policy.attestations:
            allowed = {pool.index(s) for s in rule.signers} if rule.signers is not None else general
            hit = self._attestation_rule(rule, report.checks, usable, trust, allowed)
            if hit is not None and hit not in satisfied:
                satisfied.append(hit)
        lineage: tuple[LineageDecision, ...] = ()
        if policy.lineage is not None:
            # Who may name this model's inputs: whoever may sign an attestation of that
            # type, the policy's attestation signers or an attestation rule's own.
            own: dict[str, set[int]] = {}
            for rule in policy.attestations:
                if rule.signers is not None:
                    own.setdefault(rule.predicate_type, set()).update(
                        pool.index(s) for s in rule.signers
                    )

            def may_name(c: AttestationCheck) -> bool:
                assert c.signer_info is not None
                may = general | own.get(c.predicate_type or "", set())
                return bool(trust.acceptors(c.signer_info) & may)

            self._unverified_inputs(root, report.checks, may_name)
            lineage = self._lineage([c for c in usable if may_name(c)])
        return tuple(satisfied or usable), lineage

    def _unverified_inputs(
        self,
        root: str,
        checks: Iterable[AttestationCheck],
        may_name: Callable[[AttestationCheck], bool],
    ) -> None:
        """Attestations a trusted signer made about this model that name its inputs but
        do not verify (an input changed since, a malformed predicate): the lineage they
        record cannot be checked, so the lineage rule cannot hold."""
        from provenance.intoto import EVALUATION, SLSA_PROVENANCE

        bad = 0
        for c in checks:
            if c.ok or c.duplicate_of is not None or c.signer_info is None:
                continue
            if c.statement is None or c.predicate_type not in (
                SLSA_PROVENANCE.uri,
                EVALUATION.uri,
            ):
                continue
            if not c.statement.has_subject_digest(root) or not may_name(c):
                continue  # about another model, or by someone who may not name inputs
            if revoked(c.signer_info, self.policy.revocations):
                continue
            bad += 1
            self.reason(
                "lineage-unverified",
                "lineage",
                f"attestation line {c.line} ({_type_name(c.predicate_type)}, signed by "
                f"{c.signer}) names this model's inputs but does not verify: "
                + ("; ".join(c.problems) or "not verified"),
                f"line {c.line}",
            )
        if bad:
            self.held("lineage", False, f"{bad} attestation(s) naming inputs do not verify")

    def _attestation_rule(
        self,
        rule: AttestationRule,
        checks: Iterable[AttestationCheck],
        usable: list[AttestationCheck],
        trust: Trust,
        allowed: set[int],
    ) -> AttestationCheck | None:
        failures: list[str] = []
        superseded: list[str] = []  # said after the failures that decided
        checks = tuple(checks)
        # A newer evaluation of the same metrics on the same data replaces an
        # older one: an old pass must not hide a new failure.
        newer = _superseded(
            [c for c in usable if c.predicate_type == rule.predicate_type]
            if rule.predicate_type == EVALUATION_PREDICATE_TYPE
            else []
        )
        for c in checks:
            if c.predicate_type != rule.predicate_type:
                continue
            if c.line in newer:
                superseded.append(
                    f"line {c.line}: superseded by line {newer[c.line]}, a newer evaluation "
                    "of the same metrics on the same data"
                )
                continue
            if c not in usable:
                if not c.ok and c.duplicate_of is None:
                    failures.append(f"line {c.line}: {'; '.join(c.problems) or 'not verified'}")
                continue
            assert c.signer_info is not None and c.statement is not None
            if not trust.acceptors(c.signer_info) & allowed:
                failures.append(
                    f"line {c.line}: signed by {c.signer}, who may not sign this attestation"
                )
                continue
            problems = []
            if rule.predicate_schema is not None:
                problems += _schema_problems(rule.predicate_schema, c.statement.predicate)
            if rule.enforce_thresholds:
                problems += _threshold_problems(c.statement.predicate)
            if problems:
                failures.append(f"line {c.line}: {'; '.join(problems)}")
                continue
            self.held(
                rule.where,
                True,
                f"{_type_name(rule.predicate_type)} attestation, line {c.line}, "
                f"signed by {c.signer}",
            )
            return c
        what = _type_name(rule.predicate_type)
        failures += superseded
        if failures:
            self.reason(
                "attestation-unsatisfied",
                rule.where,
                f"no {what} attestation satisfies the policy: {failures[0]}"
                + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
            )
            for f in failures[1:]:
                self.reason("attestation-unsatisfied", rule.where, f, severity="info")
        else:
            # Lines whose signature did not verify have no type anyone vouches for; say
            # so, or a denial for an attestation that is "there" reads as a mistake.
            unverified = [
                c
                for c in checks
                if not c.ok and c.predicate_type is None and c.duplicate_of is None
            ]
            note = ""
            if unverified:
                first = unverified[0]
                note = (
                    f" ({len(unverified)} line(s) do not verify; line {first.line}: "
                    f"{'; '.join(first.problems) or 'not verified'})"
                )
            self.reason(
                "attestation-missing",
                rule.where,
                f"the model has no verified {what} attestation{note}",
            )
        self.held(rule.where, False, f"no {what} attestation satisfies it")
        return None

    # ------------------------------------------------------------ lineage

    def _lineage(self, checks: list[AttestationCheck]) -> tuple[LineageDecision, ...]:
        from provenance.attest import input_base
        from provenance.intoto import EVALUATION, SLSA_PROVENANCE

        rules = self.policy.lineage
        assert rules is not None
        out: list[LineageDecision] = []
        base = Path(input_base(self.path))
        depth_left = min(rules.depth, self.depth_left)
        if depth_left < 1:
            # A nested policy's own lineage, deeper than the top policy follows.
            self.reason(
                "lineage-not-followed",
                "lineage",
                "lineage not followed: deeper than the lineage depth of the policy above",
                severity="info",
            )
            return ()
        seen_inputs: set[tuple[str, str]] = set()
        for c in checks:
            assert c.statement is not None
            stmt = c.statement
            try:
                if stmt.predicate_type == SLSA_PROVENANCE.uri:
                    inputs = SLSA_PROVENANCE.parse(stmt.predicate).resolved_dependencies
                elif stmt.predicate_type == EVALUATION.uri:
                    inputs = EVALUATION.parse(stmt.predicate).datasets
                else:
                    continue
            except InputError as e:
                self.reason("lineage-malformed", "lineage", f"attestation line {c.line}: {e}")
                continue
            for desc in inputs:
                role = desc.role or ""
                if role == "base-model":
                    kind, where = rules.base_models, "lineage.base_models"
                elif role in ("training-data", "validation-data", "evaluation-data"):
                    kind, where = rules.datasets, "lineage.datasets"
                else:
                    continue
                if kind is None:
                    continue
                digest = (desc.digest.get("sha256") or "").lower()
                # One input once: by its SHA-256, else (none recorded) by all it says.
                same = (role, digest or json.dumps(desc.to_json(), sort_keys=True))
                if same in seen_inputs:
                    continue
                seen_inputs.add(same)
                out.append(self._input(kind, where, role, desc, digest, base, depth_left))
        for where, kind in (
            ("lineage.base_models", rules.base_models),
            ("lineage.datasets", rules.datasets),
        ):
            if kind is None:
                continue
            mine = [d for d in out if (d.role == "base-model") == (where == "lineage.base_models")]
            bad = [d for d in mine if not d.allowed]
            self.held(where, not bad, f"{len(mine) - len(bad)} of {len(mine)} input(s) allowed")
        return tuple(out)

    def _input(
        self,
        rules: InputRules,
        where: str,
        role: str,
        desc: Any,
        digest: str,
        base: Path,
        depth_left: int,
    ) -> LineageDecision:
        name = desc.name or desc.uri or desc.path or digest[:16]
        label = f"{role} '{name}'"
        # Revocations deny an input whatever allows it (its digest, its URI, its policy).
        for r in self.policy.revocations:
            if r.kind == "digest" and digest and r.value == digest:
                why = f"sha256:{digest} is revoked" + (f" ({r.reason})" if r.reason else "")
                self.reason("revoked-digest", r.where, f"{label} is not allowed: {why}", name)
                return LineageDecision(role, name, digest, desc.path, False, why)
        if digest and digest in rules.digests:
            return LineageDecision(role, name, digest, desc.path, True, "digest listed")
        if desc.uri and any(fnmatch.fnmatchcase(desc.uri, u) for u in rules.uris):
            return LineageDecision(role, name, digest, desc.path, True, "uri listed")
        if rules.policy is not None:
            hub_uri = desc.uri if not desc.path and (desc.uri or "").startswith("hf://") else None
            if not desc.path and hub_uri is None:
                why = "it was recorded without a local path, so its policy cannot be checked"
            else:
                local = _local_input(desc.path, hub_uri, base)
                if local is None or not os.path.lexists(local):
                    why = (
                        f"'{desc.path}' is not on this machine, so its policy cannot be checked"
                        if hub_uri is None
                        else f"'{hub_uri}' is not in the local Hugging Face cache, so its "
                        "policy cannot be checked (fetch it: provenance hub verify ...)"
                    )
                elif os.path.realpath(local) in self.seen:
                    why = "it names a model already on this lineage path (a cycle)"
                else:
                    # What this policy revokes is revoked down its lineage too, also
                    # where the nested policy (older, shared) does not say so.
                    inherited = tuple(
                        r for r in self.policy.revocations if r not in rules.policy.revocations
                    )
                    nested = _Evaluation(
                        replace(
                            rules.policy,
                            revocations=(*rules.policy.revocations, *inherited),
                        ),
                        local,
                        self.now,
                        self.workers,
                        None,
                        depth_left - 1,
                        set(self.seen),
                    )
                    try:
                        decision = nested.run(None, None)
                    except ProvenanceError as e:
                        why = f"it cannot be checked ({e})"
                    else:
                        # The nested policy must pass: its warn or audit mode
                        # cannot loosen the enforcing policy above it.
                        if decision.allowed and decision.passed and decision.root_digest == digest:
                            return LineageDecision(
                                role, name, digest, desc.path, True, "policy", decision
                            )
                        if decision.root_digest and decision.root_digest != digest:
                            why = (
                                f"its files hash to sha256:{decision.root_digest}, not the "
                                f"sha256:{digest} the attestation records"
                            )
                        else:
                            first = decision.errors[0].message if decision.errors else "denied"
                            why = f"its policy {rules.policy.source} denies it: {first}"
                        self.reason("lineage-denied", where, f"{label} is not allowed: {why}", name)
                        return LineageDecision(role, name, digest, desc.path, False, why, decision)
        else:
            why = "neither its digest nor its URI is one the policy lists"
        self.reason("lineage-denied", where, f"{label} is not allowed: {why}", name)
        return LineageDecision(role, name, digest, desc.path, False, why)


# ---------------------------------------------------------------- helpers


_SHOWN_FAILED_LINES = 5


def _local_input(path: str | None, hub_uri: str | None, base: Path) -> Path | None:
    """Where an input recorded by path, or as ``hf://ORG/NAME@COMMIT``, is on this machine."""
    if path:
        return Path(path) if os.path.isabs(path) else base / path
    from provenance import hub

    ref = hub.parse_reference(hub_uri or "")
    if ref is None or ref.commit is None:
        return None
    try:
        return hub.cached_snapshot(ref.repo_id, ref.commit)[1]
    except ProvenanceError:
        return None


def _distinct_entries(members: list[tuple[Path, Verified]], trust: Trust) -> list[SignerInfo]:
    """The signers a threshold counts: distinct people, each for an entry of its own.

    A threshold is of distinct entries of ``signers``: two people whom one
    entry accepts (two certificates under its root, two identities its
    regexp matches) satisfy that entry once. So signers are matched to the
    entries that accepted them, each entry to at most one signer, and the
    largest such matching counts (augmenting paths; at most 64 of each).
    """
    accepts: dict[str, set[int]] = {}
    first: dict[str, SignerInfo] = {}
    for _, v in members:
        accepts.setdefault(v.signer.principal, set()).update(trust.acceptors(v.signer))
        first.setdefault(v.signer.principal, v.signer)
    owner: dict[int, str] = {}

    def assign(who: str, tried: set[int]) -> bool:
        for i in sorted(accepts[who]):
            if i not in tried:
                tried.add(i)
                if i not in owner or assign(owner[i], tried):
                    owner[i] = who
                    return True
        return False

    for who in accepts:
        assign(who, set())
    matched = set(owner.values())
    return [first[who] for who in accepts if who in matched]


def _read_signatures(sig_path: Path) -> list[tuple[Path, Bundle | InputError]]:
    from provenance import bundle

    return bundle.read_signatures(sig_path)


def _glob(name: str, pattern: str) -> bool:
    from provenance.hashing import Ignore

    ignore = Ignore(patterns=[pattern])
    if ignore.match(name, name.rsplit("/", 1)[-1]) is not None:
        return True
    # Only a pattern that names a folder ("__pycache__/**", "logs/") covers what
    # is under it: "*.md" must not let in "notes.md/modeling_evil.py".
    if not pattern.endswith(("/**", "/")):
        return False
    folder = Ignore(patterns=[pattern.rstrip("/").removesuffix("/**") or pattern])
    parts = name.split("/")
    return any(
        folder.match("/".join(parts[:i]), parts[i - 1]) is not None for i in range(1, len(parts))
    )


def _time(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _type_name(uri: str) -> str:
    from provenance._internal.uris import (
        DATASET_PREDICATE_TYPE,
        EVALUATION_PREDICATE_TYPE,
        SLSA_PREDICATE_TYPE,
    )

    return {
        SLSA_PREDICATE_TYPE: "training (SLSA provenance)",
        DATASET_PREDICATE_TYPE: "dataset",
        EVALUATION_PREDICATE_TYPE: "evaluation",
    }.get(uri, uri)


def _schema_problems(schema: dict[str, object], predicate: object) -> list[str]:
    from provenance._internal import schemacheck

    if schemacheck.is_valid(schema, predicate):
        return []  # proved without importing jsonschema, which judges and words the rest
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    validator = Draft202012Validator(schema)
    try:
        errors = sorted(validator.iter_errors(predicate), key=lambda e: list(e.absolute_path))
    except Unresolvable as failure:
        # The policy's schema, not the attestation, is at fault; still a denial.
        return [
            "the policy's predicate schema cannot be evaluated on this predicate "
            f"({str(failure)[:200]})"
        ]
    except RecursionError:
        return ["the policy's predicate schema cannot be evaluated on this predicate (it loops)"]
    except Exception as failure:  # the policy's schema is at fault (a bad pattern, a bound)
        what = f"{type(failure).__name__}: {str(failure)[:200]}"
        return [f"the policy's predicate schema cannot be evaluated on this predicate ({what})"]
    except BaseException as failure:
        if not schemacheck.recursed(failure):
            raise
        return ["the policy's predicate schema cannot be evaluated on this predicate (it loops)"]
    out = []
    for e in errors:
        where = "predicate" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path
        )
        out.append(f"{where}: {e.message[:300]}")
        if len(out) >= 10:
            break
    return out


def _superseded(checks: list[AttestationCheck]) -> dict[int, int]:
    """Evaluation lines replaced by a newer one of the same metrics and datasets -> the newer."""
    import datetime as dt

    from provenance.intoto import EVALUATION

    newest: dict[tuple[Any, ...], tuple[dt.datetime, int]] = {}
    keyed: list[tuple[tuple[Any, ...], dt.datetime, int]] = []
    for c in checks:
        assert c.statement is not None
        try:
            ev = EVALUATION.parse(c.statement.predicate)
        except InputError:
            continue
        key = (
            tuple(sorted({m.name for m in ev.metrics})),
            tuple(sorted((d.digest.get("sha256") or "").lower() for d in ev.datasets)),
        )
        try:
            when = dt.datetime.fromisoformat(ev.evaluated_on.strip().replace("Z", "+00:00"))
        except ValueError:
            when = dt.datetime.min
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        keyed.append((key, when, c.line))
        best = newest.get(key)
        if best is None or (when, c.line) > best:
            newest[key] = (when, c.line)
    return {line: newest[key][1] for key, _, line in keyed if newest[key][1] != line}


def _threshold_problems(predicate: Any) -> list[str]:
    """Every threshold the evaluation recorded, checked against its own metric."""
    import operator

    from provenance.intoto import EVALUATION

    try:
        ev = EVALUATION.parse(predicate)
    except InputError as e:
        return [str(e)]
    values = {m.name: m.value for m in ev.metrics}
    ops = {
        ">=": operator.ge,
        "<=": operator.le,
        "==": operator.eq,
        ">": operator.gt,
        "<": operator.lt,
    }
    out = []
    for t in ev.thresholds:
        parts = t.parts()
        if parts is None:
            out.append(f"threshold {t.metric}{t.condition} cannot be read")
            continue
        value = values.get(t.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"metric {t.metric} has no numeric value to hold to {t.condition}")
            continue
        if not ops[parts[0]](value, parts[1]):
            out.append(f"metric {t.metric} = {value} fails its threshold {t.condition}")
    return out
