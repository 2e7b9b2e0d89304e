"""Policies through the command line, the audit log, and the example policies.

``provenance verify MODEL --policy P`` (exit 0 allowed, 1 denied, 2 a bad
policy, 3 bad input), its ``--json`` output against the schemas,
``$PROVENANCE_POLICY`` and ``$PROVENANCE_AUDIT_LOG``, ``policy explain``, the
audit log (schema, appends, a damaged last line, links and FIFOs, several
processes at once) and every file of ``examples/policies`` loaded with real
keys at the paths it names. The rules themselves are in ``test_policy.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    PROJECT_ROOT,
    KeyPair,
    Pki,
    assert_fails,
    assert_ok,
    make_model,
    run_cli,
    within,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_output_contract import contract, schema_errors
from test_policy import BUILDER, fingerprint, key_signer, sign, write_policy

from provenance import policy
from provenance.errors import InputError
from provenance.policy import Decision, Reason

EXAMPLES = PROJECT_ROOT / "examples" / "policies"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="session")
def cli_signed(tmp_path_factory: pytest.TempPathFactory, p256: KeyPair) -> Path:
    """A model signed by p256, with a training attestation by p256 (never changed)."""
    model = make_model(tmp_path_factory.mktemp("cli-signed") / "model")
    sign(model, p256)
    result = run_cli("attest", "training", model, "--key", p256.private, "--builder-id", BUILDER)
    assert result.exit_code == 0, result.output
    return model


@pytest.fixture
def changed(tmp_path: Path, cli_signed: Path) -> Path:
    """A copy of the signed model with a file added after signing."""
    model = Path(shutil.copytree(cli_signed, tmp_path / "changed"))
    (model / "extra.txt").write_text("added after signing\n")
    return model


@pytest.fixture
def allow(tmp_path: Path, p256: KeyPair) -> Path:
    return write_policy(tmp_path, {"version": 1, "signers": [key_signer(p256)]}, "allow.yaml")


def verify(model: Path, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    return run_cli("verify", model, *args, env=env)


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the log ends with a newline"
    return [json.loads(line) for line in lines[:-1]]


def assert_valid_audit(record: dict[str, Any]) -> None:
    errors = schema_errors("audit-log.schema.json", record)
    assert not errors, errors


def a_decision(tag: str, reasons: int = 1, size: int = 100) -> Decision:
    """A decision made by hand, for the audit log alone."""
    return Decision(
        allowed=False,
        passed=False,
        mode="enforce",
        model_path=Path(f"/models/{tag}"),
        policy_source="policy.yaml",
        policy_digest="0" * 64,
        checked_at="2026-01-01T00:00:00Z",
        reasons=tuple(
            Reason("file-unsigned", "files.unsigned", f"{tag} {i} " + "x" * size, f"f{i}")
            for i in range(reasons)
        ),
    )


# ================================================================ verify --policy: exit codes


def test_allowed_exits_0(cli_signed, allow):
    out = assert_ok(verify(cli_signed, "--policy", allow))
    assert f"Allowed by policy {allow}: '{cli_signed}'" in out
    assert "signed by    ECDSA P-256 key" in out
    assert "signed digest sha256:" in out


def test_denied_exits_1_with_every_reason(changed, allow, tmp_path, p256):
    err = assert_fails(verify(changed, "--policy", allow), 1, "denies", "'extra.txt'")
    assert err.startswith(f"verification failed: policy {allow} denies '{changed}'")
    out = verify(changed, "--policy", allow).stdout
    assert f"Denied by policy {allow}" in out
    # Each reason once: a denial's errors are in the error block, with their rule.
    assert "'extra.txt'" not in out
    assert "[files.unsigned] 'extra.txt' is not covered by the signature" in err

    # Two errors: the first is the reason line, the count of the others follows it.
    two = write_policy(
        tmp_path, {"version": 1, "signers": [key_signer(p256)], "pins": ["ab" * 32]}, "two.yaml"
    )
    err = assert_fails(verify(changed, "--policy", two), 1, "(and 1 more)")
    assert "[pins]" in err and "[files.unsigned]" in err


def test_untrusted_signer_exits_1(cli_signed, tmp_path, other_key):
    p = write_policy(tmp_path, {"version": 1, "signers": [key_signer(other_key)]})
    assert_fails(verify(cli_signed, "--policy", p), 1, "needs a trusted signature")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("version: 1\nsigners:\n  - key: k.pub\n    nmae: x\n", ["line 4", "signers[0]", "nmae"]),
        ("version: 1\nthreshold: two\nsigners:\n  - key: k.pub\n", ["line 2", "threshold"]),
        (
            "version: 1\nsigners:\n  - sigstore:\n      identity_regexp: '(['\n"
            "      issuer: https://i.example\n",
            ["line 4", "signers[0].sigstore.identity_regexp", "regular expression"],
        ),
        ("version: 1\nsigners: [\n  - key: k.pub\n", ["line", "YAML syntax error"]),
        ("version: 1\nsigners:\n  - key: missing.pub\n", ["line 3", "signers[0].key"]),
        (
            "version: 1\nsigners:\n  - key: k.pub\nmode: enforcing\n",
            ["line 4", "mode", "did you mean 'enforce'"],
        ),
    ],
    ids=["unknown-key", "wrong-type", "bad-regexp", "yaml-syntax", "missing-key-file", "enum"],
)
def test_bad_policy_exits_2_naming_the_line(cli_signed, tmp_path, p256, text, words):
    shutil.copy(p256.public, tmp_path / "k.pub")
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    err = assert_fails(verify(cli_signed, "--policy", p), 2, str(p), *words)
    assert "Traceback" not in err
    # `policy explain` refuses it the same way.
    assert_fails(run_cli("policy", "explain", cli_signed, "--policy", p), 2, *words)


def test_bad_policy_json_is_the_error_object(cli_signed, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("version: 2\nsigners: []\n")
    data = contract(verify(cli_signed, "--policy", p, "--json"), "verify", 2)
    assert data["error"]["code"] == "policy-invalid"
    assert "line 1" in data["error"]["message"]


def test_missing_model_exits_3(tmp_path, allow):
    assert_fails(verify(tmp_path / "nowhere", "--policy", allow), 3, "does not exist")


def test_missing_policy_file_exits_3(cli_signed, tmp_path):
    assert_fails(verify(cli_signed, "--policy", tmp_path / "absent.yaml"), 3, "absent.yaml")


@pytest.mark.parametrize(
    "extra",
    [
        ["--key", "K"],
        ["--identity", "a@b.c", "--issuer", "https://i.example"],
        ["--attestations"],
        ["--ignore-unsigned-files"],
        ["--ignore", "*.md"],
    ],
    ids=["key", "identity", "attestations", "ignore-unsigned", "ignore"],
)
def test_policy_with_trust_options_refused(cli_signed, allow, p256, extra):
    extra = [str(p256.public) if a == "K" else a for a in extra]
    assert_fails(verify(cli_signed, "--policy", allow, *extra), 2, "with --policy, leave out")


def test_audit_log_needs_a_policy(cli_signed, tmp_path, p256):
    log = tmp_path / "audit.jsonl"
    result = verify(cli_signed, "--key", p256.public, "--audit-log", log)
    assert_fails(result, 2, "--audit-log", "--policy")
    assert not log.exists()


# ================================================================ --json


def test_json_allowed_and_denied_match_the_schema(cli_signed, changed, allow):
    data = contract(verify(cli_signed, "--policy", allow, "--json"), "verify", 0)
    d = data["decision"]
    assert d["allowed"] and d["passed"] and d["mode"] == "enforce"
    assert d["policy"] == {"source": str(allow), "digest": policy.load(allow).digest}
    assert d["signers"][0]["kind"] == "key"
    assert {r["rule"]: r["held"] for r in d["rules"]}["signers"] is True
    assert set(data) == {"version", "command", "ok", "decision"}

    data = contract(verify(changed, "--policy", allow, "--json"), "verify", 1)
    d = data["decision"]
    assert not d["allowed"] and not d["passed"]
    assert data["error"]["code"] == "file-unsigned"
    [r] = [r for r in d["reasons"] if r["severity"] == "error"]
    assert (r["code"], r["rule"], r["subject"]) == ("file-unsigned", "files.unsigned", "extra.txt")


def test_json_with_attestations_and_lineage(cli_signed, tmp_path, p256):
    p = write_policy(
        tmp_path,
        {
            "version": 1,
            "signers": [key_signer(p256)],
            "attestations": [{"type": "training"}],
            "lineage": {"datasets": {"uris": ["https://nothing.example/*"]}},
        },
    )
    data = contract(verify(cli_signed, "--policy", p, "--json"), "verify", 0)
    [a] = data["decision"]["attestations"]
    assert a["ok"] and a["predicate_type"] == "https://slsa.dev/provenance/v1"
    assert data["decision"]["lineage"] == []


def test_attestations_file_option(cli_signed, tmp_path, p256):
    """--attestations-file goes with --policy: the attestations checked come from it."""
    p = write_policy(
        tmp_path,
        {"version": 1, "signers": [key_signer(p256)], "attestations": [{"type": "evaluation"}]},
    )
    assert_fails(verify(cli_signed, "--policy", p), 1, "no verified evaluation attestation")
    evals = tmp_path / "evals.jsonl"
    result = run_cli(
        "attest", "eval", cli_signed, "--key", p256.private, "--metric", "acc=1", "--output", evals
    )
    assert result.exit_code == 0, result.output
    assert_ok(verify(cli_signed, "--policy", p, "--attestations-file", evals))


# ================================================================ environment


def test_policy_from_the_environment(cli_signed, changed, allow, tmp_path, other_key):
    env = {"PROVENANCE_POLICY": str(allow)}
    assert f"Allowed by policy {allow}" in assert_ok(verify(cli_signed, env=env))
    assert_fails(verify(changed, env=env), 1, "'extra.txt'")
    # An option given on the command line wins over the environment.
    deny = write_policy(tmp_path, {"version": 1, "signers": [key_signer(other_key)]}, "deny.yaml")
    assert_ok(verify(cli_signed, "--policy", allow, env={"PROVENANCE_POLICY": str(deny)}))
    # With the variable set, trust options are refused as they are with --policy.
    assert_fails(verify(cli_signed, "--key", other_key.public, env=env), 2, "leave out")


def test_audit_log_from_the_environment(cli_signed, allow, tmp_path):
    log = tmp_path / "audit.jsonl"
    env = {"PROVENANCE_POLICY": str(allow), "PROVENANCE_AUDIT_LOG": str(log)}
    assert_ok(verify(cli_signed, env=env))
    [line] = log_lines(log)
    assert_valid_audit(line)
    assert (line["decision"], line["model"]) == ("allow", os.path.abspath(cli_signed))


# ================================================================ modes through the CLI


def test_warn_mode_exits_0_and_prints_every_reason(changed, tmp_path, p256):
    p = write_policy(
        tmp_path,
        {"version": 1, "mode": "warn", "signers": [key_signer(p256)], "pins": ["ab" * 32]},
    )
    result = verify(changed, "--policy", p)
    out = assert_ok(result)
    assert "in warn mode, though it would deny" in out
    assert "✗ [files.unsigned] 'extra.txt' is not covered by the signature" in out
    assert "✗ [pins] the model's root digest" in out
    data = contract(verify(changed, "--policy", p, "--json"), "verify", 0)
    assert data["ok"] and data["decision"]["allowed"] and not data["decision"]["passed"]


def test_audit_mode_logs_without_denying(changed, tmp_path, p256):
    p = write_policy(tmp_path, {"version": 1, "mode": "audit", "signers": [key_signer(p256)]})
    log = tmp_path / "audit.jsonl"
    out = assert_ok(verify(changed, "--policy", p, "--audit-log", log))
    assert "in audit mode, though it would deny" in out
    [line] = log_lines(log)
    assert_valid_audit(line)
    assert (line["decision"], line["passed"], line["mode"]) == ("allow", False, "audit")
    assert [(r["code"], r["rule"]) for r in line["reasons"] if r["severity"] == "error"] == [
        ("file-unsigned", "files.unsigned")
    ]


@pytest.mark.parametrize("mode", ["enforce", "warn", "audit"])
def test_expired_policy_exits_1_in_every_mode(cli_signed, tmp_path, p256, mode):
    p = write_policy(
        tmp_path,
        {"version": 1, "mode": mode, "expires": "2020-01-01", "signers": [key_signer(p256)]},
    )
    log = tmp_path / "audit.jsonl"
    assert_fails(
        verify(cli_signed, "--policy", p, "--audit-log", log),
        1,
        "the policy expired at 2020-01-01T23:59:59Z",
    )
    [line] = log_lines(log)
    assert line["decision"] == "deny"
    assert [r["code"] for r in line["reasons"]] == ["policy-expired"]


# ================================================================ the audit log


def test_audit_lines_validate_and_append(cli_signed, changed, allow, tmp_path):
    log = tmp_path / "audit.jsonl"
    assert_ok(verify(cli_signed, "--policy", allow, "--audit-log", log))
    assert_fails(verify(changed, "--policy", allow, "--audit-log", log), 1)
    first, second = log_lines(log)
    for line in (first, second):
        assert_valid_audit(line)
        assert line["policy_digest"] == policy.load(allow).digest
    assert (first["decision"], first["passed"]) == ("allow", True)
    assert (second["decision"], second["passed"]) == ("deny", False)
    assert first["root_digest"] == second["root_digest"]  # the same statement, verified
    assert first["signers"][0]["kind"] == "key"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_audit_record_of_an_untrusted_model(tmp_path, other_key, p256):
    model = make_model(tmp_path / "m")
    sign(model, other_key)
    rules = policy.load(write_policy(tmp_path, {"version": 1, "signers": [key_signer(p256)]}))
    log = tmp_path / "audit.jsonl"
    policy.append_audit(log, policy.evaluate(rules, model))
    [line] = log_lines(log)
    assert_valid_audit(line)
    assert line["root_digest"] is None and line["signers"] == []


def test_a_damaged_last_line_does_not_swallow_the_next(tmp_path):
    log = tmp_path / "audit.jsonl"
    policy.append_audit(log, a_decision("first"))
    with open(log, "ab") as f:
        f.write(b'{"version":1,"time":"2026-01-01T00:00:00')  # a writer that crashed
    policy.append_audit(log, a_decision("next"))
    lines = log.read_bytes().split(b"\n")
    assert len(lines) == 4 and lines[-1] == b""
    assert json.loads(lines[0])["model"] == "/models/first"
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[1])
    record = json.loads(lines[2])
    assert record["model"] == "/models/next"
    assert_valid_audit(record)


def test_audit_log_through_a_symlink_is_refused(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_bytes(b"")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(InputError) as e:
        policy.append_audit(link, a_decision("x"))
    assert e.value.code == "symlink-refused"
    assert target.read_bytes() == b""
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "created-through-the-link.jsonl")
    with pytest.raises(InputError):
        policy.append_audit(dangling, a_decision("x"))
    assert not (tmp_path / "created-through-the-link.jsonl").exists()


def test_audit_log_symlink_through_the_cli_exits_3(cli_signed, allow, tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_bytes(b"")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    assert_fails(verify(cli_signed, "--policy", allow, "--audit-log", link), 3, "symbolic link")
    assert target.read_bytes() == b""


def test_audit_log_fifo_is_refused_without_blocking(cli_signed, allow, tmp_path):
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as e:
        within(10, lambda: policy.append_audit(fifo, a_decision("x")))
    assert e.value.code == "special-file"
    result = within(30, lambda: verify(cli_signed, "--policy", allow, "--audit-log", fifo))
    assert_fails(result, 3, "not a regular file")


def test_audit_log_folder_is_refused(tmp_path):
    with pytest.raises(InputError):
        policy.append_audit(tmp_path, a_decision("x"))


def test_audit_log_big_decision_is_cut_to_one_line(tmp_path):
    from provenance.policy._audit import MAX_LINE_BYTES

    log = tmp_path / "audit.jsonl"
    policy.append_audit(log, a_decision("big", reasons=300, size=8000))
    data = log.read_bytes()
    assert data.count(b"\n") == 1 and len(data) <= MAX_LINE_BYTES
    [line] = log_lines(log)
    assert_valid_audit(line)
    assert line["reasons_omitted"] == 300 - len(line["reasons"])


def _append_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        policy.append_audit(path, a_decision(f"{worker}-{i}", reasons=8, size=8000))


def test_concurrent_appends_from_several_processes(tmp_path):
    log = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(log), w, 20)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = log_lines(log)  # every line parses
    assert len(lines) == 160
    assert sorted(line["model"] for line in lines) == sorted(
        f"/models/{w}-{i}" for w in range(8) for i in range(20)
    )
    for line in lines[:3]:
        assert_valid_audit(line)


# ================================================================ policy explain


def test_explain_allowed_lists_every_rule(cli_signed, tmp_path, p256):
    p = write_policy(
        tmp_path,
        {
            "version": 1,
            "expires": "2099-01-01",
            "signers": [key_signer(p256)],
            "attestations": [{"type": "training"}],
            "files": {"max_total_bytes": "1 MB"},
        },
    )
    result = run_cli("policy", "explain", cli_signed, "--policy", p)
    out = assert_ok(result)
    assert out.startswith(f"Allowed by policy {p}")
    for rule in ("expires", "signers", "files", "files.unsigned", "files.max_total_bytes"):
        assert f"  ✓ {rule}: " in out, out
    assert "  ✓ attestations[0]: training (SLSA provenance) attestation, line 1" in out

    data = contract(
        run_cli("policy", "explain", cli_signed, "--policy", p, "--json"), "policy explain", 0
    )
    rules = {r["rule"]: r["held"] for r in data["decision"]["rules"]}
    assert rules == {
        "expires": True,
        "signers": True,
        "files": True,
        "files.unsigned": True,
        "files.max_total_bytes": True,
        "attestations[0]": True,
    }


def test_explain_denied_shows_what_did_not_hold(changed, tmp_path, p256):
    p = write_policy(
        tmp_path,
        {
            "version": 1,
            "signers": [key_signer(p256)],
            "files": {"allow_unsigned": ["*.md"]},
            "attestations": [{"type": "evaluation"}],
        },
    )
    (changed / "README.md").write_text("notes")
    result = run_cli("policy", "explain", changed, "--policy", p)
    assert_fails(result, 1, "denies")
    out = result.stdout
    assert "  ✓ signers: 1 of 1" in out
    assert "  ✗ files.unsigned: 1 unsigned file(s)" in out
    assert "  ✗ attestations[0]: no evaluation attestation satisfies it" in out
    assert "Reasons:" in out
    # Notes verify leaves out are here.
    assert "· [files.allow_unsigned] 'README.md' is not signed; allowed by '*.md'" in out
    assert "allowed by '*.md'" not in verify(changed, "--policy", p).stdout

    data = contract(
        run_cli("policy", "explain", changed, "--policy", p, "--json"), "policy explain", 1
    )
    rules = {r["rule"]: r["held"] for r in data["decision"]["rules"]}
    assert rules["files.unsigned"] is False and rules["attestations[0]"] is False
    assert rules["signers"] is True


def test_explain_from_the_environment(cli_signed, allow):
    assert_ok(run_cli("policy", "explain", cli_signed, env={"PROVENANCE_POLICY": str(allow)}))


# ================================================================ examples/policies


def _public_pem(folder: Path, name: str) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path = folder / f"{name}.pub"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def examples(tmp_path: Path, pki: Pki, local_sigstore: Any) -> Path:
    """examples/policies copied, with generated keys, certificates and a trusted root
    at the relative paths the policies name."""
    folder = Path(shutil.copytree(EXAMPLES, tmp_path / "policies"))
    for name in ("release", "training", "foundation", "alice", "bob", "carol"):
        _public_pem(folder / "keys", name)
    (folder / "pki").mkdir()
    shutil.copy(pki.root, folder / "pki" / "root-ca.pem")
    shutil.copy(pki.intermediate, folder / "pki" / "signing-ca.pem")
    (folder / "sigstore").mkdir()
    shutil.copy(local_sigstore.trusted_root_path, folder / "sigstore" / "trusted_root.json")
    return folder


EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def _is_revocation_list(path: Path) -> bool:
    doc = yaml.safe_load(path.read_text())
    return isinstance(doc, dict) and "version" not in doc


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_example_loads(examples, name):
    path = examples / name
    if _is_revocation_list(path):  # revoked.yaml: included by revocations.yaml
        assert name == "revoked.yaml"
        loaded = policy.load(examples / "revocations.yaml")
        assert any("(revoked.yaml)" in r.where for r in loaded.revocations)
        return
    loaded = policy.load(path)
    assert loaded.signers
    assert_ok(run_cli("policy", "check", path))


def test_example_two_of_three(examples, tmp_path):
    model = make_model(tmp_path / "m")
    keys = examples / "keys"
    run = lambda *a: run_cli(*a)  # noqa: E731
    assert run("sign", model, "--key", keys / "alice.pem").exit_code == 0
    p = examples / "two-of-three.yaml"
    assert_fails(verify(model, "--policy", p), 1, "2 distinct trusted signers", "it has 1")
    assert run("sign", model, "--key", keys / "bob.pem", "--cosign").exit_code == 0
    assert "Allowed by policy" in assert_ok(verify(model, "--policy", p))


def test_example_revocations_in_warn_mode(examples, tmp_path):
    model = make_model(tmp_path / "m")
    assert run_cli("sign", model, "--key", examples / "keys" / "release.pem").exit_code == 0
    p = examples / "revocations.yaml"
    out = assert_ok(verify(model, "--policy", p))
    assert out.startswith(f"Allowed by policy {p}")  # passed: nothing revoked applies
    (model / "extra.txt").write_text("x")
    out = assert_ok(verify(model, "--policy", p))  # warn mode: allowed, and said why
    assert "in warn mode, though it would deny" in out and "'extra.txt'" in out


def test_example_key_policy(examples, tmp_path):  # needs provenance.formats
    import pickle

    model = make_model(tmp_path / "m")
    (model / "weights" / "model-00001.bin").unlink()  # random bytes are not pickle, but
    (model / "weights" / "model-00002.bin").unlink()  # keep the model plainly pickle-free
    assert run_cli("sign", model, "--key", examples / "keys" / "release.pem").exit_code == 0
    p = examples / "key.yaml"
    assert_ok(verify(model, "--policy", p))
    (model / "README.md").write_text("# added after signing: allowed by *.md\n")
    assert_ok(verify(model, "--policy", p))

    pickled = make_model(tmp_path / "pickled")
    (pickled / "weights" / "model-00001.bin").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    assert run_cli("sign", pickled, "--key", examples / "keys" / "release.pem").exit_code == 0
    data = contract(verify(pickled, "--policy", p, "--json"), "verify", 1)
    errors = [(r["code"], r["rule"], r.get("subject")) for r in data["decision"]["reasons"]]
    assert ("format-denied", "files.formats.deny", "weights/model-00001.bin") in errors


def test_example_revocations_list_denies_its_digest(examples, tmp_path):
    """The included list is live: a digest added to revoked.yaml is denied (though warn mode
    still allows, the decision did not pass and names the entry)."""
    model = make_model(tmp_path / "m")
    result = run_cli("sign", model, "--key", examples / "keys" / "release.pem", "--json")
    root = json.loads(result.stdout)["root_digest"]
    (examples / "revoked.yaml").write_text(yaml.safe_dump({"revocations": {"digests": [root]}}))
    data = contract(verify(model, "--policy", examples / "revocations.yaml", "--json"), "verify", 0)
    d = data["decision"]
    assert d["allowed"] and not d["passed"]
    assert [(r["code"], r["rule"]) for r in d["reasons"] if r["severity"] == "error"] == [
        ("revoked-digest", "revocations.include[0] (revoked.yaml).digests[0]")
    ]


def test_fingerprint_of_a_generated_key_matches_the_loader(examples):
    """What `provenance key fingerprint` prints is what a policy's fingerprint entry takes."""
    pub = examples / "keys" / "carol.pub"
    printed = json.loads(assert_ok(run_cli("key", "fingerprint", pub, "--json")))["signer"][
        "key_fingerprint"
    ]
    spec = {"version": 1, "signers": [{"fingerprint": printed, "keys": [str(pub)]}]}
    loaded = policy.load(write_policy(examples, spec, "carol.yaml"))
    assert loaded.signers[0].fingerprint == printed  # type: ignore[union-attr]
    assert printed == fingerprint(KeyPair(examples / "keys" / "carol.pem", pub, None))
