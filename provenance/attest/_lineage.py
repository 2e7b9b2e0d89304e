"""Lineage: the graph of digests that attestations describe, and its renderings.

Nodes are models and datasets named by root digest; edges say which input
played which role (training data, base model, ...). A dependency recorded
with a local path (relative paths are relative to the model that records
them) that has attestations of its own is followed, so a fine-tune shows its
base model and the base model's datasets in turn.

Every edge points the same way in every rendering: **from what was made to
what it was made from** (model -> base model -> dataset), as the JSON's
``from`` and ``to`` say; the tree puts the model at the top, dot and
mermaid draw arrows from it down to its inputs.

The attestations are read, not verified, unless the caller passes the
statements it verified: the graph is for people and dashboards, and
``verify`` with attestations is what a loader trusts. Nothing is hashed
here: the model is named by the digest its (unverified) signature claims,
or that its attestations name, and the graph says which
(:attr:`LineageGraph.root_source`). Because the statements may be hostile,
each attestations file is read once, each digest is walked once (repeated
or cyclic edges cannot make it loop or blow up), the depth and the number
of nodes are capped, a damaged line or predicate is skipped, and the text
renderings escape what each format needs so that a name or role cannot
rewrite the terminal or add attributes or statements to a graph.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.attest._store import default_attestations_path, iter_lines
from provenance.errors import InputError, ProvenanceError
from provenance.hashing import model_name
from provenance.intoto import (
    DATASET,
    EVALUATION,
    SLSA_PROVENANCE,
    ResourceDescriptor,
    Statement,
)

if TYPE_CHECKING:
    from provenance.attest._parse import Budget

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_WALK_BYTES",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "build",
]

#: How many generations of inputs are followed below the model.
MAX_DEPTH = 8
#: Nodes a graph holds at most; inputs beyond are left out (``truncated``).
MAX_NODES = 10_000
#: Bytes of inputs' attestations files read in one walk, at most.
MAX_WALK_BYTES = 256 << 20

#: Where the root digest came from, in words.
ROOT_SOURCES = {
    "signature": "the digest the model's signature claims (not verified)",
    "attestations": "the digest its newest attestation names (not verified; no signature)",
    "given": "the digest given",
}


@dataclass(frozen=True)
class LineageNode:
    """A model, dataset or other input, named by digest, with what its statements say.

    ``evaluations`` holds the newest evaluation per set of metrics and
    datasets; ``superseded_evaluations`` counts the older ones left out.
    """

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
    superseded_evaluations: int = 0

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
        if self.superseded_evaluations:
            out["supersededEvaluations"] = self.superseded_evaluations
        return out

    @property
    def label(self) -> str:
        """One line for a person: name, kind, short digest, and what was recorded."""
        short = self.digest if self.digest.startswith("git:") else f"sha256:{self.digest[:12]}"
        extra = [self.produced_by] if self.produced_by else []
        if self.uri and self.uri.startswith("hf://"):
            extra.append(self.uri)  # the Hub commit it was taken at
        if self.license:
            extra.append(f"license {self.license}")
        extra += [", ".join(f"{k}={v}" for k, v in ev.items()) for ev in self.evaluations]
        if self.superseded_evaluations:
            extra.append(f"{self.superseded_evaluations} older evaluation(s) not shown")
        tail = f"  [{'; '.join(extra)}]" if extra else ""
        return _printable(f"{self.name} ({self.kind}, {short}){tail}")


@dataclass(frozen=True)
class LineageEdge:
    """``parent`` was made from ``child``, in ``role`` (training-data, base-model, ...).

    Every rendering points it from ``parent`` to ``child``.
    """

    parent: str
    child: str
    role: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.parent, "to": self.child, "role": self.role}


@dataclass(frozen=True)
class LineageGraph:
    """The model at ``root`` and every input its attestations name, by digest.

    ``root_source`` says where the root digest came from: ``signature`` (the
    digest the model's unverified signature claims), ``attestations`` (the
    subject of its newest attestation) or ``given``.
    """

    root: str
    nodes: Mapping[str, LineageNode]
    edges: tuple[LineageEdge, ...] = ()
    root_source: str = "given"
    truncated: bool = False
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

    @property
    def root_note(self) -> str:
        """Where the root digest came from, in words."""
        return ROOT_SOURCES.get(self.root_source, self.root_source)

    def to_json(self) -> dict[str, Any]:
        """``{root, root_source, nodes: {digest: node}, edges: [{from, to, role}]}``."""
        out: dict[str, Any] = {
            "root": self.root,
            "root_source": self.root_source,
            "nodes": {d: n.to_json() for d, n in self.nodes.items()},
            "edges": [e.to_json() for e in self.edges],
        }
        if self.truncated:
            out["truncated"] = True
        return out

    def render_tree(self) -> str:
        """An indented tree, model at the top, inputs below: model -> base model -> data.

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

    def _ids(self) -> dict[str, str]:
        # Digests are untrusted strings: node ids are our own, one per node.
        return {digest: f"n{i}" for i, digest in enumerate(self.nodes)}

    def render_dot(self) -> str:
        """Graphviz: the model at the top, arrows from what was made to its inputs."""
        ids = self._ids()
        out = [
            "digraph lineage {",
            "  // edges: from what was made to what it was made from (JSON from -> to)",
            "  rankdir=TB;",
            "  node [shape=box];",
        ]
        for digest, node in self.nodes.items():
            shape = "cylinder" if node.kind == "dataset" else "box"
            out.append(f'  {ids[digest]} [label="{_dot_escape(node.label)}", shape={shape}];')
        for e in self.edges:
            role = _dot_escape(_printable(e.role))
            out.append(f'  {ids[e.parent]} -> {ids[e.child]} [label="{role}"];')
        out.append("}")
        return "\n".join(out)

    def render_mermaid(self) -> str:
        """A Mermaid flowchart, for Markdown docs; arrows as in :meth:`render_dot`."""
        ids = self._ids()
        out = ["flowchart TB"]
        for digest, node in self.nodes.items():
            label = _mermaid_escape(node.label)
            if node.kind == "dataset":
                out.append(f'  {ids[digest]}[("{label}")]')
            else:
                out.append(f'  {ids[digest]}["{label}"]')
        for e in self.edges:
            role = _mermaid_escape(_printable(e.role))
            out.append(f'  {ids[e.parent]} -->|"{role}"| {ids[e.child]}')
        return "\n".join(out)


