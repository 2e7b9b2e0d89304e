"""Verification: a signature over the exact bytes, then the files, then attestations.

:func:`check_model` collects *every* finding (each with a code, words and the
file it concerns) into a :class:`VerificationReport`; :func:`verify` is the
raising wrapper most callers want. The order matters for safety:

1. the bundle is read (size-capped) and the signature checked by a trusted
   verifier, which returns the exact signed bytes;
2. only those bytes are parsed into the signed manifest, and only then are
   its hashing settings trusted;
3. the tree is walked *once*; signed files are hashed as the signature
   recorded, files the signature does not list are reported from the walk
   alone and never read;
4. attestations, when asked for, are checked against the verified root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from provenance.bundle import Bundle, default_signature_path
from provenance.errors import Hint, InputError, ProvenanceError, UsageError, VerificationError
from provenance.findings import Finding, errors, first_error_summary
from provenance.hashing import (
    BYTECODE_PATTERNS,
    DEFAULT_IGNORE_PATTERNS,
    FileEntry,
    Ignore,
    LinkPolicy,
    Progress,
    hash_digests,
    is_pattern,
    normalize_ignore,
    relative_ignores,
    walk,
)
from provenance.manifest import (
    DEFAULT_IGNORE_PATHS,
    Diff,
    Manifest,
    Resource,
    Serialization,
    diff,
    split_shard,
)

if TYPE_CHECKING:
    from provenance._internal.engine import Kept
    from provenance.attest import AttestationReport
    from provenance.policy import Decision, Policy
    from provenance.signing import SignerInfo, Verified, Verifier

__all__ = [
    "VerificationReport",
    "VerificationResult",
    "check_attestations_only",
    "check_model",
    "check_verified",
    "verify",
]


@dataclass(frozen=True)
class VerificationReport:
    """Everything one verification found, whether or not it passed."""

    model_path: Path
    signature_path: Path | None
    findings: tuple[Finding, ...] = ()
    #: The signed manifest, once the signature verified (None before that).
    manifest: Manifest | None = None
    verified: Verified | None = None
    #: Files present but not signed that were let through (never read).
    unsigned_files: tuple[str, ...] = ()
    attestations: AttestationReport | None = None
    #: Attestations only: the digest they were checked against when the caller
    #: pinned it instead of hashing the model (then there is no manifest).
    subject_digest: str | None = None
    #: Bytes of every regular file the walk found (signed or not); 0 if none was walked.
    total_bytes: int = field(default=0, compare=False)

    @property
    def ok(self) -> bool:
        if self.manifest is None and self.subject_digest is None:
            return False
        return not errors(self.findings)

    @property
    def root_digest(self) -> str | None:
        if self.manifest is not None:
            return self.manifest.root_digest
        return self.subject_digest

    @property
    def subject_source(self) -> str | None:
        """Attestations only: ``given`` (a pinned digest) or ``hash`` (a fresh hash)."""
        if self.signature_path is not None or self.attestations is None:
            return None
        return "given" if self.subject_digest is not None else "hash"

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f.message for f in self.findings if f.severity == "warning")

    def raise_for_failure(self) -> None:
        """Raise :class:`VerificationError` naming the first failure, with all in details."""
        errs = errors(self.findings)
        if not errs and (self.manifest is not None or self.subject_digest is not None):
            return
        if not errs:  # cannot happen: no manifest means a finding said why
            raise VerificationError("model was not verified")
        first = errs[0]
        lead = "model does not match its signature: " if first.code.startswith("file-") else ""
        raise VerificationError(
            first_error_summary(errs, lead),
            details=[f.message for f in errs],
            code=first.code,
            hint=first.hint,
        )

    def to_json(self) -> dict[str, Any]:
        """Every field of the report, passed or failed (the ``verify --json`` body).

        The same fields whatever the outcome, so a CI step reads one shape:
        ``signer`` (the one that counted first, once a signature verified)
        and ``signers`` (all that counted) in the one :class:`SignerInfo`
        shape; ``findings`` with every problem, warning and note; the
        ``manifest`` only once there is one to trust (the signed one after the
        signature verified, or the fresh hash attestations were checked
        against), since an unverified one is a claim nobody checked.
        """
        m = self.manifest
        out: dict[str, Any] = {
            "ok": self.ok,
            "model": str(self.model_path),
            "signature": str(self.signature_path) if self.signature_path else None,
            "root_digest": self.root_digest,
        }
        if self.verified is not None:
            out["signer"] = self.verified.signer.to_json()
        out["signers"] = [s.to_json() for s in self.verified.signers] if self.verified else []
        out["files"] = len(m.files) if m is not None else 0
        out["unsigned_files_ignored"] = list(self.unsigned_files)
        out["findings"] = [f.to_json() for f in self.findings]
        if m is not None:
            out["manifest"] = m.to_json()
        if self.attestations is not None:
            out["attestations"] = self.attestations.to_json()
        if self.subject_source is not None:
            out["subject_source"] = self.subject_source
        return out


@dataclass(frozen=True)
class VerificationResult:
    """A verified model: who signed it and the manifest its files now match."""

    manifest: Manifest
    verified: Verified
    signature_path: Path
    unsigned_files_ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    report: VerificationReport | None = field(default=None, repr=False, compare=False)

    @property
    def root_digest(self) -> str:
        return self.manifest.root_digest

    @property
    def signer(self) -> str:
        """Who signed, in words (``signer_info`` has the fields)."""
        return self.verified.signer.description

    @property
    def signer_info(self) -> SignerInfo:
        return self.verified.signer

    @property
    def method(self) -> str:
        return self.verified.method


def signed_manifest(verified: Verified) -> Manifest:
    """Parse the manifest from the bytes the verifier vouched for, and only those."""
    from provenance.dsse import INTOTO_PAYLOAD_TYPE

    if verified.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"signed payload type is {verified.payload_type!r}, not an in-toto statement",
            code="statement-invalid",
        )
    from provenance.intoto import Statement

    try:
        return Manifest.from_statement(Statement.parse(verified.payload))
    except InputError as e:
        raise VerificationError(
            f"signed statement is unusable: {e}", code="statement-invalid"
        ) from None


def shown_name(name: str, single: bool, path: Path) -> str:
    """A file as the user knows it: a single-file model by its own name, not '.'."""
    return path.name if single else name


def _ancestors(names: Iterable[str]) -> set[str]:
    # The distinct parents first (a few hundred folders for 200,000 files),
    # then each one's own ancestors.
    parents = {name.rpartition("/")[0] for name in names}
    parents.discard("")
    out: set[str] = set()
    for parent in parents:
        while parent and parent not in out:
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def _under(name: str, folders: set[str]) -> bool:
    cut = name.rfind("/")
    while cut > 0:
        if name[:cut] in folders:
            return True
        cut = name.rfind("/", 0, cut)
    return False


def check_model(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_unsigned_files: bool = False,
    attestations: bool = False,
    attestations_path: str | os.PathLike[str] | None = None,
    attestation_verifier: Verifier | None = None,
    require_inputs: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    keep: Kept | None = None,
) -> VerificationReport:
    """Verify a model and collect every finding; raises only for unusable input.

    A missing model or an unreadable, malformed signature is an
    :class:`InputError` (nothing could be checked). Everything that was
    checked and failed is a finding in the report. With ``attestations``
    (implied by ``attestations_path`` or ``require_inputs``), the
    attestations are checked against the verified root digest
    (:func:`provenance.attest.verify_attestations`); a missing signature is
    then still bad input: checking attestations without one is
    :func:`check_attestations_only`, an explicit choice.
    """
    from provenance._internal.fsutil import refuse_bundle_as_model

    refuse_bundle_as_model(model_path)  # a signature or attestations file given as the model
    path = Path(model_path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"model path '{path}' does not exist", code="not-found")
    attestations = attestations or attestations_path is not None or require_inputs
    try:
        bundle = Bundle.read(sig_path)
    except InputError as e:
        if attestations and signature_path is None and e.code == "signature-missing":
            raise InputError(
                f"no signature at '{sig_path}'; sign the model, or check its attestations alone "
                "against a digest you pin or a fresh hash of the model",
                code="signature-missing",
                hint=Hint.ATTESTATIONS_ONLY,
            ) from None
        if signature_path is not None and e.hint == Hint.SIGNATURE_PATH:
            e.hint = None  # the caller named this path: telling them to name one helps nobody
        raise
    try:
        verified = verifier.verify(bundle)
    except VerificationError as e:
        return VerificationReport(path, sig_path, tuple(_refusal(e)))
    return check_verified(
        path,
        verified,
        signature_path=sig_path,
        ignore_paths=ignore_paths,
        ignore_unsigned_files=ignore_unsigned_files,
        attestations=attestations,
        attestations_path=attestations_path,
        attestation_verifier=attestation_verifier or verifier,
        require_inputs=require_inputs,
        workers=workers,
        progress=progress,
        keep=keep,
    )


def _refusal(e: VerificationError) -> list[Finding]:
    """A verifier's refusal as findings: the reason, then each detail as a note."""
    return [
        Finding(
            e.code if e.code != "verification-failed" else "signature-invalid",
            str(e),
            hint=e.hint,
        ),
        *(Finding("signature-invalid", d, severity="info") for d in e.details[1:]),
    ]


