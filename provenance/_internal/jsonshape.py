"""Typed reads of parsed, untrusted JSON: each says what it expected, by path.

A bundle or statement of the wrong shape must fail with a reason, not with
an ``AttributeError`` three calls deep; these accessors narrow a JSON value
to the type the caller needs or raise the caller's error class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provenance.errors import InputError, ProvenanceError

__all__ = ["array", "obj", "opt_obj", "opt_str", "string"]


def obj(value: object, where: str, error: type[ProvenanceError] = InputError) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise error(f"{where} is not a JSON object")
    return value


def opt_obj(
    value: object, where: str, error: type[ProvenanceError] = InputError
) -> Mapping[str, Any]:
    """An object, or an empty one where the field is absent (``None``)."""
    return {} if value is None else obj(value, where, error)


def array(value: object, where: str, error: type[ProvenanceError] = InputError) -> list[Any]:
    if not isinstance(value, list):
        raise error(f"{where} is not a JSON array")
    return value


def string(value: object, where: str, error: type[ProvenanceError] = InputError) -> str:
    if not isinstance(value, str):
        raise error(f"{where} is not a string")
    return value


def opt_str(value: object, where: str, error: type[ProvenanceError] = InputError) -> str | None:
    return None if value is None else string(value, where, error)
