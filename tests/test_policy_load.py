"""Policy files: loading into the model, every error with its place and line, the CLI.

Real files in tmp_path, real keys and a real test CA (conftest), the real
command (in-process and as the installed console script). Every error case
checks the message names the path in the file and, for YAML, the line, and
that nothing escapes as a traceback.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import jsonschema
import pytest
from conftest import PROJECT_ROOT, assert_fails, assert_ok, run_cli
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_output_contract import contract, schema_errors

from provenance._internal.uris import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
)
from provenance.errors import InputError, UsageError
from provenance.policy._describe import describe, starter
from provenance.policy._load import MAX_NODES, PolicyError, load, loads
from provenance.policy._model import (
    CertificateSigner,
    FingerprintSigner,
    KeySigner,
    Match,
    Policy,
    SigstoreSigner,
    SigstoreTrust,
)

UTC = datetime.timezone.utc
SCHEMA = PROJECT_ROOT / "schemas" / "policy.schema.json"
D1 = "ab" * 32
D2 = "cd" * 32


def spki(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key) -> str:
    return hashlib.sha256(spki(key)).hexdigest()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path | str) -> list[str]:
    """Every problem PolicyError reports for ``path`` (and that it is a usage error)."""
    with pytest.raises(PolicyError) as info:
        load(path)
    error = info.value
    assert isinstance(error, UsageError) and error.code == "policy-invalid"
    assert error.details and str(error) == error.details[0]
    return error.details


def one_problem(path: Path | str, *words: str) -> str:
    found = problems(path)
    assert len(found) == 1, found
    for w in words:
        assert w in found[0], found[0]
    return found[0]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that is also the working directory, so messages name 'policy.yaml'."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def release(tmp_path: Path, p256) -> Path:
    """The P-256 public key, copied to keys/release.pub beside the policies."""
    path = tmp_path / "keys" / "release.pub"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(p256.public.read_bytes())
    return path


# ---------------------------------------------------------------- the schema itself


def _object_schemas(node: object, at: str = "#"):
    if isinstance(node, dict):
        if "properties" in node:
            yield at, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{at}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _object_schemas(value, f"{at}/{i}")


def test_schema_is_valid_closed_and_described() -> None:
    doc = json.loads(SCHEMA.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$id"] == "https://ml-provenance.dev/schemas/policy.schema.json"
    assert doc["title"]
    defs = doc["$defs"]
    for at, schema in _object_schemas(doc):
        assert schema.get("additionalProperties") is False, f"{at} is open"
        for name, prop in schema["properties"].items():
            described = "description" in prop
            if not described and "$ref" in prop and prop["$ref"].startswith("#/$defs/"):
                described = "description" in defs[prop["$ref"].removeprefix("#/$defs/")]
            assert described, f"{at}/properties/{name} has no description"
    predicate = defs["attestation"]["properties"]["predicate"]
    assert predicate["type"] == "object" and "properties" not in predicate


def test_cli_policy_schema_is_valid_and_closed() -> None:
    doc = json.loads((PROJECT_ROOT / "schemas" / "cli-policy.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$id"] == "https://ml-provenance.dev/schemas/cli-policy.schema.json"
    assert doc["additionalProperties"] is False
    assert {"version", "command", "ok"} <= set(doc["properties"])


# ---------------------------------------------------------------- every signer kind


def test_key_signer_from_a_file_relative_to_the_policy(tmp_path, p256, release, monkeypatch):
    policy = write(
        tmp_path,
        "policy.yaml",
        """\
        version: 1
        signers:
          - name: release key
            key: keys/release.pub
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # paths start at the policy's folder, not the working one
    p = load(policy)
    assert p.signers == (KeySigner("signers[0]", "release key", spki(p256.key)),)
    assert p.source == str(policy)
    assert p.mode == "enforce" and p.threshold == 1 and p.expires is None
    assert p.attestation_signers is None and p.effective_attestation_signers == p.signers


def test_key_signer_inline_pem_gets_a_derived_name(tmp_path, ed25519_key):
    pem = spki(ed25519_key.key).decode()
    block = textwrap.indent(pem, "      ")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nsigners:\n  - key: |\n{block}")
    (signer,) = load(policy).signers
    assert isinstance(signer, KeySigner) and signer.pem == spki(ed25519_key.key)
    assert signer.name == f"key {fingerprint(ed25519_key.key)[:16]}"


def test_fingerprint_signer_normalized_with_its_key(tmp_path, p256, release):
    fp = fingerprint(p256.key)
    write(
        tmp_path,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - fingerprint: "sha256:{fp.upper()}"
            keys: [keys/release.pub]
          - fingerprint: "{D1}"
        """,
    )
    first, second = load(tmp_path / "policy.yaml").signers
    assert first == FingerprintSigner("signers[0]", f"key {fp[:16]}", fp, (spki(p256.key),))
    assert second == FingerprintSigner("signers[1]", f"key {D1[:16]}", D1, ())


def test_fingerprint_signer_with_another_key_is_refused(here, other_key, release):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - fingerprint: "{fingerprint(other_key.key)}"
            keys: [keys/release.pub]
        """,
    )
    one_problem("policy.yaml", "policy.yaml line 4: signers[0].keys[0]:", "fingerprint is")