def check_verified(
    model_path: str | os.PathLike[str],
    verified: Verified,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_unsigned_files: bool = False,
    attestations: bool = False,
    attestations_path: str | os.PathLike[str] | None = None,
    attestation_verifier: Verifier | None = None,
    require_inputs: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    keep: Kept | None = None,
) -> VerificationReport:
    """Check a model against a signature a trusted verifier already accepted.

    :func:`check_model` after its ``verifier.verify(bundle)``; a policy,
    which verifies several bundles and picks the statement enough signers
    signed, calls it with that one. ``signature_path`` is left out of the
    walk (it is the file the model's signature lives in, not the model's).
    Attestations are checked only with ``attestation_verifier``.

    ``keep`` receives the bytes of every signed file as they were hashed
    (see :func:`provenance.hashing.hash_digests`); they are the model's
    verified content only if the report holds no error.
    """
    path = Path(model_path)
    sig_path = Path(signature_path) if signature_path else default_signature_path(path)
    attestations = attestations or attestations_path is not None or require_inputs
    findings: list[Finding] = []

    def report(**kw: Any) -> VerificationReport:
        return VerificationReport(path, sig_path, tuple(findings), **kw)

    try:
        expected = signed_manifest(verified)
    except VerificationError as e:
        findings.extend(_refusal(e))
        return report()
    if verified.legacy:
        findings.append(
            Finding(
                "signature-legacy",
                "signature uses the pre-0.3 model-signing encoding; re-sign the model",
                severity="warning",
            )
        )
    if not len(expected):
        findings.append(
            Finding("signature-empty", "the signature lists no files, so it vouches for nothing")
        )
        return report(verified=verified)

    single = expected.files == ["."]
    if single and path.is_dir():
        findings.append(
            Finding("kind-mismatch", f"signature is for a single file, but '{path}' is a folder")
        )
        return report(verified=verified)
    if not single and not path.is_dir():
        findings.append(
            Finding("kind-mismatch", f"signature is for a folder, but '{path}' is a single file")
        )
        return report(verified=verified)

    unsigned: list[str] = []
    total = [0]
    try:
        unsigned = _check_files(
            path,
            sig_path,
            expected,
            ignore_paths,
            ignore_unsigned_files,
            findings,
            workers,
            progress,
            total,
            keep,
        )
    except ProvenanceError as e:
        findings.append(Finding(e.code, f"model cannot be checked: {e}", hint=e.hint))

    attestation_report = None
    if attestations:
        if attestation_verifier is None:
            raise UsageError("checking attestations needs the verifier of their signers")
        from provenance.attest import verify_attestations

        attestation_report = verify_attestations(
            path,
            attestation_verifier,
            expected.root_digest,
            attestations_path=attestations_path,
            require_inputs=require_inputs,
        )
        findings.extend(attestation_report.findings())
    return report(
        manifest=expected,
        verified=verified,
        unsigned_files=tuple(unsigned),
        attestations=attestation_report,
        total_bytes=total[0],
    )


