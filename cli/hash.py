"""``provenance hash``: the root digest that names a model or dataset."""

from __future__ import annotations

import click

from provenance_cli._common import (
    emit_json,
    handle_errors,
    hashing_kwargs,
    hashing_options,
    json_option,
    progress_bar,
)


@click.command("hash")
@click.argument("model", type=click.Path(path_type=str))
@hashing_options
@json_option
@handle_errors()
def hash_command(
    model: str,
    algorithm: str,
    method: str | None,
    shard_size: int | None,
    ignore_paths: tuple[str, ...],
    allow_symlinks: bool,
    as_json: bool,
) -> None:
    """Hash MODEL (a file or a folder) and print its root digest.

    The root digest is SHA-256 over the digests of every file (or shard) in
    manifest order; attestations and lineage name models and datasets by it.
    With --json, print the whole manifest, with the digest under root_digest.
    """
    import provenance

    with progress_bar("hashing", not as_json) as progress:
        manifest = provenance.hash_model(
            model,
            ignore_paths=ignore_paths,
            allow_symlinks=allow_symlinks,
            progress=progress,
            **hashing_kwargs(algorithm, method, shard_size),
        )
    if as_json:
        emit_json(manifest.to_json())
    else:
        click.echo(manifest.root_digest)
