"""Policy evaluation: every rule allows what it should and denies what it should.

Real models signed for real (keys, a test CA, keyless through the local
Sigstore), real co-signatures and attestations made with the CLI, then
changed or damaged on disk. Each denial is checked by the reason code and
the rule it names, not by the verdict alone, so a test fails if the wrong
rule fired. The CLI, the audit log and the example policies are in
``test_policy_cli.py``.

Expensive things (keyless signing, signed models, the PKI) are made once per
session; a test that changes a model works on its own copy.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import pickle
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import KeyPair, Pki, make_model, run_cli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import provenance
from provenance import policy, signing
from provenance.bundle import Bundle
from provenance.policy import Decision, Reason
from provenance.signing import CertificateSigner, KeySigner

ALICE = "alice@example.com"
BUILDER = "https://ci.example.com/training"
UTC = datetime.timezone.utc

# ---------------------------------------------------------------- helpers


def fingerprint(key: KeyPair) -> str:
    fp = KeySigner.from_file(key.private).describe().key_fingerprint
    assert fp is not None
    return fp


def bundle_fingerprint(model: Path) -> str:
    """The fingerprint of the key that signed ``model/model.sig`` (its certificate's)."""
    fp = signing.describe_bundle(Bundle.read(model / "model.sig")).key_fingerprint
    assert fp is not None
    return fp


def write_policy(folder: Path, spec: dict[str, Any], name: str = "policy.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def decide(folder: Path, spec: dict[str, Any], model: Path, **kw: Any) -> Decision:
    """Write ``spec`` as a policy file in ``folder``, load it, evaluate ``model``."""
    return policy.evaluate(policy.load(write_policy(folder, spec)), model, **kw)


def shown(d: Decision) -> str:
    return "\n".join(f"{r.severity} {r.code} [{r.rule}] {r.message}" for r in d.reasons)


def assert_allowed(d: Decision) -> Decision:
    assert d.allowed and d.passed, f"denied:\n{shown(d)}"
    assert not d.errors, shown(d)
    return d


def reason(d: Decision, code: str, rule: str, severity: str = "error") -> Reason:
    """The one reason with this code, rule and severity (the test fails if it is absent)."""
    found = [r for r in d.reasons if (r.code, r.rule, r.severity) == (code, rule, severity)]
    assert found, f"no {severity} {code} [{rule}] among:\n{shown(d)}"
    return found[0]


def assert_denied(d: Decision, code: str, rule: str, *words: str) -> Reason:
    assert not d.allowed and not d.passed, f"allowed:\n{shown(d)}"
    r = reason(d, code, rule)
    for w in words:
        assert w in r.message, f"{w!r} not in {r.message!r}"
    return r


def error_codes(d: Decision) -> set[tuple[str, str]]:
    return {(r.code, r.rule) for r in d.errors}


def held(d: Decision, rule: str) -> bool:
    found = [r.held for r in d.rules if r.rule == rule]
    assert len(found) == 1, f"rule {rule} listed {len(found)} times: {d.rules}"
    return found[0]


def key_signer(key: KeyPair, **more: Any) -> dict[str, Any]:
    return {"key": str(key.public), **more}


def sign(model: Path, key: KeyPair, **kw: Any) -> provenance.SignResult:
    return provenance.sign(model, KeySigner.from_file(key.private), **kw)


def copy(model: Path, dst: Path) -> Path:
    return Path(shutil.copytree(model, dst, symlinks=True))


def attest_cli(kind: str, model: Path, key: KeyPair, output: Path, *args: str | Path) -> None:
    result = run_cli("attest", kind, model, "--key", key.private, "--output", output, *args)
    assert result.exit_code == 0, result.output


def flip_signature(bundle: Path) -> None:
    """Keep the bundle well formed, break its signature."""
    data = json.loads(bundle.read_bytes())
    sig = data["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[-1] ^= 0x01
    sig["sig"] = base64.b64encode(bytes(raw)).decode()
    bundle.write_text(json.dumps(data))


# ---------------------------------------------------------------- session fixtures


@pytest.fixture(scope="session")
def release(p256: KeyPair) -> KeyPair:
    return p256


@pytest.fixture(scope="session")
def stranger(other_key: KeyPair) -> KeyPair:
    return other_key


@dataclass(frozen=True)
class Signed:
    model: Path
    root: str


@pytest.fixture(scope="session")
def signed(tmp_path_factory: pytest.TempPathFactory, release: KeyPair) -> Signed:
    """A model signed by the release key (never changed: copy it to change it)."""
    model = make_model(tmp_path_factory.mktemp("signed") / "model")
    result = sign(model, release)
    return Signed(model, result.manifest.root_digest)


@pytest.fixture(scope="session")
def by_stranger(tmp_path_factory: pytest.TempPathFactory, stranger: KeyPair) -> Path:
    model = make_model(tmp_path_factory.mktemp("stranger") / "model")
    sign(model, stranger)
    return model


# -- certificates


@dataclass(frozen=True)
class Leaf:
    cert: x509.Certificate
    cert_path: Path
    model: Path  # a model signed with this leaf (and the intermediate in the bundle)


def issue_leaf(
    pki: Pki,
    folder: Path,
    name: str,
    *,
    eku: list[x509.ObjectIdentifier] | None,
    email: str | None = "release@example.com",
    uri: str | None = "https://example.com/release",
    key: Any = None,
) -> Leaf:
    """A leaf under the test CA's intermediate (for ``key``, else a new one), and a model
    signed with it."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                ]
            )
        )
        .issuer_name(pki.intermediate_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    sans: list[x509.GeneralName] = []
    if email:
        sans.append(x509.RFC822Name(email))
    if uri:
        sans.append(x509.UniformResourceIdentifier(uri))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    cert = builder.sign(pki.intermediate_key, hashes.SHA256())  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    cert_path = folder / f"{name}.pem"
    key_path = folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    model = make_model(folder / f"{name}-model")
    signer = CertificateSigner.from_files(
        KeySigner.from_file(key_path), cert_path, [pki.intermediate]
    )
    provenance.sign(model, signer)
    return Leaf(cert, cert_path, model)


@pytest.fixture(scope="session")
def code_leaf(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Leaf:
    """Subject CN=Release,O=Example, e-mail and URI SANs, EKU codeSigning."""
    return issue_leaf(
        pki, tmp_path_factory.mktemp("leaf"), "Release", eku=[ExtendedKeyUsageOID.CODE_SIGNING]
    )


@pytest.fixture(scope="session")
def no_eku_leaf(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Leaf:
    """Key usage digitalSignature, no extended key usage at all (a chain verifier takes it)."""
    return issue_leaf(pki, tmp_path_factory.mktemp("leaf-no-eku"), "Plain", eku=None)


def cert_rule(pki: Pki, **constraints: Any) -> dict[str, Any]:
    return {"certificate": {"roots": [str(pki.root)], **constraints}}


# -- keyless


@dataclass(frozen=True)
class Keyless:
    model: Path
    root: str
    issuer: str
    trusted_root: Path
    trust_config: Path
    signed_at: datetime.datetime


@pytest.fixture(scope="session")
def keyless(local_sigstore: Any, tmp_path_factory: pytest.TempPathFactory) -> Keyless:
    """A model signed keyless as alice through the local Sigstore (Rekor v1)."""
    model = make_model(tmp_path_factory.mktemp("keyless") / "model")
    token = signing.get_identity_token(local_sigstore.mint_token(ALICE), interactive=False)
    config = signing.load_trust_config(local_sigstore.trust_config_path)
    result = provenance.sign(model, signing.SigstoreSigner(token, config))
    info = signing.describe_bundle(result.bundle)
    assert info.signed_at, info
    when = datetime.datetime.fromisoformat(info.signed_at.replace("Z", "+00:00"))
    return Keyless(
        model,
        result.manifest.root_digest,
        local_sigstore.issuer,
        local_sigstore.trusted_root_path,
        local_sigstore.trust_config_path,
        when,
    )


def sigstore_rule(k: Keyless, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "identity": ALICE,
        "issuer": k.issuer,
        "trust": {"trusted_root": str(k.trusted_root)},
    }
    spec.update(over)
    return {"sigstore": {k: v for k, v in spec.items() if v is not None}}


def _stamp(t: datetime.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ================================================================ signers: plain keys


def test_key_file_signer_allows_its_key(tmp_path, signed, release):
    d = assert_allowed(
        decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, signed.model)
    )
    assert [s.key_fingerprint for s in d.signers] == [fingerprint(release)]
    assert d.root_digest == signed.root
    assert held(d, "signers") and held(d, "files")


def test_key_file_signer_denies_another_key(tmp_path, by_stranger, release, stranger):
    d = decide(
        tmp_path, {"version": 1, "signers": [key_signer(release, name="release")]}, by_stranger
    )
    assert_denied(d, "threshold-not-met", "signers", "needs a trusted signature", "it has 0")
    # The bundle itself is named, with why the rule did not take it.
    untrusted = reason(d, "signer-untrusted", "signers", "warning")
    assert untrusted.subject == str(by_stranger / "model.sig")
    assert "release:" in untrusted.message
    assert d.signers == () and d.manifest is None and d.root_digest is None
    assert not held(d, "signers")


def test_inline_pem_key(tmp_path, signed, release, stranger):
    inline = {"version": 1, "signers": [{"key": release.public.read_text()}]}
    assert_allowed(decide(tmp_path, inline, signed.model))
    other = {"version": 1, "signers": [{"key": stranger.public.read_text()}]}
    assert_denied(decide(tmp_path, other, signed.model), "threshold-not-met", "signers")


def test_a_signer_not_in_the_policy_is_denied_whatever_else_is_listed(
    tmp_path, signed, p384, ed25519_key
):
    spec = {"version": 1, "signers": [key_signer(p384), key_signer(ed25519_key)]}
    d = decide(tmp_path, spec, signed.model)
    assert_denied(d, "threshold-not-met", "signers", "it has 0 (nobody the policy trusts)")
    assert "(and 1 more)" in reason(d, "signer-untrusted", "signers", "warning").message


def test_missing_signature_is_denied(tmp_path, release):
    model = make_model(tmp_path / "unsigned")
    d = decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, model)
    assert_denied(d, "threshold-not-met", "signers")
    assert reason(d, "signature-missing", "signers", "warning").subject == str(model / "model.sig")


def test_damaged_primary_signature_is_an_error(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "model.sig").write_bytes(b"{ not a bundle")
    d = decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, model)
    assert_denied(d, "signature-unreadable", "signers")
    assert_denied(d, "threshold-not-met", "signers")


# ================================================================ signers: fingerprints


def test_fingerprint_matches_a_certificate_leaf_key(tmp_path, code_leaf):
    leaf_fp = bundle_fingerprint(code_leaf.model)
    spec = {"version": 1, "signers": [{"fingerprint": f"sha256:{leaf_fp}"}]}
    d = assert_allowed(decide(tmp_path, spec, code_leaf.model))
    assert d.signers[0].key_fingerprint == leaf_fp

    wrong = {"version": 1, "signers": [{"fingerprint": "ab" * 32}]}
    d = decide(tmp_path, wrong, code_leaf.model)
    assert_denied(d, "threshold-not-met", "signers")
    assert (
        f"signed by key {leaf_fp[:16]}, not abababab"
        in reason(d, "signer-untrusted", "signers", "warning").message
    )


def test_fingerprint_of_a_plain_key_needs_the_key_itself(tmp_path, signed, release, stranger):
    fp = fingerprint(release)
    with_key = {"version": 1, "signers": [{"fingerprint": fp, "keys": [str(release.public)]}]}
    d = assert_allowed(decide(tmp_path, with_key, signed.model))
    assert d.signers[0].key_fingerprint == fp

    # The bundle names its key only by a hint: the hint alone is not trust.
    alone = {"version": 1, "signers": [{"fingerprint": fp}]}
    d = decide(tmp_path, alone, signed.model)
    assert_denied(d, "threshold-not-met", "signers")
    assert "under `keys`" in reason(d, "signer-untrusted", "signers", "warning").message

    other = {
        "version": 1,
        "signers": [{"fingerprint": fingerprint(stranger), "keys": [str(stranger.public)]}],
    }
    assert_denied(decide(tmp_path, other, signed.model), "threshold-not-met", "signers")


def test_fingerprint_does_not_take_a_forged_hint(tmp_path, by_stranger, release):
    """A bundle by another key that claims the release key's fingerprint as its hint."""
    model = copy(by_stranger, tmp_path / "m")
    data = json.loads((model / "model.sig").read_bytes())
    data["verificationMaterial"]["publicKey"]["hint"] = fingerprint(release)
    (model / "model.sig").write_text(json.dumps(data))
    spec = {
        "version": 1,
        "signers": [{"fingerprint": fingerprint(release), "keys": [str(release.public)]}],
    }
    assert_denied(decide(tmp_path, spec, model), "threshold-not-met", "signers")


# ================================================================ signers: certificate chains


def test_certificate_chain_to_the_test_ca(tmp_path, pki, code_leaf, by_stranger):
    d = assert_allowed(
        decide(tmp_path, {"version": 1, "signers": [cert_rule(pki)]}, code_leaf.model)
    )
    assert d.signers[0].kind == "certificate"
    assert d.signers[0].certificate_subject == "O=Example,CN=Release"
    # A plain-key bundle is not a certificate.
    d = decide(tmp_path, {"version": 1, "signers": [cert_rule(pki)]}, by_stranger)
    assert_denied(d, "threshold-not-met", "signers")
    assert "signs with a plain key" in reason(d, "signer-untrusted", "signers", "warning").message


def test_certificate_under_another_root_is_denied(tmp_path, code_leaf):
    other_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Root")])
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(other_key, hashes.SHA256())
    )
    root = tmp_path / "other-root.pem"
    root.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    spec = {"version": 1, "signers": [{"certificate": {"roots": [str(root)]}}]}
    assert_denied(decide(tmp_path, spec, code_leaf.model), "threshold-not-met", "signers")


@pytest.mark.parametrize(
    ("constraints", "ok"),
    [
        ({"subject": "O=Example,CN=Release"}, True),
        ({"subject": "CN=Release"}, False),
        ({"subject_regexp": r".*CN=Rel\w+"}, True),
        ({"subject_regexp": r"CN=Release"}, False),  # a full match, not a search
        ({"email": "release@example.com"}, True),
        ({"email": "mallory@example.com"}, False),
        ({"email_regexp": r"[a-z]+@example\.com"}, True),
        ({"email_regexp": r".*@example\.org"}, False),
        ({"uri": "https://example.com/release"}, True),
        ({"uri": "https://example.com/other"}, False),
        ({"uri_regexp": r"https://example\.com/.*"}, True),
        ({"uri_regexp": r"https://evil\.example/.*"}, False),
        ({"eku": ["codeSigning"]}, True),
        ({"eku": ["1.3.6.1.5.5.7.3.3"]}, True),
        ({"eku": ["codeSigning", "emailProtection"]}, False),
        ({"email": "release@example.com", "uri": "https://example.com/other"}, False),
    ],
    ids=lambda v: repr(v) if not isinstance(v, bool) else ("allow" if v else "deny"),
)
def test_certificate_leaf_constraints(tmp_path, pki, code_leaf, constraints, ok):
    spec = {"version": 1, "signers": [cert_rule(pki, **constraints)]}
    d = decide(tmp_path, spec, code_leaf.model)
    if ok:
        assert_allowed(d)
        return
    assert_denied(d, "threshold-not-met", "signers")
    why = reason(d, "signer-untrusted", "signers", "warning").message
    key = list(constraints)[-1].split("_")[0]  # the last constraint is the one that fails
    words = {
        "subject": "certificate subject O=Example,CN=Release is not",
        "email": "certificate e-mail release@example.com is not",
        "uri": "certificate URI https://example.com/release is not",
        "eku": "lacks the extended key usage 1.3.6.1.5.5.7.3.4",
    }
    assert words[key] in why, why


def test_eku_absent_from_the_leaf_is_denied(tmp_path, pki, no_eku_leaf):
    assert_allowed(decide(tmp_path, {"version": 1, "signers": [cert_rule(pki)]}, no_eku_leaf.model))
    spec = {"version": 1, "signers": [cert_rule(pki, eku=["codeSigning"])]}
    d = decide(tmp_path, spec, no_eku_leaf.model)
    assert_denied(d, "threshold-not-met", "signers")
    assert (
        "lacks the extended key usage 1.3.6.1.5.5.7.3.3"
        in reason(d, "signer-untrusted", "signers", "warning").message
    )


def test_certificate_intermediates_from_the_policy(tmp_path, pki, code_leaf):
    """A bundle without its intermediate chains through the one the policy gives."""
    model = copy(code_leaf.model, tmp_path / "m")
    data = json.loads((model / "model.sig").read_bytes())
    chain = data["verificationMaterial"]["x509CertificateChain"]["certificates"]
    assert len(chain) == 2
    del chain[1:]
    (model / "model.sig").write_text(json.dumps(data))
    assert base64.b64decode(chain[0]["rawBytes"]) == code_leaf.cert.public_bytes(
        serialization.Encoding.DER
    )
    assert_denied(
        decide(tmp_path, {"version": 1, "signers": [cert_rule(pki)]}, model),
        "threshold-not-met",
        "signers",
    )
    spec = {"version": 1, "signers": [cert_rule(pki, intermediates=[str(pki.intermediate)])]}
    assert_allowed(decide(tmp_path, spec, model))


# ================================================================ signers: keyless


@pytest.mark.parametrize(
    ("over", "ok", "word"),
    [
        ({}, True, None),
        ({"identity": None, "identity_regexp": r"[a-z]+@example\.com"}, True, None),
        ({"identity": None, "identity_regexp": r"alice"}, False, "alice"),
        ({"identity": "mallory@example.com"}, False, "mallory@example.com"),
        ({"issuer": "https://accounts.google.com"}, False, "https://accounts.google.com"),
    ],
    ids=["exact", "regexp", "regexp-is-a-full-match", "other-identity", "other-issuer"],
)
def test_keyless_identity_and_issuer(tmp_path, keyless, over, ok, word):
    d = decide(tmp_path, {"version": 1, "signers": [sigstore_rule(keyless, **over)]}, keyless.model)
    if ok:
        assert_allowed(d)
        s = d.signers[0]
        assert (s.kind, s.identity, s.issuer) == ("keyless", ALICE, keyless.issuer)
        assert d.root_digest == keyless.root
        return
    assert_denied(d, "threshold-not-met", "signers")
    assert word in reason(d, "signer-untrusted", "signers", "warning").message


def test_keyless_trust_config_file(tmp_path, keyless):
    rule = sigstore_rule(keyless, trust={"trust_config": str(keyless.trust_config)})
    assert_allowed(decide(tmp_path, {"version": 1, "signers": [rule]}, keyless.model))


def test_keyless_against_another_trusted_root_is_denied(tmp_path, keyless):
    from conftest import FIXTURES

    production = FIXTURES / "trust-roots" / "production" / "trusted_root.json"
    if not production.is_file():
        pytest.skip(f"{production} not found")
    rule = sigstore_rule(keyless, trust={"trusted_root": str(production)})
    assert_denied(
        decide(tmp_path, {"version": 1, "signers": [rule]}, keyless.model),
        "threshold-not-met",
        "signers",
    )


def test_keyless_bundle_is_not_a_key(tmp_path, keyless, release):
    d = decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, keyless.model)
    assert_denied(d, "threshold-not-met", "signers")
    assert "Sigstore identity" in reason(d, "signer-untrusted", "signers", "warning").message


# ================================================================ threshold (k of n)


@pytest.fixture(scope="session")
def three(release: KeyPair, p384: KeyPair, ed25519_key: KeyPair) -> list[KeyPair]:
    return [release, p384, ed25519_key]


def two_of_three(three: list[KeyPair]) -> dict[str, Any]:
    return {
        "version": 1,
        "threshold": 2,
        "signers": [
            key_signer(k, name=n) for k, n in zip(three, ("alice", "bob", "carol"), strict=True)
        ],
    }


def test_threshold_k_distinct_signatures_allowed(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    sign(model, three[1], cosign=True)
    d = assert_allowed(decide(tmp_path, two_of_three(three), model))
    assert {s.key_fingerprint for s in d.signers} == {fingerprint(k) for k in three[:2]}
    assert held(d, "threshold")
    # All three: still allowed, three counted.
    sign(model, three[2], cosign=True)
    d = assert_allowed(decide(tmp_path, two_of_three(three), model))
    assert len(d.signers) == 3


def test_threshold_k_minus_one_denied(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "2 distinct trusted signers", "it has 1")
    assert not held(d, "threshold")


def test_threshold_untrusted_cosigner_does_not_count(tmp_path, three, stranger):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    sign(model, stranger, cosign=True)
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    untrusted = reason(d, "signer-untrusted", "signers", "warning")
    assert untrusted.subject and untrusted.subject.startswith(str(model / "model.sig.d"))


def test_threshold_same_signer_twice_counts_once(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    sign(model, three[0], cosign="again")  # the same key, its own bundle
    assert (model / "model.sig.d" / "again.sig").is_file()
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    assert len(d.signers) == 1


def test_threshold_one_key_as_a_plain_key_and_in_a_certificate_counts_once(tmp_path, three, pki):
    """A certificate for the release key is still the release key: one signer."""
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    key = serialization.load_pem_private_key(three[0].private.read_bytes(), None)
    leaf = issue_leaf(pki, tmp_path / "pki", "Alice", eku=None, key=key)
    signer = CertificateSigner.from_files(
        KeySigner.from_file(three[0].private), leaf.cert_path, [pki.intermediate]
    )
    provenance.sign(model, signer, cosign=True)
    spec = {
        "version": 1,
        "threshold": 2,
        "signers": [key_signer(three[0]), cert_rule(pki), key_signer(three[1])],
    }
    d = decide(tmp_path, spec, model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    assert len(d.signers) == 1
    # Both bundles verified (by different rules) and cover the same statement.
    assert {r.code for r in d.reasons} == {"threshold-not-met"}, shown(d)


def test_threshold_cosignature_over_another_statement_does_not_count(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    (model / "config.json").write_text('{"hidden_size": 16}\n')  # the model changed ...
    result = sign(model, three[1], cosign=True)  # ... then was co-signed
    assert result.warnings  # sign said the co-signature covers another statement
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    other = reason(d, "signature-other-statement", "threshold", "warning")
    assert other.subject == str(result.signature_path)
    assert [s.key_fingerprint for s in d.signers] == [fingerprint(three[0])]
    assert d.manifest is None  # too few signers: nothing vouches for the files


def test_threshold_follows_the_statement_most_signers_signed(tmp_path, three):
    """Two co-signatures over the changed model outvote the primary over the old one."""
    model = make_model(tmp_path / "m")
    primary = sign(model, three[0])
    (model / "config.json").write_text('{"hidden_size": 16}\n')
    a = sign(model, three[1], cosign=True)
    sign(model, three[2], cosign=True)
    d = assert_allowed(decide(tmp_path, two_of_three(three), model))
    assert d.root_digest == a.manifest.root_digest != primary.manifest.root_digest
    assert {s.key_fingerprint for s in d.signers} == {fingerprint(k) for k in three[1:]}
    other = reason(d, "signature-other-statement", "threshold", "warning")
    assert other.subject == str(model / "model.sig")


def test_threshold_damaged_cosignature_reported_and_not_counted(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    folder = model / "model.sig.d"
    folder.mkdir()
    (folder / "broken.sig").write_bytes(b'{"mediaType": "truncated')
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    broken = reason(d, "signature-unreadable", "signers", "warning")
    assert broken.subject == str(folder / "broken.sig")

    # With the threshold met by others, the damaged one is only reported.
    sign(model, three[1], cosign=True)
    d = assert_allowed(decide(tmp_path, two_of_three(three), model))
    assert reason(d, "signature-unreadable", "signers", "warning").subject == str(
        folder / "broken.sig"
    )
    assert len(d.signers) == 2


def test_threshold_cosignature_with_a_broken_signature_not_counted(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    bob = sign(model, three[1], cosign=True)
    flip_signature(bob.signature_path)
    d = decide(tmp_path, two_of_three(three), model)
    assert_denied(d, "threshold-not-met", "threshold", "it has 1")
    assert reason(d, "signer-untrusted", "signers", "warning").subject == str(bob.signature_path)


def test_threshold_signature_path_elsewhere(tmp_path, three):
    """--signature outside the model: its co-signatures are in <signature>.d."""
    model = make_model(tmp_path / "m")
    sig = tmp_path / "sigs" / "release.sig"
    sig.parent.mkdir()
    sign(model, three[0], signature_path=sig)
    sign(model, three[2], signature_path=sig, cosign=True)
    assert (tmp_path / "sigs" / "release.sig.d").is_dir()
    assert_allowed(decide(tmp_path, two_of_three(three), model, signature_path=sig))


# ================================================================ attestation signers


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, signed: Signed, release: KeyPair, p384: KeyPair
) -> dict[str, Path]:
    """Training attestations about the signed model, one file per signer."""
    folder = tmp_path_factory.mktemp("trained")
    out = {}
    for name, key in (("release", release), ("p384", p384)):
        path = folder / f"{name}.intoto.jsonl"
        attest_cli("training", signed.model, key, path, "--builder-id", BUILDER)
        out[name] = path
    return out


def test_attestation_signed_by_a_model_signer_but_not_an_attestation_signer(
    tmp_path, signed, release, p384, trained
):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestation_signers": [key_signer(p384, name="training team")],
        "attestations": [{"type": "training"}],
    }
    d = decide(tmp_path, spec, signed.model, attestations_path=trained["release"])
    # Not verified by anyone who may sign attestations, so of no type anyone vouches for.
    r = assert_denied(d, "attestation-missing", "attestations[0]", "1 line(s) do not verify")
    assert "line 1: signature: no signer the policy trusts" in r.message
    assert held(d, "signers") and not held(d, "attestations[0]")

    d = assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=trained["p384"]))
    assert held(d, "attestations[0]")
    assert [a.predicate_type for a in d.attestations] == ["https://slsa.dev/provenance/v1"]


def test_attestation_signers_default_to_the_signers(tmp_path, signed, release, trained):
    spec = {"version": 1, "signers": [key_signer(release)], "attestations": [{"type": "slsa"}]}
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=trained["release"]))
    d = decide(tmp_path, spec, signed.model, attestations_path=trained["p384"])
    assert_denied(d, "attestation-missing", "attestations[0]", "line 1: signature:")


def test_attestation_rule_signers_override(tmp_path, signed, release, p384, ed25519_key, trained):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestation_signers": [key_signer(p384)],
        "attestations": [{"type": "training", "signers": [key_signer(ed25519_key)]}],
    }
    # Signed by a general attestation signer, but this rule names its own.
    d = decide(tmp_path, spec, signed.model, attestations_path=trained["p384"])
    assert_denied(
        d, "attestation-unsatisfied", "attestations[0]", "who may not sign this attestation"
    )
    own = tmp_path / "own.intoto.jsonl"
    attest_cli("training", signed.model, ed25519_key, own, "--builder-id", BUILDER)
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=own))


