"""Lineage attestations: datasets, training runs and evaluations as signed in-toto statements.

A two-generation lineage (dataset -> base model -> fine-tune, plus an
evaluation) is built through the real CLI, every statement signed and
verified; each way an attestation can be wrong is rejected with a reason;
every statement produced validates against schemas/ and follows the in-toto
Statement v1 and SLSA Provenance v1 field rules; storage, CI detection and
bad input are checked last.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from conftest import PROJECT_ROOT, assert_fails, make_model, run_cli
from referencing import Registry, Resource

import provenance
from provenance import attest
from provenance.attest import _store
from provenance.errors import InputError, UsageError
from provenance.signing import KeySigner, KeyVerifier

SCHEMAS = PROJECT_ROOT / "schemas"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"
IMAGE_DIGEST = "a" * 64
BUILDER = "https://ci.example.com/runners/gpu-7"
CI_VARS = (
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_WORKFLOW_REF",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_REF",
    "GITHUB_SHA",
    "GITLAB_CI",
    "CI_SERVER_URL",
    "CI_PROJECT_PATH",
    "CI_RUNNER_ID",
    "CI_COMMIT_REF_NAME",
    "CI_JOB_URL",
    "CI_COMMIT_SHA",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key password, and no CI of the machine running the tests."""
    monkeypatch.delenv("PROVENANCE_KEY_PASSWORD", raising=False)
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)


# --------------------------------------------------------------------------- helpers


def ok(result) -> str:
    out = result.output + (result.stderr or "")
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{out}"
    assert "Traceback" not in out
    return result.stdout


fails = assert_fails  # the shared helper, under the name these tests use


def make_dataset(folder: Path, records: dict[str, list[str]]) -> Path:
    """A folder of small JSONL files, one per split, plus a card."""
    folder.mkdir(parents=True)
    for split, rows in records.items():
        (folder / split).mkdir()
        text = "".join(json.dumps({"text": r}) + "\n" for r in rows)
        (folder / split / "part-00000.jsonl").write_text(text)
    (folder / "README.md").write_text(f"# {folder.name}\n")
    return folder


def statements(target: Path) -> list[dict]:
    """Every readable statement in a target's attestations file (parsed, not verified)."""
    file = attest.default_attestations_path(target)
    out = []
    for line in _store.read(file):
        assert line.bundle is not None, line.error
        out.append(json.loads(line.bundle.envelope.payload))
    return out


def jsonl_lines(target: Path) -> list[bytes]:
    raw = attest.default_attestations_path(target).read_bytes()
    return [ln for ln in raw.split(b"\n") if ln]


def write_lines(target: Path, lines: list[bytes]) -> None:
    attest.default_attestations_path(target).write_bytes(b"".join(ln + b"\n" for ln in lines))


def digest_of(target: Path) -> str:
    return attest.subject_digest(target)[1]


def temp_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


# --------------------------------------------------------------- schemas and spec rules


@functools.cache
def _schema_docs() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(SCHEMAS.glob("*.json"))}


@functools.cache
def _registry() -> Registry:
    return Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in _schema_docs().values()
    )


def schema_errors(name: str, instance: object) -> list[str]:
    schema = _schema_docs()[name]
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


PREDICATE_SCHEMAS = {
    attest.DATASET_PREDICATE_TYPE: "dataset.schema.json",
    attest.EVALUATION_PREDICATE_TYPE: "evaluation.schema.json",
    attest.SLSA_PREDICATE_TYPE: "training.schema.json",
}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return False
    m = _RFC3339.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        datetime.datetime(y, mo, d, h, mi, min(s, 59))
    except ValueError:
        return False
    return s <= 60


def is_uri(value: object) -> bool:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return bool(_SCHEME.match(parts.scheme or "")) and bool(parts.netloc or parts.path)


def check_descriptor(desc: object, where: str) -> None:
    """in-toto ResourceDescriptor v1: an object with at least one of uri, digest, content."""
    assert isinstance(desc, dict), f"{where}: {desc!r}"
    assert {"uri", "digest", "content"} & set(desc), f"{where}: no uri/digest/content: {desc}"
    if "uri" in desc:
        assert is_uri(desc["uri"]), f"{where}: uri {desc['uri']!r}"
    if "digest" in desc:
        assert isinstance(desc["digest"], dict) and desc["digest"], where
        for algo, value in desc["digest"].items():
            assert re.fullmatch(r"[0-9a-f]+", value), f"{where}: digest {algo}={value!r}"
    if "annotations" in desc:
        assert isinstance(desc["annotations"], dict), where


def check_statement(stmt: dict) -> None:
    """Schemas in schemas/, then the in-toto Statement v1 and SLSA Provenance v1 rules."""
    errors = schema_errors("statement.schema.json", stmt)
    assert not errors, errors
    ptype = stmt["predicateType"]
    assert ptype in PREDICATE_SCHEMAS, ptype
    errors = schema_errors(PREDICATE_SCHEMAS[ptype], stmt["predicate"])
    assert not errors, errors

    # in-toto Statement v1
    assert stmt["_type"] == STATEMENT_V1
    assert set(stmt) <= {"_type", "subject", "predicateType", "predicate"}, set(stmt)
    assert isinstance(stmt["subject"], list) and stmt["subject"], stmt["subject"]
    for s in stmt["subject"]:
        assert isinstance(s.get("name"), str), s
        assert re.fullmatch(r"[0-9a-f]{64}", s["digest"]["sha256"]), s
    assert is_uri(ptype), ptype
    assert isinstance(stmt["predicate"], dict)

    predicate = stmt["predicate"]
    if ptype == attest.SLSA_PREDICATE_TYPE:
        build = predicate["buildDefinition"]
        assert is_uri(build["buildType"]), build["buildType"]
        assert build["buildType"] == attest.TRAINING_BUILD_TYPE
        assert isinstance(build["externalParameters"], dict)
        assert isinstance(build.get("internalParameters", {}), dict)
        deps = build.get("resolvedDependencies", [])
        assert isinstance(deps, list)
        for i, dep in enumerate(deps):
            check_descriptor(dep, f"resolvedDependencies[{i}]")
        run = predicate["runDetails"]
        builder_id = run["builder"]["id"]
        assert isinstance(builder_id, str) and builder_id, run
        assert is_uri(builder_id), builder_id
        for key in ("startedOn", "finishedOn"):
            if key in run.get("metadata", {}):
                assert is_rfc3339(run["metadata"][key]), (key, run["metadata"][key])
        for i, b in enumerate(run.get("byproducts", [])):
            check_descriptor(b, f"byproducts[{i}]")
    elif ptype == attest.EVALUATION_PREDICATE_TYPE:
        assert is_rfc3339(predicate["evaluatedOn"]), predicate["evaluatedOn"]
        for i, d in enumerate(predicate.get("datasets", [])):
            check_descriptor(d, f"datasets[{i}]")


