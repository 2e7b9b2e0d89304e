"""Attestations under hostile input (issue 8): the file, its lines, lineage, inspect, verify.

The attestations file is read only when it is a regular file and not a
link, bounded and without blocking; appends go only to a new path or a file
of ours; a damaged line never stops inspect or lineage, and is not appended
to (prune drops it). inspect and lineage hash nothing; lineage walks each
node once and draws its edges one way in every format, escaped for each.
Repeated lines are counted and re-hashed once; NaN is not JSON. verify
checks attestations without a signature only when asked, reads them from
any file, and re-hashes inputs recorded relative to the model. sign warns
about attestations of another digest and prune drops them. CI systems
beyond GitHub and GitLab are detected. Real files, keys, FIFOs and links.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import make_model, run_cli
from test_output_contract import schema_errors

from provenance import attest
from provenance.attest import _store
from provenance.errors import InputError, UsageError
from provenance.intoto import Statement
from provenance.signing import KeySigner, KeyVerifier

BUILDER = "https://ci.example.com/runners/gpu-7"
COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "BUILDKITE", "CIRCLE", "TF_BUILD", "SYSTEM_",
               "BUILD_", "JENKINS_", "JOB_", "GIT_", "AGENT_")  # fmt: skip

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key password, and no CI of the machine running the tests."""
    monkeypatch.delenv("PROVENANCE_KEY_PASSWORD", raising=False)
    for var in list(os.environ):
        if var.startswith(CI_PREFIXES) or var == "CIRCLECI":
            monkeypatch.delenv(var, raising=False)


@pytest.fixture
def signer(p256) -> KeySigner:
    return KeySigner.from_file(p256.private)


def ok(result) -> str:
    out = result.output + (result.stderr or "")
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{out}"
    assert "Traceback" not in out
    return result.stdout


def fails(result, code: int, *words: str) -> str:
    out = result.output + (result.stderr or "")
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{out}"
    assert "Traceback" not in out and ": unexpected " not in out, out
    for w in words:
        assert w.lower() in (result.stderr or "").lower(), (w, result.stderr)
    return result.stderr