def test_attestation_about_another_model_does_not_count(tmp_path, signed, by_stranger, release):
    other = tmp_path / "other.intoto.jsonl"
    attest_cli("training", by_stranger, release, other, "--builder-id", BUILDER)
    spec = {"version": 1, "signers": [key_signer(release)], "attestations": [{"type": "training"}]}
    d = decide(tmp_path, spec, signed.model, attestations_path=other)
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "another model")


def test_attestation_by_a_revoked_attestation_signer(tmp_path, signed, release, p384, trained):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestation_signers": [key_signer(p384)],
        "attestations": [{"type": "training"}],
        "revocations": {"keys": [{"fingerprint": fingerprint(p384), "reason": "INC-7"}]},
    }
    d = decide(tmp_path, spec, signed.model, attestations_path=trained["p384"])
    assert_denied(d, "revoked-key", "revocations.keys[0]", "attestation line 1", "INC-7")
    assert_denied(d, "attestation-missing", "attestations[0]")


# ================================================================ attestations and predicates


def test_required_attestation_type_missing(tmp_path, signed, release, trained):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "training"}, {"type": "evaluation"}],
    }
    d = decide(tmp_path, spec, signed.model, attestations_path=trained["release"])
    assert_denied(d, "attestation-missing", "attestations[1]", "no verified evaluation attestation")
    assert held(d, "attestations[0]") and not held(d, "attestations[1]")
    assert error_codes(d) == {("attestation-missing", "attestations[1]")}


