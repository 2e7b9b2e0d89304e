"""Pipelines: each step of an ML pipeline recorded with in-toto, the whole chain verified.

A model passes through several hands (data preparation, training,
evaluation, packaging), often on different machines. in-toto checks that
every step was done by a functionary the pipeline's owner named and that
each step's inputs are exactly an earlier step's outputs. This package does
that with the ``in-toto`` library and securesystemslib signers::

    from provenance import pipeline

    signer = pipeline.key_signer("alice.pem")
    result = pipeline.run_step(
        "train", ["python", "train.py"], signer=signer,
        materials=["data"], products=["model"], links_dir="links",
    )

    layout = pipeline.starter_layout({"prepare-data": ["alice.pub"], ...})
    pipeline.write_layout(layout, "root.layout.json")
    pipeline.sign_layout("root.layout.json", pipeline.key_signer("owner.pem"))

    report = pipeline.verify_pipeline("root.layout", ["owner.pub"], "links")
    for finding in report.findings:
        print(finding.code, finding.message)

Links and layouts are in-toto's own (DSSE envelopes, ``STEP.KEYID8.link``);
``in-toto-verify`` checks them too. Large material and product trees are
hashed by this project's engine. A policy's ``pipeline:`` section requires
a verified pipeline whose final products are the model
(:func:`model_products`).

The in-toto and securesystemslib imports happen inside the functions, so
importing this package costs nothing until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provenance.pipeline._keys import (
        CERTIFICATE_UNSUPPORTED,
        SIGSTORE_UNSUPPORTED,
        as_signer,
        key_signer,
        kms_signer,
        public_key_dict,
    )
    from provenance.pipeline._layout import (
        DEFAULT_STEPS,
        Folders,
        SignedLayout,
        lint_layout,
        sign_layout,
        starter_layout,
        write_layout,
    )
    from provenance.pipeline._model import model_products, products_root
    from provenance.pipeline._record import DEFAULT_EXCLUDES, Recorded, record_artifacts
    from provenance.pipeline._run import CommandError, StepResult, link_name, run_step
    from provenance.pipeline._verify import (
        MAX_LINK_BYTES,
        PipelineReport,
        StepReport,
        verify_pipeline,
    )

_WHERE = {
    "CERTIFICATE_UNSUPPORTED": "_keys",
    "SIGSTORE_UNSUPPORTED": "_keys",
    "as_signer": "_keys",
    "key_signer": "_keys",
    "kms_signer": "_keys",
    "public_key_dict": "_keys",
    "DEFAULT_STEPS": "_layout",
    "Folders": "_layout",
    "SignedLayout": "_layout",
    "lint_layout": "_layout",
    "sign_layout": "_layout",
    "starter_layout": "_layout",
    "write_layout": "_layout",
    "model_products": "_model",
    "products_root": "_model",
    "DEFAULT_EXCLUDES": "_record",
    "Recorded": "_record",
    "record_artifacts": "_record",
    "CommandError": "_run",
    "StepResult": "_run",
    "link_name": "_run",
    "run_step": "_run",
    "MAX_LINK_BYTES": "_verify",
    "PipelineReport": "_verify",
    "StepReport": "_verify",
    "verify_pipeline": "_verify",
}

__all__ = [
    "CERTIFICATE_UNSUPPORTED",
    "DEFAULT_EXCLUDES",
    "DEFAULT_STEPS",
    "MAX_LINK_BYTES",
    "SIGSTORE_UNSUPPORTED",
    "CommandError",
    "Folders",
    "PipelineReport",
    "Recorded",
    "SignedLayout",
    "StepReport",
    "StepResult",
    "as_signer",
    "key_signer",
    "kms_signer",
    "link_name",
    "lint_layout",
    "model_products",
    "products_root",
    "public_key_dict",
    "record_artifacts",
    "run_step",
    "sign_layout",
    "starter_layout",
    "verify_pipeline",
    "write_layout",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'provenance.pipeline' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"provenance.pipeline.{module}"), name)
    globals()[name] = value
    return value