def _check_files(
    path: Path,
    sig_path: Path,
    expected: Manifest,
    ignore_paths: Iterable[str | os.PathLike[str]],
    ignore_unsigned: bool,
    findings: list[Finding],
    workers: int | None,
    progress: Progress | None,
    total: list[int] | None = None,
    kept: Kept | None = None,
) -> list[str]:
    """One walk, hash only what is signed, name every difference; returns unsigned files.

    ``total``, if given, receives the bytes of every regular file walked (signed or not).
    """
    serialization = expected.serialization
    single = expected.files == ["."]
    signed_files = set(expected.files)
    given = [os.fspath(p) for p in ignore_paths]
    user_patterns = [normalize_ignore(p) for p in given if is_pattern(p)]
    user_exact = relative_ignores(path, [p for p in given if not is_pattern(p)])
    ignore = Ignore()
    shadowing: set[str] = set()
    if not single:
        wanted = [
            *serialization.ignore_paths,
            *DEFAULT_IGNORE_PATHS,
            *user_exact,
            # The signature and its co-signature folder (cosignature_dir).
            *relative_ignores(path, [os.path.abspath(sig_path), os.path.abspath(sig_path) + ".d"]),
        ]
        # A file the signature lists is always checked, whatever an ignore list says.
        keep = _ancestors(signed_files) | signed_files
        exact = [p for p in dict.fromkeys(wanted) if p not in signed_files]
        shadowing = {p for p in exact if p in keep}
        exact = [p for p in exact if p not in shadowing]
        ignore = Ignore(exact, [*DEFAULT_IGNORE_PATTERNS, *user_patterns], keep)
    found = walk(path, ignore=ignore, links=LinkPolicy(follow=serialization.allow_symlinks))
    for name, by in found.ignored:
        if by in DEFAULT_IGNORE_PATTERNS and by not in BYTECODE_PATTERNS:
            # Left out by default, so not covered: say so, louder for notebook
            # checkpoints (code a notebook server may run) than for VCS litter.
            runnable = by == ".ipynb_checkpoints"
            findings.append(
                Finding(
                    "default-ignored",
                    f"'{name}' is left out by default and not covered by the signature"
                    + ("; it may hold code a notebook server runs" if runnable else ""),
                    name,
                    "warning" if runnable else "info",
                )
            )
        if by in BYTECODE_PATTERNS:
            findings.append(
                Finding(
                    "bytecode-unsigned",
                    f"'{name}' is Python bytecode the signature does not cover (left out); "
                    "Python may run it instead of the signed source unless "
                    "PYTHONPYCACHEPREFIX points elsewhere or it is deleted",
                    name,
                    "warning",
                )
            )
    for w in found.unmatched([*user_exact, *user_patterns]):
        if w in shadowing or w in signed_files:
            findings.append(
                Finding(
                    "ignore-signed",
                    f"ignore '{w}' names what the signature covers; it is checked regardless",
                    w,
                    "info",
                )
            )
        else:
            findings.append(
                Finding(
                    "ignore-unmatched",
                    f"ignore '{w}' matched nothing in the model",
                    severity="warning",
                )
            )

    if total is not None:
        total[0] = sum(e.size for e in found.files)
    to_hash = []
    unsigned: list[str] = []
    for entry in found.files:
        if entry.name in signed_files:
            to_hash.append(entry)
        elif not (shadowing and _under(entry.name, shadowing)):
            unsigned.append(entry.name)
    refused_unsigned: dict[str, str] = {}
    for r in found.refused:
        if r.name in signed_files:
            findings.append(
                Finding(r.code, f"model cannot be checked: {r.reason}", r.name, hint=r.hint)
            )
        elif not (shadowing and _under(r.name, shadowing)):
            unsigned.append(r.name)
            refused_unsigned[r.name] = r.reason
    resized_early: list[str] = []
    if serialization.method == "shards":
        # An empty file has no shard, so no signature lists it: it is reported,
        # not failed (the signature could not have covered it).
        empty = {e.name for e in found.files if e.size == 0}
        for f in unsigned:
            if f in empty:
                findings.append(
                    Finding(
                        "file-empty-unsigned",
                        f"'{f}' is empty; a shard signature cannot cover an empty file",
                        f,
                        "warning",
                    )
                )
        unsigned = [f for f in unsigned if f not in empty]
        # The signed shards give each file's size: a file of another size has
        # changed, and is never hashed (a 1 TB sparse file would be 10^9 shards).
        sizes: dict[str, int] = {}
        for res in expected.resources:
            file, _, end = split_shard(res.name)
            sizes[file] = max(sizes.get(file, 0), end)
        same_size = []
        for e in to_hash:
            if sizes.get(e.name, e.size) != e.size:
                resized_early.append(e.name)
            else:
                same_size.append(e)
        to_hash = same_size

    if kept is not None:
        _check_room(to_hash)
    names, digests = hash_digests(
        to_hash, serialization, workers=workers, progress=progress, keep=kept
    )
    if expected.lists(names, digests):
        changes = Diff()  # the common case, without a resource object per file
    else:
        algorithm = serialization.resource_algorithm
        changes = diff(
            expected, [Resource(n, algorithm, d) for n, d in zip(names, digests, strict=True)]
        )
    refused_names = {r.name for r in found.refused} | set(resized_early)
    for f in resized_early:
        findings.append(
            Finding(
                "file-modified",
                f"'{shown_name(f, single, path)}' was modified (its size changed)",
                f,
            )
        )

    def shown(f: str) -> str:
        return shown_name(f, single, path)

    for f in changes.modified:
        findings.append(Finding("file-modified", f"'{shown(f)}' was modified", f))
    for f in changes.resized:
        findings.append(
            Finding("file-modified", f"'{shown(f)}' was modified (its size changed)", f)
        )
    for f in changes.missing:
        if f not in refused_names:
            findings.append(Finding("file-missing", f"'{shown(f)}' is missing", f))
    if ignore_unsigned:
        for f in unsigned:
            findings.append(
                Finding(
                    "file-unsigned", f"'{f}' is not covered by the signature (ignored)", f, "info"
                )
            )
        return unsigned
    for f in unsigned:
        why = f" ({refused_unsigned[f]})" if f in refused_unsigned else ""
        findings.append(
            Finding(
                "file-unsigned",
                f"'{f}' is not covered by the signature{why}",
                f,
                hint=Hint.IGNORE_UNSIGNED,
            )
        )
    return []


