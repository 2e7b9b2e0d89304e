"""Keyless (Sigstore) signing and verification end to end, against a local Sigstore.

The ``local_sigstore`` fixture (``tests/local_sigstore.py``) serves an OIDC
issuer, Fulcio, a CT log, Rekor v1 and v2 and an RFC 3161 timestamp authority
on 127.0.0.1, so the unmodified ``sigstore`` client signs for real and
provenance's verifier checks genuine certificates, proofs and timestamps.

Everything goes through the real CLI (``run_cli``) unless the point is the
Python API. Failures must exit 1 (verification failed) or 3 (bad input,
including a signing service that refused or could not be reached) with one
line of reason, no traceback, and no signature file left behind.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import FIXTURES, make_model, run_cli
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

import provenance
from provenance import signing
from provenance.errors import InputError, VerificationError

ALICE = "alice@example.com"
PRODUCTION_ROOT = FIXTURES / "trust-roots" / "production" / "trusted_root.json"
MODEL_SIGNING = Path(sys.executable).with_name("model_signing")

needs_model_signing = pytest.mark.skipif(
    not MODEL_SIGNING.exists(), reason=f"model-signing CLI not found at {MODEL_SIGNING}"
)

#: What sigstore's ambient-credential detection (the ``id`` package) looks at.
AMBIENT_ENV = (
    "SIGSTORE_ID_TOKEN",
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_NAME",
    "BUILDKITE",
    "GITLAB_CI",
    "CIRCLECI",
)


# ---------------------------------------------------------------------------
# helpers


def reason(result: Result, code: int) -> str:
    """The one line of reason of a failed run, after checking how it failed."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = [
        line
        for line in result.output.splitlines()
        if line.startswith(("error:", "verification failed:"))
    ]
    assert len(lines) == 1, result.output
    # The CLI's catch-all says "unexpected <ExceptionType>": a failure nobody handled.
    assert "unexpected" not in lines[0], lines[0]
    return lines[0]


def bundle_of(model: Path) -> dict[str, Any]:
    return json.loads((model / "model.sig").read_bytes())