def test_certificate_signer(tmp_path, pki):
    ca = tmp_path / "ca"
    ca.mkdir()
    (ca / "root.pem").write_bytes(pki.root.read_bytes())
    (ca / "int.pem").write_bytes(pki.intermediate.read_bytes())
    write(
        tmp_path,
        "policy.yaml",
        """\
        version: 1
        signers:
          - name: release certificate
            certificate:
              roots: [ca/root.pem]
              intermediates: [ca/int.pem]
              subject_regexp: "CN=Release.*"
              email: release@example.com
              uri_regexp: "https://example\\\\.com/.*"
              eku: [codeSigning, 1.2.3.4]
        """,
    )
    (signer,) = load(tmp_path / "policy.yaml").signers
    assert signer == CertificateSigner(
        where="signers[0]",
        name="release certificate",
        roots=(pki.root.read_bytes(),),
        intermediates=(pki.intermediate.read_bytes(),),
        subject=Match(regexp="CN=Release.*"),
        email=Match(exact="release@example.com"),
        uri=Match(regexp="https://example\\.com/.*"),
        eku=("1.3.6.1.5.5.7.3.3", "1.2.3.4"),
    )


def test_sigstore_signer(tmp_path):
    write(tmp_path, "trust/trusted_root.json", '{"mediaType": "x"}')
    write(
        tmp_path,
        "policy.yaml",
        """\
        version: 1
        signers:
          - sigstore:
              identity_regexp: "https://github.com/org/repo/.*"
              issuer: https://token.actions.githubusercontent.com
              github: {repository: org/repo, ref: refs/heads/main, sha: "%s"}
              trust: staging
          - sigstore:
              identity: release@example.com
              issuer: https://accounts.google.com
              trust: {trusted_root: trust/trusted_root.json}
        """
        % ("AB12" * 10),
    )
    first, second = load(tmp_path / "policy.yaml").signers
    assert isinstance(first, SigstoreSigner) and isinstance(second, SigstoreSigner)
    assert first.identity == Match(regexp="https://github.com/org/repo/.*")
    assert first.issuer == "https://token.actions.githubusercontent.com"
    assert first.github.repository == "org/repo" and first.github.ref == "refs/heads/main"
    assert first.github.sha == "ab12" * 10 and first.github.workflow is None
    assert first.trust == SigstoreTrust("staging")
    assert second.identity == Match(exact="release@example.com")
    assert second.trust == SigstoreTrust("trusted_root", tmp_path / "trust/trusted_root.json")
    assert second.trust.path is not None and second.trust.path.is_absolute()
    assert first.name == (
        "Sigstore identity matching 'https://github.com/org/repo/.*' from "
        "https://token.actions.githubusercontent.com (GitHub repository org/repo, "
        f"ref refs/heads/main, sha {'ab12' * 10}) on the staging instance"
    )
    assert second.name == (
        "Sigstore identity release@example.com from https://accounts.google.com "
        f"trusting {second.trust.path}"
    )


# ---------------------------------------------------------------- every other section

FULL = f"""\
version: 1
mode: warn
expires: 2027-06-30
signers:
  - key: keys/release.pub
  - fingerprint: "{D1}"
threshold: 2
attestation_signers:
  - fingerprint: "{D2}"
files:
  unsigned: deny
  allow_unsigned: ["*.md", "__pycache__/**"]
  formats: {{allow: [safetensors, json], deny: [pickle]}}
  max_total_bytes: 10 GiB
attestations:
  - type: training
  - type: slsa
    signers: [{{fingerprint: "{D1}"}}]
  - type: dataset
  - type: evaluation
    thresholds: enforce
    predicate: {{type: object, required: [metrics]}}
  - type: https://example.com/custom/v1
lineage:
  depth: 3
  base_models:
    digests: ["sha256:{D1.upper()}"]
  datasets:
    digests: ["{D2}"]
    uris: ["https://example.com/data/*"]
pins: "sha256:{D1}"
revocations:
  digests: ["{D2}", {{digest: "sha256:{D1}", reason: CVE-2026-1234}}]
  keys: [{{fingerprint: "{D2}", reason: leaked, since: 2026-03-01}}]
  identities: [{{identity: a@b.example, issuer: "https://accounts.google.com",
                 since: "2026-03-01T12:00:00+02:00"}}]
  serials: [{{serial: "0A:1B"}}, {{serial: "0x00ff", reason: old}}]
"""


