"""``provenance key fingerprint``: the key hint, printed, for policies and people."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
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


# -- key generate


@pytest.mark.parametrize("key_type", ["p256", "p384", "p521", "ed25519"])
def test_generate_makes_a_key_sign_and_verify_use(tmp_path, key_type):
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    name = tmp_path / "release"
    data = contract(
        run_cli("key", "generate", name, "--type", key_type, "--json"), "key generate", 0
    )
    private, public = Path(data["private_key"]), Path(data["public_key"])
    assert (private, public) == (tmp_path / "release.pem", tmp_path / "release.pub")
    assert private.stat().st_mode & 0o777 == 0o600
    assert data["encrypted"] is False
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    assert run_cli("sign", model, "--key", private).exit_code == 0
    verified = run_cli("verify", model, "--key", public)
    assert verified.exit_code == 0, verified.output
    # the fingerprint it printed is the key's
    shown = run_cli("key", "fingerprint", public, "--json")
    assert json.loads(shown.stdout)["signer"] == data["signer"]


def test_generate_never_writes_over_a_file_or_through_a_link(tmp_path):
    (tmp_path / "k.pub").write_text("someone's key")
    result = run_cli("key", "generate", tmp_path / "k")
    assert result.exit_code == 3, result.output
    assert "exists" in result.stderr and "hint:" in result.stderr
    assert not (tmp_path / "k.pem").exists()
    assert (tmp_path / "k.pub").read_text() == "someone's key"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "l.pem").symlink_to(tmp_path / "elsewhere" / "stolen.pem")
    result = run_cli("key", "generate", tmp_path / "l")
    assert result.exit_code == 3
    assert not (tmp_path / "elsewhere" / "stolen.pem").exists()


def test_generate_encrypts_with_the_password_sign_reads(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    env = {"PROVENANCE_KEY_PASSWORD": "correct horse"}
    result = run_cli("key", "generate", tmp_path / "enc.pem", env=env)
    assert result.exit_code == 0, result.output
    assert b"ENCRYPTED" in (tmp_path / "enc.pem").read_bytes()
    assert run_cli("sign", model, "--key", tmp_path / "enc.pem", env=env).exit_code == 0
    assert run_cli("verify", model, "--key", tmp_path / "enc.pub").exit_code == 0
