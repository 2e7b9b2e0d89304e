"""provenance.hub and ``provenance hub`` against a local Hub, with the real client.

The Hub is tests/local_hub.py on 127.0.0.1; the cache is written by
``huggingface_hub`` itself. Each attack is made where it happens in life: on
the Hub's side (a commit, lying metadata) or in the cache on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provenance import hub
from provenance.errors import InputError, VerificationError
from provenance.signing import KeySigner, KeyVerifier
from tests.conftest import assert_fails, assert_ok, run_cli

REPO = "acme/tiny"


def make_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"hidden_size": 8}\n')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {}}}\n')
    (folder / "model.safetensors").write_bytes(_safetensors(2 << 20))
    return folder


def _safetensors(size: int) -> bytes:
    n = size // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + os.urandom(n * 4)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture
def kw(local_hub: Any, cache: Path) -> dict[str, Any]:
    return {"endpoint": local_hub.endpoint, "token": local_hub.token, "cache_dir": cache}


@pytest.fixture
def pushed(local_hub: Any, tmp_path: Path, p256: Any) -> hub.PushResult:
    model = make_model(tmp_path / "tiny")
    return hub.push(
        model,
        REPO,
        KeySigner.from_file(p256.private),
        endpoint=local_hub.endpoint,
        token=local_hub.token,
    )


def weight_downloads(local_hub: Any, since: int = 0) -> list[tuple[str, str]]:
    return [
        r for r in local_hub.requests[since:] if r[0] == "GET" and r[1].endswith(".safetensors")
    ]


def cli(local_hub: Any, cache: Path, *args: Any) -> Any:
    """``provenance hub ...`` in-process: the endpoint and cache as options (the client
    read its environment at import), the token from the environment (read per call)."""
    where = ["--cache-dir", cache] if args[0] in ("verify", "sign") else []
    return run_cli(
        "hub", *args, "--endpoint", local_hub.endpoint, *where, env={"HF_TOKEN": local_hub.token}
    )


# ---------------------------------------------------------------- push, pull, verify


def test_push_then_verify_by_id(local_hub, pushed, kw, p256):
    assert pushed.commit == local_hub.head(REPO)
    assert pushed.record.parent_commit == pushed.parent_commit
    assert set(local_hub.files(REPO)) == {
        ".gitattributes",
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "model.sig",
    }
    result = hub.verify(REPO, "main", verifier=KeyVerifier.from_files(p256.public), **kw)
    assert result.ok, result.all_findings()
    assert result.snapshot.commit == pushed.commit
    assert result.record == pushed.record
    assert result.root_digest == pushed.signed.manifest.root_digest
    snap = result.snapshot.path
    assert snap.parent.name == "snapshots" and snap.name == pushed.commit
    assert (snap / "model.safetensors").is_symlink()  # the client's layout, hashed in place


def test_cli_push_verify_and_offline(local_hub, tmp_path, cache, p256):
    model = make_model(tmp_path / "tiny")
    out = assert_ok(cli(local_hub, cache, "push", model, REPO, "--key", p256.private, "--json"))
    doc = json.loads(out)
    assert doc["command"] == "hub push" and doc["commit"] == local_hub.head(REPO)
    verified = assert_ok(cli(local_hub, cache, "verify", REPO, "--key", p256.public))
    assert doc["commit"] in verified and "Verified acme/tiny@main" in verified
    offline = json.loads(
        assert_ok(
            cli(local_hub, cache, "verify", REPO, "--key", p256.public, "--offline", "--json")
        )
    )
    assert offline["ok"] and offline["offline"] and offline["commit"] == doc["commit"]
    before = len(local_hub.requests)
    assert_ok(cli(local_hub, cache, "verify", REPO, "--key", p256.public, "--offline"))
    assert len(local_hub.requests) == before  # offline means no request at all


def test_verify_by_tag_and_commit(local_hub, pushed, kw, p256):
    from huggingface_hub import HfApi

    HfApi(endpoint=local_hub.endpoint, token=local_hub.token).create_tag(REPO, tag="v1")
    verifier = KeyVerifier.from_files(p256.public)
    for rev in ("v1", pushed.commit):
        result = hub.verify(REPO, rev, verifier=verifier, **kw)
        assert result.ok and result.snapshot.commit == pushed.commit


def test_verify_with_a_policy(local_hub, pushed, kw, p256, other_key, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(f"version: 1\nsigners:\n  - key: {p256.public}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"version: 1\nsigners:\n  - key: {other_key.public}\n")
    since = len(local_hub.requests)
    denied = hub.verify(REPO, policy=bad, **kw)
    assert not denied.ok and denied.decision is None  # refused on the signature alone
    assert [f.code for f in denied.findings] == ["threshold-not-met"]
    assert not weight_downloads(local_hub, since)
    assert hub.verify(REPO, policy=good, **kw).ok


def test_an_untrusted_key_is_refused_before_any_weight_downloads(local_hub, pushed, kw, other_key):
    since = len(local_hub.requests)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(other_key.public), **kw)
    assert not result.ok
    assert result.findings[0].code in ("signature-invalid", "key-mismatch", "wrong-key"), result
    assert not weight_downloads(local_hub, since)


def test_a_policy_may_allow_unsigned_files_upstream(local_hub, pushed, kw, p256, tmp_path):
    """files.allow_unsigned holds online as offline: a README added after signing."""
    local_hub.commit(REPO, {"README.md": b"# tiny\n"}, message="add a card")
    rules = tmp_path / "p.yaml"
    rules.write_text(
        f"version: 1\nsigners:\n  - key: {p256.public}\nfiles:\n  allow_unsigned: ['*.md']\n"
    )
    result = hub.verify(REPO, policy=rules, **kw)
    assert result.ok, result.all_findings()
    assert (result.snapshot.path / "README.md").exists()  # downloaded: the verdict saw it
    assert hub.verify(REPO, policy=rules, offline=True, **kw).ok
    strict = tmp_path / "strict.yaml"
    strict.write_text(f"version: 1\nsigners:\n  - key: {p256.public}\n")
    refused = hub.verify(REPO, policy=strict, **kw)
    assert [f.path for f in refused.findings if f.code == "file-unsigned"] == ["README.md"]


def test_cli_policy_denial_exits_1(local_hub, pushed, cache, other_key, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"version: 1\nsigners:\n  - key: {other_key.public}\n")
    assert_fails(cli(local_hub, cache, "verify", REPO, "--policy", bad), 1)


# ---------------------------------------------------------------- what is caught, and why


def test_a_blob_changed_in_the_cache(local_hub, pushed, kw, p256, cache):
    verifier = KeyVerifier.from_files(p256.public)
    first = hub.verify(REPO, verifier=verifier, **kw)
    blob = (first.snapshot.path / "config.json").resolve()
    blob.write_text('{"hidden_size": 9}\n')
    for offline in (True, False):
        result = hub.verify(REPO, verifier=verifier, offline=offline, **kw)
        assert not result.ok
        codes = {(f.code, f.path) for f in result.all_findings() if f.severity == "error"}
        assert ("file-modified", "config.json") in codes, codes
    assert_fails(cli(local_hub, cache, "verify", REPO, "--key", p256.public), 1, "config.json")


def test_a_snapshot_file_linked_outside_the_repository(local_hub, pushed, kw, p256, tmp_path):
    verifier = KeyVerifier.from_files(p256.public)
    snap = hub.verify(REPO, verifier=verifier, **kw).snapshot.path
    outside = tmp_path / "evil.json"
    outside.write_text('{"hidden_size": 8}\n')
    (snap / "config.json").unlink()
    os.symlink(outside, snap / "config.json")
    for offline in (True, False):
        result = hub.verify(REPO, verifier=verifier, offline=offline, **kw)
        assert not result.ok
        errs = [f for f in result.all_findings() if f.severity == "error"]
        assert any(f.code == "symlink-escapes" and "config.json" in f.message for f in errs), errs


def test_the_branch_moved_while_signing(local_hub, kw, p256):
    """Someone commits between `hub sign` reading the branch and committing the signature."""
    local_hub.commit(REPO, {"config.json": b"{}\n", "model.safetensors": _safetensors(1 << 20)})

    class Racing:
        def __init__(self) -> None:
            self.inner = KeySigner.from_file(p256.private)

        def sign(self, payload: bytes) -> Any:
            local_hub.commit(REPO, {"config.json": b'{"evil": true}\n'}, message="meanwhile")
            return self.inner.sign(payload)

    moved_to = None
    with pytest.raises(InputError) as e:
        hub.sign(REPO, Racing(), **kw)
    moved_to = local_hub.head(REPO)
    assert e.value.code == "hub-branch-moved"
    assert "moved" in str(e.value)
    assert "model.sig" not in local_hub.files(REPO, moved_to)


def test_the_branch_moved_after_signing(local_hub, pushed, kw, p256):
    """A later commit changes a signed weight: refused before the new weight downloads."""
    local_hub.commit(REPO, {"model.safetensors": _safetensors(2 << 20)}, message="swap weights")
    since = len(local_hub.requests)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert not result.ok
    assert [f.code for f in result.findings if f.severity == "error"] == ["hub-lfs-mismatch"]
    assert not weight_downloads(local_hub, since)


def test_the_signature_deleted_upstream(local_hub, pushed, kw, p256, cache):
    local_hub.commit(REPO, delete=["model.sig"], message="drop the signature")
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert not result.ok
    assert [f.code for f in result.findings] == ["signature-missing"]
    assert_fails(
        cli(local_hub, cache, "verify", REPO, "--key", p256.public), 1, "model.sig", "deleted"
    )


def test_a_file_added_upstream(local_hub, pushed, kw, p256):
    local_hub.commit(REPO, {"modeling_evil.py": b"import os\n"}, message="add code")
    since = len(local_hub.requests)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert not result.ok
    unsigned = [f for f in result.findings if f.code == "file-unsigned"]
    assert [f.path for f in unsigned] == ["modeling_evil.py"]
    assert not weight_downloads(local_hub, since)


def test_an_lfs_sha256_that_differs_from_the_signature(local_hub, pushed, kw, p256, cache):
    local_hub.set_lfs_sha256(REPO, "model.safetensors", "ab" * 32)
    since = len(local_hub.requests)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert [(f.code, f.path) for f in result.findings] == [
        ("hub-lfs-mismatch", "model.safetensors")
    ]
    assert not weight_downloads(local_hub, since)
    assert_fails(cli(local_hub, cache, "verify", REPO, "--key", p256.public), 1, "LFS sha256")


def test_bytes_the_hub_serves_that_differ_from_its_metadata(local_hub, pushed, kw, p256):
    """The pre-check passes (the metadata is right); hashing the bytes on disk fails."""
    data = local_hub.files(REPO)["model.safetensors"]
    local_hub.replace_blob_bytes(REPO, "model.safetensors", data[:-1] + bytes([data[-1] ^ 1]))
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert not result.ok
    assert all(f.code != "hub-lfs-mismatch" for f in result.all_findings())


def test_an_unknown_repository_or_revision_is_bad_input(local_hub, pushed, kw, p256, cache):
    verifier = KeyVerifier.from_files(p256.public)
    with pytest.raises(InputError) as e:
        hub.verify("acme/none", verifier=verifier, **kw)
    assert e.value.code == "hub-repo-not-found"
    with pytest.raises(InputError) as e:
        hub.verify(REPO, "no-such-branch", verifier=verifier, **kw)
    assert e.value.code == "hub-revision-not-found"
    assert_fails(cli(local_hub, cache, "verify", "acme/none", "--key", p256.public), 3, "acme/none")
    assert_fails(cli(local_hub, cache, "verify", "not a repo", "--key", p256.public), 2)


def test_offline_without_the_cache_is_bad_input(local_hub, kw, p256):
    with pytest.raises(InputError) as e:
        hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), offline=True, **kw)
    assert e.value.code == "hub-not-cached"


# ---------------------------------------------------------------- hub sign


def test_hub_sign_signs_what_the_branch_holds(local_hub, kw, p256, cache):
    files = {"config.json": b"{}\n", "model.safetensors": _safetensors(1 << 20)}
    unsigned = local_hub.commit(REPO, files, message="upload, unsigned")
    out = json.loads(
        assert_ok(
            cli(
                local_hub,
                cache,
                "sign",
                REPO,
                "--key",
                p256.private,
                "--json",
            )
        )
    )
    assert out["signed_commit"] == unsigned and out["parent_commit"] == unsigned
    assert out["commit"] == local_hub.head(REPO)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert result.ok, result.all_findings()
    assert result.record is not None and result.record.commit == unsigned
    assert not result.findings  # the signature lives in the next commit, by construction


def test_model_signing_verifies_a_pushed_signature(local_hub, pushed, kw, p256):
    """The Hub record is a predicate field OMS v1.0 verifiers ignore."""
    ms = pytest.importorskip("model_signing")
    snap = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw).snapshot.path
    cfg = ms.verifying.Config().use_elliptic_key_verifier(public_key=p256.public)
    # The cache is links into blobs/: model-signing follows them only when told.
    hashing = ms.hashing.Config().set_allow_symlinks(True)
    hashing.set_ignored_paths(paths=["model.sig", ".gitattributes"], ignore_git_paths=True)
    cfg.set_hashing_config(hashing)
    cfg.verify(snap, snap / "model.sig")


# ---------------------------------------------------------------- loader and lineage


def test_loader_snapshot_loads_only_after_verification(local_hub, pushed, kw, p256):
    from provenance.loaders import hub as hub_loader

    verifier = KeyVerifier.from_files(p256.public)
    with hub_loader.snapshot(REPO, "main", verifier=verifier, **kw) as model:
        assert model.origin.commit == pushed.commit
        assert model.read("config.json") == b'{"hidden_size": 8}\n'
    local_hub.commit(REPO, {"modeling_evil.py": b"import os\n"})
    since = len(local_hub.requests)
    with pytest.raises(VerificationError) as e:
        hub_loader.snapshot(REPO, "main", verifier=verifier, **kw)
    assert "modeling_evil.py" in str(e.value)
    assert not weight_downloads(local_hub, since)


def test_transformers_from_pretrained_by_repository_id(local_hub, pushed, kw, p256):
    transformers = pytest.importorskip("transformers")
    from provenance.loaders.transformers import from_pretrained

    config = from_pretrained(
        transformers.PretrainedConfig,
        REPO,
        revision="main",
        verifier=KeyVerifier.from_files(p256.public),
        **kw,
    )
    assert config.hidden_size == 8


def test_training_attestation_names_a_hub_base_model(local_hub, pushed, kw, p256, tmp_path):
    """hf://ORG/NAME@REV is hashed from the cache; --require-inputs re-hashes it there."""
    verifier = KeyVerifier.from_files(p256.public)
    base = hub.verify(REPO, verifier=verifier, **kw)
    cache = kw["cache_dir"]
    env = {"HF_HUB_CACHE": str(cache)}
    tuned = make_model(tmp_path / "tuned")
    assert_ok(run_cli("sign", tuned, "--key", p256.private))
    assert_ok(
        run_cli(
            "attest",
            "training",
            tuned,
            "--key",
            p256.private,
            "--base-model",
            f"hf://{REPO}@main",
            "--builder-id",
            "https://ci.example/1",
            env=env,
        )
    )
    line = json.loads((tuned / "model.intoto.jsonl").read_text().splitlines()[0])
    import base64

    stmt = json.loads(base64.b64decode(line["dsseEnvelope"]["payload"]))
    deps = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
    dep = next(d for d in deps if d.get("uri", "").startswith("hf://"))
    assert dep["uri"] == f"hf://{REPO}@{base.snapshot.commit}"
    assert dep["digest"]["sha256"] == base.root_digest
    args = ("verify", tuned, "--key", p256.public, "--attestations", "--require-inputs")
    assert_ok(run_cli(*args, env=env))
    blob = (base.snapshot.path / "config.json").resolve()
    blob.write_text('{"hidden_size": 9}\n')
    assert_fails(run_cli(*args, env=env), 1, "no longer matches")