def run_guarded(*args: object, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, so a hang (a FIFO, a huge hash) fails instead of blocking."""
    env = {k: v for k, v in os.environ.items() if k != "PROVENANCE_KEY_PASSWORD"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"provenance {' '.join(map(str, args))} did not finish in {timeout} s")


def tiny(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_text(text)
    return folder


def digest(path: Path) -> str:
    return attest.subject_digest(path)[1]


def eval_line(signer: KeySigner, target: Path, **metrics: object) -> bytes:
    """One signed evaluation line about ``target`` (its bundle's bytes)."""
    name, root = attest.subject_digest(target)
    predicate = attest.evaluation_predicate(metrics=metrics or {"acc": 1})
    stmt = Statement.about(name, root, attest.EVALUATION_PREDICATE_TYPE, predicate)
    return signer.sign(stmt.to_bytes()).to_bytes()


def signed_payload(signer: KeySigner, payload: bytes) -> bytes:
    return signer.sign(payload).to_bytes()


def jsonl(target: Path) -> Path:
    return attest.default_attestations_path(target)


# ------------------------------------------------------------ 3. the file: links, FIFOs, size


@pytest.mark.parametrize("kind", ["secret-file", "dev-zero", "folder"])
def test_linked_attestations_file_is_refused_by_every_reader(
    model: Path, tmp_path: Path, p256, signer, kind: str
):
    """A link named model.intoto.jsonl is never followed: nothing is copied or read."""
    if kind == "secret-file":
        secret = tmp_path / "environ"
        secret.write_bytes(b"AWS_SECRET_ACCESS_KEY=hunter2\x00" + eval_line(signer, model) + b"\n")
        before = secret.read_bytes()
        link_to: Path = secret
    elif kind == "dev-zero":
        link_to = Path("/dev/zero")
    else:
        link_to = tmp_path / "folder"
        link_to.mkdir()
    ok(run_cli("sign", model, "--key", p256.private))
    jsonl(model).symlink_to(link_to)

    key = ("--key", p256.public)
    for args in (
        ("inspect", model),
        ("lineage", model),
        ("lineage", model, "--json"),
        ("verify", model, *key, "--attestations"),
        ("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"),
    ):
        result = run_cli(*args)
        assert result.exit_code == 3, (args, result.output, result.stderr)
        out = result.output + (result.stderr or "")
        assert "symbolic link" in out, (args, out)
        assert "hunter2" not in out and "Traceback" not in out
    assert jsonl(model).is_symlink()  # not replaced by a regular file either
    if kind == "secret-file":
        assert secret.read_bytes() == before
    # The library refuses it the same way.
    with pytest.raises(InputError, match="symbolic link"):
        attest.verify_attestations(model, KeyVerifier.from_files(p256.public), digest(model))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_attestations_file_is_refused_without_hanging(model: Path, p256):
    os.mkfifo(jsonl(model))
    for args in (
        ("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"),
        ("inspect", model),
        ("lineage", model),
        ("verify", model, "--key", p256.public, "--attestations-only"),
    ):
        proc = run_guarded(*args)
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
        assert "FIFO" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # sign checks the attestations for stale lines: a FIFO there is a warning, not a hang.
    proc = run_guarded("sign", model, "--key", p256.private)
    assert proc.returncode == 0, proc.stderr
    assert "FIFO" in proc.stderr
    assert jsonl(model).exists() and not jsonl(model).is_file()


@needs_fifo
def test_fifo_byproduct_is_refused_without_hanging(model: Path, tmp_path: Path, p256):
    fifo = tmp_path / "train.log"
    os.mkfifo(fifo)
    args = ("attest", "training", model, "--key", p256.private, "--builder-id", BUILDER)
    proc = run_guarded(*args, "--byproduct", fifo)
    assert proc.returncode == 3, proc.stderr
    assert "FIFO" in proc.stderr and not jsonl(model).exists()


def test_attestations_file_larger_than_its_cap_is_refused_unread(model: Path, p256):
    ok(run_cli("sign", model, "--key", p256.private))
    with jsonl(model).open("wb") as f:
        f.truncate(_store.MAX_FILE_BYTES + 1)  # sparse: costs no disk, would cost memory
    started = time.monotonic()
    for args in (
        ("inspect", model),
        ("lineage", model, "--json"),
        ("verify", model, "--key", p256.public, "--attestations"),
    ):
        result = run_cli(*args)
        assert result.exit_code == 3, (args, result.output)
        assert "larger than 32 MiB" in result.output + (result.stderr or "")
    assert time.monotonic() - started < 10


def test_a_line_longer_than_its_cap_is_a_damaged_line(model: Path, signer, p256):
    good = eval_line(signer, model)
    huge = b'{"mediaType": "' + b"x" * (_store.MAX_LINE_BYTES + 1) + b'"}'
    jsonl(model).write_bytes(huge + b"\n" + good + b"\n")
    tracemalloc.start()
    try:
        lines = _store.read(jsonl(model), statements=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(ln.number, ln.bundle is None) for ln in lines] == [(1, True), (2, False)]
    assert "longer than 4 MiB" in (lines[0].error or "")
    assert peak < 3 * (_store.MAX_LINE_BYTES + len(good)), peak  # the long line never parsed
    out = ok(run_cli("inspect", model))
    assert "line 1: unreadable" in out and "longer than 4 MiB" in out
    assert f"line 2: {attest.EVALUATION_PREDICATE_TYPE}" in out


# ------------------------------------------------------------------ 2. where attest writes


def test_attest_output_only_to_a_new_path_or_a_file_of_ours(model: Path, tmp_path: Path, p256):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(notes)
    config_before = (model / "config.json").read_bytes()
    sign_eval = ("attest", "eval", model, "--key", p256.private, "--metric", "acc=1")
    for output, why in (
        (notes, "does not hold attestations"),
        (model / "config.json", "model's own files"),
        (link, "symbolic link"),
        (tmp_path, "folder"),
    ):
        fails(run_cli(*sign_eval, "--output", output), 3, why)
    assert notes.read_text() == "my notes\n" and link.is_symlink()
    assert (model / "config.json").read_bytes() == config_before

    out = tmp_path / "published.intoto.jsonl"
    data = json.loads(ok(run_cli(*sign_eval, "--output", out, "--json")))
    assert data["attestations_file"] == str(out) and data["line"] == 1
    data = json.loads(ok(run_cli(*sign_eval, "--output", out, "--json")))
    assert data["line"] == 2
    assert not jsonl(model).exists()


def test_attest_output_never_appends_to_a_signature(tmp_path: Path, p256):
    """A single-file model's signature sits beside it, outside the model: still not ours."""
    weights = tmp_path / "model.gguf"
    weights.write_bytes(os.urandom(2000))
    ok(run_cli("sign", weights, "--key", p256.private))
    sig = tmp_path / "model.gguf.sig"
    before = sig.read_bytes()
    args = ("attest", "eval", weights, "--key", p256.private, "--metric", "acc=1")
    fails(run_cli(*args, "--output", sig), 3, "signature")
    assert sig.read_bytes() == before
    ok(run_cli("verify", weights, "--key", p256.public))


def test_damaged_line_blocks_appends_and_prune_drops_it(model: Path, signer, p256):
    good = eval_line(signer, model)
    jsonl(model).write_bytes(good + b"\n" + b'{"truncated\n')
    before = jsonl(model).read_bytes()
    err = fails(
        run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=2"),
        3,
        "line 2",
        "prune",
    )
    assert "hint: drop the damaged lines with: provenance attest prune MODEL" in err
    assert jsonl(model).read_bytes() == before
    # inspect and lineage still read the good line; the damaged one is reported.
    out = ok(run_cli("inspect", model))
    assert "line 2: unreadable" in out
    ok(run_cli("lineage", model))
    # prune drops it (and keeps the good line byte for byte); appends work again.
    data = json.loads(ok(run_cli("attest", "prune", model, "--json")))
    assert [(d["line"], d["reason"]) for d in data["dropped"]] == [(2, "unreadable")]
    assert data["kept"] == 1 and data["subject_source"] == "hash"
    assert jsonl(model).read_bytes() == good + b"\n"
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=2"))


# ------------------------------------------------------------- 4. lineage and inspect, bounded


def test_lineage_of_repeated_edges_walks_each_node_once(tmp_path: Path, signer):
    """Eight unverified lines that each repeat an edge twelve times, in a chain of models."""
    models = [tiny(tmp_path / f"m{i}", f"m{i}") for i in range(9)]
    roots = [digest(m) for m in models]
    for i in range(8):
        deps = [
            attest.Artifact(f"m{i + 1}", {"sha256": roots[i + 1]}, path=str(models[i + 1]))
            for _ in range(12)
        ]
        predicate = attest.training_predicate(base_model=deps, builder_id=BUILDER)
        stmt = Statement.about(f"m{i}", roots[i], attest.SLSA_PREDICATE_TYPE, predicate)
        line = signer.sign(stmt.to_bytes()).to_bytes()
        # Eight lines in every file, each naming every model of the chain as its subject.
        others = [
            signer.sign(
                Statement.about(f"m{j}", roots[j], attest.SLSA_PREDICATE_TYPE, predicate).to_bytes()
            ).to_bytes()
            for j in range(8)
        ]
        jsonl(models[i]).write_bytes(b"".join(x + b"\n" for x in [line, *others]))
    started = time.monotonic()
    tracemalloc.start()
    try:
        graph = attest.build_lineage(models[0])
        tree = graph.render_tree()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 50 << 20, peak
    assert len(graph.nodes) == 9
    assert len(graph.edges) == len({(e.parent, e.child, e.role) for e in graph.edges})
    assert len(tree.splitlines()) == len(graph.edges) + 1


def test_lineage_indexes_a_file_that_names_many_digests(tmp_path: Path, signer):
    """Thousands of inputs that all point back into the same folder: each lookup is cheap."""
    model = tiny(tmp_path / "m", "m")
    name, root = attest.subject_digest(model)
    n = 3000
    children = [f"{i:064x}" for i in range(1, n + 1)]
    deps = [attest.Artifact(f"c{i}", {"sha256": d}, path=".") for i, d in enumerate(children)]
    top = attest.training_predicate(datasets=deps, builder_id=BUILDER)
    lines = [Statement.about(name, root, attest.SLSA_PREDICATE_TYPE, top)]
    for i, d in enumerate(children):
        leaf = attest.Artifact(f"e{i}", {"sha256": f"{i + n + 1:064x}"})
        predicate = attest.training_predicate(datasets=[leaf], builder_id=BUILDER)
        lines.append(Statement.about(f"c{i}", d, attest.SLSA_PREDICATE_TYPE, predicate))
    jsonl(model).write_bytes(b"".join(signer.sign(x.to_bytes()).to_bytes() + b"\n" for x in lines))
    started = time.monotonic()
    graph = attest.build_lineage(model)
    assert time.monotonic() - started < 5
    assert len(graph.nodes) == 1 + 2 * n and len(graph.edges) == 2 * n


def test_inspect_and_lineage_never_hash_the_model(tmp_path: Path, p256):
    """A 1 TB sparse file in the model would take hours to hash; nothing is hashed at all."""
    model = make_model(tmp_path / "m")
    ok(run_cli("sign", model, "--key", p256.private))
    signed_root = digest(model)
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1"))
    with (model / "huge.bin").open("wb") as f:
        f.truncate(1 << 40)
    proc = run_guarded("lineage", model, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["root"] == signed_root and data["root_source"] == "signature"
    proc = run_guarded("lineage", model)
    assert proc.returncode == 0 and "not verified" in proc.stdout, proc.stdout
    proc = run_guarded("inspect", model, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["lineage"]["root_source"] == "signature" and data["verified"] is False
    proc = run_guarded("inspect", model)
    assert "model's signature claims (not verified)" in proc.stdout, proc.stdout

    # Without a signature: the digest the attestations name, said to be unverified.
    (model / "model.sig").unlink()
    proc = run_guarded("lineage", model, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["root"] == signed_root and data["root_source"] == "attestations"


def test_malformed_unverified_lines_never_fail_lineage_or_inspect(tmp_path: Path, signer):
    ds = tiny(tmp_path / "ds", "rows")
    model = tiny(tmp_path / "m", "m")
    name, root = attest.subject_digest(model)
    good = attest.training_predicate(
        datasets=[attest.Artifact("ds", {"sha256": digest(ds)}, path=str(ds))], builder_id=BUILDER
    )
    hostile_paths = ["bad\x00path", "a" * 5000, "\udcff-not-utf8", "/proc/self/environ"]
    lines = [signer.sign(Statement.about(name, root, attest.SLSA_PREDICATE_TYPE, good).to_bytes())]
    for p in hostile_paths:
        bad = attest.training_predicate(
            datasets=[attest.Artifact(f"x{len(p)}", {"sha256": "b" * 64}, path=p)],
            builder_id=BUILDER,
        )
        payload = json.dumps(
            Statement.about(name, root, attest.SLSA_PREDICATE_TYPE, bad).to_json()
        ).encode("utf-8", "surrogateescape")
        lines.append(signer.sign(payload))
    raw = [b.to_bytes() for b in lines]
    raw += [
        signed_payload(signer, b'{"_type": "https://in-toto.io/Statement/v1", "subject": 5}'),
        signed_payload(signer, b"[" * 100_000 + b"]" * 100_000),
        b"\xff\xfe not even UTF-8",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": []}',
    ]
    jsonl(model).write_bytes(b"".join(r + b"\n" for r in raw))
    for args in (("lineage", model), ("lineage", model, "--json"), ("inspect", model),
                 ("inspect", model, "--json"), ("lineage", model, "--format", "dot")):  # fmt: skip
        result = run_cli(*args)
        assert result.exit_code == 0, (args, result.output, result.stderr)
    graph = json.loads(run_cli("lineage", model, "--json").stdout)
    assert {"from": root, "to": digest(ds), "role": "training-data"} in graph["edges"]
    claims = json.loads(run_cli("inspect", model, "--json").stdout)["attestations"]
    assert [c["readable"] for c in claims][-4:] == [False] * 4


# ------------------------------------------------------------- 8. repeats and NaN


_OPENED: list[str] = []
_RECORDING: list[bool] = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _RECORDING[0] and event == "open" and args and isinstance(args[0], (str, bytes)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # observes opens only while a test records; changes nothing


def opens_of(name: str, fn: object) -> int:
    """How many times ``fn()`` opens a file called ``name`` (audit events, not a mock)."""
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        fn()  # type: ignore[operator]
    finally:
        _RECORDING[0] = False
    return sum(os.path.basename(p) == name for p in _OPENED)


def test_repeated_lines_are_counted_and_rehashed_once(tmp_path: Path, signer, p256):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "rows.bin").write_bytes(os.urandom(1 << 16))
    model = make_model(tmp_path / "m")
    ok(run_cli("sign", model, "--key", p256.private))
    ok(
        run_cli(
            "attest", "training", model, "--key", p256.private, "--builder-id", BUILDER,
            "--dataset", ds,
        )
    )  # fmt: skip
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1",
               "--dataset", ds))  # fmt: skip
    verify = ("verify", model, "--key", p256.public, "--attestations")
    # Two statements name the dataset: it is hashed once for both.
    assert opens_of("rows.bin", lambda: ok(run_cli(*verify))) == 1
    jsonl(model).write_bytes(jsonl(model).read_bytes().splitlines(keepends=True)[0])

    line = jsonl(model).read_bytes().splitlines()[0]
    stmt = json.loads(base64.b64decode(json.loads(line)["dsseEnvelope"]["payload"]))
    resigned = signed_payload(signer, Statement.from_json(stmt).to_bytes())
    # The same statement, signed again (new bytes), then forty byte-for-byte repeats.
    jsonl(model).write_bytes(b"".join(x + b"\n" for x in [line, resigned, *[line] * 40]))
    out: list[str] = []
    assert opens_of("rows.bin", lambda: out.append(ok(run_cli(*verify)))) == 1
    assert "Attestations: 1 verified" in out[0], out
    assert "line 3: repeats line 1 (counted once)" in out[0]

    data = json.loads(ok(run_cli(*verify, "--json")))
    checks = data["attestations"]
    assert len(checks) == 42 and all(c["ok"] for c in checks)
    assert [c.get("duplicate_of") for c in checks[:3]] == [None, 1, 1]
    assert not schema_errors("cli-verify.schema.json", data)
    report = attest.verify_attestations(model, KeyVerifier.from_files(p256.public), digest(model))
    assert len(report.statements()) == 1 and len(report.counted) == 1
    graph = attest.build_lineage(model)
    assert len(graph.edges) == 1
    inspected = json.loads(ok(run_cli("inspect", model, "--json")))
    assert not schema_errors("cli-inspect.schema.json", inspected)
    claims = inspected["attestations"]
    assert claims[1]["same_statement_as"] == 1 and claims[2]["duplicate_of"] == 1
    assert "line 3: repeats line 1 byte for byte" in ok(run_cli("inspect", model))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "[1, NaN]"])
def test_nan_and_infinity_are_refused_at_attest_time(model: Path, p256, signer, value: str):
    for option in ("--metric", "--param"):
        sub = "eval" if option == "--metric" else "training"
        args = ["attest", sub, model, "--key", p256.private, option, f"x={value}"]
        if sub == "training":
            args += ["--builder-id", BUILDER]
        else:
            args += ["--metric", "acc=1"] if option != "--metric" else []
        err = fails(run_cli(*args), 2, "not a JSON number")
        assert option in err
    assert not jsonl(model).exists()
    for bad in (float("nan"), float("inf")):
        predicate = attest.training_predicate(builder_id=BUILDER, params={"lr": bad})
        with pytest.raises(UsageError, match="NaN") as info:
            attest.attest(model, attest.SLSA_PREDICATE_TYPE, predicate, signer)
        assert info.value.code == "predicate-invalid"
    assert not jsonl(model).exists()


def test_nan_in_a_signed_line_is_refused_when_read(model: Path, signer, p256):
    ok(run_cli("sign", model, "--key", p256.private))
    name, root = attest.subject_digest(model)
    for token in ("NaN", "Infinity", "1e999"):
        stmt = Statement.about(
            name,
            root,
            attest.EVALUATION_PREDICATE_TYPE,
            {"metrics": [{"name": "acc", "value": 0.5}], "evaluatedOn": "2026-01-01T00:00:00Z"},
        )
        payload = stmt.to_bytes().replace(b'"value":0.5', b'"value":' + token.encode())
        jsonl(model).write_bytes(signed_payload(signer, payload) + b"\n")
        err = fails(run_cli("verify", model, "--key", p256.public, "--attestations"), 1)
        assert "not a JSON number" in err, err
        claims = json.loads(ok(run_cli("inspect", model, "--json")))["attestations"]
        assert claims[0]["readable"] is False and "not a JSON number" in claims[0]["problems"][0]


# ------------------------------------------------------- 11, 12. attestations only; any file


def test_verify_attestations_without_a_signature_is_an_explicit_choice(
    tmp_path: Path, p256, other_key
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.jsonl").write_text('{"x": 1}\n')
    ok(run_cli("attest", "dataset", data, "--key", p256.private))
    key = ("--key", p256.public)
    err = fails(run_cli("verify", data, *key, "--attestations"), 3, "no signature")
    assert "hint: pass --attestations-only" in err
    out = ok(run_cli("verify", data, *key, "--attestations-only"))
    assert f"sha256:{digest(data)}" in out and "a fresh hash" in out
    out = ok(run_cli("verify", data, *key, "--attestations-only", "--subject-digest", digest(data)))
    assert "the digest given" in out
    fails(run_cli("verify", data, *key, "--attestations-only", "--subject-digest", "c" * 64), 1,
          "another model")  # fmt: skip
    fails(run_cli("verify", data, *key, "--attestations-only", "--subject-digest", "xyz"), 2,
          "64 hex digits")  # fmt: skip
    for bad in (
        ("--subject-digest", digest(data)),  # without --attestations-only
        ("--hash", "sha384"),  # the signature says how it was hashed
        ("--attestations-only", "--signature", data / "model.sig"),
        ("--attestations-only", "--subject-digest", digest(data), "--hash", "sha384"),
    ):
        fails(run_cli("verify", data, *key, *bad), 2)

    # An unverified model.sig beside the data never names the digest or the settings.
    (data / "planted.txt").write_text("planted\n")
    bundle = KeySigner.from_file(other_key.private).sign(
        attest.subject_manifest(data).statement_bytes()
    )
    (data / "model.sig").write_bytes(bundle.to_bytes())
    fails(run_cli("verify", data, *key, "--attestations-only"), 1, "another model")
    # The user's own hashing options make the fresh hash.
    (data / "planted.txt").unlink()
    (data / "model.sig").unlink()
    ok(run_cli("attest", "dataset", data, "--key", p256.private, "--hash", "sha512"))
    args = ("verify", data, *key, "--attestations-only", "--json")
    result = json.loads(run_cli(*args, "--hash", "sha512").stdout)
    assert [c["ok"] for c in result["attestations"]] == [False, True]
    assert result["manifest"]["serialization"]["hash_type"] == "sha512"


def test_attestations_written_elsewhere_are_read_back(model: Path, tmp_path: Path, p256):
    ok(run_cli("sign", model, "--key", p256.private))
    out = tmp_path / "published.intoto.jsonl"
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1",
               "--output", out))  # fmt: skip
    assert not jsonl(model).exists()
    key = ("--key", p256.public)
    text = ok(run_cli("verify", model, *key, "--attestations-file", out))
    assert f"Attestations: 1 verified in {out}" in text
    ok(run_cli("verify", model, *key, "--attestations-only", "--attestations-file", out))
    data = json.loads(ok(run_cli("inspect", model, "--attestations-file", out, "--json")))
    assert data["attestations_file"] == str(out) and len(data["attestations"]) == 1
    graph = json.loads(ok(run_cli("lineage", model, "--attestations-file", out, "--json")))
    assert graph["nodes"][digest(model)]["evaluations"] == [{"acc": 1}]
    fails(run_cli("inspect", model, "--attestations-file", tmp_path / "missing"), 3, "no attest")
    fails(run_cli("lineage", model, "--attestations-file", tmp_path / "missing"), 3)


