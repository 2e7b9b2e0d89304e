"""``provenance key``: facts about a key file, for policies and for people."""

from __future__ import annotations

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit


@click.group("key")
def key_group() -> None:
    """Facts about signing keys."""


@key_group.command("fingerprint")
@handle_errors()
@click.argument("key", type=click.Path(path_type=str))
@json_option
def fingerprint_command(key: str, as_json: bool) -> None:
    """Print KEY's fingerprint: the hex SHA-256 of its public key's PEM.

    KEY is a public key, or a private key (only its public half is used).
    The fingerprint is the key hint a signature carries (`provenance inspect`
    shows it) and what a policy pins a key by. Same as:

    \b
      openssl pkey -pubin -in KEY.pub | sha256sum      (public key)
      openssl pkey -in KEY.pem -pubout | sha256sum     (private key)
    """
    from provenance.signing import describe_key_file

    info = describe_key_file(key)
    keyid = _intoto_keyid(key)
    lines = [Line(f"{info.key_fingerprint}  {info.key_type}")]
    if keyid is not None:
        lines.append(Line(f"{keyid}  in-toto key id (pipeline links: STEP.{keyid[:8]}.link)"))
    emit({"signer": info.to_json(), "intoto_keyid": keyid}, as_json=as_json, lines=lines)


def _intoto_keyid(path: str) -> str | None:
    """The id in-toto names the key by in layouts and links (None: not readable as one)."""
    from provenance.errors import ProvenanceError
    from provenance.pipeline import public_key_dict

    try:
        return str(public_key_dict(path)["keyid"])
    except ProvenanceError:
        pass
    try:  # a private key without a password: its public half
        from cryptography.hazmat.primitives import serialization

        from provenance._internal.fsutil import read_limited

        private = serialization.load_pem_private_key(read_limited(path, "key", 1 << 20), None)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return str(public_key_dict(pem)["keyid"])
    except (ProvenanceError, ValueError, TypeError):
        return None