def test_every_section_into_the_model(tmp_path, release):
    p = load(write(tmp_path, "policy.yaml", FULL))
    assert p.mode == "warn"
    assert p.expires == datetime.datetime(2027, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert p.threshold == 2 and len(p.signers) == 2
    assert p.attestation_signers is not None
    assert [s.where for s in p.attestation_signers] == ["attestation_signers[0]"]
    assert p.files.unsigned == "deny"
    assert p.files.allow_unsigned == ("*.md", "__pycache__/**")
    assert p.files.formats.allow == ("safetensors", "json")
    assert p.files.formats.deny == ("pickle",)
    assert p.files.max_total_bytes == 10 * 2**30
    types = [a.predicate_type for a in p.attestations]
    assert types == [
        SLSA_PREDICATE_TYPE,
        SLSA_PREDICATE_TYPE,
        DATASET_PREDICATE_TYPE,
        EVALUATION_PREDICATE_TYPE,
        "https://example.com/custom/v1",
    ]
    assert [a.where for a in p.attestations] == [f"attestations[{i}]" for i in range(5)]
    assert p.attestations[0].signers is None
    assert p.attestations[1].signers is not None
    assert p.attestations[1].signers[0].where == "attestations[1].signers[0]"
    assert p.attestations[3].enforce_thresholds and not p.attestations[0].enforce_thresholds
    assert p.attestations[3].predicate_schema == {"type": "object", "required": ["metrics"]}
    assert p.lineage is not None and p.lineage.depth == 3
    assert p.lineage.base_models is not None and p.lineage.base_models.digests == (D1,)
    assert p.lineage.base_models.where == "lineage.base_models"
    assert p.lineage.base_models.policy is None
    assert p.lineage.datasets is not None and p.lineage.datasets.uris == (
        "https://example.com/data/*",
    )
    assert p.pins == (D1,)
    got = [(r.where, r.kind, r.value, r.reason, r.issuer, r.since) for r in p.revocations]
    assert got == [
        ("revocations.digests[0]", "digest", D2, None, None, None),
        ("revocations.digests[1]", "digest", D1, "CVE-2026-1234", None, None),
        (
            "revocations.keys[0]",
            "key",
            D2,
            "leaked",
            None,
            datetime.datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (
            "revocations.identities[0]",
            "identity",
            "a@b.example",
            None,
            "https://accounts.google.com",
            datetime.datetime(2026, 3, 1, 10, tzinfo=UTC),
        ),
        ("revocations.serials[0]", "serial", "a1b", None, None, None),
        ("revocations.serials[1]", "serial", "ff", "old", None, None),
    ]


def test_json_policy_is_the_same_model(tmp_path, release):
    from_yaml = load(write(tmp_path, "policy.yaml", FULL))
    import yaml

    doc = yaml.safe_load(FULL)
    doc["expires"] = "2027-06-30"
    doc["revocations"]["keys"][0]["since"] = "2026-03-01"
    text = json.dumps(doc, indent=2)
    for name in ("policy.json", "policy.txt"):  # a .json name, or text starting with {
        from_json = load(write(tmp_path, name, text))
        assert from_json.digest != from_yaml.digest  # other bytes, the same key file
        assert from_json == Policy(
            **{**vars(from_yaml), "source": str(tmp_path / name), "digest": from_json.digest}
        )


def test_expiry_and_since_moments(tmp_path):
    base = f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\n'
    cases = {
        "2027-06-30T12:00:00Z": datetime.datetime(2027, 6, 30, 12, tzinfo=UTC),
        '"2027-06-30T12:00:00+02:00"': datetime.datetime(2027, 6, 30, 10, tzinfo=UTC),
        '"2027-06-30"': datetime.datetime(2027, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
    }
    for text, moment in cases.items():
        p = load(write(tmp_path, "p.yaml", base + f"expires: {text}\n"))
        assert p.expires == moment, text


def test_sizes(tmp_path):
    base = f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\nfiles: {{max_total_bytes: %s}}\n'
    for text, size in {
        "1000": 1000,
        '"1.5 KB"': 1500,
        "500MiB": 500 << 20,
        '"2 TB"': 2 * 10**12,
    }.items():
        assert load(write(tmp_path, "p.yaml", base % text)).files.max_total_bytes == size


# ---------------------------------------------------------------- nested and included files


def test_nested_policies_file_and_inline(tmp_path, p256):
    keys = tmp_path / "sub" / "keys"
    keys.mkdir(parents=True)
    (keys / "base.pub").write_bytes(p256.public.read_bytes())
    nested = write(
        tmp_path,
        "sub/base.yaml",
        """\
        version: 1
        signers: [{key: keys/base.pub}]    # relative to sub/, the including file's folder
        """,
    )
    write(
        tmp_path,
        "policy.yaml",
        f"""\
        version: 1
        signers: [{{fingerprint: "{D1}"}}]
        lineage:
          base_models: {{policy: sub/base.yaml}}
          datasets:
            policy:
              version: 1
              signers: [{{fingerprint: "{D2}"}}]
        """,
    )
    p = load(tmp_path / "policy.yaml")
    assert p.lineage is not None and p.lineage.base_models and p.lineage.datasets
    base = p.lineage.base_models.policy
    assert base is not None and base.source == str(nested)
    assert base.signers == (
        KeySigner("signers[0]", f"key {fingerprint(p256.key)[:16]}", spki(p256.key)),
    )
    inline = p.lineage.datasets.policy
    assert inline is not None and inline.source == f"<inline in {tmp_path / 'policy.yaml'}>"
    assert inline.signers[0].where == "signers[0]"
    # The digest covers the nested file (and the key it pulls in).
    before = p.digest
    assert before != hashlib.sha256((tmp_path / "policy.yaml").read_bytes()).hexdigest()
    nested.write_text(nested.read_text() + "mode: warn\n")
    assert load(tmp_path / "policy.yaml").digest != before


def test_nested_policy_errors_name_their_file(here):
    write(here, "base.yaml", "version: 1\nsigners: []\n")
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers: [{{fingerprint: "{D1}"}}]
        lineage:
          base_models: {{policy: base.yaml}}
          datasets:
            policy:
              version: 1
              signers: [{{fingerprint: "{D2}"}}]
              threshold: 2
        """,
    )
    found = problems("policy.yaml")
    assert found == [
        "policy.yaml line 4: lineage.base_models.policy: the policy 'base.yaml' is invalid "
        "(1 problem):",
        "base.yaml line 2: signers: must not be empty",
        "policy.yaml line 9: lineage.datasets.policy.threshold: is 2, but only 1 signer is listed",
    ]


def test_nested_policy_cycle(here):
    write(
        here,
        "a.yaml",
        f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\n'
        "lineage: {base_models: {policy: b.yaml}}\n",
    )
    write(
        here,
        "b.yaml",
        f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\n'
        "lineage: {base_models: {policy: a.yaml}}\n",
    )
    found = problems("a.yaml")
    assert any(
        "b.yaml line 3: lineage.base_models.policy: 'a.yaml' includes itself" in m for m in found
    ), found
    assert any("a cycle: a.yaml -> b.yaml -> a.yaml" in m for m in found), found
    write(
        here,
        "self.yaml",
        f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\n'
        "lineage: {base_models: {policy: ./self.yaml}}\n",
    )
    one_problem("self.yaml", "self.yaml line 3: lineage.base_models.policy:", "includes itself")


def _chain(folder: Path, n: int) -> Path:
    """p0.yaml nests p1.yaml ... nests p{n}.yaml: n levels of nesting."""
    for i in range(n + 1):
        tail = f"lineage: {{base_models: {{policy: p{i + 1}.yaml}}}}\n" if i < n else ""
        write(folder, f"p{i}.yaml", f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\n' + tail)
    return folder / "p0.yaml"


def test_nesting_depth_is_bounded(tmp_path):
    deepest = load(_chain(tmp_path / "ok", 8))
    for _ in range(8):
        assert deepest.lineage is not None and deepest.lineage.base_models is not None
        assert deepest.lineage.base_models.policy is not None
        deepest = deepest.lineage.base_models.policy
    assert deepest.lineage is None
    found = problems(_chain(tmp_path / "deep", 9))
    assert any(
        "p8.yaml line 3: lineage.base_models.policy: policies nest more than 8 deep" in m
        for m in found
    ), found


def test_revocation_include_files(here, p256):
    write(
        here,
        "lists/revoked.yaml",
        f"""\
        revocations:
          keys:
            - {{fingerprint: "{D1}"}}
            - {{fingerprint: "{D2}", reason: rotated}}
            - {{fingerprint: "sha256:{fingerprint(p256.key)}", since: 2026-01-01}}
        """,
    )
    write(here, "lists/more.json", json.dumps({"digests": [D1], "serials": [{"serial": "1f"}]}))
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers: [{{fingerprint: "{D1}"}}]
        revocations:
          include: [lists/revoked.yaml, lists/more.json]
          identities: [{{identity: a@b.example}}]
        """,
    )
    p = load("policy.yaml")
    assert [(r.where, r.kind) for r in p.revocations] == [
        ("revocations.identities[0]", "identity"),
        ("revocations.include[0] (lists/revoked.yaml).keys[0]", "key"),
        ("revocations.include[0] (lists/revoked.yaml).keys[1]", "key"),
        ("revocations.include[0] (lists/revoked.yaml).keys[2]", "key"),
        ("revocations.include[1] (lists/more.json).digests[0]", "digest"),
        ("revocations.include[1] (lists/more.json).serials[0]", "serial"),
    ]
    assert p.revocations[3].value == fingerprint(p256.key)
    assert p.revocations[3].since == datetime.datetime(2026, 1, 1, tzinfo=UTC)
    # The digest covers the included files.
    before = p.digest
    write(here, "lists/more.json", json.dumps({"digests": [D2]}))
    assert load("policy.yaml").digest != before


def test_revocation_include_errors(here):
    policy = f"""\
    version: 1
    signers: [{{fingerprint: "{D1}"}}]
    revocations: {{include: [revoked.yaml]}}
    """
    write(here, "policy.yaml", policy)
    one_problem("policy.yaml", "policy.yaml line 3: revocations.include[0]:", "does not exist")
    write(here, "revoked.yaml", "revocations:\n  keys:\n    - {fingerprnt: x}\n")
    found = problems("policy.yaml")
    assert found[0] == (
        "revoked.yaml line 3: revocations.keys[0]: unknown key 'fingerprnt' "
        "(did you mean 'fingerprint'?)"
    ), found
    write(here, "revoked.yaml", "include: [other.yaml]\n")
    one_problem("policy.yaml", "revoked.yaml line 1: include:", "cannot include others")


# ---------------------------------------------------------------- errors: place and line


def test_the_spec_example_message(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - fingerprint: "{D1}"
          - name: ci
            sigstore:
              issuer: https://accounts.google.com
              identiy: release@example.com
        """,
    )
    assert problems("policy.yaml") == [
        "policy.yaml line 7: signers[1].sigstore: unknown key 'identiy' (did you mean 'identity'?)"
    ]


def test_unknown_keys_top_level_and_nested(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signer:
          - fingerprint: "{D1}"
        files:
          unsigned: deny
          sizes: 10
        lineage: {{datasets: {{uri: [x]}}}}
        """,
    )
    found = problems("policy.yaml")
    assert found == [
        "policy.yaml line 2: unknown key 'signer' (did you mean 'signers'?)",
        "policy.yaml line 6: files: unknown key 'sizes' (known keys: unsigned, "
        "allow_unsigned, formats, max_total_bytes, scan)",
        "policy.yaml line 7: lineage.datasets: unknown key 'uri' (did you mean 'uris'?)",
    ]


def test_signer_entry_shapes(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - sigstor: {{identity: a, issuer: b}}
          - {{key: k.pub, fingerprint: "{D1}"}}
          - {{name: nobody}}
          - keys/release.pub
          - sigstore: {{identity: a, identity_regexp: a, issuer: b}}
          - sigstore: {{issuer: b}}
          - certificate: {{roots: [r.pem], email: a, email_regexp: b}}
          - sigstore: {{identity: a, issuer: b, trust: publicgood}}
        """,
    )
    assert problems("policy.yaml") == [
        "policy.yaml line 3: signers[0]: unknown key 'sigstor' (did you mean 'sigstore'?)",
        "policy.yaml line 4: signers[1]: give only one of 'key' or 'fingerprint'",
        "policy.yaml line 5: signers[2]: needs one of 'key', 'fingerprint', 'certificate' "
        "or 'sigstore'",
        "policy.yaml line 6: signers[3]: expected a mapping, got the string 'keys/release.pub'",
        "policy.yaml line 7: signers[4].sigstore: give only one of 'identity' or 'identity_regexp'",
        "policy.yaml line 8: signers[5].sigstore: needs one of 'identity' or 'identity_regexp'",
        "policy.yaml line 9: signers[6].certificate: give only one of 'email' or 'email_regexp'",
        'policy.yaml line 10: signers[7].sigstore.trust: must be "public-good" or '
        "\"staging\", got the string 'publicgood' (did you mean 'public-good'?)",
    ]


def test_wrong_types_and_values_all_reported(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 2
        mode: enforcing
        signers: [{{fingerprint: "{D1}"}}]
        threshold: two
        files: {{max_total_bytes: 10 GB please, formats: {{deny: [Pickle]}}}}
        pins: [abc]
        lineage: {{depth: 9}}
        attestations: [{{type: training, predicate: [1]}}]
        expires: "2027-06-30T12:00:00"
        """,
    )
    found = problems("policy.yaml")
    assert found == [
        "policy.yaml line 1: version: must be 1, got the number 2",
        'policy.yaml line 2: mode: must be "enforce", "warn" or "audit", got the string '
        "'enforcing' (did you mean 'enforce'?)",
        "policy.yaml line 4: threshold: expected an integer, got the string 'two'",
        "policy.yaml line 5: files.formats.deny[0]: got the string 'Pickle'; expected a file "
        "format as provenance detects it: safetensors, json, text, pickle, gguf, onnx, "
        "numpy, ...",
        "policy.yaml line 5: files.max_total_bytes: got the string '10 GB please'; expected a "
        "number and a unit: 10 GiB, 500 MB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
        "policy.yaml line 6: pins[0]: got the string 'abc'; expected a SHA-256 root digest: 64 "
        "hex digits as `provenance hash` prints them, with or without a `sha256:` prefix",
        "policy.yaml line 7: lineage.depth: must be at most 8, got the number 9",
        "policy.yaml line 8: attestations[0].predicate: expected a mapping, got a list",
        "policy.yaml line 9: expires: got the string '2027-06-30T12:00:00'; expected a date "
        "(2027-06-30, a bare YAML date too) or an RFC 3339 date-time with its timezone "
        "(2027-06-30T12:00:00Z)",
    ]


def test_missing_required_keys(here):
    write(here, "policy.yaml", "mode: warn\n")
    assert problems("policy.yaml") == [
        "policy.yaml line 1: missing required key 'version'",
        "policy.yaml line 1: missing required key 'signers'",
    ]


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ("sigstore: {identity_regexp: 'a(', issuer: b}", "signers[0].sigstore.identity_regexp"),
        (
            "certificate: {roots: [ca.pem], subject_regexp: '[x'}",
            "signers[0].certificate.subject_regexp",
        ),
        (
            "certificate: {roots: [ca.pem], email_regexp: '*a'}",
            "signers[0].certificate.email_regexp",
        ),
        (
            "certificate: {roots: [ca.pem], uri_regexp: 'a{2,1}'}",
            "signers[0].certificate.uri_regexp",
        ),
    ],
)
def test_bad_regexps(here, pki, entry, where):
    (here / "ca.pem").write_bytes(pki.root.read_bytes())
    write(here, "policy.yaml", f"version: 1\nsigners:\n  - {entry}\n")
    one_problem("policy.yaml", f"policy.yaml line 3: {where}: not a valid regular expression")


