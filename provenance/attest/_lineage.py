"""Lineage: the graph of digests that attestations describe, and its renderings.

Nodes are models and datasets named by root digest; edges say which input
played which role (training data, base model, ...). A dependency recorded
with a local path that has attestations of its own is followed, so a
fine-tune shows its base model and the base model's datasets in turn.

The attestations are read, not verified, unless the caller passes the
statements it verified: the graph is for people and dashboards, and
``verify --attestations`` is what a loader trusts. Because the statements
may be hostile, the walk visits each digest once (repeated or cyclic edges
cannot make it loop or blow up) and stops at a fixed depth, and the text
renderings escape control characters so a name cannot rewrite the terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.attest._store import default_attestations_path, read
from provenance.errors import InputError
from provenance.hashing import hash_model, model_name
from provenance.intoto import (
    DATASET,
    EVALUATION,
    SLSA_PROVENANCE,
    ResourceDescriptor,
    Statement,
)

__all__ = ["MAX_DEPTH", "LineageEdge", "LineageGraph", "LineageNode", "build"]

#: How many generations of inputs are followed below the model.
MAX_DEPTH = 8


@dataclass(frozen=True)
class LineageNode:
    """A model, dataset or other input, named by digest, with what its statements say."""

    digest: str  # hex SHA-256 root digest, or ``git:<commit>`` for source code
    name: str
    kind: str  # "model", "dataset", or the role of another input ("source", ...)
    path: str | None = None
    uri: str | None = None
    produced_by: str | None = None  # training, fine-tuning, quantisation, ...
    builder: str | None = None
    license: str | None = None
    version: str | None = None
    source_uri: str | None = None
    records: int | None = None
    evaluations: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        optional: dict[str, Any] = {
            "path": self.path,
            "uri": self.uri,
            "producedBy": self.produced_by,
            "builder": self.builder,
            "license": self.license,
            "version": self.version,
            "sourceUri": self.source_uri,
            "records": self.records,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.evaluations:
            out["evaluations"] = [dict(e) for e in self.evaluations]
        return out

    @property
    def label(self) -> str:
        """One line for a person: name, kind, short digest, and what was recorded."""
        short = self.digest if self.digest.startswith("git:") else f"sha256:{self.digest[:12]}"
        extra = [self.produced_by] if self.produced_by else []
        if self.license:
            extra.append(f"license {self.license}")
        extra += [", ".join(f"{k}={v}" for k, v in ev.items()) for ev in self.evaluations]
        tail = f"  [{'; '.join(extra)}]" if extra else ""
        return _printable(f"{self.name} ({self.kind}, {short}){tail}")


@dataclass(frozen=True)
class LineageEdge:
    """``child`` went into making ``parent``, in ``role`` (training-data, base-model, ...)."""

    parent: str
    child: str
    role: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.parent, "to": self.child, "role": self.role}


@dataclass(frozen=True)
class LineageGraph:
    """The model at ``root`` and every input its attestations name, by digest."""

    root: str
    nodes: Mapping[str, LineageNode]
    edges: tuple[LineageEdge, ...] = ()
    _inputs: Mapping[str, tuple[LineageEdge, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        inputs: dict[str, list[LineageEdge]] = {}
        for e in self.edges:
            inputs.setdefault(e.parent, []).append(e)
        object.__setattr__(self, "_inputs", {k: tuple(v) for k, v in inputs.items()})

    def inputs_of(self, digest: str) -> tuple[LineageEdge, ...]:
        """The edges from ``digest`` to what it was made from, in recorded order."""
        return self._inputs.get(digest, ())

    def to_json(self) -> dict[str, Any]:
        """``{root, nodes: {digest: node}, edges: [{from, to, role}]}``."""
        return {
            "root": self.root,
            "nodes": {d: n.to_json() for d, n in self.nodes.items()},
            "edges": [e.to_json() for e in self.edges],
        }

    def render_tree(self) -> str:
        """An indented tree, model at the top, inputs below: model <- base model <- data.

        A node reached a second time is named but not expanded again, so a
        graph that shares inputs prints in size linear in its edges.
        """
        lines = [self.nodes[self.root].label]
        expanded = {self.root}
        # Depth first without recursion: each frame is (edges, next index, prefix).
        stack: list[tuple[tuple[LineageEdge, ...], int, str]] = [(self.inputs_of(self.root), 0, "")]
        while stack:
            edges, i, prefix = stack.pop()
            if i == len(edges):
                continue
            stack.append((edges, i + 1, prefix))
            e, last = edges[i], i == len(edges) - 1
            branch = "\u2514\u2500\u2500 " if last else "\u251c\u2500\u2500 "
            again = e.child in expanded and bool(self.inputs_of(e.child))
            note = "  (inputs shown above)" if again else ""
            lines.append(f"{prefix}{branch}{_printable(e.role)}: {self.nodes[e.child].label}{note}")
            if e.child not in expanded:
                expanded.add(e.child)
                indent = prefix + ("    " if last else "\u2502   ")
                stack.append((self.inputs_of(e.child), 0, indent))
        return "\n".join(lines)

    def render_dot(self) -> str:
        """Graphviz: inputs point up to what they made."""
        out = ["digraph lineage {", "  rankdir=BT;", "  node [shape=box];"]
        for digest, node in self.nodes.items():
            shape = "cylinder" if node.kind == "dataset" else "box"
            out.append(f'  {_ident(digest)} [label="{_dot_escape(node.label)}", shape={shape}];')
        for e in self.edges:
            out.append(
                f'  {_ident(e.child)} -> {_ident(e.parent)} [label="{_dot_escape(e.role)}"];'
            )
        out.append("}")
        return "\n".join(out)

    def render_mermaid(self) -> str:
        """A Mermaid flowchart, for Markdown docs."""
        out = ["flowchart BT"]
        for digest, node in self.nodes.items():
            label = node.label.replace('"', "'")
            if node.kind == "dataset":
                out.append(f'  {_ident(digest)}[("{label}")]')
            else:
                out.append(f'  {_ident(digest)}["{label}"]')
        for e in self.edges:
            role = re.sub(r'[|"]', "", _printable(e.role))
            out.append(f"  {_ident(e.child)} -->|{role}| {_ident(e.parent)}")
        return "\n".join(out)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Escape control characters (an attestation is untrusted text, a terminal is not)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _ident(digest: str) -> str:
    return "n_" + "".join(c for c in digest if c.isalnum())[:24]


# ---------------------------------------------------------------- building


@dataclass
class _Draft:
    """A node while statements are still adding to it (frozen into a LineageNode)."""

    name: str
    kind: str
    path: str | None = None
    uri: str | None = None
    produced_by: str | None = None
    builder: str | None = None
    license: str | None = None
    version: str | None = None
    source_uri: str | None = None
    records: int | None = None
    evaluations: list[Mapping[str, Any]] = field(default_factory=list)


def _statements(path: Path) -> list[Statement]:
    """Every readable statement beside ``path``; a damaged line is skipped, not fatal."""
    file = default_attestations_path(path)
    if not file.is_file():
        return []
    out = []
    for line in read(file):
        if line.bundle is None:
            continue
        try:
            out.append(Statement.parse(line.bundle.envelope.payload))
        except InputError:
            continue
    return out


def _key(digest: Mapping[str, str]) -> str | None:
    """How an input is named in the graph: its root digest, or its git commit."""
    if digest.get("sha256"):
        return digest["sha256"]
    if digest.get("gitCommit"):
        return f"git:{digest['gitCommit']}"
    return None


def _kind(role: str) -> str:
    if role == "base-model":
        return "model"
    return "dataset" if role.endswith("-data") else role


class _Walk:
    """One walk of the graph: each digest's statements are read and applied once."""

    def __init__(self, follow: bool) -> None:
        self.follow = follow
        self.nodes: dict[str, _Draft] = {}
        self.edges: dict[tuple[str, str, str], None] = {}  # ordered, without repeats
        self.visited: set[str] = set()

    def node(self, digest: str, name: str, kind: str) -> _Draft:
        return self.nodes.setdefault(digest, _Draft(name, kind))

    def visit(
        self,
        path: Path | None,
        digest: str,
        statements: Sequence[Statement] | None,
        depth: int,
    ) -> None:
        if path is not None and self.nodes[digest].path is None:
            self.nodes[digest].path = str(path)
        if depth > MAX_DEPTH or path is None or digest in self.visited:
            return
        self.visited.add(digest)
        found = statements if statements is not None else _statements(path)
        for stmt in found:
            if stmt.has_subject_digest(digest):
                try:
                    self.apply(stmt, digest, depth)
                except InputError:
                    continue  # a predicate of the wrong shape says nothing about lineage

    def apply(self, stmt: Statement, digest: str, depth: int) -> None:
        node = self.nodes[digest]
        if stmt.predicate_type == DATASET.uri:
            dataset = DATASET.parse(stmt.predicate)
            node.kind = "dataset"
            node.license = dataset.license or node.license
            node.version = dataset.version or node.version
            node.source_uri = dataset.source_uri or node.source_uri
            node.records = dataset.records if dataset.records is not None else node.records
        elif stmt.predicate_type == SLSA_PROVENANCE.uri:
            run = SLSA_PROVENANCE.parse(stmt.predicate)
            node.produced_by = run.kind or "training"
            node.builder = run.builder_id or node.builder
            self.inputs(digest, run.resolved_dependencies, depth)
        elif stmt.predicate_type == EVALUATION.uri:
            evaluation = EVALUATION.parse(stmt.predicate)
            node.evaluations.append({m.name: m.value for m in evaluation.metrics})
            self.inputs(digest, evaluation.datasets, depth)

    def inputs(self, parent: str, deps: Iterable[ResourceDescriptor], depth: int) -> None:
        for dep in deps:
            key = _key(dep.digest)
            if key is None:
                continue
            role = dep.role or "input"
            self.edges[(parent, key, role)] = None
            child = self.node(key, dep.name or dep.uri or key[:12], _kind(role))
            if dep.uri:
                child.uri = dep.uri
            local = Path(dep.path) if self.follow and dep.path else None
            if local is not None and not local.exists():
                local = None  # recorded on another machine: named, not followed
            self.visit(local, key, None, depth + 1)

    def graph(self, root: str) -> LineageGraph:
        nodes = {
            digest: LineageNode(
                digest=digest,
                name=d.name,
                kind=d.kind,
                path=d.path,
                uri=d.uri,
                produced_by=d.produced_by,
                builder=d.builder,
                license=d.license,
                version=d.version,
                source_uri=d.source_uri,
                records=d.records,
                evaluations=tuple(d.evaluations),
            )
            for digest, d in self.nodes.items()
        }
        edges = tuple(LineageEdge(*e) for e in self.edges)
        return LineageGraph(root, nodes, edges)


def build(
    model_path: str | os.PathLike[str],
    *,
    statements: Sequence[Statement] | None = None,
    root_digest: str | None = None,
) -> LineageGraph:
    """The lineage of a model, from its attestations and those of its local inputs.

    ``statements`` (e.g. only the verified ones) and ``root_digest`` default
    to everything in the attestations file and a fresh hash of the model with
    the default settings. Given statements are not followed into the inputs'
    own attestation files, which nobody has verified.
    """
    path = Path(model_path)
    if root_digest is None:
        manifest = hash_model(path)
        name, root_digest = manifest.model_name, manifest.root_digest
    else:
        name = model_name(path)
    walk = _Walk(follow=statements is None)
    walk.node(root_digest, name, "model")
    walk.visit(path, root_digest, statements, depth=0)
    return walk.graph(root_digest)