def test_no_attestations_file_at_all(tmp_path, signed, release):
    spec = {"version": 1, "signers": [key_signer(release)], "attestations": [{"type": "training"}]}
    d = decide(tmp_path, spec, signed.model)
    r = assert_denied(d, "attestations-unreadable", "attestations", "no attestations at")
    assert str(signed.model / "model.intoto.jsonl") in r.message
    assert error_codes(d) == {("attestations-unreadable", "attestations")}
    assert not held(d, "attestations[0]")


def test_predicate_schema_builder_id_in_a_list(tmp_path, signed, release):
    good = tmp_path / "good.jsonl"
    attest_cli("training", signed.model, release, good, "--builder-id", BUILDER)
    bad = tmp_path / "bad.jsonl"
    attest_cli("training", signed.model, release, bad, "--builder-id", "https://laptop.example")
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [
            {
                "type": "training",
                "predicate": {
                    "properties": {
                        "runDetails": {
                            "properties": {
                                "builder": {
                                    "properties": {"id": {"enum": [BUILDER, "https://ci2.example"]}}
                                }
                            }
                        }
                    }
                },
            }
        ],
    }
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=good))
    d = decide(tmp_path, spec, signed.model, attestations_path=bad)
    assert_denied(
        d, "attestation-unsatisfied", "attestations[0]", "predicate.runDetails.builder.id"
    )


