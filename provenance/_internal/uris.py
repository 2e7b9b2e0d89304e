"""The type URIs of the wire formats, in a module that costs nothing to import.

:mod:`provenance.intoto` is large (the predicate models); hashing a model
needs only these strings, through :mod:`provenance.manifest`.
"""

from __future__ import annotations

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
OMS_PREDICATE_TYPE = "https://model_signing/signature/v1.0"
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
DATASET_PREDICATE_TYPE = "https://ml-provenance.dev/dataset/v1"
EVALUATION_PREDICATE_TYPE = "https://ml-provenance.dev/evaluation/v1"
TRAINING_BUILD_TYPE = "https://ml-provenance.dev/training/v1"
