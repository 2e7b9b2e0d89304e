"""Hostile files at the edges: small inputs, output paths, keys in models (issue 8).

Every input file is read by one helper that never blocks and never reads
past a limit; every output path is new or already holds what the tool
writes there; a model holding a private key is not signed; malformed or
unreadable inputs exit 3; a signature given as the model is a usage error.
Real files, FIFOs, device nodes and links throughout, no mocks.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_fails, make_cert, pem, run_cli, snapshot
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import provenance
from provenance._internal import fsutil
from provenance.errors import InputError, UsageError
from provenance.signing import CertificateSigner, CertificateVerifier, KeySigner, KeyVerifier

PASSWORD_ENV = "PROVENANCE_KEY_PASSWORD"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making device nodes needs root"
)


@pytest.fixture(autouse=True)
def _no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


def run_guarded(*args: str | os.PathLike[str], env: dict[str, str] | None = None):
    """The CLI in a child process, so a hang (a FIFO read) fails instead of blocking."""
    full_env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    full_env.update(env or {})
    try:
        return subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=30,
            env=full_env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"provenance {' '.join(map(str, args))} hung (did it open a FIFO?)")


def proc_fails(proc, code: int, *words: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out and "unexpected" not in out, out
    for w in words:
        assert w.lower() in proc.stderr.lower(), proc.stderr
    return proc.stderr


def json_error(result) -> dict:
    data = json.loads(result.stdout)
    assert data["ok"] is False
    return data["error"]


def sign(model: Path, key, *extra) -> Path:
    result = run_cli("sign", model, "--key", key.private, *extra)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return model / "model.sig"


def verify(model: Path, key, *extra):
    return run_cli("verify", model, "--key", key.public, *extra)


def make_device(path: Path) -> Path:
    """A character device node like /dev/null (major 1, minor 3), made for the test."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


# ====================================================================== 1. small input files


@needs_fifo
def test_read_regular_refuses_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    start = time.monotonic()
    for follow in (False, True):
        with pytest.raises(InputError) as info:
            fsutil.read_regular(fifo, "private key", 1 << 20, follow_symlinks=follow)
        assert info.value.code == "not-regular"
        assert "FIFO" in str(info.value)
    assert time.monotonic() - start < 5


@needs_fifo
def test_read_limited_refuses_link_to_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "key.pem").symlink_to(fifo)
    with pytest.raises(InputError) as info:
        fsutil.read_limited(tmp_path / "key.pem", "private key", 1 << 20)
    assert info.value.code == "not-regular"


@needs_root
def test_read_refuses_device_node(tmp_path):
    dev = make_device(tmp_path / "null")
    with pytest.raises(InputError) as info:
        fsutil.read_limited(dev, "signature", 1 << 20)
    assert info.value.code == "not-regular"
    assert "device" in str(info.value)


def test_read_refuses_dev_zero_quickly():
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        fsutil.read_limited("/dev/zero", "signature", 256 << 20)
    assert info.value.code == "not-regular"
    assert time.monotonic() - start < 2