def test_json_output_matches_its_schema(local_hub, tmp_path, cache, p256):
    from tests.test_output_contract import contract, schema_errors

    model = make_model(tmp_path / "tiny")
    push = cli(local_hub, cache, "push", model, REPO, "--key", p256.private, "--json")
    contract(push, "hub push", 0)
    ok = contract(
        cli(local_hub, cache, "verify", REPO, "--key", p256.public, "--json"), "hub verify", 0
    )
    assert ok["signed_record"]["parentCommit"] and ok["verification"]["ok"]
    policy = tmp_path / "p.yaml"
    policy.write_text(f"version: 1\nsigners:\n  - key: {p256.public}\n")
    contract(cli(local_hub, cache, "verify", REPO, "--policy", policy, "--json"), "hub verify", 0)
    local_hub.commit(REPO, {"extra.txt": b"x"})
    failed = contract(
        cli(local_hub, cache, "verify", REPO, "--key", p256.public, "--json"), "hub verify", 1
    )
    assert failed["findings"][0]["code"] == "file-unsigned"
    signed = contract(
        cli(local_hub, cache, "sign", REPO, "--key", p256.private, "--json"), "hub sign", 0
    )
    assert signed["signed_commit"] == signed["parent_commit"]
    bare = contract(
        cli(local_hub, cache, "verify", "acme/none", "--key", p256.public, "--json"),
        "hub verify",
        3,
    )
    assert not schema_errors("cli-error.schema.json", bare)


