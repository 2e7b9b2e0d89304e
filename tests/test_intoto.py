"""The one in-toto Statement model and the registry of predicate types.

Every malformed shape is an InputError with a reason (never a TypeError or
AttributeError from a reader guessing at a dict), what is built reads back
as the same typed value, and the OMS statement bytes stay exactly what
``json.dumps`` writes, since other tools verify them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PROJECT_ROOT

from provenance import attest, intoto
from provenance.errors import InputError
from provenance.intoto import (
    PREDICATE_TYPES,
    STATEMENT_TYPE,
    DatasetPredicate,
    EvaluationPredicate,
    SlsaProvenance,
    Statement,
    Subject,
)
from provenance.manifest import Manifest, Resource, Serialization

ROOT = "ab" * 32
BUILDER = "https://ci.example.com/runners/gpu-7"


def _statement(**changes: Any) -> dict[str, Any]:
    stmt: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "m", "digest": {"sha256": ROOT}}],
        "predicateType": intoto.DATASET_PREDICATE_TYPE,
        "predicate": {"name": "corpus"},
    }
    stmt.update(changes)
    return stmt


def _bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()


# ---------------------------------------------------------------- the statement


def test_parse_reads_every_field():
    stmt = Statement.parse(_bytes(_statement()))
    assert stmt.type == STATEMENT_TYPE
    assert stmt.subjects == (Subject("m", {"sha256": ROOT}),)
    assert stmt.predicate_type == intoto.DATASET_PREDICATE_TYPE
    assert stmt.predicate == {"name": "corpus"}


def test_round_trip_and_compact_bytes():
    stmt = Statement.about("mödel", ROOT, intoto.EVALUATION_PREDICATE_TYPE, {"k": "é"})
    raw = stmt.to_bytes()
    assert raw == json.dumps(stmt.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    assert b" " not in raw and "mödel".encode() in raw  # compact, UTF-8 not \\u escapes
    assert list(stmt.to_json()) == ["_type", "subject", "predicateType", "predicate"]
    assert Statement.parse(raw) == stmt


def test_unknown_fields_are_ignored_and_missing_predicate_is_empty():
    """in-toto: consumers ignore fields they do not know; an unset predicate is empty."""
    data = _statement()
    del data["predicate"]
    data["subject"][0]["annotations"] = {"actual_hash_algorithm": "file-sha256"}
    stmt = Statement.parse(_bytes(data))
    assert stmt.predicate == {}
    assert stmt.subjects[0] == Subject("m", {"sha256": ROOT})


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{nope", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"[1]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (_bytes(_statement(_type="https://in-toto.io/Statement/v0.1")), "Statement v1"),
        (_bytes({k: v for k, v in _statement().items() if k != "_type"}), "Statement v1"),
        (_bytes({k: v for k, v in _statement().items() if k != "subject"}), "no subject"),
        (_bytes(_statement(subject=[])), "no subject"),
        (_bytes(_statement(subject={"name": "m"})), "subject is not a list"),
        (_bytes(_statement(subject=["m"])), "subject[0] is not a JSON object"),
        (_bytes(_statement(subject=[{"digest": {"sha256": ROOT}}])), "subject[0].name is missing"),
        (
            _bytes(_statement(subject=[{"name": 1, "digest": {"sha256": ROOT}}])),
            "subject[0].name is not a string",
        ),
        (_bytes(_statement(subject=[{"name": "m"}])), "subject[0].digest is missing"),
        (
            _bytes(_statement(subject=[{"name": "m", "digest": ROOT}])),
            "digest is not a JSON object",
        ),
        (_bytes(_statement(subject=[{"name": "m", "digest": {"sha256": 1}}])), "not a string"),
        (_bytes(_statement(subject=[{"name": "m", "digest": {}}])), "digest is empty"),
        (_bytes(_statement(predicateType=None)), "predicateType"),
        (_bytes(_statement(predicateType=7)), "predicateType"),
        (_bytes(_statement(predicateType="")), "predicateType"),
        (_bytes(_statement(predicate=[1])), "predicate is not a JSON object"),
        (_bytes(_statement(predicate="x")), "predicate is not a JSON object"),
    ],
)
def test_parse_refuses_every_malformed_shape_with_a_reason(data: bytes, words: str):
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("]", r"\]")) as info:
        Statement.parse(data)
    assert info.value.code == "statement-invalid"


def test_constructor_keeps_the_same_invariants():
    with pytest.raises(InputError, match="no subject"):
        Statement(subjects=(), predicate_type="x")
    with pytest.raises(InputError, match="Statement v1"):
        Statement(subjects=(Subject("m", {"sha256": ROOT}),), predicate_type="x", type="v0")
    with pytest.raises(InputError, match="predicateType"):
        Statement(subjects=(Subject("m", {"sha256": ROOT}),), predicate_type="")


def test_has_subject_digest():
    data = _statement(
        subject=[
            {"name": "a", "digest": {"sha256": "cd" * 32}},
            {"name": "b", "digest": {"sha512": "ef" * 64, "sha256": ROOT.upper()}},
        ]
    )
    stmt = Statement.parse(_bytes(data))
    assert stmt.has_subject_digest(ROOT)  # hex compares without regard to case
    assert stmt.has_subject_digest("cd" * 32)
    assert stmt.has_subject_digest("ef" * 64, "sha512")
    assert not stmt.has_subject_digest("ef" * 64)  # the algorithm matters
    assert not stmt.has_subject_digest("00" * 32)
    assert stmt.subject_names == "a, b"


# ------------------------------------------------- nothing but InputError, whatever the shape

_ODD_VALUES: tuple[object, ...] = (None, 0, -1, 1.5, True, "", "x", [], [1], {}, {"a": 1})


def _mutations(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], object]]:
    """Every (path, replacement) that swaps one value of the document for an odd one."""
    for value in _ODD_VALUES:
        if path:
            yield path, value
    if isinstance(doc, (dict, list)):
        children: Any = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, child in children:
            yield from _mutations(child, (*path, key))


def _replace(doc: Any, path: tuple[Any, ...], value: object) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _training_statement() -> dict[str, Any]:
    predicate = attest.training_predicate(
        datasets=[attest.Artifact("d", {"sha256": "1" * 64}, uri="hf://d", path="/data/d")],
        base_model=attest.Artifact("b", {"sha256": "2" * 64}, uri="hf://b"),
        source_commit="3" * 40,
        image=f"registry.example.com/trainer@sha256:{'4' * 64}",
        params={"lr": 0.1},
        builder_id=BUILDER,
        invocation_id="https://ci.example.com/runs/1",
        started_on="2024-01-01T00:00:00Z",
        finished_on="2024-01-01T01:00:00Z",
        byproducts=[attest.Artifact("log", {"sha256": "5" * 64}, path="/logs/log")],
    )
    return _statement(predicateType=intoto.SLSA_PREDICATE_TYPE, predicate=predicate)


def _evaluation_statement() -> dict[str, Any]:
    predicate = attest.evaluation_predicate(
        metrics={"accuracy": 0.9, "passed": True},
        datasets=[attest.Artifact("e", {"sha256": "6" * 64}, path="/data/e")],
        thresholds={"accuracy": ">=0.8"},
        evaluator_id="https://ci.example.com/eval",
    )
    return _statement(predicateType=intoto.EVALUATION_PREDICATE_TYPE, predicate=predicate)


def _dataset_statement() -> dict[str, Any]:
    predicate = attest.dataset_predicate(
        name="corpus",
        source_uri="https://data.example.com",
        license="MIT",
        version="1",
        description="text",
        records=3,
        files=2,
        manifest_digest="7" * 64,
        splits={"train": 2, "test": None},
    )
    return _statement(predicate=predicate)


def _read_fully(data: object) -> object:
    """Everything a reader here does with a statement: parse it and its predicate."""
    stmt = Statement.from_json(data)
    known = intoto.predicate_type(stmt.predicate_type)
    if known is not None and known.parser is not None:
        return known.parse(stmt.predicate)
    return Manifest.from_statement(stmt)


@pytest.mark.parametrize(
    "make",
    [
        _training_statement,
        _evaluation_statement,
        _dataset_statement,
        lambda: Manifest(
            "m",
            (Resource("w:0:4", "sha256-sharded-4", bytes(32)),),
            Serialization(method="shards", shard_size=4, ignore_paths=(".git",)),
        ).to_statement(),
        lambda: Manifest("m", (Resource("a", "sha256", bytes(32)),)).to_statement(),
    ],
    ids=["slsa", "evaluation", "dataset", "oms-shards", "oms-files"],
)
def test_any_odd_value_anywhere_is_an_input_error(make):
    """Swap each value of a valid statement for each odd one: parse or InputError, nothing else."""
    good = make()
    _read_fully(good)
    tried = 0
    for path, value in _mutations(good):
        with contextlib.suppress(InputError):
            _read_fully(_replace(good, path, value))
        tried += 1
    assert tried > 50


# ---------------------------------------------------------------- typed predicates


def test_typed_predicates_read_back_what_the_builders_wrote():
    for make, cls in (
        (_training_statement, SlsaProvenance),
        (_evaluation_statement, EvaluationPredicate),
        (_dataset_statement, DatasetPredicate),
    ):
        stmt = Statement.from_json(make())
        typed = PREDICATE_TYPES[stmt.predicate_type].parse(stmt.predicate)
        assert isinstance(typed, cls)
        assert typed.to_json() == stmt.predicate


def test_slsa_fields_and_descriptors():
    stmt = Statement.from_json(_training_statement())
    run = intoto.SLSA_PROVENANCE.parse(stmt.predicate)
    assert run.build_type == intoto.TRAINING_BUILD_TYPE
    assert run.kind == "training" and run.builder_id == BUILDER
    assert run.started_on == "2024-01-01T00:00:00Z"
    roles = [d.role for d in run.resolved_dependencies]
    assert roles == ["training-data", "base-model", "source", "container-image"]
    data = run.resolved_dependencies[0]
    assert data.path == "/data/d" and data.digest == {"sha256": "1" * 64}
    assert run.resolved_dependencies[2].digest == {"gitCommit": "3" * 40}
    assert run.byproducts[0].role is None and run.byproducts[0].path == "/logs/log"


def test_slsa_of_another_builder_is_read_too():
    """Any SLSA v1 provenance parses; only this project's build type has a schema here."""
    predicate = {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main"}},
            "internalParameters": {"github": {}},
            "resolvedDependencies": [{"uri": "git+https://github.com/o/r", "digest": {}}],
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner", "version": {}}},
    }
    run = intoto.SLSA_PROVENANCE.parse(predicate)
    assert run.kind is None and run.builder_id == "https://github.com/actions/runner"
    assert intoto.SLSA_PROVENANCE.schema_for(predicate) is None
    predicate["buildDefinition"]["buildType"] = intoto.TRAINING_BUILD_TYPE
    assert intoto.SLSA_PROVENANCE.schema_for(predicate) == "training.schema.json"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: p.pop("runDetails"), "predicate.runDetails is not a JSON object"),
        (lambda p: p["runDetails"]["builder"].pop("id"), "predicate.runDetails.builder.id"),
        (
            lambda p: p["buildDefinition"]["resolvedDependencies"].append("x"),
            "resolvedDependencies[4] is not a JSON object",
        ),
        (
            lambda p: p["buildDefinition"]["resolvedDependencies"][0]["annotations"].update(path=3),
            "resolvedDependencies[0].annotations.path is not a string",
        ),
    ],
)
def test_typed_parse_names_the_field(change, words: str):
    stmt = _training_statement()
    change(stmt["predicate"])
    with pytest.raises(InputError) as info:
        intoto.SLSA_PROVENANCE.parse(stmt["predicate"])
    assert words in str(info.value)


