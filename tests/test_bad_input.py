"""Bad input through the real CLI: every failure is one clear line and an exit code.

Each test checks the exit code, that the reason names the cause, that no
traceback escapes, and that the model's own files were left exactly as they
were (security invariants 1, 3, 4, 5 and 7).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_fails, make_cert, run_cli, snapshot
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import provenance
from provenance.errors import VerificationError

PASSWORD_ENV = "PROVENANCE_KEY_PASSWORD"
WEIGHTS = "weights/model-00001.bin"


@pytest.fixture(autouse=True)
def _no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


# --------------------------------------------------------------------------- helpers


def assert_ok(result) -> str:
    out = result.output + (result.stderr or "")
    assert result.exit_code == 0, out
    assert "Traceback" not in out
    return result.stdout


def sign(model: Path, key, *extra: str | os.PathLike[str]) -> Path:
    assert_ok(run_cli("sign", model, "--key", key.private, *extra))
    return model / "model.sig"


def verify(model: Path, key, *extra: str | os.PathLike[str]):
    return run_cli("verify", model, "--key", key.public, *extra)


def no_leftovers(folder: Path) -> None:
    """No signature and no temporary file of an atomic write was left behind."""
    names = [p.name for p in folder.iterdir()]
    assert "model.sig" not in names
    assert not [n for n in names if n.endswith(".tmp")], names


# --------------------------------------------------------------- tampered model files


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[100] ^= 0x01
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-1])


def _append(p: Path) -> None:
    p.write_bytes(p.read_bytes() + b"\0")


def _delete(p: Path) -> None:
    p.unlink()


@pytest.mark.parametrize(
    "tamper,word",
    [(_flip, "modified"), (_truncate, "modified"), (_append, "modified"), (_delete, "missing")],
    ids=["flipped-byte", "truncated", "appended-byte", "deleted"],
)
# The weights file is 5000 bytes: 1000-byte shards divide it exactly, so an
# appended byte there adds a whole new shard rather than changing the last one.
@pytest.mark.parametrize(
    "method",
    [[], ["--shard-size", "1000"], ["--shard-size", "1024"]],
    ids=["files", "shards-exact", "shards-ragged"],
)
def test_tampered_file(model, p256, tamper, word, method):
    sign(model, p256, *method)
    tamper(model / WEIGHTS)
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, WEIGHTS, word)
    assert snapshot(model) == before


def test_sharded_file_grown_at_shard_boundary(model, p256):
    """Data appended to a file whose size is a multiple of the shard size.

    The signed shards all still match; the new trailing shard belongs to a
    signed file, so it must count as a modification, not be dropped.
    """
    sign(model, p256, "--shard-size", "1000")  # weights file: 5000 bytes, 5 shards
    with (model / WEIGHTS).open("ab") as f:
        f.write(b"appended payload " * 100)
    assert_fails(verify(model, p256), 1, WEIGHTS, "modified")


def test_sharded_empty_file_filled(model, p256):
    sign(model, p256, "--shard-size", "1000")
    (model / "empty").write_bytes(b"now it has content")
    assert_fails(verify(model, p256), 1, "empty")


def test_sign_empty_folder(tmp_path, p256):
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert_fails(run_cli("sign", empty, "--key", p256.private), 3, "no files")
    no_leftovers(empty)


def test_signature_for_folder_given_a_file(model, p256):
    sign(model, p256)
    result = run_cli(
        "verify", model / "config.json", "--key", p256.public, "--signature", model / "model.sig"
    )
    assert_fails(result, 1, "folder")


def test_added_file(model, p256):
    sign(model, p256)
    (model / "weights" / "extra.bin").write_bytes(b"not signed")
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, "weights/extra.bin", "not covered")
    # --ignore PATH leaves the file out altogether.
    assert_ok(verify(model, p256, "--ignore", "weights/extra.bin"))
    assert_ok(verify(model, p256, "--ignore", "weights/extra.bin", "--ignore-unsigned-files"))
    assert snapshot(model) == before


def test_added_file_ignore_unsigned_reports_it(model, p256):
    """--ignore-unsigned-files lets the file through, and says so."""
    sign(model, p256)
    (model / "weights" / "extra.bin").write_bytes(b"not signed")
    before = snapshot(model)
    out = assert_ok(verify(model, p256, "--ignore-unsigned-files"))
    assert "weights/extra.bin" in out
    data = json.loads(assert_ok(verify(model, p256, "--ignore-unsigned-files", "--json")))
    assert data["ok"] is True
    assert data["unsigned_files_ignored"] == ["weights/extra.bin"]
    assert snapshot(model) == before


def test_ignore_unsigned_still_checks_signed_files(model, p256):
    sign(model, p256)
    (model / "extra.bin").write_bytes(b"not signed")
    _flip(model / WEIGHTS)
    assert_fails(verify(model, p256, "--ignore-unsigned-files"), 1, WEIGHTS)
    # An --ignore naming a signed file does not stop it being checked.
    assert_fails(verify(model, p256, "--ignore", WEIGHTS), 1, WEIGHTS)


def test_renamed_file(model, p256):
    sign(model, p256)
    (model / WEIGHTS).rename(model / "weights" / "renamed.bin")
    before = snapshot(model)
    err = assert_fails(verify(model, p256), 1, WEIGHTS, "missing")
    assert "weights/renamed.bin" in err  # reported on an "also:" line
    assert snapshot(model) == before


def test_single_file_model_first_signature(tmp_path, p256):
    """Signing a single file when MODEL.sig does not exist yet."""
    f = tmp_path / "model.safetensors"
    f.write_bytes(os.urandom(3000))
    assert_ok(run_cli("sign", f, "--key", p256.private))
    assert (tmp_path / "model.safetensors.sig").is_file()
    assert_ok(run_cli("verify", f, "--key", p256.public))


def test_single_file_model_tampered(tmp_path, p256):
    f = tmp_path / "model.safetensors"
    f.write_bytes(os.urandom(3000))
    # An existing signature file side-steps the first-signature failure tested above.
    (tmp_path / "model.safetensors.sig").touch()
    assert_ok(run_cli("sign", f, "--key", p256.private))
    assert_ok(run_cli("verify", f, "--key", p256.public))
    _flip(f)
    before = f.read_bytes()
    assert_fails(run_cli("verify", f, "--key", p256.public), 1, "modified")
    assert f.read_bytes() == before


# ------------------------------------------------------------------ tampered bundles


def _load(sig: Path) -> dict:
    return json.loads(sig.read_bytes())


def _save(sig: Path, doc: dict) -> None:
    sig.write_text(json.dumps(doc, separators=(",", ":")))


def _payload(doc: dict) -> dict:
    return json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))


def _set_payload(doc: dict, statement: dict) -> None:
    raw = json.dumps(statement, separators=(",", ":")).encode()
    doc["dsseEnvelope"]["payload"] = base64.b64encode(raw).decode()


def test_bundle_changed_payload(model, p256):
    sig = sign(model, p256)
    doc = _load(sig)
    statement = _payload(doc)
    statement["subject"][0]["name"] = "someone-elses-model"
    _set_payload(doc, statement)
    _save(sig, doc)
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, "signature")
    assert snapshot(model) == before


def test_bundle_changed_predicate(model, p256):
    """A resource digest edited (and the subject fixed up) under the old signature."""
    sig = sign(model, p256)
    doc = _load(sig)
    statement = _payload(doc)
    new = hashlib.sha256((model / WEIGHTS).read_bytes() + b"evil").hexdigest()
    for r in statement["predicate"]["resources"]:
        if r["name"] == WEIGHTS:
            r["digest"] = new
    root = hashlib.sha256(
        b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    )
    statement["subject"][0]["digest"]["sha256"] = root.hexdigest()
    _set_payload(doc, statement)
    _save(sig, doc)
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, "bad signature")
    assert snapshot(model) == before


@pytest.mark.parametrize("keyname", ["p256", "ed25519_key"])
def test_bundle_changed_signature(model, keyname, request):
    key = request.getfixturevalue(keyname)
    sig = sign(model, key)
    doc = _load(sig)
    raw = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[len(raw) // 2] ^= 0x40
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    _save(sig, doc)
    before = snapshot(model)
    assert_fails(verify(model, key), 1, "signature")
    assert snapshot(model) == before


@pytest.mark.parametrize("hint", ["other", "garbage"])
def test_bundle_changed_key_hint(model, p256, other_key, hint):
    sig = sign(model, p256)
    doc = _load(sig)
    if hint == "other":
        value = hashlib.sha256(other_key.public.read_bytes()).hexdigest()
    else:
        value = "not-a-hint"
    doc["verificationMaterial"]["publicKey"]["hint"] = value
    _save(sig, doc)
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, "different key")
    assert snapshot(model) == before


def test_bundle_two_signatures(model, p256):
    sig = sign(model, p256)
    doc = _load(sig)
    doc["dsseEnvelope"]["signatures"] *= 2
    _save(sig, doc)
    assert_fails(verify(model, p256), 3, "exactly one signature")


# ------------------------------------------------- certificate-chain bundles (x509)


@pytest.fixture
def chain_signed(model, pki):
    pytest.importorskip("provenance._internal.x509chain")
    assert_ok(
        run_cli(
            "sign", model, "--key", pki.leaf_key, "--cert", pki.leaf, "--chain", pki.intermediate
        )
    )
    assert_ok(run_cli("verify", model, "--root", pki.root))
    return model / "model.sig"


def _der(path: Path) -> str:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _other_leaf(pki) -> str:
    """A valid code-signing leaf from the same intermediate, for a different key."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert("Someone Else", key, "Test Intermediate CA", pki.intermediate_key, ca=False)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize(
    "change,code,word",
    [
        ("other-leaf", 1, "signature"),
        ("root-as-leaf", 1, ""),
        ("drop-leaf", 1, ""),
        ("garbage-der", 3, "certificate"),  # malformed input, before any trust decision
        ("garbage-base64", 3, "base64"),
        ("empty-chain", 3, "no certificates"),
    ],
)
def test_bundle_changed_certificate_chain(chain_signed, pki, change, code, word):
    model = chain_signed.parent
    doc = _load(chain_signed)
    certs = doc["verificationMaterial"]["x509CertificateChain"]["certificates"]
    if change == "other-leaf":
        certs[0] = {"rawBytes": _other_leaf(pki)}
    elif change == "root-as-leaf":
        certs[0] = {"rawBytes": _der(pki.root)}
    elif change == "drop-leaf":
        del certs[0]
    elif change == "garbage-der":
        certs[0] = {"rawBytes": base64.b64encode(b"\x30\x03garbage").decode()}
    elif change == "garbage-base64":
        certs[0] = {"rawBytes": "!!not base64!!"}
    else:
        certs.clear()
    _save(chain_signed, doc)
    before = snapshot(model)
    assert_fails(run_cli("verify", model, "--root", pki.root), code, *([word] if word else []))
    assert snapshot(model) == before


