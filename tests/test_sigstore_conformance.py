"""Conformance with Sigstore's own verification material, offline.

Three sets of fixtures made by other implementations (see ``../shared/fixtures/README.md``):

1. ``oms-golden/*-sigstore``: model signatures made by ``model-signing`` on public-good
   Sigstore, verified as models through the CLI (trusted root from a file, or ``--offline``),
   and refused for any other identity, issuer, identity pattern or trusted root.
2. ``sigstore-python-assets``: artifacts and bundles from sigstore-python's test suite, through
   :class:`SigstoreVerifier.verify_artifact`, with the known-bad bundles it must refuse.
3. ``sigstore-conformance/bundle-verify``: all 70 cases of the conformance suite, the way its
   harness runs a client: artifact ``a.txt`` unless the case has ``artifact``; the beacon
   workflow identity unless the case has ``identity``/``issuer``; the case's own
   ``trusted_root.json`` or production; ``key.pub`` means verify with that key instead.

Every rejection must be a provenance error (:class:`VerificationError`, or :class:`InputError`
for input that cannot be read) with a one-line reason; no other exception type may escape.

Cases provenance cannot meet because of a limitation of the ``sigstore`` package are marked
``xfail(strict=True)`` with the error they fail with, so they flip as soon as it is fixed.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, needs_fixtures, run_cli

from provenance.errors import InputError, ProvenanceError, VerificationError
from provenance.signing._keys import KeyVerifier
from provenance.signing._sigstore import (
    SigstoreVerifier,
    identities,
    identity_policy,
    issuer_of,
    load_trusted_root,
)

if not FIXTURES.is_dir():
    pytest.skip(needs_fixtures.mark.kwargs["reason"], allow_module_level=True)

GOLDEN = FIXTURES / "oms-golden"
ASSETS = FIXTURES / "sigstore-python-assets"
BUNDLE_VERIFY = FIXTURES / "sigstore-conformance" / "bundle-verify"
PRODUCTION_ROOT = FIXTURES / "trust-roots" / "production" / "trusted_root.json"
STAGING_ROOT = FIXTURES / "trust-roots" / "staging" / "trusted_root.json"

# The conformance harness's defaults when a case has no `identity` / `issuer` file
# (bundle-verify/README.md): the suite's "extremely dangerous" public OIDC beacon workflow.
BEACON_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_OAUTH = "https://github.com/login/oauth"

# sigstore-python's Verifier.verify_artifact refuses DSSE bundles with this message; the
# sigstore CLI instead calls verify_dsse and matches an in-toto subject to the artifact.
# A DSSE bundle rejected with it was never checked, so the rejection proves nothing.
NOT_CHECKED_DSSE = "Missing bundle message signature"


def assert_clean(err: BaseException, kind: type[ProvenanceError]) -> str:
    """The exception is exactly ``kind`` and says why in one non-empty line."""
    assert type(err) is kind, f"expected {kind.__name__}, got {type(err).__name__}: {err!r}"
    text = str(err)
    assert text.strip(), "a rejection must say why"
    assert "\n" not in text, f"reason is not one line: {text!r}"
    return text


def rejection(call: Callable[[], object], kind: type[ProvenanceError]) -> str:
    """Run ``call``; it must raise ``kind`` (and nothing else) with a one-line reason."""
    try:
        call()
    except Exception as err:
        return assert_clean(err, kind)
    pytest.fail(f"accepted, but must be rejected with {kind.__name__}")


def clean_rejection(call: Callable[[], object]) -> str:
    """Run ``call``; it must raise VerificationError or InputError, never anything else."""
    try:
        call()
    except (VerificationError, InputError) as err:
        return assert_clean(err, type(err))
    except Exception as err:
        pytest.fail(f"{type(err).__name__} escaped instead of a provenance error: {err!r}")
    pytest.fail("accepted, but must be rejected")


def assert_dsse_checked(reason: str) -> None:
    assert NOT_CHECKED_DSSE not in reason, (
        "rejected only because SigstoreVerifier.verify_artifact does not check DSSE bundles: "
        + reason
    )


def has_dsse(bundle_text: str) -> bool:
    try:
        return "dsseEnvelope" in json.loads(bundle_text)
    except ValueError:
        return False


def sigstore_verifier(identity: str, issuer: str, root: Path) -> SigstoreVerifier:
    return SigstoreVerifier(
        identity_policy(identity=identity, issuer=issuer), load_trusted_root(trust_root=root)
    )


def leaf_identity(bundle: dict[str, Any]) -> tuple[str, str]:
    """The identity and issuer in a bundle's leaf certificate, read without verifying."""
    from cryptography import x509

    material = bundle.get("verificationMaterial") or {}
    raw = (material.get("certificate") or {}).get("rawBytes")
    if raw is None:
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or []
        raw = chain[0]["rawBytes"] if chain else None
    if raw is None:
        return "nobody@example.com", "https://example.com"
    leaf = x509.load_der_x509_certificate(base64.b64decode(raw))
    return identities(leaf)[0], issuer_of(leaf) or ""