def rewrite_bundle(model: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    bundle = bundle_of(model)
    edit(bundle)
    (model / "model.sig").write_text(json.dumps(bundle))


def tlog_entry(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["verificationMaterial"]["tlogEntries"][0]


def flip_first_byte(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sign_cli(model: Path, token: str, trust_config: Path) -> Result:
    return run_cli(
        "sign", model, "--sigstore", "--identity-token", token, "--trust-config", trust_config
    )


def verify_cli(model: Path, *trust: str | Path, identity: str = ALICE, issuer: str) -> Result:
    return run_cli("verify", model, "--identity", identity, "--issuer", issuer, *trust)


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODEL_SIGNING), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Signed:
    """A model signed once per module, copied by every test that alters anything."""

    model: Path
    trust_config: Path

    def copy(self, dst: Path) -> Path:
        return Path(shutil.copytree(self.model, dst))


@pytest.fixture
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token in the environment and nothing for CI detection to find."""
    for name in AMBIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    from id._internal.oidc import ambient

    # On a Google Cloud VM the product-name file alone makes detection query the metadata server.
    monkeypatch.setattr(ambient, "_GCP_PRODUCT_NAME_FILE", str(tmp_path / "absent"))


@pytest.fixture(scope="module")
def signed_v1(local_sigstore, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    model = make_model(tmp_path_factory.mktemp("keyless-v1") / "model")
    result = sign_cli(model, local_sigstore.mint_token(ALICE), local_sigstore.trust_config_path)
    assert result.exit_code == 0, result.output
    return Signed(model, local_sigstore.trust_config_path)


@pytest.fixture(scope="module")
def signed_v2(local_sigstore, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    model = make_model(tmp_path_factory.mktemp("keyless-v2") / "model")
    result = sign_cli(model, local_sigstore.mint_token(ALICE), local_sigstore.trust_config_v2_path)
    assert result.exit_code == 0, result.output
    return Signed(model, local_sigstore.trust_config_v2_path)


# ---------------------------------------------------------------------------
# signing and verifying


def test_sign_then_verify_with_trust_config(local_sigstore, model: Path) -> None:
    token = local_sigstore.mint_token(ALICE)
    signed = sign_cli(model, token, local_sigstore.trust_config_path)
    assert signed.exit_code == 0, signed.output
    assert f"Sigstore identity {ALICE} (issuer {local_sigstore.issuer})" in signed.output
    bundle = bundle_of(model)
    assert tlog_entry(bundle)["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}

    result = verify_cli(
        model, "--trust-config", local_sigstore.trust_config_path, issuer=local_sigstore.issuer
    )
    assert result.exit_code == 0, result.output
    assert f"signed by {ALICE} (issuer {local_sigstore.issuer})" in result.output


def test_verify_with_trusted_root_file(local_sigstore, signed_v1: Signed) -> None:
    result = verify_cli(
        signed_v1.model,
        "--trust-root",
        local_sigstore.trusted_root_path,
        issuer=local_sigstore.issuer,
    )
    assert result.exit_code == 0, result.output


def test_token_from_environment(local_sigstore, model: Path) -> None:
    env = {"SIGSTORE_ID_TOKEN": local_sigstore.mint_token(ALICE)}
    result = run_cli(
        "sign", model, "--sigstore", "--trust-config", local_sigstore.trust_config_path, env=env
    )
    assert result.exit_code == 0, result.output
    assert (model / "model.sig").is_file()


@pytest.mark.parametrize(
    ("pattern", "code"),
    [(r".*@example\.com", 0), (r"alice@.*", 0), (r".*@example\.org", 1), (r"alice", 1)],
)
def test_identity_regexp(local_sigstore, signed_v1: Signed, pattern: str, code: int) -> None:
    result = run_cli(
        "verify",
        signed_v1.model,
        "--identity-regexp",
        pattern,
        "--issuer",
        local_sigstore.issuer,
        "--trust-config",
        signed_v1.trust_config,
    )
    if code == 0:
        assert result.exit_code == 0, result.output
    else:
        assert "does not match" in reason(result, code)


def test_inspect_shows_identity_issuer_log_index_and_time(
    local_sigstore, signed_v1: Signed
) -> None:
    entry = tlog_entry(bundle_of(signed_v1.model))
    index = int(entry["logIndex"])
    when = datetime.datetime.fromtimestamp(int(entry["integratedTime"]), datetime.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")

    text = run_cli("inspect", signed_v1.model / "model.sig")
    assert text.exit_code == 0, text.output
    assert ALICE in text.output
    assert local_sigstore.issuer in text.output
    assert f"log index {index}" in text.output
    assert stamp in text.output

    as_json = run_cli("inspect", signed_v1.model, "--json")
    assert as_json.exit_code == 0, as_json.output
    signer = json.loads(as_json.output)["signer"]
    assert signer["kind"] == "keyless"  # the SignerInfo kind, as verify reports it
    assert signer["identity"] == ALICE
    assert signer["issuer"] == local_sigstore.issuer
    assert signer["log_index"] == index
    assert signer["signed_at"] == stamp


def test_python_api_round_trip(local_sigstore, model: Path) -> None:
    token = signing.get_identity_token(local_sigstore.mint_token(ALICE), interactive=False)
    config = signing.load_trust_config(local_sigstore.trust_config_path)
    signed = provenance.sign(model, signing.SigstoreSigner(token, config))
    assert signed.signature_path == model / "model.sig"
    assert signed.bundle.kind == "sigstore"

    root = signing.load_trusted_root(local_sigstore.trusted_root_path)
    policy = signing.identity_policy(identity=ALICE, issuer=local_sigstore.issuer)
    result = provenance.verify(model, signing.SigstoreVerifier(policy, root))
    assert result.signer == f"{ALICE} (issuer {local_sigstore.issuer})"
    assert result.root_digest == signed.manifest.root_digest

    wrong = signing.identity_policy(identity="mallory@example.com", issuer=local_sigstore.issuer)
    with pytest.raises(VerificationError):
        provenance.verify(model, signing.SigstoreVerifier(wrong, root))


# ---------------------------------------------------------------------------
# rejected signatures (exit 1)


def test_tampered_model_file(local_sigstore, signed_v1: Signed, tmp_path: Path) -> None:
    model = signed_v1.copy(tmp_path / "model")
    (model / "weights" / "model-00001.bin").write_bytes(b"swapped weights")
    result = verify_cli(
        model, "--trust-config", signed_v1.trust_config, issuer=local_sigstore.issuer
    )
    assert "'weights/model-00001.bin' was modified" in reason(result, 1)


def _bump_integrated_time(entry: dict[str, Any]) -> None:
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)


def _flip_proof_hash(entry: dict[str, Any]) -> None:
    hashes = entry["inclusionProof"]["hashes"]
    assert hashes, "the local log is seeded so that every proof has hashes"
    hashes[0] = flip_first_byte(hashes[0])


def _alter_checkpoint(entry: dict[str, Any]) -> None:
    checkpoint = entry["inclusionProof"]["checkpoint"]
    checkpoint["envelope"] = checkpoint["envelope"].replace("local-rekor\n", "local-rekor-2\n", 1)


def _flip_root_hash(entry: dict[str, Any]) -> None:
    entry["inclusionProof"]["rootHash"] = flip_first_byte(entry["inclusionProof"]["rootHash"])


def _flip_entry_timestamp(entry: dict[str, Any]) -> None:
    promise = entry["inclusionPromise"]
    promise["signedEntryTimestamp"] = flip_first_byte(promise["signedEntryTimestamp"])


@pytest.mark.parametrize(
    "tamper",
    [
        _bump_integrated_time,
        _flip_proof_hash,
        _alter_checkpoint,
        _flip_root_hash,
        _flip_entry_timestamp,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_tampered_log_entry(
    local_sigstore, signed_v1: Signed, tmp_path: Path, tamper: Callable[[dict[str, Any]], None]
) -> None:
    model = signed_v1.copy(tmp_path / "model")
    rewrite_bundle(model, lambda b: tamper(tlog_entry(b)))
    result = verify_cli(
        model, "--trust-config", signed_v1.trust_config, issuer=local_sigstore.issuer
    )
    assert "invalid log entry" in reason(result, 1)


@pytest.mark.parametrize(
    ("identity", "issuer", "words"),
    [
        ("mallory@example.com", None, "mallory@example.com"),
        (ALICE, "https://accounts.google.com", "https://accounts.google.com"),
    ],
    ids=["wrong-identity", "wrong-issuer"],
)
def test_wrong_identity_or_issuer(
    local_sigstore, signed_v1: Signed, identity: str, issuer: str | None, words: str
) -> None:
    result = verify_cli(
        signed_v1.model,
        "--trust-config",
        signed_v1.trust_config,
        identity=identity,
        issuer=issuer or local_sigstore.issuer,
    )
    assert words in reason(result, 1)


@pytest.mark.skipif(not PRODUCTION_ROOT.is_file(), reason=f"{PRODUCTION_ROOT} not found")
def test_public_good_root_file_refuses(local_sigstore, signed_v1: Signed) -> None:
    result = verify_cli(
        signed_v1.model, "--trust-root", PRODUCTION_ROOT, issuer=local_sigstore.issuer
    )
    assert "chain" in reason(result, 1)


def test_public_good_pinned_root_refuses(
    local_sigstore, signed_v1: Signed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Empty caches: --offline must fall back to the root pinned inside `sigstore`.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = verify_cli(signed_v1.model, "--offline", issuer=local_sigstore.issuer)
    assert "chain" in reason(result, 1)


def _drop_signing_log(root: dict[str, Any], bundle: dict[str, Any]) -> None:
    log_id = tlog_entry(bundle)["logId"]["keyId"]
    before = len(root["tlogs"])
    root["tlogs"] = [t for t in root["tlogs"] if t["logId"]["keyId"] != log_id]
    assert len(root["tlogs"]) == before - 1


def _no_logs(root: dict[str, Any], bundle: dict[str, Any]) -> None:
    root["tlogs"] = []


def _no_certificate_authorities(root: dict[str, Any], bundle: dict[str, Any]) -> None:
    root["certificateAuthorities"] = []


def _other_certificate_authority(root: dict[str, Any], bundle: dict[str, Any]) -> None:
    # The TSA's chain in the CA's place: a real CA, just not the one that certified the signer.
    root["certificateAuthorities"][0]["certChain"] = root["timestampAuthorities"][0]["certChain"]


#: Trusted roots that parse but do not hold what vouched for the signature, and the word
#: the reason must contain.
TRUST_ROOT_EDITS = {
    _drop_signing_log: "log entry",
    _no_logs: "transparency log",
    _no_certificate_authorities: "Fulcio",
    _other_certificate_authority: "chain",
}


@pytest.mark.parametrize("edit", TRUST_ROOT_EDITS, ids=lambda f: f.__name__.strip("_"))
def test_trust_root_without_what_signed(
    local_sigstore, signed_v1: Signed, tmp_path: Path, edit: Callable[..., None]
) -> None:
    root = json.loads(local_sigstore.trusted_root_path.read_text())
    edit(root, bundle_of(signed_v1.model))
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    result = verify_cli(signed_v1.model, "--trust-root", path, issuer=local_sigstore.issuer)
    assert TRUST_ROOT_EDITS[edit] in reason(result, 1)


@pytest.mark.parametrize("edit", TRUST_ROOT_EDITS, ids=lambda f: f.__name__.strip("_"))
def test_trust_root_without_what_signed_api(
    local_sigstore, signed_v1: Signed, tmp_path: Path, edit: Callable[..., None]
) -> None:
    """The Python API raises provenance's VerificationError, never a ``sigstore`` exception."""
    root = json.loads(local_sigstore.trusted_root_path.read_text())
    edit(root, bundle_of(signed_v1.model))
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    policy = signing.identity_policy(identity=ALICE, issuer=local_sigstore.issuer)
    verifier = signing.SigstoreVerifier(policy, signing.load_trusted_root(path))
    with pytest.raises(VerificationError):
        provenance.verify(signed_v1.model, verifier)


@pytest.mark.parametrize("field", ["tlogs", "certificateAuthorities"])
def test_trust_root_missing_a_required_field(
    local_sigstore, signed_v1: Signed, tmp_path: Path, field: str
) -> None:
    """Malformed trust material is bad input (exit 3), and the reason says what is wrong."""
    root = json.loads(local_sigstore.trusted_root_path.read_text())
    del root[field]
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    result = verify_cli(signed_v1.model, "--trust-root", path, issuer=local_sigstore.issuer)
    assert field in reason(result, 3)


# ---------------------------------------------------------------------------
# certificates that were not valid when the log or the TSA saw the signature


class UncachedSigner:
    """``SigstoreSigner`` without the client's own expiry check on a cached certificate.

    ``sigstore`` refuses to use a cached certificate that has expired, which is
    right, but a test needs a bundle around such a certificate to prove the
    *verifier* refuses it; an uncached certificate is used as issued.
    """

    def __init__(self, token: str, trust_config: Path) -> None:
        self.token = token
        self.trust_config = trust_config

    def sign(self, payload: bytes, payload_type: str = "application/vnd.in-toto+json") -> Any:
        from sigstore.dsse import Statement
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityToken
        from sigstore.sign import SigningContext

        from provenance.bundle import Bundle

        config = ClientTrustConfig.from_json(self.trust_config.read_text())
        context = SigningContext.from_trust_config(config)
        with context.signer(IdentityToken(self.token), cache=False) as signer:
            signed = signer.sign_dsse(Statement(payload))
        return Bundle.from_bytes(signed.to_json().encode(), source="test bundle")


def sign_with_expired_certificate(local_sigstore, model: Path, trust_config: Path) -> None:
    with local_sigstore.expired_certificates():
        provenance.sign(model, UncachedSigner(local_sigstore.mint_token(ALICE), trust_config))
    cert = base64.b64decode(bundle_of(model)["verificationMaterial"]["certificate"]["rawBytes"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert x509.load_der_x509_certificate(cert).not_valid_after_utc < now


@pytest.mark.parametrize("version", [1, 2], ids=["rekor-v1-log-time", "rekor-v2-tsa-time"])
def test_certificate_expired_before_signing_time(local_sigstore, model: Path, version: int) -> None:
    config = (
        local_sigstore.trust_config_path if version == 1 else local_sigstore.trust_config_v2_path
    )
    sign_with_expired_certificate(local_sigstore, model, config)
    result = verify_cli(
        model, "--trust-root", local_sigstore.trusted_root_path, issuer=local_sigstore.issuer
    )
    assert "not valid" in reason(result, 1)


@pytest.mark.parametrize("expired", [True, False], ids=["expired-cert", "current-cert"])
def test_no_log_time_and_no_timestamp(local_sigstore, tmp_path: Path, expired: bool) -> None:
    """Without a verified time there is nothing to check the certificate against: refuse,
    rather than fall back to the current time. The bundle still parses (its inclusion
    promise is there; only the integrated time it would vouch for is gone)."""
    model = make_model(tmp_path / "model")
    if expired:
        sign_with_expired_certificate(local_sigstore, model, local_sigstore.trust_config_path)
    else:
        signed = sign_cli(model, local_sigstore.mint_token(ALICE), local_sigstore.trust_config_path)
        assert signed.exit_code == 0, signed.output

    def strip_times(bundle: dict[str, Any]) -> None:
        del tlog_entry(bundle)["integratedTime"]
        bundle["verificationMaterial"].pop("timestampVerificationData", None)  # none for v1

    rewrite_bundle(model, strip_times)
    result = verify_cli(
        model, "--trust-root", local_sigstore.trusted_root_path, issuer=local_sigstore.issuer
    )
    assert "verified time" in reason(result, 1)


# ---------------------------------------------------------------------------
# identity tokens that cannot sign (exit 3, nothing written)


def _expired(server) -> str:
    return server.mint_token(ALICE, lifetime=-60)


def _wrong_audience(server) -> str:
    return server.mint_token(ALICE, aud="not-sigstore")


def _forged(server) -> str:
    # The client cannot tell (it does not check signatures); Fulcio must refuse it.
    return server.mint_token(ALICE, key=ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize(
    ("make_token", "words"),
    [(_expired, "identity token"), (_wrong_audience, "identity token"), (_forged, "401")],
    ids=["expired", "wrong-audience", "forged"],
)
def test_bad_identity_token(
    local_sigstore, model: Path, no_ambient_credentials: None, make_token: Any, words: str
) -> None:
    before = sorted(p.name for p in model.iterdir())
    result = sign_cli(model, make_token(local_sigstore), local_sigstore.trust_config_path)
    assert words in reason(result, 3)
    assert sorted(p.name for p in model.iterdir()) == before
    assert not (model / "model.sig").exists()


def test_no_identity_token(local_sigstore, model: Path, no_ambient_credentials: None) -> None:
    # CliRunner's stdin is not a terminal: no browser flow, so nowhere to get a token.
    result = run_cli(
        "sign", model, "--sigstore", "--trust-config", local_sigstore.trust_config_path
    )
    assert "no identity token" in reason(result, 3)
    assert not (model / "model.sig").exists()


def test_expired_token_through_the_api(local_sigstore) -> None:
    with pytest.raises(InputError, match="token"):
        signing.get_identity_token(
            local_sigstore.mint_token(ALICE, lifetime=-60), interactive=False
        )


# ---------------------------------------------------------------------------
# signing services that cannot be reached (exit 3, nothing written)


@pytest.mark.parametrize(
    ("version", "services"),
    [
        (1, ["caUrls"]),
        (1, ["rekorTlogUrls"]),
        (1, ["caUrls", "rekorTlogUrls"]),
        (2, ["rekorTlogUrls"]),
        (2, ["tsaUrls"]),
    ],
    ids=["fulcio", "rekor-v1", "fulcio-and-rekor", "rekor-v2", "tsa"],
)
def test_unreachable_signing_service(
    local_sigstore, model: Path, tmp_path: Path, version: int, services: list[str]
) -> None:
    dead = closed_port_url()
    config = local_sigstore.client_trust_config(version)
    for service in services:
        entry = config["signingConfig"][service][0]
        entry["url"] = entry["url"].replace(local_sigstore.url, dead)
    path = tmp_path / "trust_config.json"
    path.write_text(json.dumps(config))
    result = sign_cli(model, local_sigstore.mint_token(ALICE), path)
    assert dead in reason(result, 3)
    assert not (model / "model.sig").exists()
    assert not [p for p in model.iterdir() if p.name.startswith(("model.sig", ".model.sig"))]


def test_trust_config_without_a_certificate_authority(
    local_sigstore, model: Path, tmp_path: Path
) -> None:
    config = local_sigstore.client_trust_config(1)
    config["signingConfig"]["caUrls"] = []
    path = tmp_path / "trust_config.json"
    path.write_text(json.dumps(config))
    result = sign_cli(model, local_sigstore.mint_token(ALICE), path)
    assert "Fulcio" in reason(result, 3)
    assert not (model / "model.sig").exists()


def test_fulcio_issues_an_expired_certificate(local_sigstore, model: Path) -> None:
    """What a signer sees when its clock runs ahead of Fulcio's by more than ten minutes."""
    with local_sigstore.expired_certificates():
        result = sign_cli(model, local_sigstore.mint_token(ALICE), local_sigstore.trust_config_path)
    assert "xpired" in reason(result, 3)
    assert not (model / "model.sig").exists()


# ---------------------------------------------------------------------------
# Rekor v2 with a timestamp authority


def test_rekor_v2_round_trip(local_sigstore, signed_v2: Signed) -> None:
    bundle = bundle_of(signed_v2.model)
    assert tlog_entry(bundle)["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert "integratedTime" not in tlog_entry(bundle)
    assert (
        len(bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]) == 1
    )
    for trust in (
        ("--trust-config", signed_v2.trust_config),
        ("--trust-root", local_sigstore.trusted_root_path),
    ):
        result = verify_cli(signed_v2.model, *trust, issuer=local_sigstore.issuer)
        assert result.exit_code == 0, result.output
    wrong = verify_cli(
        signed_v2.model,
        "--trust-config",
        signed_v2.trust_config,
        identity="mallory@example.com",
        issuer=local_sigstore.issuer,
    )
    reason(wrong, 1)


def test_rekor_v2_inspect_shows_log_index_and_signing_time(
    local_sigstore, signed_v2: Signed
) -> None:
    """A v2 entry has no integrated time: the signing time is the TSA's timestamp."""
    index = int(tlog_entry(bundle_of(signed_v2.model))["logIndex"])
    result = run_cli("inspect", signed_v2.model, "--json")
    assert result.exit_code == 0, result.output
    signer = json.loads(result.output)["signer"]
    assert signer["identity"] == ALICE
    assert signer["issuer"] == local_sigstore.issuer
    assert signer["log_index"] == index
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signer.get("signed_at") or ""), signer
    text = run_cli("inspect", signed_v2.model)
    assert signer["signed_at"] in text.output


def _flip_timestamp(bundle: dict[str, Any]) -> None:
    stamps = bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    raw = bytearray(base64.b64decode(stamps[0]["signedTimestamp"]))
    raw[-1] ^= 0x01  # inside the TSA's signature
    stamps[0]["signedTimestamp"] = base64.b64encode(bytes(raw)).decode()


def _flip_v2_proof_hash(bundle: dict[str, Any]) -> None:
    _flip_proof_hash(tlog_entry(bundle))


@pytest.mark.parametrize(
    ("tamper", "words"),
    [(_flip_timestamp, "verified time"), (_flip_v2_proof_hash, "invalid log entry")],
    ids=["tsa-signature", "proof-hash"],
)
def test_rekor_v2_tampered(
    local_sigstore, signed_v2: Signed, tmp_path: Path, tamper: Callable[..., None], words: str
) -> None:
    model = signed_v2.copy(tmp_path / "model")
    rewrite_bundle(model, tamper)
    result = verify_cli(
        model, "--trust-config", signed_v2.trust_config, issuer=local_sigstore.issuer
    )
    assert words in reason(result, 1)


def test_rekor_v2_trust_root_without_the_tsa(
    local_sigstore, signed_v2: Signed, tmp_path: Path
) -> None:
    root = json.loads(local_sigstore.trusted_root_path.read_text())
    root["timestampAuthorities"] = []
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(root))
    result = verify_cli(signed_v2.model, "--trust-root", path, issuer=local_sigstore.issuer)
    assert "Timestamp" in reason(result, 1)


# ---------------------------------------------------------------------------
# interoperability with model-signing, both ways, on the same local instance


@needs_model_signing
@pytest.mark.parametrize("version", [1, 2], ids=["rekor-v1", "rekor-v2"])
def test_model_signing_signs_provenance_verifies(local_sigstore, model: Path, version: int) -> None:
    config = (
        local_sigstore.trust_config_path if version == 1 else local_sigstore.trust_config_v2_path
    )
    proc = model_signing_cli(
        "sign",
        "sigstore",
        "--trust_config",
        config,
        "--identity_token",
        local_sigstore.mint_token(ALICE),
        "--signature",
        model / "model.sig",
        model,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = verify_cli(model, "--trust-config", config, issuer=local_sigstore.issuer)
    assert result.exit_code == 0, result.output
    wrong = verify_cli(
        model, "--trust-config", config, identity="bob@example.com", issuer=local_sigstore.issuer
    )
    reason(wrong, 1)


@needs_model_signing
@pytest.mark.parametrize("version", [1, 2], ids=["rekor-v1", "rekor-v2"])
def test_provenance_signs_model_signing_verifies(
    local_sigstore, signed_v1: Signed, signed_v2: Signed, version: int
) -> None:
    signed = signed_v1 if version == 1 else signed_v2

    def model_signing_verify(identity: str) -> subprocess.CompletedProcess[str]:
        return model_signing_cli(
            "verify",
            "sigstore",
            "--trust_config",
            signed.trust_config,
            "--signature",
            signed.model / "model.sig",
            "--identity",
            identity,
            "--identity_provider",
            local_sigstore.issuer,
            signed.model,
        )

    proc = model_signing_verify(ALICE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert model_signing_verify("bob@example.com").returncode != 0
