"""A JSON Schema (2020-12) fast path that only ever says "valid" when jsonschema would.

Why it exists: importing ``jsonschema`` and its stack (``referencing``, ``rpds``,
``attrs``, the bundled metaschemas, the format libraries) costs about 60 ms, which
is a third of what a policy adds to a start-up verification. Every document the
policy path validates -- the policy file, its revocation lists, the predicate
schemas it writes, the attestations' predicates -- is valid in the normal case, so
this module proves validity for the keywords those schemas use and leaves every
other case to jsonschema:

* :func:`is_valid` and :func:`schema_ok` return ``True`` only when jsonschema's
  ``Draft202012Validator`` would find no error (``check_schema`` would pass).
* Anything else -- an error, a keyword or reference form not modelled here, a value
  that is not plain JSON, more nesting than :data:`MAX_DEPTH` -- returns ``False``,
  and the caller runs jsonschema exactly as it would without this module. So a
  verdict of "invalid", and every error message, still comes from jsonschema.

The semantics mirror jsonschema's own keyword functions, including which keywords
it evaluates in full and which it stops at the first error (``anyOf`` and the first
pass of ``oneOf`` collect every error of a failing branch; ``not``, ``if`` and the
rest of ``oneOf`` stop early): that decides whether a self-referencing schema
recurses, and a schema that makes jsonschema recurse without end must not pass
here. ``tests/test_schemacheck.py`` checks the verdicts against jsonschema's on
generated schemas and documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urljoin

__all__ = [
    "DRAFT_2020_12",
    "JSON_TYPES",
    "MAX_DEPTH",
    "is_valid",
    "recursed",
    "schema_ok",
    "terminates",
]

# Descents (into a subschema, a property, an item or a reference) before giving up.
# jsonschema's own limit is Python's recursion limit, several times deeper; staying
# well under it means a schema deep enough to make jsonschema fail never passes here.
MAX_DEPTH = 48

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def recursed(failure: BaseException) -> bool:
    """Whether jsonschema failed by recursing without end.

    Usually a RecursionError; but when the limit is hit inside ``rpds`` (the
    registry's Rust map), pyo3 turns it into a ``PanicException``, which
    derives from BaseException and would pass an ``except Exception``.
    """
    if isinstance(failure, RecursionError):
        return True
    return type(failure).__name__ == "PanicException" and "RecursionError" in str(failure)


class _Undecided(Exception):
    """The fast path cannot say; jsonschema decides."""


# Keywords jsonschema's 2020-12 validator does not evaluate: skipped here too.
# (``then`` / ``else`` are read by ``if``, ``minContains`` / ``maxContains`` by
# ``contains``; ``$defs`` only through references.)
_IGNORED = frozenset(
    {
        "title",
        "description",
        "$comment",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "then",
        "else",
        "minContains",
        "maxContains",
        "$defs",
    }
)

# JSON Schema's seven types, in the order messages list them.
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
_SIMPLE_TYPES = frozenset(JSON_TYPES)

# A reference this module resolves: "#", or a JSON pointer of plain tokens (no "~"
# or "%" escapes), after an optional URI without a fragment.
_POINTER_TOKEN = re.compile(r"[A-Za-z0-9_.\-$]+")
_SAFE_LOCAL_REF = re.compile(r"#(?:/[A-Za-z0-9_.\-$]+)*")


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _integer(x: object) -> bool:
    # As jsonschema's draft 4+ type checker: 2.0 is an integer, True is not.
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _is_type(x: object, name: str) -> bool:
    if name == "string":
        return isinstance(x, str)
    if name == "object":
        return isinstance(x, dict)
    if name == "array":
        return isinstance(x, list)
    if name == "integer":
        return _integer(x)
    if name == "number":
        return _number(x)
    if name == "boolean":
        return isinstance(x, bool)
    if name == "null":
        return x is None
    raise _Undecided  # jsonschema raises UnknownType


def _plain(x: object, depth: int = 0) -> None:
    """Refuse (undecided) anything but JSON's own types: jsonschema's equality,
    type checks and ``len`` treat tuples, bytes, sets or Decimals in ways not modelled."""
    if depth > 64:
        raise _Undecided
    if x is None or isinstance(x, (str, bool, int)):
        return
    if isinstance(x, float):
        return
    if isinstance(x, list):
        for item in x:
            _plain(item, depth + 1)
        return
    if isinstance(x, dict):
        for key, value in x.items():
            if not isinstance(key, str):
                raise _Undecided
            _plain(value, depth + 1)
        return
    raise _Undecided


def _unbool(x: object) -> object:
    if x is True:
        return _TRUE
    if x is False:
        return _FALSE
    return x


_TRUE, _FALSE = object(), object()


def _equal(a: object, b: object) -> bool:
    """jsonschema's ``equal``: True is not 1, lists and mappings compared item-wise."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
    return _unbool(a) == _unbool(b)


def _search(pattern: object, text: str) -> bool:
    if not isinstance(pattern, str):
        raise _Undecided
    try:
        return re.search(pattern, text) is not None
    except re.error:
        raise _Undecided from None


_Resource = tuple[str, Any]  # (base URI, the resource's root schema)


class _Evaluator:
    def __init__(self, registry: Mapping[str, Any], formats: bool, root: _Resource) -> None:
        # As referencing does: the root document under its own $id wins over the
        # registry's entry for that URI; keys are compared without a trailing "#".
        self.registry = {k.rstrip("#"): v for k, v in registry.items()}
        self.registry[root[0].rstrip("#")] = root[1]
        self.formats = formats

    def run(self, schema: Any, inst: Any, res: _Resource, full: bool, depth: int) -> bool:
        """Whether ``inst`` is valid. ``full``: evaluate every keyword even after a
        failure, as jsonschema does when it collects errors rather than stopping."""
        if depth > MAX_DEPTH:
            raise _Undecided
        if schema is True:
            return True
        if schema is False:
            return False
        if not isinstance(schema, dict):
            raise _Undecided
        if schema is not res[1] and ("$id" in schema or "$schema" in schema):
            raise _Undecided  # a nested resource: base URIs not modelled
        if schema is res[1] and "$schema" in schema:
            declared = schema["$schema"]
            if not isinstance(declared, str) or declared.rstrip("#") != DRAFT_2020_12:
                raise _Undecided  # jsonschema evaluates a resource by the draft it declares
        ok = True
        for key, value in schema.items():
            if key in _IGNORED or (key in ("$id", "$schema") and schema is res[1]):
                continue
            check = _KEYWORDS.get(key)
            if check is None:
                raise _Undecided
            if not check(self, value, inst, schema, res, full, depth):
                ok = False
                if not full:
                    return False
        return ok

    def resolve(self, ref: object, res: _Resource) -> tuple[Any, _Resource]:
        if not isinstance(ref, str):
            raise _Undecided
        if ref.startswith("#"):
            base, doc, fragment = res[0], res[1], ref[1:]
        else:
            url, _, fragment = urljoin(res[0], ref).partition("#")
            doc = self.registry.get(url)
            if doc is None:
                raise _Undecided
            base = url
        target = doc
        if fragment:
            if not fragment.startswith("/"):
                raise _Undecided  # an anchor
            for token in fragment[1:].split("/"):
                if not _POINTER_TOKEN.fullmatch(token):
                    raise _Undecided
                if target is not doc and isinstance(target, dict) and "$id" in target:
                    # referencing changes the base URI at each $id the pointer passes
                    # through, so later references resolve in that embedded resource
                    raise _Undecided
                if isinstance(target, dict) and token in target:
                    target = target[token]
                elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                    target = target[int(token)]
                else:
                    raise _Undecided
        return target, (base, doc)


_Check = Callable[[_Evaluator, Any, Any, dict[str, Any], _Resource, bool, int], bool]


def _type(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    names = [v] if isinstance(v, str) else v
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Undecided
    return any(_is_type(inst, n) for n in names)


def _enum(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(v, list):
        raise _Undecided
    _plain(v)
    return any(_equal(each, inst) for each in v)


def _const(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    _plain(v)
    return _equal(inst, v)


def _bound(compare: Callable[[Any, Any], bool]) -> _Check:
    def check(
        e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
    ) -> bool:
        if not _number(v):
            raise _Undecided
        return not _number(inst) or compare(inst, v)

    return check


def _size(
    kind: type[str] | type[list[Any]] | type[dict[str, Any]], compare: Callable[[int, Any], bool]
) -> _Check:
    def check(
        e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
    ) -> bool:
        if not _number(v):
            raise _Undecided
        return not isinstance(inst, kind) or compare(len(inst), v)

    return check


def _pattern(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    return not isinstance(inst, str) or _search(v, inst)


def _format(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not e.formats:
        return True  # an annotation, as for a validator without a format checker
    if v != "date-time":
        raise _Undecided  # which formats jsonschema checks depends on what is installed
    if not isinstance(inst, str):
        return True
    try:
        from rfc3339_validator import validate_rfc3339  # type: ignore[import-untyped]
    except ImportError:  # jsonschema checks date-time only with this library
        return True
    try:
        return bool(validate_rfc3339(inst.upper()))
    except Exception:  # whatever it does then, jsonschema decides
        raise _Undecided from None


def _required(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise _Undecided
    return not isinstance(inst, dict) or all(p in inst for p in v)


def _properties(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(v, dict):
        raise _Undecided
    if not isinstance(inst, dict):
        return True
    return _every(e, ((sub, inst[name]) for name, sub in v.items() if name in inst), r, f, d)


def _pattern_properties(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(v, dict):
        raise _Undecided
    if not isinstance(inst, dict):
        return True
    pairs = (
        (sub, value)
        for pattern, sub in v.items()
        for key, value in inst.items()
        if _search(pattern, key)
    )
    return _every(e, pairs, r, f, d)


def _additional(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(inst, dict):
        return True
    known = s.get("properties", {})
    patterns = s.get("patternProperties", {})
    if not isinstance(known, dict) or not isinstance(patterns, dict):
        raise _Undecided
    joined = "|".join(patterns)  # one search over the joined patterns, as jsonschema does
    extras = [k for k in inst if k not in known and not (joined and _search(joined, k))]
    if isinstance(v, dict):
        if f:
            results = [e.run(v, inst[k], r, True, d + 1) for k in extras]
            return all(results)
        # jsonschema walks the extras as a set (no set order to mirror); stopping
        # early could skip a branch it evaluates, so a failure here is undecided.
        for k in extras:
            if not e.run(v, inst[k], r, False, d + 1):
                raise _Undecided
        return True
    if v is True:
        return True
    if v is False:
        return not extras
    raise _Undecided


def _items(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if "prefixItems" in s:
        raise _Undecided
    if not isinstance(inst, list):
        return True
    if v is False:
        return not inst
    return _every(e, ((v, item) for item in inst), r, f, d)


def _contains(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    if not isinstance(inst, list):
        return True
    least = s.get("minContains", 1)
    most = s.get("maxContains", len(inst))
    if not _number(least) or not _number(most):
        raise _Undecided
    matches = 0
    for item in inst:  # each item to its first error, as jsonschema's is_valid()
        if e.run(v, item, r, False, d + 1):
            matches += 1
            if matches > most:
                return False
    return not matches < least


def _every(e: _Evaluator, pairs: Iterable[tuple[Any, Any]], r: _Resource, f: bool, d: int) -> bool:
    """Each (subschema, value) pair valid: every one evaluated when ``f`` (full), as
    jsonschema does collecting errors, else up to the first failure, in order."""
    ok = True
    for sub, value in pairs:
        if not e.run(sub, value, r, f, d + 1):
            ok = False
            if not f:
                return False
    return ok


def _subschemas(v: Any) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise _Undecided
    return v


def _all_of(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    return _every(e, ((sub, inst) for sub in _subschemas(v)), r, f, d)


def _any_of(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    # jsonschema lists every error of each branch until one is valid.
    return any(e.run(sub, inst, r, True, d + 1) for sub in _subschemas(v))


def _one_of(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    subs = _subschemas(v)
    for i, sub in enumerate(subs):
        if e.run(sub, inst, r, True, d + 1):
            # The rest are each checked (to the first error) for a second match.
            more = [e.run(other, inst, r, False, d + 1) for other in subs[i + 1 :]]
            return not any(more)
    return False


def _not(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    return not e.run(v, inst, r, False, d + 1)


def _if(e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int) -> bool:
    if e.run(v, inst, r, False, d + 1):
        return "then" not in s or e.run(s["then"], inst, r, f, d + 1)
    return "else" not in s or e.run(s["else"], inst, r, f, d + 1)


def _ref(
    e: _Evaluator, v: Any, inst: Any, s: dict[str, Any], r: _Resource, f: bool, d: int
) -> bool:
    target, res = e.resolve(v, r)
    return e.run(target, inst, res, f, d + 1)


_KEYWORDS: dict[str, _Check] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound(lambda x, b: not x < b),
    "maximum": _bound(lambda x, b: not x > b),
    "exclusiveMinimum": _bound(lambda x, b: not x <= b),
    "exclusiveMaximum": _bound(lambda x, b: not x >= b),
    "minLength": _size(str, lambda n, b: not n < b),
    "maxLength": _size(str, lambda n, b: not n > b),
    "minItems": _size(list, lambda n, b: not n < b),
    "maxItems": _size(list, lambda n, b: not n > b),
    "minProperties": _size(dict, lambda n, b: not n < b),
    "maxProperties": _size(dict, lambda n, b: not n > b),
    "pattern": _pattern,
    "format": _format,
    "required": _required,
    "properties": _properties,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional,
    "items": _items,
    "contains": _contains,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
    "if": _if,
    "$ref": _ref,
}


def is_valid(
    schema: Any,
    instance: Any,
    *,
    registry: Mapping[str, Any] | None = None,
    formats: bool = False,
) -> bool:
    """True only if jsonschema's 2020-12 validator would report no error.

    ``registry``: other schemas by ``$id``, for references between them.
    ``formats``: as a validator given ``FORMAT_CHECKER`` (``date-time`` is modelled;
    any other format leaves the decision to jsonschema).
    """
    return _evaluate(schema, instance, registry or {}, formats, full=True) is True


def terminates(schema: Any, instance: Any) -> bool:
    """Whether jsonschema, stopping at its first error (``next(iter_errors())``),
    provably comes to an end on ``instance``: the question a loop probe asks."""
    return _evaluate(schema, instance, {}, False, full=False) is not None


def _evaluate(
    schema: Any, instance: Any, registry: Mapping[str, Any], formats: bool, *, full: bool
) -> bool | None:
    root = schema.get("$id", "") if isinstance(schema, dict) else ""
    if not isinstance(root, str):
        return None
    res = (root, schema)
    try:
        _plain(instance)
        return _Evaluator(registry, formats, res).run(schema, instance, res, full, 0)
    except (_Undecided, RecursionError):
        return None


# ---------------------------------------------------------------- schemas themselves


def _nonneg_integer(x: object) -> bool:
    return _integer(x) and x >= 0  # type: ignore[operator]


def _regex(x: object) -> bool:
    if not isinstance(x, str):
        return False
    try:
        re.compile(x)
    except re.error:
        return False
    return True


def _json(x: object) -> bool:
    try:
        _plain(x)
    except _Undecided:
        return False
    return True


def _schema_ok(schema: Any, depth: int) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return False
    for key, v in schema.items():
        if key == "type":
            names = [v] if isinstance(v, str) else v
            if not isinstance(names, list) or not names:
                return False
            if not all(isinstance(n, str) and n in _SIMPLE_TYPES for n in names):
                return False
            if len(set(names)) != len(names):
                return False
        elif key in ("enum", "examples"):
            if not isinstance(v, list) or not _json(v):
                return False
        elif key in ("const", "default"):
            if not _json(v):
                return False
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not _number(v):
                return False
        elif key in (
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "minProperties",
            "maxProperties",
            "minContains",
            "maxContains",
        ):
            if not _nonneg_integer(v):
                return False
        elif key == "pattern":
            if not _regex(v):
                return False
        elif key == "required":
            if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
                return False
            if len(set(v)) != len(v):
                return False
        elif key in ("properties", "$defs"):
            if not isinstance(v, dict) or not all(_schema_ok(s, depth + 1) for s in v.values()):
                return False
        elif key == "patternProperties":
            if not isinstance(v, dict):
                return False
            if not all(_regex(p) and _schema_ok(s, depth + 1) for p, s in v.items()):
                return False
        elif key in ("additionalProperties", "items", "contains", "not", "if", "then", "else"):
            if not _schema_ok(v, depth + 1):
                return False
        elif key in ("allOf", "anyOf", "oneOf"):
            if not isinstance(v, list) or not v:
                return False
            if not all(_schema_ok(s, depth + 1) for s in v):
                return False
        elif key == "$ref":
            if not isinstance(v, str) or not _SAFE_LOCAL_REF.fullmatch(v):
                return False
        elif key in ("title", "description", "$comment", "format"):
            if not isinstance(v, str):
                return False
        elif key in ("deprecated", "readOnly", "writeOnly"):
            if not isinstance(v, bool):
                return False
        elif key == "$schema" and depth == 0:
            if not isinstance(v, str) or v.rstrip("#") != DRAFT_2020_12:
                return False
        else:
            return False  # not modelled: jsonschema's check_schema decides
    return True


def schema_ok(schema: Any) -> bool:
    """True only if ``Draft202012Validator.check_schema(schema)`` would pass.

    Only the keywords :func:`is_valid` evaluates are accepted, with the value types
    the 2020-12 metaschema gives them; references must be local JSON pointers of
    plain tokens (valid URI references whatever format checker is installed).
    """
    return _schema_ok(schema, 0)