def check_all(*targets: Path) -> int:
    n = 0
    for t in targets:
        for stmt in statements(t):
            check_statement(stmt)
            n += 1
    return n


# --------------------------------------------------------------------------- the lineage


@dataclass
class Lineage:
    root: Path
    ds1: Path
    ds2: Path
    evalset: Path
    base: Path
    ft: Path
    log: Path


def build_lineage(root: Path, key) -> Lineage:
    """ds1 -> base (trained); base + ds2 -> ft (fine-tuned); ft evaluated on evalset."""
    ds1 = make_dataset(root / "corpus-a", {"train": ["a", "b", "c"], "test": ["d"]})
    ds2 = make_dataset(root / "instructions", {"train": ["x", "y"]})
    evalset = make_dataset(root / "heldout", {"test": ["q1", "q2"]})
    sign_with = ("--key", key.private)

    ok(
        run_cli(
            "attest", "dataset", ds1, *sign_with,
            "--name", "corpus-a",
            "--source-uri", "https://data.example.com/corpus-a",
            "--license", "CC-BY-4.0",
            "--version", "2024.05",
            "--description", "web text",
            "--records", "4",
            "--split", "train=3",
            "--split", "test=1",
        )
    )  # fmt: skip
    ok(run_cli("attest", "dataset", ds2, *sign_with, "--license", "Apache-2.0"))
    ok(run_cli("attest", "dataset", evalset, *sign_with, "--split", "test=2"))

    base = make_model(root / "base")
    ok(run_cli("sign", base, *sign_with))
    ok(
        run_cli(
            "attest", "training", base, *sign_with,
            "--dataset", ds1,
            "--source-commit", COMMIT,
            "--source-uri", "git+https://git.example.com/ml/train",
            "--param", "lr=0.001",
            "--param", "epochs=3",
            "--param", "optimizer=adamw",
            "--entry-point", "train.py",
            "--builder-id", BUILDER,
            "--invocation-id", "https://ci.example.com/runs/1",
            "--started-on", "2024-05-01T10:00:00Z",
        )
    )  # fmt: skip

    ft = make_model(root / "ft")
    ok(run_cli("sign", ft, *sign_with))
    logs = root / "logs"
    logs.mkdir()
    log = logs / "train.log"
    log.write_text("step 1 loss 2.3\nstep 2 loss 1.9\n")
    ok(
        run_cli(
            "attest", "training", ft, *sign_with,
            "--base-model", base,
            "--dataset", ds2,
            "--param", "lr=3e-5",
            "--byproduct", log,
            "--builder-id", BUILDER,
            "--started-on", "2024-05-02T08:00:00+02:00",
            "--finished-on", "2024-05-02T09:30:00Z",
        )
    )  # fmt: skip
    ok(
        run_cli(
            "attest", "eval", ft, *sign_with,
            "--metric", "accuracy=0.91",
            "--metric", "f1=0.88",
            "--dataset", evalset,
            "--threshold", "accuracy>=0.9",
            "--evaluator-id", "https://ci.example.com/eval",
        )
    )  # fmt: skip
    return Lineage(root, ds1, ds2, evalset, base, ft, log)


@pytest.fixture
def lineage(tmp_path: Path, p256) -> Lineage:
    built = build_lineage(tmp_path, p256)
    # Every statement the lineage produced follows the schemas and the specs.
    assert check_all(built.ds1, built.ds2, built.evalset, built.base, built.ft) == 6
    return built


# ------------------------------------------------------- 1. two generations, all verified


def test_lineage_every_statement_signed_and_verified(lineage: Lineage, p256):
    for model, count in ((lineage.base, 1), (lineage.ft, 2)):
        out = ok(run_cli("verify", model, "--key", p256.public, "--attestations"))
        assert f"Attestations: {count} verified" in out, out
        args = ("verify", model, "--key", p256.public, "--attestations", "--json")
        data = json.loads(ok(run_cli(*args)))
        assert data["ok"] is True
        assert data["root_digest"] == digest_of(model)
        assert [c["ok"] for c in data["attestations"]] == [True] * count
        assert all(c["problems"] == [] for c in data["attestations"])
    types = [s["predicateType"] for s in statements(lineage.ft)]
    assert types == [attest.SLSA_PREDICATE_TYPE, attest.EVALUATION_PREDICATE_TYPE]


def test_dataset_without_signature_verifies_its_attestations(lineage: Lineage, p256):
    for ds in (lineage.ds1, lineage.ds2, lineage.evalset):
        assert not (ds / "model.sig").exists()
        out = ok(run_cli("verify", ds, "--key", p256.public, "--attestations-only"))
        assert "No signature" in out and digest_of(ds) in out, out
        args = ("verify", ds, "--key", p256.public, "--attestations-only", "--json")
        data = json.loads(ok(run_cli(*args)))
        assert data["ok"] is True and data["root_digest"] == digest_of(ds)


def test_dataset_statement_names_its_root_digest_and_records_its_card(lineage: Lineage):
    (stmt,) = statements(lineage.ds1)
    hashed = ok(run_cli("hash", lineage.ds1)).strip()
    assert stmt["subject"] == [{"name": "corpus-a", "digest": {"sha256": hashed}}]
    assert stmt["predicateType"] == attest.DATASET_PREDICATE_TYPE
    pred = stmt["predicate"]
    assert pred["name"] == "corpus-a"
    assert pred["sourceUri"] == "https://data.example.com/corpus-a"
    assert pred["license"] == "CC-BY-4.0"
    assert pred["version"] == "2024.05"
    assert pred["records"] == 4
    assert pred["splits"] == [{"name": "train", "records": 3}, {"name": "test", "records": 1}]
    # The attestation file lives in the dataset but is not part of its digest.
    assert (lineage.ds1 / "model.intoto.jsonl").is_file()


def test_dataset_predicate_records_manifest_or_its_digest(lineage: Lineage):
    """Issue item 1: the predicate records 'the dataset manifest or its digest'."""
    (stmt,) = statements(lineage.ds1)
    pred = stmt["predicate"]
    assert "manifestDigest" in pred or "manifest" in pred, (
        f"`provenance attest dataset` records neither the manifest nor its digest: {pred}"
    )