#: C0 and C1 controls, line and paragraph separators, and the bidirectional
#: overrides that make a name read differently from what it is.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    """Escape control characters (an attestation is untrusted text, a terminal is not)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _dot_escape(text: str) -> str:
    """Inside a quoted DOT string: backslashes and quotes escaped, no line breaks."""
    return _printable(text).replace("\\", "\\\\").replace('"', '\\"')


_MERMAID_SPECIAL = re.compile(r'[#"&<>`|\[\]{}()]')


def _mermaid_escape(text: str) -> str:
    """Inside a quoted Mermaid label: every character that means something, as an entity code."""
    return _MERMAID_SPECIAL.sub(lambda m: f"#{ord(m.group())};", _printable(text))


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
    #: (metric names, dataset digests) -> (time, order, metrics): the newest of each.
    evaluations: dict[tuple[Any, ...], tuple[datetime.datetime, int, dict[str, Any]]] = field(
        default_factory=dict
    )
    superseded: int = 0


_OLDEST = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def _when(text: str) -> datetime.datetime:
    """An evaluation's time for ordering; one that cannot be read sorts first."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return _OLDEST
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _key(digest: Mapping[str, str]) -> str | None:
    """How an input is named in the graph: its root digest, or its git commit."""
    if digest.get("sha256"):
        return digest["sha256"].lower()
    if digest.get("gitCommit"):
        return f"git:{digest['gitCommit']}"
    return None


def _kind(role: str) -> str:
    if role == "base-model":
        return "model"
    return "dataset" if role.endswith("-data") else role


def _base(path: Path) -> Path:
    """What a node's relative input paths are relative to: its folder, or a file's folder."""
    return path if path.is_dir() else path.parent


def file_statements(file: Path, *, strict: bool, budget: Budget | None = None) -> list[Statement]:
    """Every readable statement of an attestations file, each once, in order.

    A damaged line, a repeat and a statement signed again are skipped. With
    ``strict``, a file that cannot be read at all (a link, a FIFO, too large)
    is an :class:`InputError`; otherwise it holds nothing for the graph.
    A missing file holds nothing either way.
    """
    if not os.path.lexists(file):
        return []
    out = []
    try:
        for line in iter_lines(file, statements=True, budget=budget):
            if line.statement is not None and line.same_statement_as is None:
                out.append(line.statement)
    except InputError:
        if strict:
            raise
        return []
    return out


def _index(statements: Iterable[Statement]) -> dict[str, list[Statement]]:
    """Statements by the (lower-case) SHA-256 digest of each of their subjects, in order."""
    out: dict[str, list[Statement]] = {}
    for stmt in statements:
        keys = {s.digest["sha256"].lower() for s in stmt.subjects if s.digest.get("sha256")}
        for key in keys:
            out.setdefault(key, []).append(stmt)
    return out


class _Walk:
    """One walk of the graph: each file read once, each digest's statements applied once.

    Statements are indexed by subject digest, so a file that names many
    digests costs its size once, not once per digest; all files together
    are bounded by :data:`MAX_WALK_BYTES` and one value budget.
    """

    def __init__(self, follow: bool) -> None:
        from provenance.attest._parse import MAX_FILE_VALUES

        self.follow = follow
        self.nodes: dict[str, _Draft] = {}
        self.edges: dict[tuple[str, str, str], None] = {}  # ordered, without repeats
        self.visited: set[str] = set()
        self.files: dict[str, dict[str, list[Statement]]] = {}
        self.by_path: dict[str, tuple[Path, dict[str, list[Statement]]]] = {}
        self.values_left = 2 * MAX_FILE_VALUES  # all files together
        self.bytes_left = MAX_WALK_BYTES
        self.order = 0
        self.truncated = False

    def node(self, digest: str, name: str, kind: str) -> _Draft | None:
        found = self.nodes.get(digest)
        if found is None:
            if len(self.nodes) >= MAX_NODES:
                self.truncated = True
                return None
            found = self.nodes[digest] = _Draft(name, kind)
        return found

    def _read(self, file: Path, *, strict: bool) -> list[Statement]:
        """One file's statements, within its own value budget and what the walk has left."""
        from provenance.attest._parse import MAX_FILE_VALUES, Budget

        budget = Budget(min(MAX_FILE_VALUES, self.values_left))
        try:
            return file_statements(file, strict=strict, budget=budget)
        finally:
            self.values_left -= budget.total - budget.left

    def read_root(self, file: Path) -> list[Statement]:
        found = self._read(file, strict=True)
        self.files[os.path.realpath(file)] = _index(found)
        return found

    def statements_of(self, path: Path) -> tuple[Path, dict[str, list[Statement]]]:
        """The real folder a node's relative inputs are relative to, and its statements."""
        known = self.by_path.get(str(path))
        if known is not None:
            return known
        target = default_attestations_path(path)
        key = os.path.realpath(target)
        if key not in self.files:
            try:
                size = os.stat(target, follow_symlinks=False).st_size
            except (OSError, ValueError):
                size = 0
            if size > self.bytes_left:
                self.truncated = True
                self.files[key] = {}
            else:
                self.bytes_left -= size
                self.files[key] = _index(self._read(target, strict=False))
        found = (Path(os.path.realpath(_base(path))), self.files[key])
        self.by_path[str(path)] = found
        return found

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
        if statements is not None:
            base = Path(os.path.realpath(_base(path)))
            found = _index(statements).get(digest.lower(), [])
        else:
            base, index = self.statements_of(path)
            found = index.get(digest.lower(), [])
        for stmt in found:
            try:
                self.apply(stmt, digest, depth, base)
            except (ProvenanceError, ValueError, TypeError, KeyError, AttributeError):
                continue  # a predicate of the wrong shape says nothing about lineage

    def apply(self, stmt: Statement, digest: str, depth: int, base: Path) -> None:
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
            self.inputs(digest, run.resolved_dependencies, depth, base)
        elif stmt.predicate_type == EVALUATION.uri:
            evaluation = EVALUATION.parse(stmt.predicate)
            metrics = {m.name: m.value for m in evaluation.metrics}
            datasets = tuple(sorted(k for d in evaluation.datasets if (k := _key(d.digest))))
            key = (tuple(sorted(metrics)), datasets)
            entry = (_when(evaluation.evaluated_on), self.order, metrics)
            self.order += 1
            previous = node.evaluations.get(key)
            if previous is not None:
                node.superseded += 1
                if previous[:2] > entry[:2]:
                    entry = previous
            node.evaluations[key] = entry
            self.inputs(digest, evaluation.datasets, depth, base)

    def inputs(
        self, parent: str, deps: Iterable[ResourceDescriptor], depth: int, base: Path
    ) -> None:
        for dep in deps:
            key = _key(dep.digest)
            if key is None:
                continue
            role = dep.role or "input"
            child = self.node(key, dep.name or dep.uri or key[:12], _kind(role))
            if child is None:
                continue  # the graph is full
            self.edges[(parent, key, role)] = None
            if dep.uri:
                child.uri = dep.uri
            local = None
            if self.follow and dep.path:
                # Joined to the real folder, so ".." means what it means on disk.
                joined = os.path.join(base, dep.path)
                local = Path(os.path.normpath(joined))
                if not os.path.lexists(local):
                    local = None  # recorded on another machine: named, not followed
            elif self.follow and dep.uri and dep.uri.startswith("hf://"):
                local = _cached_snapshot(dep.uri)  # a Hub model by commit, if cached here
            self.visit(local, key, None, depth + 1)

    def graph(self, root: str, root_source: str) -> LineageGraph:
        nodes = {}
        for digest, d in self.nodes.items():
            newest = sorted(d.evaluations.values(), key=lambda e: e[1])
            nodes[digest] = LineageNode(
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
                evaluations=tuple(e[2] for e in newest),
                superseded_evaluations=d.superseded,
            )
        edges = tuple(LineageEdge(*e) for e in self.edges)
        return LineageGraph(root, nodes, edges, root_source, self.truncated)


