"""Verifying a whole pipeline against its signed layout, with reasons a person can act on.

The verdict is in-toto's: :func:`in_toto.verifylib.in_toto_verify` checks the
layout's signatures and expiry, each step's links against the functionaries
and thresholds the layout names, and every artifact rule. What this module
adds is around it:

* **Hostile files are read safely.** Everything in the links folder and the
  layout is unverified input. in-toto opens link files by name, follows
  links and reads without bound (a FIFO would hang it), so the files it
  would open (``STEP.KEYID8.link`` for each authorized key) are read here
  instead: regular files only, never through a symbolic link, without
  blocking, at most :data:`MAX_LINK_BYTES` each, and copied as read into a
  private folder that in-toto then verifies.
* **Reasons name the step, the rule and the file.** in-toto raises on the
  first failure with a terse message; it is translated into a
  :class:`~provenance.findings.Finding` that says which step failed, which
  rule (or threshold) refused it, which file, and why: a material whose
  digest differs from the product an earlier step recorded, a file no
  earlier step produced, a link signed by a key the layout does not list
  for that step, a second link that is a copy of the first.
* **Inspections do not run by default.** A layout may carry commands for
  the verifier to run; :func:`verify_pipeline` refuses such a layout unless
  asked to run them, since a check at model load must not execute commands.
* **A failed step fails the chain.** in-toto records a step's return value
  but does not look at it; a link recording a non-zero exit code is an
  error here.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.errors import InputError, UsageError, VerificationError
from provenance.findings import Finding, first_error_summary
from provenance.pipeline._keys import public_key_dict
from provenance.pipeline._layout import MAX_LAYOUT_BYTES

__all__ = ["MAX_LINK_BYTES", "PipelineReport", "StepReport", "verify_pipeline"]

#: The largest link file read. A link lists every material and product with
#: its digest (about 100 bytes each): 64 MiB is half a million files.
MAX_LINK_BYTES = 64 << 20
#: Entries of the links folder looked at for diagnostics (the verdict reads only
#: the files the layout names).
_MAX_SCANNED = 10_000
#: Stray links (named for a key the layout does not list) read to say who signed them.
_MAX_PEEKED = 16
#: Files named in one reason; more are counted.
_MAX_NAMED = 5

_LINK_FILE = re.compile(r"(?P<step>.+)\.(?P<keyid>[0-9a-f]{8})\.link")


@dataclass(frozen=True)
class StepReport:
    """One step as verified: who signed it, how it ended, what it produced."""

    name: str
    threshold: int
    functionaries: tuple[str, ...]  # key ids the layout lists for the step
    signed_by: tuple[str, ...] = ()  # key ids whose links verified
    exit_code: int | None = None
    command: tuple[str, ...] = ()
    materials: dict[str, str] = field(default_factory=dict)  # path -> hex sha256
    products: dict[str, str] = field(default_factory=dict)
    #: Enough of its links verified, in-toto's rules were checked for it, and no
    #: error concerns the step.
    ok: bool = False
    #: in-toto's verification reached the step's artifact rules (it stops at the
    #: first failure: a missing link or a threshold stops it before any rule).
    checked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "threshold": self.threshold,
            "functionaries": list(self.functionaries),
            "signed_by": list(self.signed_by),
            "exit_code": self.exit_code,
            "command": list(self.command),
            "materials": len(self.materials),
            "products": len(self.products),
        }


@dataclass(frozen=True)
class PipelineReport:
    """The verdict on a pipeline: every finding, and each step as far as it verified.

    ``ok`` when no finding is an error. ``steps`` lists the layout's steps
    (empty if the layout itself did not verify); a step's ``signed_by`` is
    empty when none of its links verified.
    """

    layout: str
    links: str
    layout_keys: tuple[str, ...]
    findings: tuple[Finding, ...]
    steps: tuple[StepReport, ...] = ()
    expires: str | None = None

    @property
    def ok(self) -> bool:
        """No error, and every step verified: 0 never means a step went unchecked."""
        if any(f.severity == "error" for f in self.findings):
            return False
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    def step(self, name: str) -> StepReport | None:
        return next((s for s in self.steps if s.name == name), None)

    def raise_for_failure(self) -> None:
        """Raise :class:`~provenance.errors.VerificationError` unless ``ok``."""
        if self.ok:
            return
        errs = self.errors
        error = VerificationError(
            first_error_summary(errs),
            [f.message for f in errs],
            code=errs[0].code,
        )
        error.report = self
        raise error

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "layout": self.layout,
            "links": self.links,
            "layout_keys": list(self.layout_keys),
            "expires": self.expires,
            "steps": [s.to_json() for s in self.steps],
            "findings": [f.to_json() for f in self.findings],
        }


KeySource = str | os.PathLike[str] | bytes | Mapping[str, Any]


def verify_pipeline(
    layout: str | os.PathLike[str],
    layout_keys: Sequence[KeySource],
    links_dir: str | os.PathLike[str],
    *,
    run_inspections: bool = False,
    max_link_bytes: int = MAX_LINK_BYTES,
) -> PipelineReport:
    """Verify the links in ``links_dir`` against the signed ``layout``.

    ``layout_keys`` are the owners' public keys (PEM files, PEM bytes or
    in-toto key dictionaries); each must have signed the layout. Never
    raises for a chain that does not verify: every reason is a finding of
    the report (:meth:`PipelineReport.raise_for_failure` raises). Raises
    :class:`~provenance.errors.InputError` for input nothing can be decided
    on: a layout file or links folder that is missing or unreadable, a key
    file that is not a public key.
    """
    if not layout_keys:
        raise UsageError("give the public key of the layout's owner", code="usage")
    from provenance._internal.fsutil import read_limited

    shown = os.fspath(layout)
    raw = read_limited(layout, "layout", MAX_LAYOUT_BYTES)
    keys = {}
    for source in layout_keys:
        key = public_key_dict(source)
        keys[key["keyid"]] = key
    folder = Path(links_dir)
    try:
        if not stat.S_ISDIR(os.stat(folder).st_mode):
            raise InputError(f"links folder '{folder}' is not a folder", code="not-found")
    except OSError:
        raise InputError(f"links folder '{folder}' does not exist", code="not-found") from None
    check = _Check(shown, str(folder), keys, max_link_bytes)
    with _in_toto_log() as warnings:
        check.run(raw, run_inspections)
    # Command alignment is reported per step by the check itself (in-toto warns even when
    # the layout expects no particular command, and without naming the step).
    check.findings.extend(
        Finding("in-toto-warning", w, severity="warning")
        for w in warnings
        if not w.startswith("Run command ")
    )
    return PipelineReport(
        layout=shown,
        links=str(folder),
        layout_keys=tuple(keys),
        findings=tuple(check.findings),
        steps=tuple(check.steps),
        expires=check.expires,
    )


class _Check:
    """One verification: the layout, the private copy of the links, the findings."""

    def __init__(
        self, layout: str, links: str, keys: dict[str, dict[str, Any]], limit: int
    ) -> None:
        self.layout_path = layout
        self.links = links
        self.keys = keys
        self.limit = limit
        self.findings: list[Finding] = []
        self.steps: list[StepReport] = []
        self.expires: str | None = None
        self.notes: dict[str, list[str]] = {}  # step -> what the links folder shows
        self.verified: dict[str, dict[str, Any]] = {}  # step -> keyid -> Link
        self.present: dict[str, int] = {}  # step -> link files copied
        self.failed: set[str] = set()  # steps an error finding is about
        #: How far in-toto's artifact rules got: None before any ran, "*" all of
        #: them, else the step whose rule failed (the steps before it were checked).
        self.rules_reached: str | None = None
        self.peeked = 0  # stray links read for who signed them

    def fail(
        self, code: str, message: str, path: str | None = None, *, step: str | None = None
    ) -> None:
        self.findings.append(Finding(code, message, path))
        if step is not None:
            self.failed.add(step)

    # ------------------------------------------------------------ the whole

    def run(self, raw: bytes, run_inspections: bool) -> None:
        metadata = self.parse(raw)
        if metadata is None or not self.layout_signed(metadata):
            return
        layout = self.payload(metadata)
        if layout is None:
            return
        self.expires = str(layout.expires)
        if layout.inspect and not run_inspections:
            names = ", ".join(i.name for i in layout.inspect)
            self.fail(
                "layout-inspections",
                f"the layout has inspections ({names}) whose commands the verifier would run; "
                "they run only when asked for (run_inspections)",
            )
            return
        if not self.keys_honest(layout):
            self.step_reports(layout)
            return
        with tempfile.TemporaryDirectory(prefix="provenance-links-") as private:
            self.copy_links(layout, Path(private))
            self.scan_folder(layout)
            self.check_links(layout, Path(private))
            self.verify(metadata, layout, Path(private))
        self.step_reports(layout)

    # ------------------------------------------------------------ the layout

    def parse(self, raw: bytes) -> Any:
        from in_toto.models.metadata import Metadata

        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            return Metadata.from_dict(doc)
        except Exception as e:  # json, in-toto and securesystemslib each raise their own
            why = str(e) or type(e).__name__
            if type(e).__name__ == "InvalidMetadata":
                why = "neither a DSSE envelope of an in-toto payload nor an in-toto Metablock"
            self.fail(
                "layout-malformed",
                f"the layout '{self.layout_path}' is not signed in-toto metadata: {why}",
                self.layout_path,
            )
            return None

    def layout_signed(self, metadata: Any) -> bool:
        """Every owner key signed the layout (in-toto's rule), or say which did not and why."""
        from in_toto.exceptions import SignatureVerificationError

        ok = True
        present = _signature_keyids(metadata)
        for keyid, key in self.keys.items():
            try:
                metadata.verify_signature(key)
            except SignatureVerificationError:
                ok = False
                if keyid in present:
                    why = (
                        f"its signature by key {keyid[:16]} does not verify: the layout was "
                        "changed after it was signed"
                    )
                elif present:
                    others = ", ".join(k[:16] for k in present)
                    why = f"it is not signed by key {keyid[:16]} (it is signed by {others})"
                else:
                    why = "it carries no signature"
                self.fail(
                    "layout-signature",
                    f"the layout '{self.layout_path}' does not verify: {why}",
                    self.layout_path,
                )
            except Exception as e:
                ok = False
                self.fail(
                    "layout-signature",
                    f"the layout '{self.layout_path}' does not verify with key "
                    f"{keyid[:16]}: {e or type(e).__name__}",
                    self.layout_path,
                )
        return ok

    def payload(self, metadata: Any) -> Any:
        try:
            return metadata.get_payload()
        except Exception as e:
            self.fail(
                "layout-malformed",
                f"the layout '{self.layout_path}' is signed but is not a valid in-toto layout: "
                f"{e or type(e).__name__}",
                self.layout_path,
            )
            return None

    # ------------------------------------------------------------ the links

    def copy_links(self, layout: Any, private: Path) -> None:
        """Copy exactly the files in-toto would open, read as untrusted input."""
        from in_toto.models.link import FILENAME_FORMAT

        from provenance._internal.fsutil import read_regular

        for step in layout.steps:
            for keyid in _authorized(layout, step):
                name = FILENAME_FORMAT.format(step_name=step.name, keyid=keyid)
                source = Path(self.links) / name
                if not os.path.lexists(source):
                    continue
                try:
                    data = read_regular(source, "link", self.limit)
                except InputError as e:
                    self.note(step.name, f"{name} was not read: {e}")
                    continue
                why = _unparsable(data)
                if why is not None:  # in-toto would stop at it; it is a link that is not there
                    self.note(step.name, f"{name} is not an in-toto link: {why}")
                    continue
                (private / name).write_bytes(data)
                self.present[step.name] = self.present.get(step.name, 0) + 1

    def scan_folder(self, layout: Any) -> None:
        """Links of a step that no authorized key names: signed by someone the layout omits."""
        from in_toto.models.link import FILENAME_FORMAT

        steps = {s.name: s for s in layout.steps}
        expected = {
            FILENAME_FORMAT.format(step_name=s.name, keyid=k)
            for s in layout.steps
            for k in _authorized(layout, s)
        }
        try:
            with os.scandir(self.links) as it:
                names = sorted(e.name for _, e in zip(range(_MAX_SCANNED), it, strict=False))
        except OSError:
            return
        unknown: list[tuple[str, str]] = []
        for name in names:
            m = _LINK_FILE.fullmatch(name)
            if m is not None and m["step"] not in steps:
                unknown.append((name, m["step"]))
            if m is None or name in expected or m["step"] not in steps:
                continue
            step = m["step"]
            signer = self.claimed_signer(Path(self.links) / name) or m["keyid"]
            listed = [s.name for s in layout.steps if signer in _authorized_full(layout, s)]
            if listed:
                where = f"which the layout lists for {', '.join(listed)} but not for '{step}'"
            else:
                where = "which the layout does not list"
            self.note(step, f"{name} is signed by key {signer[:16]}, {where}")
        for name, step in unknown[:3]:
            close = difflib.get_close_matches(step, list(steps), n=1)
            self.findings.append(
                Finding(
                    "link-unknown-step",
                    f"'{name}' in '{self.links}' is a link for step '{step}', which the layout "
                    "does not have" + (f" (did you mean '{close[0]}'?)" if close else ""),
                    name,
                    "warning",
                )
            )

    def claimed_signer(self, path: Path) -> str | None:
        """The key id a link's signature names (read, not verified), for diagnostics.

        At most :data:`_MAX_PEEKED` such files are read, so a folder full of
        large stray links costs little; the others are named by their file name.
        """
        from provenance._internal.fsutil import read_regular

        self.peeked += 1
        if self.peeked > _MAX_PEEKED:
            return None
        try:
            doc = json.loads(read_regular(path, "link", self.limit))
        except (InputError, ValueError, RecursionError):
            return None
        ids = _raw_signature_keyids(doc)
        return ids[0] if ids else None

    def check_links(self, layout: Any, private: Path) -> None:
        """Each copied link against the key its name gives: which verify, and why not."""
        from in_toto.models.link import FILENAME_FORMAT, Link
        from in_toto.models.metadata import Metadata

        for step in layout.steps:
            good: dict[str, Any] = {}
            kept: set[str] = set()
            for keyid in _authorized(layout, step):
                name = FILENAME_FORMAT.format(step_name=step.name, keyid=keyid)
                path = private / name
                if not path.exists():
                    continue
                key = _verification_key(layout, keyid)
                try:
                    metadata = Metadata.from_dict(json.loads(path.read_bytes()))
                except Exception as e:
                    self.note(step.name, f"{name} is not an in-toto link: {e or type(e).__name__}")
                    continue
                try:
                    metadata.verify_signature(key)
                except Exception:
                    present = _signature_keyids(metadata)
                    if present and keyid not in present:
                        signed = ", ".join(k[:16] for k in present)
                        self.note(
                            step.name,
                            f"{name} is named for key {keyid[:16]} but signed by {signed}",
                        )
                    else:
                        self.note(
                            step.name,
                            f"{name}: its signature does not verify with key {keyid[:16]} "
                            "(changed after it was signed)",
                        )
                    continue
                try:
                    link = metadata.get_payload()
                except Exception as e:
                    self.note(step.name, f"{name} is not an in-toto link: {e or type(e).__name__}")
                    continue
                if not isinstance(link, Link):
                    # in-toto would verify it as a sublayout, running its inspections
                    # with its own defaults: it never reaches in-toto.
                    path.unlink()
                    self.fail(
                        "sublayout-refused",
                        f"{name} holds a layout (a sublayout), not a link; sublayouts are not "
                        "supported, and it is not verified",
                        name,
                        step=step.name,
                    )
                    continue
                if link.name != step.name:
                    path.unlink()
                    self.fail(
                        "link-step-mismatch",
                        f"{name} is a link for step '{link.name}', not '{step.name}': a "
                        "functionary's link replayed under another step's name",
                        name,
                        step=step.name,
                    )
                    continue
                good[key["keyid"]] = link
                kept.add(name)
            self.drop_unverified(layout, step, kept, private)
            self.agree(step, good)
            self.verified[step.name] = good

    def drop_unverified(self, layout: Any, step: Any, kept: set[str], private: Path) -> None:
        """Leave in-toto only the links verified here, so its chain is the report's chain."""
        from in_toto.models.link import FILENAME_FORMAT

        for keyid in _authorized(layout, step):
            name = FILENAME_FORMAT.format(step_name=step.name, keyid=keyid)
            if name not in kept and (private / name).exists():
                (private / name).unlink()

    def agree(self, step: Any, good: Mapping[str, Any]) -> None:
        """Every verified link of a step must record the same artifacts.

        in-toto compares them only above a threshold of one; below, it checks
        the rules against whichever link comes first, while a second link may
        claim other products. Which one a loader ties a model to must not be
        a matter of order.
        """
        links = list(good.items())
        if len(links) < 2:
            return
        from in_toto.models.link import FILENAME_FORMAT

        first_id, first = links[0]
        for keyid, link in links[1:]:
            if (link.materials, link.products) != (first.materials, first.products):
                a = FILENAME_FORMAT.format(step_name=step.name, keyid=first_id)
                b = FILENAME_FORMAT.format(step_name=step.name, keyid=keyid)
                self.fail(
                    "threshold-disagreement",
                    f"step '{step.name}': its links {a} and {b} record different materials or "
                    "products, so they do not vouch for the same work",
                    b,
                    step=step.name,
                )
                return

    def keys_honest(self, layout: Any) -> bool:
        """Each listed key under its own key id, and no key listed twice.

        A key listed again under a made-up id would count twice toward a
        threshold; in-toto does not recompute the ids.
        """
        ok = True
        seen: dict[str, str] = {}
        for keyid, key in layout.keys.items():
            computed = _computed_keyid(key)
            if computed is not None and computed != keyid:
                self.fail(
                    "layout-key-id",
                    f"the layout lists a key under id {keyid[:16]}, but that key's id is "
                    f"{computed[:16]}: a key under another id could count twice toward a "
                    "threshold",
                    self.layout_path,
                )
                ok = False
            material = json.dumps(key.get("keyval", {}), sort_keys=True)
            if material in seen:
                self.fail(
                    "layout-key-twice",
                    f"the layout lists one key twice, as {seen[material][:16]} and {keyid[:16]}",
                    self.layout_path,
                )
                ok = False
            seen[material] = keyid
        return ok

    def note(self, step: str, text: str) -> None:
        self.notes.setdefault(step, []).append(text)

    # ------------------------------------------------------------ in-toto's verdict

    def verify(self, metadata: Any, layout: Any, private: Path) -> None:
        from in_toto import exceptions as x
        from in_toto.verifylib import in_toto_verify

        try:
            in_toto_verify(metadata, self.keys, str(private), persist_inspection_links=False)
            self.rules_reached = "*"
        except x.LayoutExpiredError:
            self.fail(
                "layout-expired",
                f"the layout '{self.layout_path}' expired at {layout.expires}; its owner must "
                "sign a new one",
                self.layout_path,
            )
        except x.LinkNotFoundError as e:
            self.missing_links(layout, str(e))
        except x.ThresholdVerificationError as e:
            self.threshold(layout, str(e))
        except x.RuleVerificationError as e:
            self.rule(layout, str(e))
        except x.BadReturnValueError as e:
            self.fail("inspection-failed", f"an inspection failed: {e}")
        except x.SignatureVerificationError as e:
            self.fail("layout-signature", f"the layout does not verify: {e}", self.layout_path)
        except Exception as e:  # anything else in-toto raises denies (fail closed)
            self.fail(
                "pipeline-error",
                f"in-toto could not verify the pipeline: {type(e).__name__}: {e}",
            )
        else:
            self.commands(layout)
        # Whatever stopped in-toto: a step that failed is said, as every link
        # was verified before (in-toto records exit codes but checks none).
        self.failed_steps(layout)

    def missing_links(self, layout: Any, message: str) -> None:
        step = _step_of(message)
        s = _step(layout, step)
        if s is None:
            self.fail("link-missing", f"a step lacks its links: {message}")
            return
        from in_toto.models.link import FILENAME_FORMAT

        expected = [FILENAME_FORMAT.format(step_name=s.name, keyid=k) for k in s.pubkeys]
        present = self.present.get(s.name, 0)
        if s.threshold == 1:
            text = (
                f"step '{s.name}' has no link from a functionary the layout lists for it "
                f"(expected {_or(expected)} in '{self.links}')"
            )
        else:
            text = (
                f"step '{s.name}' needs links from {s.threshold} functionaries the layout lists "
                f"for it; {present} of {', '.join(expected)} are in '{self.links}'"
            )
        self.fail(
            "link-missing",
            self.with_notes(text, s.name),
            expected[0] if expected else None,
            step=s.name,
        )

    def threshold(self, layout: Any, message: str) -> None:
        step = _step_of(message)
        if "different artifacts" in message:
            files = re.findall(r"'([^']+\.link)'", message)
            s = next(
                (x for x in layout.steps if any(f.startswith(f"{x.name}.") for f in files)), None
            )
            name = s.name if s is not None else "?"
            self.fail(
                "threshold-disagreement",
                f"step '{name}': its functionaries' links {' and '.join(files)} record different "
                "materials or products, so they do not vouch for the same work",
                files[-1] if files else None,
                step=name,
            )
            return
        s = _step(layout, step)
        if s is None:
            self.fail("threshold-not-met", message)
            return
        found = len(self.verified.get(s.name, {}))
        text = (
            f"step '{s.name}' needs links signed by {s.threshold} different functionaries the "
            f"layout lists; {found} verif{'y' if found != 1 else 'ies'}"
        )
        self.fail("threshold-not-met", self.with_notes(text, s.name), step=s.name)

    def with_notes(self, text: str, step: str) -> str:
        notes = self.notes.get(step, [])
        if not notes:
            return text
        return f"{text}: " + "; ".join(notes[:_MAX_NAMED]) + _more(len(notes))

    def rule(self, layout: Any, message: str) -> None:
        from in_toto import rulelib
        from in_toto.verifylib import RULE_TRACE

        step = str(RULE_TRACE.get("source_name", "?"))
        kind = str(RULE_TRACE.get("source_type", "materials"))
        self.rules_reached = step  # in-toto checks the steps in the layout's order
        item = _step(layout, step) or next((i for i in layout.inspect if i.name == step), None)
        first_line = message.split("\n", 1)[0]
        if item is None:
            self.fail("artifact-rule", f"an artifact rule failed: {first_line}")
            return
        rules = item.expected_materials if kind == "materials" else item.expected_products
        trace = RULE_TRACE.get("trace", [])
        index = len(trace)
        if index >= len(rules):
            self.fail("artifact-rule", f"step '{step}': {first_line}", step=step)
            return
        rule = rules[index]
        queue = list(trace[-1]["queue"]) if trace else list(RULE_TRACE.get(kind, []))
        data = rulelib.unpack_rule(rule)
        shown = " ".join(rule)
        link = next(iter(self.verified.get(step, {}).values()), None)
        links = {k: next(iter(v.values())) for k, v in self.verified.items() if v}
        noun = kind[:-1]
        if data["rule_type"] == "require":
            target = data["pattern"]
            self.fail(
                "artifact-rule",
                f"step '{step}' {kind}: '{target}' is required by rule '{shown}' and is "
                f"not among them",
                target,
                step=step,
            )
            return
        files = sorted(fnmatch.filter(queue, data["pattern"]))
        reasons = [
            f"{noun} '{f}', which {_why(f, rules[:index], kind, link, links)}"
            for f in files[:_MAX_NAMED]
        ]
        text = (
            f"step '{step}' {kind}: rule '{shown}' refuses "
            + "; ".join(reasons)
            + _more(len(files))
        )
        self.fail("artifact-rule", text, files[0] if files else None, step=step)

    def failed_steps(self, layout: Any) -> None:
        for s in layout.steps:
            for keyid, link in self.verified.get(s.name, {}).items():
                code = (
                    link.byproducts.get("return-value")
                    if isinstance(link.byproducts, dict)
                    else None
                )
                # No value (in-toto-record's links) is no claim; anything but 0 fails,
                # and so does a value that is not an integer.
                absent = "return-value" not in (link.byproducts or {})
                if not absent and (not isinstance(code, int) or isinstance(code, bool) or code):
                    from in_toto.models.link import FILENAME_FORMAT

                    name = FILENAME_FORMAT.format(step_name=s.name, keyid=keyid)
                    self.fail(
                        "step-failed",
                        f"step '{s.name}': its command exited with {code} ({name}); a failed "
                        "step's products are not trusted",
                        name,
                        step=s.name,
                    )

    def commands(self, layout: Any) -> None:
        """A step that ran another command than the layout expects: a warning, as in-toto says."""
        for s in layout.steps:
            expected = list(s.expected_command)
            if not expected:
                continue
            for link in self.verified.get(s.name, {}).values():
                if list(link.command) != expected:
                    self.findings.append(
                        Finding(
                            "command-differs",
                            f"step '{s.name}' ran {' '.join(map(str, link.command))!r}, the layout "
                            f"expects {' '.join(map(str, expected))!r} (in-toto only warns)",
                            severity="warning",
                        )
                    )
                    break

    # ------------------------------------------------------------ the report

    def step_reports(self, layout: Any) -> None:
        names = [s.name for s in layout.steps]
        reached = self.rules_reached
        if reached == "*":
            checked = set(names)
        elif reached in names:
            checked = set(names[: names.index(reached) + 1])
        else:
            checked = set()
        for s in layout.steps:
            links = self.verified.get(s.name, {})
            link = next(iter(links.values()), None)
            code = None
            if link is not None and isinstance(link.byproducts, dict):
                value = link.byproducts.get("return-value")
                code = value if isinstance(value, int) else None
            self.steps.append(
                StepReport(
                    name=s.name,
                    threshold=s.threshold,
                    functionaries=tuple(s.pubkeys),
                    signed_by=tuple(links),
                    exit_code=code,
                    command=tuple(str(c) for c in link.command) if link is not None else (),
                    materials=_digests(link.materials) if link is not None else {},
                    products=_digests(link.products) if link is not None else {},
                    ok=len(links) >= s.threshold
                    and s.name not in self.failed
                    and s.name in checked,
                    checked=s.name in checked,
                )
            )


def _why(
    path: str, earlier: Sequence[list[str]], kind: str, link: Any, links: Mapping[str, Any]
) -> str:
    """Why no rule before the failing one took ``path``: what the earlier step recorded."""
    from in_toto import rulelib

    mine = getattr(link, kind, {}).get(path, {}) if link is not None else {}
    for rule in earlier:
        data = rulelib.unpack_rule(rule)
        if data["rule_type"] != "match":
            continue
        rest = path
        prefix = data.get("source_prefix")
        if prefix:
            lead = prefix.rstrip("/") + "/"
            if not path.startswith(lead):
                continue
            rest = path[len(lead) :]
        if not fnmatch.fnmatch(rest, data["pattern"]):
            continue
        source, dest_type = data["dest_name"], data["dest_type"]
        dest_prefix = data.get("dest_prefix")
        wanted = f"{dest_prefix.rstrip('/')}/{rest}" if dest_prefix else rest
        other = links.get(source)
        if other is None:
            return (
                f"should be one of the {dest_type} of step '{source}', which has no verified link"
            )
        theirs = getattr(other, dest_type, {}).get(wanted)
        as_ = f" as '{wanted}'" if wanted != path else ""
        if theirs is None:
            return f"is not among the {dest_type} of step '{source}'{as_} (rule '{' '.join(rule)}')"
        a, b = mine.get("sha256", "?"), theirs.get("sha256", "?")
        return (
            f"differs from the {dest_type[:-1]} step '{source}' recorded{as_} "
            f"(sha256 {a[:12]}… here, {b[:12]}… there): it changed between the steps"
        )
    if kind == "products" and link is not None and path in link.materials:
        return "was there before the step ran, and no rule lets the step keep or change it"
    return "is allowed by no rule before it"


def _unparsable(data: bytes) -> str | None:
    """Why in-toto could not read these bytes as link metadata, or None if it can."""
    from in_toto.models.metadata import Metadata

    try:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            return "not a JSON object"
        Metadata.from_dict(doc)
    except Exception as e:  # json, in-toto and securesystemslib each raise their own
        if type(e).__name__ == "InvalidMetadata":
            return "neither a DSSE envelope of an in-toto payload nor an in-toto Metablock"
        return str(e) or type(e).__name__
    return None


def _digests(artifacts: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(artifacts, dict):
        for name, digests in artifacts.items():
            if isinstance(digests, dict) and isinstance(digests.get("sha256"), str):
                out[str(name)] = digests["sha256"]
    return out


def _computed_keyid(key: Mapping[str, Any]) -> str | None:
    """The key id securesystemslib computes for a key dictionary (None: cannot tell)."""
    try:
        from securesystemslib.signer._utils import compute_default_keyid

        return str(compute_default_keyid(key["keytype"], key["scheme"], dict(key["keyval"])))
    except Exception:  # another securesystemslib, or a malformed key: in-toto decides
        return None


def _authorized(layout: Any, step: Any) -> list[str]:
    """The key ids in-toto looks for a step's links under: each listed key and its subkeys."""
    out: list[str] = []
    for keyid in step.pubkeys:
        out.append(keyid)
        out.extend(layout.keys.get(keyid, {}).get("subkeys", {}) or {})
    return out


def _authorized_full(layout: Any, step: Any) -> set[str]:
    return set(_authorized(layout, step))


def _verification_key(layout: Any, keyid: str) -> dict[str, Any]:
    key = layout.keys.get(keyid)
    if key is not None:
        return dict(key)
    for main in layout.keys.values():
        if keyid in (main.get("subkeys") or {}):
            return dict(main)
    return {"keyid": keyid}


def _signature_keyids(metadata: Any) -> list[str]:
    sigs = getattr(metadata, "signatures", None)
    if isinstance(sigs, dict):  # DSSE envelope: keyid -> Signature
        return [str(k) for k in sigs]
    if isinstance(sigs, list):  # Metablock
        return [str(s.get("keyid")) for s in sigs if isinstance(s, dict)]
    return []


def _raw_signature_keyids(doc: Any) -> list[str]:
    if not isinstance(doc, dict) or not isinstance(doc.get("signatures"), list):
        return []
    return [
        s["keyid"]
        for s in doc["signatures"]
        if isinstance(s, dict) and isinstance(s.get("keyid"), str)
    ]


def _step(layout: Any, name: str | None) -> Any:
    return next((s for s in layout.steps if s.name == name), None)


def _step_of(message: str) -> str | None:
    m = re.search(r"Step '([^']*)'", message)
    return m.group(1) if m else None


def _or(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _more(n: int) -> str:
    return f" (and {n - _MAX_NAMED} more)" if n > _MAX_NAMED else ""


@contextlib.contextmanager
def _in_toto_log() -> Iterator[list[str]]:
    """in-toto's warnings (a command other than the layout expects...) as strings."""
    import in_toto.log  # noqa: F401 (importing it adds the stderr handler this replaces)

    logger = logging.getLogger("in_toto")
    caught: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                caught.append(record.getMessage())

    handlers = logger.handlers[:]
    for h in handlers:
        logger.removeHandler(h)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        yield caught
    finally:
        logger.removeHandler(collect)
        for h in handlers:
            logger.addHandler(h)