def test_training_statement_records_inputs_and_run(lineage: Lineage):
    (base_stmt,) = statements(lineage.base)
    ft_stmt = statements(lineage.ft)[0]
    assert base_stmt["subject"][0]["digest"]["sha256"] == digest_of(lineage.base)
    assert ft_stmt["subject"][0]["digest"]["sha256"] == digest_of(lineage.ft)

    build = base_stmt["predicate"]["buildDefinition"]
    assert build["buildType"] == attest.TRAINING_BUILD_TYPE
    ext = build["externalParameters"]
    assert ext["kind"] == "training" and ext["entryPoint"] == "train.py"
    assert ext["hyperparameters"] == {"lr": 0.001, "epochs": 3, "optimizer": "adamw"}
    by_role = {d["annotations"]["role"]: d for d in build["resolvedDependencies"]}
    assert by_role["training-data"]["digest"] == {"sha256": digest_of(lineage.ds1)}
    assert by_role["source"]["digest"] == {"gitCommit": COMMIT}
    assert by_role["source"]["uri"] == "git+https://git.example.com/ml/train"
    run = base_stmt["predicate"]["runDetails"]
    assert run["builder"] == {"id": BUILDER}
    assert run["metadata"]["invocationId"] == "https://ci.example.com/runs/1"
    assert run["metadata"]["startedOn"] == "2024-05-01T10:00:00Z"
    assert is_rfc3339(run["metadata"]["finishedOn"])  # defaults to now

    build = ft_stmt["predicate"]["buildDefinition"]
    assert build["externalParameters"]["kind"] == "fine-tuning"
    by_role = {d["annotations"]["role"]: d for d in build["resolvedDependencies"]}
    assert by_role["base-model"]["digest"] == {"sha256": digest_of(lineage.base)}
    assert by_role["training-data"]["digest"] == {"sha256": digest_of(lineage.ds2)}
    run = ft_stmt["predicate"]["runDetails"]
    assert run["metadata"]["finishedOn"] == "2024-05-02T09:30:00Z"
    assert len(run["byproducts"]) == 1 and run["byproducts"][0]["name"] == "train.log"


def test_evaluation_statement(lineage: Lineage):
    stmt = statements(lineage.ft)[1]
    pred = stmt["predicate"]
    assert pred["metrics"] == [
        {"name": "accuracy", "value": 0.91},
        {"name": "f1", "value": 0.88},
    ]
    assert pred["thresholds"] == [{"metric": "accuracy", "condition": ">=0.9"}]
    assert pred["evaluator"] == {"id": "https://ci.example.com/eval"}
    (ds,) = pred["datasets"]
    assert ds["digest"] == {"sha256": digest_of(lineage.evalset)}
    assert ds["annotations"]["role"] == "evaluation-data"


def test_training_config_file_is_recorded(model: Path, p256, tmp_path: Path):
    """--config FILE: the training config is recorded as given in externalParameters."""
    config = tmp_path / "train-config.json"
    config.write_text(json.dumps({"lora": {"rank": 8}, "seed": 1}))
    data = json.loads(
        ok(
            run_cli(
                "attest", "training", model, "--key", p256.private, "--json",
                "--config", config, "--builder-id", BUILDER,
            )
        )
    )  # fmt: skip
    check_statement(data["statement"])
    external = data["statement"]["predicate"]["buildDefinition"]["externalParameters"]
    assert external["config"] == {"lora": {"rank": 8}, "seed": 1}
    # A config that is not an object is bad input, in one line.
    config.write_text("[1, 2]")
    fails(
        run_cli(
            "attest", "training", model, "--key", p256.private,
            "--config", config, "--builder-id", BUILDER,
        ),
        3,
        "object",
    )  # fmt: skip


def test_container_image_is_a_resource_descriptor(model: Path, p256):
    """--image NAME@sha256:DIGEST: recorded by digest, and its uri is a URI (in-toto v1)."""
    data = json.loads(
        ok(
            run_cli(
                "attest", "training", model, "--key", p256.private, "--json",
                "--image", f"registry.example.com/trainer@sha256:{IMAGE_DIGEST}",
                "--builder-id", BUILDER,
            )
        )
    )  # fmt: skip
    deps = data["statement"]["predicate"]["buildDefinition"]["resolvedDependencies"]
    (image,) = [d for d in deps if d["annotations"]["role"] == "container-image"]
    assert image["digest"] == {"sha256": IMAGE_DIGEST}
    assert "registry.example.com/trainer" in image["uri"]
    assert is_uri(image["uri"]), (
        f"the container image's ResourceDescriptor uri {image['uri']!r} is not a URI "
        "(no scheme); in-toto v1 wants e.g. pkg:docker/... or oci://..."
    )
    check_statement(data["statement"])


def test_lineage_json_edges(lineage: Lineage):
    graph = json.loads(ok(run_cli("lineage", lineage.ft, "--format", "json")))
    ft, base = digest_of(lineage.ft), digest_of(lineage.base)
    ds1, ds2, ev = (digest_of(p) for p in (lineage.ds1, lineage.ds2, lineage.evalset))
    assert graph["root"] == ft
    edges = {(e["from"], e["to"], e["role"]) for e in graph["edges"]}
    assert (ft, base, "base-model") in edges
    assert (ft, ds2, "training-data") in edges
    assert (base, ds1, "training-data") in edges
    assert (ft, ev, "evaluation-data") in edges
    nodes = graph["nodes"]
    assert nodes[ft]["kind"] == "model" and nodes[base]["kind"] == "model"
    assert {nodes[d]["kind"] for d in (ds1, ds2, ev)} == {"dataset"}
    assert nodes[ds1]["name"] == "corpus-a" and nodes[ds1]["license"] == "CC-BY-4.0"
    assert nodes[ft]["producedBy"] == "fine-tuning" and nodes[base]["producedBy"] == "training"
    assert nodes[ft]["evaluations"] == [{"accuracy": 0.91, "f1": 0.88}]
    assert all(not k.startswith("_") for n in nodes.values() for k in n)


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "tree"])
def test_lineage_renderings_mention_every_node(lineage: Lineage, fmt: str):
    out = ok(run_cli("lineage", lineage.ft, "--format", fmt))
    first = out.splitlines()[0]
    if fmt == "dot":
        assert first.startswith("digraph") and out.rstrip().endswith("}")
    elif fmt == "mermaid":
        assert first.startswith("flowchart")
    for name, path in (
        ("ft", lineage.ft),
        ("base", lineage.base),
        ("corpus-a", lineage.ds1),
        ("instructions", lineage.ds2),
        ("heldout", lineage.evalset),
    ):
        assert name in out, (name, out)
        assert f"sha256:{digest_of(path)[:12]}" in out, (name, out)
    for role in ("base-model", "training-data", "evaluation-data"):
        assert role in out