def _check_room(entries: Iterable[FileEntry]) -> None:
    """Refuse a verified load the memory cannot hold, before any of it is read.

    A signature of the files method records no sizes, so a signed file
    grown into a huge sparse file on disk would otherwise be read into
    memory whole (and the machine run out of it) before its digest fails.
    """
    need = sum(e.size for e in entries)
    room = _memory_room()
    if room is not None and need > room:
        raise InputError(
            f"loading the model would take {need} bytes of memory, more than the "
            f"{room} available; a signed file may have grown on disk",
            code="out-of-memory",
        )


def _memory_room() -> int | None:
    """Memory this process may still use: the machine's available memory, or its cgroup's."""
    room: int | None = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    room = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", "rb") as f:
            used = int(f.read().strip())
        if limit != b"max":
            left = int(limit) - used
            room = left if room is None else min(room, left)
    except (OSError, ValueError):
        pass
    return room


def check_attestations_only(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    *,
    attestations_path: str | os.PathLike[str] | None = None,
    serialization: Serialization | None = None,
    subject_digest: str | None = None,
    require_inputs: bool = False,
) -> VerificationReport:
    """Check a target's attestations without a model signature (a dataset, say).

    The subject is ``subject_digest`` when the caller pins it (nothing is
    hashed), else the root digest of a fresh hash made with the caller's
    settings (the defaults unless given). A signature file beside the target
    is never read, neither for its digest nor for its settings: nobody
    verified it. ``attestations_path`` and ``require_inputs`` are those of
    :func:`provenance.attest.verify_attestations`.
    """
    from provenance.attest import verify_attestations
    from provenance.errors import UsageError
    from provenance.hashing import hash_as, serialization_for

    path = Path(model_path)
    manifest = None
    if subject_digest is not None:
        if serialization is not None:
            raise UsageError(
                "a pinned subject digest is not hashed: give it or hashing settings, not both"
            )
        digest = subject_digest.strip().lower().removeprefix("sha256:")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UsageError(
                f"subject digest {subject_digest!r} is not a SHA-256 root digest (64 hex digits)",
                code="subject-digest-invalid",
                hint=Hint.SUBJECT_DIGEST,
            )
        if not path.exists() and not path.is_symlink() and attestations_path is None:
            raise InputError(f"'{path}' does not exist", code="not-found")
    else:
        if not path.exists() and not path.is_symlink():
            raise InputError(f"'{path}' does not exist", code="not-found")
        manifest = hash_as(path, serialization or serialization_for(path))
        digest = manifest.root_digest
    attestation_report = verify_attestations(
        path,
        verifier,
        digest,
        attestations_path=attestations_path,
        require_inputs=require_inputs,
    )
    return VerificationReport(
        path,
        None,
        tuple(attestation_report.findings()),
        manifest=manifest,
        attestations=attestation_report,
        subject_digest=digest if manifest is None else None,
    )