# ------------------------------------------------------------- 13. stale lines, prune, repeats


def test_sign_warns_about_stale_attestations_and_prune_drops_them(model: Path, p256):
    key = ("--key", p256.private)
    ok(run_cli("sign", model, *key))
    ok(run_cli("attest", "eval", model, *key, "--metric", "acc=1"))
    old = digest(model)
    (model / "config.json").write_text('{"hidden_size": 16}\n')
    result = run_cli("sign", model, *key, "--json")
    signed = json.loads(ok(result))
    stale = [w for w in signed["warnings"] if w.startswith(attest.STALE_WARNING_LEAD)]
    assert stale and f"sha256:{old[:12]}" in stale[0], signed["warnings"]
    assert "--" not in stale[0]  # the library names no flag...
    text = run_cli("sign", model, *key).stderr
    assert "provenance attest prune MODEL" in text  # ...the CLI does
    ok(run_cli("attest", "eval", model, *key, "--metric", "acc=2"))
    # Verified with the signer's key: the signature's digest is current; line 1 goes.
    pruned = json.loads(ok(run_cli("attest", "prune", model, "--key", p256.public, "--json")))
    assert pruned["subject_source"] == "signature" and pruned["root_digest"] == digest(model)
    assert [(d["line"], d["reason"]) for d in pruned["dropped"]] == [(1, "other-digest")]
    assert old in pruned["dropped"][0]["message"] and pruned["kept"] == 1
    assert not [w for w in json.loads(ok(run_cli("sign", model, *key, "--json")))["warnings"]
                if w.startswith(attest.STALE_WARNING_LEAD)]  # fmt: skip
    ok(run_cli("verify", model, "--key", p256.public, "--attestations"))
    again = json.loads(ok(run_cli("attest", "prune", model, "--json")))
    assert again["dropped"] == [] and again["kept"] == 1


