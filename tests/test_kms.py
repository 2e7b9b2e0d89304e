"""Keys behind securesystemslib signer URIs: ``--kms file2:…`` and a real PKCS#11 token.

``file2:`` is securesystemslib's CryptoSigner reading a PEM private key from a
path; it needs no service, so it exercises the whole KMS adapter end to end.
``hsm:`` runs against a real SoftHSM2 token created for the session (skipped
when softhsm2 or python-pkcs11 is missing). Every signature is verified by
provenance and by model-signing's CLI.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import provenance
from provenance.errors import InputError, UsageError
from provenance.signing import KeyVerifier, kms_signer

pytest.importorskip("securesystemslib.signer", reason="securesystemslib (kms extra) not installed")

PIN_ENV = "PROVENANCE_HSM_PIN"
MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
needs_model_signing = pytest.mark.skipif(
    not MODEL_SIGNING.exists(), reason=f"model-signing CLI not found at {MODEL_SIGNING}"
)


# --------------------------------------------------------------------------- helpers


def assert_ok(result) -> str:
    out = result.output + (result.stderr or "")
    assert result.exit_code == 0, out
    assert "Traceback" not in out
    return result.stdout


def assert_fails(result, code: int, *words: str) -> str:
    """Exit ``code``, one ``error:`` line on stderr naming every word (and at most
    a ``  hint:`` line after it), no traceback."""
    out = result.output + (result.stderr or "")
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{out}"
    assert "Traceback" not in out
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("  hint: ")]
    assert len(lines) == 1, f"wanted one reason line on stderr, got {lines!r}"
    prefix = "verification failed: " if code == 1 else "error: "
    assert lines[0].startswith(prefix), f"stderr line is {lines[0]!r}"
    reason = lines[0][len(prefix) :]
    assert reason.rstrip(" :"), f"the reason is empty: {lines[0]!r}"
    for w in words:
        assert w.lower() in result.stderr.lower(), f"{w!r} not in {result.stderr!r}"
    return result.stderr


def model_files(model: Path) -> dict[str, tuple[bytes, float]]:
    """Contents and mtimes of the model's own files (the signature left out)."""
    return {k: v for k, v in snapshot(model).items() if k != "model.sig"}


