"""``provenance exec``: verify, then run a command on what was verified.

Real signed models, real subprocesses (``python -m provenance_cli.main``, so
``execve`` really replaces the process), real sealed memory files. What is
proved: the command runs only on a verified model and gets the path; a
denial never runs it (a marker file it would write stays absent); its exit
code is the exit code; sealed mode serves the verified bytes even after the
original is rewritten, to children that closed their descriptors too, and
refuses every write; copy mode writes a read-only copy whole or not at all.
"""

from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import resource
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT, run_cli
from test_output_contract import schema_errors

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memfd is Linux-only")
EXAMPLES = PROJECT_ROOT / "examples" / "containers"
WEIGHTS = b"verified weights\n" * 64


@pytest.fixture(autouse=True)
def _private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealed mode leaves its link folder behind after execve: in the test's own tmp."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))


def provenance(
    *args: object, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh interpreter: exec replaces it, as in a container."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "provenance_cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def sign(model: Path, key) -> str:
    result = run_cli("sign", model, "--key", key.private, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["root_digest"]


@pytest.fixture
def signed(tmp_path: Path, p256) -> Path:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(WEIGHTS)
    (model / "sub" / "config.json").write_bytes(b'{"layers": 2}\n')
    sign(model, p256)
    return model


@pytest.fixture
def policy(tmp_path: Path, p256) -> Path:
    path = tmp_path / "policy.yaml"
    result = run_cli("policy", "init", "--key", p256.public, "--output", path)
    assert result.exit_code == 0, result.output
    return path


def json_verdict(stderr: str) -> dict:
    """The one JSON line exec writes on stderr, checked against its schema."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, stderr
    data = json.loads(lines[0])
    errors = schema_errors("cli-exec.schema.json", data)
    assert not errors, f"exec --json does not match its schema: {errors}\n{lines[0]}"
    return data


# ---------------------------------------------------------------- path mode


def test_allowed_runs_the_command_on_the_path_and_its_exit_code_is_ours(signed, policy):
    script = 'cat "$1/weights.bin"; echo "env=$PROVENANCE_MODEL"; exit 7'
    r = provenance("exec", "--policy", policy, signed, "--", "sh", "-c", script, "sh", "{}")
    assert r.returncode == 7, r.stderr
    assert r.stdout == WEIGHTS.decode() + f"env={signed}\n"  # stdout is the command's alone
    assert r.stderr.startswith("provenance: Allowed by policy"), r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_the_command_replaces_provenance(signed, p256):
    """execve, no supervisor: the command has provenance's PID (PID 1 in a container)."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "provenance_cli.main", "exec", "--key", str(p256.public)),
            *(str(signed), "--", "sh", "-c", 'echo "$$ $PROVENANCE_MODEL_DIGEST"'),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    pid, digest = out.split()
    assert int(pid) == proc.pid
    assert digest == json.loads(run_cli("hash", signed, "--json").output)["root_digest"]


def test_denied_never_runs_the_command(signed, policy, tmp_path):
    (signed / "weights.bin").write_bytes(b"tampered")
    marker = tmp_path / "ran"
    r = provenance("exec", "--policy", policy, signed, "--", "touch", marker)
    assert r.returncode == 1
    assert not marker.exists()
    assert r.stdout == ""
    assert "Denied by policy" in r.stderr and "[files] 'weights.bin' was modified" in r.stderr


def test_wrong_key_never_runs_the_command(signed, other_key, tmp_path):
    marker = tmp_path / "ran"
    r = provenance("exec", "--key", other_key.public, signed, "--", "touch", marker)
    assert r.returncode == 1, r.stderr
    assert not marker.exists()
    assert "verification failed:" in r.stderr


def test_policy_from_the_environment_and_audit_log(signed, policy, tmp_path):
    log = tmp_path / "audit.jsonl"
    env = {"PROVENANCE_POLICY": str(policy), "PROVENANCE_AUDIT_LOG": str(log)}
    r = provenance("exec", "--quiet", signed, "--", "true", env=env)
    assert (r.returncode, r.stderr) == (0, "")
    record = json.loads(log.read_text())
    assert record["decision"] == "allow"

    r = provenance("exec", "--key", "k.pub", signed, "--", "true", env=env)
    assert r.returncode == 2 and "$PROVENANCE_POLICY is set" in r.stderr


def test_json_verdict_is_one_stderr_line(signed, p256, policy):
    r = provenance("exec", "--json", "--key", p256.public, signed, "--", "echo", "{}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{signed}\n"
    data = json_verdict(r.stderr)
    assert (data["ok"], data["mode"], data["path"]) == (True, "path", str(signed))
    assert data["report"]["files"] == 2 and "manifest" not in data["report"]

    (signed / "weights.bin").write_bytes(b"tampered")
    r = provenance("exec", "--json", "--policy", policy, signed, "--", "echo", "ran")
    assert (r.returncode, r.stdout) == (1, "")
    data = json_verdict(r.stderr)
    assert data["ok"] is False and data["path"] is None
    assert data["decision"]["allowed"] is False and data["error"]["exit_code"] == 1


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["MODEL", "true"], 2, "put -- before the command"),
        (["MODEL"], 2, "give the command to run after --"),
        (["MODEL", "--"], 2, "give the command to run after --"),
        (["--key", "KEY", "MODEL", "--", ""], 2, "empty string"),
        (["--key", "KEY", "--mode", "copy", "MODEL"], 2, "needs --into DIR"),
        (["--policy", "POLICY", "--key", "KEY", "MODEL", "--", "true"], 2, "not both"),
        (["--key", "KEY", "--into", "x", "MODEL", "--", "true"], 2, "--into"),
        (["--key", "KEY", "MODEL", "--", "no-such-command-here"], 127, "command not found"),
        (["--key", "KEY", "MODEL", "--", "MODEL/weights.bin"], 126, "not an executable"),
        (["--key", "KEY", "MODEL/nothing", "--", "true"], 3, "does not exist"),
        (["--policy", "BAD", "MODEL", "--", "true"], 2, "missing required key"),
    ],
)
def test_exit_codes(signed, policy, p256, tmp_path, args, code, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: enforce\n")
    names = {"MODEL": str(signed), "POLICY": str(policy), "KEY": str(p256.public), "BAD": str(bad)}
    argv = [names.get(a, a.replace("MODEL", str(signed))) for a in args]
    r = provenance("exec", *argv)
    assert r.returncode == code, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_json_usage_error_goes_to_stderr(signed):
    r = provenance("exec", "--json", "--no-such-option", signed, "--", "true")
    assert (r.returncode, r.stdout) == (2, "")
    data = json.loads(r.stderr)
    assert not schema_errors("cli-error.schema.json", data)
    assert data["command"] == "exec" and data["error"]["code"] == "usage"


def test_placeholder_and_options_after_the_double_dash_are_the_commands(signed, p256):
    r = provenance(
        "exec", "-q", "--key", p256.public, "--placeholder", "@M@", signed,
        "--", "echo", "--json", "x=@M@/sub", "{}",
    )  # fmt: skip
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"--json x={signed}/sub {{}}\n"


# ---------------------------------------------------------------- sealed mode


@linux
def test_sealed_serves_the_verified_bytes_after_the_original_is_rewritten(signed, policy, tmp_path):
    """The command itself rewrites the original, then reads the sealed path: verified bytes."""
    script = textwrap.dedent(
        """
        import os, sys
        sealed, original = sys.argv[1], sys.argv[2]
        with open(os.path.join(original, "weights.bin"), "wb") as f:
            f.write(b"rewritten after verification")
        sys.stdout.write(open(os.path.join(sealed, "weights.bin")).read())
        try:
            open(os.path.join(sealed, "weights.bin"), "r+b", buffering=0).write(b"x")
        except OSError as e:
            print("write refused", e.errno)
        """
    )
    r = provenance(
        "exec", "--policy", policy, "--mode", "sealed", signed,
        "--", sys.executable, "-c", script, "{}", signed,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == WEIGHTS.decode() + f"write refused {errno.EPERM}\n"
    assert (signed / "weights.bin").read_bytes() == b"rewritten after verification"
    assert f"sealed in memory at {tmp_path}/tmpdir/provenance-sealed-" in r.stderr


@linux
def test_sealed_path_works_for_children_that_close_descriptors(signed, p256):
    """Links name /proc/PID/fd/N, not /proc/self: a worker with no inherited fds reads them."""
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        link = os.path.join(sys.argv[1], "sub", "config.json")
        print(os.readlink(link).startswith(f"/proc/{os.getpid()}/fd/"))
        sys.stdout.flush()
        subprocess.run(["cat", link], close_fds=True, check=True)
        """
    )
    r = provenance(
        "exec", "--key", p256.public, "--mode", "sealed", signed,
        "--", sys.executable, "-c", script, "{}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'True\n{"layers": 2}\n'


@linux
def test_sealed_files_stay_out_of_the_numbers_a_command_reuses(signed, p256, tmp_path):
    """A command that closes low descriptors and opens others still reads the sealed bytes."""
    other = tmp_path / "other.txt"
    other.write_text("NOT THE MODEL")
    script = (
        'for n in 3 4 5 6 7 8 9; do eval "exec $n<&-"; done; '
        f'for n in 3 4 5 6 7 8 9; do eval "exec $n<{other}"; done; '
        'cat "$1/weights.bin"'
    )
    r = provenance(
        "exec", "-q", "--key", p256.public, "--mode", "sealed", signed,
        "--", "sh", "-c", script, "sh", "{}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == WEIGHTS.decode()


@linux
def test_sealed_single_file_model_keeps_its_name(tmp_path, p256):
    model = tmp_path / "model.gguf"
    model.write_bytes(WEIGHTS)
    sign(model, p256)
    r = provenance(
        "exec", "-q", "--key", p256.public, "--mode", "sealed", model,
        "--", "sh", "-c", 'printf "%s " "$(basename "$1")"; cat "$1"', "sh", "{}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == "model.gguf " + WEIGHTS.decode()


@linux
def test_sealed_denied_makes_nothing(signed, policy, tmp_path):
    (signed / "sub" / "config.json").write_bytes(b"{}")
    marker = tmp_path / "ran"
    r = provenance("exec", "--policy", policy, "--mode", "sealed", signed, "--", "touch", marker)
    assert r.returncode == 1
    assert not marker.exists()
    assert "Denied by policy" in r.stderr


@linux
def test_sealed_raises_the_descriptor_limit_or_refuses(tmp_path, p256):
    model = tmp_path / "many"
    model.mkdir()
    for i in range(150):
        (model / f"f{i:03}").write_bytes(b"%d" % i)
    sign(model, p256)
    args = ("exec", "--key", p256.public, "--mode", "sealed", model, "--", "sh", "-c", "ulimit -n")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def limit(soft: int, hard: int) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    r = provenance(*args, preexec_fn=lambda: limit(100, hard))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(hard)  # the command inherits the raised limit

    marker = tmp_path / "ran"
    denied = ("exec", "--key", p256.public, "--mode", "sealed", model, "--", "touch", marker)
    r = provenance(*denied, preexec_fn=lambda: limit(100, 100))
    assert r.returncode == 3, r.stderr
    assert "one descriptor open per file" in r.stderr and "ulimit -n" in r.stderr
    assert not marker.exists()


@linux
def test_sealed_memfds_refuse_every_change(signed, p256):
    from provenance._internal.sealed import SEALS, seal
    from provenance.loading import open_verified
    from provenance.signing import KeyVerifier

    with open_verified(signed, verifier=KeyVerifier.from_files(p256.public)) as verified:
        tree = seal(verified)
    with tree:
        fd = tree.fds["weights.bin"]
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
        assert os.get_inheritable(fd)
        for attempt in (
            lambda: os.pwrite(fd, b"x", 0),
            lambda: os.write(fd, b"more"),
            lambda: os.ftruncate(fd, 1),
            lambda: os.ftruncate(fd, 1 << 20),
            lambda: mmap.mmap(fd, len(WEIGHTS), mmap.MAP_SHARED, mmap.PROT_WRITE),
            lambda: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, 0),  # F_SEAL_SEAL: no seal can change
        ):
            with pytest.raises(OSError) as e:
                attempt()
            assert e.value.errno == errno.EPERM
        # Reading, and mapping read-only (what llama.cpp and safetensors do), work.
        with mmap.mmap(fd, len(WEIGHTS), mmap.MAP_SHARED, mmap.PROT_READ) as m:
            assert m[:] == WEIGHTS
        assert (tree.path / "weights.bin").read_bytes() == WEIGHTS
        assert stat.S_IMODE(os.stat(tree.root).st_mode) == 0o700
        root = tree.root
    assert not root.exists()  # close() removes the folder and the descriptors


def _shmem() -> int | None:
    """Bytes of shared memory charged to this cgroup (v2 or v1), else system-wide."""
    try:
        cgroup = Path("/proc/self/cgroup").read_text()
        for line in cgroup.splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers in ("", "memory") or "memory" in controllers.split(","):
                base = "/sys/fs/cgroup" + ("" if controllers == "" else "/memory")
                stat_file = Path(base + path) / "memory.stat"
                if stat_file.exists():
                    for row in stat_file.read_text().splitlines():
                        key, value = row.split()
                        if key == "shmem":
                            return int(value)
    except (OSError, ValueError):
        pass
    for row in Path("/proc/meminfo").read_text().splitlines():
        if row.startswith("Shmem:"):
            return int(row.split()[1]) * 1024
    return None


@linux
def test_sealed_costs_the_models_size_in_shared_memory(tmp_path, p256):
    """Documented cost: each file's size in shmem, charged to the memory cgroup."""
    from provenance._internal.sealed import seal
    from provenance.loading import open_verified
    from provenance.signing import KeyVerifier

    size = 32 << 20
    model = tmp_path / "big"
    model.mkdir()
    (model / "a.bin").write_bytes(os.urandom(size // 2))
    (model / "b.bin").write_bytes(os.urandom(size // 2))
    sign(model, p256)
    before = _shmem()
    if before is None:
        pytest.skip("no shared-memory counter readable here")
    with open_verified(model, verifier=KeyVerifier.from_files(p256.public)) as verified:
        tree = seal(verified)
    with tree:
        during = _shmem()
        assert tree.size == size
    after = _shmem()
    assert during is not None and after is not None
    assert during - before >= size * 0.95, (before, during)
    assert during - after >= size * 0.95, (during, after)  # freed with the descriptors


# ---------------------------------------------------------------- copy mode


def test_copy_writes_a_read_only_verified_copy_without_a_command(signed, policy, tmp_path):
    into = tmp_path / "verified" / "model"
    into.parent.mkdir()
    r = provenance("exec", "--policy", policy, "--mode", "copy", "--into", into, signed)
    assert r.returncode == 0, r.stderr
    assert (into / "weights.bin").read_bytes() == WEIGHTS
    assert (into / "sub" / "config.json").read_bytes() == b'{"layers": 2}\n'
    assert not (into / "model.sig").exists()  # only what the signature covers
    assert stat.S_IMODE(os.stat(into / "weights.bin").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(into / "sub").st_mode) == 0o555
    assert [p.name for p in into.parent.iterdir()] == ["model"]  # no temporary left

    # A restarted init container finds its own copy, byte for byte, and keeps it...
    r = provenance("exec", "--policy", policy, "--mode", "copy", "--into", into, signed)
    assert r.returncode == 0, r.stderr
    assert "already there" in r.stderr

    # ...but a folder holding anything else is nobody's verified copy: refused, kept as is.
    os.chmod(into, 0o755)
    (into / "planted.py").write_bytes(b"import os")
    marker = tmp_path / "ran"
    again = ("exec", "--policy", policy, "--mode", "copy", "--into", into, signed)
    r = provenance(*again, "--", "touch", marker)
    assert r.returncode == 3 and "is not this model's verified copy" in r.stderr
    assert not marker.exists() and (into / "planted.py").exists()
    (into / "planted.py").unlink()
    os.chmod(into / "sub", 0o755)
    os.chmod(into / "sub" / "config.json", 0o644)
    (into / "sub" / "config.json").write_bytes(b'{"layers": 3}\n')
    r = provenance(*again, "--", "touch", marker)
    assert r.returncode == 3 and not marker.exists()


@pytest.mark.parametrize("plant", ["hard-link", "writable-file", "writable-folder"])
def test_a_planted_identical_copy_is_not_reused(signed, policy, tmp_path, plant):
    """Right bytes are not enough: a copy someone could still change is nobody's verified copy."""
    into = tmp_path / "copy"
    r = provenance("exec", "--policy", policy, "--mode", "copy", "--into", into, signed)
    assert r.returncode == 0, r.stderr
    weights = into / "weights.bin"
    os.chmod(into, 0o755)
    if plant == "hard-link":
        outside = tmp_path / "outside.bin"
        outside.write_bytes(WEIGHTS)
        os.chmod(outside, 0o444)
        weights.unlink()
        os.link(outside, weights)  # same bytes, read-only, but a second name elsewhere
        os.chmod(into, 0o555)
    elif plant == "writable-file":
        os.chmod(weights, 0o666)
        os.chmod(into, 0o555)
    # writable-folder: left 0o755
    marker = tmp_path / "ran"
    r = provenance(
        "exec", "--policy", policy, "--mode", "copy", "--into", into, signed,
        "--", "touch", marker,
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert "already there" not in r.stderr and not marker.exists()


def test_copy_then_command_gets_the_copy(signed, p256, tmp_path):
    into = tmp_path / "copy"
    r = provenance(
        "exec", "-q", "--key", p256.public, "--mode", "copy", "--into", into, signed,
        "--", "sh", "-c", 'printf "%s\\n" "$PROVENANCE_MODEL"; cat "$1/weights.bin"', "sh", "{}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{into}\n" + WEIGHTS.decode()


def test_copy_denied_writes_nothing(signed, policy, tmp_path):
    (signed / "extra.bin").write_bytes(b"unsigned")
    into = tmp_path / "copy"
    r = provenance("exec", "--policy", policy, "--mode", "copy", "--into", into, signed)
    assert r.returncode == 1, r.stderr
    assert not into.exists() and list(tmp_path.glob(".copy*")) == []


# ---------------------------------------------------------------- the container examples


def test_pod_example_verifies_in_an_init_container_and_mounts_read_only():
    docs = list(yaml.safe_load_all((EXAMPLES / "pod.yaml").read_text()))
    pod = next(d for d in docs if d and d.get("kind") == "Pod")
    spec = pod["spec"]
    (init,) = spec["initContainers"]
    assert init["command"][:2] == ["provenance", "exec"] or init["command"][0] == "provenance"
    assert "--policy" in init["command"]
    copy_to = init["command"][init["command"].index("--into") + 1]
    main = spec["containers"][0]
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    (verified,) = [m for m in mounts.values() if copy_to.startswith(m["mountPath"])]
    assert verified["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[verified["name"]]


def test_dockerfile_entrypoint_runs_exec_sealed():
    text = (EXAMPLES / "Dockerfile").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ENTRYPOINT")]
    entry = json.loads(line.removeprefix("ENTRYPOINT").strip())  # exec form: no shell
    assert entry[:2] == ["provenance", "exec"]
    assert entry[entry.index("--mode") + 1] == "sealed"
    command = entry[entry.index("--") + 1 :]
    assert command[0] == "/app/llama-server" and any("{}" in a for a in command)


def test_exec_schema_is_valid_and_closed():
    import jsonschema

    doc = json.loads((PROJECT_ROOT / "schemas" / "cli-exec.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["additionalProperties"] is False
    assert doc["properties"]["report"]["additionalProperties"] is False


def test_attestations_file_is_checked(signed, p256, other_key):
    result = run_cli("attest", "eval", signed, "--key", p256.private, "--metric", "accuracy=0.9")
    assert result.exit_code == 0, result.output
    attestations = signed / "model.intoto.jsonl"
    r = provenance(
        "exec", "--json", "--key", p256.public, "--attestations-file", attestations, signed,
        "--", "true",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(json_verdict(r.stderr)["report"]["attestations"]) == 1

    # An attestation by someone the verifier does not trust fails it: the command never runs.
    other = run_cli(
        "attest", "eval", signed, "--key", other_key.private, "--metric", "accuracy=0.1"
    )
    assert other.exit_code == 0, other.output
    r = provenance(
        "exec", "--key", p256.public, "--attestations-file", attestations, "--mode", "sealed",
        signed, "--", "echo", "ran",
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