def test_prune_takes_one_source_of_the_digest_and_only_our_files(
    model: Path, tmp_path: Path, p256, other_key
):
    key = ("--key", p256.private)
    ok(run_cli("sign", model, *key))
    ok(run_cli("attest", "eval", model, *key, "--metric", "acc=1"))
    before = jsonl(model).read_bytes()
    # A wrong key does not verify: nothing is pruned.
    fails(run_cli("attest", "prune", model, "--key", other_key.public), 1)
    # A pinned digest about another model drops everything, reported line by line.
    result = attest.prune(model, root_digest="d" * 64)
    assert result.kept == 0 and [d.reason for d in result.dropped] == ["other-digest"]
    assert jsonl(model).read_bytes() == b""
    jsonl(model).write_bytes(before)
    fails(run_cli("attest", "prune", model, "--subject-digest", "d" * 64, "--key", p256.public),
          2)  # fmt: skip
    fails(run_cli("attest", "prune", model, "--subject-digest", "nothex"), 2, "64 hex digits")
    notes = tmp_path / "notes.txt"
    notes.write_text("not attestations\n")
    fails(run_cli("attest", "prune", model, "--attestations-file", notes), 3, "no attestation")
    assert notes.read_text() == "not attestations\n"
    link = tmp_path / "link.jsonl"
    link.symlink_to(jsonl(model))
    fails(run_cli("attest", "prune", model, "--attestations-file", link), 3, "symbolic link")
    assert jsonl(model).read_bytes() == before


