"""Interoperability with `model-signing` (sigstore/model-transparency), offline.

Three directions:

1. Golden signatures that model-signing releases v0.2.0 ... v1.1.0 made
   (``FIXTURES/oms-golden``) verify with provenance, through the CLI and the API.
2. Signatures provenance makes verify with model-signing (its CLI and its API).
3. Signatures model-signing makes (its CLI and its API) verify with provenance,
   and both tools agree on the root digest.

model-signing runs as a subprocess. To keep the file fast, the many API-level
cases run in one subprocess per direction (a small driver script below), and
only a handful of cases go through model-signing's own CLI.

Where model-signing itself fails, the case is marked ``xfail(strict=True)``
with the error it printed, so the test flips as soon as model-signing fixes it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, make_model, needs_fixtures, run_cli

import provenance
from provenance.errors import VerificationError

GOLDEN = FIXTURES / "oms-golden"
GOLDEN_KEYS = GOLDEN / "keys" / "certificate"
GOLDEN_PUB = GOLDEN_KEYS / "signing-key-pub.pem"
GOLDEN_ROOT = GOLDEN_KEYS / "ca-cert.pem"
GOLDEN_INT = GOLDEN_KEYS / "int-ca-cert.pem"
SIGSTORE_IDENTITY = "stefanb@us.ibm.com"

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
SHARD = 1000  # small, so the 5000- and 3000-byte weights split into several shards

needs_model_signing = pytest.mark.skipif(
    not MODEL_SIGNING.exists(), reason=f"model-signing CLI not found at {MODEL_SIGNING}"
)


# ---------------------------------------------------------------------------
# helpers


def payload(signature: Path) -> dict:
    """The signed in-toto statement inside a bundle (parsed, not verified)."""
    bundle = json.loads(signature.read_bytes())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def subject_digest(signature: Path) -> str:
    subjects = payload(signature)["subject"]
    assert len(subjects) == 1, subjects
    return subjects[0]["digest"]["sha256"]


def bundle_chain(signature: Path) -> list[bytes]:
    material = json.loads(signature.read_bytes())["verificationMaterial"]
    return [
        base64.b64decode(c["rawBytes"]) for c in material["x509CertificateChain"]["certificates"]
    ]


def pem_to_der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def one_line_failure(result, codes=(1,)) -> str:
    """Assert a clean failure: an allowed exit code, one reason line, no traceback."""
    out = result.output
    assert result.exit_code in codes, out
    assert "Traceback" not in out, out
    assert "unexpected" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "a failure must say why"
    assert lines[0].startswith(("verification failed: ", "error: ")), out
    return lines[0]


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:  # fixtures are read-only
        p.chmod(p.stat().st_mode | 0o200)
    return dst


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODEL_SIGNING), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def prov_hash_name(ms_hash: str) -> str:
    """model-signing's API says ``blake2``; provenance (and the manifest) say ``blake2b``."""
    return "blake2b" if ms_hash == "blake2" else ms_hash


# ---------------------------------------------------------------------------
# 1. golden signatures from model-signing releases

KEY_FIXTURES = [
    "v0.3.1-elliptic-key",
    "v1.0.0-elliptic-key",
    "v1.0.1-elliptic-key",
    "v1.1.0-elliptic-key",
]
CERT_FIXTURES = [
    "v0.3.1-certificate",
    "v1.0.0-certificate",
    "v1.0.1-certificate",
    "v1.1.0-certificate",
]
SIGSTORE_FIXTURES = [
    "v0.3.1-sigstore",
    "v1.0.0-sigstore",
    "v1.0.1-sigstore",
    "v1.1.0-sigstore",
]
LEGACY_FIXTURE = "v0.2.0-certificate"
# v0.3.1 and v1.0.0 elliptic-key signatures sign the single file signme-1.
SINGLE_FILE_FIXTURES = {"v0.3.1-elliptic-key", "v1.0.0-elliptic-key"}


@dataclass(frozen=True)
class GoldenTarget:
    model: Path
    signature: Path
    ignore: tuple[str, ...]