def test_certificate_signature_needs_root_not_key(chain_signed, p256):
    assert_fails(verify(chain_signed.parent, p256), 1, "certificate")


# ------------------------- dangerous names in a validly signed manifest (invariant 4)


def _signed_statement(
    model: Path,
    key,
    resources: list[tuple[str, bytes]],
    *,
    hash_type: str = "sha256",
    shard_size: int | None = None,
) -> Path:
    """Write model.sig: a statement with these names, validly signed by ``key``."""
    from provenance.signing import KeySigner

    digests = [hashlib.new(hash_type, data).hexdigest() for _, data in resources]
    root = hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()
    serialization = {
        "method": "shards" if shard_size else "files",
        "hash_type": hash_type,
        "allow_symlinks": False,
        "ignore_paths": [".git", "model.sig"],
    }
    algorithm = hash_type
    if shard_size:
        serialization["shard_size"] = shard_size
        algorithm = f"{hash_type}-sharded-{shard_size}"
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model.name, "digest": {"sha256": root}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": serialization,
            "resources": [
                {"name": name, "algorithm": algorithm, "digest": d}
                for (name, _), d in zip(resources, digests, strict=True)
            ],
        },
    }
    payload = json.dumps(statement).encode()
    bundle = KeySigner(key.key).sign(payload)
    sig = model / "model.sig"
    sig.write_bytes(bundle.to_bytes())
    return sig