def test_lineage_shows_the_newest_evaluation_per_metrics_and_data(model: Path, p256):
    key = ("--key", p256.private)
    for acc in ("0.1", "0.5", "0.9"):
        ok(run_cli("attest", "eval", model, *key, "--metric", f"acc={acc}"))
    ok(run_cli("attest", "eval", model, *key, "--metric", "f1=0.3"))
    node = json.loads(ok(run_cli("lineage", model, "--json")))["nodes"][digest(model)]
    assert node["evaluations"] == [{"acc": 0.9}, {"f1": 0.3}]
    assert node["supersededEvaluations"] == 2
    tree = ok(run_cli("lineage", model))
    assert "acc=0.9" in tree and "acc=0.1" not in tree and "2 older evaluation(s)" in tree


# --------------------------------------------------------------------- 15. input paths


def _deps(target: Path, index: int = -1) -> list[dict]:
    line = jsonl(target).read_bytes().splitlines()[index]
    stmt = json.loads(base64.b64decode(json.loads(line)["dsseEnvelope"]["payload"]))
    pred = stmt["predicate"]
    if "buildDefinition" in pred:
        return pred["buildDefinition"]["resolvedDependencies"] + pred["runDetails"].get(
            "byproducts", []
        )
    return pred["datasets"]


def test_input_paths_are_recorded_relative_to_the_model(tmp_path: Path, p256):
    work = tmp_path / "build-machine" / "home" / "alice"
    ds = work / "data" / "train"
    ds.mkdir(parents=True)
    (ds / "rows.jsonl").write_text('{"x": 1}\n')
    log = work / "logs" / "train.log"
    log.parent.mkdir()
    log.write_text("loss 1.0\n")
    model = make_model(work / "models" / "m")
    key = ("--key", p256.private)
    ok(run_cli("sign", model, *key))
    ok(run_cli("attest", "training", model, *key, "--builder-id", BUILDER, "--dataset", ds,
               "--byproduct", log))  # fmt: skip
    ok(run_cli("attest", "eval", model, *key, "--metric", "acc=1", "--dataset", ds))
    raw = jsonl(model).read_bytes()
    paths = [d["annotations"]["path"] for d in _deps(model, 0)]
    assert [d["annotations"]["path"] for d in _deps(model, 1)] == ["../../data/train"]
    assert paths == ["../../data/train", "../../logs/train.log"], paths
    for line in raw.splitlines():
        payload = base64.b64decode(json.loads(line)["dsseEnvelope"]["payload"])
        assert str(tmp_path).encode() not in payload  # no build machine path is published
    # Moved to another machine (another folder) as a whole: inputs are found and re-hashed.
    moved = tmp_path / "elsewhere"
    shutil.move(str(work), str(moved))
    there = moved / "models" / "m"
    ok(run_cli("verify", there, "--key", p256.public, "--attestations", "--require-inputs"))
    ((moved / "data" / "train") / "rows.jsonl").write_text('{"x": 2}\n')
    err = fails(run_cli("verify", there, "--key", p256.public, "--attestations"), 1)
    assert "'../../data/train' no longer matches its digest" in err
    # lineage follows the relative path too.
    graph = json.loads(ok(run_cli("lineage", there, "--json")))
    assert any(n.get("path", "").endswith("data/train") for n in graph["nodes"].values())


