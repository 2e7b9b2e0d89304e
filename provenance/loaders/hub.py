"""Load a model by Hugging Face Hub repository id, only after it verified.

::

    from provenance.loaders import hub

    with hub.snapshot("org/name", "main", policy="policy.yaml") as model:
        model.origin.commit                     # the commit 'main' named
        weights = model.buffer("model.safetensors")

``snapshot`` resolves the revision, compares the signature with the Hub's
listing before downloading any weight (:func:`provenance.hub.fetch`), then
reads every signed file of the cached snapshot once, hashes it and hands on
those very bytes (:func:`provenance.open_verified`). Give the handle to
:func:`provenance.loaders.transformers.from_pretrained` or
:func:`provenance.loaders.safetensors.tensors_of`; nothing of the model is
loaded from a path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from provenance.errors import VerificationError

if TYPE_CHECKING:
    from provenance.loading import VerifiedModel
    from provenance.policy import Policy
    from provenance.signing import Verifier

__all__ = ["snapshot"]


def snapshot(
    repo_id: str,
    revision: str = "main",
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    offline: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    signed_for: str | None = None,
) -> VerifiedModel:
    """The verified content of ``repo_id`` at ``revision``; raise if it may not load.

    Give exactly one of ``policy`` or ``verifier``, as for
    :func:`provenance.open_verified`, which raises the same errors. A
    pre-check failure (a file the signature does not cover, a missing
    signature, an LFS sha256 that contradicts it) is a
    :class:`~provenance.errors.VerificationError` before any weight is
    downloaded. ``offline`` uses only the local cache. The handle's
    ``origin`` is the :class:`provenance.hub.Snapshot` (repository, revision,
    commit, cache folder); its ``path`` is the cache folder, which nothing
    here reads again. A signature made for another repository is refused
    unless ``signed_for`` names it (a mirror), as in
    :func:`provenance.hub.verify`.
    """
    from provenance.findings import errors, first_error_summary
    from provenance.hub import fetch, one_of, record_findings, record_of, remember
    from provenance.loading import open_verified

    rules = one_of(policy, verifier)
    snap = fetch(
        repo_id,
        revision,
        offline=offline,
        endpoint=endpoint,
        token=token,
        cache_dir=cache_dir,
        policy=rules,
        verifier=verifier,
    )
    errs = errors(snap.findings)
    if errs:
        raise VerificationError(
            first_error_summary(errs, f"{repo_id}@{snap.commit[:12]} may not load: "),
            details=[f.message for f in errs],
            code=errs[0].code,
        )
    model = open_verified(snap.path, policy=rules, verifier=verifier, workers=workers)
    verified = model.report.verified
    record = record_of(verified.payload) if verified is not None else None
    refused = errors(record_findings(snap, record, signed_for))
    if refused:
        model.close()
        raise VerificationError(
            f"{repo_id}@{snap.commit[:12]} may not load: {refused[0].message}",
            code=refused[0].code,
        )
    model.origin = snap
    remember(snap)
    return model