def test_inspect_shows_signature_attestations_and_tree(lineage: Lineage):
    out = ok(run_cli("inspect", lineage.ft))
    assert "Signature" in out and f"Root digest  sha256:{digest_of(lineage.ft)}" in out
    assert f"line 1: {attest.SLSA_PREDICATE_TYPE}" in out
    assert f"line 2: {attest.EVALUATION_PREDICATE_TYPE}" in out
    tree = out[out.index("Lineage") :]
    assert "base-model: base" in tree
    assert "training-data: instructions" in tree
    assert "training-data: corpus-a" in tree  # the base model's data, one level down
    assert "evaluation-data: heldout" in tree
    # The dataset is shown below the base model: deeper indentation.
    rows = tree.splitlines()
    base_row = next(r for r in rows if "base-model: base" in r)
    ds1_row = next(r for r in rows if "corpus-a" in r)
    indent = len(base_row) - len(base_row.lstrip(" \u2502"))
    assert len(ds1_row) - len(ds1_row.lstrip(" \u2502")) > indent

    data = json.loads(ok(run_cli("inspect", lineage.ft, "--json")))
    assert [a["line"] for a in data["attestations"]] == [1, 2]

    # A dataset folder without a signature is inspected too.
    out = ok(run_cli("inspect", lineage.ds1))
    assert "Signature" not in out and attest.DATASET_PREDICATE_TYPE in out


def test_python_api_two_generations(tmp_path: Path, p256):
    signer = KeySigner.from_file(p256.private)
    verifier = KeyVerifier.from_files(p256.public)
    ds1 = make_dataset(tmp_path / "ds1", {"train": ["a", "b"]})
    ds2 = make_dataset(tmp_path / "ds2", {"train": ["c"]})
    base = make_model(tmp_path / "base")
    ft = make_model(tmp_path / "ft")
    provenance.sign(base, signer)
    provenance.sign(ft, signer)

    r = attest.attest(
        ds1,
        attest.DATASET_PREDICATE_TYPE,
        attest.dataset_predicate(name="ds1", license="MIT", splits={"train": 2}, records=2),
        signer,
    )
    assert r.path == ds1 / "model.intoto.jsonl" and r.line == 1
    attest.attest(ds2, attest.DATASET_PREDICATE_TYPE, attest.dataset_predicate(name="d2"), signer)
    attest.attest(
        base,
        attest.SLSA_PREDICATE_TYPE,
        attest.training_predicate(
            datasets=[attest.resolve(str(ds1))], builder_id=BUILDER, finished_on=attest.now()
        ),
        signer,
    )
    attest.attest(
        ft,
        attest.SLSA_PREDICATE_TYPE,
        attest.training_predicate(
            datasets=[attest.resolve(str(ds2))],
            base_model=attest.resolve(str(base)),
            kind="fine-tuning",
            builder_id=BUILDER,
        ),
        signer,
    )
    r = attest.attest(
        ft,
        attest.EVALUATION_PREDICATE_TYPE,
        attest.evaluation_predicate(metrics={"accuracy": 0.9}, datasets=[attest.resolve(str(ds2))]),
        signer,
    )
    assert r.line == 2
    assert r.statement.subjects[0].digest["sha256"] == digest_of(ft)

    for model, count in ((base, 1), (ft, 2)):
        root = provenance.verify(model, verifier).root_digest
        report = attest.verify_attestations(model, verifier, root)
        assert report.ok, report.problems
        assert len(report.checks) == count and len(report.statements()) == count
        assert all(c.signer and "P-256" in c.signer for c in report.checks)
    for ds in (ds1, ds2):
        report = attest.verify_attestations(ds, verifier, digest_of(ds))
        assert report.ok, report.problems
    assert check_all(ds1, ds2, base, ft) == 5

    # A statement about ft is not a statement about base.
    report = attest.verify_attestations(ft, verifier, digest_of(base))
    assert not report.ok
    assert all("another model" in p for p in report.problems)


# ----------------------------------------------------------------- 2. rejected, with reasons


def test_reject_attestation_about_another_model(lineage: Lineage, p256):
    foreign = jsonl_lines(lineage.base)[0]
    write_lines(lineage.ft, [*jsonl_lines(lineage.ft), foreign])
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert "line 3" in err and "another model" in err, err
    assert "base" in err  # names whose statement it is


def test_reject_dataset_changed_on_disk(lineage: Lineage, p256):
    (lineage.ds1 / "train" / "part-00000.jsonl").write_text('{"text": "poisoned"}\n')
    err = fails(run_cli("verify", lineage.base, "--key", p256.public, "--attestations"), 1)
    assert "no longer matches its digest" in err and "corpus-a" in err, err
    assert "training-data" in err
    # The dataset's own attestation is no longer about what is on disk either.
    err = fails(run_cli("verify", lineage.ds1, "--key", p256.public, "--attestations-only"), 1)
    assert "another model" in err or "subject" in err, err


def test_reject_base_model_changed_on_disk(lineage: Lineage, p256):
    (lineage.base / "config.json").write_text('{"hidden_size": 9}\n')
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert "base-model" in err and "no longer matches its digest" in err, err


def test_reject_modified_predicate(lineage: Lineage, p256):
    lines = jsonl_lines(lineage.ft)
    bundle = json.loads(lines[1])
    stmt = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    stmt["predicate"]["metrics"][0]["value"] = 0.99  # keep the signature
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(stmt, separators=(",", ":")).encode()
    ).decode()
    lines[1] = json.dumps(bundle, separators=(",", ":")).encode()
    write_lines(lineage.ft, lines)
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert "line 2" in err and "signature" in err, err
    assert "attestation line 1" not in err