def golden_target(name: str, base: Path | None = None) -> GoldenTarget:
    folder = (base or GOLDEN) / name
    if name in SINGLE_FILE_FIXTURES:
        return GoldenTarget(folder / "signme-1", folder / "model.sig", ())
    version = tuple(int(x) for x in name.split("-")[0][1:].split("."))
    # Before 1.1 the ignore list was not signed, so the verifier must repeat it.
    needs_ignore = (folder / "ignore-me").exists() and version < (1, 1)
    return GoldenTarget(folder, folder / "model.sig", ("ignore-me",) if needs_ignore else ())


def cli_args(target: GoldenTarget) -> list[str | Path]:
    args: list[str | Path] = [target.model, "--signature", target.signature]
    for p in target.ignore:
        args += ["--ignore", p]
    return args


@needs_fixtures
def test_golden_fixture_list_is_complete():
    """Every folder in the fixture set is exercised by a test here."""
    on_disk = {p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name.startswith("v")}
    known = {*KEY_FIXTURES, *CERT_FIXTURES, *SIGSTORE_FIXTURES, LEGACY_FIXTURE}
    assert on_disk == known


@needs_fixtures
@pytest.mark.parametrize("name", KEY_FIXTURES)
def test_golden_key_cli(name):
    target = golden_target(name)
    result = run_cli("verify", *cli_args(target), "--key", GOLDEN_PUB)
    assert result.exit_code == 0, result.output
    assert "Verified" in result.output
    assert subject_digest(target.signature) in result.output


@needs_fixtures
@pytest.mark.parametrize("name", KEY_FIXTURES)
def test_golden_key_api(name):
    from provenance.signing import KeyVerifier

    target = golden_target(name)
    result = provenance.verify(
        target.model,
        KeyVerifier.from_files(GOLDEN_PUB),
        signature_path=target.signature,
        ignore_paths=target.ignore,
    )
    assert result.method == "key"
    assert result.manifest.root_digest == subject_digest(target.signature)
    assert result.root_digest == subject_digest(target.signature)
    assert not result.warnings


@needs_fixtures
@pytest.mark.parametrize("name", CERT_FIXTURES)
def test_golden_certificate_bundle_carries_the_intermediate(name):
    """The bundle holds leaf + intermediate, so --root alone must be enough."""
    chain = bundle_chain(GOLDEN / name / "model.sig")
    assert chain == [pem_to_der(GOLDEN_KEYS / "signing-key-cert.pem"), pem_to_der(GOLDEN_INT)]


@needs_fixtures
@pytest.mark.parametrize("with_chain", [False, True], ids=["root-only", "root+chain"])
@pytest.mark.parametrize("name", CERT_FIXTURES)
def test_golden_certificate_cli(name, with_chain):
    target = golden_target(name)
    chain = ["--chain", GOLDEN_INT] if with_chain else []
    result = run_cli("verify", *cli_args(target), "--root", GOLDEN_ROOT, *chain)
    assert result.exit_code == 0, result.output
    assert subject_digest(target.signature) in result.output


@needs_fixtures
@pytest.mark.parametrize("with_chain", [False, True], ids=["root-only", "root+chain"])
@pytest.mark.parametrize("name", CERT_FIXTURES)
def test_golden_certificate_api(name, with_chain):
    from provenance.signing import CertificateVerifier

    target = golden_target(name)
    verifier = CertificateVerifier.from_files([GOLDEN_ROOT], [GOLDEN_INT] if with_chain else [])
    result = provenance.verify(
        target.model, verifier, signature_path=target.signature, ignore_paths=target.ignore
    )
    assert result.method == "certificate"
    assert result.manifest.root_digest == subject_digest(target.signature)
    assert not result.warnings


@needs_fixtures
@pytest.mark.parametrize("name", ["v1.1.0-elliptic-key", "v1.1.0-certificate"])
def test_golden_v1_1_signs_its_ignore_list(name):
    """1.1 records ignore-me in the signed ignore list: no --ignore needed."""
    target = golden_target(name)
    assert target.ignore == ()
    assert "ignore-me" in payload(target.signature)["predicate"]["serialization"]["ignore_paths"]
    trust = ["--key", GOLDEN_PUB] if "key" in name else ["--root", GOLDEN_ROOT]
    result = run_cli("verify", target.model, *trust)
    assert result.exit_code == 0, result.output


