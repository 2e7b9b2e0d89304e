"""Validation of predicates against the JSON Schemas in ``schemas/``.

The schemas ship inside the package (``provenance._schemas``, mapped from the
project's ``schemas/`` folder), so what is validated is exactly what is
published. ``jsonschema`` is imported only when a predicate is checked.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from provenance.attest._predicates import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    TRAINING_BUILD_TYPE,
)
from provenance.errors import InputError, VerificationError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_FILES = (
    "resource-descriptor.schema.json",
    "dataset.schema.json",
    "training.schema.json",
    "evaluation.schema.json",
    "statement.schema.json",
)


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    from importlib import resources

    folder = resources.files("provenance._schemas")
    return {name: json.loads(folder.joinpath(name).read_text("utf-8")) for name in _FILES}


def schema(name: str) -> dict[str, Any]:
    """One schema by file name, e.g. ``dataset.schema.json``."""
    return _schemas()[name]


def _validator(name: str) -> Validator:
    import jsonschema
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in _schemas().values()
    )
    cls = jsonschema.validators.validator_for(schema(name))
    return cls(schema(name), registry=registry, format_checker=cls.FORMAT_CHECKER)


def schema_for(predicate_type: Any, predicate: Any) -> str:
    """Which schema governs this predicate; InputError when it is not one of ours."""
    if predicate_type == DATASET_PREDICATE_TYPE:
        return "dataset.schema.json"
    if predicate_type == EVALUATION_PREDICATE_TYPE:
        return "evaluation.schema.json"
    if predicate_type == SLSA_PREDICATE_TYPE:
        build_type = (
            (predicate.get("buildDefinition") or {}).get("buildType")
            if isinstance(predicate, dict)
            else None
        )
        if build_type == TRAINING_BUILD_TYPE:
            return "training.schema.json"
        raise InputError(f"SLSA build type {build_type!r} is not this project's; not validated")
    raise InputError(f"predicate type {predicate_type!r} has no schema here; not validated")


def validate(predicate_type: Any, predicate: Any, *, where: str = "predicate") -> None:
    """Raise VerificationError naming the first violation (path and message)."""
    validator = _validator(schema_for(predicate_type, predicate))
    errors = sorted(validator.iter_errors(predicate), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise VerificationError(f"{where} breaks its schema at {at}: {e.message}")