@pytest.fixture(scope="session")
def datasets(
    tmp_path_factory: pytest.TempPathFactory, signed: Signed, release: KeyPair
) -> dict[str, Path]:
    """Dataset attestations (``attest dataset``) about the signed model, by licence."""
    folder = tmp_path_factory.mktemp("dataset-att")
    out = {}
    for lic in ("CC-BY-4.0", "GPL-3.0-only"):
        path = folder / f"{lic}.jsonl"
        attest_cli(
            "dataset",
            signed.model,
            release,
            path,
            "--license",
            lic,
            "--source-uri",
            "https://d.example",
        )
        out[lic] = path
    return out


def test_predicate_schema_dataset_licence_allowlist(tmp_path, signed, release, datasets):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [
            {
                "type": "dataset",
                "predicate": {
                    "properties": {"license": {"enum": ["CC-BY-4.0", "CC0-1.0", "Apache-2.0"]}},
                    "required": ["license"],
                },
            }
        ],
    }
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=datasets["CC-BY-4.0"]))
    d = decide(tmp_path, spec, signed.model, attestations_path=datasets["GPL-3.0-only"])
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "predicate.license", "GPL-3.0")


@pytest.fixture(scope="session")
def evaluations(
    tmp_path_factory: pytest.TempPathFactory, signed: Signed, release: KeyPair
) -> dict[str, Path]:
    """``attest eval --metric accuracy=V --threshold 'accuracy>=0.9'`` for 0.85 and 0.95."""
    folder = tmp_path_factory.mktemp("eval-att")
    out = {}
    for value in ("0.85", "0.9", "0.95"):
        path = folder / f"{value}.jsonl"
        attest_cli(
            "eval",
            signed.model,
            release,
            path,
            "--metric",
            f"accuracy={value}",
            "--metric",
            "f1=0.5",
            "--threshold",
            "accuracy>=0.9",
        )
        out[value] = path
    return out


def test_predicate_schema_metric_at_or_above(tmp_path, signed, release, evaluations):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [
            {
                "type": "evaluation",
                "predicate": {
                    "properties": {
                        "metrics": {
                            "contains": {
                                "properties": {
                                    "name": {"const": "accuracy"},
                                    "value": {"minimum": 0.9},
                                },
                            }
                        }
                    }
                },
            }
        ],
    }
    for value in ("0.9", "0.95"):  # at and above
        assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=evaluations[value]))
    d = decide(tmp_path, spec, signed.model, attestations_path=evaluations["0.85"])
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "predicate.metrics")


def test_thresholds_enforce(tmp_path, signed, release, evaluations):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "evaluation", "thresholds": "enforce"}],
    }
    d = decide(tmp_path, spec, signed.model, attestations_path=evaluations["0.85"])
    assert_denied(
        d,
        "attestation-unsatisfied",
        "attestations[0]",
        "metric accuracy = 0.85 fails its threshold >=0.9",
    )
    for value in ("0.9", "0.95"):
        assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=evaluations[value]))
    # Without `thresholds: enforce` the recorded threshold is not held against it.
    spec["attestations"] = [{"type": "evaluation"}]
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=evaluations["0.85"]))


def test_one_good_attestation_among_bad_ones_satisfies(tmp_path, signed, release, evaluations):
    both = tmp_path / "both.jsonl"
    both.write_bytes(evaluations["0.85"].read_bytes() + evaluations["0.95"].read_bytes())
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "evaluation", "thresholds": "enforce"}],
    }
    d = assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=both))
    assert [a.line for a in d.attestations] == [2]


def test_attestation_statement_cosigned_by_the_rule_signer(tmp_path, signed, release, p384):
    """The same statement signed again by another key, on its own line: the rule accepts
    the second signer though the first may not sign it."""
    path = tmp_path / "cosigned.jsonl"
    attest_cli("training", signed.model, release, path, "--builder-id", BUILDER)
    first = json.loads(path.read_text().splitlines()[0])
    payload = base64.b64decode(first["dsseEnvelope"]["payload"])
    again = KeySigner.from_file(p384.private).sign(payload)
    with path.open("ab") as f:
        f.write(json.dumps(json.loads(again.to_bytes())).encode() + b"\n")
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "training", "signers": [key_signer(p384)]}],
    }
    d = assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=path))
    assert [a.line for a in d.attestations] == [2]
    # Without the second signature, the first signer alone does not satisfy the rule.
    path.write_text(path.read_text().splitlines()[0] + "\n")
    d = decide(tmp_path, spec, signed.model, attestations_path=path)
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "may not sign")


# ================================================================ lineage


@dataclass(frozen=True)
class Family:
    """base (signed by the foundation key) <- tuned (signed by release, trained from base)."""

    base: Path
    base_root: str
    tuned: Path
    tuned_root: str
    folder: Path