def test_no_input_paths_and_absolute_input_paths(model: Path, tmp_path: Path, p256):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "rows.jsonl").write_text('{"x": 1}\n')
    args = ("attest", "eval", model, "--key", p256.private, "--metric", "acc=1", "--dataset", ds)
    ok(run_cli(*args, "--no-input-paths"))
    (dep,) = _deps(model)
    assert "path" not in dep.get("annotations", {}) and dep["digest"]["sha256"] == digest(ds)
    ok(run_cli(*args, "--absolute-input-paths"))
    (dep,) = _deps(model)
    assert dep["annotations"]["path"] == str(ds.resolve())
    fails(run_cli(*args, "--no-input-paths", "--absolute-input-paths"), 2)


def test_require_inputs_makes_a_missing_input_a_failure(model: Path, tmp_path: Path, p256):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "rows.jsonl").write_text('{"x": 1}\n')
    ok(run_cli("sign", model, "--key", p256.private))
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1",
               "--dataset", ds))  # fmt: skip
    shutil.rmtree(ds)
    verify = ("verify", model, "--key", p256.public, "--attestations")
    out = ok(run_cli(*verify))
    assert "not re-hashed" in out  # a note by default
    err = fails(run_cli(*verify, "--require-inputs"), 1, "required", "not on this machine")
    assert "'../ds'" in err
    # Recorded without a path, a hashed input cannot be re-hashed: required, it fails.
    jsonl(model).unlink()
    ds.mkdir()
    (ds / "rows.jsonl").write_text('{"x": 1}\n')
    ok(run_cli("attest", "eval", model, "--key", p256.private, "--metric", "acc=1",
               "--dataset", ds, "--no-input-paths"))  # fmt: skip
    ok(run_cli(*verify))
    fails(run_cli(*verify, "--require-inputs"), 1, "without a path")


# ----------------------------------------------------------------------- 18. CI systems

