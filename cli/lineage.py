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
@json_option
def lineage_command(model: str, fmt: str, as_json: bool) -> None:
    """Write MODEL's lineage from its attestations: model <- base model <- datasets.

    Inputs recorded by local path are followed into their own attestations.
    The attestations are read, not verified: run
    `provenance verify MODEL --attestations ...` to check them. --json is
    --format json.
    """
    # --format json is --json, for errors too: both get the contract's error object.
    _lineage(model=model, fmt=fmt, as_json=as_json or fmt == "json")


@handle_errors()
def _lineage(*, model: str, fmt: str, as_json: bool) -> None:
    from provenance.attest import build_lineage

    graph = build_lineage(model)
    if as_json:
        emit(graph, as_json=True)
        return
    renders = {"dot": graph.render_dot, "mermaid": graph.render_mermaid}
    emit(graph, as_json=False, lines=[Line(renders.get(fmt, graph.render_tree)(), block=True)])
