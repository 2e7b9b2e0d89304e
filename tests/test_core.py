"""Unit tests of the parts: PAE, manifest, hashing, keys, and the CLI's reports."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys

import blake3
import pytest
from conftest import make_model, run_cli
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import provenance
from provenance._internal import engine as hashing
from provenance.dsse import INTOTO_PAYLOAD_TYPE, Envelope, pae
from provenance.errors import InputError, VerificationError
from provenance.manifest import (
    OMS_PREDICATE_TYPE,
    STATEMENT_TYPE,
    Manifest,
    Resource,
    Serialization,
)

ALGORITHMS = ["sha256", "sha384", "sha512", "blake2b", "blake3"]


@pytest.fixture(autouse=True)
def _no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENANCE_KEY_PASSWORD", raising=False)


def reference_digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "blake3":
        return blake3.blake3(data).digest()
    if algorithm == "blake2b":
        return hashlib.blake2b(data).digest()
    return hashlib.new(algorithm, data).digest()


# ---------------------------------------------------------------------------- DSSE


def test_pae_spec_example():
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_edge_cases():
    assert pae("", b"") == b"DSSEv1 0  0 "
    # Lengths count bytes, not characters.
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"
    assert pae(INTOTO_PAYLOAD_TYPE, b"{}") == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    body = b"x y 1 2 \n\0"
    assert pae("a", body) == b"DSSEv1 1 a 10 " + body


def test_envelope_round_trip():
    env = Envelope(b"payload \xff", INTOTO_PAYLOAD_TYPE, b"\x01\x02sig", "")
    assert Envelope.from_json(json.loads(json.dumps(env.to_json()))) == env


def test_envelope_accepts_urlsafe_base64():
    doc = {
        "payload": base64.urlsafe_b64encode(b"\xfb\xff payload").decode().rstrip("="),
        "payloadType": "x",
        "signatures": [{"sig": base64.urlsafe_b64encode(b"\xfe\xff").decode(), "keyid": ""}],
    }
    env = Envelope.from_json(doc)
    assert env.payload == b"\xfb\xff payload"
    assert env.signature == b"\xfe\xff"


@pytest.mark.parametrize("count", [0, 2])
def test_envelope_needs_one_signature(count):
    doc = {"payload": "", "payloadType": "x", "signatures": [{"sig": "AA=="}] * count}
    with pytest.raises(InputError, match="exactly one"):
        Envelope.from_json(doc)


# ------------------------------------------------------------------------ manifests


def _resources(n: int = 3, algorithm: str = "sha256") -> tuple[Resource, ...]:
    return tuple(
        Resource(f"f{i}", algorithm, reference_digest(algorithm, str(i).encode())) for i in range(n)
    )


def test_root_digest_is_sha256_of_raw_digests_in_order():
    res = _resources()
    m = Manifest("model", res)
    assert m.root_digest == hashlib.sha256(b"".join(r.digest for r in res)).hexdigest()
    # Listed order matters: the same resources reversed name a different model.
    assert Manifest("model", res[::-1]).root_digest != m.root_digest


def test_root_digest_is_sha256_whatever_the_file_algorithm():
    res = _resources(algorithm="blake2b")
    m = Manifest("model", res, Serialization(hash_type="blake2b"))
    assert m.root_digest == hashlib.sha256(b"".join(r.digest for r in res)).hexdigest()


@pytest.mark.parametrize(
    "serialization",
    [
        Serialization(),
        Serialization(hash_type="blake2b", allow_symlinks=True, ignore_paths=(".git", "x")),
        Serialization(method="shards", hash_type="sha384", shard_size=1024),
    ],
    ids=["files", "blake2b", "shards"],
)
def test_statement_round_trip(serialization):
    algo = serialization.hash_type
    if serialization.method == "shards":
        res = tuple(
            Resource(f"w.bin:{s}:{s + 1024}", serialization.resource_algorithm, bytes(48))
            for s in (0, 1024)
        )
    else:
        res = _resources(algorithm=algo)
    m = Manifest("my-model", res, serialization)
    statement = m.to_statement()
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == OMS_PREDICATE_TYPE
    assert statement["subject"] == [{"name": "my-model", "digest": {"sha256": m.root_digest}}]
    back = Manifest.from_statement(json.loads(json.dumps(statement)))
    assert back == m
    assert back.root_digest == m.root_digest


def _statement() -> dict:
    return Manifest("model", _resources()).to_statement()


def test_from_statement_rejects_subject_digest_mismatch():
    s = _statement()
    s["subject"][0]["digest"]["sha256"] = "ab" * 32
    with pytest.raises(InputError, match="subject digest"):
        Manifest.from_statement(s)


def test_from_statement_rejects_changed_resource():
    s = _statement()
    s["predicate"]["resources"][1]["digest"] = "00" * 32
    with pytest.raises(InputError, match="subject digest"):
        Manifest.from_statement(s)


def test_from_statement_rejects_wrong_predicate_type():
    s = _statement()
    s["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(InputError, match="not a model signature"):
        Manifest.from_statement(s)


def test_from_statement_rejects_wrong_statement_type():
    s = _statement()
    s["_type"] = "https://in-toto.io/Statement/v0.1"
    with pytest.raises(InputError, match="Statement v1"):
        Manifest.from_statement(s)


def test_from_statement_rejects_two_subjects():
    s = _statement()
    s["subject"].append(dict(s["subject"][0]))
    with pytest.raises(InputError, match="one subject"):
        Manifest.from_statement(s)


@pytest.mark.parametrize("value", ["sha256", "md5", "sha1"])
def test_from_statement_rejects_weak_or_mismatched_algorithms(value):
    s = _statement()
    if value == "sha256":
        s["predicate"]["resources"][0]["algorithm"] = "sha512"
    else:
        s["predicate"]["serialization"]["hash_type"] = value
        for r in s["predicate"]["resources"]:
            r["algorithm"] = value
    with pytest.raises(InputError):
        Manifest.from_statement(s)


def _sharded_statement(shard_size: object) -> dict:
    res = (Resource("w:0:1024", "sha256-sharded-1024", bytes(32)),)
    s = Manifest("m", res, Serialization(method="shards", shard_size=1024)).to_statement()
    s["predicate"]["serialization"]["shard_size"] = shard_size
    return s


def test_shard_size_float_accepted():
    m = Manifest.from_statement(_sharded_statement(1024.0))
    assert m.serialization.shard_size == 1024
    assert isinstance(m.serialization.shard_size, int)


@pytest.mark.parametrize("bad", [1024.5, "1024", True, None, float("inf")])
def test_shard_size_non_integer_rejected(bad):
    with pytest.raises(InputError, match="shard_size"):
        Manifest.from_statement(_sharded_statement(bad))


def test_shard_size_must_match_resource_algorithm():
    with pytest.raises(InputError):
        Manifest.from_statement(_sharded_statement(2048))


def test_hash_type_blake2_reads_as_blake2b():
    res = _resources(algorithm="blake2b")
    s = Manifest("m", res, Serialization(hash_type="blake2b")).to_statement()
    # model-signing spells it "blake2" on the wire; so does provenance.
    assert s["predicate"]["serialization"]["hash_type"] == "blake2"
    m = Manifest.from_statement(s)
    assert m.serialization.hash_type == "blake2b"
    s["predicate"]["serialization"]["hash_type"] = "blake2b"
    assert Manifest.from_statement(s).serialization.hash_type == "blake2b"


def test_legacy_allow_symlinks_string():
    s = _statement()
    s["predicate"]["serialization"]["allow_symlinks"] = "false"
    assert Manifest.from_statement(s).serialization.allow_symlinks is False


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a\\b", "a\nb", "a//b", "a/../b", "./a", "a/", "", "x\x7f"]
)
def test_manifest_refuses_bad_names(name):
    with pytest.raises(InputError):
        Manifest("m", (Resource(name, "sha256", bytes(32)),))


def test_manifest_refuses_duplicates():
    r = Resource("a", "sha256", bytes(32))
    with pytest.raises(InputError, match="twice"):
        Manifest("m", (r, r))


def test_manifest_accepts_awkward_but_safe_names():
    names = ["a..b", "...", "xy:z", "\u00e9l\u00e8ve/\u6a21\u578b.txt", "with space", "-dash"]
    m = Manifest("m", tuple(Resource(n, "sha256", bytes(32)) for n in names))
    assert m.files == names


# -------------------------------------------------------------------------- hashing


def test_sort_order_is_by_path_component(tmp_path):
    root = tmp_path / "ord"
    for name in ["a.txt", "a-c", "a/b", "a0", "ab/x", "a/b0/c", "a/b-c", "B"]:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(name)
    names = [r.name for r in provenance.hash_model(root).resources]
    # Component order (model-signing's), not code-point order ("a-c" < "a.txt" < "a/b").
    assert names == ["B", "a/b", "a/b-c", "a/b0/c", "a-c", "a.txt", "a0", "ab/x"]
    assert names == sorted(names, key=lambda n: n.split("/"))


def test_sort_order_matches_fixture_model(model):
    names = [r.name for r in provenance.hash_model(model).resources]
    assert names.index("a/b") < names.index("a-c") < names.index("a.txt")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_matches_reference(tmp_path, algorithm):
    data = {"one": os.urandom(1000), "two/three": b"", "four": b"four\n" * 100}
    root = tmp_path / "m"
    for name, content in data.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    m = provenance.hash_model(root, algorithm=algorithm)
    got = {r.name: r.digest for r in m.resources}
    assert got == {n: reference_digest(algorithm, c) for n, c in data.items()}
    assert all(r.algorithm == algorithm for r in m.resources)
    single = provenance.hash_model(root / "one", algorithm=algorithm)
    assert [(r.name, r.digest) for r in single.resources] == [
        (".", reference_digest(algorithm, data["one"]))
    ]
    assert single.model_name == "one"


def test_shards(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    files = {"empty": b"", "exact": os.urandom(20), "ragged": os.urandom(23), "tiny": b"x"}
    for name, content in files.items():
        (root / name).write_bytes(content)
    m = provenance.hash_model(root, shard_size=10, algorithm="sha512")
    assert m.serialization.method == "shards"
    assert m.serialization.shard_size == 10
    expected = []
    for name in sorted(files):
        content = files[name]
        for start in range(0, len(content), 10):
            end = min(start + 10, len(content))
            expected.append((f"{name}:{start}:{end}", hashlib.sha512(content[start:end]).digest()))
    assert [(r.name, r.digest) for r in m.resources] == expected
    names = [r.name for r in m.resources]
    assert not [n for n in names if n.startswith("empty")]  # an empty file has no shard
    assert [n for n in names if n.startswith("exact")] == ["exact:0:10", "exact:10:20"]
    assert all(r.algorithm == "sha512-sharded-10" for r in m.resources)
    assert m.files == ["exact", "ragged", "tiny"]
    assert m.to_statement()["predicate"]["serialization"]["shard_size"] == 10


def test_shard_file_name_with_colon(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (root / "ab:1:2").write_bytes(b"0123456789")
    m = provenance.hash_model(root, shard_size=5)
    assert [r.name for r in m.resources] == ["ab:1:2:0:5", "ab:1:2:5:10"]
    assert m.files == ["ab:1:2"]
    assert Manifest.from_statement(m.to_statement()) == m


def test_default_ignores_hide_git_and_signatures(model):
    (model / ".git" / "objects").mkdir(parents=True)
    (model / ".git" / "objects" / "x").write_bytes(b"git")
    (model / ".gitattributes").write_text("*.bin lfs\n")
    (model / ".github").mkdir()
    (model / ".github" / "ci.yml").write_text("ci")
    (model / ".gitignore").write_text("x")
    (model / "model.sig").write_text("{}")
    (model / "model.intoto.jsonl").write_text("{}")
    (model / "sub").mkdir()
    (model / "sub" / ".git").write_text("version control at any depth is left out")
    (model / "sub" / ".gitkeep").write_text("")
    (model / "sub" / "__pycache__").mkdir()
    (model / "sub" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"bytecode")
    (model / "stray.pyc").write_bytes(b"bytecode")
    (model / ".DS_Store").write_bytes(b"finder")
    manifest = provenance.hash_model(model)
    names = [r.name for r in manifest.resources]
    assert not [n for n in names if n.startswith((".git", "model.sig", "model.intoto"))]
    assert not [n for n in names if ".git" in n or "pyc" in n or "DS_Store" in n]
    assert "config.json" in names
    # What the patterns hid is recorded as exact paths, for model-signing's verifier.
    hidden = set(manifest.serialization.ignore_paths)
    assert {"sub/.git", "sub/.gitkeep", "sub/__pycache__", "stray.pyc", ".DS_Store"} <= hidden


def test_ignore_paths_hide_files_and_folders(model):
    m = provenance.hash_model(model, ignore_paths=["weights", "a/b", "./config.json"])
    names = [r.name for r in m.resources]
    assert not [n for n in names if n.startswith("weights/")]
    assert "a/b" not in names
    assert "config.json" not in names
    assert "a-c" in names
    ser = m.serialization
    assert {"weights", "a/b", "config.json", ".git"} <= set(ser.ignore_paths)
    # An absolute path inside the model counts too; one outside is no-op.
    m2 = provenance.hash_model(model, ignore_paths=[model / "weights", "/elsewhere"])
    assert not [r for r in m2.resources if r.name.startswith("weights/")]


def test_large_file_multi_chunk(tmp_path):
    data = os.urandom(20 << 20) + b"tail"
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    [r] = provenance.hash_model(f).resources
    assert r.digest == hashlib.sha256(data).digest()
    m = provenance.hash_model(f, shard_size=3 << 20, algorithm="blake2b")
    assert len(m.resources) == 7
    assert [r.digest for r in m.resources] == [
        hashlib.blake2b(data[s : s + (3 << 20)]).digest() for s in range(0, len(data), 3 << 20)
    ]


def test_many_small_files_in_parallel(tmp_path):
    root = tmp_path / "many"
    expected = {}
    for i in range(3000):
        name = f"d{i % 7}/f{i:05d}"
        content = os.urandom(i % 97) + str(i).encode()
        expected[name] = hashlib.sha256(content).digest()
        p = root / name
        if i < 7:
            p.parent.mkdir(parents=True)
        p.write_bytes(content)
    for workers in (8, 1):
        m = provenance.hash_model(root, workers=workers)
        assert len(m.resources) == 3000
        assert {r.name: r.digest for r in m.resources} == expected
        assert [r.name for r in m.resources] == sorted(expected, key=lambda n: n.split("/"))


def test_progress_reports_every_byte(model):
    seen = []
    provenance.hash_model(model, progress=lambda done, total: seen.append((done, total)))
    total = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    assert seen
    assert seen[-1] == (total, total)


def test_hash_tasks_keep_order_with_mixed_sizes(tmp_path):
    sizes = [3 << 20, 10, 0, 2 << 20, 5]
    tasks = []
    contents = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"f{i}"
        content = os.urandom(size)
        p.write_bytes(content)
        contents.append(content)
        tasks.append(hashing.Task(hashing.FileEntry(p.name, str(p), size), 0, size))
    digests = hashing.hash_tasks(tasks, "sha384", workers=4)
    assert digests == [hashlib.sha384(c).digest() for c in contents]


def test_unknown_algorithm_refused(model):
    with pytest.raises(InputError):
        provenance.hash_model(model, algorithm="md5")


# ------------------------------------------------------------------------- signing


KEYS = {
    "ed25519_key": ("Ed25519", None),
    "p256": ("P-256", hashes.SHA256),
    "p384": ("P-384", hashes.SHA384),
    "p521": ("P-521", hashes.SHA512),
}


@pytest.mark.parametrize("keyname", list(KEYS))
def test_sign_verify_round_trip(model, keyname, request):
    from provenance.signing import KeySigner, KeyVerifier

    key = request.getfixturevalue(keyname)
    label, hash_cls = KEYS[keyname]
    signed = provenance.sign(model, KeySigner.from_file(key.private))
    assert signed.signature_path == model / "model.sig"
    result = provenance.verify(model, KeyVerifier.from_files(key.public))
    assert label in result.signer
    assert result.method == "key"
    assert result.root_digest == signed.manifest.root_digest
    assert result.root_digest == provenance.hash_model(model).root_digest

    # The wire form: model-signing's hint, empty keyid, and the signature over
    # the PAE with the curve's own hash (DER for ECDSA).
    doc = json.loads((model / "model.sig").read_bytes())
    pub = key.key.public_key()
    assert (
        doc["verificationMaterial"]["publicKey"]["hint"]
        == hashlib.sha256(key.public.read_bytes()).hexdigest()
    )
    assert doc["verificationMaterial"]["tlogEntries"] == []
    env = doc["dsseEnvelope"]
    assert env["payloadType"] == INTOTO_PAYLOAD_TYPE
    assert env["signatures"][0]["keyid"] == ""
    signed_pae = pae(env["payloadType"], base64.b64decode(env["payload"]))
    sig = base64.b64decode(env["signatures"][0]["sig"])
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(sig, signed_pae)
    else:
        pub.verify(sig, signed_pae, ec.ECDSA(hash_cls()))


def test_verify_with_any_of_several_keys(model, p256, p384, other_key):
    from provenance.signing import KeySigner, KeyVerifier

    provenance.sign(model, KeySigner.from_file(p384.private))
    verifier = KeyVerifier.from_files(other_key.public, p256.public, p384.public)
    assert "P-384" in provenance.verify(model, verifier).signer


def test_signature_by_another_key_fails(model, p256, other_key):
    from provenance.signing import KeySigner, KeyVerifier

    provenance.sign(model, KeySigner.from_file(p256.private))
    with pytest.raises(VerificationError, match="different key"):
        provenance.verify(model, KeyVerifier.from_files(other_key.public))
    result = run_cli("verify", model, "--key", other_key.public)
    assert result.exit_code == 1
    assert result.stderr.startswith("verification failed:")
    assert "different key" in result.stderr
    assert "Traceback" not in result.output


def test_signature_by_another_key_without_hint(model, p256, other_key):
    """With no hint to go by, the signature itself is what fails."""
    from provenance.signing import KeySigner

    provenance.sign(model, KeySigner.from_file(p256.private))
    sig = model / "model.sig"
    doc = json.loads(sig.read_bytes())
    doc["verificationMaterial"]["publicKey"] = {}
    sig.write_text(json.dumps(doc))
    result = run_cli("verify", model, "--key", other_key.public)
    assert result.exit_code == 1
    assert "signature" in result.stderr
    assert run_cli("verify", model, "--key", p256.public).exit_code == 0


@pytest.mark.parametrize("method", ["files", "shards"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cli_sign_verify_every_algorithm(model, ed25519_key, method, algorithm):
    extra = ["--shard-size", "1000"] if method == "shards" else []
    result = run_cli("sign", model, "--key", ed25519_key.private, "--hash", algorithm, *extra)
    assert result.exit_code == 0, result.output
    result = run_cli("verify", model, "--key", ed25519_key.public)
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------- CLI reports


def test_hash_json(model):
    result = run_cli("hash", model, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model_name"] == "my-model"
    resources = data["resources"]
    assert [r["name"] for r in resources] == [
        r.name for r in provenance.hash_model(model).resources
    ]
    for r in resources:
        assert r["algorithm"] == "sha256"
        assert (
            bytes.fromhex(r["digest"]) == hashlib.sha256((model / r["name"]).read_bytes()).digest()
        )
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert data["root_digest"] == root
    plain = run_cli("hash", model)
    assert plain.stdout.strip() == root


def test_inspect(model, p384):
    result = run_cli("sign", model, "--key", p384.private, "--hash", "blake2b")
    assert result.exit_code == 0, result.output
    root = provenance.hash_model(model, algorithm="blake2b").root_digest
    for target in (model, model / "model.sig"):
        result = run_cli("inspect", target)
        assert result.exit_code == 0, result.output
        out = result.stdout
        hint = hashlib.sha256(p384.public.read_bytes()).hexdigest()
        assert f"key {hint[:16]}" in out  # signer, in the form verify shows it
        assert "files" in out  # method
        assert "blake2b" in out  # algorithm
        assert "Files        8" in out  # file count
        assert f"sha256:{root}" in out  # root digest
        assert "not verified" in out
    data = json.loads(run_cli("inspect", model, "--json").stdout)
    assert data["root_digest"] == root
    assert data["files"] == 8
    assert data["verified"] is False
    assert data["signer"]["key_fingerprint"] == hint  # the SignerInfo shape of sign and verify


def test_inspect_shards(model, p256):
    assert run_cli("sign", model, "--key", p256.private, "--shard-size", "1000").exit_code == 0
    out = run_cli("inspect", model).stdout
    assert "shards" in out
    assert "1,000-byte" in out


def test_version():
    result = run_cli("--version")
    assert result.exit_code == 0
    assert provenance.__version__ in result.stdout
    assert "provenance" in result.stdout


def test_version_is_cheap():
    code = (
        "import sys\n"
        "from provenance_cli.main import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('cryptography', 'sigstore', 'jsonschema', 'rich',"
        " 'huggingface_hub') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in proc.stdout, proc.stdout


def test_fixture_model_helper(tmp_path):
    m = make_model(tmp_path / "x")
    assert len(provenance.hash_model(m).resources) == 8


def test_sign_writes_into_model_only_the_signature(model, p256):
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    assert run_cli("sign", model, "--key", p256.private).exit_code == 0
    after = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    assert set(after) - set(before) == {model / "model.sig"}
    assert all(after[p] == before[p] for p in before)


def test_resign_is_stable(model, ed25519_key):
    """Ed25519 is deterministic, so signing twice gives identical bytes."""
    assert run_cli("sign", model, "--key", ed25519_key.private).exit_code == 0
    first = (model / "model.sig").read_bytes()
    assert run_cli("sign", model, "--key", ed25519_key.private).exit_code == 0
    assert (model / "model.sig").read_bytes() == first


def test_signature_outside_model(model, tmp_path, p256):
    sig = tmp_path / "elsewhere.sig"
    assert run_cli("sign", model, "--key", p256.private, "--signature", sig).exit_code == 0
    assert not (model / "model.sig").exists()
    result = run_cli("verify", model, "--key", p256.public, "--signature", sig)
    assert result.exit_code == 0, result.output


def test_signature_in_a_subfolder_is_left_out(model, p256):
    sig = model / "sigs" / "release.sig"
    sig.parent.mkdir()
    assert run_cli("sign", model, "--key", p256.private, "--signature", sig).exit_code == 0
    result = run_cli("verify", model, "--key", p256.public, "--signature", sig)
    assert result.exit_code == 0, result.output