@pytest.mark.parametrize(
    ("where", "name", "options"),
    [
        ("storage", "model.safetensors", {}),
        ("storage", "model.safetensors", {"method": "shards", "shard_size": 1 << 18}),
        ("storage", "model.safetensors", {"algorithm": "blake2b"}),
        ("storage", "modeling_x.py", {}),
        ("cache", "config.json", {}),
    ],
)
def test_hub_sign_refuses_bytes_the_hub_does_not_record(local_hub, kw, p256, where, name, options):
    """Bytes other than the commit records (served, or changed in the cache): nothing signed."""
    files = {
        "config.json": b"{}\n",
        "modeling_x.py": b"x = 1\n",
        "model.safetensors": _safetensors(1 << 20),
    }
    local_hub.commit(REPO, files)
    data = files[name]
    changed = data[:-1] + bytes([data[-1] ^ 1])
    if where == "storage":
        local_hub.replace_blob_bytes(REPO, name, changed)
    else:
        snap = hub.fetch(REPO, **kw).path  # nothing signed yet: fetch finds no signature
        from huggingface_hub import hf_hub_download

        got = hf_hub_download(
            REPO,
            name,
            revision=local_hub.head(REPO),
            cache_dir=kw["cache_dir"],
            endpoint=local_hub.endpoint,
            token=local_hub.token,
        )
        Path(got).resolve().write_bytes(changed)
        assert snap.name == local_hub.head(REPO)
    head = local_hub.head(REPO)
    with pytest.raises(InputError) as e:
        hub.sign(REPO, KeySigner.from_file(p256.private), **kw, **options)
    assert e.value.code == "hub-content-mismatch" and name in str(e.value)
    assert local_hub.head(REPO) == head