def test_metric_values_are_json_scalars():
    stmt = _evaluation_statement()
    stmt["predicate"]["metrics"][0]["value"] = [1]
    with pytest.raises(InputError, match="number, string or boolean"):
        intoto.EVALUATION.parse(stmt["predicate"])
    stmt["predicate"]["metrics"][0]["value"] = float("nan")
    with pytest.raises(InputError, match="number, string or boolean"):
        intoto.EVALUATION.parse(stmt["predicate"])


def test_counts_are_integers_not_booleans():
    with pytest.raises(InputError, match="records is not an integer"):
        intoto.DATASET.parse({"name": "d", "records": True})
    with pytest.raises(InputError, match="records is not an integer"):
        intoto.DATASET.parse({"name": "d", "splits": [{"name": "a", "records": 1.5}]})


# ---------------------------------------------------------------- the registry


def test_registry_lists_every_predicate_type():
    assert set(PREDICATE_TYPES) == {
        intoto.OMS_PREDICATE_TYPE,
        intoto.LEGACY_PREDICATE_TYPE,
        intoto.SLSA_PREDICATE_TYPE,
        intoto.DATASET_PREDICATE_TYPE,
        intoto.EVALUATION_PREDICATE_TYPE,
    }
    assert intoto.predicate_type("https://example.com/unknown/v1") is None
    for uri, known in PREDICATE_TYPES.items():
        assert known.uri == uri and known.name
        for schema in (known.schema, *known.build_schemas.values()):
            if schema is not None:
                assert (PROJECT_ROOT / "schemas" / schema).is_file(), schema
    with pytest.raises(InputError, match="no typed parser"):
        intoto.OMS_SIGNATURE.parse({})
    with pytest.raises(TypeError):
        PREDICATE_TYPES["x"] = intoto.OMS_SIGNATURE  # type: ignore[index]


