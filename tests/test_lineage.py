"""The typed lineage graph: its JSON shape, its walk over hostile input, its renderings.

Attestations read for lineage are not verified, so the walk must stay
bounded whatever they say: each digest is walked once (shared and cyclic
inputs cannot make it loop or grow exponentially), the depth is capped, a
malformed line or predicate is skipped, and names cannot inject control
characters into a terminal or break out of a DOT label.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from provenance import attest
from provenance.attest import LineageGraph, LineageNode, _lineage, _store
from provenance.intoto import Statement
from provenance.signing import KeySigner

BUILDER = "https://ci.example.com/runners/gpu-7"
COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"


def tiny(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_text(text)
    return folder


@pytest.fixture
def signer(p256) -> KeySigner:
    return KeySigner.from_file(p256.private)


def dataset(folder: Path, signer: KeySigner, **card) -> Path:
    tiny(folder, f"rows of {folder.name}\n")
    predicate = attest.dataset_predicate(name=folder.name, **card)
    attest.attest(folder, attest.DATASET_PREDICATE_TYPE, predicate, signer)
    return folder


def trained(model: Path, signer: KeySigner, *, data=(), bases=(), **more) -> Path:
    predicate = attest.training_predicate(
        datasets=[attest.resolve(str(d)) for d in data],
        base_model=[attest.resolve(str(b)) for b in bases],
        kind="fine-tuning" if bases else "training",
        builder_id=BUILDER,
        **more,
    )
    attest.attest(model, attest.SLSA_PREDICATE_TYPE, predicate, signer)
    return model


def digest(path: Path) -> str:
    return attest.subject_digest(path)[1]


def test_graph_is_typed_and_keeps_its_json_shape(tmp_path: Path, signer):
    ds = dataset(tmp_path / "corpus", signer, license="MIT", version="2", records=7)
    base = trained(tiny(tmp_path / "base", "base"), signer, data=[ds], source_commit=COMMIT)
    ft = trained(tiny(tmp_path / "ft", "ft"), signer, bases=[base], data=[ds])
    attest.attest(
        ft,
        attest.EVALUATION_PREDICATE_TYPE,
        attest.evaluation_predicate(metrics={"acc": 0.5}, datasets=[attest.resolve(str(ds))]),
        signer,
    )

    graph = attest.build_lineage(ft)
    assert isinstance(graph, LineageGraph)
    assert all(isinstance(n, LineageNode) for n in graph.nodes.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.root = "x"  # type: ignore[misc]

    f, b, d = digest(ft), digest(base), digest(ds)
    source = f"git:{COMMIT}"
    data = graph.to_json()
    assert set(data) == {"root", "root_source", "nodes", "edges"} and data["root"] == f
    assert data["root_source"] == "attestations"  # ft has no signature; nothing was hashed
    assert sorted(data["edges"], key=lambda e: (e["from"], e["to"], e["role"])) == sorted(
        [
            {"from": f, "to": b, "role": "base-model"},
            {"from": b, "to": d, "role": "training-data"},
            {"from": b, "to": source, "role": "source"},
            {"from": f, "to": d, "role": "training-data"},
            {"from": f, "to": d, "role": "evaluation-data"},
        ],
        key=lambda e: (e["from"], e["to"], e["role"]),
    )
    nodes = data["nodes"]
    assert nodes[f] == {
        "name": "ft",
        "kind": "model",
        "path": str(ft),
        "producedBy": "fine-tuning",
        "builder": BUILDER,
        "evaluations": [{"acc": 0.5}],
    }
    assert nodes[d]["kind"] == "dataset" and nodes[d]["license"] == "MIT"
    assert nodes[d]["version"] == "2" and nodes[d]["records"] == 7
    assert nodes[source] == {"name": source[:12], "kind": "source"}
    assert [e.child for e in graph.inputs_of(b)] == [d, source]
    assert json.loads(json.dumps(data)) == data

    # The CLI prints the same after the contract head, with --json or --format json.
    for args in (("--json",), ("--format", "json")):
        result = run_cli("lineage", ft, *args)
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert [printed.pop(k) for k in ("version", "command", "ok")] == [1, "lineage", True]
        assert printed == data


def test_shared_inputs_are_walked_and_printed_once(tmp_path: Path, signer, monkeypatch):
    """A lattice of models that each use both models below: 2^depth paths, linear work."""
    ds = dataset(tmp_path / "ds", signer)
    layer = [trained(tiny(tmp_path / f"l0-{i}", f"0{i}"), signer, data=[ds]) for i in range(2)]
    for depth in range(1, 7):
        layer = [
            trained(tiny(tmp_path / f"l{depth}-{i}", f"{depth}{i}"), signer, bases=layer)
            for i in range(2)
        ]
    top = trained(tiny(tmp_path / "top", "top"), signer, bases=layer)

    reads: list[Path] = []
    real_read = _lineage.iter_lines

    def counting_read(path: Path, **kw) -> Iterator[_store.Line]:
        reads.append(Path(path))
        return real_read(path, **kw)

    monkeypatch.setattr(_lineage, "iter_lines", counting_read)
    graph = attest.build_lineage(top)
    assert len(graph.nodes) == 1 + 7 * 2 + 1
    assert len(reads) == len(set(reads)) == len(graph.nodes)  # every file read once
    tree = graph.render_tree().splitlines()
    assert len(tree) == len(graph.edges) + 1  # each edge once, not each path
    assert sum("(inputs shown above)" in row for row in tree) > 0


def test_cycles_terminate(tmp_path: Path, signer):
    """Two models that each claim the other as base model (only a forger could)."""
    a = tiny(tmp_path / "a", "a")
    b = trained(tiny(tmp_path / "b", "b"), signer, bases=[a])
    trained(a, signer, bases=[b])
    graph = attest.build_lineage(a)
    assert set(graph.nodes) == {digest(a), digest(b)}
    assert {(e.parent, e.child) for e in graph.edges} == {
        (digest(a), digest(b)),
        (digest(b), digest(a)),
    }
    assert len(graph.render_tree().splitlines()) == 3


def test_depth_is_capped(tmp_path: Path, signer):
    chain = [tiny(tmp_path / "m12", "12")]
    for i in range(11, -1, -1):
        chain.insert(0, trained(tiny(tmp_path / f"m{i}", str(i)), signer, bases=[chain[0]]))
    graph = attest.build_lineage(chain[0])
    # m0 .. m8 are walked; m9 is named by m8's statement but its own file is not read.
    assert set(graph.nodes) == {digest(m) for m in chain[: _lineage.MAX_DEPTH + 2]}
    assert graph.inputs_of(digest(chain[_lineage.MAX_DEPTH + 1])) == ()


def test_malformed_lines_and_predicates_are_skipped(tmp_path: Path, signer):
    ds = dataset(tmp_path / "ds", signer)
    model = trained(tiny(tmp_path / "m", "m"), signer, data=[ds])
    name, root = attest.subject_digest(model)
    file = attest.default_attestations_path(model)
    broken_slsa = Statement.about(
        name, root, attest.SLSA_PREDICATE_TYPE, {"buildDefinition": [], "runDetails": 1}
    )
    _store.append(file, signer.sign(broken_slsa.to_bytes()))
    _store.append(file, signer.sign(b'{"_type": "https://in-toto.io/Statement/v1"}'))
    _store.append(file, signer.sign(b"not json at all"))
    with file.open("ab") as f:
        f.write(b"{truncated\n")
    graph = attest.build_lineage(model)
    assert [e.to_json() for e in graph.edges] == [
        {"from": root, "to": digest(ds), "role": "training-data"}
    ]
    assert graph.nodes[root].produced_by == "training"


def test_given_statements_are_not_followed_into_inputs(tmp_path: Path, signer):
    """Verified statements of the model say nothing for the inputs' own (unverified) files."""
    ds = dataset(tmp_path / "ds", signer, license="MIT")
    model = trained(tiny(tmp_path / "m", "m"), signer, data=[ds])
    name, root = attest.subject_digest(model)
    stmts = [s for _, s in attest.read_statements(model) if s is not None]
    graph = attest.build_lineage(model, statements=stmts, root_digest=root)
    node = graph.nodes[digest(ds)]
    assert node.kind == "dataset" and node.license is None and node.path is None
    assert graph.nodes[root].name == name