def test_reject_field_the_schema_forbids(lineage: Lineage, p256):
    signer = KeySigner.from_file(p256.private)
    name, digest = attest.subject_digest(lineage.ft)
    predicate = {**attest.evaluation_predicate(metrics={"accuracy": 0.5}), "secretSauce": True}
    # attest() itself refuses to sign it (the caller's input: a usage error)...
    with pytest.raises(UsageError, match="secretSauce"):
        attest.attest(lineage.ft, attest.EVALUATION_PREDICATE_TYPE, predicate, signer)
    # ...so sign and append it by hand.
    stmt = {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": digest}}],
        "predicateType": attest.EVALUATION_PREDICATE_TYPE,
        "predicate": predicate,
    }
    assert schema_errors("evaluation.schema.json", predicate)
    line = _store.append(
        attest.default_attestations_path(lineage.ft), signer.sign(json.dumps(stmt).encode())
    )
    assert line == 3
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert "line 3" in err and "schema" in err and "secretSauce" in err, err


def _truncate_last_line(target: Path) -> int:
    lines = jsonl_lines(target)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    attest.default_attestations_path(target).write_bytes(b"\n".join(lines))
    return len(lines)


def test_truncated_line_reported_others_still_read(lineage: Lineage, p256):
    bad = _truncate_last_line(lineage.ft)
    assert bad == 2
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert f"line {bad}" in err and "unreadable" in err, err
    assert "attestation line 1" not in err

    verifier = KeyVerifier.from_files(p256.public)
    report = attest.verify_attestations(lineage.ft, verifier, digest_of(lineage.ft))
    assert [(c.line, c.ok) for c in report.checks] == [(1, True), (2, False)]
    assert report.statements()[0].predicate_type == attest.SLSA_PREDICATE_TYPE
    assert "not valid JSON" in report.checks[1].problems[0]

    # inspect and lineage still read the good line.
    out = ok(run_cli("inspect", lineage.ft))
    assert "line 2: unreadable" in out and "base-model: base" in out
    graph = json.loads(ok(run_cli("lineage", lineage.ft, "--format", "json")))
    assert any(e["role"] == "base-model" for e in graph["edges"])

    # A file with a damaged line is not appended to (nothing can tell it from another
    # file); the reason names the line and the way out, prune, which drops it.
    before = attest.default_attestations_path(lineage.ft).read_bytes()
    args = ("attest", "eval", lineage.ft, "--key", p256.private, "--metric", "acc=1")
    err = fails(run_cli(*args), 3, f"line {bad}", "prune")
    assert attest.default_attestations_path(lineage.ft).read_bytes() == before
    assert "attest prune" in err
    pruned = attest.prune(lineage.ft, root_digest=digest_of(lineage.ft))
    assert [(d.line, d.reason) for d in pruned.dropped] == [(bad, "unreadable")]
    ok(run_cli(*args))
    report = attest.verify_attestations(lineage.ft, verifier, digest_of(lineage.ft))
    assert [(c.line, c.ok) for c in report.checks] == [(1, True), (2, True)]


def test_truncated_line_json_reports_every_line(lineage: Lineage, p256):
    """--json: the bad line is reported and the other lines are reported OK."""
    bad = _truncate_last_line(lineage.ft)
    result = run_cli("verify", lineage.ft, "--key", p256.public, "--attestations", "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert "attestations" in data, (
        f"a failed `verify --attestations --json` reports only the problems, not the lines "
        f"that were read and verified: {data}"
    )
    by_line = {c["line"]: c for c in data["attestations"]}
    assert by_line[1]["ok"] is True and by_line[1]["problems"] == []
    assert by_line[bad]["ok"] is False and by_line[bad]["problems"]


def test_reject_untrusted_signer(lineage: Lineage, p256, other_key):
    ok(run_cli("attest", "eval", lineage.ft, "--key", other_key.private, "--metric", "acc=1"))
    err = fails(run_cli("verify", lineage.ft, "--key", p256.public, "--attestations"), 1)
    assert "line 3" in err and "different key" in err, err
    # Trusting both keys accepts it.
    ok(
        run_cli(
            "verify", lineage.ft, "--key", p256.public, "--key", other_key.public, "--attestations"
        )
    )
    # A dataset attested by an untrusted key fails too.
    ok(run_cli("attest", "dataset", lineage.ds2, "--key", other_key.private))
    args = ("verify", lineage.ds2, "--key", p256.public, "--attestations-only")
    fails(run_cli(*args), 1, "line 2")


def test_verify_without_attestations_flag_ignores_them(lineage: Lineage, p256):
    """Plain verify checks the signature only; a damaged attestations file does not matter."""
    _truncate_last_line(lineage.ft)
    ok(run_cli("verify", lineage.ft, "--key", p256.public))


# ------------------------------------------------------------- 3. schemas and spec rules


def test_schemas_are_valid_and_ids_resolve():
    docs = _schema_docs()
    assert set(PREDICATE_SCHEMAS.values()) | {
        "statement.schema.json",
        "resource-descriptor.schema.json",
    } <= set(docs)
    for name, doc in docs.items():
        jsonschema.validators.validator_for(doc).check_schema(doc)
        assert doc["$id"].endswith("/" + name), (name, doc["$id"])
    # The schemas the package validates with are the published ones.
    from provenance.attest import _schemas

    for name in PREDICATE_SCHEMAS.values():
        assert _schemas.schema(name) == docs[name]


def test_build_type_is_documented_in_schemas():
    """Issue item 2: a buildType URI this project defines and documents in schemas/."""
    docs = [p for p in SCHEMAS.iterdir() if p.suffix in (".md", ".txt", ".rst")]
    assert docs, (
        "schemas/ has no document for the training build type "
        "(training.schema.json's description points to schemas/README.md)"
    )
    text = "".join(p.read_text("utf-8") for p in docs)
    assert attest.TRAINING_BUILD_TYPE in text
    for role in ("training-data", "base-model", "source", "container-image"):
        assert role in text


def test_generated_statements_validate(lineage: Lineage):
    every = [
        s
        for t in (lineage.ds1, lineage.ds2, lineage.evalset, lineage.base, lineage.ft)
        for s in statements(t)
    ]
    assert len(every) == 6
    for stmt in every:
        check_statement(stmt)
    assert {s["predicateType"] for s in every} == set(PREDICATE_SCHEMAS)