_CONFIG = b'{"hidden_size": 8}\n'


@pytest.mark.parametrize(
    "bad_name,words",
    [
        ("../x", ["../x", "relative"]),
        ("/etc/passwd", ["/etc/passwd", "absolute"]),
        ("config.json", ["config.json", "twice"]),
        ("weights\\model-00001.bin", ["backslash"]),
        ("bad\x01name", ["control character"]),
        ("a/./b", ["a/./b", "relative"]),
        ("C:/Windows/x", ["absolute"]),
        (".", ["'.'"]),
        ("", ["empty"]),
    ],
    ids=[
        "dotdot",
        "absolute",
        "duplicate",
        "backslash",
        "control",
        "dot-part",
        "drive",
        "dot",
        "empty",
    ],
)
def test_signed_manifest_with_bad_name(model, p256, other_key, bad_name, words):
    _signed_statement(model, p256, [("config.json", _CONFIG), (bad_name, b"payload")])
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, *words)
    # The name is checked only after the signature: a stranger's key fails on the key.
    err = assert_fails(verify(model, other_key), 1, "different key")
    assert words[0] not in err
    with pytest.raises(VerificationError):
        from provenance.signing import KeyVerifier

        provenance.verify(model, KeyVerifier.from_files(p256.public))
    assert snapshot(model) == before


