"""The jsonschema-free fast path may only ever say "valid" where jsonschema would.

``provenance._internal.schemacheck`` proves policy files, predicate schemas and
predicates valid without importing jsonschema (about 60 ms of a policy's
start-up). These tests hold it to jsonschema itself: on generated schemas and
documents (hypothesis), on every example policy and its mutations, and on the
shipped predicate schemas; plus the cases where the two could part ways (True
against 1, 2.0 as an integer, a schema that recurses only in a branch, a tuple
in the document).
"""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from provenance._internal import schemacheck

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"


def _errors(schema: Any, instance: Any, **kw: Any) -> list[Any] | None:
    """jsonschema's errors, or None when it cannot finish (it recurses without end)."""
    try:
        return list(Draft202012Validator(schema, **kw).iter_errors(instance))
    except BaseException as failure:  # RecursionError, or pyo3's PanicException from rpds
        if not schemacheck.recursed(failure):
            raise
        return None


def _first_error_ends(schema: Any, instance: Any) -> bool:
    try:
        next(iter(Draft202012Validator(schema).iter_errors(instance)), None)
    except BaseException as failure:
        if not schemacheck.recursed(failure):
            raise
        return False
    return True


def _agrees(schema: Any, instance: Any) -> None:
    fast = schemacheck.is_valid(schema, instance)
    if fast:
        assert _errors(schema, instance) == [], (schema, instance)
    if schemacheck.terminates(schema, instance):
        assert _first_error_ends(schema, instance), (schema, instance)


# ---------------------------------------------------------------- generated


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.0, 1.0, 2.0, 2.5, -1.5, 1e300]),
    st.sampled_from(["", "a", "ab", "abc", "x1", "2024-01-02T03:04:05Z", "not-a-date"]),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "x1", "$ref"]), inner, max_size=3),
    ),
    max_leaves=8,
)
_names = st.sampled_from(["a", "b", "c", "x1"])
_types = st.sampled_from(["null", "boolean", "object", "array", "number", "string", "integer"])


def _merged(a: Any, b: Any) -> Any:
    return {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a


def _schemas() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.booleans(),
        st.builds(lambda t: {"type": t}, _types),
        st.builds(lambda ts: {"type": ts}, st.lists(_types, min_size=1, max_size=2, unique=True)),
        st.builds(lambda v: {"const": v}, _json_scalars),
        st.builds(lambda vs: {"enum": vs}, st.lists(_json_scalars, max_size=3)),
        st.builds(lambda n: {"minimum": n}, st.integers(-2, 2)),
        st.builds(lambda n: {"exclusiveMaximum": n}, st.sampled_from([0, 1.5, 3])),
        st.builds(lambda n: {"minLength": n}, st.sampled_from([0, 1, 2, 2.0])),
        st.builds(lambda n: {"maxItems": n}, st.integers(0, 2)),
        st.builds(lambda n: {"minProperties": n}, st.integers(0, 2)),
        st.builds(lambda p: {"pattern": p}, st.sampled_from(["^a", "b$", "[0-9]", "^$"])),
        st.builds(lambda r: {"required": r}, st.lists(_names, max_size=2, unique=True)),
        st.builds(lambda f: {"format": f}, st.sampled_from(["date-time", "uri"])),
        st.just({"$ref": "#"}),
        st.just({"$ref": "#/$defs/d"}),
        st.just({"title": "t", "description": "d"}),
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(lambda p: {"properties": p}, st.dictionaries(_names, inner, max_size=2)),
            st.builds(
                lambda p, a: {"properties": p, "additionalProperties": a},
                st.dictionaries(_names, inner, max_size=2),
                inner,
            ),
            st.builds(
                lambda p, a: {"patternProperties": p, "additionalProperties": a},
                st.dictionaries(st.sampled_from(["^a", "1$"]), inner, max_size=2),
                inner,
            ),
            st.builds(lambda i: {"items": i}, inner),
            st.builds(lambda c: {"contains": c}, inner),
            st.builds(
                lambda c, lo, hi: {"contains": c, "minContains": lo, "maxContains": hi},
                inner,
                st.integers(0, 2),
                st.sampled_from([0, 1, 2, 2.0]),
            ),
            st.builds(lambda xs: {"allOf": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"anyOf": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"oneOf": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, inner),
            st.builds(lambda i, t, e: {"if": i, "then": t, "else": e}, inner, inner, inner),
            st.builds(lambda i, t: {"if": i, "then": t}, inner, inner),
            st.builds(_merged, inner, inner),
        )

    return st.recursive(leaf, extend, max_leaves=10)


# The same examples on every run (CI must not turn red by chance); the generators
# were run much longer while the fast path was written.
_SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


def _with_defs(schema: Any, d: Any) -> Any:
    if isinstance(schema, dict):
        return {**schema, "$defs": {"d": d}}
    return {"allOf": [schema], "$defs": {"d": d}}


@settings(max_examples=1500, **_SETTINGS)
@given(_schemas(), _schemas(), _json)
def test_generated_schemas_agree_with_jsonschema(schema: Any, d: Any, instance: Any) -> None:
    """Never "valid" where jsonschema finds an error or recurses without end."""
    _agrees(_with_defs(schema, d), instance)


@settings(max_examples=600, **_SETTINGS)
@given(_schemas(), _json)
def test_generated_formats_agree_with_jsonschema(schema: Any, instance: Any) -> None:
    schema = _with_defs(schema, True)
    if schemacheck.is_valid(schema, instance, formats=True):
        checker = Draft202012Validator.FORMAT_CHECKER
        assert _errors(schema, instance, format_checker=checker) == []


_meta_values = st.one_of(
    _json,
    st.sampled_from([-1, 1.5, 2.0, "^(", "[a-", "#/$defs/x", "#/a b", "http://x/y", "bogus"]),
)


@settings(max_examples=1500, **_SETTINGS)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "enum",
                "const",
                "minimum",
                "minLength",
                "maxItems",
                "pattern",
                "required",
                "properties",
                "patternProperties",
                "additionalProperties",
                "items",
                "allOf",
                "anyOf",
                "oneOf",
                "not",
                "if",
                "then",
                "else",
                "$ref",
                "$defs",
                "title",
                "description",
                "default",
                "examples",
                "deprecated",
                "format",
                "$comment",
                "unknownKeyword",
                "$anchor",
                "$schema",
            ]
        ),
        _meta_values,
        max_size=4,
    )
)
def test_schema_ok_only_where_check_schema_passes(schema: dict[str, Any]) -> None:
    if schemacheck.schema_ok(schema):
        Draft202012Validator.check_schema(schema)