@needs_fixtures
@pytest.mark.parametrize("name", ["v1.0.1-elliptic-key", "v1.0.1-certificate"])
def test_golden_v1_0_needs_explicit_ignore(name):
    """Before 1.1 the ignore list is not signed: without --ignore, ignore-me is unsigned."""
    assert "ignore_paths" not in payload(GOLDEN / name / "model.sig")["predicate"]["serialization"]
    trust = ["--key", GOLDEN_PUB] if "key" in name else ["--root", GOLDEN_ROOT]
    result = run_cli("verify", GOLDEN / name, *trust)
    reason = one_line_failure(result)
    assert "ignore-me" in reason


@needs_fixtures
@pytest.mark.parametrize("name", SIGSTORE_FIXTURES)
def test_golden_sigstore_inspect(name):
    sig = GOLDEN / name / "model.sig"
    result = run_cli("inspect", sig)
    assert result.exit_code == 0, result.output
    assert "Sigstore" in result.output
    assert SIGSTORE_IDENTITY in result.output
    assert subject_digest(sig) in result.output

    as_json = run_cli("inspect", GOLDEN / name, "--json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["verified"] is False
    assert doc["signer"]["kind"] == "keyless"  # the SignerInfo kind, as verify reports it
    assert doc["signer"]["identity"] == SIGSTORE_IDENTITY
    assert doc["signer"]["issuer"] == "https://sigstore.verify.ibm.com/oauth2"
    assert doc["signer"]["log_index"] > 0
    assert doc["signer"]["signed_at"].startswith("20")
    assert doc["root_digest"] == subject_digest(sig)


@needs_fixtures
@pytest.mark.parametrize("name", SIGSTORE_FIXTURES)
def test_golden_sigstore_refused_with_a_key(name):
    target = golden_target(name)
    result = run_cli("verify", *cli_args(target), "--key", GOLDEN_PUB)
    reason = one_line_failure(result)
    assert "Sigstore identity" in reason


@needs_fixtures
@pytest.mark.parametrize("name", SIGSTORE_FIXTURES)
def test_golden_sigstore_refused_with_a_key_api(name):
    from provenance.signing import KeyVerifier

    target = golden_target(name)
    with pytest.raises(VerificationError, match="Sigstore identity"):
        provenance.verify(
            target.model,
            KeyVerifier.from_files(GOLDEN_PUB),
            signature_path=target.signature,
            ignore_paths=target.ignore,
        )


# v0.2.0 used a wrong DSSE PAE and a different payload (one subject per file).
# Observed and recorded here: provenance VERIFIES it, with a warning to re-sign.
# (The alternative the design allows -- a one-line refusal with exit 1/3 -- would
# also be acceptable; a traceback or an "unexpected" error never is.)
LEGACY_VERIFIES = True


@needs_fixtures
@pytest.mark.parametrize("with_chain", [False, True], ids=["root-only", "root+chain"])
def test_golden_v0_2_0_certificate_does_not_crash(with_chain):
    target = golden_target(LEGACY_FIXTURE)
    chain = ["--chain", GOLDEN_INT] if with_chain else []
    result = run_cli("verify", *cli_args(target), "--root", GOLDEN_ROOT, *chain)
    assert "Traceback" not in result.output
    assert "unexpected" not in result.output
    if LEGACY_VERIFIES:
        assert result.exit_code == 0, result.output
        assert "pre-0.3" in result.output  # the legacy warning
    else:
        one_line_failure(result, codes=(1, 3))


@needs_fixtures
def test_golden_v0_2_0_certificate_api():
    from provenance.signing import CertificateVerifier

    target = golden_target(LEGACY_FIXTURE)
    verifier = CertificateVerifier.from_files([GOLDEN_ROOT])
    if not LEGACY_VERIFIES:
        with pytest.raises(provenance.ProvenanceError):
            provenance.verify(target.model, verifier, signature_path=target.signature)
        return
    result = provenance.verify(target.model, verifier, signature_path=target.signature)
    assert any("pre-0.3" in w for w in result.warnings)
    # v0.2.0 lists one subject per file; the manifest must hold exactly those digests.
    signed = {s["name"]: s["digest"]["sha256"] for s in payload(target.signature)["subject"]}
    assert {r.name: r.digest.hex() for r in result.manifest.resources} == signed


TAMPER_FIXTURES = KEY_FIXTURES + CERT_FIXTURES + ([LEGACY_FIXTURE] if LEGACY_VERIFIES else [])


@needs_fixtures
@pytest.mark.parametrize("name", TAMPER_FIXTURES)
def test_golden_tampered_copy_fails_naming_the_file(name, tmp_path):
    copy_tree(GOLDEN / name, tmp_path / name)
    target = golden_target(name, base=tmp_path)
    flip_byte(tmp_path / name / "signme-1")
    trust = ["--key", GOLDEN_PUB] if "elliptic-key" in name else ["--root", GOLDEN_ROOT]
    result = run_cli("verify", *cli_args(target), *trust)
    reason = one_line_failure(result)
    assert "signme-1" in reason
    assert "signme-2" not in reason  # only the file that changed is blamed


# ---------------------------------------------------------------------------
# model-signing driver: many API-level operations in one subprocess

_DRIVER = r"""
import json, sys
from model_signing import hashing, signing, verifying

def err(e):
    return f"{type(e).__name__}: {e}"

def hashing_config(job):
    hc = hashing.Config()
    if job["method"] == "shards":
        hc.use_shard_serialization(hashing_algorithm=job["hash"], shard_size=job["shard_size"])
    else:
        hc.use_file_serialization(hashing_algorithm=job["hash"])
    return hc

def verify(job):
    cfg = verifying.Config()
    if "public_key" in job:
        cfg.use_elliptic_key_verifier(public_key=job["public_key"])
    else:
        cfg.use_certificate_verifier(certificate_chain=job["roots"])
    cfg.verify(job["model"], job["signature"])  # hashing config guessed from the signature

def sign(job):
    cfg = signing.Config()
    if "certificate" in job:
        cfg.use_certificate_signer(
            private_key=job["private_key"],
            signing_certificate=job["certificate"],
            certificate_chain=job["chain"],
        )
    else:
        cfg.use_elliptic_key_signer(private_key=job["private_key"])
    cfg.set_hashing_config(hashing_config(job)).sign(job["model"], job["signature"])

results = {}
for job in json.load(open(sys.argv[1])):
    out = {}
    if job["op"] == "sign":
        try:
            sign(job)
            out["sign"] = "ok"
        except Exception as e:
            out["sign"] = err(e)
    if out.get("sign", "ok") == "ok":
        try:
            verify(job)
            out["verify"] = "ok"
        except Exception as e:
            out["verify"] = err(e)
    results[job["id"]] = out
json.dump(results, open(sys.argv[2], "w"))
"""


def run_driver(jobs: list[dict], workdir: Path) -> dict[str, dict[str, str]]:
    jobs_file = workdir / "jobs.json"
    results_file = workdir / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(jobs_file), str(results_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(results_file.read_text())


@dataclass(frozen=True)
class Case:
    """One signing configuration: who signs, which model, how it is hashed."""

    signer: str  # p256 | p384 | p521 | cert
    method: str  # files | shards
    hash: str  # model-signing's name: sha256 | blake2 | blake3
    single: bool = False

    @property
    def id(self) -> str:
        return f"{'single-' if self.single else ''}{self.signer}-{self.method}-{self.hash}"

    def hashing_args(self) -> list[str]:
        args = ["--hash", prov_hash_name(self.hash)]
        if self.method == "shards":
            args += ["--shard-size", str(SHARD)]
        return args


MATRIX = [
    *(
        Case(signer, method, h)
        for signer in ("p256", "p384", "p521", "cert")
        for method in ("files", "shards")
        for h in ("sha256", "blake2")
    ),
    Case("p256", "files", "blake3"),  # model-signing supports BLAKE3 for files only
    *(
        Case(signer, method, "sha256", single=True)
        for signer in ("p256", "cert")
        for method in ("files", "shards")
    ),
    Case("p384", "shards", "blake2", single=True),
]
CASES = {c.id: c for c in MATRIX}


@dataclass
class Material:
    """Keys and PKI from conftest, in the forms each tool wants."""

    keys: dict[str, Any]  # curve name -> conftest KeyPair
    pki: Any  # conftest Pki

    def public(self, signer: str) -> Path:
        return self.keys[signer].public

    def private(self, signer: str) -> Path:
        return self.pki.leaf_key if signer == "cert" else self.keys[signer].private

    def prov_sign_args(self, signer: str) -> list[str | Path]:
        if signer == "cert":
            return [
                "--key",
                self.pki.leaf_key,
                "--cert",
                self.pki.leaf,
                "--chain",
                self.pki.intermediate,
            ]
        return ["--key", self.private(signer)]

    def prov_trust_args(self, signer: str) -> list[str | Path]:
        return ["--root", self.pki.root] if signer == "cert" else ["--key", self.public(signer)]

    def prov_verifier(self, signer: str):
        if signer == "cert":
            from provenance.signing import CertificateVerifier

            return CertificateVerifier.from_files([self.pki.root])
        from provenance.signing import KeyVerifier

        return KeyVerifier.from_files(self.public(signer))

    def ms_trust(self, signer: str) -> dict:
        if signer == "cert":
            return {"roots": [str(self.pki.root)]}
        return {"public_key": str(self.public(signer))}

    def ms_signer(self, signer: str) -> dict:
        if signer == "cert":
            return {
                "private_key": str(self.pki.leaf_key),
                "certificate": str(self.pki.leaf),
                "chain": [str(self.pki.intermediate)],
            }
        return {"private_key": str(self.private(signer))}


@pytest.fixture(scope="module")
def material(p256, p384, p521, pki) -> Material:
    return Material({"p256": p256, "p384": p384, "p521": p521}, pki)


@pytest.fixture(scope="module")
def shared_models(tmp_path_factory) -> dict[bool, Path]:
    """A folder model (make_model) and a single-file model; nothing here mutates them."""
    base = tmp_path_factory.mktemp("interop-models")
    folder = make_model(base / "my-model")
    single = base / "single" / "mod\u00e8le.bin"
    single.parent.mkdir()
    single.write_bytes(bytes(range(256)) * 10)  # 2560 bytes: three 1000-byte shards
    return {False: folder, True: single}


# ---------------------------------------------------------------------------
# 2. provenance signs -> model-signing verifies


@dataclass
class ProvSigned:
    sign_results: dict[str, Any]  # CLI Result per case id
    signatures: dict[str, Path]
    ms_api: dict[str, dict[str, str]]  # model-signing API verification per case id


@pytest.fixture(scope="module")
def prov_signed(material, shared_models, tmp_path_factory) -> ProvSigned:
    sigs = tmp_path_factory.mktemp("prov-sigs")
    results, signatures, jobs = {}, {}, []
    for case in MATRIX:
        sig = sigs / f"{case.id}.sig"
        model = shared_models[case.single]
        result = run_cli(
            "sign",
            model,
            *material.prov_sign_args(case.signer),
            *case.hashing_args(),
            "--signature",
            sig,
            "--json",
        )
        results[case.id] = result
        signatures[case.id] = sig
        if result.exit_code == 0:
            jobs.append(
                {
                    "op": "verify",
                    "id": case.id,
                    "model": str(model),
                    "signature": str(sig),
                    **material.ms_trust(case.signer),
                }
            )
    ms = run_driver(jobs, sigs) if jobs and MODEL_SIGNING.exists() else {}
    return ProvSigned(results, signatures, ms)


def _check_prov_signed(prov_signed: ProvSigned, case_id: str) -> Path:
    result = prov_signed.sign_results[case_id]
    assert result.exit_code == 0, f"provenance sign failed: {result.output}"
    return prov_signed.signatures[case_id]


@needs_model_signing
@pytest.mark.parametrize("case_id", list(CASES))
def test_provenance_signs_model_signing_api_verifies(prov_signed, case_id):
    _check_prov_signed(prov_signed, case_id)
    assert prov_signed.ms_api[case_id] == {"verify": "ok"}


@pytest.mark.parametrize("case_id", list(CASES))
def test_provenance_signature_wire_format(prov_signed, shared_models, case_id):
    """What model-signing's parser relies on: hash_type names it knows, integer shard size."""
    case = CASES[case_id]
    sig = _check_prov_signed(prov_signed, case_id)
    statement = payload(sig)
    s = statement["predicate"]["serialization"]
    assert s["method"] == case.method
    assert s["hash_type"] == case.hash  # model-signing's spelling ("blake2", not "blake2b")
    if case.method == "shards":
        assert s["shard_size"] == SHARD
    assert statement["subject"][0]["name"] == shared_models[case.single].name
    bundle = json.loads(sig.read_bytes())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["signatures"][0]["keyid"] == ""


_MS_CLI_IGNORES_SERIALIZATION = pytest.mark.xfail(
    strict=True,
    reason=(
        "model-signing bug: `model_signing verify` (CLI) always passes "
        "set_hashing_config(hashing.Config()) -- files + sha256 -- so it never uses the "
        "serialization recorded in the signature. Observed: shards -> 'Verification failed "
        'with error: Signature mismatch: ["Extra files found in model ...", "Missing '
        "files in model ...\"]'; blake2b -> 'Signature mismatch: [\"Hash mismatch for "
        "'a-c': Expected 'Digest(algorithm='blake2b', ...)', Actual "
        "'Digest(algorithm='sha256', ...)'\" ...]'. Its Python API (which guesses the "
        "config) verifies the same signatures."
    ),
)

MS_CLI_CASES = [
    pytest.param("p256-files-sha256"),
    pytest.param("p384-files-sha256"),
    pytest.param("p521-files-sha256"),
    pytest.param("cert-files-sha256"),
    pytest.param("single-p256-files-sha256"),
    pytest.param("p256-shards-sha256", marks=_MS_CLI_IGNORES_SERIALIZATION),
    pytest.param("p256-files-blake2", marks=_MS_CLI_IGNORES_SERIALIZATION),
    pytest.param("cert-shards-blake2", marks=_MS_CLI_IGNORES_SERIALIZATION),
]


@needs_model_signing
@pytest.mark.parametrize("case_id", MS_CLI_CASES)
def test_provenance_signs_model_signing_cli_verifies(prov_signed, material, shared_models, case_id):
    case = CASES[case_id]
    sig = _check_prov_signed(prov_signed, case_id)
    model = shared_models[case.single]
    if case.signer == "cert":
        # model-signing takes the trust anchor via --certificate_chain;
        # the intermediate travels in the bundle.
        trust = ["certificate", model, "--certificate_chain", material.pki.root]
    else:
        trust = ["key", model, "--public_key", material.public(case.signer)]
    proc = model_signing_cli("verify", *trust, "--signature", sig)
    assert proc.returncode == 0, proc.stderr[:2000]
    assert "Verification succeeded" in proc.stdout


# ---------------------------------------------------------------------------
# 3. model-signing signs -> provenance verifies


@dataclass
class MsSigned:
    signatures: dict[str, Path]
    ms: dict[str, dict[str, str]]  # model-signing's sign + self-verify per case id


@pytest.fixture(scope="module")
def ms_signed(material, shared_models, tmp_path_factory) -> MsSigned:
    sigs = tmp_path_factory.mktemp("ms-sigs")
    jobs, signatures = [], {}
    for case in MATRIX:
        sig = sigs / f"{case.id}.sig"
        signatures[case.id] = sig
        jobs.append(
            {
                "op": "sign",
                "id": case.id,
                "model": str(shared_models[case.single]),
                "signature": str(sig),
                "method": case.method,
                "hash": case.hash,
                "shard_size": SHARD,
                **material.ms_signer(case.signer),
                **material.ms_trust(case.signer),
            }
        )
    return MsSigned(signatures, run_driver(jobs, sigs))


def _check_ms_signed(ms_signed: MsSigned, case_id: str) -> Path:
    assert ms_signed.ms[case_id].get("sign") == "ok", ms_signed.ms[case_id]
    return ms_signed.signatures[case_id]


@needs_model_signing
@pytest.mark.parametrize("case_id", list(CASES))
def test_model_signing_signs_provenance_verifies(ms_signed, material, shared_models, case_id):
    case = CASES[case_id]
    sig = _check_ms_signed(ms_signed, case_id)
    model = shared_models[case.single]
    digest = subject_digest(sig)

    result = run_cli("verify", model, *material.prov_trust_args(case.signer), "--signature", sig)
    assert result.exit_code == 0, result.output
    assert digest in result.output

    api = provenance.verify(model, material.prov_verifier(case.signer), signature_path=sig)
    assert api.manifest.root_digest == digest
    assert api.manifest.serialization.method == case.method


@needs_model_signing
@pytest.mark.parametrize("case_id", list(CASES))
def test_root_digests_agree(ms_signed, shared_models, case_id):
    """`provenance hash --json` gives the digest model-signing signed, for the same settings."""
    case = CASES[case_id]
    sig = _check_ms_signed(ms_signed, case_id)
    result = run_cli("hash", shared_models[case.single], "--json", *case.hashing_args())
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["root_digest"] == subject_digest(sig)


def _ms_self_verify_marks(case: Case) -> list:
    # Which bug bites first depends on the case: the hash name is checked while
    # the hashing config is built, before any shard size is used.
    if case.hash == "blake2":
        return [
            pytest.mark.xfail(
                strict=True,
                reason="model-signing bug: it records hash_type 'blake2b' but its verifier only "
                "accepts 'blake2' when guessing the config: "
                "'ValueError: Unsupported hashing method blake2b'",
            )
        ]
    if case.method == "shards":
        return [
            pytest.mark.xfail(
                strict=True,
                reason="model-signing bug: protobuf JSON turns shard_size into 1000.0 and its "
                "verifier passes the float on: "
                "\"TypeError: 'float' object cannot be interpreted as an integer\"",
            )
        ]
    return []


@needs_model_signing
@pytest.mark.parametrize(
    "case_id", [pytest.param(c.id, marks=_ms_self_verify_marks(c)) for c in MATRIX]
)
def test_model_signing_verifies_its_own_signature(ms_signed, case_id):
    """Baseline for the cases above: does model-signing's API verify what it signed?

    provenance verifies every one of these (test_model_signing_signs_provenance_verifies).
    """
    _check_ms_signed(ms_signed, case_id)
    assert ms_signed.ms[case_id]["verify"] == "ok"


# model-signing's own CLI, with a signature in its default place inside the model


@needs_model_signing
@pytest.mark.parametrize("signer", ["p256", "p384", "p521", "cert"])
def test_model_signing_cli_signs_folder_provenance_verifies(signer, material, tmp_path):
    model = make_model(tmp_path / "my-model")
    sig = model / "model.sig"
    if signer == "cert":
        p = material.pki
        how = [
            "certificate",
            "--private_key",
            p.leaf_key,
            "--signing_certificate",
            p.leaf,
            "--certificate_chain",
            p.intermediate,
        ]
    else:
        how = ["key", "--private_key", material.private(signer)]
    proc = model_signing_cli("sign", *how, "--signature", sig, model)
    assert proc.returncode == 0, proc.stderr

    result = run_cli("verify", model, *material.prov_trust_args(signer))
    assert result.exit_code == 0, result.output
    api = provenance.verify(model, material.prov_verifier(signer))
    assert api.manifest.root_digest == subject_digest(sig)
    assert len(api.manifest.files) == 8  # every file of make_model, the empty one too

    hashed = run_cli("hash", model, "--json")
    assert json.loads(hashed.output)["root_digest"] == subject_digest(sig)

    if signer == "cert":  # the chain is in the bundle; giving it again changes nothing
        again = run_cli(
            "verify", model, "--root", material.pki.root, "--chain", material.pki.intermediate
        )
        assert again.exit_code == 0, again.output


@needs_model_signing
def test_model_signing_cli_signs_single_file_provenance_verifies(material, tmp_path):
    model = tmp_path / "mod\u00e8le.safetensors"
    model.write_bytes(b"\x00" * 100 + bytes(range(256)))
    sig = tmp_path / "mod\u00e8le.safetensors.sig"  # provenance's default for a file
    proc = model_signing_cli(
        "sign", "key", "--private_key", material.private("p521"), "--signature", sig, model
    )
    assert proc.returncode == 0, proc.stderr
    assert payload(sig)["predicate"]["resources"][0]["name"] == "."

    result = run_cli("verify", model, "--key", material.public("p521"))
    assert result.exit_code == 0, result.output
    api = provenance.verify(model, material.prov_verifier("p521"))
    assert api.manifest.root_digest == subject_digest(sig)
    assert json.loads(run_cli("hash", model, "--json").output)["root_digest"] == subject_digest(sig)


@needs_model_signing
def test_unsigned_file_added_after_model_signing_signed(material, tmp_path):
    model = make_model(tmp_path / "my-model")
    proc = model_signing_cli(
        "sign",
        "key",
        "--private_key",
        material.private("p256"),
        "--signature",
        model / "model.sig",
        model,
    )
    assert proc.returncode == 0, proc.stderr
    (model / "weights" / "extra.bin").write_bytes(b"added after signing")

    result = run_cli("verify", model, "--key", material.public("p256"))
    reason = one_line_failure(result)
    assert "weights/extra.bin" in reason

    with pytest.raises(VerificationError, match=r"weights/extra\.bin"):
        provenance.verify(model, material.prov_verifier("p256"))

    ok = run_cli("verify", model, "--key", material.public("p256"), "--ignore-unsigned-files")
    assert ok.exit_code == 0, ok.output
    api = provenance.verify(model, material.prov_verifier("p256"), ignore_unsigned_files=True)
    assert api.manifest.root_digest == subject_digest(model / "model.sig")


@needs_model_signing
def test_unsigned_file_is_reported_when_ignored(material, tmp_path):
    """--ignore-unsigned-files lets the file through but must still say which one it was."""
    model = make_model(tmp_path / "my-model")
    proc = model_signing_cli(
        "sign",
        "key",
        "--private_key",
        material.private("p256"),
        "--signature",
        model / "model.sig",
        model,
    )
    assert proc.returncode == 0, proc.stderr
    (model / "weights" / "extra.bin").write_bytes(b"added after signing")

    api = provenance.verify(model, material.prov_verifier("p256"), ignore_unsigned_files=True)
    assert api.unsigned_files_ignored == ("weights/extra.bin",)

    ok = run_cli("verify", model, "--key", material.public("p256"), "--ignore-unsigned-files")
    assert ok.exit_code == 0, ok.output
    assert "not signed (ignored): weights/extra.bin" in ok.output

    as_json = run_cli(
        "verify", model, "--key", material.public("p256"), "--ignore-unsigned-files", "--json"
    )
    assert json.loads(as_json.output)["unsigned_files_ignored"] == ["weights/extra.bin"]


@needs_model_signing
def test_provenance_signs_in_place_model_signing_cli_verifies(material, tmp_path):
    """The everyday flow: signature at MODEL/model.sig, attestations beside it."""
    model = make_model(tmp_path / "my-model")
    (model / "model.intoto.jsonl").write_text("{}\n")  # ignored by provenance's signed list
    signed = run_cli("sign", model, "--key", material.private("p256"), "--json")
    assert signed.exit_code == 0, signed.output
    sig = model / "model.sig"
    assert "model.intoto.jsonl" in payload(sig)["predicate"]["serialization"]["ignore_paths"]
    proc = model_signing_cli(
        "verify", "key", model, "--public_key", material.public("p256"), "--signature", sig
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(signed.output)["root_digest"] == subject_digest(sig)