def test_signed_sharded_manifest_with_bad_name(model, p256):
    _signed_statement(model, p256, [("../x:0:5", b"12345")], shard_size=5)
    before = snapshot(model)
    assert_fails(verify(model, p256), 1, "../x")
    assert snapshot(model) == before


def test_signed_manifest_with_weak_hash(model, p256):
    """A validly signed statement asking for MD5 is refused (invariant 6)."""
    _signed_statement(model, p256, [("config.json", _CONFIG)], hash_type="md5")
    assert_fails(verify(model, p256), 1, "md5")


def test_signed_manifest_inconsistent_subject(model, p256):
    """Validly signed, but the subject digest does not match the listed resources."""
    from provenance.signing import KeySigner

    manifest = provenance.hash_model(model)
    statement = manifest.to_statement()
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    bundle = KeySigner(p256.key).sign(json.dumps(statement).encode())
    (model / "model.sig").write_bytes(bundle.to_bytes())
    assert_fails(verify(model, p256), 1, "subject digest")


def test_signed_payload_not_json(model, p256):
    from provenance.signing import KeySigner

    (model / "model.sig").write_bytes(KeySigner(p256.key).sign(b"\xff not json").to_bytes())
    assert_fails(verify(model, p256), 1, "not valid JSON")


# ------------------------------------------------------------------------- symlinks


def test_symlink_escaping_root(model, tmp_path, p256):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    (model / "link.txt").symlink_to(outside)
    before = snapshot(model)
    assert_fails(run_cli("sign", model, "--key", p256.private), 3, "link.txt", "symbolic link")
    no_leftovers(model)
    assert_fails(
        run_cli("sign", model, "--key", p256.private, "--allow-symlinks"),
        3,
        "link.txt",
        "outside",
    )
    no_leftovers(model)
    assert_fails(run_cli("hash", model, "--allow-symlinks"), 3, "outside")
    assert snapshot(model) == before