def test_attest_constants_are_the_registry_uris():
    assert intoto.DATASET.uri == attest.DATASET_PREDICATE_TYPE
    assert intoto.EVALUATION.uri == attest.EVALUATION_PREDICATE_TYPE
    assert intoto.SLSA_PROVENANCE.uri == attest.SLSA_PREDICATE_TYPE


# ---------------------------------------------------------------- the OMS statement


def _manifests() -> list[Manifest]:
    names = ["a", "é/模型.bin", 'q"uote', "line\u2028sep", "emoji😀", "a/b", "a-c"]
    out = []
    for s in (
        Serialization(),
        Serialization(allow_symlinks=True, ignore_paths=(".git", "model.sig")),
        Serialization(method="shards", shard_size=10, hash_type="blake2b"),
        Serialization(hash_type="sha384"),
    ):
        size = {"sha256": 32, "sha384": 48, "blake2b": 64}[s.hash_type]
        res = tuple(
            Resource(
                n if s.method == "files" else f"{n}:0:10", s.resource_algorithm, bytes([i]) * size
            )
            for i, n in enumerate(names)
        )
        out.append(Manifest("mödel", res, s))
    out.append(Manifest("w.gguf", (Resource(".", "sha256", bytes(32)),)))
    out.append(Manifest("empty", ()))
    return out


