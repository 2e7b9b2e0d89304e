"""``provenance key fingerprint``: the key hint, printed, for policies and people."""

from __future__ import annotations

import hashlib
import json

from conftest import assert_fails, run_cli
from cryptography.hazmat.primitives import serialization
from test_output_contract import contract

from provenance.bundle import Bundle


def _spki_pem_sha256(key) -> str:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def test_fingerprint_is_the_hint_a_signature_carries(model, p256, ed25519_key):
    run_cli("sign", model, "--key", p256.private)
    hint = Bundle.read(model / "model.sig").key_hint
    for path in (p256.public, p256.private):
        out = run_cli("key", "fingerprint", path)
        assert out.exit_code == 0, out.output
        assert out.output.split()[0] == hint == _spki_pem_sha256(p256.key)
    data = contract(
        run_cli("key", "fingerprint", ed25519_key.public, "--json"), "key fingerprint", 0
    )
    assert data["signer"]["key_fingerprint"] == _spki_pem_sha256(ed25519_key.key)
    assert data["signer"]["key_type"] == "Ed25519"


def test_fingerprint_of_what_is_not_a_key(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert_fails(run_cli("key", "fingerprint", junk), 3, "not a PEM key")
    data = contract(
        run_cli("key", "fingerprint", tmp_path / "nope", "--json"), "key fingerprint", 3
    )
    assert json.dumps(data)