def test_symlinked_folder_escaping_root(model, tmp_path, p256):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_bytes(b"x")
    (model / "sub").symlink_to(tmp_path / "elsewhere")
    assert_fails(
        run_cli("sign", model, "--key", p256.private, "--allow-symlinks"), 3, "sub", "outside"
    )
    no_leftovers(model)


def test_symlink_inside_root(model, p256):
    (model / "alias.json").symlink_to("config.json")
    assert_fails(run_cli("sign", model, "--key", p256.private), 3, "alias.json", "symbolic link")
    no_leftovers(model)
    sign(model, p256, "--allow-symlinks")
    before = snapshot(model)
    statement = _payload(_load(model / "model.sig"))
    assert statement["predicate"]["serialization"]["allow_symlinks"] is True
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert "alias.json" in names
    assert_ok(verify(model, p256))  # allow_symlinks is taken from the signature
    assert snapshot(model) == before


def test_symlink_added_after_signing(model, p256):
    sign(model, p256)
    (model / "alias.json").symlink_to("config.json")
    assert_fails(verify(model, p256), 1, "alias.json", "symbolic link")


# --------------------------------------------------- FIFOs: refused, never read (inv. 5)


def run_guarded(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess:
    """The CLI in a child process, so a hang on a FIFO fails instead of blocking."""
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    try:
        return subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"provenance {' '.join(map(str, args))} hung (did it read a FIFO?)")


def assert_proc_fails(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    prefix = "verification failed: " if code == 1 else "error: "
    assert lines, proc.stdout
    assert lines[0].startswith(prefix), lines
    assert not [ln for ln in lines[1:] if not ln.startswith("  ")], lines
    for w in words:
        assert w.lower() in proc.stderr.lower(), proc.stderr


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@needs_fifo
def test_fifo_refused_by_sign_and_hash(model, p256):
    os.mkfifo(model / "weights" / "pipe")
    before = snapshot(model)
    assert_proc_fails(run_guarded("sign", model, "--key", p256.private), 3, "weights/pipe", "FIFO")
    no_leftovers(model)  # no partial signature
    assert_proc_fails(run_guarded("hash", model), 3, "weights/pipe", "FIFO")
    assert_proc_fails(run_guarded("hash", model / "weights" / "pipe"), 3, "FIFO")
    assert snapshot(model) == before


@needs_fifo
def test_fifo_added_after_signing(model, p256):
    sign(model, p256)
    os.mkfifo(model / "pipe")
    before = snapshot(model)
    assert_proc_fails(run_guarded("verify", model, "--key", p256.public), 1, "pipe", "FIFO")
    # Let through unsigned, it is reported by name and never opened.
    proc = run_guarded("verify", model, "--key", p256.public, "--ignore-unsigned-files")
    assert proc.returncode == 0, proc.stderr
    assert "pipe" in proc.stdout
    assert snapshot(model) == before


@needs_fifo
def test_fifo_in_place_of_signed_file(model, p256):
    sign(model, p256)
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")
    proc = run_guarded("verify", model, "--key", p256.public, "--ignore-unsigned-files")
    assert_proc_fails(proc, 1, "config.json")


@needs_fifo
def test_fifo_as_signature_or_key(model, tmp_path, p256):
    sign(model, p256)
    os.mkfifo(tmp_path / "sig-pipe")
    os.mkfifo(tmp_path / "key-pipe")
    proc = run_guarded("verify", model, "--key", p256.public, "--signature", tmp_path / "sig-pipe")
    assert_proc_fails(proc, 3, "sig-pipe")
    proc = run_guarded("verify", model, "--key", tmp_path / "key-pipe")
    assert_proc_fails(proc, 3, "key-pipe")


# ---------------------------------------------------------- malformed signature files


@pytest.mark.parametrize(
    "content,words",
    [
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", ', ["not valid JSON"]),
        (b'{"hello": "world"}', ["not a Sigstore bundle"]),
        (b"[1, 2, 3]", ["not a JSON object"]),
        (b"", ["is empty"]),
        (b"\xff\xfe\x00garbage", ["not valid JSON"]),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",'
            b' "messageSignature": {}}',
            ["not an in-toto statement"],
        ),
    ],
    ids=["truncated-json", "not-a-bundle", "array", "empty", "binary", "message-signature"],
)
def test_malformed_signature_file(model, tmp_path, p256, content, words):
    bad = tmp_path / "broken.sig"
    bad.write_bytes(content)
    before = snapshot(model)
    result = verify(model, p256, "--signature", bad)
    assert_fails(result, 3, "broken.sig", *words)
    assert snapshot(model) == before