def test_names_cannot_escape_the_renderings(tmp_path: Path, signer):
    evil = 'ds"\\\x1b[31m\nx'
    folder = tiny(tmp_path / "ds", "rows")
    attest.attest(
        folder, attest.DATASET_PREDICATE_TYPE, attest.dataset_predicate(name="ds"), signer
    )
    model = tiny(tmp_path / "m", "m")
    predicate = attest.training_predicate(
        datasets=[attest.Artifact(evil, {"sha256": digest(folder)}, path=str(folder))],
        builder_id=BUILDER,
    )
    attest.attest(model, attest.SLSA_PREDICATE_TYPE, predicate, signer)
    graph = attest.build_lineage(model)
    for text in (graph.render_tree(), graph.render_dot(), graph.render_mermaid()):
        assert "\x1b" not in text and "\\x1b" in text
        assert all(not line.startswith("x") for line in text.splitlines())
    dot = graph.render_dot()
    label = next(line for line in dot.splitlines() if "\\x1b" in line)
    assert '"ds\\"\\\\\\\\x1b' in label, label  # quote and backslash escaped, then the escape
    assert graph.to_json()["nodes"][digest(folder)]["name"] == evil  # JSON keeps the value
    out = run_cli("inspect", model).stdout
    assert "\x1b" not in out