@settings(max_examples=400, **_SETTINGS)
@given(_schemas())
def test_schema_ok_on_generated_schemas(schema: Any) -> None:
    """What the generator writes is valid 2020-12; the fast path must prove most of it."""
    if schemacheck.schema_ok(schema):
        Draft202012Validator.check_schema(schema)


# ---------------------------------------------------------------- where they could part


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"const": 1}, True),
        ({"const": True}, 1),
        ({"enum": [0, "a"]}, False),
        ({"enum": [[1, True]]}, [1, 1]),
        ({"const": {"a": 1}}, {"a": True}),
        ({"type": "integer"}, True),
        ({"type": "number"}, False),
        ({"minimum": 0}, True),  # not a number: minimum does not apply
        ({"maxLength": 1}, "ab"),
        ({"additionalProperties": False, "patternProperties": {"^a": True, "b$": True}}, {"xb": 1}),
        ({"additionalProperties": False, "patternProperties": {"^a": True}}, {"b": 1}),
        ({"items": False}, []),
        ({"items": False}, [1]),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1),
        ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, 1),
        ({"if": {"type": "string"}, "then": {"minLength": 2}}, "a"),
        ({"if": {"type": "string"}, "else": {"type": "null"}}, 1),
        ({"$ref": "#"}, None),
        ({"anyOf": [{"type": "string", "$ref": "#"}, True]}, None),
        ({"oneOf": [True, {"type": "string", "$ref": "#"}]}, None),
        ({"not": {"type": "string", "$ref": "#"}}, None),
        ({"properties": {"a": {"$ref": "#"}}}, {"a": {"a": {"a": 1}}}),
        ({"format": "date-time"}, "not a date"),
        ({"type": "array", "items": {"type": "integer"}}, [1, 2.0, 3]),
    ],
)
def test_edges_agree(schema: dict[str, Any], instance: Any) -> None:
    _agrees(schema, instance)
    if schemacheck.is_valid(schema, instance, formats=True):
        checker = Draft202012Validator.FORMAT_CHECKER
        assert _errors(schema, instance, format_checker=checker) == []


def test_true_is_not_one_and_two_point_zero_is_an_integer() -> None:
    assert not schemacheck.is_valid({"const": 1}, True)
    assert not schemacheck.is_valid({"enum": [False]}, 0)
    assert schemacheck.is_valid({"type": "integer"}, 2.0)
    assert not schemacheck.is_valid({"type": "integer"}, True)


