"""Verified loading: a model's bytes read once, hashed, checked, and handed on.

Every other tool verifies a folder and then lets the loader open the files
again by path, so a file swapped in between loads unverified, and a large
model is read twice. :func:`open_verified` closes that gap::

    import provenance

    with provenance.open_verified("my-model/", policy="policy.yaml") as model:
        config = json.loads(model.read("config.json"))
        weights = model.buffer("model.safetensors")  # the memory tensors are built over

Each signed file is read once, into memory of its own (an anonymous map for
a large file; pages are committed as they are read, so the model costs its
own size and nothing more), hashed from that memory by the engine's worker
threads, and compared with the signed manifest. Only then does the handle
give the bytes out, and it gives out exactly those bytes: a file changed on
disk a moment later changes nothing here, and one changed while it was read
fails its digest. The policy's format rules and scan look at the same
memory, so what was checked is what loads.

The pipeline is the one ``provenance verify --policy`` runs (the policy
evaluation, with the engine keeping what it read); with a plain verifier it
is :func:`provenance.check_model`'s.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from provenance.errors import UsageError, VerificationError

if TYPE_CHECKING:
    import mmap

    from provenance.manifest import Manifest
    from provenance.policy import Decision, Policy
    from provenance.signing import Verifier
    from provenance.verification import VerificationReport

__all__ = ["PolicyWarning", "VerifiedModel", "open_verified"]


class PolicyWarning(UserWarning):
    """A policy in ``warn`` or ``audit`` mode let a failing model load."""


class VerifiedModel:
    """The verified content of a model: each signed file's bytes, as hashed.

    Get one from :func:`open_verified`. ``files`` lists what may be read: the
    signed files, by their names relative to the model folder (a single-file
    model by its own file name). Nothing here opens a path.

    :meth:`buffer` hands out the memory itself (writable: the caller may
    build tensors over it and keep them after :meth:`close`, which only
    drops this handle's references); :meth:`read` returns ``bytes``.
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        report: VerificationReport,
        decision: Decision | None,
        data: dict[str, bytes | bytearray | mmap.mmap],
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.report = report
        #: The policy's decision (None when a plain verifier was used).
        self.decision = decision
        self.single = manifest.files == ["."]
        self._data: dict[str, bytes | bytearray | mmap.mmap] | None = data
        self.files: tuple[str, ...] = tuple(self.path.name if self.single else n for n in data)
        #: Where the files came from, when a loader knows: the Hub snapshot
        #: (:class:`provenance.hub.Snapshot`) for a model loaded by repository id.
        self.origin: Any = None

    @property
    def root_digest(self) -> str:
        return self.manifest.root_digest

    def _get(self, name: str) -> bytes | bytearray | mmap.mmap:
        if self._data is None:
            raise ValueError("the verified model is closed")
        key = "." if self.single and name in (".", self.path.name) else name
        try:
            return self._data[key]
        except KeyError:
            raise UsageError(
                f"'{name}' is not a verified file of '{self.path}' (it is not signed, or the "
                "policy's mode let a missing file pass); its files are: "
                + ", ".join(sorted(self.files)[:20])
                + (" ..." if len(self.files) > 20 else ""),
                code="not-verified",
            ) from None

    def size(self, name: str) -> int:
        return len(self._get(name))

    def read(self, name: str) -> bytes:
        """The file's verified bytes (a copy of a large file's memory; see :meth:`buffer`)."""
        data = self._get(name)
        return data if isinstance(data, bytes) else bytes(data)

    def buffer(self, name: str) -> memoryview:
        """The file's verified bytes in place: writable, contiguous, format ``B``.

        Zero-copy for files read into their own memory; a small file's bytes
        are copied once into a ``bytearray`` on first call, so every call
        returns a view of the same memory.
        """
        data = self._get(name)
        if isinstance(data, bytes):
            assert self._data is not None
            key = "." if self.single else name
            data = self._data[key] = bytearray(data)
        return memoryview(data)

    def release(self, name: str) -> None:
        """Drop the handle's reference to one file's memory (once it has been handed on).

        A caller that copies the files elsewhere one by one (sealed memory
        files, a private copy) releases each after its copy, so the model is
        held about once, not twice. Reading the file afterwards is an error.
        """
        self._get(name)
        assert self._data is not None
        del self._data["." if self.single else name]

    def close(self) -> None:
        """Drop the handle's references; memory still viewed by tensors stays theirs."""
        self._data = None

    def __enter__(self) -> VerifiedModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._data is None else f"{len(self.files)} file(s)"
        return f"<VerifiedModel {str(self.path)!r} sha256:{self.root_digest[:16]}… {state}>"


def open_verified(
    model: str | os.PathLike[str],
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    attestations: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    workers: int | None = None,
) -> VerifiedModel:
    """Verify ``model`` and return its verified content; raise if it may not load.

    Give exactly one of ``policy`` (a :class:`~provenance.policy.Policy` or a
    policy file: signers, attestations, format rules, everything
    ``provenance verify --policy`` decides) or ``verifier`` (one signer's
    key, certificate or identity: the signature and the files only; unsigned
    files fail, as in :func:`provenance.verify`).

    Raises :class:`~provenance.policy.PolicyDenied` (its ``decision`` holds
    every reason) when the policy denies, :class:`VerificationError` (its
    ``report``'s findings name every file that differs) when the verifier's
    check fails, :class:`~provenance.errors.InputError` or
    :class:`~provenance.policy.PolicyError` for input nothing can be decided
    on. Nothing read is returned unless the model may load.

    A policy in ``warn`` or ``audit`` mode allows a model that fails it, by
    design (a rollout): the bytes handed on are then the bytes read, even
    those that do not match their signature, and a :class:`PolicyWarning`
    says why; ``decision.passed`` is False. Use ``enforce`` where a
    mismatch must never load.

    Memory: the signed files' total size, committed as read, plus the
    engine's small buffers; the handle and any tensors built over
    :meth:`VerifiedModel.buffer` own it from then on.
    """
    if (policy is None) == (verifier is None):
        raise UsageError(
            "give exactly one of policy= (a policy file or Policy) or verifier= (a Verifier, "
            "e.g. KeyVerifier.from_files('key.pub'))"
        )
    if verifier is not None and not hasattr(verifier, "verify"):
        raise UsageError(
            f"verifier= takes a Verifier (e.g. KeyVerifier.from_files('key.pub')), not "
            f"{type(verifier).__name__}; for a policy file use policy="
        )
    path = Path(model)
    kept: dict[str, Any] = {}
    if policy is not None:
        from provenance.policy._evaluate import PolicyDenied, evaluate

        if ignore_paths:
            raise UsageError("ignore_paths is the policy's to decide (files.allow_unsigned)")
        decision = evaluate(
            policy,
            path,
            signature_path=signature,
            attestations_path=attestations,
            workers=workers,
            _kept=kept,
        )
        if not decision.allowed:
            kept.clear()
            failed = [r.message for r in decision.reasons if r.severity == "error"]
            more = f" (and {len(failed) - 1} more reason(s))" if len(failed) > 1 else ""
            raise PolicyDenied(
                f"the policy denies '{path}': {failed[0] if failed else 'see the decision'}{more}",
                failed,
                decision=decision,
            )
        report = decision.report
        if decision.manifest is None or report is None:
            # Allowed only by a warn or audit mode, with no trusted signature:
            # nothing was hashed against a signed list, so nothing can be handed on.
            kept.clear()
            raise VerificationError(
                f"'{path}' has no signature the policy trusts, so no file was verified to "
                f"load (the policy's mode '{decision.mode}' allows it, but a verified load "
                "needs a signed list of files)",
                code="nothing-verified",
            )
        manifest = decision.manifest
        if not decision.passed:
            # warn or audit: the policy's author chose to let a failing model load
            # (a rollout); say so where a loader's logs will show it.
            failed = [r.message for r in decision.reasons if r.severity == "error"]
            warnings.warn(
                f"policy mode '{decision.mode}' lets '{path}' load although it fails the "
                f"policy: {'; '.join(failed[:3])}" + (" ..." if len(failed) > 3 else ""),
                PolicyWarning,
                stacklevel=2,
            )
    else:
        assert verifier is not None
        from provenance.verification import check_model

        decision = None
        report = check_model(
            path,
            verifier,
            signature_path=signature,
            ignore_paths=ignore_paths,
            attestations_path=attestations,
            workers=workers,
            keep=kept,
        )
        if not report.ok or report.manifest is None:
            kept.clear()
            try:
                report.raise_for_failure()
                raise VerificationError(f"'{path}' did not verify")
            except VerificationError as e:
                e.report = report
                raise
        manifest = report.manifest
    signed = manifest.files
    if signed and not kept:
        # Only a warn or audit mode gets here: the engine stopped (a file was
        # swapped, unreadable, too large) and dropped everything it had read.
        raise VerificationError(
            f"'{path}' could not be read whole, so no file was verified to load: "
            + "; ".join(f.message for f in report.findings if f.severity == "error")[:500],
            code="nothing-verified",
        )
    data = {n: kept[n] for n in signed if n in kept}
    kept.clear()
    return VerifiedModel(path, manifest, report, decision, data)