def test_hf_hub_offline_in_the_environment_means_offline(local_hub, pushed, kw, p256, monkeypatch):
    verifier = KeyVerifier.from_files(p256.public)
    assert hub.verify(REPO, verifier=verifier, **kw).ok
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(local_hub.requests)
    result = hub.verify(REPO, verifier=verifier, **kw)
    assert result.ok and result.snapshot.offline
    assert len(local_hub.requests) == before


# ---------------------------------------------------------------- hostile repositories


def test_a_signed_model_in_another_repository_is_refused(local_hub, pushed, kw, p256):
    """A trusted signer's model, copied into the repository asked for, is not that model."""
    files = local_hub.files(REPO)
    local_hub.commit("mallory/tiny", {k: v for k, v in files.items() if k != ".gitattributes"})
    verifier = KeyVerifier.from_files(p256.public)
    result = hub.verify("mallory/tiny", verifier=verifier, **kw)
    assert not result.ok
    assert [f.code for f in result.findings if f.severity == "error"] == ["hub-repository-differs"]
    from provenance.loaders import hub as hub_loader

    with pytest.raises(VerificationError) as e:
        hub_loader.snapshot("mallory/tiny", verifier=verifier, **kw)
    assert e.value.code == "hub-repository-differs"
    mirror = hub.verify("mallory/tiny", verifier=verifier, signed_for=REPO, **kw)
    assert mirror.ok, mirror.all_findings()