def test_a_branch_that_recurses_is_never_valid() -> None:
    """jsonschema lists every error of a failing anyOf branch, so it recurses here;
    stopping at the branch's first error would call the document valid."""
    schema = {"anyOf": [{"type": "string", "$ref": "#"}, True]}
    assert _errors(schema, None) is None
    assert not schemacheck.is_valid(schema, None)


def test_what_it_does_not_model_is_left_to_jsonschema() -> None:
    undecided = [
        ({"uniqueItems": True}, [1, 2]),
        ({"prefixItems": [True], "items": True}, [1]),
        ({"someUnknownKeyword": 1}, 1),
        ({"$ref": "#foo", "$defs": {"x": {"$anchor": "foo"}}}, 1),
        ({"properties": {"a": {"$id": "http://x/", "type": "integer"}}}, {"a": 1}),
        ({"$ref": "#/$defs/a~1b", "$defs": {"a/b": True}}, 1),
        ({"type": "array"}, (1, 2)),  # a tuple: not JSON
        ({"type": "string"}, b"bytes"),
        ({"type": "object"}, {1: "int key"}),
    ]
    for schema, instance in undecided:
        assert not schemacheck.is_valid(schema, instance), schema
    nested: Any = 1
    for _ in range(schemacheck.MAX_DEPTH + 5):
        nested = [nested]
    deep: Any = {"type": "integer"}
    for _ in range(schemacheck.MAX_DEPTH + 5):
        deep = {"items": deep}
    assert not schemacheck.is_valid(deep, nested)
    assert _errors(deep, nested) == []  # valid: undecided only means jsonschema decides


def test_the_model_covers_what_jsonschema_evaluates() -> None:
    validators = set(Draft202012Validator.VALIDATORS)
    assert set(schemacheck._KEYWORDS) <= validators
    assert schemacheck._IGNORED.isdisjoint(validators)
    assert Draft202012Validator.META_SCHEMA["$id"].rstrip("#") == schemacheck.DRAFT_2020_12


# ---------------------------------------------------------------- the shipped schemas


def _policy_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "policy.schema.json").read_text())


def _example_policies() -> list[Any]:
    from provenance.policy._load import _parse  # the document as the loader reads it

    files = sorted((ROOT / "examples").rglob("*.yaml"))
    docs = [_parse(p.read_bytes(), p.name)[0] for p in files]
    return [d for d in docs if isinstance(d, dict) and d.get("version") == 1 and "signers" in d]


def _mutations(doc: Any, rng: random.Random, n: int) -> list[Any]:
    """Small damage to a valid document: the kind of mistake a person makes."""
    paths: list[tuple[Any, ...]] = []

    def collect(x: Any, at: tuple[Any, ...]) -> None:
        paths.append(at)
        if isinstance(x, dict):
            for k, v in x.items():
                collect(v, (*at, k))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                collect(v, (*at, i))

    collect(doc, ())
    out = []
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x", "sha256:zz", [], {}, [1], {"zz": 1}]
    for _ in range(n):
        d = copy.deepcopy(doc)
        at = rng.choice(paths)
        parent: Any = d
        for k in at[:-1]:
            parent = parent[k]
        action = rng.randrange(3)
        if not at:
            d = rng.choice(values)
        elif action == 0:
            del parent[at[-1]]
        elif action == 1:
            parent[at[-1]] = rng.choice(values)
        elif isinstance(parent, dict):
            parent[rng.choice(["unknown", "signer", "Signers", "mode"])] = rng.choice(values)
        else:
            parent.append(rng.choice(values))
        out.append(d)
    return out


def test_example_policies_are_proved_and_mutations_agree() -> None:
    schema = _policy_schema()
    docs = _example_policies()
    assert len(docs) >= 5
    rng = random.Random(1234)
    for doc in docs:
        assert _errors(schema, doc) == []
        assert schemacheck.is_valid(schema, doc), "the fast path should prove a valid policy"
        for bad in _mutations(doc, rng, 150):
            if schemacheck.is_valid(schema, bad):
                assert _errors(schema, bad) == [], bad


def test_revocation_lists_by_reference() -> None:
    schema = _policy_schema()
    sid = schema["$id"]
    registry: Registry[Any] = Registry().with_resource(sid, Resource.from_contents(schema))
    ref = {"$ref": f"{sid}#/$defs/revocation_list"}
    validator = Draft202012Validator(ref, registry=registry)
    good = {"digests": ["sha256:" + "ab" * 32]}
    assert not list(validator.iter_errors(good))
    assert schemacheck.is_valid(ref, good, registry={sid: schema})
    rng = random.Random(7)
    for bad in _mutations(good, rng, 200):
        if schemacheck.is_valid(ref, bad, registry={sid: schema}):
            assert not list(validator.iter_errors(bad)), bad