CI_CASES = {
    "jenkins": (
        {
            "JENKINS_URL": "https://jenkins.example.com/",
            "JOB_URL": "https://jenkins.example.com/job/train/",
            "BUILD_URL": "https://jenkins.example.com/job/train/42/",
            "GIT_URL": "https://git.example.com/ml/train.git",
            "GIT_BRANCH": "origin/main",
            "GIT_COMMIT": COMMIT,
        },
        "https://jenkins.example.com/job/train/",
        "https://jenkins.example.com/job/train/42/",
        "git+https://git.example.com/ml/train.git@origin/main",
    ),
    "buildkite": (
        {
            "BUILDKITE": "true",
            "BUILDKITE_ORGANIZATION_SLUG": "acme",
            "BUILDKITE_PIPELINE_SLUG": "train",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/train/builds/7",
            "BUILDKITE_JOB_ID": "0190-job",
            "BUILDKITE_REPO": "git@github.com:acme/train.git",
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_COMMIT": COMMIT,
        },
        "https://buildkite.com/acme/train",
        "https://buildkite.com/acme/train/builds/7#0190-job",
        "git+ssh://git@github.com/acme/train.git@main",
    ),
    "circleci": (
        {
            "CIRCLECI": "true",
            "CIRCLE_PROJECT_USERNAME": "acme",
            "CIRCLE_PROJECT_REPONAME": "train",
            "CIRCLE_JOB": "fit",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/train/99",
            "CIRCLE_REPOSITORY_URL": "https://github.com/acme/train",
            "CIRCLE_BRANCH": "main",
            "CIRCLE_SHA1": COMMIT,
        },
        "https://circleci.com/acme/train/jobs/fit",
        "https://circleci.com/gh/acme/train/99",
        "git+https://github.com/acme/train@main",
    ),
    "azure": (
        {
            "TF_BUILD": "True",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "ML Team",
            "SYSTEM_DEFINITIONID": "12",
            "BUILD_BUILDID": "345",
            "BUILD_REPOSITORY_URI": "https://dev.azure.com/acme/ML%20Team/_git/train",
            "BUILD_SOURCEBRANCH": "refs/heads/main",
            "BUILD_SOURCEVERSION": COMMIT,
        },
        "https://dev.azure.com/acme/ML%20Team/_build?definitionId=12",
        "https://dev.azure.com/acme/ML%20Team/_build/results?buildId=345",
        "git+https://dev.azure.com/acme/ML%20Team/_git/train@refs/heads/main",
    ),
}


@pytest.mark.parametrize("system", sorted(CI_CASES))
def test_detect_ci_beyond_github_and_gitlab(system: str, model: Path, p256, monkeypatch):
    env, builder, invocation, source = CI_CASES[system]
    ci = attest.detect_ci(env)
    assert ci is not None, system
    assert (ci.builder_id, ci.invocation_id, ci.source_uri, ci.source_commit) == (
        builder,
        invocation,
        source,
        COMMIT,
    )
    # A commit that is not a full id is left out rather than failing the attestation.
    short = {k: ("HEAD" if v == COMMIT else v) for k, v in env.items()}
    assert attest.detect_ci(short).source_commit is None  # type: ignore[union-attr]
    # In that CI, attest training needs no --builder-id.
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    data = json.loads(ok(run_cli("attest", "training", model, "--key", p256.private, "--json")))
    run = data["statement"]["predicate"]["runDetails"]
    assert run["builder"]["id"] == builder and run["metadata"]["invocationId"] == invocation


def test_detect_ci_needs_the_system_s_own_marker():
    assert attest.detect_ci({"CI": "true", "BUILD_URL": "https://x.example/1"}) is None
    assert attest.detect_ci({"JENKINS_URL": "not a url", "BUILD_URL": "also not"}) is None
    assert attest.detect_ci({"BUILDKITE": "false"}) is None
    assert attest.detect_ci({"TF_BUILD": "False"}) is None


# --------------------------------------------------------------- 19. one direction, escaped


def _graph(tmp_path: Path, signer, role_name: str = "ds") -> tuple[Path, str, str]:
    ds = tiny(tmp_path / "ds", "rows")
    model = tiny(tmp_path / "m", "m")
    predicate = attest.training_predicate(
        datasets=[attest.Artifact(role_name, {"sha256": digest(ds)}, path=str(ds))],
        builder_id=BUILDER,
    )
    attest.attest(model, attest.SLSA_PREDICATE_TYPE, predicate, signer)
    return model, digest(model), digest(ds)


def test_lineage_edges_point_one_way_in_every_rendering(tmp_path: Path, signer):
    model, m, d = _graph(tmp_path, signer)
    graph = attest.build_lineage(model)
    (edge,) = graph.to_json()["edges"]
    assert (edge["from"], edge["to"]) == (m, d)  # what was made -> what it was made from
    ids = {digest: f"n{i}" for i, digest in enumerate(graph.nodes)}
    dot = graph.render_dot()
    assert f"  {ids[m]} -> {ids[d]} [" in dot and f"{ids[d]} -> {ids[m]}" not in dot
    mermaid = graph.render_mermaid()
    assert f"  {ids[m]} -->|" in mermaid and mermaid.rstrip().endswith(ids[d])
    tree = graph.render_tree().splitlines()
    assert tree[0].startswith("m (model") and "training-data: ds" in tree[1]


