"""``provenance lineage``: the graph of what a model was made from."""

from __future__ import annotations

import click

from provenance_cli._common import emit_json, handle_errors, json_option


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
@handle_errors()
def lineage_command(model: str, fmt: str, as_json: bool) -> None:
    """Write MODEL's lineage from its attestations: model <- base model <- datasets.

    Inputs recorded by local path are followed into their own attestations.
    The attestations are read, not verified: run
    `provenance verify MODEL --attestations ...` to check them. --json is
    --format json.
    """
    from provenance.attest import build_lineage

    graph = build_lineage(model)
    if as_json or fmt == "json":
        emit_json(graph.to_json())
    elif fmt == "dot":
        click.echo(graph.render_dot())
    elif fmt == "mermaid":
        click.echo(graph.render_mermaid())
    else:
        click.echo(graph.render_tree())