def make_family(folder: Path, foundation: KeyPair, release: KeyPair, *data: str) -> Family:
    base = make_model(folder / "base")
    base_root = sign(base, foundation).manifest.root_digest
    tuned = make_model(folder / "tuned")
    tuned_root = sign(tuned, release).manifest.root_digest
    extra: list[str] = []
    for d in data:
        extra += ["--dataset", d]
    result = run_cli(
        "attest",
        "training",
        tuned,
        "--key",
        release.private,
        "--base-model",
        base,
        "--builder-id",
        BUILDER,
        *extra,
    )
    assert result.exit_code == 0, result.output
    return Family(base, base_root, tuned, tuned_root, folder)


DATA_URI = "https://data.example.com/corpus-v2"
DATA_DIGEST = "5e" * 32


@pytest.fixture(scope="session")
def family(tmp_path_factory: pytest.TempPathFactory, p384: KeyPair, release: KeyPair) -> Family:
    return make_family(
        tmp_path_factory.mktemp("family"), p384, release, f"{DATA_URI}@sha256:{DATA_DIGEST}"
    )


def lineage_policy(release: KeyPair, lineage: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"version": 1, "signers": [key_signer(release)], "lineage": lineage, **more}


def test_lineage_base_model_allowed_by_digest(tmp_path, family, release):
    spec = lineage_policy(release, {"base_models": {"digests": [f"sha256:{family.base_root}"]}})
    d = assert_allowed(decide(tmp_path, spec, family.tuned))
    [base] = d.lineage
    assert (base.role, base.digest, base.allowed, base.how) == (
        "base-model",
        family.base_root,
        True,
        "digest listed",
    )
    assert held(d, "lineage.base_models")


def test_lineage_base_model_not_listed_denied(tmp_path, family, release):
    spec = lineage_policy(release, {"base_models": {"digests": ["ab" * 32]}})
    d = decide(tmp_path, spec, family.tuned)
    r = assert_denied(d, "lineage-denied", "lineage.base_models", "neither its digest nor its URI")
    assert r.subject == "base"
    assert [x.allowed for x in d.lineage] == [False]
    assert not held(d, "lineage.base_models")


def test_lineage_nested_policy_file(tmp_path, family, release, p384, stranger):
    write_policy(tmp_path, {"version": 1, "signers": [key_signer(p384)]}, "base.yaml")
    spec = lineage_policy(release, {"base_models": {"policy": "base.yaml"}})
    d = assert_allowed(decide(tmp_path, spec, family.tuned))
    [base] = d.lineage
    assert base.how == "policy" and base.decision is not None and base.decision.allowed
    assert base.decision.root_digest == family.base_root

    write_policy(tmp_path, {"version": 1, "signers": [key_signer(stranger)]}, "base.yaml")
    d = decide(tmp_path, spec, family.tuned)
    assert_denied(d, "lineage-denied", "lineage.base_models", "base.yaml denies it")
    [base] = d.lineage
    assert base.decision is not None and not base.decision.allowed
    assert ("threshold-not-met", "signers") in error_codes(base.decision)


def test_lineage_nested_policy_inline(tmp_path, family, release, p384, stranger):
    spec = lineage_policy(
        release, {"base_models": {"policy": {"version": 1, "signers": [key_signer(p384)]}}}
    )
    assert_allowed(decide(tmp_path, spec, family.tuned))
    spec = lineage_policy(
        release,
        {
            "base_models": {
                "policy": {
                    "version": 1,
                    "signers": [key_signer(p384)],
                    "files": {"max_total_bytes": 10},
                }
            }
        },
    )
    d = decide(tmp_path, spec, family.tuned)
    assert_denied(d, "lineage-denied", "lineage.base_models", "more than the 10 allowed")


def test_lineage_digest_or_policy(tmp_path, family, release, stranger):
    """Options are alternatives: the digest listed allows it though the policy would deny."""
    spec = lineage_policy(
        release,
        {
            "base_models": {
                "digests": [family.base_root],
                "policy": {"version": 1, "signers": [key_signer(stranger)]},
            }
        },
    )
    d = assert_allowed(decide(tmp_path, spec, family.tuned))
    assert d.lineage[0].how == "digest listed"


def test_lineage_dataset_uri_allowlist(tmp_path, family, release):
    ok = lineage_policy(release, {"datasets": {"uris": ["https://data.example.com/*"]}})
    d = assert_allowed(decide(tmp_path, ok, family.tuned))
    [data] = d.lineage
    assert (data.role, data.digest, data.how) == ("training-data", DATA_DIGEST, "uri listed")

    other = lineage_policy(release, {"datasets": {"uris": ["https://other.example/*"]}})
    r = assert_denied(decide(tmp_path, other, family.tuned), "lineage-denied", "lineage.datasets")
    assert "training-data" in r.message
    by_digest = lineage_policy(release, {"datasets": {"digests": [DATA_DIGEST]}})
    assert decide(tmp_path, by_digest, family.tuned).lineage[0].how == "digest listed"


def test_lineage_kind_not_given_is_not_checked(tmp_path, family, release):
    spec = lineage_policy(release, {"datasets": {"uris": ["https://data.example.com/*"]}})
    d = assert_allowed(decide(tmp_path, spec, family.tuned))
    assert [x.role for x in d.lineage] == ["training-data"]


def test_lineage_inputs_only_from_trusted_attestation_signers(tmp_path, family, release, p384):
    """The tuned model's training attestation is by the release key; with other
    attestation signers it names nothing the policy acts on, and a rule requiring it fails."""
    spec = lineage_policy(
        release,
        {"base_models": {"digests": ["ab" * 32]}},
        attestation_signers=[key_signer(p384)],
        attestations=[{"type": "training"}],
    )
    d = decide(tmp_path, spec, family.tuned)
    assert_denied(d, "attestation-missing", "attestations[0]", "do not verify")
    assert d.lineage == ()
    assert error_codes(d) == {("attestation-missing", "attestations[0]")}


@pytest.fixture(scope="session")
def generations(
    tmp_path_factory: pytest.TempPathFactory, p384: KeyPair, release: KeyPair
) -> tuple[Family, Path]:
    """grandchild <- tuned <- base: two generations of base models."""
    fam = make_family(tmp_path_factory.mktemp("generations"), p384, release)
    child = make_model(fam.folder / "grandchild")
    sign(child, release)
    result = run_cli(
        "attest",
        "training",
        child,
        "--key",
        release.private,
        "--base-model",
        fam.tuned,
        "--builder-id",
        BUILDER,
    )
    assert result.exit_code == 0, result.output
    return fam, child


def test_lineage_depth(tmp_path, generations, release, p384):
    _, child = generations
    # The tuned model's own policy asks for its base model to pass a policy too.
    write_policy(tmp_path, {"version": 1, "signers": [key_signer(p384)]}, "base.yaml")
    write_policy(
        tmp_path,
        lineage_policy(release, {"depth": 8, "base_models": {"policy": "base.yaml"}}),
        "tuned.yaml",
    )
    two = lineage_policy(release, {"depth": 2, "base_models": {"policy": "tuned.yaml"}})
    d = assert_allowed(decide(tmp_path, two, child))
    [tuned] = d.lineage
    assert tuned.decision is not None and [x.how for x in tuned.decision.lineage] == ["policy"]

    # Depth 1: the tuned model must pass tuned.yaml, but tuned.yaml's own lineage
    # (the grandparent) is not followed; the nested decision says so in a note.
    one = lineage_policy(release, {"depth": 1, "base_models": {"policy": "tuned.yaml"}})
    d = assert_allowed(decide(tmp_path, one, child))
    [tuned] = d.lineage
    assert tuned.decision is not None and tuned.decision.lineage == ()
    note = [r for r in tuned.decision.reasons if r.code == "lineage-not-followed"]
    assert note and note[0].severity == "info", shown(tuned.decision)


def test_lineage_base_model_changed_after_the_training_attestation(tmp_path, release, p384):
    fam = make_family(tmp_path / "fam", p384, release)
    write_policy(tmp_path, {"version": 1, "signers": [key_signer(p384)]}, "base.yaml")
    spec = lineage_policy(release, {"base_models": {"policy": "base.yaml"}})
    assert_allowed(decide(tmp_path, spec, fam.tuned))
    (fam.base / "config.json").write_text('{"hidden_size": 9}\n')
    d = decide(tmp_path, spec, fam.tuned)
    assert not d.allowed, shown(d)
    r = reason(d, "lineage-unverified", "lineage")
    assert "no longer matches its digest" in r.message
    # With the training attestation required, that rule fails too.
    spec["attestations"] = [{"type": "training"}]
    d = decide(tmp_path, spec, fam.tuned)
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "no longer matches its digest")


def test_lineage_base_model_resigned_with_other_options(tmp_path, release, p384):
    """Files as attested, but signed again differently: its policy's digest is not the one
    the attestation records, so it cannot vouch for that input."""
    fam = make_family(tmp_path / "fam", p384, release)
    sign(fam.base, p384, algorithm="sha384")
    spec = lineage_policy(
        release, {"base_models": {"policy": {"version": 1, "signers": [key_signer(p384)]}}}
    )
    d = decide(tmp_path, spec, fam.tuned)
    assert_denied(d, "lineage-denied", "lineage.base_models", f"not the sha256:{fam.base_root}")


