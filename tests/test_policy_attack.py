"""A hostile review of policies: each test is an attack that once worked.

The attacker controls the model folder, its signatures, co-signatures and
attestations, not the policy or the keys it trusts. Real files, real keys,
the local Sigstore; no mocks.
"""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import yaml
from conftest import make_model

import provenance
from provenance import policy, signing
from provenance.policy import Decision

ALICE = "alice@example.com"
UTC = datetime.timezone.utc


def decide(folder: Path, spec: dict[str, Any], model: Path, **kw: Any) -> Decision:
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return policy.evaluate(policy.load(path), model, **kw)


def shown(d: Decision) -> str:
    return "\n".join(f"{r.severity} {r.code} [{r.rule}] {r.message}" for r in d.reasons)


def assert_denied(d: Decision, code: str) -> None:
    assert not d.allowed and not d.passed, f"allowed:\n{shown(d)}"
    assert code in {r.code for r in d.errors}, shown(d)


def assert_allowed(d: Decision) -> None:
    assert d.allowed and d.passed, f"denied:\n{shown(d)}"


# ---------------------------------------------------------------- signing times


def _backdated(tsr_b64: str, when: datetime.datetime) -> str:
    """The same RFC 3161 response with another genTime: well formed, its signature broken."""
    from asn1crypto import tsp

    resp = tsp.TimeStampResp.load(base64.b64decode(tsr_b64))
    content = resp["time_stamp_token"]["content"]
    info = content["encap_content_info"]["content"].parsed
    info["gen_time"] = when
    content["encap_content_info"]["content"] = info
    return base64.b64encode(tsp.TimeStampResp.load(resp.dump(force=True)).dump()).decode()