_DOT_NODE = re.compile(r'^  n\d+ \[label="(?:[^"\\]|\\.)*", shape=(box|cylinder)\];$')
_DOT_EDGE = re.compile(r'^  n\d+ -> n\d+ \[label="(?:[^"\\]|\\.)*"\];$')
_MERMAID_NODE = re.compile(r'^  n\d+(\["[^"]*"\]|\[\("[^"]*"\)\])$')
_MERMAID_EDGE = re.compile(r'^  n\d+ -->\|"[^"|]*"\| n\d+$')


@pytest.mark.parametrize(
    "evil",
    [
        'x", color="red", URL="javascript:alert(1)',
        'x"]; evil [label="pwned',
        "x\n  n0 --> n9\n",
        'x"] --> pwned["y',
        "x|y` #lt; <b>&amp;",
        "x\u2028n1 --> n2",
        '\\"];',
        "gpj.\u202eexe",  # a right-to-left override: reads as "exe.jpg"
    ],
)
def test_dot_and_mermaid_labels_cannot_add_attributes_or_statements(
    tmp_path: Path, signer, evil: str
):
    ds = tiny(tmp_path / "ds", "rows")
    model = tiny(tmp_path / "m", "m")
    dep = attest.Artifact(evil, {"sha256": digest(ds)}).resource("training-data")
    dep = type(dep)(dep.name, dep.uri, dep.digest, {"role": evil})
    predicate = attest.training_predicate(builder_id=BUILDER)
    predicate["buildDefinition"]["resolvedDependencies"] = [dep.to_json()]
    name, root = attest.subject_digest(model)
    stmt = Statement.about(name, root, attest.SLSA_PREDICATE_TYPE, predicate)
    jsonl(model).write_bytes(signer.sign(stmt.to_bytes()).to_bytes() + b"\n")
    graph = attest.build_lineage(model)
    assert len(graph.nodes) == 2 and len(graph.edges) == 1
    dot = graph.render_dot().splitlines()
    body = [ln for ln in dot[1:-1] if not ln.startswith(("  //", "  rankdir", "  node ["))]
    assert len(body) == 3 and dot[-1] == "}", dot
    assert all(_DOT_NODE.match(ln) or _DOT_EDGE.match(ln) for ln in body), body
    mermaid = graph.render_mermaid().splitlines()
    assert len(mermaid) == 4, mermaid
    assert all(_MERMAID_NODE.match(ln) or _MERMAID_EDGE.match(ln) for ln in mermaid[1:]), mermaid
    for text in ("\n".join(dot), "\n".join(mermaid), graph.render_tree()):
        assert not set(text) & {"\u2028", "\x1b", "\u202e"}, text


def test_node_ids_are_unique_whatever_the_digests_say(tmp_path: Path, signer):
    """Untrusted digests that agree in their first characters are two nodes, not one."""
    model = tiny(tmp_path / "m", "m")
    name, root = attest.subject_digest(model)
    same_start = ["a" * 40 + "1" * 24, "a" * 40 + "2" * 24, "a-" * 20 + "b" * 24]
    deps = [attest.Artifact(f"d{i}", {"sha256": d}) for i, d in enumerate(same_start)]
    predicate = attest.training_predicate(datasets=deps, builder_id=BUILDER)
    stmt = Statement.about(name, root, attest.SLSA_PREDICATE_TYPE, predicate)
    jsonl(model).write_bytes(signer.sign(stmt.to_bytes()).to_bytes() + b"\n")
    graph = attest.build_lineage(model)
    for text in (graph.render_dot(), graph.render_mermaid()):
        ids = set(re.findall(r"^  (n\d+)[ \[]", text, re.MULTILINE))
        assert len(ids) == 4, text


def test_a_threshold_on_a_metric_not_recorded_is_refused_at_attest_time(tmp_path: Path, p256):
    """Otherwise it is recorded fine and only fails at deployment, under a policy."""
    from conftest import assert_fails

    model = make_model(tmp_path / "m")
    base = ("attest", "eval", model, "--key", p256.private, "--metric", "accuracy=0.93")
    assert_fails(run_cli(*base, "--threshold", "acc>=0.9"), 2, "'acc'", "did you mean 'accuracy'")
    assert_fails(
        run_cli(*base, "--metric", "note=good", "--threshold", "note>=1"), 2, "not a number"
    )
    assert not (model / "model.intoto.jsonl").exists()
    assert run_cli(*base, "--threshold", "accuracy>=0.9").exit_code == 0


@pytest.mark.parametrize(
    "threshold", ["accuracy>=.9", "accuracy<=1.", "accuracy>=+0.5", "accuracy>=1e999"]
)
def test_a_threshold_a_policy_could_not_read_is_refused_at_attest_time(
    tmp_path: Path, p256, threshold
):
    """attest and the policy read a threshold by one grammar."""
    from conftest import assert_fails

    model = make_model(tmp_path / "m")
    result = run_cli(
        "attest", "eval", model, "--key", p256.private, "--metric", "accuracy=0.93",
        "--threshold", threshold,
    )  # fmt: skip
    assert_fails(result, 2, "finite decimal number")


def test_a_metric_or_threshold_given_twice_is_refused(tmp_path: Path, p256):
    from conftest import assert_fails

    model = make_model(tmp_path / "m")
    base = ("attest", "eval", model, "--key", p256.private, "--metric", "loss=0.3")
    assert_fails(
        run_cli(*base, "--threshold", "loss>=0", "--threshold", "loss<=0.5"), 2, "given twice"
    )
    assert_fails(run_cli(*base, "--metric", "loss=0.4"), 2, "given twice")
    ok = run_cli(*base, "--threshold", "loss <= 0.5")
    assert ok.exit_code == 0, ok.output