# ===========================================================================
# 1. oms-golden: model-signing's keyless signatures, verified as models


SIGSTORE_IDENTITY = "stefanb@us.ibm.com"
SIGSTORE_ISSUER = "https://sigstore.verify.ibm.com/oauth2"
# All four sign the folder (their statements list signme-1 and signme-2; only the
# v0.3.1 / v1.0.0 *elliptic-key* signatures sign the single file signme-1).
GOLDEN_SIGSTORE = ["v0.3.1-sigstore", "v1.0.0-sigstore", "v1.0.1-sigstore", "v1.1.0-sigstore"]


def golden_args(name: str) -> list[str | Path]:
    folder = GOLDEN / name
    # v1.0.1 did not sign its ignore list; v1.1.0 did (ignore_paths in the statement).
    return [folder, *(["--ignore", "ignore-me"] if name == "v1.0.1-sigstore" else [])]


def signed_paths(name: str) -> list[str]:
    bundle = json.loads((GOLDEN / name / "model.sig").read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return sorted(r["name"] for r in statement["predicate"]["resources"])


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """No user-level Sigstore cache: --offline must use the root pinned in the package."""
    return {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "SIGSTORE_ID_TOKEN": "",
    }


@pytest.mark.parametrize("name", GOLDEN_SIGSTORE)
def test_golden_sigstore_signs_the_folder(name):
    assert signed_paths(name) == ["signme-1", "signme-2"]


@pytest.mark.parametrize("name", GOLDEN_SIGSTORE)
@pytest.mark.parametrize("trust", ["trust-root", "offline"])
def test_golden_sigstore_verifies(name, trust, isolated_env):
    where = ["--trust-root", PRODUCTION_ROOT] if trust == "trust-root" else ["--offline"]
    result = run_cli(
        "verify",
        *golden_args(name),
        "--identity",
        SIGSTORE_IDENTITY,
        "--issuer",
        SIGSTORE_ISSUER,
        *where,
        env=isolated_env,
    )
    assert result.exit_code == 0, result.output
    assert "Verified: 2 file(s)" in result.output
    assert SIGSTORE_IDENTITY in result.output


@pytest.mark.parametrize("name", GOLDEN_SIGSTORE)
def test_golden_sigstore_verifies_with_a_matching_pattern(name):
    result = run_cli(
        "verify",
        *golden_args(name),
        "--identity-regexp",
        r"[a-z]+@us\.ibm\.com",
        "--issuer",
        SIGSTORE_ISSUER,
        "--trust-root",
        PRODUCTION_ROOT,
    )
    assert result.exit_code == 0, result.output


GOLDEN_REFUSALS = {
    "other-identity": ["--identity", "someone@example.com", "--issuer", SIGSTORE_ISSUER],
    "identity-case": ["--identity", "STEFANB@us.ibm.com", "--issuer", SIGSTORE_ISSUER],
    "other-issuer": ["--identity", SIGSTORE_IDENTITY, "--issuer", "https://accounts.google.com"],
    "issuer-trailing-slash": ["--identity", SIGSTORE_IDENTITY, "--issuer", SIGSTORE_ISSUER + "/"],
    "regexp-no-match": ["--identity-regexp", r".*@example\.com", "--issuer", SIGSTORE_ISSUER],
    # A pattern must match the whole identity, not a part of it.
    "regexp-partial": ["--identity-regexp", "stefanb", "--issuer", SIGSTORE_ISSUER],
    "regexp-other-issuer": [
        "--identity-regexp",
        ".*",
        "--issuer",
        "https://accounts.google.com",
    ],
}


@pytest.mark.parametrize("name", GOLDEN_SIGSTORE)
@pytest.mark.parametrize("refusal", [*GOLDEN_REFUSALS, "staging-root"])
def test_golden_sigstore_refused(name, refusal):
    if refusal == "staging-root":
        policy = ["--identity", SIGSTORE_IDENTITY, "--issuer", SIGSTORE_ISSUER]
        root = STAGING_ROOT
    else:
        policy, root = GOLDEN_REFUSALS[refusal], PRODUCTION_ROOT
    result = run_cli("verify", *golden_args(name), *policy, "--trust-root", root)
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("verification failed: "), out


# ===========================================================================
# 2. sigstore-python's test assets


@dataclass(frozen=True)
class Asset:
    artifact: Path
    bundle: Path
    identity: str
    issuer: str
    root: Path


GOOD_ASSETS = {
    "bundle_v3_github.whl": Asset(
        ASSETS / "bundle_v3_github.whl",
        ASSETS / "bundle_v3_github.whl.sigstore",
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        GITHUB_ISSUER,
        PRODUCTION_ROOT,
    ),
    "bundle.txt": Asset(
        ASSETS / "bundle.txt",
        ASSETS / "bundle.txt.sigstore",
        "a@tny.town",
        GITHUB_OAUTH,
        STAGING_ROOT,
    ),
    "bundle_v3.txt": Asset(
        ASSETS / "bundle_v3.txt",
        ASSETS / "bundle_v3.txt.sigstore",
        "william@yossarian.net",
        GITHUB_OAUTH,
        STAGING_ROOT,
    ),
    "bundle_v3_alt.txt": Asset(
        ASSETS / "bundle_v3_alt.txt",
        ASSETS / "bundle_v3_alt.txt.sigstore",
        "william@yossarian.net",
        GITHUB_OAUTH,
        STAGING_ROOT,
    ),
    "staging-rekor-v2.txt": Asset(
        ASSETS / "staging-rekor-v2.txt",
        ASSETS / "staging-rekor-v2.txt.sigstore.json",
        "jku@goto.fi",
        GITHUB_OAUTH,
        STAGING_ROOT,
    ),
    # The DSSE bundle's in-toto subject is "a.txt" with the digest of the *conformance*
    # suite's a.txt (a0cfc712...), not of the file a.dsse.staging-rekor-v2.txt beside it
    # (e248a5db..., the same bytes as sigstore-python's own a.txt). sigstore-python only
    # ever checks it with verify_dsse, which ignores the subject.
    "a.dsse.staging-rekor-v2.txt": Asset(
        BUNDLE_VERIFY / "a.txt",
        ASSETS / "a.dsse.staging-rekor-v2.txt.sigstore.json",
        BEACON_IDENTITY,
        GITHUB_ISSUER,
        STAGING_ROOT,
    ),
    # The untouched bundle the tsa/ must-fail bundles were derived from: proves that they
    # fail for their defect, not for the trusted root or the identity used here.
    "tsa/bundle.txt": Asset(
        ASSETS / "tsa" / "bundle.txt",
        ASSETS / "tsa" / "bundle.txt.sigstore",
        "alexis.challande@trailofbits.com",
        "https://accounts.google.com",
        STAGING_ROOT,
    ),
}


@pytest.mark.parametrize("name", GOOD_ASSETS)
def test_asset_verifies(name):
    asset = GOOD_ASSETS[name]
    verifier = sigstore_verifier(asset.identity, asset.issuer, asset.root)
    verifier.verify_artifact(asset.artifact.read_bytes(), asset.bundle.read_text())


@pytest.mark.parametrize("name", GOOD_ASSETS)
def test_asset_refused_for_another_identity(name):
    asset = GOOD_ASSETS[name]
    verifier = sigstore_verifier("someone@example.com", asset.issuer, asset.root)
    text = asset.bundle.read_text()
    reason = rejection(
        lambda: verifier.verify_artifact(asset.artifact.read_bytes(), text), VerificationError
    )
    if has_dsse(text):
        assert_dsse_checked(reason)


@pytest.mark.parametrize("name", GOOD_ASSETS)
def test_asset_refused_for_another_artifact(name):
    asset = GOOD_ASSETS[name]
    verifier = sigstore_verifier(asset.identity, asset.issuer, asset.root)
    text = asset.bundle.read_text()
    other = asset.artifact.read_bytes() + b"\n"
    reason = rejection(lambda: verifier.verify_artifact(other, text), VerificationError)
    if has_dsse(text):
        assert_dsse_checked(reason)


def test_dsse_asset_refused_for_the_file_beside_it():
    """a.dsse.staging-rekor-v2.txt itself is not the statement's subject."""
    asset = GOOD_ASSETS["a.dsse.staging-rekor-v2.txt"]
    verifier = sigstore_verifier(asset.identity, asset.issuer, asset.root)
    beside = (ASSETS / "a.dsse.staging-rekor-v2.txt").read_bytes()
    reason = rejection(
        lambda: verifier.verify_artifact(beside, asset.bundle.read_text()), VerificationError
    )
    assert_dsse_checked(reason)


# Known-bad bundles, each with the error type provenance gives and the reason sigstore finds.
# All are staging bundles, checked against the staging root with the identity and issuer of
# their own certificate, so neither the root nor the policy is why they fail. None is
# reported as InputError: provenance reports a bundle it cannot parse as VerificationError
# ("not a valid Sigstore bundle: ...").
MUST_FAIL_ASSETS = {
    "bundle_cve_2022_36056": (
        "bundle_cve_2022_36056.txt",
        "bundle_cve_2022_36056.txt.sigstore",
        VerificationError,
        "transparency log entry is inconsistent with other materials",
    ),
    "bundle_no_cert_v1": (
        "bundle_no_cert_v1.txt",
        "bundle_no_cert_v1.txt.sigstore",
        VerificationError,
        "expected non-empty certificate chain",
    ),
    "bundle_no_checkpoint": (
        "bundle_no_checkpoint.txt",
        "bundle_no_checkpoint.txt.sigstore",
        VerificationError,
        "inclusion proof, with checkpoint",
    ),
    "bundle_no_log_entry": (
        "bundle_no_log_entry.txt",
        "bundle_no_log_entry.txt.sigstore",
        VerificationError,
        "expected exactly one log entry",
    ),
    "bundle_invalid_version": (
        "bundle_invalid_version.txt",
        "bundle_invalid_version.txt.sigstore",
        VerificationError,
        "not a valid Sigstore bundle",
    ),
    "bundle_v3_no_signed_time": (
        "bundle_v3_no_signed_time.txt",
        "bundle_v3_no_signed_time.txt.sigstore.json",
        VerificationError,
        "inclusion promise or signed timestamp",
    ),
    "tsa/bundle.many_timestamp": (
        "tsa/bundle.txt",
        "tsa/bundle.many_timestamp.sigstore",
        VerificationError,
        "too many signed timestamp",
    ),
    "tsa/bundle.duplicate": (
        "tsa/bundle.txt",
        "tsa/bundle.duplicate.sigstore",
        VerificationError,
        "duplicate timestamp",
    ),
    "tsa/bundle.txt.late_timestamp": (
        "tsa/bundle.txt",
        "tsa/bundle.txt.late_timestamp.sigstore",
        VerificationError,
        "not valid at validation time",
    ),
}


@pytest.mark.parametrize("name", MUST_FAIL_ASSETS)
def test_asset_must_fail(name):
    artifact, bundle, kind, why = MUST_FAIL_ASSETS[name]
    text = (ASSETS / bundle).read_text()
    identity, issuer = leaf_identity(json.loads(text))
    verifier = sigstore_verifier(identity, issuer, STAGING_ROOT)
    reason = rejection(
        lambda: verifier.verify_artifact((ASSETS / artifact).read_bytes(), text), kind
    )
    assert why in reason


# ===========================================================================
# 3. sigstore-conformance bundle-verify: every case


def conformance_cases() -> list[str]:
    return sorted(p.name for p in BUNDLE_VERIFY.iterdir() if p.is_dir())


# Cases that fail through a limitation of the `sigstore` package (4.5.1), which provenance
# delegates keyless verification to: (reason, text of the error they fail with).
SIGSTORE_LIMITATIONS = {
    "intoto-with-custom-trust-root": (
        "sigstore-python cannot verify intoto/0.0.2 log entries: 'Integrated time only "
        "supported for dsse/hashedrekord 0.0.1 types' (sigstore-python's own conformance CI "
        "xfails this case, its issue 1442)",
        "Integrated time only supported for dsse/hashedrekord 0.0.1 types",
    ),
    "trust-root-tsa-validity-end-inclusive": (
        "sigstore-python treats a TSA's validFor.end as exclusive (gen_time < end in "
        "Verifier._verify_timestamp_authority), so a timestamp exactly at the end is not "
        "trusted: 'not enough sources of verified time'",
        "not enough sources of verified time",
    ),
}

# Must-fail cases whose rejection is an InputError (the input cannot be used at all);
# every other must-fail case is a VerificationError.
INPUT_ERROR_CASES = {
    # key.pub is deliberately corrupt ("...wrongkey=="): not a loadable public key.
    "managed-key-wrong-key_fail": "is not a PEM public key",
    # The trusted root lacks a required field, so it is refused before any bundle check.
    "trust-root-tlog-missing-validity-start_fail": "is not usable",
}


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    artifact: Path
    bundle_text: str
    identity: str
    issuer: str
    root: Path
    key: Path | None

    @classmethod
    def load(cls, name: str) -> Case:
        folder = BUNDLE_VERIFY / name

        def optional(file: str, default: str) -> str:
            path = folder / file
            return path.read_text().strip() if path.exists() else default

        return cls(
            name=name,
            folder=folder,
            artifact=folder / "artifact"
            if (folder / "artifact").exists()
            else BUNDLE_VERIFY / "a.txt",
            bundle_text=(folder / "bundle.sigstore.json").read_text(),
            identity=optional("identity", BEACON_IDENTITY),
            issuer=optional("issuer", GITHUB_ISSUER),
            root=folder / "trusted_root.json"
            if (folder / "trusted_root.json").exists()
            else PRODUCTION_ROOT,
            key=folder / "key.pub" if (folder / "key.pub").exists() else None,
        )

    @property
    def must_fail(self) -> bool:
        return self.name.endswith("_fail")

    def verify(self) -> None:
        """What the conformance harness asks of a client: key if given, else identity."""
        artifact = self.artifact.read_bytes()
        if self.key is not None:
            verifier = KeyVerifier.from_files(self.key)
            verifier.verify_artifact(artifact, json.loads(self.bundle_text), trusted_root=self.root)
        else:
            sigstore_verifier(self.identity, self.issuer, self.root).verify_artifact(
                artifact, self.bundle_text
            )


def conformance_params() -> list[Any]:
    params = []
    for name in conformance_cases():
        marks = []
        if name in SIGSTORE_LIMITATIONS:
            reason = SIGSTORE_LIMITATIONS[name][0]
            marks.append(pytest.mark.xfail(strict=True, raises=VerificationError, reason=reason))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_all_conformance_cases_are_run():
    cases = conformance_cases()
    assert len(cases) == 70
    assert sum(c.endswith("_fail") for c in cases) == 49
    for name in cases:
        assert (BUNDLE_VERIFY / name / "bundle.sigstore.json").is_file(), name


@pytest.mark.parametrize("name", conformance_params())
def test_conformance(name):
    case = Case.load(name)
    if not case.must_fail:
        try:
            case.verify()
        except VerificationError as err:
            if name in SIGSTORE_LIMITATIONS:
                expected = SIGSTORE_LIMITATIONS[name][1]
                assert expected in str(err), f"fails for another reason than the known one: {err}"
            raise
        return
    kind = InputError if name in INPUT_ERROR_CASES else VerificationError
    reason = rejection(case.verify, kind)
    if name in INPUT_ERROR_CASES:
        assert INPUT_ERROR_CASES[name] in reason
    if has_dsse(case.bundle_text):
        assert_dsse_checked(reason)


# ---------------------------------------------------------------------------
# The managed-key bundle: the key path's own checks, beyond the four conformance cases


MANAGED = BUNDLE_VERIFY / "managed-key-happy-path"
MANAGED_ARTIFACT = BUNDLE_VERIFY / "a.txt"


def managed_bundle() -> dict[str, Any]:
    return json.loads((MANAGED / "bundle.sigstore.json").read_text())


def managed_verifier() -> KeyVerifier:
    return KeyVerifier.from_files(MANAGED / "key.pub")


def verify_managed(bundle: Any, root: Any = PRODUCTION_ROOT, artifact: bytes | None = None) -> None:
    data = MANAGED_ARTIFACT.read_bytes() if artifact is None else artifact
    managed_verifier().verify_artifact(data, bundle, trusted_root=root)


def test_managed_key_refused_without_a_trusted_root():
    reason = rejection(lambda: verify_managed(managed_bundle(), root=None), VerificationError)
    assert "trusted root" in reason


def test_managed_key_refused_with_another_instances_root():
    rejection(lambda: verify_managed(managed_bundle(), root=STAGING_ROOT), VerificationError)


def test_managed_key_refused_for_another_artifact():
    other = MANAGED_ARTIFACT.read_bytes() + b"\n"
    rejection(lambda: verify_managed(managed_bundle(), artifact=other), VerificationError)


def test_managed_key_refused_for_another_artifact_without_digest_hint():
    bundle = managed_bundle()
    del bundle["messageSignature"]["messageDigest"]
    other = MANAGED_ARTIFACT.read_bytes() + b"\n"
    rejection(lambda: verify_managed(bundle, artifact=other), VerificationError)


def test_managed_key_and_custom_root_refused_with_production_root():
    folder = BUNDLE_VERIFY / "managed-key-and-trusted-root"
    bundle = json.loads((folder / "bundle.sigstore.json").read_text())
    verifier = KeyVerifier.from_files(folder / "key.pub")
    data = MANAGED_ARTIFACT.read_bytes()
    rejection(
        lambda: verifier.verify_artifact(data, bundle, trusted_root=PRODUCTION_ROOT),
        VerificationError,
    )


def _flip(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _entry(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["verificationMaterial"]["tlogEntries"][0]


def _set_body(bundle: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    entry = _entry(bundle)
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    change(body)
    entry["canonicalizedBody"] = base64.b64encode(json.dumps(body).encode()).decode()


def _tamper_signature(b: dict[str, Any]) -> None:
    b["messageSignature"]["signature"] = _flip(b["messageSignature"]["signature"])


def _tamper_time(b: dict[str, Any]) -> None:
    _entry(b)["integratedTime"] = str(int(_entry(b)["integratedTime"]) + 1)


def _tamper_index(b: dict[str, Any]) -> None:
    _entry(b)["logIndex"] = str(int(_entry(b)["logIndex"]) + 1)


def _tamper_set(b: dict[str, Any]) -> None:
    promise = _entry(b)["inclusionPromise"]
    promise["signedEntryTimestamp"] = _flip(promise["signedEntryTimestamp"])


def _tamper_proof_hash(b: dict[str, Any]) -> None:
    hashes = _entry(b)["inclusionProof"]["hashes"]
    hashes[0] = _flip(hashes[0])


def _tamper_root_hash(b: dict[str, Any]) -> None:
    proof = _entry(b)["inclusionProof"]
    proof["rootHash"] = _flip(proof["rootHash"])


def _tamper_proof_index(b: dict[str, Any]) -> None:
    proof = _entry(b)["inclusionProof"]
    proof["logIndex"] = str(int(proof["logIndex"]) + 1)


def _tamper_checkpoint_signature(b: dict[str, Any]) -> None:
    checkpoint = _entry(b)["inclusionProof"]["checkpoint"]
    note = checkpoint["envelope"]
    checkpoint["envelope"] = note[:-10] + ("A" if note[-10] != "A" else "B") + note[-9:]


def _tamper_body(b: dict[str, Any]) -> None:
    _entry(b)["canonicalizedBody"] = _flip(_entry(b)["canonicalizedBody"])


def _tamper_log_id(b: dict[str, Any]) -> None:
    log_id = _entry(b)["logId"]
    log_id["keyId"] = _flip(log_id["keyId"])


def _drop_inclusion_proof(b: dict[str, Any]) -> None:
    # A v0.2+ bundle's entry must carry an inclusion proof (protobuf-specs; sigstore refuses
    # it: "entry must contain inclusion proof"; conformance: rekor2-no-inclusion-proof_fail,
    # intoto-missing-inclusion-proof_fail).
    del _entry(b)["inclusionProof"]


def _wrong_kind(b: dict[str, Any]) -> None:
    _entry(b)["kindVersion"]["kind"] = "dsse"


TAMPERED = {
    "signature": _tamper_signature,
    "integrated-time": _tamper_time,
    "log-index": _tamper_index,
    "signed-entry-timestamp": _tamper_set,
    "inclusion-proof-hash": _tamper_proof_hash,
    "inclusion-proof-root-hash": _tamper_root_hash,
    "inclusion-proof-index": _tamper_proof_index,
    "checkpoint-signature": _tamper_checkpoint_signature,
    "log-body": _tamper_body,
    "log-id": _tamper_log_id,
    "no-inclusion-proof": _drop_inclusion_proof,
    "entry-kind": _wrong_kind,
}


@pytest.mark.parametrize("tamper", TAMPERED)
def test_managed_key_tampered_bundle_refused(tamper):
    bundle = managed_bundle()
    TAMPERED[tamper](bundle)
    rejection(lambda: verify_managed(bundle), VerificationError)


def _root_with_log_validity(**valid_for: str | None) -> dict[str, Any]:
    """The production root, with the managed bundle's log key given other validFor bounds."""
    root = json.loads(PRODUCTION_ROOT.read_text())
    log_id = _entry(managed_bundle())["logId"]["keyId"]
    (tlog,) = [t for t in root["tlogs"] if t["logId"]["keyId"] == log_id]
    bounds = tlog["publicKey"]["validFor"]
    for end, value in valid_for.items():
        if value is None:
            bounds.pop(end, None)
        else:
            bounds[end] = value
    return root


def test_managed_key_control_root_as_mapping_verifies():
    verify_managed(managed_bundle(), root=_root_with_log_validity())


@pytest.mark.parametrize(
    "bounds",
    [
        # The entry (integrated 2025-12-18) falls after the log key's validity ended: the
        # conformance case trust-root-tlog-validity-end-inclusive exists because an entry
        # later than validFor.end must not be trusted.
        {"end": "2022-01-01T00:00:00Z"},
        # A log key that is not valid yet (sigstore-python drops such keys from its keyring).
        {"start": "2030-01-01T00:00:00Z"},
    ],
    ids=["log-key-expired-before-entry", "log-key-not-yet-valid"],
)
def test_managed_key_refused_outside_log_key_validity(bounds):
    root = _root_with_log_validity(**bounds)
    rejection(lambda: verify_managed(managed_bundle(), root=root), VerificationError)


def test_managed_key_refused_with_malformed_trusted_root():
    """Mirrors trust-root-tlog-missing-validity-start_fail for the key path."""
    root = _root_with_log_validity(start=None)
    clean_rejection(lambda: verify_managed(managed_bundle(), root=root))


# ---------------------------------------------------------------------------
# Rejections are clean: no exception other than VerificationError / InputError escapes


KEYLESS_CASES = [n for n in conformance_cases() if not n.startswith("managed-key")]


@pytest.mark.parametrize("name", KEYLESS_CASES)
def test_keyless_bundle_refused_by_the_key_verifier(name):
    """Every other conformance bundle, given to the managed key: refused, cleanly."""
    text = (BUNDLE_VERIFY / name / "bundle.sigstore.json").read_text()
    try:
        bundle: Any = json.loads(text)
    except ValueError:
        bundle = text  # bundle-malformed-json_fail: the caller passes what it read
    clean_rejection(lambda: verify_managed(bundle))


@pytest.mark.parametrize("name", ["managed-key-happy-path", "managed-key-and-trusted-root"])
def test_managed_key_bundle_refused_by_the_sigstore_verifier(name):
    case = Case.load(name)
    verifier = sigstore_verifier(BEACON_IDENTITY, GITHUB_ISSUER, case.root)
    reason = rejection(
        lambda: verifier.verify_artifact(case.artifact.read_bytes(), case.bundle_text),
        VerificationError,
    )
    assert "certificate" in reason


def _malformed(change: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    def make() -> Any:
        bundle = managed_bundle()
        replaced = change(bundle)
        return bundle if replaced is None else replaced

    return make


def _checkpoint_not_text(b: dict[str, Any]) -> None:
    _entry(b)["inclusionProof"]["checkpoint"]["envelope"] = 5


def _logged_key_not_pem(b: dict[str, Any]) -> None:
    def change(body: dict[str, Any]) -> None:
        body["spec"]["signature"]["publicKey"]["content"] = base64.b64encode(b"nope").decode()

    _set_body(b, change)


def _logged_hash_not_object(b: dict[str, Any]) -> None:
    def change(body: dict[str, Any]) -> None:
        body["spec"]["data"]["hash"] = "sha256"

    _set_body(b, change)


def _set_material(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(b: dict[str, Any]) -> None:
        b["verificationMaterial"] = value

    return change


def _set_public_key(b: dict[str, Any]) -> None:
    b["verificationMaterial"]["publicKey"] = "hint"


def _set_entries(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(b: dict[str, Any]) -> None:
        b["verificationMaterial"]["tlogEntries"] = value

    return change


MALFORMED = {
    "bundle-is-a-list": _malformed(lambda b: []),
    "bundle-is-a-string": _malformed(lambda b: "bundle"),
    "verification-material-is-a-string": _malformed(_set_material("material")),
    "public-key-is-a-string": _malformed(_set_public_key),
    "tlog-entries-is-a-string": _malformed(_set_entries("entries")),
    "tlog-entry-is-a-string": _malformed(_set_entries(["entry"])),
    "tlog-entry-is-empty": _malformed(_set_entries([{}])),
    "checkpoint-is-not-text": _malformed(_checkpoint_not_text),
    "logged-key-is-not-pem": _malformed(_logged_key_not_pem),
    "logged-hash-is-not-an-object": _malformed(_logged_hash_not_object),
    "message-signature-is-a-string": _malformed(lambda b: b.update(messageSignature="sig")),
    "dsse-envelope-is-a-string": _malformed(
        lambda b: {k: v for k, v in b.items() if k != "messageSignature"} | {"dsseEnvelope": "e"}
    ),
}


@pytest.mark.parametrize("shape", MALFORMED)
def test_key_verifier_malformed_bundle_refused_cleanly(shape):
    bundle = MALFORMED[shape]()
    clean_rejection(lambda: verify_managed(copy.deepcopy(bundle)))


def test_key_verifier_bundle_as_text_is_not_a_crash():
    """The Sigstore verifier takes a bundle's JSON text; the key verifier must not crash on it."""
    text = (MANAGED / "bundle.sigstore.json").read_text()
    try:
        verify_managed(text)
    except (VerificationError, InputError) as err:
        assert_clean(err, type(err))
    except Exception as err:
        pytest.fail(f"{type(err).__name__} escaped instead of a provenance error: {err!r}")


# -- GitHub workflow claims, on a real GitHub Actions bundle ----------------------------------

_GH_IDENTITY = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
_GH_ISSUER = "https://token.actions.githubusercontent.com"
_GH_CLAIMS = {
    "github_repository": "trailofbits/rfc8785.py",
    "github_ref": "refs/tags/v0.1.2",
    "github_workflow_name": "release",
    "github_trigger": "release",
    "github_sha": "d8b4a6445f38c48b9137a8099706d9b8073146e4",
}


def _github_bundle():
    folder = FIXTURES / "sigstore-python-assets"
    artifact = (folder / "bundle_v3_github.whl").read_bytes()
    bundle = json.loads((folder / "bundle_v3_github.whl.sigstore").read_text())
    root = load_trusted_root(FIXTURES / "trust-roots" / "production" / "trusted_root.json")
    return artifact, bundle, root


def test_github_workflow_claims_all_hold():
    artifact, bundle, root = _github_bundle()
    policy = identity_policy(identity=_GH_IDENTITY, issuer=_GH_ISSUER, **_GH_CLAIMS)
    SigstoreVerifier(policy, root).verify_artifact(artifact, bundle)


@pytest.mark.parametrize(
    ("claim", "wrong"),
    [
        ("github_repository", "attacker/rfc8785.py"),
        ("github_ref", "refs/heads/main"),
        ("github_workflow_name", "nightly"),
        ("github_trigger", "pull_request"),
        ("github_sha", "0" * 40),
    ],
)
def test_github_workflow_claim_mismatch_fails(claim, wrong):
    artifact, bundle, root = _github_bundle()
    policy = identity_policy(
        identity_regexp=r"https://github\.com/trailofbits/.*",
        issuer=_GH_ISSUER,
        **{**_GH_CLAIMS, claim: wrong},
    )
    with pytest.raises(VerificationError) as e:
        SigstoreVerifier(policy, root).verify_artifact(artifact, bundle)
    assert "\n" not in str(e.value)