@overload
def verify(
    model_path: str | os.PathLike[str],
    verifier: Verifier,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_unsigned_files: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerificationResult: ...


@overload
def verify(
    model_path: str | os.PathLike[str],
    *,
    policy: Policy | str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
    attestations_path: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Decision: ...


def verify(
    model_path: str | os.PathLike[str],
    verifier: Verifier | None = None,
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    attestations_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_unsigned_files: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> VerificationResult | Decision:
    """Verify a model against its signature; raise :class:`VerificationError` if not.

    The signature is checked first, over the exact signed bytes; only then is
    the statement parsed, and the model re-hashed with the serialization the
    signer recorded. Every file the signature lists must match and, unless
    ``ignore_unsigned_files``, no other file may be present.

    With ``policy`` (a loaded :class:`~provenance.policy.Policy` or a policy
    file's path) instead of a verifier, the policy decides: the result is its
    :class:`~provenance.policy.Decision`, and
    :class:`~provenance.policy.PolicyDenied` is raised unless it allows the
    model (warn and audit modes allow, with every reason in the decision).
    """
    if policy is not None:
        from provenance import policy as policies

        if verifier is not None or ignore_paths or ignore_unsigned_files:
            raise UsageError(
                "give a verifier or a policy, not both: the policy says whom to trust "
                "and which unsigned files may be present"
            )
        loaded = policy if isinstance(policy, policies.Policy) else policies.load(policy)
        decision = policies.evaluate(
            loaded,
            model_path,
            signature_path=signature_path,
            attestations_path=attestations_path,
            workers=workers,
            progress=progress,
        )
        decision.raise_for_denial()
        return decision
    if verifier is None:
        raise UsageError("give a verifier (who may sign) or a policy")
    if attestations_path is not None:
        raise UsageError("attestations are checked by check_model() or under a policy")
    report = check_model(
        model_path,
        verifier,
        signature_path=signature_path,
        ignore_paths=ignore_paths,
        ignore_unsigned_files=ignore_unsigned_files,
        workers=workers,
        progress=progress,
    )
    report.raise_for_failure()
    assert report.manifest is not None and report.verified is not None
    assert report.signature_path is not None
    return VerificationResult(
        manifest=report.manifest,
        verified=report.verified,
        signature_path=report.signature_path,
        unsigned_files_ignored=report.unsigned_files,
        warnings=report.warnings,
        report=report,
    )