def test_bytecode_upstream_is_a_warning_and_not_downloaded(local_hub, pushed, kw, p256):
    local_hub.commit(REPO, {"__pycache__/modeling.cpython-311.pyc": b"\x00" * 16})
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert result.ok
    warned = [f for f in result.findings if f.code == "bytecode-unsigned"]
    assert [f.path for f in warned] == ["__pycache__/modeling.cpython-311.pyc"]
    assert not (result.snapshot.path / "__pycache__").exists()


def test_push_deletes_what_the_folder_lacks_litter_too(local_hub, pushed, tmp_path, p256):
    local_hub.commit(REPO, {"__pycache__/x.pyc": b"\x00", "notes.txt": b"n"})
    again = hub.push(
        tmp_path / "tiny",
        REPO,
        KeySigner.from_file(p256.private),
        endpoint=local_hub.endpoint,
        token=local_hub.token,
    )
    assert set(again.deleted) == {"__pycache__/x.pyc", "notes.txt"}
    assert ".gitattributes" in local_hub.files(REPO)


@pytest.mark.parametrize("secret", [".env", ".netrc", "sub/.aws/credentials", ".env.local"])
def test_push_refuses_credentials(local_hub, tmp_path, p256, secret):
    model = make_model(tmp_path / "m")
    (model / secret).parent.mkdir(parents=True, exist_ok=True)
    (model / secret).write_text("HF_TOKEN=hf_secret\n")
    with pytest.raises(InputError) as e:
        hub.push(
            model,
            REPO,
            KeySigner.from_file(p256.private),
            endpoint=local_hub.endpoint,
            token=local_hub.token,
        )
    assert e.value.code == "secret-in-model" and secret in str(e.value)
    assert not (model / "model.sig").exists()  # refused before signing
    assert not any(r[0] == "POST" for r in local_hub.requests)  # nothing sent


