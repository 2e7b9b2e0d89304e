"""Tying a verified pipeline to a model: its final products are the model's files.

A verified chain says which files the packaging step produced, by sha256;
a model's signature says which files the model holds, by digest, and its
root digest names it everywhere else. The model is the pipeline's product
when the root digest computed from those products, in the model's manifest
order, equals the model's root digest: SHA-256 over the concatenated raw
per-file SHA-256 digests (:attr:`provenance.manifest.Manifest.root_digest`).
Files are compared one by one first, so a mismatch names the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from provenance.findings import Finding
from provenance.manifest import Manifest
from provenance.pipeline._verify import PipelineReport

__all__ = ["model_products", "products_root"]


def model_products(
    report: PipelineReport,
    manifest: Manifest,
    *,
    step: str | None = None,
    path: str = "",
) -> list[Finding]:
    """Findings (errors) unless the model is exactly ``step``'s products under ``path``.

    ``step`` defaults to the layout's last step; ``path`` is the folder (or,
    for a single-file model, the file) among that step's products that is
    the model, as the link names it (``release``); empty: all its products.
    Only a model hashed as sha256 files can be compared: in-toto records
    sha256 per file.
    """
    if not report.ok:
        return [
            Finding(
                "pipeline-not-verified",
                "the pipeline did not verify, so nothing ties the model to its products",
            )
        ]
    if not report.steps:
        return [Finding("pipeline-not-verified", "the layout has no steps")]
    chosen = report.step(step) if step else report.steps[-1]
    if chosen is None:
        return [Finding("pipeline-step-unknown", f"the layout has no step '{step}'")]
    ser = manifest.serialization
    if ser.method != "files" or ser.hash_type != "sha256":
        return [
            Finding(
                "pipeline-digest-mismatch",
                f"the model is signed as {ser.method} with {ser.hash_type}; in-toto records a "
                "sha256 per file, so only a model signed with sha256 files can be tied to "
                f"step '{chosen.name}''s products",
            )
        ]
    prefix = path.strip("/")
    products = _under(chosen.products, prefix, single=manifest.files == ["."])
    shown = f"step '{chosen.name}''s products" + (f" under '{prefix}'" if prefix else "")
    out: list[Finding] = []
    names = [r.name for r in manifest.resources]
    for r in manifest.resources:
        digest = products.get(r.name)
        where = _product_name(prefix, r.name)
        if digest is None:
            out.append(
                Finding(
                    "pipeline-file-missing",
                    f"'{r.name}' of the model is not among {shown} (no '{where}')",
                    r.name,
                )
            )
        elif digest != r.digest.hex():
            out.append(
                Finding(
                    "pipeline-file-differs",
                    f"'{r.name}' of the model differs from '{where}' of {shown} "
                    f"(sha256 {r.digest.hex()[:12]}… in the model, {digest[:12]}… produced)",
                    r.name,
                )
            )
    for name in products:
        if name not in names:
            out.append(
                Finding(
                    "pipeline-file-extra",
                    f"{shown} include '{_product_name(prefix, name)}', which the model lacks",
                    name,
                )
            )
    if not out:
        root = products_root(products, names)
        if root != manifest.root_digest:  # cannot differ when every file matched; fail closed
            out.append(
                Finding(
                    "pipeline-digest-mismatch",
                    f"the root digest of {shown} is {root}, the model's is {manifest.root_digest}",
                )
            )
    return out


def products_root(products: Mapping[str, str], names: list[str]) -> str:
    """SHA-256 over the raw sha256 digests of ``products`` in the order of ``names``."""
    return hashlib.sha256(b"".join(bytes.fromhex(products[n]) for n in names)).hexdigest()


def _under(products: Mapping[str, str], prefix: str, *, single: bool) -> dict[str, str]:
    """The products that are the model, by the model's own names (``.`` for a single file)."""
    if single and prefix in products:
        return {".": products[prefix]}
    if not prefix:
        return dict(products)
    lead = prefix + "/"
    return {k[len(lead) :]: v for k, v in products.items() if k.startswith(lead)}


def _product_name(prefix: str, name: str) -> str:
    if name == ".":
        return prefix
    return f"{prefix}/{name}" if prefix else name