def _statements(folder: Path) -> list[dict[str, Any]]:
    import base64

    out = []
    for line in (folder / "model.intoto.jsonl").read_text().splitlines():
        envelope = json.loads(line)["dsseEnvelope"]
        out.append(json.loads(base64.b64decode(envelope["payload"])))
    return out


def test_predicates_are_proved_and_mutations_agree(tmp_path: Path, p256: Any) -> None:
    """Predicates as ``attest`` writes them (every kind), and damaged copies."""
    from test_attestations import PREDICATE_SCHEMAS, build_lineage, schema_errors

    from provenance.attest import _schemas

    built = build_lineage(tmp_path, p256)
    by_id = _schemas._by_id()
    rng = random.Random(99)
    seen = set()
    for folder in (built.ds1, built.ds2, built.evalset, built.base, built.ft):
        for statement in _statements(folder):
            name = PREDICATE_SCHEMAS[statement["predicateType"]]
            seen.add(name)
            predicate = statement["predicate"]
            schema = _schemas.schema(name)
            assert schema_errors(name, predicate) == []
            assert schemacheck.is_valid(schema, predicate, registry=by_id, formats=True), name
            for bad in _mutations(predicate, rng, 200):
                if schemacheck.is_valid(schema, bad, registry=by_id, formats=True):
                    assert schema_errors(name, bad) == [], (name, bad)
    assert seen == set(PREDICATE_SCHEMAS.values())


def test_a_policy_start_up_never_imports_jsonschema(tmp_path: Path, p256: Any) -> None:
    """The point of the fast path: a valid policy with predicate constraints, over
    valid attestations, is decided without jsonschema (about 60 ms of start-up)."""
    from test_attestations import build_lineage

    built = build_lineage(tmp_path, p256)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""version: 1
signers:
  - {{name: release, key: {p256.public}}}
attestations:
  - type: training
    predicate:
      properties:
        runDetails:
          properties:
            builder:
              properties:
                id: {{const: "https://ci.example.com/runners/gpu-7"}}
  - type: evaluation
    thresholds: enforce
