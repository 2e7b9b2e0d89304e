"""Shared test fixtures: real keys, a real PKI, real model folders, the real CLI."""

from __future__ import annotations

import datetime
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance_cli.main import cli

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"shared interoperability fixtures not found at {FIXTURES} (outside the workplace)",
)


def run_cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Result:
    """Run the real Click command in-process; never lets an exception escape silently."""
    runner = CliRunner()
    result = runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        message = f"CLI raised {result.exception!r}\n{result.output}"
        raise AssertionError(message) from result.exception
    return result


def assert_ok(result: Result) -> str:
    """Exit 0; returns stdout."""
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}{result.stderr or ''}"
    return result.output


def assert_fails(result: Result, code: int, *words: str) -> str:
    """Exit ``code``, one reason line on stderr naming every word, no traceback.

    Indented lines after the reason (``  also: ...``, ``  hint: ...``) are allowed.
    """
    out = result.output + (result.stderr or "")
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{out}"
    assert "Traceback" not in out, out
    assert ": unexpected " not in out, out  # an uncaught exception
    lines = result.stderr.splitlines()
    assert lines, f"nothing on stderr:\n{out}"
    prefix = "verification failed: " if code == 1 else "error: "
    assert lines[0].startswith(prefix), f"first stderr line is {lines[0]!r}"
    others = [ln for ln in lines[1:] if not ln.startswith("  ")]
    assert not others, f"more than one reason line on stderr: {lines!r}"
    for w in words:
        assert w.lower() in result.stderr.lower(), f"{w!r} not in {result.stderr!r}"
    return result.stderr


@dataclass
class KeyPair:
    private: Path
    public: Path
    key: object


def _write_key(folder: Path, name: str, key: object, password: bytes | None = None) -> KeyPair:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    priv = folder / f"{name}.pem"
    pub = folder / f"{name}.pub"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)  # type: ignore[attr-defined]
    )
    pub.write_bytes(
        key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(priv, pub, key)


@pytest.fixture(scope="session")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def p256(keydir: Path) -> KeyPair:
    return _write_key(keydir, "p256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def p384(keydir: Path) -> KeyPair:
    return _write_key(keydir, "p384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def p521(keydir: Path) -> KeyPair:
    return _write_key(keydir, "p521", ec.generate_private_key(ec.SECP521R1()))


@pytest.fixture(scope="session")
def ed25519_key(keydir: Path) -> KeyPair:
    return _write_key(keydir, "ed25519", ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def encrypted_key(keydir: Path) -> KeyPair:
    return _write_key(keydir, "enc", ec.generate_private_key(ec.SECP256R1()), b"correct horse")


@pytest.fixture(scope="session")
def other_key(keydir: Path) -> KeyPair:
    return _write_key(keydir, "other", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class Pki:
    """A root CA, an intermediate and a code-signing leaf, all as PEM files."""

    root: Path
    intermediate: Path
    leaf: Path
    leaf_key: Path
    root_key: object
    intermediate_key: object
    intermediate_cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    subject: str,
    key: object,
    issuer: str,
    issuer_key: object,
    *,
    ca: bool,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    key_usage: str = "auto",
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage == "auto":
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    algo = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algo)  # type: ignore[arg-type]


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def pki(keydir: Path) -> Pki:
    root_key = ec.generate_private_key(ec.SECP384R1())
    int_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert("Test Root CA", root_key, "Test Root CA", root_key, ca=True)
    inter = make_cert("Test Intermediate CA", int_key, "Test Root CA", root_key, ca=True)
    leaf = make_cert("Release Engineering", leaf_key, "Test Intermediate CA", int_key, ca=False)
    d = keydir / "pki"
    d.mkdir(exist_ok=True)
    (d / "root.pem").write_bytes(pem(root))
    (d / "int.pem").write_bytes(pem(inter))
    (d / "leaf.pem").write_bytes(pem(leaf))
    kp = _write_key(d, "leaf-key", leaf_key)
    return Pki(d / "root.pem", d / "int.pem", d / "leaf.pem", kp.private, root_key, int_key, inter)


def make_model(folder: Path) -> Path:
    """A small model with nested folders, an empty file and awkward names."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "config.json": b'{"hidden_size": 8}\n',
        "weights/model-00001.bin": os.urandom(5000),
        "weights/model-00002.bin": os.urandom(3000),
        "a/b": b"component order\n",
        "a-c": b"sorts after a/ by component\n",
        "a.txt": b"and before by code point\n",
        "empty": b"",
        "tokenizer/\u00e9l\u00e8ve-\u6a21\u578b.txt": b"non-ASCII name",
    }
    for name, data in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "my-model")


def snapshot(folder: Path) -> dict[str, tuple[bytes, float]]:
    """Contents and mtimes of every file, to prove the tool modified nothing."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = (p.read_bytes(), p.stat().st_mtime)
    return out


# ---------------------------------------------------------------- local Sigstore (keyless tests)


@pytest.fixture(scope="session")
def local_sigstore(tmp_path_factory: pytest.TempPathFactory):
    """A local OIDC issuer, Fulcio, CT log, Rekor v1/v2 and TSA (see local_sigstore.py)."""
    from local_sigstore import LocalSigstore

    with LocalSigstore(tmp_path_factory.mktemp("local-sigstore")) as server:
        yield server


def within(seconds: float, fn: Any) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging) if it has not returned in time."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append((fn(), None))
        except BaseException as e:
            out.append((None, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked"
    value, error = out[0]
    if error is not None:
        raise error
    return value


# ---------------------------------------------------------------- local Hugging Face Hub


@pytest.fixture
def local_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A fresh local Hugging Face Hub (see local_hub.py), with Xet, telemetry and offline off.

    ``huggingface_hub`` reads its settings at import, so they are patched in
    ``huggingface_hub.constants`` as well as in the environment. In-process,
    pass ``endpoint=local_hub.endpoint``, ``token=local_hub.token`` and a
    ``cache_dir``; a subprocess gets what it needs from ``local_hub.env(cache)``.
    Fails the test if the server hit an internal error.
    """
    import huggingface_hub.constants as hf_constants
    from local_hub import LocalHub

    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub is local: online is fine
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with LocalHub(tmp_path_factory.mktemp("local-hub")) as hub:
        yield hub
    assert not hub.errors, "local hub internal errors:\n" + "\n".join(hub.errors)
