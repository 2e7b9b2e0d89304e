"""``provenance lineage``: the graph of what a model was made from.

``--json`` (and its alias ``--format json``) prints the contract head and
:meth:`provenance.attest.LineageGraph.to_json` (``schemas/cli-lineage.schema.json``);
the other formats print the graph's own rendering, which escapes control
characters (the attestations it draws are read, not verified).
"""

from __future__ import annotations

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit


@click.command("lineage")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "dot", "mermaid", "json"]),
    default="tree",
    show_default=True,
    help="tree for people, dot (Graphviz) and mermaid for docs, json for dashboards.",
)
@click.option(
    "--attestations-file",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="Read MODEL's attestations from PATH (default MODEL/model.intoto.jsonl).",
)
@json_option
def lineage_command(model: str, fmt: str, attestations_file: str | None, as_json: bool) -> None:
    """Write MODEL's lineage from its attestations: model -> base model -> datasets.

    Inputs recorded by local path are followed into their own attestations.
    Every rendering draws edges from what was made to what it was made from.
    Nothing is verified and nothing is hashed: the model is named by the
    digest its signature (or its newest attestation) claims. Run
    `provenance verify MODEL --attestations ...` to check them. --json is
    --format json.
    """
    # --format json is --json, for errors too: both get the contract's error object.
    _lineage(
        model=model, fmt=fmt, attestations_file=attestations_file, as_json=as_json or fmt == "json"
    )


@handle_errors()
def _lineage(*, model: str, fmt: str, attestations_file: str | None, as_json: bool) -> None:
    from provenance.attest import build_lineage

    graph = build_lineage(model, attestations_path=attestations_file)
    if as_json:
        emit(graph, as_json=True)
        return
    if fmt in ("dot", "mermaid"):
        render = graph.render_dot if fmt == "dot" else graph.render_mermaid
        emit(graph, as_json=False, lines=[Line(render(), block=True)])
        return
    note = f"(root sha256:{graph.root[:12]} is {graph.root_note}; nothing here is verified)"
    emit(graph, as_json=False, lines=[Line(graph.render_tree(), block=True), Line(note)])
