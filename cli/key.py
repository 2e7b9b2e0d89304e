"""``provenance key``: facts about a key file, for policies and for people."""

from __future__ import annotations

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit


@click.group("key")
def key_group() -> None:
    """Make signing keys, and facts about them."""


@key_group.command("generate")
@handle_errors()
@click.argument("name", type=click.Path(path_type=str))
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["p256", "p384", "p521", "ed25519"]),
    default="p256",
    show_default=True,
    help="ECDSA P-256 is what model-signing and Sigstore use by default.",
)
@json_option
def generate_command(name: str, key_type: str, as_json: bool) -> None:
    """Make a signing key: NAME.pem (private, mode 0600) and NAME.pub (public).

    Neither file may exist. If $PROVENANCE_KEY_PASSWORD is set the private
    key is encrypted with it, and sign reads it from there again; otherwise
    the private key is not encrypted: keep it out of the model folder and of
    version control.

    \b
      provenance key generate release
      provenance sign my-model --key release.pem
      provenance verify my-model --key release.pub
    """
    import os

    from provenance.signing import generate_key

    stem = name[:-4] if name.endswith((".pem", ".pub")) else name
    private, public = f"{stem}.pem", f"{stem}.pub"
    password = os.environ.get("PROVENANCE_KEY_PASSWORD") or None
    info = generate_key(private, public, key_type=key_type, password=password)
    lines = [
        Line(f"Wrote {private} (private{', encrypted' if password else ''}) and {public}"),
        Line(f"{info.key_fingerprint}  {info.key_type}"),
    ]
    if not password:
        lines.append(Line("note: the private key is not encrypted (set $PROVENANCE_KEY_PASSWORD)"))
    body = {
        "signer": info.to_json(),
        "private_key": private,
        "public_key": public,
        "encrypted": bool(password),
    }
    emit(body, as_json=as_json, lines=lines)


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
