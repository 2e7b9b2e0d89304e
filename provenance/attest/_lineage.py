"""Lineage: the graph of digests that attestations describe, and its renderings.

Nodes are models and datasets named by root digest; edges say which input
played which role (training data, base model, ...). A dependency recorded
with a local path that has attestations of its own is followed, so a
fine-tune shows its base model and the base model's datasets in turn.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenance.attest._predicates import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
)

_MAX_DEPTH = 8


def _statements(path: Path) -> list[dict[str, Any]]:
    from provenance.attest._store import default_attestations_path, read

    file = default_attestations_path(path)
    if not file.exists():
        return []
    out = []
    for line in read(file):
        if line.bundle is None:
            continue
        try:
            stmt = json.loads(line.bundle.envelope.payload)
        except ValueError:
            continue
        if isinstance(stmt, dict):
            out.append(stmt)
    return out


def _about(stmt: Mapping[str, Any], digest: str) -> bool:
    subjects = stmt.get("subject") if isinstance(stmt.get("subject"), list) else []
    return any(
        isinstance(s, Mapping) and (s.get("digest") or {}).get("sha256") == digest for s in subjects
    )


def build(
    model_path: str | os.PathLike[str],
    *,
    statements: list[dict[str, Any]] | None = None,
    root_digest: str | None = None,
) -> dict[str, Any]:
    """The lineage graph as JSON-able data: ``{root, nodes, edges}``.

    ``statements`` (e.g. only the verified ones) and ``root_digest`` default
    to everything in the attestations file and a fresh hash of the model.
    """
    from provenance.attest import subject_digest

    path = Path(model_path)
    if root_digest is None:
        name, root_digest = subject_digest(path)
    else:
        name = Path(os.path.abspath(path)).name
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    _visit(path, name, root_digest, "model", statements, nodes, edges, depth=0)
    return {"root": root_digest, "nodes": nodes, "edges": edges}


def _visit(
    path: Path | None,
    name: str,
    digest: str,
    kind: str,
    statements: list[dict[str, Any]] | None,
    nodes: dict[str, dict[str, Any]],
    edges: list[dict[str, Any]],
    depth: int,
) -> None:
    node = nodes.setdefault(digest, {"name": name, "kind": kind})
    if path is not None:
        node.setdefault("path", str(path))
    if depth > _MAX_DEPTH or path is None or node.get("_visited"):
        return
    node["_visited"] = True
    found = statements if statements is not None else _statements(path)
    for stmt in found:
        if not _about(stmt, digest):
            continue
        ptype = stmt.get("predicateType")
        predicate = stmt.get("predicate") if isinstance(stmt.get("predicate"), Mapping) else {}
        if ptype == DATASET_PREDICATE_TYPE:
            node["kind"] = "dataset"
            for key in ("license", "version", "sourceUri", "records"):
                if key in predicate:
                    node[key] = predicate[key]
        elif ptype == SLSA_PREDICATE_TYPE:
            build = predicate.get("buildDefinition") or {}
            external = build.get("externalParameters") or {}
            node["producedBy"] = external.get("kind", "training")
            builder = ((predicate.get("runDetails") or {}).get("builder") or {}).get("id")
            if builder:
                node["builder"] = builder
            for dep in build.get("resolvedDependencies") or []:
                _edge(dep, digest, statements is None, nodes, edges, depth)
        elif ptype == EVALUATION_PREDICATE_TYPE:
            metrics = {m.get("name"): m.get("value") for m in predicate.get("metrics") or []}
            node.setdefault("evaluations", []).append(metrics)
            for dep in predicate.get("datasets") or []:
                _edge(dep, digest, statements is None, nodes, edges, depth)


def _edge(
    dep: Any,
    parent: str,
    follow: bool,
    nodes: dict[str, dict[str, Any]],
    edges: list[dict[str, Any]],
    depth: int,
) -> None:
    if not isinstance(dep, Mapping):
        return
    annotations = dep.get("annotations") if isinstance(dep.get("annotations"), Mapping) else {}
    role = annotations.get("role", "input")
    digests = dep.get("digest") if isinstance(dep.get("digest"), Mapping) else {}
    digest = digests.get("sha256")
    if not digest:
        if digests.get("gitCommit"):
            digest = f"git:{digests['gitCommit']}"
        else:
            return
    name = dep.get("name") or dep.get("uri") or digest[:12]
    kind = "model" if role == "base-model" else "dataset" if role.endswith("-data") else role
    edges.append({"from": parent, "to": digest, "role": role})
    local = annotations.get("path")
    next_path = Path(local) if follow and isinstance(local, str) and Path(local).exists() else None
    if "uri" in dep:
        nodes.setdefault(digest, {"name": name, "kind": kind})["uri"] = dep["uri"]
    _visit(next_path, name, digest, kind, None, nodes, edges, depth + 1)


def _label(digest: str, node: Mapping[str, Any]) -> str:
    short = digest if digest.startswith("git:") else f"sha256:{digest[:12]}"
    extra = []
    if node.get("producedBy"):
        extra.append(f"{node['producedBy']}")
    if node.get("license"):
        extra.append(f"license {node['license']}")
    for ev in node.get("evaluations", []):
        extra.append(", ".join(f"{k}={v}" for k, v in ev.items()))
    tail = f"  [{'; '.join(extra)}]" if extra else ""
    return f"{node.get('name')} ({node.get('kind')}, {short}){tail}"


def render_tree(graph: Mapping[str, Any]) -> str:
    """An indented tree, model at the top, inputs below: model <- base model <- data."""
    nodes, edges = graph["nodes"], graph["edges"]
    children: dict[str, list[dict[str, Any]]] = {}
    for e in edges:
        children.setdefault(e["from"], []).append(e)
    lines = [_label(graph["root"], nodes[graph["root"]])]

    def walk(digest: str, prefix: str, seen: frozenset[str]) -> None:
        kids = children.get(digest, [])
        for i, e in enumerate(kids):
            last = i == len(kids) - 1
            branch = "\u2514\u2500\u2500 " if last else "\u251c\u2500\u2500 "
            lines.append(f"{prefix}{branch}{e['role']}: {_label(e['to'], nodes[e['to']])}")
            if e["to"] not in seen:
                walk(e["to"], prefix + ("    " if last else "\u2502   "), seen | {e["to"]})

    walk(graph["root"], "", frozenset({graph["root"]}))
    return "\n".join(lines)


def _ident(digest: str) -> str:
    return "n_" + "".join(c for c in digest if c.isalnum())[:24]


def render_dot(graph: Mapping[str, Any]) -> str:
    out = ["digraph lineage {", "  rankdir=BT;", "  node [shape=box];"]
    for digest, node in graph["nodes"].items():
        shape = "cylinder" if node.get("kind") == "dataset" else "box"
        label = _label(digest, node).replace('"', '\\"')
        out.append(f'  {_ident(digest)} [label="{label}", shape={shape}];')
    for e in graph["edges"]:
        out.append(f'  {_ident(e["to"])} -> {_ident(e["from"])} [label="{e["role"]}"];')
    out.append("}")
    return "\n".join(out)


def render_mermaid(graph: Mapping[str, Any]) -> str:
    out = ["flowchart BT"]
    for digest, node in graph["nodes"].items():
        label = _label(digest, node).replace('"', "'")
        if node.get("kind") == "dataset":
            out.append(f'  {_ident(digest)}[("{label}")]')
        else:
            out.append(f'  {_ident(digest)}["{label}"]')
    for e in graph["edges"]:
        out.append(f"  {_ident(e['to'])} -->|{e['role']}| {_ident(e['from'])}")
    return "\n".join(out)


def as_json(graph: Mapping[str, Any]) -> dict[str, Any]:
    nodes = {
        d: {k: v for k, v in n.items() if not k.startswith("_")} for d, n in graph["nodes"].items()
    }
    return {"root": graph["root"], "nodes": nodes, "edges": list(graph["edges"])}
