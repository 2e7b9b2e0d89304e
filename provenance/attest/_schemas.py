"""Validation of predicates against the JSON Schemas in ``schemas/``.

The schemas ship inside the package (``provenance._schemas``, mapped from the
project's ``schemas/`` folder), so what is validated is exactly what is
published. ``jsonschema`` is imported only when a predicate is not proved valid
by :mod:`provenance._internal.schemacheck`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provenance._internal import schemacheck
from provenance.errors import InputError, VerificationError
from provenance.intoto import SLSA_PREDICATE_TYPE, predicate_type

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
    from provenance._internal.schemafiles import read

    return {name: json.loads(read(name)) for name in _FILES}


@functools.cache
def _by_id() -> dict[str, dict[str, Any]]:
    return {doc["$id"]: doc for doc in _schemas().values()}


def schema(name: str) -> dict[str, Any]:
    """One schema by file name, e.g. ``dataset.schema.json``."""
    return _schemas()[name]


@functools.cache
def _validator(name: str) -> Validator:
    # One per schema: building the registry costs more than checking a predicate.
    import jsonschema
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in _schemas().values()
    )
    cls = jsonschema.validators.validator_for(schema(name))
    return cls(schema(name), registry=registry, format_checker=cls.FORMAT_CHECKER)


def schema_for(ptype: str, predicate: Mapping[str, Any]) -> str:
    """Which schema governs this predicate; InputError when it is not one of ours.

    The registry in :mod:`provenance.intoto` says; an unknown type, or SLSA
    provenance of another builder's build type, is read but not validated.
    """
    known = predicate_type(ptype)
    name = known.schema_for(predicate) if known is not None else None
    if name is not None:
        return name
    if ptype == SLSA_PREDICATE_TYPE:
        build = predicate.get("buildDefinition")
        build_type = build.get("buildType") if isinstance(build, Mapping) else None
        raise InputError(f"SLSA build type {build_type!r} is not this project's; not validated")
    raise InputError(f"predicate type {ptype!r} has no schema here; not validated")


def validate(ptype: str, predicate: Mapping[str, Any], *, where: str = "predicate") -> None:
    """Raise VerificationError naming the first violation (path and message).

    A valid predicate is proved so without importing jsonschema
    (:mod:`provenance._internal.schemacheck`); jsonschema judges and words the rest.
    """
    name = schema_for(ptype, predicate)
    if schemacheck.is_valid(schema(name), predicate, registry=_by_id(), formats=True):
        return
    validator = _validator(name)
    errors = sorted(validator.iter_errors(predicate), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise VerificationError(f"{where} breaks its schema at {at}: {e.message}")
