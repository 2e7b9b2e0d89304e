"""The --json output contract (v1): real CLI output validated against schemas/cli-*.

Every case runs the real command and checks what a CI step would rely on:
one UTF-8 JSON object on stdout, valid against its command's schema (with
``additionalProperties: false``, so fields cannot drift), the exit code the
README promises, and hints that name an option of the command that failed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import jsonschema
import pytest
from click.testing import CliRunner, Result
from conftest import PROJECT_ROOT, run_cli
from referencing import Registry, Resource

from provenance.errors import Hint
from provenance_cli._output import HINTS, render_hint
from provenance_cli.main import cli

SCHEMAS = PROJECT_ROOT / "schemas"
BASE = "https://ml-provenance.dev/schemas/"
WEIGHTS = "weights/model-00001.bin"


@functools.cache
def _docs() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(SCHEMAS.glob("*.json"))}


@functools.cache
def _registry() -> Registry:
    return Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in _docs().values()
    )


def schema_errors(name: str, instance: object) -> list[str]:
    schema = _docs()[name]
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def contract(result: Result, command: str, exit_code: int) -> dict:
    """The one JSON object on stdout, valid against cli-COMMAND (and cli-error if bare)."""
    out = result.output + (result.stderr or "")
    assert result.exit_code == exit_code, f"exit {result.exit_code}, wanted {exit_code}:\n{out}"
    assert "Traceback" not in out
    text = result.stdout_bytes.decode("utf-8")  # strict: valid UTF-8 or this raises
    data = json.loads(text)
    assert isinstance(data, dict)
    assert data["version"] == 1 and data["ok"] is (exit_code == 0), data
    assert data["command"] == command
    top = command.split()[0]
    errors = schema_errors(f"cli-{top}.schema.json", data)
    assert not errors, f"{command} --json does not match its schema: {errors}\n{text}"
    if exit_code:
        assert data["error"]["exit_code"] == exit_code
        assert data["error"]["message"]
    if exit_code and set(data) == {"version", "command", "ok", "error"}:
        assert not schema_errors("cli-error.schema.json", data)
    return data


def sign(model: Path, key, *extra: object) -> dict:
    return contract(run_cli("sign", model, "--key", key.private, *extra, "--json"), "sign", 0)


def verify(model: Path, key, *extra: object, exit_code: int = 0) -> dict:
    result = run_cli("verify", model, "--key", key.public, *extra, "--json")
    return contract(result, "verify", exit_code)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- the schemas themselves


CONTRACT_SCHEMAS = [
    "cli-error.schema.json",
    "cli-hash.schema.json",
    "cli-layout.schema.json",
    "cli-run.schema.json",
    "cli-verify-pipeline.schema.json",
    "cli-sign.schema.json",
    "cli-verify.schema.json",
    "output-common.schema.json",
]


@pytest.mark.parametrize("name", CONTRACT_SCHEMAS)
def test_schema_is_valid_and_closed(name: str) -> None:
    doc = _docs()[name]
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == BASE + name
    if name.startswith("cli-"):
        assert doc["additionalProperties"] is False
        assert {"version", "command", "ok"} <= set(doc["properties"])


# ---------------------------------------------------------------- hash


def test_hash_json(model: Path) -> None:
    import provenance

    data = contract(run_cli("hash", model, "--json"), "hash", 0)
    manifest = provenance.hash_model(model)
    assert data["root_digest"] == manifest.root_digest
    # Without the head it is the manifest itself (what attest dataset's manifestDigest hashes).
    body = {k: v for k, v in data.items() if k not in ("version", "command", "ok")}
    assert body == manifest.to_json()


def test_hash_json_failures(model: Path, tmp_path: Path) -> None:
    data = contract(run_cli("hash", tmp_path / "missing", "--json"), "hash", 3)
    assert data["error"]["code"] == "not-found"

    data = contract(
        run_cli("hash", model, "--method", "files", "--shard-size", "1000", "--json"), "hash", 2
    )
    assert "--shard-size" in data["error"]["message"]

    # Click's own usage errors are the same error object under --json.
    data = contract(run_cli("hash", model, "--hash", "md5", "--json"), "hash", 2)
    assert data["error"]["code"] == "usage" and "md5" in data["error"]["message"]
    assert data["error"]["hint"] == "see: provenance hash --help"
    contract(run_cli("hash", "--json"), "hash", 2)  # missing argument
    contract(run_cli("hash", model, "--shard-size", "lots", "--json"), "hash", 2)


def test_hash_symlink_hint_names_the_hash_option(model: Path) -> None:
    (model / "link").symlink_to(model / "config.json")
    data = contract(run_cli("hash", model, "--json"), "hash", 3)
    assert data["error"]["code"] == "symlink-refused"
    assert data["error"]["hint"] == render_hint(Hint.ALLOW_SYMLINKS, "hash")
    assert "--allow-symlinks" in data["error"]["hint"]
    assert "--allow-symlinks" not in data["error"]["message"]  # the library names no flag

    text = run_cli("hash", model)
    assert text.exit_code == 3
    lines = text.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert lines[1] == f"  hint: {render_hint(Hint.ALLOW_SYMLINKS, 'hash')}"


def test_non_utf8_file_name_still_gives_utf8_json(model: Path) -> None:
    if sys.platform == "darwin":
        pytest.skip("APFS refuses file names that are not UTF-8")
    open(os.path.join(os.fsencode(model), b"bad-\xff.bin"), "wb").close()
    result = run_cli("hash", model, "--json")
    assert result.exit_code in (0, 3), result.output
    json.loads(result.stdout_bytes.decode("utf-8"))


# ---------------------------------------------------------------- sign


def test_sign_json(model: Path, p256) -> None:
    data = sign(model, p256)
    assert data["signature"] == str(model / "model.sig")
    assert data["files"] == 8 and data["resource_count"] == 8
    signer = data["signer"]
    assert signer["kind"] == "key"
    assert signer["key_fingerprint"] == hashlib.sha256(p256.public.read_bytes()).hexdigest()
    # One signer shape: what sign reports is what verify reports.
    checked = verify(model, p256)
    assert checked["signer"] == signer
    assert checked["signers"] == [signer]


def test_sign_json_with_certificate_and_shards(model: Path, pki) -> None:
    certificate = ("--key", pki.leaf_key, "--cert", pki.leaf, "--chain", pki.intermediate)
    result = run_cli("sign", model, *certificate, "--shard-size", "1000", "--json")
    data = contract(result, "sign", 0)
    assert data["signer"]["kind"] == "certificate"
    assert data["serialization"]["method"] == "shards"
    assert data["resource_count"] > data["files"]
    checked = contract(run_cli("verify", model, "--root", pki.root, "--json"), "verify", 0)
    assert checked["signer"]["certificate_subject"] == data["signer"]["certificate_subject"]


def _signer_errors(signer: object) -> list[str]:
    schema = {"$ref": BASE + "output-common.schema.json#/$defs/signer"}
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    return [e.message for e in validator.iter_errors(signer)]


def test_describe_bundle_reads_the_signer_in_the_one_shape(model: Path, p256, pki) -> None:
    """What inspect shows (read, not verified) has the shape sign and verify report."""
    from provenance.bundle import Bundle
    from provenance.signing import describe_bundle

    signed = sign(model, p256)
    info = describe_bundle(Bundle.read(model / "model.sig")).to_json()
    assert not _signer_errors(info)
    assert info["kind"] == "key"
    assert info["key_fingerprint"] == signed["signer"]["key_fingerprint"]

    certificate = ("--key", pki.leaf_key, "--cert", pki.leaf, "--chain", pki.intermediate)
    signed = contract(run_cli("sign", model, *certificate, "--json"), "sign", 0)
    info = describe_bundle(Bundle.read(model / "model.sig")).to_json()
    assert not _signer_errors(info)
    assert info["kind"] == "certificate"
    assert info["certificate_subject"] == signed["signer"]["certificate_subject"]
    assert info["chain_length"] == 2


def test_sign_json_failures(model: Path, p256, tmp_path: Path) -> None:
    data = contract(run_cli("sign", model, "--key", tmp_path / "nope.pem", "--json"), "sign", 3)
    assert "nope.pem" in data["error"]["message"]
    contract(run_cli("sign", model, "--json"), "sign", 2)  # no signer
    contract(run_cli("sign", model, "--sigstore", "--key", p256.private, "--json"), "sign", 2)
    contract(run_cli("sign", model, "--key", p256.private, "--kms", "x:y", "--json"), "sign", 2)
    no_cert = ("sign", model, "--chain", p256.public, "--key", p256.private, "--json")
    contract(run_cli(*no_cert), "sign", 2)
    contract(run_cli("sign", tmp_path / "missing", "--key", p256.private, "--json"), "sign", 3)
    assert not (model / "model.sig").exists()


def test_sign_symlink_hint(model: Path, p256) -> None:
    (model / "link").symlink_to(model / "config.json")
    data = contract(run_cli("sign", model, "--key", p256.private, "--json"), "sign", 3)
    assert data["error"]["hint"] == render_hint(Hint.ALLOW_SYMLINKS, "sign")
    assert data["error"]["hint"].startswith("pass --allow-symlinks")
    sign(model, p256, "--allow-symlinks")


# ---------------------------------------------------------------- verify


def test_verify_json_passes(model: Path, p256) -> None:
    sign(model, p256)
    data = verify(model, p256)
    assert data["signer"] == data["signers"][0]
    assert data["findings"] == [] and data["unsigned_files_ignored"] == []
    assert data["files"] == 8 and data["manifest"]["root_digest"] == data["root_digest"]


def test_verify_json_tampered_file(model: Path, p256) -> None:
    sign(model, p256)
    _flip(model / WEIGHTS)
    (model / "config.json").unlink()
    data = verify(model, p256, exit_code=1)
    assert data["error"]["code"] == "file-modified"
    assert WEIGHTS in data["error"]["message"]
    assert len(data["error"]["details"]) == 2
    by_code = {f["code"]: f for f in data["findings"]}
    assert by_code["file-modified"]["path"] == WEIGHTS
    assert by_code["file-missing"]["path"] == "config.json"
    # The signature verified, so who signed it is still reported.
    assert data["signer"]["kind"] == "key"


def test_verify_json_wrong_key(model: Path, p256, other_key) -> None:
    sign(model, p256)
    data = verify(model, other_key, exit_code=1)
    assert data["error"]["code"] == "wrong-key"
    assert data["error"]["hint"] == render_hint(Hint.KEY, "verify")
    assert data["error"]["hint"].startswith("pass --key ")
    assert data["signers"] == [] and data["root_digest"] is None and "manifest" not in data

    text = run_cli("verify", model, "--key", other_key.public)
    assert text.exit_code == 1
    assert text.stderr.splitlines()[1] == f"  hint: {data['error']['hint']}"


def test_verify_json_missing_signature(model: Path, p256, tmp_path: Path) -> None:
    data = verify(model, p256, exit_code=3)
    assert data["error"]["code"] == "signature-missing"
    assert data["error"]["hint"] == "pass --signature PATH"
    assert "--signature" not in data["error"]["message"]
    # Named explicitly and missing: bad input too, also with --attestations.
    for extra in ((), ("--attestations",)):
        data = verify(model, p256, "--signature", tmp_path / "nope.sig", *extra, exit_code=3)
        assert data["error"]["code"] == "signature-missing"


def test_verify_json_usage_errors(model: Path, p256, pki) -> None:
    sign(model, p256)
    contract(run_cli("verify", model, "--json"), "verify", 2)  # no trust
    result = run_cli("verify", model, "--key", p256.public, "--root", pki.root, "--json")
    contract(result, "verify", 2)
    contract(run_cli("verify", model, "--key", p256.public, "--offline", "--json"), "verify", 2)
    data = contract(run_cli("verify", model, "--identity", "a@b.c", "--json"), "verify", 2)
    assert data["error"]["hint"] == render_hint(Hint.ISSUER, "verify")
    bogus = ("verify", model, "--key", p256.public, "--bogus", "--json")
    data = contract(run_cli(*bogus), "verify", 2)
    assert "--bogus" in data["error"]["message"]
    contract(run_cli("verify", "--json"), "verify", 2)


def test_verify_json_unsigned_file(model: Path, p256) -> None:
    sign(model, p256)
    (model / "extra.bin").write_bytes(b"planted")
    data = verify(model, p256, exit_code=1)
    assert data["error"]["code"] == "file-unsigned"
    assert data["error"]["hint"] == render_hint(Hint.IGNORE_UNSIGNED, "verify")
    (finding,) = data["findings"]
    assert finding["hint"] == Hint.IGNORE_UNSIGNED and finding["path"] == "extra.bin"
    data = verify(model, p256, "--ignore-unsigned-files")
    assert data["unsigned_files_ignored"] == ["extra.bin"]
    assert [f["severity"] for f in data["findings"]] == ["info"]


def test_verify_json_attestations(model: Path, p256, other_key) -> None:
    sign(model, p256)
    attest = ("attest", "eval", model, "--key", p256.private, "--metric", "acc=0.9")
    assert run_cli(*attest).exit_code == 0
    data = verify(model, p256, "--attestations")
    assert [c["ok"] for c in data["attestations"]] == [True]

    attest = ("attest", "eval", model, "--key", other_key.private, "--metric", "acc=0.1")
    assert run_cli(*attest).exit_code == 0
    data = verify(model, p256, "--attestations", exit_code=1)
    assert [c["ok"] for c in data["attestations"]] == [True, False]
    assert any(f["code"] == "attestation-invalid" for f in data["findings"])


def test_verify_json_attestations_without_signature(tmp_path: Path, p256) -> None:
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "train.jsonl").write_text('{"x": 1}\n')
    assert run_cli("attest", "dataset", dataset, "--key", p256.private).exit_code == 0
    # Attestations without a signature are an explicit choice (a missing one is bad input).
    missing = verify(dataset, p256, "--attestations", exit_code=3)
    assert missing["error"]["code"] == "signature-missing"
    assert "--attestations-only" in missing["error"]["hint"]
    data = verify(dataset, p256, "--attestations-only")
    assert data["signature"] is None and data["signers"] == [] and "signer" not in data
    assert data["attestations"][0]["ok"] is True
    assert data["subject_source"] == "hash" and "manifest" in data
    pinned = verify(dataset, p256, "--attestations-only", "--subject-digest", data["root_digest"])
    assert pinned["subject_source"] == "given" and "manifest" not in pinned
    assert pinned["root_digest"] == data["root_digest"]


def test_keyless_sign_and_verify_json(local_sigstore, model: Path) -> None:
    alice = "alice@example.com"
    token = local_sigstore.mint_token(alice)
    config = ("--trust-config", local_sigstore.trust_config_path)
    signed = contract(
        run_cli("sign", model, "--sigstore", "--identity-token", token, *config, "--json"),
        "sign",
        0,
    )
    assert signed["signer"]["kind"] == "keyless"
    assert signed["signer"]["identity"] == alice
    trust = ("--identity", alice, "--issuer", local_sigstore.issuer, *config)
    checked = contract(run_cli("verify", model, *trust, "--json"), "verify", 0)
    signer = checked["signer"]
    assert (signer["kind"], signer["identity"]) == ("keyless", alice)
    assert signer["issuer"] == signed["signer"]["issuer"] == local_sigstore.issuer
    assert isinstance(signer["log_index"], int) and signer["signed_at"]

    bob = ("--identity", "bob@example.com", "--issuer", local_sigstore.issuer, *config)
    failed = contract(run_cli("verify", model, *bob, "--json"), "verify", 1)
    assert failed["signers"] == [] and failed["findings"][0]["severity"] == "error"


# ---------------------------------------------------------------- hints


def _options_of(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("name", sorted(HINTS))
def test_every_hint_names_an_option_of_its_own_command(name: str) -> None:
    """A hint never advises an option the command does not have (inspect has no
    --signature, keyless sign has no --offline)."""
    ctx = click.Context(cli)
    command: click.Command | None = cli
    for part in name.split(" "):  # "attest prune": a subcommand with a row of its own
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, part)
    assert command is not None
    if isinstance(command, click.Group):
        # attest: every subcommand that renders with this row must have the option.
        subs = [
            command.get_command(ctx, n)
            for n in command.list_commands(ctx)
            if f"{name} {n}" not in HINTS
        ]
        options = set.intersection(*(_options_of(c) for c in subs if c is not None))
    else:
        options = _options_of(command)
    for hint in vars(Hint).values():
        if not isinstance(hint, str) or hint.startswith("_"):
            continue
        text = render_hint(hint, name)
        for flag in re.findall(r"--[a-z][a-z-]*", text or ""):
            # `provenance sign ...` in verify's sign-first hint names another command
            if f"provenance sign MODEL {flag}" in (text or "") and name != "sign":
                continue
            assert flag in options, f"{name}: hint {hint!r} -> {text!r} names {flag}"


def test_hints_that_do_not_apply_are_left_out() -> None:
    assert render_hint(Hint.OFFLINE, "sign") is None  # a verify option
    assert render_hint(Hint.SIGNATURE_PATH, "inspect") is None  # inspect takes TARGET
    assert render_hint(Hint.ALLOW_SYMLINKS, "verify") is None  # the signature decides
    assert render_hint(Hint.KEY, "attest training") == render_hint(Hint.KEY, "attest")


def test_inspect_missing_signature_advises_no_signature_option(tmp_path: Path) -> None:
    result = run_cli("inspect", tmp_path / "missing.sig", "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert not schema_errors("cli-error.schema.json", data)
    assert "--signature" not in json.dumps(data)
    assert "--signature" not in run_cli("inspect", tmp_path / "missing.sig").stderr


# ---------------------------------------------------------------- rendering


def test_no_color(model: Path, p256) -> None:
    sign(model, p256)
    runner = CliRunner()
    args = ["verify", str(model), "--key", str(p256.public)]
    coloured = runner.invoke(cli, args, color=True)
    assert coloured.exit_code == 0 and "\x1b[" in coloured.output  # the test can see colour
    plain = runner.invoke(cli, args, color=True, env={"NO_COLOR": "1"})
    assert plain.exit_code == 0 and "\x1b[" not in plain.output
    _flip(model / WEIGHTS)
    failed = runner.invoke(cli, args, color=True, env={"NO_COLOR": "1"})
    assert failed.exit_code == 1 and "\x1b[" not in failed.stderr


def _closed_stdout(*args: object) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with a stdout pipe nobody reads (as under `| head -0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", *map(str, args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("as_json", [False, True])
def test_closed_stdout_keeps_the_verdict(model: Path, p256, as_json: bool) -> None:
    sign(model, p256)
    extra = ["--json"] if as_json else []
    passed = _closed_stdout("verify", model, "--key", p256.public, *extra)
    assert passed.returncode == 0, passed.stderr
    assert b"BrokenPipe" not in passed.stderr and b"Exception ignored" not in passed.stderr
    _flip(model / WEIGHTS)
    failed = _closed_stdout("verify", model, "--key", p256.public, *extra)
    assert failed.returncode == 1, failed.stderr
    assert b"BrokenPipe" not in failed.stderr
    hashed = _closed_stdout("hash", model, *extra)
    assert hashed.returncode == 0, hashed.stderr


def test_cli_modules_import_no_private_library_module() -> None:
    """The front end uses the public API only (issue point 7)."""
    private = re.compile(r"^\s*(from|import)\s+provenance\.(\w+\.)*_\w+", re.MULTILINE)
    mine = ["main", "_common", "_output", "_signer_options", "hash", "sign", "verify"]
    for name in mine:
        source = (PROJECT_ROOT / "cli" / f"{name}.py").read_text("utf-8")
        found = [m.group(0).strip() for m in private.finditer(source)]
        assert not [f for f in found if "provenance._version" not in f], (name, found)


# ---------------------------------------------------------------- inspect, lineage, attest


NEW_CONTRACT_SCHEMAS = [
    "cli-inspect.schema.json",
    "cli-lineage.schema.json",
    "cli-attest.schema.json",
]


@pytest.mark.parametrize("name", NEW_CONTRACT_SCHEMAS)
def test_inspect_lineage_attest_schemas_are_valid_and_closed(name: str) -> None:
    test_schema_is_valid_and_closed(name)


def _attest(*args: object, exit_code: int = 0) -> dict:
    """`provenance attest SUB ... --json`, valid against cli-attest."""
    return contract(run_cli("attest", *args, "--json"), f"attest {args[0]}", exit_code)


def _dataset(folder: Path) -> Path:
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"x": 1}\n{"x": 2}\n')
    return folder


def test_attest_json_dataset_training_eval(model: Path, p256, tmp_path: Path) -> None:
    import provenance

    signed = sign(model, p256)
    data_dir = _dataset(tmp_path / "data")
    ds = _attest("dataset", data_dir, "--key", p256.private, "--split", "train=2")
    assert ds["attestations_file"] == str(data_dir / "model.intoto.jsonl") and ds["line"] == 1
    (subject,) = ds["statement"]["subject"]
    assert subject["digest"]["sha256"] == provenance.hash_model(data_dir).root_digest
    # One signer shape: what attest reports is what sign reports for the same key.
    assert ds["signer"] == signed["signer"]

    builder = ("--builder-id", "https://ci.example/runner")
    trained = _attest("training", model, "--key", p256.private, "--dataset", data_dir, *builder)
    assert trained["line"] == 1 and trained["signer"] == signed["signer"]
    assert trained["statement"]["subject"][0]["digest"]["sha256"] == signed["root_digest"]
    scored = _attest("eval", model, "--key", p256.private, "--metric", "acc=0.9")
    assert scored["line"] == 2 and scored["attestations_file"] == trained["attestations_file"]

    # --output and the hashing options are the dataclass groups' (nothing popped by position).
    out = tmp_path / "elsewhere.jsonl"
    sharded = _attest(
        "eval", model, "--key", p256.private, "--metric", "acc=1", "--output", out,
        "--shard-size", "1000",
    )  # fmt: skip
    assert sharded["attestations_file"] == str(out) and out.is_file()
    assert sharded["statement"]["subject"][0]["digest"]["sha256"] != signed["root_digest"]

    # verify --attestations reports each line's signer in the same shape.
    checked = verify(model, p256, "--attestations")
    assert [c["signer"] for c in checked["attestations"]] == [signed["signer"]] * 2


def test_attest_json_failures(model: Path, p256, tmp_path: Path) -> None:
    data = _attest("eval", model, "--metric", "acc=1", exit_code=2)  # no signer
    assert data["error"]["code"] == "usage"
    data = _attest("dataset", model, "--key", p256.private, "--split", "a=-5", exit_code=2)
    assert "-5" in data["error"]["message"]
    data = _attest("training", model, "--key", p256.private, exit_code=2)  # outside CI
    assert "--builder-id" in data["error"]["message"]
    data = _attest("eval", tmp_path / "missing", "--key", p256.private, "--metric", "a=1",
                   exit_code=3)  # fmt: skip
    _attest("eval", model, "--key", tmp_path / "nope.pem", "--metric", "a=1", exit_code=3)
    both = ("--key", p256.private, "--kms", "x:y")
    _attest("eval", model, *both, "--metric", "a=1", exit_code=2)
    _attest("eval", model, "--key", p256.private, exit_code=2)  # Click: --metric is required
    _attest("eval", model, "--key", p256.private, "--metric", "a=1", "--method", "files",
            "--shard-size", "1000", exit_code=2)  # fmt: skip
    (model / "link").symlink_to(model / "config.json")
    data = _attest("eval", model, "--key", p256.private, "--metric", "a=1", exit_code=3)
    assert data["error"]["hint"] == render_hint(Hint.ALLOW_SYMLINKS, "attest eval")
    assert "--allow-symlinks" in data["error"]["hint"]
    assert not (model / "model.intoto.jsonl").exists()


def test_attest_json_keyless(local_sigstore, model: Path) -> None:
    token = local_sigstore.mint_token("alice@example.com")
    keyless = ("--sigstore", "--identity-token", token, "--trust-config")
    data = _attest("eval", model, *keyless, local_sigstore.trust_config_path, "--metric", "a=1")
    assert data["signer"]["kind"] == "keyless"
    assert data["signer"]["identity"] == "alice@example.com"
    claims = contract(run_cli("inspect", model, "--json"), "inspect", 0)
    (line,) = claims["attestations"]
    assert line["signer"]["kind"] == "keyless"
    assert line["signer"]["identity"] == "alice@example.com"
    assert line["signer"]["issuer"] == data["signer"]["issuer"]


def test_inspect_json_signature_file(model: Path, p256, pki) -> None:
    signed = sign(model, p256)
    for target in (model / "model.sig", model):
        data = contract(run_cli("inspect", target, "--json"), "inspect", 0)
        assert data["verified"] is False and data["target"] == str(target)
        assert data["signature"] == str(model / "model.sig")
        # Read, not verified, but the signer is the shape sign reported.
        assert data["signer"]["kind"] == "key"
        assert data["signer"]["key_fingerprint"] == signed["signer"]["key_fingerprint"]
        for field in ("model_name", "root_digest", "files", "resource_count", "serialization"):
            assert data[field] == signed[field], field
        assert "attestations" not in data and "lineage" not in data

    certificate = ("--key", pki.leaf_key, "--cert", pki.leaf, "--chain", pki.intermediate)
    signed = contract(run_cli("sign", model, *certificate, "--json"), "sign", 0)
    data = contract(run_cli("inspect", model / "model.sig", "--json"), "inspect", 0)
    assert data["signer"]["kind"] == "certificate"
    assert data["signer"]["certificate_subject"] == signed["signer"]["certificate_subject"]
    assert data["signer"]["chain_length"] == 2


def test_inspect_json_model_with_attestations(model: Path, p256, other_key, tmp_path: Path) -> None:
    signed = sign(model, p256)
    by_other = _attest("eval", model, "--key", other_key.private, "--metric", "acc=0.1")
    _attest("eval", model, "--key", p256.private, "--metric", "acc=0.9")
    with open(model / "model.intoto.jsonl", "a") as f:
        f.write("not a bundle\n")
    data = contract(run_cli("inspect", model, "--json"), "inspect", 0)
    assert data["attestations_file"] == str(model / "model.intoto.jsonl")
    lines = data["attestations"]
    assert [(c["line"], c["readable"]) for c in lines] == [(1, True), (2, True), (3, False)]
    # Each line's claimed signer, in the one shape: the untrusted key is named, not hidden.
    assert lines[0]["signer"]["kind"] == "key"
    assert lines[0]["signer"]["key_fingerprint"] == by_other["signer"]["key_fingerprint"]
    assert lines[1]["signer"]["key_fingerprint"] == signed["signer"]["key_fingerprint"]
    assert lines[0]["subjects"][0]["digest"]["sha256"] == signed["root_digest"]
    assert lines[2]["problems"] and "signer" not in lines[2]
    assert data["lineage"]["root"] == signed["root_digest"]
    # The newest evaluation of the same metrics on the same data; the older one counted.
    assert data["lineage"]["nodes"][signed["root_digest"]]["supersededEvaluations"] == 1
    assert data["lineage"]["nodes"][signed["root_digest"]]["evaluations"] == [
        {"acc": 0.9},
    ]

    # A dataset with attestations and no signature.
    data_dir = _dataset(tmp_path / "data")
    _attest("dataset", data_dir, "--key", p256.private)
    data = contract(run_cli("inspect", data_dir, "--json"), "inspect", 0)
    assert data["signature"] is None and "signer" not in data and "root_digest" not in data
    assert [c["readable"] for c in data["attestations"]] == [True]


def test_inspect_text_escapes_what_it_has_not_verified(model: Path, p256, tmp_path: Path) -> None:
    data_dir = _dataset(tmp_path / "x\x1b[2Jy")  # the subject's name is the folder's
    _attest("dataset", data_dir, "--key", p256.private)
    out = run_cli("inspect", data_dir)
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.stdout and "\\x1b" in out.stdout
    data = contract(run_cli("inspect", data_dir, "--json"), "inspect", 0)
    assert data["attestations"][0]["subjects"][0]["name"] == "x\x1b[2Jy"  # JSON keeps it


def test_inspect_json_failures(model: Path, tmp_path: Path) -> None:
    data = contract(run_cli("inspect", tmp_path / "missing.sig", "--json"), "inspect", 3)
    assert data["error"]["code"] == "signature-missing" and "hint" not in data["error"]
    data = contract(run_cli("inspect", model, "--json"), "inspect", 3)  # nothing to inspect
    assert data["error"]["code"] == "nothing-to-inspect"
    broken = tmp_path / "broken.sig"
    broken.write_text("{not json")
    contract(run_cli("inspect", broken, "--json"), "inspect", 3)
    data = contract(run_cli("inspect", "--json"), "inspect", 2)  # Click: missing TARGET
    assert data["error"]["hint"] == "see: provenance inspect --help"


def test_lineage_json(model: Path, p256, tmp_path: Path) -> None:
    signed = sign(model, p256)
    data_dir = _dataset(tmp_path / "data")
    ds = _attest("dataset", data_dir, "--key", p256.private, "--license", "MIT")
    builder = ("--builder-id", "https://ci.example/runner")
    _attest("training", model, "--key", p256.private, "--dataset", data_dir, *builder)
    data = contract(run_cli("lineage", model, "--json"), "lineage", 0)
    assert contract(run_cli("lineage", model, "--format", "json"), "lineage", 0) == data
    root, dataset = signed["root_digest"], ds["statement"]["subject"][0]["digest"]["sha256"]
    assert data["root"] == root
    assert data["nodes"][root]["kind"] == "model"
    assert data["nodes"][dataset]["kind"] == "dataset"
    assert data["nodes"][dataset]["license"] == "MIT"
    assert data["edges"] == [{"from": root, "to": dataset, "role": "training-data"}]
    import provenance.attest

    body = {k: v for k, v in data.items() if k not in ("version", "command", "ok")}
    assert body == provenance.attest.build_lineage(model).to_json()

    tree = run_cli("lineage", model)
    assert tree.exit_code == 0 and tree.stdout.startswith(model.name)


def test_attest_prune_json(model: Path, p256) -> None:
    signed = sign(model, p256)
    _attest("eval", model, "--key", p256.private, "--metric", "acc=1")
    with open(model / "model.intoto.jsonl", "a") as f:
        f.write("not a bundle\n")
    pruned = _attest("prune", model, "--key", p256.public)
    assert pruned["root_digest"] == signed["root_digest"]
    assert pruned["subject_source"] == "signature" and pruned["kept"] == 1
    assert [(d["line"], d["reason"]) for d in pruned["dropped"]] == [(2, "unreadable")]
    again = _attest("prune", model, "--subject-digest", signed["root_digest"])
    assert again["dropped"] == [] and again["subject_source"] == "given"
    # A result of one subcommand does not pass for another.
    assert schema_errors("cli-attest.schema.json", {**pruned, "command": "attest eval"})
    failed = _attest("prune", model, "--subject-digest", "zz", exit_code=2)
    assert failed["error"]["code"] == "subject-digest-invalid"
    lineage = contract(run_cli("lineage", model, "--json"), "lineage", 0)
    assert lineage["root_source"] == "signature"
    assert schema_errors("cli-lineage.schema.json", {**lineage, "root_source": "hash"})


def test_lineage_json_failures(tmp_path: Path) -> None:
    for args in (("--json",), ("--format", "json")):
        data = contract(run_cli("lineage", tmp_path / "missing", *args), "lineage", 3)
        assert data["error"]["code"] == "not-found"
    contract(run_cli("lineage", "--json"), "lineage", 2)
    contract(run_cli("lineage", tmp_path, "--format", "xml", "--json"), "lineage", 2)
    text = run_cli("lineage", tmp_path / "missing")
    assert text.exit_code == 3 and text.stdout == "" and text.stderr.startswith("error: ")


def test_inspect_lineage_attest_import_no_private_library_module() -> None:
    private = re.compile(r"^\s*(from|import)\s+provenance\.(\w+\.)*_\w+", re.MULTILINE)
    for name in ("inspect", "lineage", "attest"):
        source = (PROJECT_ROOT / "cli" / f"{name}.py").read_text("utf-8")
        assert not private.findall(source), name
        assert "_SIGNER_KEYS" not in source and ".pop(" not in source and "**opts" not in source


def test_the_new_schemas_refuse_drifted_output(model: Path, p256) -> None:
    """The schemas bite: the old shapes (key_hint, kind sigstore, resources as a count,
    a path under attestations) no longer validate."""
    sign(model, p256)
    scored = _attest("eval", model, "--key", p256.private, "--metric", "acc=1")
    inspected = contract(run_cli("inspect", model, "--json"), "inspect", 0)
    lineage = contract(run_cli("lineage", model, "--json"), "lineage", 0)
    drifted = [
        ("cli-inspect.schema.json", {**inspected, "resources": 8}),
        ("cli-inspect.schema.json", {**inspected, "signer": {"kind": "key", "key_hint": "ab"}}),
        (
            "cli-inspect.schema.json",
            {**inspected, "signer": {"kind": "sigstore", "description": ""}},
        ),
        ("cli-inspect.schema.json", {**inspected, "verified": True}),
        ("cli-inspect.schema.json", {**inspected, "attestations": [{"line": 1, "error": "x"}]}),
        ("cli-attest.schema.json", {**scored, "attestations": scored["attestations_file"]}),
        ("cli-attest.schema.json", {k: v for k, v in scored.items() if k != "signer"}),
        ("cli-lineage.schema.json", {**lineage, "root": "not-a-digest"}),
        ("cli-lineage.schema.json", {**lineage, "edges": [{"from": "a", "to": "b"}]}),
    ]
    for name, instance in drifted:
        assert schema_errors(name, instance), (name, instance)


# ---------------------------------------------------------------- run, layout, verify-pipeline


def test_pipeline_commands_json(tmp_path: Path, monkeypatch, p256, p384) -> None:
    """layout init, layout sign, run (done and failed), verify-pipeline (verified and not)."""
    from test_pipeline import PY, STEPS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "rows.csv").write_text("1\n2\n3\n4\n")
    init = run_cli(
        "layout", "init", "--functionary", p256.public, "-o", "root.layout.json", "--json"
    )
    data = contract(init, "layout init", 0)
    assert data["output"] == "root.layout.json" and data["layout"]["_type"] == "layout"
    assert data["steps"] == ["prepare-data", "train", "evaluate", "package"]
    printed = contract(
        run_cli("layout", "init", "--functionary", p256.public, "--json"), "layout init", 0
    )
    assert printed["output"] is None
    data = contract(
        run_cli("layout", "sign", "root.layout.json", "--key", p384.private, "--json"),
        "layout sign",
        0,
    )
    assert data["layout"] == "root.layout" and data["signed_by"] == [data["keyid"]]
    for step, (script, materials, products) in STEPS.items():
        result = run_cli(
            "run",
            "--step",
            step,
            "--key",
            p256.private,
            "--links",
            "links",
            "--json",
            "--materials",
            *materials,
            "--products",
            *products,
            "--",
            PY,
            "-c",
            script,
        )
        data = contract(result, "run", 0)
        assert data["step"] == step and data["exit_code"] == 0
    verified = run_cli(
        "verify-pipeline",
        "--layout",
        "root.layout",
        "--layout-key",
        p384.public,
        "--links",
        "links",
        "--json",
    )
    data = contract(verified, "verify-pipeline", 0)
    assert [s["name"] for s in data["steps"]] == list(STEPS) and all(
        s["signed_by"] for s in data["steps"]
    )

    failed = run_cli(
        "run",
        "--step",
        "train",
        "--key",
        p256.private,
        "--links",
        "links",
        "--json",
        "-m",
        "data",
        "-p",
        "model",
        "--",
        PY,
        "-c",
        "print('to' + ' stderr'); raise SystemExit(2)",
    )
    data = contract(failed, "run", 4)
    assert data["error"]["code"] == "command-failed" and data["exit_code"] == 2
    assert "to stderr" not in failed.stdout  # stdout holds the JSON object only
    refused = run_cli(
        "verify-pipeline",
        "--layout",
        "root.layout",
        "--layout-key",
        p384.public,
        "--links",
        "links",
        "--json",
    )
    data = contract(refused, "verify-pipeline", 1)
    assert data["error"]["code"] == "step-failed"
    assert any(f["severity"] == "error" and "train" in f["message"] for f in data["findings"])


def test_pipeline_commands_json_failures(tmp_path: Path, p256) -> None:
    missing = run_cli(
        "verify-pipeline", "--layout", tmp_path / "nope", "--layout-key", p256.public, "--json"
    )
    assert contract(missing, "verify-pipeline", 3)["error"]["code"] == "not-found"
    contract(run_cli("verify-pipeline", "--layout", tmp_path, "--json"), "verify-pipeline", 2)
    unknown = run_cli("layout", "init", "--functionary", f"deploy={p256.public}", "--json")
    assert "no step 'deploy'" in contract(unknown, "layout init", 2)["error"]["message"]
    keyless = run_cli("layout", "sign", tmp_path / "l.json", "--sigstore", "--json")
    assert contract(keyless, "layout sign", 2)["error"]["code"] == "sigstore-unsupported"
    unsigned = run_cli("run", "--step", "train", "--json", "--", "true")
    assert "--key" in contract(unsigned, "run", 2)["error"]["message"]
    not_found = run_cli("run", "--step", "x", "--key", p256.private, "--json", "--", "no-such-xyz")
    contract(not_found, "run", 127)


def test_pipeline_cli_imports_no_private_library_module() -> None:
    private = re.compile(r"^\s*(from|import)\s+provenance\.(\w+\.)*_\w+", re.MULTILINE)
    for name in ("run", "layout", "verify_pipeline", "_pipeline"):
        source = (PROJECT_ROOT / "cli" / f"{name}.py").read_text("utf-8")
        assert not private.findall(source), name