def test_a_refused_commit_does_not_become_the_cached_ref(local_hub, pushed, kw, p256):
    verifier = KeyVerifier.from_files(p256.public)
    good = hub.verify(REPO, verifier=verifier, **kw)
    ref = good.snapshot.path.parent.parent / "refs" / "main"
    assert ref.read_text() == pushed.commit
    local_hub.commit(REPO, {"config.json": b'{"hidden_size": 9}\n'})  # regular file: no LFS
    assert not hub.verify(REPO, verifier=verifier, **kw).ok
    assert ref.read_text() == pushed.commit
    assert hub.verify(REPO, verifier=verifier, offline=True, **kw).ok  # still the good one


def test_too_many_cosignatures_are_refused_unread(local_hub, pushed, kw, p256):
    many = {f"model.sig.d/c{i:03}.sig": b"{}" for i in range(hub.MAX_COSIGNATURES + 1)}
    local_hub.commit(REPO, many)
    since = len(local_hub.requests)
    result = hub.verify(REPO, verifier=KeyVerifier.from_files(p256.public), **kw)
    assert not result.ok and "co-signatures" in result.findings[0].message
    assert not [r for r in local_hub.requests[since:] if "model.sig.d/" in r[1]]


def test_a_base_model_only_partly_cached_is_refused(local_hub, pushed, kw, p256, tmp_path):
    verifier = KeyVerifier.from_files(p256.public)
    snap = hub.verify(REPO, verifier=verifier, **kw).snapshot.path
    (snap / "tokenizer.json").unlink()
    tuned = make_model(tmp_path / "tuned")
    (tuned / "extra.txt").write_text("tuned")
    assert_ok(run_cli("sign", tuned, "--key", p256.private))
    result = run_cli(
        "attest",
        "training",
        tuned,
        "--key",
        p256.private,
        "--base-model",
        f"hf://{REPO}@main",
        "--builder-id",
        "https://ci.example/1",
        env={"HF_HUB_CACHE": str(kw["cache_dir"])},
    )
    assert_fails(result, 3, "does not hash to what its signature lists")


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("hf://acme/tiny", ["drop the hf:// prefix"]),
        ("https://huggingface.co/acme/tiny", ["not a URL"]),
        ("acme/tiny@main", ["--revision main"]),
        ("./tiny", ["local path", "provenance verify PATH"]),
    ],
)
def test_near_miss_repository_ids_say_what_was_meant(local_hub, cache, p256, given, words):
    assert_fails(cli(local_hub, cache, "verify", given, "--key", p256.public), 2, *words)


def test_push_with_swapped_arguments(local_hub, cache, tmp_path, p256, monkeypatch):
    make_model(tmp_path / "acme")
    monkeypatch.chdir(tmp_path)
    result = cli(local_hub, cache, "push", "acme/tiny", "acme", "--key", p256.private)
    assert_fails(result, 2, "not a folder", "usage: provenance hub push MODEL REPO_ID")


def test_hub_sign_on_a_tag_is_refused_before_any_download(local_hub, kw, p256, cache):
    from huggingface_hub import HfApi

    local_hub.commit(REPO, {"config.json": b"{}\n"})
    HfApi(endpoint=local_hub.endpoint, token=local_hub.token).create_tag(REPO, tag="v0")
    since = len(local_hub.requests)
    result = cli(local_hub, cache, "sign", REPO, "--revision", "v0", "--key", p256.private)
    assert_fails(result, 2, "'v0' is a tag")
    assert not [r for r in local_hub.requests[since:] if "/resolve/" in r[1]]