def _cached_snapshot(uri: str) -> Path | None:
    from provenance import hub

    ref = hub.parse_reference(uri)
    if ref is None or ref.commit is None:
        return None
    try:
        return hub.cached_snapshot(ref.repo_id, ref.commit)[1]
    except ProvenanceError:
        return None


def _signature_root(path: Path) -> str | None:
    """The root digest the model's signature claims (read, not verified), or None."""
    from provenance.bundle import Bundle, default_signature_path

    sig = default_signature_path(path)
    if not os.path.lexists(sig):
        return None
    try:
        stmt = Statement.parse(Bundle.read(sig).envelope.payload)
        digest = stmt.subjects[0].digest.get("sha256")
    except (ProvenanceError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return digest.lower() if digest else None


def _newest_subject(statements: Sequence[Statement], name: str) -> str | None:
    """The subject digest of the newest statement about ``name``, else of the newest one."""
    fallback = None
    for stmt in reversed(statements):
        for s in stmt.subjects:
            digest = s.digest.get("sha256")
            if not digest:
                continue
            if s.name == name:
                return digest.lower()
            fallback = fallback or digest.lower()
    return fallback


def claimed_root(
    model_path: str | os.PathLike[str], attestations_path: str | os.PathLike[str] | None = None
) -> tuple[str, str] | None:
    """The digest that names the model without hashing it, and where it came from.

    ``signature``: the subject of the model's signature (read, not verified);
    else ``attestations``: the subject of the newest readable attestation
    about a subject of the model's name (else of the newest one). None when
    neither says.
    """
    path = Path(model_path)
    digest = _signature_root(path)
    if digest is not None:
        return digest, "signature"
    file = Path(attestations_path) if attestations_path else default_attestations_path(path)
    digest = _newest_subject(file_statements(file, strict=True), model_name(path))
    return (digest, "attestations") if digest is not None else None


def build(
    model_path: str | os.PathLike[str],
    *,
    statements: Sequence[Statement] | None = None,
    root_digest: str | None = None,
    root_source: str | None = None,
    attestations_path: str | os.PathLike[str] | None = None,
    follow: bool | None = None,
) -> LineageGraph:
    """The lineage of a model, from its attestations and those of its local inputs.

    ``statements`` (e.g. only the verified ones) default to everything in
    the attestations file (``attestations_path``, default beside the model).
    ``root_digest`` defaults to what :func:`claimed_root` finds (nothing is
    hashed); ``root_source`` says where a given one came from (default
    ``given``). Given statements are not followed into the inputs' own
    attestation files, which nobody has verified. A model's own
    attestations file that cannot be read (a link, a FIFO, too large) is an
    :class:`InputError`; an input's is skipped.
    """
    path = Path(model_path)
    if not os.path.lexists(path):
        raise InputError(f"'{path}' does not exist", code="not-found")
    file = Path(attestations_path) if attestations_path else default_attestations_path(path)
    if attestations_path is not None and not os.path.lexists(file):
        raise InputError(f"no attestations at '{file}'", code="attestations-missing")
    walk = _Walk(follow=statements is None if follow is None else follow)
    if statements is None:
        statements = walk.read_root(file)  # read once, for all that follows
    elif walk.follow:  # the caller read the model's file: inputs in it are not read again
        walk.files[os.path.realpath(file)] = _index(statements)
    if root_digest is None:
        root_digest = _signature_root(path)
        root_source = "signature"
        if root_digest is None:
            root_digest = _newest_subject(statements, model_name(path))
            root_source = "attestations"
        if root_digest is None:
            raise InputError(
                f"'{path}' has neither a signature nor attestations that name its digest",
                code="nothing-to-inspect",
            )
    root_digest = root_digest.lower()
    walk.node(root_digest, model_name(path), "model")
    walk.visit(path, root_digest, statements, depth=0)
    return walk.graph(root_digest, root_source or "given")