def test_inspect_malformed_signature(tmp_path):
    bad = tmp_path / "broken.sig"
    bad.write_bytes(b"{nope")
    assert_fails(run_cli("inspect", bad), 3, "broken.sig", "not valid JSON")


# -------------------------------------------------------- missing and wrong key files


def test_missing_key_file(model, tmp_path, p256):
    assert_fails(run_cli("sign", model, "--key", tmp_path / "nope.pem"), 3, "nope.pem")
    no_leftovers(model)
    sign(model, p256)
    assert_fails(run_cli("verify", model, "--key", tmp_path / "nope.pub"), 3, "nope.pub")


def test_missing_model_path(tmp_path, p256):
    missing = tmp_path / "no-such-model"
    assert_fails(run_cli("sign", missing, "--key", p256.private), 3, "no-such-model")
    assert_fails(run_cli("hash", missing), 3, "no-such-model", "does not exist")
    assert_fails(run_cli("verify", missing, "--key", p256.public), 3, "no-such-model")
    assert not missing.exists()


def test_missing_signature(model, tmp_path, p256):
    before = snapshot(model)
    assert_fails(verify(model, p256), 3, "model.sig", "no signature")
    assert_fails(verify(model, p256, "--signature", tmp_path / "gone.sig"), 3, "gone.sig")
    assert_fails(run_cli("inspect", tmp_path / "gone.sig"), 3, "gone.sig")
    assert snapshot(model) == before


def test_public_key_given_to_sign(model, p256):
    result = run_cli("sign", model, "--key", p256.public)
    assert_fails(result, 3, p256.public.name, "private key")
    no_leftovers(model)


def test_private_key_given_to_verify(model, p256):
    sign(model, p256)
    result = run_cli("verify", model, "--key", p256.private)
    assert_fails(result, 3, p256.private.name, "private key", "public key")


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("rsa")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv, pub = d / "rsa.pem", d / "rsa.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def test_rsa_key_unsupported(model, p256, rsa_key):
    priv, pub = rsa_key
    assert_fails(run_cli("sign", model, "--key", priv), 3, "rsa.pem", "RSA", "P-256")
    no_leftovers(model)
    sign(model, p256)
    assert_fails(run_cli("verify", model, "--key", pub), 3, "rsa.pub", "RSA")


def test_unsupported_curve(model, tmp_path):
    key = ec.generate_private_key(ec.SECP256K1())
    priv = tmp_path / "k1.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert_fails(run_cli("sign", model, "--key", priv), 3, "k1.pem", "secp256k1")
    no_leftovers(model)


