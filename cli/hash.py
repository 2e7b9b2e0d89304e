"""``provenance hash``: the root digest that names a model or dataset."""

from __future__ import annotations

import click

from provenance_cli._common import HashingOptions, handle_errors, json_option, progress_bar
from provenance_cli._output import emit, warn


@click.command("hash")
@handle_errors()
@click.argument("model", type=click.Path(path_type=str))
@HashingOptions.options
@json_option
def hash_command(model: str, hashing: HashingOptions, as_json: bool) -> None:
    """Hash MODEL (a file or a folder) and print its root digest.

    The root digest is SHA-256 over the digests of every file (or shard) in
    manifest order; attestations and lineage name models and datasets by it.
    With --json, print the whole manifest, with the digest under root_digest.
    """
    from provenance.hashing import hash_tree, ignore_warnings, serialization_for

    serialization = serialization_for(
        model,
        method=hashing.resolved_method(),
        algorithm=hashing.algorithm,
        shard_size=hashing.shard_size,
        ignore_paths=hashing.ignore_paths,
        allow_symlinks=hashing.allow_symlinks,
    )
    with progress_bar("hashing", not as_json) as progress:
        manifest, found = hash_tree(model, serialization, progress=progress)
    for warning in ignore_warnings(model, serialization, found, hashing.ignore_paths):
        warn(warning)
    emit(manifest, as_json=as_json, lines=[manifest.root_digest])