def test_read_codes_for_missing_folder_and_dangling_link(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    cases = {
        tmp_path / "missing.pem": "not-found",
        tmp_path / "dangling": "not-found",
        tmp_path: "not-regular",
        tmp_path / "missing-folder" / "key.pem": "not-found",
    }
    for path, code in cases.items():
        with pytest.raises(InputError) as info:
            fsutil.read_limited(path, "public key", 1 << 20)
        assert info.value.code == code, (path, info.value)


def test_read_regular_refuses_a_link_unless_allowed(tmp_path):
    real = tmp_path / "real.pem"
    real.write_bytes(b"data")
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(InputError) as info:
        fsutil.read_regular(link, "attestations file", 1 << 20)
    assert info.value.code == "not-regular"
    assert "symbolic link" in str(info.value)
    assert fsutil.read_regular(link, "key", 1 << 20, follow_symlinks=True) == b"data"
    assert fsutil.read_limited(link, "key", 1 << 20) == b"data"  # user-named: followed


def test_read_too_large_by_size_and_by_content(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(InputError) as info:
        fsutil.read_regular(big, "certificate", 1000)
    assert info.value.code == "too-large"
    assert fsutil.read_regular(big, "certificate", 2000) == b"x" * 2000
    # /proc files report size 0: the limit holds on what is read, not what is claimed.
    status = Path("/proc/self/status")
    if status.exists():
        with pytest.raises(InputError) as info:
            fsutil.read_limited(status, "trust config", 16)
        assert info.value.code == "too-large"


def test_read_unreadable_file_code(tmp_path):
    secret = tmp_path / "secret.pem"
    secret.write_bytes(b"x")
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
        with pytest.raises(InputError) as info:
            fsutil.read_limited(secret, "private key", 1 << 20)
        assert info.value.code == "unreadable"
    finally:
        secret.chmod(0o600)


@needs_fifo
def test_sign_key_fifo_does_not_hang(model, tmp_path):
    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo)
    before = snapshot(model)
    proc_fails(run_guarded("sign", model, "--key", fifo), 3, "key.pem", "FIFO")
    proc = run_guarded("sign", model, "--key", fifo, env={PASSWORD_ENV: "x"})
    proc_fails(proc, 3, "key.pem", "FIFO")
    assert snapshot(model) == before


@needs_fifo
@pytest.mark.parametrize("option", ["--cert", "--chain"])
def test_sign_certificate_fifo_does_not_hang(model, tmp_path, pki, option):
    fifo = tmp_path / "cert.pem"
    os.mkfifo(fifo)
    extra = ["--cert", fifo] if option == "--cert" else ["--cert", pki.leaf, "--chain", fifo]
    proc = run_guarded("sign", model, "--key", pki.leaf_key, *extra)
    proc_fails(proc, 3, "cert.pem", "FIFO")


@needs_fifo
def test_verify_root_and_signature_fifo_do_not_hang(model, tmp_path, p256):
    sign(model, p256)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc_fails(run_guarded("verify", model, "--root", fifo), 3, "pipe", "FIFO")
    proc = run_guarded("verify", model, "--key", p256.public, "--signature", fifo)
    proc_fails(proc, 3, "pipe", "FIFO")


def test_key_as_dev_zero_is_refused(model):
    result = run_cli("sign", model, "--key", "/dev/zero", "--json")
    assert result.exit_code == 3
    assert json_error(result)["code"] == "not-regular"


def test_key_through_symlinks_is_followed(model, tmp_path, p256):
    """A Kubernetes secret mount: key.pem -> ..data/key.pem, ..data -> ..2024_01_01."""
    mount = tmp_path / "secret"
    (mount / "..2024_01_01").mkdir(parents=True)
    (mount / "..2024_01_01" / "key.pem").write_bytes(p256.private.read_bytes())
    (mount / "..data").symlink_to("..2024_01_01")
    (mount / "key.pem").symlink_to("..data/key.pem")
    assert run_cli("sign", model, "--key", mount / "key.pem").exit_code == 0
    assert verify(model, p256).exit_code == 0


# ====================================================================== 2. output paths


def test_signature_to_dev_null_is_refused(model, p256):
    result = run_cli("sign", model, "--key", p256.private, "--signature", "/dev/null", "--json")
    assert result.exit_code == 3
    assert json_error(result)["code"] == "output-refused"
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@needs_root
def test_signature_to_device_node_is_refused(model, p256, tmp_path):
    dev = make_device(tmp_path / "null")
    result = run_cli("sign", model, "--key", p256.private, "--signature", dev)
    assert_fails(result, 3, "device")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


@needs_fifo
def test_signature_to_fifo_is_refused(model, p256, tmp_path):
    fifo = tmp_path / "out.sig"
    os.mkfifo(fifo)
    result = run_cli("sign", model, "--key", p256.private, "--signature", fifo, "--json")
    assert result.exit_code == 3
    error = json_error(result)
    assert error["code"] == "output-refused"
    assert "FIFO" in error["message"]
    assert "--signature" in error["hint"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_signature_to_symlink_is_refused(model, p256, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's file\n")
    link = tmp_path / "out.sig"
    link.symlink_to(outside)
    result = run_cli("sign", model, "--key", p256.private, "--signature", link)
    assert_fails(result, 3, "symbolic link")
    assert link.is_symlink()
    assert outside.read_text() == "someone else's file\n"


def test_signature_to_symlink_to_a_bundle_is_refused(model, p256, tmp_path):
    real = sign(model, p256)
    link = tmp_path / "out.sig"
    link.symlink_to(real)
    result = run_cli("sign", model, "--key", p256.private, "--signature", link)
    assert_fails(result, 3, "symbolic link")
    assert link.is_symlink()


def test_signature_over_a_model_file_is_refused(model, p256):
    before = snapshot(model)
    result = run_cli("sign", model, "--key", p256.private, "--signature", model / "config.json")
    assert_fails(result, 3, "config.json", "model")
    assert snapshot(model) == before


def test_signature_over_a_bundle_inside_the_model_is_refused(model, p256, tmp_path):
    """Even a signature, when it is one of the model's files and not model.sig."""
    sig = tmp_path / "elsewhere.sig"
    sign(model, p256, "--signature", sig)
    (model / "shipped.sig").write_bytes(sig.read_bytes())
    before = snapshot(model)
    result = run_cli("sign", model, "--key", p256.private, "--signature", model / "shipped.sig")
    assert_fails(result, 3, "shipped.sig")
    assert snapshot(model) == before


def test_signature_over_the_single_file_model_is_refused(tmp_path, p256):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00" * 100)
    result = run_cli("sign", weights, "--key", p256.private, "--signature", weights)
    assert_fails(result, 3, "weights.bin")
    assert weights.read_bytes() == b"\x00" * 100


def test_signature_over_an_unrelated_file_is_refused(model, p256, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    result = run_cli("sign", model, "--key", p256.private, "--signature", notes)
    assert_fails(result, 3, "notes.txt", "does not hold a signature")
    assert notes.read_text() == "my notes\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"mediaType": "text/plain"}', b'{"mediaType": ["x"]}'],
    ids=["text", "array", "other-media-type", "list-media-type"],
)
def test_signature_over_a_json_that_is_not_a_bundle_is_refused(model, p256, tmp_path, content):
    out = tmp_path / "out.sig"
    out.write_bytes(content)
    assert_fails(run_cli("sign", model, "--key", p256.private, "--signature", out), 3, "out.sig")
    assert out.read_bytes() == content


def test_signature_over_an_existing_bundle_is_allowed(model, p256, other_key, tmp_path):
    out = tmp_path / "release.sig"
    sign(model, p256, "--signature", out)
    sign(model, other_key, "--signature", out)  # re-signed by another key
    assert verify(model, other_key, "--signature", out).exit_code == 0
    # model.sig too, the default inside the model
    sign(model, p256)
    sign(model, other_key)
    assert verify(model, other_key).exit_code == 0


def test_signature_to_new_path_and_empty_file_allowed(model, p256, tmp_path):
    new = tmp_path / "new.sig"
    sign(model, p256, "--signature", new)
    assert verify(model, p256, "--signature", new).exit_code == 0
    empty = tmp_path / "mktemp.XXXX"
    empty.write_bytes(b"")  # what mktemp leaves for a script to fill
    sign(model, p256, "--signature", empty)
    assert verify(model, p256, "--signature", empty).exit_code == 0


def test_signature_in_missing_folder(model, p256, tmp_path):
    result = run_cli("sign", model, "--key", p256.private, "--signature", tmp_path / "no" / "x.sig")
    assert_fails(result, 3, "does not exist")


def test_safe_output_attestations_rules(tmp_path, p256):
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    bundle = provenance.sign(model, KeySigner.from_file(p256.private)).bundle.to_bytes()
    att = model / "model.intoto.jsonl"
    # new, empty, and lines of bundles: allowed
    assert fsutil.safe_output(att, "attestations", model_root=model).existing is None
    att.write_bytes(b"")
    assert fsutil.safe_output(att, "attestations", model_root=model).existing == b""
    att.write_bytes(bundle + b"\n" + bundle + b"\n\n")
    target = fsutil.safe_output(att, "attestations", model_root=model)
    assert target.existing == bundle + b"\n" + bundle + b"\n\n"
    fsutil.write_output(target, target.existing + bundle + b"\n")
    assert att.read_bytes().count(b"\n") == 4
    # one line that is not a bundle: refused, as is a file in the model by another name
    att.write_bytes(bundle + b"\nsecret=1\n")
    with pytest.raises(InputError) as info:
        fsutil.safe_output(att, "attestations", model_root=model)
    assert info.value.code == "output-refused"
    other = model / "other.jsonl"
    other.write_bytes(bundle + b"\n")
    with pytest.raises(InputError):
        fsutil.safe_output(other, "attestations", model_root=model)
    assert fsutil.safe_output(other, "attestations").existing == bundle + b"\n"


def test_safe_output_existing_file_read_with_a_cap(tmp_path, p256):
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    bundle = provenance.sign(model, KeySigner.from_file(p256.private)).bundle.to_bytes()
    out = tmp_path / "lines.jsonl"
    out.write_bytes((bundle + b"\n") * 4)
    assert fsutil.safe_output(out, "attestations").existing == (bundle + b"\n") * 4
    with pytest.raises(InputError) as info:
        fsutil.safe_output(out, "attestations", limit=len(bundle))
    assert info.value.code == "output-refused"
    assert "larger than" in str(info.value)


def test_write_output_accepts_a_bundle_written_meanwhile(tmp_path, p256):
    """Two signers racing for a new path: the second replaces the first's signature."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    bundle = provenance.sign(model, KeySigner.from_file(p256.private)).bundle.to_bytes()
    out = tmp_path / "new.sig"
    target = fsutil.safe_output(out, "signature")
    out.write_bytes(bundle)
    fsutil.write_output(target, bundle + b" ")
    assert out.read_bytes() == bundle + b" "


def test_safe_output_attestations_link_refused(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.intoto.jsonl").symlink_to("/proc/self/environ")
    with pytest.raises(InputError) as info:
        fsutil.safe_output(model / "model.intoto.jsonl", "attestations", model_root=model)
    assert info.value.code == "output-refused"
    assert "symbolic link" in str(info.value)


def test_write_output_rechecks_before_rename(tmp_path, p256):
    """A file swapped for a link between the check and the write is not written through."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    out = tmp_path / "out.sig"
    out.write_bytes(b"")
    target = fsutil.safe_output(out, "signature")
    out.unlink()
    out.symlink_to(outside)
    with pytest.raises(InputError) as info:
        fsutil.write_output(target, b"{}")
    assert info.value.code == "output-refused"
    assert out.is_symlink() and outside.read_text() == "keep\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@needs_fifo
def test_write_output_new_path_taken_meanwhile(tmp_path):
    """A FIFO created at a new path after the check is never replaced."""
    out = tmp_path / "out.sig"
    target = fsutil.safe_output(out, "signature")
    os.mkfifo(out)
    with pytest.raises(InputError):
        fsutil.write_output(target, b"{}")
    assert stat.S_ISFIFO(os.lstat(out).st_mode)


@needs_fifo
def test_atomic_write_refuses_special_files(tmp_path):
    """The untyped writer (what the attestations store calls) refuses them too."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    for path in (fifo, link, tmp_path):
        with pytest.raises(InputError) as info:
            fsutil.atomic_write(path, b"data")
        assert info.value.code == "output-refused"
    assert not (tmp_path / "target").exists()
    fsutil.atomic_write(tmp_path / "new", b"data")
    fsutil.atomic_write(tmp_path / "new", b"again")
    assert (tmp_path / "new").read_bytes() == b"again"


# ====================================================================== 3. keys in models


def test_signing_key_inside_the_model_is_refused(model, p256):
    key = model / "signing.pem"
    key.write_bytes(p256.private.read_bytes())
    before = snapshot(model)
    result = run_cli("sign", model, "--key", key, "--json")
    assert result.exit_code == 3
    error = json_error(result)
    assert error["code"] == "private-key-in-model"
    assert "signing.pem" in error["message"]
    assert "--ignore" in error["hint"]
    assert snapshot(model) == before
    assert not (model / "model.sig").exists()
    # the way out: leave it out of the signature
    assert run_cli("sign", model, "--key", key, "--ignore", "signing.pem").exit_code == 0
    assert verify(model, p256).exit_code == 0


def test_copy_of_signing_key_under_another_name_is_refused(model, p256):
    """Byte-identical to the key file, whatever its name or leading text."""
    text = b"# release key, do not share\n" + p256.private.read_bytes()
    key = model.parent / "release-key"
    key.write_bytes(text)
    (model / "a" / "notes").write_bytes(text)
    result = run_cli("sign", model, "--key", key)
    assert_fails(result, 3, "a/notes", "signing key", "--ignore")


@pytest.mark.parametrize(
    "name,content",
    [
        ("other.pem", "pkcs8"),
        ("deploy.key", "encrypted"),
        ("id_ecdsa", "openssh"),
        ("bundle.crt", "cert-then-key"),
    ],
)
def test_other_private_keys_in_the_model_are_refused(model, p256, other_key, name, content):
    key = other_key.key
    if content == "pkcs8":
        data = other_key.private.read_bytes()
    elif content == "encrypted":
        data = key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    elif content == "openssh":
        data = key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    else:
        leaf = make_cert("x", key, "x", key, ca=False)
        data = pem(leaf) + other_key.private.read_bytes()
    (model / name).write_bytes(data)
    result = run_cli("sign", model, "--key", p256.private)
    assert_fails(result, 3, name, "private key")
    assert not (model / "model.sig").exists()


def test_public_material_in_the_model_is_signed(model, p256, pki):
    """Public keys, certificates and prose about keys are not private keys."""
    (model / "signer.pub").write_bytes(p256.public.read_bytes())
    (model / "ca.pem").write_bytes(pki.root.read_bytes())
    (model / "README.md").write_text("Keys look like -----BEGIN PRIVATE KEY----- ...\n")
    sign(model, p256)
    assert verify(model, p256).exit_code == 0


def test_large_files_are_not_scanned(model, p256):
    """A file above the scan limit is never opened for the check (only hashed)."""
    (model / "big.pem").write_bytes(
        b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (128 << 10) + b"\n-----END PRIVATE KEY-----\n"
    )
    sign(model, p256)


def test_single_file_model_that_is_a_key(tmp_path, p256):
    result = run_cli("sign", p256.private, "--key", p256.private, "--signature", tmp_path / "k.sig")
    assert_fails(result, 3, "private key")


def test_library_refuses_key_in_model(model, p256):
    (model / "k.pem").write_bytes(p256.private.read_bytes())
    with pytest.raises(InputError) as info:
        provenance.sign(model, KeySigner.from_file(p256.private))
    assert info.value.code == "private-key-in-model"
    assert info.value.hint == "ignore_path"
    provenance.sign(model, KeySigner.from_file(p256.private), ignore_paths=["k.pem"])


# ====================================================================== 4. exit 3 for bad input


BAD_SIGNATURES = {
    "not-json": b"hello",
    "truncated": b'{"mediaType": "' + BUNDLE_TYPE.encode() + b'", "dsseEnv',
    "wrong-shape-list-media-type": b'{"mediaType": ["a"], "dsseEnvelope": {}}',
    "wrong-shape-dict-media-type": b'{"mediaType": {}, "dsseEnvelope": {}}',
    "huge-integer": b'{"mediaType": ' + b"9" * 5000 + b"}",
    "envelope-not-object": json.dumps(
        {"mediaType": BUNDLE_TYPE, "dsseEnvelope": [], "verificationMaterial": {}}
    ).encode(),
}


@pytest.mark.parametrize("name", BAD_SIGNATURES)
def test_malformed_signature_exits_3(model, p256, tmp_path, name):
    sign(model, p256)
    bad = tmp_path / "bad.sig"
    bad.write_bytes(BAD_SIGNATURES[name])
    assert_fails(verify(model, p256, "--signature", bad), 3, "bad.sig")
    result = verify(model, p256, "--signature", bad, "--json")
    assert result.exit_code == 3
    assert json_error(result)["code"] != "unexpected"
    if name == "envelope-not-object":
        return  # a bundle by its media type: sign may replace it with a good one
    # sign refuses to overwrite it: it is not a signature
    assert_fails(run_cli("sign", model, "--key", p256.private, "--signature", bad), 3, "bad.sig")
    assert bad.read_bytes() == BAD_SIGNATURES[name]


def test_malformed_certificate_in_bundle_exits_3(model, pki):
    assert run_cli("sign", model, "--key", pki.leaf_key, "--cert", pki.leaf).exit_code == 0
    sig = model / "model.sig"
    doc = json.loads(sig.read_bytes())
    certs = doc["verificationMaterial"]["x509CertificateChain"]["certificates"]
    certs[0] = {"rawBytes": base64.b64encode(b"\x30\x03abc").decode()}
    sig.write_text(json.dumps(doc))
    assert_fails(run_cli("verify", model, "--root", pki.root), 3, "certificate")


@pytest.mark.parametrize("kind", ["folder", "dangling-link"])
def test_unreadable_signature_exits_3(model, p256, tmp_path, kind):
    sign(model, p256)
    path = tmp_path / "sig"
    if kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "nowhere")
    assert_fails(verify(model, p256, "--signature", path), 3, "sig")
    assert_fails(run_cli("sign", model, "--key", p256.private, "--signature", path), 3, "sig")


@pytest.mark.parametrize("kind", ["folder", "dangling-link", "not-pem"])
def test_unreadable_keys_and_certificates_exit_3(model, p256, tmp_path, kind):
    sign(model, p256)
    path = tmp_path / "material.pem"
    if kind == "folder":
        path.mkdir()
    elif kind == "dangling-link":
        path.symlink_to(tmp_path / "nowhere")
    else:
        path.write_text("hello\n")
    assert_fails(run_cli("sign", model, "--key", path), 3, "material.pem")
    assert_fails(run_cli("verify", model, "--key", path), 3, "material.pem")
    assert_fails(run_cli("verify", model, "--root", path), 3, "material.pem")


# ====================================================================== 5. passwords, paths


def test_password_variable_ignored_for_unencrypted_key(model, p256):
    result = run_cli("sign", model, "--key", p256.private, env={PASSWORD_ENV: "whatever"})
    assert result.exit_code == 0, result.output
    assert verify(model, p256).exit_code == 0


def test_encrypted_key_error_names_the_variable(model, encrypted_key):
    result = run_cli("sign", model, "--key", encrypted_key.private)
    assert_fails(result, 3, "encrypted", "$PROVENANCE_KEY_PASSWORD")
    result = run_cli("sign", model, "--key", encrypted_key.private, env={PASSWORD_ENV: "wrong"})
    assert_fails(result, 3, "wrong password", "$PROVENANCE_KEY_PASSWORD")
    result = run_cli("sign", model, "--key", encrypted_key.private, "--json")
    error = json_error(result)
    assert error["code"] == "key-encrypted"
    assert "$PROVENANCE_KEY_PASSWORD" in error["hint"]


def test_library_password_only_when_encrypted(p256, encrypted_key):
    asked = []

    def password() -> str:
        asked.append(1)
        return "correct horse"

    KeySigner.from_file(p256.private, password)
    assert asked == []
    KeySigner.from_file(p256.private, "ignored for a plain key")
    KeySigner.from_file(encrypted_key.private, password)
    assert asked == [1]


def test_certificate_files_as_one_string_or_path(model, pki):
    assert run_cli("sign", model, "--key", pki.leaf_key, "--cert", pki.leaf).exit_code == 0
    key = KeySigner.from_file(pki.leaf_key)
    for root in (str(pki.root), pki.root, [str(pki.root)], (pki.root,)):
        verifier = CertificateVerifier.from_files(root, str(pki.intermediate))
        assert len(verifier.roots) == 1 and len(verifier.intermediates) == 1
    signer = CertificateSigner.from_files(key, str(pki.leaf), chain=str(pki.intermediate))
    assert len(signer.chain) == 1
    signer = CertificateSigner.from_files(key, pki.leaf, chain=pki.intermediate)
    assert len(signer.chain) == 1
    with pytest.raises(UsageError):
        CertificateVerifier.from_files(b"root.pem")  # type: ignore[arg-type]


# ====================================================================== 6. a signature as the model


def test_verify_and_sign_a_signature_as_model(model, p256):
    sig = sign(model, p256)
    for command, key in (("verify", p256.public), ("sign", p256.private)):
        result = run_cli(command, sig, "--key", key)
        assert_fails(result, 2, "model.sig", "is a signature", "model folder")
    assert not (model / "model.sig.sig").exists()


def test_signature_detected_by_content_not_name(model, p256, tmp_path):
    sig = sign(model, p256)
    renamed = tmp_path / "weights.safetensors"
    renamed.write_bytes(b"\n  " + sig.read_bytes() + b"\n")
    result = run_cli("sign", renamed, "--key", p256.private, "--json")
    assert result.exit_code == 2
    assert json_error(result)["code"] == "signature-as-model"
    assert_fails(verify(renamed, p256), 2, "is a signature")
    with pytest.raises(UsageError):
        provenance.check_model(renamed, KeyVerifier.from_files(p256.public))


def test_attestations_file_as_model(model, p256, tmp_path):
    sig = sign(model, p256)
    lines = tmp_path / "model.intoto.jsonl"
    lines.write_bytes(sig.read_bytes() + b"\n" + sig.read_bytes() + b"\n")
    for extra in ((), ("--attestations",)):
        result = verify(lines, p256, *extra)
        assert_fails(result, 2, "attestations file", "model folder")
    assert_fails(run_cli("sign", lines, "--key", p256.private), 2, "attestations file")


def test_json_model_that_is_not_a_bundle_is_signed(tmp_path, p256):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mediaType": "application/json", "hidden": 8}))
    result = run_cli("sign", config, "--key", p256.private)
    assert result.exit_code == 0, result.output
    assert verify(config, p256).exit_code == 0


def test_bundle_kind_of_special_files(tmp_path):
    assert fsutil.bundle_file_kind("/dev/zero") is None
    assert fsutil.bundle_file_kind(tmp_path) is None
    assert fsutil.bundle_file_kind(tmp_path / "missing") is None
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        assert fsutil.bundle_file_kind(tmp_path / "pipe") is None


def test_key_pair_for_new_curve_is_unaffected(model, tmp_path):
    """A plain P-384 key still signs and verifies through every new check."""
    key = ec.generate_private_key(ec.SECP384R1())
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
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
    assert run_cli("sign", model, "--key", priv).exit_code == 0
    assert run_cli("verify", model, "--key", pub).exit_code == 0