def test_not_a_key_file(model, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert_fails(run_cli("sign", model, "--key", junk), 3, "junk.pem")
    no_leftovers(model)


def test_encrypted_key_wrong_password(model, encrypted_key):
    result = run_cli("sign", model, "--key", encrypted_key.private, env={PASSWORD_ENV: "wrong"})
    assert_fails(result, 3, "enc.pem", "password")
    no_leftovers(model)


def test_encrypted_key_no_password(model, encrypted_key):
    # CliRunner's stdin is not a terminal: no prompt, a clear reason instead.
    result = run_cli("sign", model, "--key", encrypted_key.private, env={PASSWORD_ENV: None})
    assert_fails(result, 3, "enc.pem", "encrypted", "password")
    no_leftovers(model)


def test_encrypted_key_right_password(model, encrypted_key):
    result = run_cli(
        "sign", model, "--key", encrypted_key.private, env={PASSWORD_ENV: "correct horse"}
    )
    assert_ok(result)
    assert_ok(verify(model, encrypted_key))


def test_password_for_unencrypted_key(model, p256):
    """The variable is for encrypted keys; set for another key, it is ignored."""
    result = run_cli("sign", model, "--key", p256.private, env={PASSWORD_ENV: "x"})
    assert_ok(result)
    assert_ok(verify(model, p256))


# ---------------------------------------------------------------------- usage errors


def test_verify_needs_key_or_root(model, p256):
    sign(model, p256)
    assert_fails(run_cli("verify", model), 2, "--key", "--root")


def test_verify_key_and_root_together(model, p256, tmp_path):
    sign(model, p256)
    ca = tmp_path / "ca.pem"
    ca.write_text("not read")
    assert_fails(run_cli("verify", model, "--key", p256.public, "--root", ca), 2, "--key", "--root")


def test_sign_chain_without_cert(model, p256, tmp_path):
    inter = tmp_path / "int.pem"
    inter.write_text("not read")
    result = run_cli("sign", model, "--key", p256.private, "--chain", inter)
    assert_fails(result, 2, "--chain", "--cert")
    no_leftovers(model)


def test_sign_without_key(model):
    assert_fails(run_cli("sign", model), 2, "--key")
    no_leftovers(model)


@pytest.mark.parametrize("command", ["sign", "hash"])
def test_method_files_with_shard_size(model, p256, command):
    extra = ["--key", str(p256.private)] if command == "sign" else []
    result = run_cli(command, model, *extra, "--method", "files", "--shard-size", "1000")
    assert_fails(result, 2, "--shard-size")
    no_leftovers(model)


def test_signature_path_is_a_folder(model, p256, tmp_path):
    assert_fails(
        run_cli("sign", model, "--key", p256.private, "--signature", tmp_path), 3, "folder"
    )


# ----------------------------------------------------------------- --json on failure


def _one_json_object(result) -> dict:
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert isinstance(data, dict)
    assert data["ok"] is False
    assert isinstance(data["error"], dict)  # output contract v1: {code, message, exit_code, ...}
    assert data["error"]["message"]
    assert data["error"]["exit_code"] == result.exit_code
    return data


def test_json_failure_output(model, tmp_path, p256):
    sign(model, p256)
    _flip(model / WEIGHTS)
    result = verify(model, p256, "--json")
    assert result.exit_code == 1
    data = _one_json_object(result)
    assert WEIGHTS in data["error"]["message"]

    result = run_cli("sign", model, "--key", tmp_path / "nope.pem", "--json")
    assert result.exit_code == 3
    assert "nope.pem" in _one_json_object(result)["error"]["message"]

    result = run_cli("verify", model, "--json")
    assert result.exit_code == 2
    _one_json_object(result)

    bad = tmp_path / "broken.sig"
    bad.write_bytes(b"")
    result = verify(model, p256, "--signature", bad, "--json")
    assert result.exit_code == 3
    assert "broken.sig" in _one_json_object(result)["error"]["message"]

    result = run_cli("hash", tmp_path / "missing", "--json")
    assert result.exit_code == 3
    _one_json_object(result)


def test_json_failure_lists_every_problem(model, p256):
    sign(model, p256)
    _flip(model / WEIGHTS)
    (model / "config.json").unlink()
    (model / "extra").write_bytes(b"x")
    result = verify(model, p256, "--json")
    assert result.exit_code == 1
    data = _one_json_object(result)
    details = "\n".join(data["error"]["details"])
    for name in (WEIGHTS, "config.json", "extra"):
        assert name in details


def test_also_lines_for_several_problems(model, p256):
    sign(model, p256)
    _flip(model / WEIGHTS)
    (model / "config.json").unlink()
    err = assert_fails(verify(model, p256), 1, "and 1 more")
    assert "  also: " in err