def test_lineage_base_model_not_on_this_machine(tmp_path, release, p384):
    fam = make_family(tmp_path / "fam", p384, release)
    shutil.rmtree(fam.base)
    spec = lineage_policy(
        release, {"base_models": {"policy": {"version": 1, "signers": [key_signer(p384)]}}}
    )
    d = decide(tmp_path, spec, fam.tuned)
    assert_denied(d, "lineage-denied", "lineage.base_models", "is not on this machine")


def test_lineage_signed_by_a_rule_signer_is_still_checked(tmp_path, release, p384, ed25519_key):
    """A training attestation that counts through its rule's own signers names inputs too."""
    folder = tmp_path / "fam"
    base = make_model(folder / "base")
    sign(base, p384)
    tuned = make_model(folder / "tuned")
    sign(tuned, release)
    result = run_cli(
        "attest",
        "training",
        tuned,
        "--key",
        ed25519_key.private,
        "--base-model",
        base,
        "--builder-id",
        BUILDER,
    )
    assert result.exit_code == 0, result.output
    spec = lineage_policy(
        release,
        {"base_models": {"digests": ["ab" * 32]}},
        attestations=[{"type": "training", "signers": [key_signer(ed25519_key)]}],
    )
    d = decide(tmp_path, spec, tuned)
    assert held(d, "attestations[0]")
    assert_denied(d, "lineage-denied", "lineage.base_models")


def test_lineage_evaluation_and_validation_datasets(tmp_path, signed, release):
    """Datasets an evaluation names, and validation data, are datasets too."""
    evals = tmp_path / "evals.jsonl"
    attest_cli(
        "eval",
        signed.model,
        release,
        evals,
        "--metric",
        "acc=0.9",
        "--dataset",
        f"https://eval.example/set@sha256:{'e1' * 32}",
    )
    attest_cli(
        "training",
        signed.model,
        release,
        evals,
        "--builder-id",
        BUILDER,
        "--validation-dataset",
        f"{DATA_URI}-val@sha256:{'a1' * 32}",
    )
    spec = lineage_policy(release, {"datasets": {"uris": ["https://data.example.com/*"]}})
    d = decide(tmp_path, spec, signed.model, attestations_path=evals)
    r = assert_denied(d, "lineage-denied", "lineage.datasets", "evaluation-data 'set'")
    assert r.subject == "set"
    assert {(x.role, x.allowed) for x in d.lineage} == {
        ("evaluation-data", False),
        ("validation-data", True),
    }
    spec["lineage"]["datasets"]["uris"].append("https://eval.example/*")
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=evals))


def test_lineage_ignores_attestations_about_another_model(tmp_path, family, release, p384):
    """An attestation about an older version names that version's inputs, not this one's."""
    old = tmp_path / "old.jsonl"
    base = make_model(tmp_path / "other-base")
    attest_cli("training", family.base, release, old, "--builder-id", BUILDER, "--base-model", base)
    shutil.rmtree(base)
    spec = lineage_policy(release, {"base_models": {"digests": ["ab" * 32]}})
    d = assert_allowed(decide(tmp_path, spec, family.tuned, attestations_path=old))
    assert d.lineage == ()


# ================================================================ files


def test_unsigned_file_denied_by_default(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "extra.txt").write_text("added after signing")
    d = decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, model)
    r = assert_denied(d, "file-unsigned", "files.unsigned", "'extra.txt'")
    assert r.subject == "extra.txt"
    assert error_codes(d) == {("file-unsigned", "files.unsigned")}
    assert held(d, "signers") and not held(d, "files.unsigned")


def test_allow_unsigned_globs(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "README.md").write_text("# notes")
    (model / "a" / "CHANGES.md").write_text("nested")
    (model / "notes").mkdir()
    (model / "notes" / "deep").mkdir()
    (model / "notes" / "deep" / "x.txt").write_text("under a folder glob")
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\x00bytecode")
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"allow_unsigned": ["*.md", "notes/**", "__pycache__/**"]},
    }
    d = assert_allowed(decide(tmp_path, spec, model))
    allowed = {r.subject for r in d.reasons if r.code == "file-unsigned-allowed"}
    assert allowed == {"README.md", "a/CHANGES.md", "notes/deep/x.txt"}
    assert all(
        r.rule == "files.allow_unsigned" and r.severity == "info"
        for r in d.reasons
        if r.code == "file-unsigned-allowed"
    )
    # Bytecode is never signed (left out by default): a warning about the files, which
    # the glob does not silence (Python may run it instead of the signed source).
    assert reason(d, "bytecode-unsigned", "files", "warning").subject == "__pycache__"

    # A file pattern does not cover a folder that happens to match it.
    (model / "notes.md").mkdir()
    (model / "notes.md" / "modeling_evil.py").write_text("import os")
    d = decide(tmp_path, spec, model)
    assert reason(d, "file-unsigned", "files.unsigned").subject == "notes.md/modeling_evil.py"
    shutil.rmtree(model / "notes.md")

    # A file the globs do not cover is still denied.
    (model / "extra.txt").write_text("x")
    d = decide(tmp_path, spec, model)
    assert_denied(d, "file-unsigned", "files.unsigned", "'extra.txt'")
    assert error_codes(d) == {("file-unsigned", "files.unsigned")}


def test_unsigned_allow(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "extra.bin").write_bytes(os.urandom(10))
    spec = {"version": 1, "signers": [key_signer(release)], "files": {"unsigned": "allow"}}
    assert_allowed(decide(tmp_path, spec, model))


def test_unsigned_allow_still_checks_signed_files(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "a.txt").write_text("tampered")
    (model / "empty").unlink()
    spec = {"version": 1, "signers": [key_signer(release)], "files": {"unsigned": "allow"}}
    d = decide(tmp_path, spec, model)
    assert_denied(d, "file-modified", "files", "a.txt")
    assert_denied(d, "file-missing", "files", "empty")


def _safetensors() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


@pytest.fixture(scope="session")
def mixed_formats(tmp_path_factory: pytest.TempPathFactory, release: KeyPair) -> Path:
    """safetensors, JSON, text, a real pickle and a .bin of random bytes, all signed."""
    model = tmp_path_factory.mktemp("formats") / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(_safetensors())
    (model / "config.json").write_text('{"hidden_size": 8}\n')
    (model / "README.txt").write_text("plain text\n")
    (model / "optimizer.pkl").write_bytes(pickle.dumps({"step": 7, "lr": [0.1, 0.01]}))
    (model / "extra.bin").write_bytes(os.urandom(4096))
    sign(model, release)
    return model


def test_formats_deny_pickle(tmp_path, mixed_formats, release):  # needs provenance.formats
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"formats": {"deny": ["pickle"]}},
    }
    d = decide(tmp_path, spec, mixed_formats)
    r = assert_denied(d, "format-denied", "files.formats.deny", "'optimizer.pkl'", "pickle")
    assert r.subject == "optimizer.pkl"
    assert error_codes(d) == {("format-denied", "files.formats.deny")}
    assert not held(d, "files.formats")


def test_formats_deny_pickle_names_the_rule_for_pickle_based_formats(tmp_path, release):
    # a numpy object array is "numpy" by format: the message says why
    # deny: [pickle] covers it, not that numpy is denied
    numpy = pytest.importorskip("numpy", reason="numpy is not installed (a test dependency)")
    model = tmp_path / "model"
    model.mkdir()
    numpy.save(model / "objects.npy", numpy.array([1, "a"], dtype=object), allow_pickle=True)
    sign(model, release)
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"formats": {"deny": ["pickle"]}},
    }
    d = decide(tmp_path, spec, model)
    r = assert_denied(d, "format-denied", "files.formats.deny", "'objects.npy'")
    assert "is numpy" in r.message
    assert "pickle-based, which the policy denies (deny: [pickle])" in r.message


def test_formats_allow_list(tmp_path, mixed_formats, release):  # needs provenance.formats
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"formats": {"allow": ["safetensors", "json", "text"]}},
    }
    d = decide(tmp_path, spec, mixed_formats)
    assert not d.allowed
    refused = {
        r.subject
        for r in d.errors
        if (r.code, r.rule) == ("format-not-allowed", "files.formats.allow")
    }
    assert refused == {"extra.bin", "optimizer.pkl"}, shown(d)
    assert {r.code for r in d.errors} == {"format-not-allowed"}

    # The same model without those two files: everything left is allowed.
    model = copy(mixed_formats, tmp_path / "clean")
    (model / "extra.bin").unlink()
    (model / "optimizer.pkl").unlink()
    sign(model, release)
    d = assert_allowed(decide(tmp_path, spec, model))
    assert held(d, "files.formats")


