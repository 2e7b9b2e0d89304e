"""``provenance lineage``: the graph of what a model was made from."""

from __future__ import annotations

import click

from provenance_cli._common import emit_json, handle_errors


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
@handle_errors()
def lineage_command(model: str, fmt: str) -> None:
    """Write MODEL's lineage from its attestations: model <- base model <- datasets.

    Inputs recorded by local path are followed into their own attestations.
    The attestations are read, not verified: run
    `provenance verify MODEL --attestations ...` to check them.
    """
    from provenance.attest import _lineage

    graph = _lineage.build(model)
    if fmt == "json":
        emit_json(_lineage.as_json(graph))
    elif fmt == "dot":
        click.echo(_lineage.render_dot(graph))
    elif fmt == "mermaid":
        click.echo(_lineage.render_mermaid(graph))
    else:
        click.echo(_lineage.render_tree(graph))