"""
    )
    code = (
        "import sys, provenance\n"
        f"d = provenance.verify({str(built.ft)!r}, policy={str(policy)!r})\n"
        "assert d.allowed, [r.message for r in d.reasons]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'referencing', 'rpds', 'attrs')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


D4 = "http://json-schema.org/draft-04/schema#"


def _policy(attestations: str) -> str:
    """A policy with one fingerprint signer and these ``attestations:`` lines."""
    return "version: 1\nsigners:\n  - {name: a, fingerprint: '%s'}\n" % ("ab" * 32) + (
        "attestations:\n" + attestations
    )


@pytest.mark.parametrize(
    ("schema", "instance", "registry"),
    [
        # A $id on the way to a reference's target moves the base URI for what follows.
        (
            {
                "$ref": "#/$defs/enum/$defs/t",
                "$defs": {
                    "x": True,
                    "enum": {
                        "$id": "http://e/sub",
                        "$defs": {"t": {"$ref": "#/$defs/x"}, "x": False},
                    },
                },
            },
            1,
            None,
        ),
        (
            {
                "$ref": "#/allOf/0/$defs/t",
                "allOf": [{"$id": "http://e/a", "$defs": {"t": {"$ref": "#/$defs/x"}, "x": False}}],
                "$defs": {"x": True},
            },
            1,
            None,
        ),
        # A resource root entered again is evaluated by the draft it declares.
        (
            {"$schema": D4, "type": ["object", "integer"], "properties": {"a": {"$ref": "#"}}},
            {"a": 2.0},
            None,
        ),
        ({"$ref": "http://r/d4"}, 2.0, {"http://r/d4": {"$schema": D4, "type": "integer"}}),
        # The root under its own $id wins over a registry entry of that URI.
        (
            {
                "$id": "http://r/s",
                "properties": {"a": {"$ref": "http://r/s#/$defs/x"}},
                "$defs": {"x": False},
            },
            {"a": 1},
            {"http://r/s": {"$defs": {"x": True}}},
        ),
    ],
)
def test_base_uri_and_draft_changes_are_never_proved(
    schema: dict[str, Any], instance: Any, registry: dict[str, Any] | None
) -> None:
    assert not schemacheck.is_valid(schema, instance, registry=registry)
    if registry is None:
        assert _errors(schema, instance) != []
    else:
        reg: Registry[Any] = Registry().with_resources(
            (k, Resource.from_contents(v, default_specification=_spec_2020()))
            for k, v in registry.items()
        )
        try:
            errors = list(Draft202012Validator(schema, registry=reg).iter_errors(instance))
        except Exception:  # an unresolvable reference is not "valid" either
            errors = ["raised"]
        assert errors


def _spec_2020() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def test_policy_refuses_an_id_under_a_name_that_looks_like_a_keyword(tmp_path: Path) -> None:
    """`$defs: {default: {$id: ...}}`: `default` is a name there, and its $id counts."""
    from provenance.policy import PolicyError, loads

    for holder in ("$defs", "properties"):
        text = _policy(
            "  - type: training\n    predicate:\n"
            f"      {holder}:\n        default:\n          $id: http://e/sub\n"
        )
        with pytest.raises(PolicyError, match=r"\$id inside a predicate schema"):
            loads(text, base=tmp_path, source="p.yaml")
    text = _policy("  - type: training\n    predicate: {$schema: 5}\n")
    with pytest.raises(PolicyError, match="only JSON Schema draft 2020-12 is read, not 5"):
        loads(text, base=tmp_path, source="p.yaml")


@pytest.mark.parametrize(
    ("fragment", "words"),
    [
        ("{properties: {epochs: {type: integer, minimun: 100}}}", "did you mean 'minimum'"),
        ("{propertes: {epochs: {minimum: 100}}}", "did you mean 'properties'"),
        ("{dependencies: {a: [b]}}", "use dependentRequired or dependentSchemas"),
        ("{properties: {at: {type: string, format: date-time}}}", "never checked"),
        ("{allOf: [{anyOf: [{maximun: 1}]}]}", "'maximun' is not a JSON Schema"),
    ],
)
def test_a_predicate_schema_keyword_that_would_be_ignored_is_an_error(
    tmp_path: Path, fragment: str, words: str
) -> None:
    """jsonschema ignores what it does not know: a typo would switch the rule off."""
    from provenance.policy import PolicyError, loads

    text = _policy(f"  - type: training\n    predicate: {fragment}\n")
    with pytest.raises(PolicyError, match=re.escape(words)):
        loads(text, base=tmp_path, source="p.yaml")


def test_names_and_literals_are_not_keywords(tmp_path: Path) -> None:
    from provenance.policy import loads

    text = _policy(
        "  - type: training\n    predicate:\n"
        + "      properties: {minimun: {const: {propertes: 1}}, format: {enum: [x]}}\n"
        + "      examples: [{minimun: 1}]\n"
    )
    loads(text, base=tmp_path, source="p.yaml")


@pytest.mark.parametrize(
    ("fragment", "words"),
    [
        (
            "{contains: {const: 1}, properties: {m: {minContains: 2}}}",
            "'minContains' without 'contains'",
        ),
        ("{then: {required: [x]}}", "'then' without 'if'"),
        ("{$ref: '#/default', default: {type: bogus}}", "not a subschema"),
        ("{$ref: '#/properties', properties: {a: true}}", "not a subschema"),
        ("{$ref: '#/$defs/c/const', $defs: {c: {const: {minimum: 5}}}}", "not a subschema"),
        ("{$ref: '#/enum/0', enum: [{pattern: '('}]}", "not a subschema"),
    ],
)
def test_a_rule_that_would_never_act_is_an_error(tmp_path: Path, fragment: str, words: str) -> None:
    from provenance.policy import PolicyError, loads

    text = _policy(f"  - type: training\n    predicate: {fragment}\n")
    with pytest.raises(PolicyError, match=re.escape(words)):
        loads(text, base=tmp_path, source="p.yaml")


def test_references_in_literal_values_are_data(tmp_path: Path) -> None:
    from provenance.policy import loads

    text = _policy(
        "  - type: training\n    predicate:\n"
        + "      properties: {x: {const: {$ref: 'https://example.com/x'}}, $ref: {type: string}}\n"
        + "      default: {$ref: '#/nowhere', $id: 'http://e/'}\n"
        + "      $defs: {a: {$ref: '#/$defs/b'}, b: {enum: [{$dynamicRef: '#x'}]}}\n"
    )
    loads(text, base=tmp_path, source="p.yaml")


def test_a_predicate_schema_that_fails_to_evaluate_denies_not_crashes() -> None:
    """Whatever jsonschema raises on the policy's own schema is the policy's fault: a
    denial with a reason, never an unexpected error."""
    from provenance.policy._evaluate import _schema_problems

    out = _schema_problems({"properties": {"a": {"pattern": "("}}}, {"a": "x"})
    assert out and "cannot be evaluated" in out[0] and "error" in out[0]