def test_formats_apply_to_unsigned_files_too(tmp_path, signed, release):  # needs provenance.formats
    model = copy(signed.model, tmp_path / "m")
    (model / "notes").mkdir()
    (model / "notes" / "state.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"allow_unsigned": ["notes/**"], "formats": {"deny": ["pickle"]}},
    }
    d = decide(tmp_path, spec, model)
    assert_denied(d, "format-denied", "files.formats.deny", "'notes/state.pkl'")


def _model_bytes(model: Path) -> int:
    return sum(
        p.stat().st_size
        for p in model.rglob("*")
        if p.is_file() and p.name != "model.sig" and "model.sig.d" not in p.parts
    )


def test_max_total_bytes(tmp_path, signed, release):
    total = _model_bytes(signed.model)
    spec = {"version": 1, "signers": [key_signer(release)], "files": {"max_total_bytes": total}}
    d = assert_allowed(decide(tmp_path, spec, signed.model))
    assert held(d, "files.max_total_bytes")
    spec["files"]["max_total_bytes"] = total - 1
    d = decide(tmp_path, spec, signed.model)
    assert_denied(
        d, "size-exceeded", "files.max_total_bytes", f"{total} bytes, more than the {total - 1}"
    )
    spec["files"]["max_total_bytes"] = "1 KiB"
    assert_denied(
        decide(tmp_path, spec, signed.model), "size-exceeded", "files.max_total_bytes", "1024"
    )
    spec["files"]["max_total_bytes"] = "1 MB"
    assert_allowed(decide(tmp_path, spec, signed.model))


def test_max_total_bytes_counts_unsigned_files(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    total = _model_bytes(model)
    (model / "big.md").write_bytes(b"x" * 2000)
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "files": {"allow_unsigned": ["*.md"], "max_total_bytes": total + 1000},
    }
    assert_denied(decide(tmp_path, spec, model), "size-exceeded", "files.max_total_bytes")


# ================================================================ pins


def test_pins(tmp_path, signed, release):
    spec = {"version": 1, "signers": [key_signer(release)], "pins": [f"sha256:{signed.root}"]}
    d = assert_allowed(decide(tmp_path, spec, signed.model))
    assert held(d, "pins")
    spec["pins"] = signed.root.upper()  # one string, any case
    assert_allowed(decide(tmp_path, spec, signed.model))
    spec["pins"] = ["ab" * 32, "cd" * 32]
    d = decide(tmp_path, spec, signed.model)
    assert_denied(d, "pin-mismatch", "pins", f"sha256:{signed.root}")
    assert not held(d, "pins")


def test_pins_not_checked_without_a_trusted_signature(tmp_path, by_stranger, release):
    spec = {"version": 1, "signers": [key_signer(release)], "pins": ["ab" * 32]}
    d = decide(tmp_path, spec, by_stranger)
    r = reason(d, "not-checked", "pins", "info")
    assert "do not meet the policy's signer rules" in r.message
    assert not held(d, "pins")


# ================================================================ revocations


def test_revoked_digest(tmp_path, signed, release):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "revocations": {"digests": [{"digest": f"sha256:{signed.root}", "reason": "CVE-2026-1"}]},
    }
    d = decide(tmp_path, spec, signed.model)
    assert_denied(d, "revoked-digest", "revocations.digests[0]", "is revoked (CVE-2026-1)")
    assert error_codes(d) == {("revoked-digest", "revocations.digests[0]")}
    assert held(d, "signers") and not held(d, "revocations")
    # Another digest revoked: allowed, and the rule says none applies.
    spec["revocations"] = {"digests": ["ab" * 32]}
    d = assert_allowed(decide(tmp_path, spec, signed.model))
    assert held(d, "revocations")


def test_revoked_key(tmp_path, signed, release):
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "revocations": {"keys": [{"fingerprint": fingerprint(release), "reason": "laptop stolen"}]},
    }
    d = decide(tmp_path, spec, signed.model)
    assert_denied(d, "revoked-key", "revocations.keys[0]", "laptop stolen")
    assert_denied(d, "threshold-not-met", "signers")  # a revoked signature does not count


def test_revoked_key_since_needs_a_trusted_time(tmp_path, signed, release):
    """A plain-key signature has no trusted time: it cannot show it came before."""
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "revocations": {"keys": [{"fingerprint": fingerprint(release), "since": "2099-01-01"}]},
    }
    assert_denied(
        decide(tmp_path, spec, signed.model),
        "revoked-key",
        "revocations.keys[0]",
        "no trusted signing time",
        "2099-01-01T00:00:00Z",
    )


def test_revoked_certificate_key_by_fingerprint(tmp_path, pki, code_leaf):
    fp = bundle_fingerprint(code_leaf.model)
    spec = {
        "version": 1,
        "signers": [cert_rule(pki)],
        "revocations": {"keys": [{"fingerprint": fp}]},
    }
    assert_denied(decide(tmp_path, spec, code_leaf.model), "revoked-key", "revocations.keys[0]")


@pytest.mark.parametrize("which", ["leaf", "intermediate"])
def test_revoked_certificate_serial(tmp_path, pki, code_leaf, which):
    cert = code_leaf.cert if which == "leaf" else pki.intermediate_cert
    serial = format(cert.serial_number, "x")
    serial = "0" * (len(serial) % 2) + serial
    colons = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2))  # as openssl shows it
    spec = {
        "version": 1,
        "signers": [cert_rule(pki)],
        "revocations": {"serials": [{"serial": colons.upper(), "reason": "mis-issued"}]},
    }
    d = decide(tmp_path, spec, code_leaf.model)
    assert_denied(d, "revoked-serial", "revocations.serials[0]", "mis-issued")
    assert_denied(d, "threshold-not-met", "signers")
    spec["revocations"] = {"serials": [{"serial": "0a1b2c"}]}
    assert_allowed(decide(tmp_path, spec, code_leaf.model))


def test_revoked_identity(tmp_path, keyless):
    base = {"version": 1, "signers": [sigstore_rule(keyless)]}
    spec = {
        **base,
        "revocations": {
            "identities": [{"identity": ALICE, "issuer": keyless.issuer, "reason": "left"}]
        },
    }
    d = decide(tmp_path, spec, keyless.model)
    assert_denied(d, "revoked-identity", "revocations.identities[0]", f"identity {ALICE}", "left")
    assert_denied(d, "threshold-not-met", "signers")
    # Without an issuer: any issuer's alice.
    spec["revocations"] = {"identities": [{"identity": ALICE}]}
    assert_denied(
        decide(tmp_path, spec, keyless.model), "revoked-identity", "revocations.identities[0]"
    )
    # Alice from another issuer is another identity.
    spec["revocations"] = {
        "identities": [{"identity": ALICE, "issuer": "https://accounts.google.com"}]
    }
    assert_allowed(decide(tmp_path, spec, keyless.model))


def test_revoked_identity_since(tmp_path, keyless):
    def since(t: datetime.datetime) -> dict[str, Any]:
        return {
            "version": 1,
            "signers": [sigstore_rule(keyless)],
            "revocations": {"identities": [{"identity": ALICE, "since": _stamp(t)}]},
        }

    # Revoked from a moment after the log vouches it signed: the signature came before.
    later = keyless.signed_at + datetime.timedelta(minutes=5)
    assert_allowed(decide(tmp_path, since(later), keyless.model))
    # Revoked from before it signed (or the very second): denied.
    for t in (keyless.signed_at - datetime.timedelta(minutes=5), keyless.signed_at):
        assert_denied(
            decide(tmp_path, since(t), keyless.model),
            "revoked-identity",
            "revocations.identities[0]",
            f"from {_stamp(t)} on",
        )


def test_revocations_in_an_included_file(tmp_path, signed, release):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "revoked.yaml").write_text(
        yaml.safe_dump(
            {"revocations": {"keys": [{"fingerprint": fingerprint(release), "reason": "INC-9"}]}}
        )
    )
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "revocations": {"include": ["lists/revoked.yaml"]},
    }
    d = decide(tmp_path, spec, signed.model)
    r = assert_denied(
        d, "revoked-key", "revocations.include[0] (lists/revoked.yaml).keys[0]", "INC-9"
    )
    assert r.subject == str(signed.model / "model.sig")
    # The list is part of the policy's digest: changing it changes the digest.
    first = d.policy_digest
    (tmp_path / "lists" / "revoked.yaml").write_text(yaml.safe_dump({"digests": ["ab" * 32]}))
    d = assert_allowed(decide(tmp_path, spec, signed.model))
    assert d.policy_digest != first


def test_revoked_digest_of_a_keyless_model_even_when_all_else_holds(tmp_path, keyless):
    spec = {
        "version": 1,
        "signers": [sigstore_rule(keyless)],
        "pins": [keyless.root],
        "revocations": {"digests": [keyless.root]},
    }
    d = decide(tmp_path, spec, keyless.model)
    assert error_codes(d) == {("revoked-digest", "revocations.digests[0]")}
    assert not d.allowed and held(d, "pins") and held(d, "signers")


# ================================================================ modes and expiry


def test_warn_mode_allows_and_reports_every_reason(tmp_path, signed, release):
    model = copy(signed.model, tmp_path / "m")
    (model / "extra.txt").write_text("x")
    spec = {
        "version": 1,
        "mode": "warn",
        "signers": [key_signer(release)],
        "pins": ["ab" * 32],
    }
    d = decide(tmp_path, spec, model)
    assert d.allowed and not d.passed and d.mode == "warn"
    assert error_codes(d) == {("file-unsigned", "files.unsigned"), ("pin-mismatch", "pins")}
    d.raise_for_denial()  # allowed: nothing raised


def test_audit_mode_allows_without_passing(tmp_path, by_stranger, release):
    spec = {"version": 1, "mode": "audit", "signers": [key_signer(release)]}
    d = decide(tmp_path, spec, by_stranger)
    assert d.allowed and not d.passed and d.mode == "audit"
    assert ("threshold-not-met", "signers") in error_codes(d)
    record = policy.audit_record(d)
    assert (record["decision"], record["passed"], record["mode"]) == ("allow", False, "audit")


@pytest.mark.parametrize("mode", ["enforce", "warn", "audit"])
def test_expired_policy_denies_in_every_mode(tmp_path, signed, release, mode):
    spec = {"version": 1, "mode": mode, "expires": "2020-01-01", "signers": [key_signer(release)]}
    d = decide(tmp_path, spec, signed.model)
    assert_denied(d, "policy-expired", "expires", "2020-01-01T23:59:59Z")
    assert error_codes(d) == {("policy-expired", "expires")}  # nothing else was wrong
    assert not held(d, "expires")
    with pytest.raises(policy.PolicyDenied) as e:
        d.raise_for_denial()
    assert e.value.code == "policy-expired"


def test_expiry_is_the_end_of_the_day(tmp_path, signed, release):
    spec = {"version": 1, "expires": "2026-06-30", "signers": [key_signer(release)]}
    rules = policy.load(write_policy(tmp_path, spec))
    during = datetime.datetime(2026, 6, 30, 23, 59, 0, tzinfo=UTC)
    after = datetime.datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC)
    d = assert_allowed(policy.evaluate(rules, signed.model, now=during))
    assert held(d, "expires")
    assert_denied(policy.evaluate(rules, signed.model, now=after), "policy-expired", "expires")


# ================================================================ the Python API


def test_provenance_verify_with_a_policy(tmp_path, signed, release, stranger):
    good = write_policy(tmp_path, {"version": 1, "signers": [key_signer(release)]}, "good.yaml")
    d = provenance.verify(signed.model, policy=good)
    assert isinstance(d, Decision) and d.allowed and d.root_digest == signed.root
    assert provenance.verify(signed.model, policy=policy.load(good)).allowed  # a loaded Policy

    bad = write_policy(tmp_path, {"version": 1, "signers": [key_signer(stranger)]}, "bad.yaml")
    with pytest.raises(policy.PolicyDenied) as e:
        provenance.verify(signed.model, policy=bad)
    assert isinstance(e.value, provenance.VerificationError)
    assert e.value.code == "threshold-not-met"
    assert not e.value.decision.allowed
    assert ("threshold-not-met", "signers") in error_codes(e.value.decision)
    assert "bad.yaml denies" in str(e.value)


def test_provenance_verify_policy_and_verifier_refused(tmp_path, signed, release):
    good = write_policy(tmp_path, {"version": 1, "signers": [key_signer(release)]})
    with pytest.raises(provenance.UsageError):
        provenance.verify(signed.model, signing.KeyVerifier.from_files(release.public), policy=good)


def test_missing_model_is_an_input_error(tmp_path, release):
    rules = policy.load(write_policy(tmp_path, {"version": 1, "signers": [key_signer(release)]}))
    with pytest.raises(provenance.InputError) as e:
        policy.evaluate(rules, tmp_path / "nowhere")
    assert e.value.code == "not-found"


def test_decision_json_matches_its_schema(tmp_path, signed, release, family, trained):
    from test_output_contract import schema_errors

    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "training"}],
        "expires": "2099-01-01",
    }
    for d in (
        decide(tmp_path, spec, signed.model, attestations_path=trained["release"]),
        decide(tmp_path, spec, signed.model),
        decide(
            tmp_path,
            lineage_policy(release, {"base_models": {"digests": ["ab" * 32]}}),
            family.tuned,
        ),
    ):
        data = d.to_json()
        assert not schema_errors("decision.schema.json", data), schema_errors(
            "decision.schema.json", data
        )


# ---------------------------------------------------------------- newcomer-review fixes


def test_a_misspelt_format_name_is_an_error_not_a_silent_pass(tmp_path, release):
    path = write_policy(
        tmp_path,
        {
            "version": 1,
            "signers": [key_signer(release)],
            "files": {"formats": {"deny": ["pickel"]}},
        },
    )
    with pytest.raises(policy.PolicyError) as e:
        policy.load(path)
    assert "files.formats.deny[0]" in str(e.value.details)
    assert "did you mean 'pickle'" in str(e.value.details)


def test_a_newer_failing_evaluation_supersedes_an_older_passing_one(
    tmp_path, signed, release, evaluations
):
    """Same metrics on the same data: the newest counts (by its time, then its line), so
    an old pass cannot hide a new failure."""
    older_pass, newer_fail = tmp_path / "pass.jsonl", tmp_path / "fail.jsonl"
    attest_cli("eval", signed.model, release, older_pass, "--metric", "accuracy=0.95",
               "--threshold", "accuracy>=0.9")  # fmt: skip
    attest_cli("eval", signed.model, release, newer_fail, "--metric", "accuracy=0.83",
               "--threshold", "accuracy>=0.9")  # fmt: skip
    both = tmp_path / "both.jsonl"
    both.write_bytes(older_pass.read_bytes() + newer_fail.read_bytes())
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "evaluation", "thresholds": "enforce"}],
    }
    d = decide(tmp_path, spec, signed.model, attestations_path=both)
    assert_denied(d, "attestation-unsatisfied", "attestations[0]", "0.83")
    assert any("superseded by line 2" in x.message for x in d.reasons), shown(d)
    # Each on its own: the passing one allows.
    assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=older_pass))


def test_a_damaged_attestation_line_is_said_not_hidden(tmp_path, signed, release):
    """The lines that verify decide; one that does not is a warning naming it."""
    passing = tmp_path / "pass.jsonl"
    attest_cli("eval", signed.model, release, passing, "--metric", "accuracy=0.95",
               "--threshold", "accuracy>=0.9")  # fmt: skip
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(passing.read_bytes() + b"{not json\n")
    spec = {
        "version": 1,
        "signers": [key_signer(release)],
        "attestations": [{"type": "evaluation", "thresholds": "enforce"}],
    }
    d = assert_allowed(decide(tmp_path, spec, signed.model, attestations_path=damaged))
    r = reason(d, "attestation-line-ignored", "attestations", "warning")
    assert "line 2" in r.message and "not valid JSON" in r.message, shown(d)
    clean = decide(tmp_path, spec, signed.model, attestations_path=passing)
    assert not [x for x in clean.reasons if x.code == "attestation-line-ignored"]


def test_evaluate_takes_a_policy_path(tmp_path, signed, release):
    path = write_policy(tmp_path, {"version": 1, "signers": [key_signer(release)]})
    assert policy.evaluate(path, signed.model).allowed
    assert policy.evaluate(str(path), signed.model).allowed
    with pytest.raises(TypeError, match="Policy or a path"):
        policy.evaluate(42, signed.model)  # type: ignore[arg-type]


def test_threshold_reason_names_the_signer_missing(tmp_path, three):
    model = make_model(tmp_path / "m")
    sign(model, three[0])
    d = decide(tmp_path, two_of_three(three), model)
    r = assert_denied(d, "threshold-not-met", "threshold", "not signed by", "--cosign")
    assert "no signature" not in r.message


def test_no_signature_at_all_says_so(tmp_path, release):
    model = make_model(tmp_path / "m")
    d = decide(tmp_path, {"version": 1, "signers": [key_signer(release)]}, model)
    assert_denied(d, "threshold-not-met", "signers", "has no signature", "path of its signature")


def test_a_nested_policy_in_warn_mode_does_not_loosen_lineage(tmp_path, release, p384):
    fam = make_family(tmp_path / "fam", p384, release)
    nested = {"version": 1, "mode": "warn", "signers": [key_signer(release)]}  # wrong signer
    spec = lineage_policy(release, {"base_models": {"policy": nested}})
    d = decide(tmp_path, spec, fam.tuned)
    assert_denied(d, "lineage-denied", "lineage.base_models")