def test_a_forged_earlier_timestamp_does_not_evade_a_since_revocation(tmp_path, local_sigstore):
    """sigstore skips a timestamp it cannot verify; the signing time a `since`
    revocation is checked against must not be read from such a one."""
    model = make_model(tmp_path / "model")
    token = signing.get_identity_token(local_sigstore.mint_token(ALICE), interactive=False)
    config = signing.load_trust_config(local_sigstore.trust_config_v2_path)
    provenance.sign(model, signing.SigstoreSigner(token, config))
    since = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    spec = {
        "version": 1,
        "signers": [
            {
                "sigstore": {
                    "identity": ALICE,
                    "issuer": local_sigstore.issuer,
                    "trust": {"trusted_root": str(local_sigstore.trusted_root_path)},
                }
            }
        ],
        "revocations": {
            "identities": [{"identity": ALICE, "since": since.strftime("%Y-%m-%dT%H:%M:%SZ")}]
        },
    }
    assert_denied(decide(tmp_path, spec, model), "revoked-identity")

    sig = model / "model.sig"
    data = json.loads(sig.read_bytes())
    stamps = data["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    genuine = stamps[0]["signedTimestamp"]
    old = datetime.datetime(2001, 1, 1, tzinfo=UTC)
    stamps.insert(0, {"signedTimestamp": _backdated(genuine, old)})
    sig.write_text(json.dumps(data))
    d = decide(tmp_path, spec, model)
    # The bundle still verifies (the genuine timestamp does), and it is still revoked.
    assert_denied(d, "revoked-identity")


# ---------------------------------------------------------------- thresholds


def test_threshold_counts_entries_not_people_one_entry_matches(tmp_path, pki, p256):
    """`threshold: 2` of [the release key, anyone under the company CA]: two employees
    with certificates are one entry satisfied, not two; the release key never signed."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from test_policy import issue_leaf

    from provenance.signing import CertificateSigner, KeySigner

    model = make_model(tmp_path / "m")
    signers = []
    for name in ("Mallory", "Eve"):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = issue_leaf(pki, tmp_path / name, name, eku=None, key=key)
        key_path = tmp_path / name / f"{name}-key.pem"
        signers.append(
            CertificateSigner.from_files(
                KeySigner.from_file(key_path), leaf.cert_path, [pki.intermediate]
            )
        )
    provenance.sign(model, signers[0])
    provenance.sign(model, signers[1], cosign=True)
    spec = {
        "version": 1,
        "threshold": 2,
        "signers": [
            {"name": "release", "key": str(p256.public)},
            {"name": "any employee", "certificate": {"roots": [str(pki.root)]}},
        ],
    }
    d = decide(tmp_path, spec, model)
    assert_denied(d, "threshold-not-met")
    # With the release key as well, two entries hold.
    provenance.sign(model, KeySigner.from_file(p256.private), cosign="release")
    assert_allowed(decide(tmp_path, spec, model))


# ---------------------------------------------------------------- lineage and revocations


def test_a_revoked_dataset_digest_denies_an_input_a_uri_glob_allows(tmp_path, p256, p384):
    """revocations.digests are "models (and inputs) denied by root digest": a poisoned
    dataset stays denied though its URI is one the lineage rule lists."""
    from test_policy import DATA_DIGEST, DATA_URI, make_family

    family = make_family(tmp_path / "f", p384, p256, f"{DATA_URI}@sha256:{DATA_DIGEST}")
    spec = {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "lineage": {"datasets": {"uris": ["https://data.example.com/*"]}},
    }
    assert_allowed(decide(tmp_path, spec, family.tuned))
    spec["revocations"] = {"digests": [{"digest": f"sha256:{DATA_DIGEST}", "reason": "poisoned"}]}
    d = decide(tmp_path, spec, family.tuned)
    assert_denied(d, "revoked-digest")
    assert [x.allowed for x in d.lineage] == [False]


def test_a_revoked_base_model_digest_denies_it_though_its_digest_is_listed(tmp_path, p256, p384):
    from test_policy import make_family

    family = make_family(tmp_path / "f", p384, p256)
    spec = {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "lineage": {"base_models": {"digests": [family.base_root]}},
        "revocations": {"digests": [family.base_root]},
    }
    assert_denied(decide(tmp_path, spec, family.tuned), "revoked-digest")


def test_a_revoked_key_denies_a_base_model_its_nested_policy_trusts(tmp_path, p256, p384):
    """The key that signed the base model was stolen: the top policy revokes it, the
    base-model policy (shared, not yet updated) still trusts it."""
    from test_policy import make_family

    from provenance.signing import KeySigner

    family = make_family(tmp_path / "f", p384, p256)
    fp = KeySigner.from_file(p384.private).describe().key_fingerprint
    spec = {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "lineage": {
            "base_models": {"policy": {"version": 1, "signers": [{"key": str(p384.public)}]}}
        },
    }
    assert_allowed(decide(tmp_path, spec, family.tuned))
    spec["revocations"] = {"keys": [{"fingerprint": fp, "reason": "laptop stolen"}]}
    d = decide(tmp_path, spec, family.tuned)
    assert_denied(d, "lineage-denied")
    assert [x.allowed for x in d.lineage] == [False]


def test_inputs_without_a_sha256_digest_are_each_checked(tmp_path, p256):
    """Two datasets recorded by URI alone (another tool's statement, a sha512 digest):
    the first must not stand for the second."""
    from provenance.attest import attest
    from provenance.signing import KeySigner

    model = make_model(tmp_path / "m")
    signer = KeySigner.from_file(p256.private)
    provenance.sign(model, signer)

    def dep(uri: str) -> dict[str, Any]:
        return {
            "uri": uri,
            "digest": {"sha512": "ab" * 64},
            "annotations": {"role": "training-data"},
        }

    predicate = {
        "buildDefinition": {
            "buildType": "https://ml-provenance.dev/training/v1",
            "externalParameters": {"kind": "training"},
            "resolvedDependencies": [
                dep("https://data.example.com/licensed"),
                dep("https://scraped.example/anything"),
            ],
        },
        "runDetails": {"builder": {"id": "https://ci.example.com/training"}},
    }
    attest(model, "https://slsa.dev/provenance/v1", predicate, signer)
    spec = {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "lineage": {"datasets": {"uris": ["https://data.example.com/*"]}},
    }
    d = decide(tmp_path, spec, model)
    assert_denied(d, "lineage-denied")
    assert [x.allowed for x in d.lineage] == [True, False]


# ---------------------------------------------------------------- revocation spellings

from test_policy import keyless, sigstore_rule  # noqa: E402,F401  (a session fixture)


def test_a_revoked_identity_is_revoked_however_the_list_spells_it(tmp_path, keyless):  # noqa: F811
    """An incident list written by hand: other letter case, a stray space, the issuer
    with a trailing slash. A revocation that silently matches nothing fails open."""
    spec = {
        "version": 1,
        "signers": [sigstore_rule(keyless)],
        "revocations": {
            "identities": [{"identity": " Alice@Example.COM ", "issuer": keyless.issuer + "/"}]
        },
    }
    assert_denied(decide(tmp_path, spec, keyless.model), "revoked-identity")


def test_a_revoked_key_fingerprint_denies_a_keyless_signature_with_that_key(tmp_path, keyless):  # noqa: F811
    """revocations.keys: "in any signature (certificate leaves and keyless certificates too)"."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from provenance.bundle import Bundle

    leaf = x509.load_der_x509_certificate(Bundle.read(keyless.model / "model.sig").certificates[0])
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spec = {
        "version": 1,
        "signers": [sigstore_rule(keyless)],
        "revocations": {"keys": [{"fingerprint": hashlib.sha256(spki).hexdigest()}]},
    }
    assert_denied(decide(tmp_path, spec, keyless.model), "revoked-key")


# ---------------------------------------------------------------- formats


def _object_npy() -> bytes:
    """A .npy of Python objects: numpy.load(allow_pickle=True) unpickles what follows."""
    import pickle

    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + pickle.dumps([1])


def test_an_allow_list_without_pickle_refuses_a_pickle_based_file_of_an_allowed_format(
    tmp_path, p256
):
    """`allow: [numpy, ...]` allows arrays, not pickles dressed as arrays."""
    from provenance.signing import KeySigner

    model = make_model(tmp_path / "m")
    provenance.sign(model, KeySigner.from_file(p256.private))
    (model / "extra.npy").write_bytes(_object_npy())  # unsigned, allowed by a careless glob
    spec = {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "files": {
            "allow_unsigned": ["*.npy"],
            "formats": {"allow": ["numpy", "json", "text", "unknown"]},
        },
    }
    assert_denied(decide(tmp_path, spec, model), "format-not-allowed")


# ---------------------------------------------------------------- predicate schemas


def _evaluated(tmp_path: Path, p256: Any) -> Path:
    from provenance.attest import attest
    from provenance.signing import KeySigner

    model = make_model(tmp_path / "m")
    signer = KeySigner.from_file(p256.private)
    provenance.sign(model, signer)
    predicate = {
        "metrics": [{"name": "accuracy", "value": 0.91}],
        "evaluatedOn": "2026-01-01T00:00:00Z",
    }
    attest(model, "https://ml-provenance.dev/evaluation/v1", predicate, signer)
    return model


def _predicate_policy(p256: Any, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "signers": [{"key": str(p256.public)}],
        "attestations": [{"type": "evaluation", "predicate": schema}],
    }


def test_a_predicate_schema_referring_to_nothing_is_refused_when_loaded(tmp_path, p256):
    import pytest

    for schema in (
        {"properties": {"metrics": {"$ref": "#/$defs/missing"}}},
        {"properties": {"metrics": {"$ref": "#nowhere"}}},
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},  # a loop
    ):
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(_predicate_policy(p256, schema)))
        with pytest.raises(policy.PolicyError, match="predicate"):
            policy.load(path)


def test_a_predicate_schema_that_cannot_be_evaluated_is_a_denial_not_a_traceback(tmp_path, p256):
    """A loop the loader's probe does not reach (under a property only values have)."""
    model = _evaluated(tmp_path, p256)
    schema = {
        "$defs": {"loop": {"allOf": [{"$ref": "#/$defs/loop"}]}},
        "properties": {"metrics": {"$ref": "#/$defs/loop"}},
    }
    d = policy.evaluate(
        policy.loads(yaml.safe_dump(_predicate_policy(p256, schema)), base=tmp_path, source="p"),
        model,
    )
    assert_denied(d, "attestation-unsatisfied")