def test_yaml_syntax_error_names_the_line(here):
    write(here, "policy.yaml", "version: 1\nsigners:\n  - key: [unclosed\nmode: warn\n")
    one_problem("policy.yaml", "policy.yaml line 4: YAML syntax error: while parsing a flow")
    write(here, "two.yaml", "version: 1\n---\nversion: 1\n")
    one_problem("two.yaml", "two.yaml line 2:", "expected a single document")
    write(here, "glob.yaml", "version: 1\nfiles:\n  allow_unsigned: [*.md]\n")
    one_problem("glob.yaml", "glob.yaml line 3: YAML syntax error", "must be quoted, as in '*.md'")
    write(here, "quoted.yaml", 'version: "1"\nsigners: []\n')
    assert (
        "quoted.yaml line 1: version: must be 1, got the string '1' (write 1 without quotes)"
        in problems("quoted.yaml")
    )
    write(here, "keys.yaml", "version: 1\nyes: 1\n? [a]\n: b\n")
    assert problems("keys.yaml") == [
        "keys.yaml line 2: the key 'yes' reads as bool true; quote it",
        "keys.yaml line 3: a key may not be a list or a mapping",
    ]


def test_duplicate_keys(here):
    write(here, "policy.yaml", f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\nversion: 1\n')
    assert problems("policy.yaml") == [
        "policy.yaml line 3: duplicate key 'version' (first on line 1)"
    ]
    write(here, "policy.json", '{"version": 1, "signers": [{"key": "a", "key": "b"}]}')
    assert problems("policy.json") == ["policy.json: signers[0]: duplicate key 'key'"]


def test_aliases_are_refused(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers: &s [{{fingerprint: "{D1}"}}]
        attestation_signers: *s
        """,
    )
    one_problem("policy.yaml", "policy.yaml line 3: YAML aliases (*s) are not allowed")


def test_alias_bomb_and_node_flood_are_refused_quickly(here):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    write(here, "bomb.yaml", "\n".join(lines) + "\n")
    one_problem("bomb.yaml", "bomb.yaml line 2: YAML aliases (*a0)")
    write(here, "flood.yaml", "signers:\n" + "- 1\n" * (MAX_NODES + 1))
    one_problem("flood.yaml", f"more than {MAX_NODES:,} YAML nodes")
    write(here, "deep.yaml", "[" * 5000 + "]" * 5000)
    one_problem("deep.yaml", "nested more than")
    write(here, "deep.json", '{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    one_problem("deep.json", "nested")


def test_threshold_above_the_signers(here):
    write(here, "policy.yaml", f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\nthreshold: 2\n')
    assert problems("policy.yaml") == [
        "policy.yaml line 3: threshold: is 2, but only 1 signer is listed"
    ]


def test_the_same_signer_twice(here, p256, release):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - key: keys/release.pub
          - fingerprint: "{fingerprint(p256.key)}"
        threshold: 2
        """,
    )
    one_problem("policy.yaml", "line 4: signers[1]: is the same signer as signers[0]")


def test_invalid_predicate_schema(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers: [{{fingerprint: "{D1}"}}]
        attestations:
          - type: evaluation
            predicate:
              type: object
              properties:
                accuracy: {{type: numbr}}
          - type: dataset
            predicate: {{$ref: "https://example.com/schema.json"}}
          - type: training
            thresholds: enforce
        """,
    )
    found = problems("policy.yaml")
    assert found[0].startswith(
        "policy.yaml line 8: attestations[0].predicate.properties.accuracy.type: "
        "'numbr' is not a JSON Schema type (did you mean 'number'?)"
    ), found
    assert found[1].startswith(
        "policy.yaml line 10: attestations[1].predicate.$ref: refers outside the schema"
    ), found
    assert found[2].startswith(
        "policy.yaml line 12: attestations[2].thresholds: applies only to evaluation"
    ), found
    assert len(found) == 3


def test_unreadable_and_wrong_key_files(here, p256, pki):
    (here / "junk.pub").write_text("hello\n")
    (here / "private.pem").write_bytes(p256.private.read_bytes())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (here / "rsa.pub").write_bytes(spki(rsa_key))
    (here / "root.pem").write_bytes(pki.root.read_bytes())
    os.mkfifo(here / "fifo.pub")
    write(
        here,
        "policy.yaml",
        """\
        version: 1
        signers:
          - key: missing.pub
          - key: junk.pub
          - key: private.pem
          - key: rsa.pub
          - key: fifo.pub
          - certificate: {roots: [junk.pub]}
          - key: root.pem
        """,
    )
    found = problems("policy.yaml")
    assert found == [
        "policy.yaml line 3: signers[0].key: public key 'missing.pub' does not exist",
        "policy.yaml line 4: signers[1].key: public key 'junk.pub' is not a PEM public key",
        "policy.yaml line 5: signers[2].key: public key 'private.pem' is a private key; a "
        "policy names public keys only",
        "policy.yaml line 6: signers[3].key: public key 'rsa.pub' is an RSA key; use ECDSA "
        "P-256, P-384, P-521 or Ed25519",
        "policy.yaml line 7: signers[4].key: public key 'fifo.pub' is a FIFO; only a regular "
        "file is read",
        "policy.yaml line 8: signers[5].certificate.roots[0]: certificate 'junk.pub' holds no "
        "PEM certificate",
        "policy.yaml line 9: signers[6].key: public key 'root.pem' is not a PEM public key",
    ]


def test_missing_trust_file(here):
    write(
        here,
        "policy.yaml",
        "version: 1\nsigners:\n  - sigstore: {identity: a, issuer: b, "
        "trust: {trust_config: nope.json}}\n",
    )
    one_problem("policy.yaml", "line 3: signers[0].sigstore.trust.trust_config:", "does not exist")


def test_other_semantic_errors(here):
    write(
        here,
        "policy.yaml",
        f"""\
        version: 1
        signers: [{{fingerprint: "{D1}"}}]
        expires: 2027-02-30T00:00:00Z
        files:
          formats: {{allow: [pickle, json], deny: [pickle]}}
          max_total_bytes: 0.1 B
        revocations:
          keys: [{{fingerprint: "{D1}", since: 2026-13-01}}]
        """,
    )
    found = problems("policy.yaml")
    assert any(
        "line 3: expires: '2027-02-30T00:00:00Z' is not a real date or time" in m for m in found
    ), found
    assert "policy.yaml line 5: files.formats: pickle: both allowed and denied" in found
    assert "policy.yaml line 6: files.max_total_bytes: '0.1 B' is less than one byte" in found
    assert any(
        "line 8: revocations.keys[0].since: '2026-13-01' is not a real date" in m for m in found
    ), found


def test_not_a_policy_at_all(here):
    write(here, "empty.yaml", "# nothing\n")
    one_problem("empty.yaml", "empty.yaml: is empty")
    write(here, "list.yaml", "- version: 1\n")
    one_problem("list.yaml", "list.yaml line 1: expected a mapping, got a list")
    (here / "latin1.yaml").write_bytes(b"version: 1\nname: caf\xe9\n")
    one_problem("latin1.yaml", "latin1.yaml line 2: not UTF-8 text")
    write(here, "bad.json", '{"version": 1,\n "signers": [}\n')
    one_problem("bad.json", "bad.json line 2: JSON syntax error")
    write(here, "tagged.yaml", "version: !!binary aGk=\n")
    one_problem("tagged.yaml", "tagged.yaml line 1:", "not allowed")
    write(here, "merge.yaml", "base: &b {version: 1}\n<<: {version: 1}\n")
    one_problem("merge.yaml", "merge.yaml line 2: YAML merge keys (<<) are not allowed")


def test_many_problems_are_capped(here):
    bad = "".join(f"    - bad{i}\n" for i in range(150))
    write(
        here,
        "policy.yaml",
        f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\nrevocations:\n  digests:\n{bad}',
    )
    found = problems("policy.yaml")
    assert len(found) == 101 and found[-1] == "... and 50 more problems"
    assert found[0].startswith("policy.yaml line 5: revocations.digests[0]: got the string 'bad0'")
    assert found[99].startswith("policy.yaml line 104: revocations.digests[99]:")


def test_policy_file_read_errors_are_input_errors(here):
    with pytest.raises(InputError) as info:
        load("nope.yaml")
    assert info.value.code == "not-found" and not isinstance(info.value, UsageError)
    (here / "big.yaml").write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(InputError, match="larger than 1 MiB"):
        load("big.yaml")
    with pytest.raises(InputError):
        loads("#" * ((1 << 20) + 1), base=here, source="big")


def test_a_fifo_as_the_policy_is_refused_without_blocking(here):
    os.mkfifo(here / "policy.yaml")
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            load("policy.yaml")
        except BaseException as e:  # any outcome is reported below
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader, then fail
        with open(here / "policy.yaml", "wb"):
            pass
        pytest.fail("load() blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], InputError), outcome
    assert "FIFO" in str(outcome[0])


# ---------------------------------------------------------------- describe and starters


def test_describe_reads_the_policy_back(tmp_path, p256, release):
    write(
        tmp_path,
        "policy.yaml",
        f"""\
        version: 1
        signers:
          - name: release key
            key: keys/release.pub
          - sigstore: {{identity: release@example.com, issuer: https://accounts.google.com}}
          - fingerprint: "{D1}"
        threshold: 2
        files: {{unsigned: allow, formats: {{deny: [pickle]}}}}
        attestations: [{{type: evaluation, thresholds: enforce}}]
        pins: ["{D2}"]
        """,
    )
    lines = describe(load(tmp_path / "policy.yaml"))
    fp = fingerprint(p256.key)[:16]
    assert lines == [
        "Mode enforce: a rule that fails denies loading.",
        f"The model must be signed by 2 of: key {fp} (release key), Sigstore identity "
        f"release@example.com from https://accounts.google.com, key {D1[:16]}.",
        "Files the signature does not list are tolerated.",
        "Files in these formats are refused: pickle.",
        "The model must carry a verified evaluation attestation, signed by one of the signers, "
        "and every threshold it records must hold.",
        f"The model's root digest must be {D2}.",
    ]


def test_describe_every_section_one_line_each(tmp_path, release):
    p = load(write(tmp_path, "policy.yaml", FULL))
    lines = describe(p)
    assert lines[0].startswith("Mode warn")
    assert "expires at 2027-06-30T23:59:59Z" in lines[1]
    assert lines[2].startswith("The model must be signed by both of: key ")
    assert lines[3] == f"Attestations must be signed by key {D2[:16]}."
    assert sum(line.startswith("The model must carry") for line in lines) == 5
    assert sum(line.startswith("Revoked ") for line in lines) == len(p.revocations)
    assert "Every dataset must have the digest" in "\n".join(lines)


@pytest.mark.parametrize("kind", ["key", "root", "identity", "root-with-identity"])
def test_starters_load(tmp_path, p256, pki, kind):
    (tmp_path / "release.pub").write_bytes(p256.public.read_bytes())
    (tmp_path / "ca.pem").write_bytes(pki.root.read_bytes())
    if kind == "key":
        text = starter("key", key="release.pub")
    elif kind == "root":
        text = starter("root", root="ca.pem")
    elif kind == "root-with-identity":
        text = starter("root", root="ca.pem", identity="https://example.com/release")
    else:
        text = starter("identity", identity="a@example.com", issuer="https://accounts.google.com")
    assert text.startswith("# A provenance policy") and "\nversion: 1\n" in text
    p = loads(text, base=tmp_path, source="starter.yaml")
    (signer,) = p.signers
    assert p.mode == "enforce" and p.files.unsigned == "deny"
    if kind == "key":
        assert isinstance(signer, KeySigner) and signer.pem == spki(p256.key)
    elif kind.startswith("root"):
        assert isinstance(signer, CertificateSigner) and signer.roots == (pki.root.read_bytes(),)
        if kind == "root-with-identity":
            assert signer.uri == Match(exact="https://example.com/release")
    else:
        assert isinstance(signer, SigstoreSigner) and signer.identity.exact == "a@example.com"
    with pytest.raises(UsageError):
        starter("identity", identity="a@example.com")


# ---------------------------------------------------------------- the CLI


def test_check_prints_what_the_policy_requires(tmp_path, p256, release):
    policy = write(tmp_path, "policy.yaml", "version: 1\nsigners: [{key: keys/release.pub}]\n")
    out = assert_ok(run_cli("policy", "check", policy))
    assert f"Policy {policy} is valid" in out
    assert f"The model must be signed by key {fingerprint(p256.key)[:16]}." in out
    data = contract(run_cli("policy", "check", policy, "--json"), "policy check", 0)
    assert data["policy"] == {
        "source": str(policy),
        "digest": load(policy).digest,
        "mode": "enforce",
        "expires": None,
        "requires": describe(load(policy)),
    }


def test_check_warns_about_an_expired_policy(here):
    write(
        here,
        "policy.yaml",
        f'version: 1\nsigners: [{{fingerprint: "{D1}"}}]\nexpires: 2020-01-01\n',
    )
    result = run_cli("policy", "check", "policy.yaml")
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: policy.yaml expired at 2020-01-01T23:59:59Z")
    assert "The policy expires at 2020-01-01T23:59:59Z" in result.output
    data = contract(run_cli("policy", "check", "policy.yaml", "--json"), "policy check", 0)
    assert data["policy"]["expires"] == "2020-01-01T23:59:59Z"


def test_check_reports_every_problem(here):
    write(here, "policy.yaml", "version: 1\nsigners: [{key: a.pub}]\nmode: lax\nthreshold: 0\n")
    stderr = assert_fails(run_cli("policy", "check", "policy.yaml"), 2, "line 3", "mode")
    assert "  also: policy.yaml line 4: threshold: must be at least 1" in stderr
    data = contract(run_cli("policy", "check", "policy.yaml", "--json"), "policy check", 2)
    assert data["error"]["code"] == "policy-invalid"
    assert data["error"]["details"] == [
        'policy.yaml line 3: mode: must be "enforce", "warn" or "audit", got the string \'lax\'',
        "policy.yaml line 4: threshold: must be at least 1, got the number 0",
    ]
    write(here, "policy.yaml", "version: 1\nsigners: [{key: a.pub}]\n")
    assert_fails(run_cli("policy", "check", "policy.yaml"), 2, "signers[0].key", "a.pub")


def test_check_unreadable_file_exits_3(here):
    assert_fails(run_cli("policy", "check", "nope.yaml"), 3, "does not exist")
    data = contract(run_cli("policy", "check", "nope.yaml", "--json"), "policy check", 3)
    assert data["error"]["code"] == "not-found"
    data = contract(run_cli("policy", "check", "--json"), "policy", 2)  # Click's own error
    assert data["error"]["code"] == "usage"


def test_init_writes_a_policy_that_checks(tmp_path, p256, monkeypatch):
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "release.pub"
    key.write_bytes(p256.public.read_bytes())
    (tmp_path / "policies").mkdir()
    monkeypatch.chdir(tmp_path)
    out = assert_ok(run_cli("policy", "init", "--key", "keys/release.pub", "-o", "policies/p.yaml"))
    assert "Wrote a starter policy to policies/p.yaml" in out
    written = (tmp_path / "policies" / "p.yaml").read_text()
    assert 'key: "../keys/release.pub"' in written  # relative to the policy's folder
    assert load("policies/p.yaml").signers[0] == KeySigner(
        "signers[0]", "release key", spki(p256.key)
    )
    assert_ok(run_cli("policy", "check", "policies/p.yaml"))

    # Never overwritten without --force; --force replaces it.
    (tmp_path / "policies" / "p.yaml").write_text("mine\n")
    assert_fails(
        run_cli("policy", "init", "--key", "keys/release.pub", "-o", "policies/p.yaml"),
        3,
        "refusing to overwrite",
        "--force",
    )
    assert (tmp_path / "policies" / "p.yaml").read_text() == "mine\n"
    data = contract(
        run_cli(
            "policy",
            "init",
            "--key",
            "keys/release.pub",
            "-o",
            "policies/p.yaml",
            "--force",
            "--json",
        ),
        "policy init",
        0,
    )
    assert data["output"] == "policies/p.yaml"
    assert (tmp_path / "policies" / "p.yaml").read_text() == data["text"] == written
    assert data["policy"]["source"] == "policies/p.yaml"


def test_init_to_stdout_and_other_kinds(tmp_path, pki, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ca.pem").write_bytes(pki.root.read_bytes())
    out = assert_ok(
        run_cli("policy", "init", "--identity", "a@example.com", "--issuer", "https://x.example")
    )
    p = loads(out, base=tmp_path, source="stdout.yaml")
    assert isinstance(p.signers[0], SigstoreSigner) and p.signers[0].issuer == "https://x.example"
    data = contract(
        run_cli("policy", "init", "--root", "ca.pem", "--identity", "a@example.com", "--json"),
        "policy init",
        0,
    )
    assert data["output"] is None
    signer = loads(data["text"], base=tmp_path, source="x").signers[0]
    assert isinstance(signer, CertificateSigner) and signer.email == Match(exact="a@example.com")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--identity", "a@example.com"],
        ["--issuer", "https://x.example"],
        ["--key", "k.pub", "--root", "ca.pem"],
        ["--key", "k.pub", "--identity", "a"],
    ],
)
def test_init_usage_errors(here, args):
    assert_fails(run_cli("policy", "init", *args), 2)
    contract(run_cli("policy", "init", *args, "--json"), "policy init", 2)


def test_init_names_a_missing_key_or_folder_by_its_flag(here):
    out = assert_fails(run_cli("policy", "init", "--key", "nokey.pub"), 3, "--key nokey.pub")
    assert "<stdout>" not in out and "does not exist" in out
    assert_fails(run_cli("policy", "init", "--root", "."), 3, "--root .", "not a file")
    (here / "k.pub").write_text("x")
    out = assert_fails(run_cli("policy", "init", "--key", "k.pub", "-o", "nodir/p.yaml"), 3)
    assert "the folder 'nodir' does not exist" in out


def test_init_checks_the_key_it_names(here):
    (here / "junk.pub").write_text("junk\n")
    assert_fails(run_cli("policy", "init", "--key", "junk.pub", "-o", "p.yaml"), 2, "junk.pub")
    assert not (here / "p.yaml").exists()


def _console_script() -> Path:
    script = Path(sys.executable).with_name("provenance")
    if not script.exists():
        pytest.skip("the provenance console script is not installed beside this Python")
    return script


def test_console_script_check_and_fifo(here, p256):
    (here / "release.pub").write_bytes(p256.public.read_bytes())
    write(here, "policy.yaml", "version: 1\nsigners: [{key: release.pub}]\nthreshold: 3\n")
    script = _console_script()
    run = subprocess.run(
        [script, "policy", "check", "policy.yaml", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    data = json.loads(run.stdout)
    assert not schema_errors("cli-policy.schema.json", data)
    assert (
        data["error"]["message"]
        == "policy.yaml line 3: threshold: is 3, but only 1 signer is listed"
    )
    os.mkfifo(here / "pipe.yaml")
    run = subprocess.run(
        [script, "policy", "check", "pipe.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 3 and "FIFO" in run.stderr and "Traceback" not in run.stderr


def test_help_teaches():
    for args in (["policy", "--help"], ["policy", "check", "--help"], ["policy", "init", "--help"]):
        out = assert_ok(run_cli(*args))
        assert "provenance policy" in out
    assert "policy" in assert_ok(run_cli("--help"))