def model_signing_verify(model: Path, public: Path) -> subprocess.CompletedProcess[str]:
    sig = model / "model.sig"
    return subprocess.run(
        [MODEL_SIGNING, "verify", "key", model, "--public_key", public, "--signature", sig],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_der_signature(model: Path) -> None:
    """The DSSE signature in the bundle is ASN.1 DER ECDSA (what OMS verifiers expect)."""
    bundle = json.loads((model / "model.sig").read_bytes())
    sig = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    r, s = decode_dss_signature(sig)  # raises ValueError for raw r||s
    assert r > 0
    assert s > 0


def assert_verifies_everywhere(model: Path, public: Path) -> None:
    assert "Verified" in assert_ok(run_cli("verify", model, "--key", public))
    if MODEL_SIGNING.exists():
        proc = model_signing_verify(model, public)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Verification succeeded" in proc.stdout


def file2(key: Path) -> str:
    return f"file2:{key.resolve()}"


# --------------------------------------------------------------------------- 1. file2:

CURVES = ["p256", "p384", "p521"]


@pytest.mark.parametrize("curve", CURVES)
def test_file2_cli_sign_then_verify(curve, request, model):
    kp = request.getfixturevalue(curve)
    before = model_files(model)
    out = assert_ok(
        run_cli("sign", model, "--kms", file2(kp.private), "--kms-public-key", kp.public)
    )
    assert f"ECDSA {curve.upper().replace('P', 'P-')} key" in out
    assert model_files(model) == before, "signing modified the model's files"
    assert_der_signature(model)
    assert_verifies_everywhere(model, kp.public)


@needs_model_signing
def test_file2_model_signing_rejects_another_key(p256, other_key, model):
    """The model-signing cross-check is real: it refuses the signature for a different key."""
    assert_ok(run_cli("sign", model, "--kms", file2(p256.private), "--kms-public-key", p256.public))
    proc = model_signing_verify(model, other_key.public)
    assert proc.returncode != 0, proc.stdout
    assert_fails(run_cli("verify", model, "--key", other_key.public), 1)


def test_file2_ed25519(ed25519_key, model):
    """Ed25519 through file2 too (model-signing cannot verify Ed25519 keys, so not checked)."""
    args = ["--kms", file2(ed25519_key.private), "--kms-public-key", ed25519_key.public]
    assert "Ed25519 key" in assert_ok(run_cli("sign", model, *args))
    assert_ok(run_cli("verify", model, "--key", ed25519_key.public))


@pytest.mark.parametrize("curve", ["p256", "p384"])
def test_file2_python_api(curve, request, model):
    kp = request.getfixturevalue(curve)
    signer = kms_signer(file2(kp.private), public_key=kp.public)
    result = provenance.sign(model, signer)
    assert result.signature_path == model / "model.sig"
    verified = provenance.verify(model, KeyVerifier.from_files(kp.public))
    assert verified.root_digest == result.manifest.root_digest
    assert_der_signature(model)
    if MODEL_SIGNING.exists():
        proc = model_signing_verify(model, kp.public)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_api_bad_uris(p256, other_key):
    with pytest.raises(UsageError, match="unknown key URI scheme"):
        kms_signer("nosuch:key")
    with pytest.raises(UsageError, match="needs its public key") as info:
        kms_signer("gcpkms:projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")
    assert info.value.hint == "kms_public_key"  # the CLI renders it as --kms-public-key
    with pytest.raises(InputError, match="does not match"):
        kms_signer(file2(p256.private), public_key=other_key.public)


# --------------------------------------------------------------------------- 2. bad input


def test_unknown_scheme_lists_known_ones(model):
    before = model_files(model)
    err = assert_fails(run_cli("sign", model, "--kms", "nosuch:my-key"), 2, "nosuch")
    for scheme in ("file2", "hsm", "gcpkms", "awskms", "azurekms", "hv"):
        assert scheme in err, f"{scheme!r} not listed in {err!r}"
    assert model_files(model) == before


@pytest.mark.parametrize(
    "uri",
    [
        "gcpkms:projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
        "awskms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "azurekms:https://my-vault.vault.azure.net/keys/my-key/0123456789abcdef",
        "hv:my-key",
    ],
    ids=["gcpkms", "awskms", "azurekms", "hv"],
)
def test_cloud_uri_needs_public_key(uri, model):
    before = model_files(model)
    assert_fails(run_cli("sign", model, "--kms", uri), 2, "--kms-public-key")
    assert model_files(model) == before


def test_file2_without_public_key_is_usage_error(p256, model):
    assert_fails(run_cli("sign", model, "--kms", file2(p256.private)), 2, "--kms-public-key")


@pytest.mark.parametrize("public", ["other_key", "p384"], ids=["same-curve", "other-curve"])
def test_file2_public_key_mismatch_refused(public, p256, request, model):
    """A --kms-public-key that is not the private key's: sign refuses, writes nothing."""
    wrong = request.getfixturevalue(public).public
    before = model_files(model)
    result = run_cli("sign", model, "--kms", file2(p256.private), "--kms-public-key", wrong)
    assert_fails(result, 3, "file2:")
    assert not (model / "model.sig").exists()
    assert model_files(model) == before


def test_key_and_kms_together(p256, model):
    args = ["--key", p256.private, "--kms", file2(p256.private), "--kms-public-key", p256.public]
    assert_fails(run_cli("sign", model, *args), 2, "--key", "--kms")
    assert not (model / "model.sig").exists()


def test_file2_missing_private_key(p256, model, tmp_path):
    missing = tmp_path / "nowhere" / "key.pem"
    result = run_cli("sign", model, "--kms", file2(missing), "--kms-public-key", p256.public)
    assert_fails(result, 3, str(missing))
    assert not (model / "model.sig").exists()


def test_missing_kms_public_key_file(p256, model, tmp_path):
    missing = tmp_path / "nope.pub"
    result = run_cli("sign", model, "--kms", file2(p256.private), "--kms-public-key", missing)
    assert_fails(result, 3, "nope.pub")


# --------------------------------------------------------------------------- 3. SoftHSM2

TOKEN_LABEL = "provenance-test"
USER_PIN = "1234"
SO_PIN = "5678"
PINS = ["--pin", USER_PIN, "--so-pin", SO_PIN]
KEY_ID = 2  # securesystemslib's default hsm key id (PIV slot 9c)

SOFTHSM_MODULES = [
    os.environ.get("SOFTHSM2_MODULE", ""),
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
]


@dataclass
class Token:
    module: str
    conf: Path


def export_public_pem(module: str, key_id: int = KEY_ID) -> bytes:
    """Read the EC public key with CKA_ID ``key_id`` off the token, as SPKI PEM."""
    import pkcs11
    from pkcs11.util.ec import encode_ec_public_key

    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    with token.open(user_pin=USER_PIN) as session:
        key = session.get_key(
            pkcs11.ObjectClass.PUBLIC_KEY, pkcs11.KeyType.EC, id=key_id.to_bytes(1, "big")
        )
        der = encode_ec_public_key(key)
    return serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    """A fresh SoftHSM2 token holding one EC P-256 key pair with CKA_ID 2."""
    pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 (securesystemslib[hsm]) missing")
    from pkcs11.util.ec import encode_named_curve_parameters

    util = shutil.which("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if m and os.path.isfile(m)), None)
    if util is None or module is None:
        pytest.skip("softhsm2 not installed (apt-get install softhsm2): no softhsm2-util/module")

    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    init = subprocess.run(
        [util, "--init-token", "--free", "--label", TOKEN_LABEL, *PINS],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, f"softhsm2-util --init-token failed: {init.stdout}{init.stderr}"

    with pytest.MonkeyPatch.context() as mp:
        # SoftHSM reads SOFTHSM2_CONF in C_Initialize, and python-pkcs11 keeps one
        # initialised library per path per process: re-initialise it under our config.
        mp.setenv("SOFTHSM2_CONF", str(conf))
        lib = pkcs11.lib(module)
        lib.reinitialize()
        with lib.get_token(token_label=TOKEN_LABEL).open(rw=True, user_pin=USER_PIN) as session:
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC,
                {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            params.generate_keypair(
                id=KEY_ID.to_bytes(1, "big"), label="provenance-test-key", store=True
            )
        yield Token(module, conf)
        with contextlib.suppress(Exception):
            lib.finalize()  # the next user re-initialises under its own config


@pytest.fixture
def hsm(softhsm: Token, monkeypatch: pytest.MonkeyPatch) -> Token:
    monkeypatch.setenv("PYKCS11LIB", softhsm.module)
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm.conf))
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    return softhsm


@pytest.fixture
def hsm_pub(hsm: Token, tmp_path: Path) -> Path:
    pub = tmp_path / "hsm.pub"
    pub.write_bytes(export_public_pem(hsm.module))
    return pub


@pytest.mark.parametrize(
    "uri", ["hsm:2", f"hsm:2?label={TOKEN_LABEL}", "hsm:"], ids=["id", "id+label", "default-id"]
)
def test_hsm_sign_reads_public_key_from_token(uri, hsm, hsm_pub, model):
    before = model_files(model)
    assert "ECDSA P-256 key" in assert_ok(run_cli("sign", model, "--kms", uri))
    assert model_files(model) == before
    assert_der_signature(model)
    assert_verifies_everywhere(model, hsm_pub)


def test_hsm_sign_with_exported_public_key(hsm, hsm_pub, model):
    assert_ok(run_cli("sign", model, "--kms", "hsm:2", "--kms-public-key", hsm_pub))
    assert_der_signature(model)
    assert_verifies_everywhere(model, hsm_pub)


def test_hsm_python_api(hsm, hsm_pub, model):
    result = provenance.sign(model, kms_signer("hsm:2"))
    verified = provenance.verify(model, KeyVerifier.from_files(hsm_pub))
    assert verified.root_digest == result.manifest.root_digest


def test_hsm_wrong_pin(hsm, model, monkeypatch):
    monkeypatch.setenv(PIN_ENV, "0000")
    before = model_files(model)
    assert_fails(run_cli("sign", model, "--kms", "hsm:2"), 3, "hsm:2", "pin")
    assert not (model / "model.sig").exists()
    assert model_files(model) == before


def test_hsm_no_pin(hsm, model, monkeypatch):
    monkeypatch.delenv(PIN_ENV)
    assert_fails(run_cli("sign", model, "--kms", "hsm:2"), 3, PIN_ENV)
    assert not (model / "model.sig").exists()


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("hsm:7", ["could not find"]),
        ("hsm:2?label=no-such-token", ["no-such-token"]),
        ("hsm:two", ["not a number"]),
    ],
    ids=["no-such-key", "no-such-token", "bad-id"],
)
def test_hsm_bad_uri(uri, words, hsm, model):
    result = run_cli("sign", model, "--kms", uri)
    assert result.exit_code in (2, 3), result.output
    assert_fails(result, result.exit_code, *words)
    assert not (model / "model.sig").exists()


def test_hsm_module_missing(hsm, model, monkeypatch):
    monkeypatch.delenv("PYKCS11LIB")
    assert_fails(run_cli("sign", model, "--kms", "hsm:2"), 3, "PYKCS11LIB")


def test_hsm_public_key_mismatch_refused(hsm, other_key, model):
    """The token's key signs, but --kms-public-key names another key: refuse, write nothing.

    Otherwise the bundle names a key that did not sign it, and verification can only fail.
    """
    before = model_files(model)
    result = run_cli("sign", model, "--kms", "hsm:2", "--kms-public-key", other_key.public)
    assert_fails(result, 3, "hsm:2")
    assert not (model / "model.sig").exists()
    assert model_files(model) == before