def test_spec_checks_catch_violations():
    """The checks above are not vacuous: each rule rejects a statement that breaks it."""
    good = {
        "_type": STATEMENT_V1,
        "subject": [{"name": "m", "digest": {"sha256": "0" * 64}}],
        "predicateType": attest.SLSA_PREDICATE_TYPE,
        "predicate": attest.training_predicate(
            datasets=[attest.Artifact("d", {"sha256": "1" * 64}, uri="hf://d")],
            builder_id=BUILDER,
            started_on="2024-01-01T00:00:00Z",
        ),
    }
    check_statement(good)

    def broken(change) -> dict:
        stmt = json.loads(json.dumps(good))
        change(stmt)
        return stmt

    bad = [
        broken(lambda s: s.update(_type="https://in-toto.io/Statement/v0.1")),
        broken(lambda s: s.update(subject=[])),
        broken(lambda s: s["subject"][0]["digest"].update(sha256="XYZ")),
        broken(lambda s: s.update(predicateType="not a uri")),
        broken(lambda s: s["predicate"]["buildDefinition"].pop("externalParameters")),
        broken(lambda s: s["predicate"]["buildDefinition"].update(resolvedDependencies=[{}])),
        broken(lambda s: s["predicate"]["runDetails"]["builder"].pop("id")),
        broken(lambda s: s["predicate"]["runDetails"].update(metadata={"startedOn": "yesterday"})),
    ]
    for stmt in bad:
        with pytest.raises(AssertionError):
            check_statement(stmt)
    assert not is_rfc3339("2024-02-30T00:00:00Z")
    assert is_rfc3339("2024-05-02T08:00:00.5+02:00")


def test_started_on_must_be_rfc3339(model: Path, p256):
    """A timestamp that is not RFC 3339 is refused, never signed into a statement."""
    result = run_cli(
        "attest", "training", model, "--key", p256.private,
        "--builder-id", BUILDER, "--started-on", "last tuesday",
    )  # fmt: skip
    written = attest.default_attestations_path(model)
    stmt = statements(model)[0] if written.exists() else None
    assert result.exit_code in (2, 3), (
        f"--started-on 'last tuesday' was accepted (exit {result.exit_code}) and signed as "
        f"startedOn={stmt and stmt['predicate']['runDetails']['metadata'].get('startedOn')!r}"
    )
    assert not written.exists()


# ----------------------------------------------------------- 4. model-signing still verifies

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