@pytest.mark.parametrize("manifest", _manifests(), ids=lambda m: m.serialization.method)
def test_statement_bytes_is_json_dumps_byte_for_byte(manifest: Manifest):
    expected = json.dumps(manifest.to_statement(), separators=(",", ":"), ensure_ascii=False)
    assert manifest.statement_bytes() == expected.encode("utf-8")
    assert manifest.statement().to_bytes() == manifest.statement_bytes()
    assert Manifest.from_statement(Statement.parse(manifest.statement_bytes())) == manifest
    assert Manifest.from_statement(json.loads(manifest.statement_bytes())) == manifest


def test_statement_bytes_golden():
    """The OMS wire format, pinned: key order, spelling, no whitespace."""
    m = Manifest("m", (Resource("a", "sha256", bytes(32)),))
    root = hashlib.sha256(bytes(32)).hexdigest()
    golden = (
        '{"_type":"https://in-toto.io/Statement/v1",'
        f'"subject":[{{"name":"m","digest":{{"sha256":"{root}"}}}}],'
        '"predicateType":"https://model_signing/signature/v1.0",'
        '"predicate":{"serialization":{"method":"files","hash_type":"sha256",'
        '"allow_symlinks":false},'
        f'"resources":[{{"name":"a","algorithm":"sha256","digest":"{"00" * 32}"}}]}}}}'
    )
    assert m.statement_bytes() == golden.encode()


def test_legacy_digests_statement():
    """model-signing 0.2: one subject per file (with annotations), placeholder predicate."""
    a, b = hashlib.sha256(b"1").hexdigest(), hashlib.sha256(b"2").hexdigest()
    data = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": "f1", "digest": {"sha256": a}, "annotations": {"x": "file-sha256"}},
            {"name": "f2", "digest": {"sha256": b}},
        ],
        "predicateType": intoto.LEGACY_PREDICATE_TYPE,
        "predicate": {"unused": "Unused, just passed due to API requirements"},
    }
    m = Manifest.from_statement(Statement.parse(json.dumps(data, indent=2).encode()))
    assert [(r.name, r.digest.hex()) for r in m.resources] == [("f1", a), ("f2", b)]
    data["subject"][1]["digest"] = {"sha512": "00" * 64}
    with pytest.raises(InputError, match="f2"):
        Manifest.from_statement(data)


def test_oms_predicate_errors_are_input_errors():
    good = Manifest("m", (Resource("a", "sha256", bytes(32)),)).to_statement()
    for change, words in (
        (lambda s: s["predicate"].pop("serialization"), "serialization is not an object"),
        (lambda s: s["predicate"].update(resources={}), "resources is not a list"),
        (lambda s: s["predicate"]["serialization"].update(hash_type=["sha256"]), "hash_type"),
        (lambda s: s["subject"][0].update(digest={"sha512": "00" * 64}), "no sha256"),
    ):
        s = copy.deepcopy(good)
        change(s)
        with pytest.raises(InputError, match=words):
            Manifest.from_statement(s)