@pytest.mark.skipif(not MODEL_SIGNING.exists(), reason=f"no model-signing CLI at {MODEL_SIGNING}")
def test_model_signing_verifies_with_attestations_beside(lineage: Lineage, p256):
    for model in (lineage.base, lineage.ft):
        assert (model / "model.intoto.jsonl").is_file()
        proc = subprocess.run(
            [
                str(MODEL_SIGNING), "verify", "key",
                "--public_key", str(p256.public),
                "--signature", str(model / "model.sig"),
                str(model),
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Verification succeeded" in proc.stdout


# --------------------------------------------------------------------------- 5. storage


def test_concurrent_appends_never_lose_a_line(model: Path, p256):
    signer = KeySigner.from_file(p256.private)
    name, digest = attest.subject_digest(model)
    target = attest.default_attestations_path(model)
    bundles = []
    for i in range(20):
        stmt = {
            "_type": STATEMENT_V1,
            "subject": [{"name": name, "digest": {"sha256": digest}}],
            "predicateType": attest.EVALUATION_PREDICATE_TYPE,
            "predicate": attest.evaluation_predicate(metrics={"run": i}),
        }
        bundles.append(signer.sign(json.dumps(stmt).encode()))
    numbers: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(chunk: list) -> None:
        try:
            barrier.wait()
            for b in chunk:
                numbers.append(_store.append(target, b))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(bundles[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(numbers) == list(range(1, 21))
    lines = _store.read(target)
    assert len(lines) == 20 and all(line.bundle is not None for line in lines)
    runs = sorted(
        json.loads(line.bundle.envelope.payload)["predicate"]["metrics"][0]["value"]
        for line in lines
    )
    assert runs == list(range(20))
    assert temp_leftovers(model) == []
    report = attest.verify_attestations(model, KeyVerifier.from_files(p256.public), digest)
    assert report.ok and len(report.checks) == 20


def test_append_is_atomic(model: Path, p256, monkeypatch: pytest.MonkeyPatch):
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"))
    target = model / "model.intoto.jsonl"
    before = target.read_bytes()
    inode = target.stat().st_ino
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=2"))
    after = target.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    assert target.stat().st_ino != inode  # replaced, not written in place
    assert temp_leftovers(model) == []

    # A failure while replacing the file leaves the old one whole, and no temp file.
    def boom(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    signer = KeySigner.from_file(p256.private)
    with pytest.raises(InputError, match="No space left"):
        attest.attest(
            model,
            attest.EVALUATION_PREDICATE_TYPE,
            attest.evaluation_predicate(metrics={"acc": 3}),
            signer,
        )
    monkeypatch.undo()
    assert target.read_bytes() == after
    assert temp_leftovers(model) == []


def test_attestations_are_outside_the_manifest(model: Path, p256):
    hashed = ok(run_cli("hash", model)).strip()
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"))
    ok(run_cli("attest", "training", model, "--key", p256.private, "--builder-id", BUILDER))
    assert ok(run_cli("hash", model)).strip() == hashed
    manifest = json.loads(ok(run_cli("hash", model, "--json")))
    assert "model.intoto.jsonl" not in json.dumps(manifest.get("resources", manifest))

    # Signing after attesting: the signature does not cover the attestations file,
    # and the attestations (made before the signature) are about the signed digest.
    ok(run_cli("sign", model, "--key", p256.private))
    out = ok(run_cli("verify", model, "--key", p256.public, "--attestations"))
    assert f"sha256:{hashed}" in out and "Attestations: 2 verified" in out
    # Appending after signing leaves the signature valid.
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=2"))
    ok(run_cli("verify", model, "--key", p256.public))
    ok(run_cli("verify", model, "--key", p256.public, "--attestations"))


def test_single_file_model_keeps_attestations_beside_it(tmp_path: Path, p256):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(os.urandom(2000))
    ok(run_cli("sign", weights, "--key", p256.private))
    out = ok(run_cli("attest", "eval", weights, "--key", p256.private, "--metric", "ppl=7.5"))
    assert "model.gguf.intoto.jsonl" in out
    assert (tmp_path / "model.gguf.intoto.jsonl").is_file()
    ok(run_cli("verify", weights, "--key", p256.public, "--attestations"))


def test_base_model_named_by_its_signed_root_digest(tmp_path: Path, p256):
    """A base model signed with non-default hashing is named by the digest its signature
    covers when the attester hashes with the same settings (``--hash``), which the
    descriptor records; the base model's own (unverified) signature is never read
    for them.
    """
    base = make_model(tmp_path / "base")
    ok(run_cli("sign", base, "--key", p256.private, "--hash", "sha384"))
    ok(
        run_cli(
            "attest", "training", base, "--key", p256.private, "--builder-id", BUILDER,
            "--hash", "sha384",
        )
    )  # fmt: skip
    ft = make_model(tmp_path / "ft")
    ok(run_cli("sign", ft, "--key", p256.private, "--hash", "sha384"))
    ok(
        run_cli(
            "attest", "training", ft, "--key", p256.private,
            "--base-model", base, "--builder-id", BUILDER, "--hash", "sha384",
        )
    )  # fmt: skip
    signed_root = provenance.verify(base, KeyVerifier.from_files(p256.public)).root_digest
    (stmt,) = statements(ft)
    (dep,) = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert dep["digest"] == {"sha256": signed_root}, (
        f"base-model recorded as sha256:{dep['digest']['sha256'][:12]} (a fresh default hash), "
        f"but the base model's signature and its own attestations name sha256:{signed_root[:12]}"
    )
    ok(run_cli("verify", ft, "--key", p256.public, "--attestations"))


# ----------------------------------------------------------------------- 6. CI detection

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "octo-org/llm",
    "GITHUB_WORKFLOW_REF": "octo-org/llm/.github/workflows/train.yml@refs/heads/main",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": COMMIT,
}
GITLAB_ENV = {
    "GITLAB_CI": "true",
    "CI_SERVER_URL": "https://gitlab.example.com",
    "CI_PROJECT_PATH": "group/llm",
    "CI_RUNNER_ID": "17",
    "CI_COMMIT_REF_NAME": "main",
    "CI_JOB_URL": "https://gitlab.example.com/group/llm/-/jobs/99",
    "CI_COMMIT_SHA": "b" * 40,
}


def test_detect_ci_github_actions():
    ci = attest.detect_ci(GITHUB_ENV)
    assert ci is not None
    assert ci.builder_id == (
        "https://github.com/octo-org/llm/.github/workflows/train.yml@refs/heads/main"
    )
    assert ci.invocation_id == "https://github.com/octo-org/llm/actions/runs/4242/attempts/2"
    assert ci.source_uri == "git+https://github.com/octo-org/llm@refs/heads/main"
    assert ci.source_commit == COMMIT
    assert all(is_uri(u) for u in (ci.builder_id, ci.invocation_id, ci.source_uri))


def test_detect_ci_gitlab():
    ci = attest.detect_ci(GITLAB_ENV)
    assert ci is not None
    assert ci.builder_id.startswith("https://gitlab.example.com/group/llm")
    assert is_uri(ci.builder_id)
    assert ci.invocation_id == "https://gitlab.example.com/group/llm/-/jobs/99"
    assert ci.source_uri == "git+https://gitlab.example.com/group/llm@main"
    assert ci.source_commit == "b" * 40


def test_detect_ci_none():
    assert attest.detect_ci({}) is None
    assert attest.detect_ci({"GITHUB_ACTIONS": "false", "CI": "true"}) is None
    assert attest.detect_ci({"PATH": "/usr/bin"}) is None


@pytest.mark.parametrize("env", [GITHUB_ENV, GITLAB_ENV], ids=["github", "gitlab"])
def test_attest_training_in_ci_without_flags(
    model: Path, p256, monkeypatch: pytest.MonkeyPatch, env: dict
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ci = attest.detect_ci(env)
    data = json.loads(ok(run_cli("attest", "training", model, "--key", p256.private, "--json")))
    stmt = data["statement"]
    check_statement(stmt)
    run = stmt["predicate"]["runDetails"]
    assert run["builder"]["id"] == ci.builder_id
    assert run["metadata"]["invocationId"] == ci.invocation_id
    (source,) = [
        d
        for d in stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
        if d["annotations"]["role"] == "source"
    ]
    assert source["digest"] == {"gitCommit": ci.source_commit}
    assert source["uri"] == ci.source_uri
    ok(run_cli("verify", model, "--key", p256.public, "--attestations-only"))


def test_flags_override_ci(model: Path, p256, monkeypatch: pytest.MonkeyPatch):
    for k, v in GITHUB_ENV.items():
        monkeypatch.setenv(k, v)
    data = json.loads(
        ok(
            run_cli(
                "attest", "training", model, "--key", p256.private, "--json",
                "--builder-id", BUILDER, "--source-commit", "c" * 40,
            )
        )
    )  # fmt: skip
    pred = data["statement"]["predicate"]
    assert pred["runDetails"]["builder"]["id"] == BUILDER
    deps = pred["buildDefinition"]["resolvedDependencies"]
    assert {"gitCommit": "c" * 40} in [d["digest"] for d in deps]


def test_attest_training_outside_ci_needs_builder_id(model: Path, p256):
    fails(run_cli("attest", "training", model, "--key", p256.private), 2, "--builder-id")
    assert not (model / "model.intoto.jsonl").exists()


# ------------------------------------------------------------------------ 7. bad input


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["training", "{model}", "--dataset", "{tmp}/missing", "--builder-id", BUILDER], 3,
         ["missing", "neither an existing path"]),
        (["training", "{model}", "--base-model", "hf://x@sha256:short",
          "--builder-id", BUILDER], 3, ["hf://x@sha256:short"]),
        (["training", "{model}", "--base-model", "hf://x@sha256:abcd",
          "--builder-id", BUILDER], 3, ["64 hex digits"]),
        (["training", "{model}", "--source-commit", "abc", "--builder-id", BUILDER], 2,
         ["--source-commit", "abc"]),
        (["training", "{model}", "--param", "lr", "--builder-id", BUILDER], 2,
         ["'lr'", "KEY=VALUE"]),
        (["training", "{model}", "--image", "trainer:latest", "--builder-id", BUILDER], 2,
         ["--image"]),
        (["eval", "{model}", "--metric", "acc=1", "--threshold", "acc=>1"], 2,
         ["--threshold", "acc=>1"]),
        (["eval", "{model}", "--metric", "acc"], 2, ["KEY=VALUE"]),
        (["eval", "{model}", "--metric", "acc=1", "--dataset", "{tmp}/missing"], 3,
         ["missing"]),
        (["dataset", "{tmp}/missing"], 3, ["does not exist"]),
        (["dataset", "{model}", "--split", "train=many"], 2, ["--split"]),
    ],
    ids=[
        "missing-dataset",
        "short-digest-not-hex",
        "short-digest",
        "short-commit",
        "param-without-equals",
        "unpinned-image",
        "bad-threshold",
        "metric-without-equals",
        "missing-eval-dataset",
        "missing-dataset-target",
        "bad-split",
    ],
)  # fmt: skip
def test_bad_input_one_line(model: Path, p256, tmp_path: Path, args, code, words):
    argv = [a.format(model=model, tmp=tmp_path) for a in args]
    fails(run_cli("attest", *argv, "--key", p256.private), code, *words)
    assert not (model / "model.intoto.jsonl").exists()
    assert temp_leftovers(model) == []


def test_eval_without_metric_is_a_usage_error(model: Path, p256):
    result = run_cli("attest", "eval", model, "--key", p256.private)
    assert result.exit_code == 2, result.output
    assert "--metric" in result.output + (result.stderr or "")
    assert not (model / "model.intoto.jsonl").exists()


def test_attest_without_signer_is_a_usage_error(model: Path):
    fails(run_cli("attest", "eval", model, "--metric", "acc=1"), 2, "--key")
    assert not (model / "model.intoto.jsonl").exists()


def test_verify_attestations_when_there_are_none(model: Path, p256):
    ok(run_cli("sign", model, "--key", p256.private))
    result = run_cli("verify", model, "--key", p256.public, "--attestations")
    assert result.exit_code in (1, 3), result.output
    assert "no attestations" in (result.stderr or "").lower()


# ------------------------------------------- 8. no hashing settings from an unverified file


def _unverified_signature(target: Path, key, ignore: str) -> None:
    """Write TARGET/model.sig by a key nobody trusts, its ignore list hiding ``ignore``."""
    crafted = provenance.hash_model(target, ignore_paths=[ignore])
    assert ignore in crafted.serialization.ignore_paths
    bundle = KeySigner.from_file(key.private).sign(crafted.statement_bytes())
    (target / "model.sig").write_bytes(bundle.to_bytes())


def test_attested_dataset_is_hashed_without_its_unverified_signature(
    tmp_path: Path, p256, other_key
):
    """An unverified D/model.sig cannot hide a file of D from the training attestation."""
    ds = make_dataset(tmp_path / "ds", {"train": ["a", "b"]})
    (ds / "poison.txt").write_text("harmless today\n")
    _unverified_signature(ds, other_key, "poison.txt")
    model = make_model(tmp_path / "m")
    ok(run_cli("sign", model, "--key", p256.private))
    ok(
        run_cli(
            "attest", "training", model, "--key", p256.private,
            "--dataset", ds, "--builder-id", BUILDER,
        )
    )  # fmt: skip
    (stmt,) = statements(model)
    (dep,) = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
    recorded = dep["annotations"].get("serialization") or {}
    assert "poison.txt" not in recorded.get("ignore_paths", []), recorded
    ok(run_cli("verify", model, "--key", p256.public, "--attestations"))

    (ds / "poison.txt").write_text("poisoned\n")
    err = fails(run_cli("verify", model, "--key", p256.public, "--attestations"), 1)
    assert "training-data" in err and "no longer matches its digest" in err, err


def test_verify_attestations_without_signature_ignores_unverified_model_sig(
    tmp_path: Path, p256, other_key
):
    """``--signature`` names a missing file: MODEL/model.sig must not steer the hash."""
    model = make_model(tmp_path / "m")
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"))
    (model / "planted.py").write_text("import os\n")
    _unverified_signature(model, other_key, "planted.py")
    result = run_cli(
        "verify", model, "--key", p256.public, "--attestations",
        "--signature", tmp_path / "DOES-NOT-EXIST",
    )  # fmt: skip
    assert result.exit_code != 0, result.output
    # A signature the user named and that is missing is bad input (3): nothing
    # falls back to hashing with the unverified MODEL/model.sig's settings.
    fails(result, 3, "no signature")


def test_negative_split_is_a_usage_error(tmp_path: Path, p256):
    """Bad input given at attest time is a usage error (2), not a failed check (1)."""
    ds = make_dataset(tmp_path / "ds", {"train": ["a"]})
    fails(run_cli("attest", "dataset", ds, "--key", p256.private, "--split", "a=-5"), 2, "-5")
    assert not attest.default_attestations_path(ds).exists()
    # The library refuses the predicate itself, whoever built it.
    signer = KeySigner.from_file(p256.private)
    for predicate in (
        attest.dataset_predicate(name="ds", splits={"a": -5}),
        {"name": "ds", "splits": [{"name": "a", "records": -5}]},
    ):
        with pytest.raises(UsageError, match="schema") as info:
            attest.attest(ds, attest.DATASET_PREDICATE_TYPE, predicate, signer)
        assert info.value.code == "predicate-invalid"
    assert not attest.default_attestations_path(ds).exists()


def test_library_messages_do_not_name_flags():
    """The library speaks of values; the CLI adds the option (see test_bad_input_one_line)."""
    with pytest.raises(UsageError) as info:
        attest.training_predicate(builder_id=BUILDER, source_commit="abc")
    assert "--" not in str(info.value) and info.value.code == "source-commit-invalid"
    with pytest.raises(UsageError) as info:
        attest.training_predicate(builder_id=BUILDER, image="trainer:latest")
    assert "--" not in str(info.value) and info.value.code == "image-unpinned"
    with pytest.raises(UsageError) as info:
        attest.evaluation_predicate(metrics={})
    assert "--" not in str(info.value)


# ------------------------------------------------------------- 9. public imports, no cycles

ATTEST_MODULES = (
    "provenance.attest",
    "provenance.attest._lineage",
    "provenance.attest._predicates",
    "provenance.attest._schemas",
    "provenance.attest._store",
    "provenance.intoto",
)


@pytest.mark.parametrize("module", ATTEST_MODULES)
def test_attest_modules_import_alone(module: str):
    """Each module imports first in a fresh interpreter: no import cycle hides in the order."""
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, lazy ones inside functions included."""
    import ast

    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def test_attest_uses_only_public_functions():
    """No ``provenance._api``, no private module or name of another part of the library.

    ``provenance._internal`` is the library's shared toolbox (atomic writes,
    size-capped reads), meant for its parts; the attest package's own
    ``_``-modules are its own.
    """
    files = sorted((PROJECT_ROOT / "provenance" / "attest").glob("*.py"))
    files += [PROJECT_ROOT / "provenance" / "intoto.py"]
    for file in files:
        for module, names in _imports(file):
            if not module.startswith("provenance"):
                continue
            where = f"{file.name}: from {module} import {', '.join(names)}"
            if module.startswith(("provenance.attest", "provenance._internal")):
                continue
            assert not any(part.startswith("_") for part in module.split(".")), where
            assert not [n for n in names if n.startswith("_")], where
            assert module not in ("provenance.verify", "provenance.sign"), where
