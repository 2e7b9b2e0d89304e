"""Verified loading: ``open_verified`` hands on exactly the bytes it hashed.

Real models signed with real keys, real policies, and real concurrent
writers that swap, truncate, grow and rewrite files while the model is
being read. The property under test is the one a loader relies on: either
the load raises, or every byte it returns is the byte that was signed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import KeyPair, make_model, within

import provenance
from provenance.errors import UsageError, VerificationError
from provenance.formats import scan
from provenance.policy import PolicyDenied
from provenance.signing import KeySigner, KeyVerifier

BIG = 3 << 20  # above the engine's small-file cut: read into memory of its own


def policy_file(folder: Path, key: KeyPair, extra: str = "") -> Path:
    p = folder / "policy.yaml"
    p.write_text(f"version: 1\nsigners:\n  - key: {key.public}\n{extra}")
    return p


def signed_model(tmp_path: Path, key: KeyPair, **sign_kw: object) -> tuple[Path, dict[str, bytes]]:
    model = make_model(tmp_path / "m")
    (model / "big.bin").write_bytes(os.urandom(BIG))
    (model / "weights" / "huge.bin").write_bytes(os.urandom(2 * BIG + 5))
    provenance.sign(model, KeySigner.from_file(key.private), **sign_kw)  # type: ignore[arg-type]
    files = {
        p.relative_to(model).as_posix(): p.read_bytes()
        for p in model.rglob("*")
        if p.is_file() and p.name != "model.sig"
    }
    return model, files


def test_policy_load_gives_every_signed_file_as_signed(tmp_path: Path, p256: KeyPair) -> None:
    model, files = signed_model(tmp_path, p256)
    with provenance.open_verified(model, policy=policy_file(tmp_path, p256)) as m:
        assert m.decision is not None and m.decision.allowed
        assert sorted(m.files) == sorted(files)
        for name, data in files.items():
            assert m.read(name) == data
            assert bytes(m.buffer(name)) == data
            assert m.size(name) == len(data)
        view = m.buffer("big.bin")
        assert not view.readonly and view.format == "B" and view.c_contiguous
        assert m.buffer("big.bin").obj is view.obj  # the same memory every call: zero-copy
        small = m.buffer("config.json")
        small[0:1] = b"["  # writable even for a small file, and the same bytes afterwards
        assert m.read("config.json").startswith(b"[")
    with pytest.raises(ValueError, match="closed"):
        m.read("config.json")
    assert bytes(view) == files["big.bin"]  # what the caller kept outlives the handle


def test_release_drops_one_file(tmp_path: Path, p256: KeyPair) -> None:
    model, files = signed_model(tmp_path, p256)
    with provenance.open_verified(model, verifier=KeyVerifier.from_files(p256.public)) as m:
        m.release("big.bin")
        with pytest.raises(UsageError, match="not a verified file"):
            m.read("big.bin")
        assert m.read("config.json") == files["config.json"]


def test_verifier_load_and_its_failure(tmp_path: Path, p256: KeyPair) -> None:
    model, files = signed_model(tmp_path, p256)
    verifier = KeyVerifier.from_files(p256.public)
    with provenance.open_verified(model, verifier=verifier) as m:
        assert m.decision is None
        assert m.read("weights/huge.bin") == files["weights/huge.bin"]
    huge = model / "weights" / "huge.bin"
    data = bytearray(huge.read_bytes())
    data[BIG] ^= 1
    huge.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=r"huge\.bin") as e:
        provenance.open_verified(model, verifier=verifier)
    assert e.value.report is not None
    assert [f.path for f in e.value.report.findings if f.severity == "error"] == [
        "weights/huge.bin"
    ]


def test_policy_denial_loads_nothing_and_names_every_file(tmp_path: Path, p256: KeyPair) -> None:
    model, _ = signed_model(tmp_path, p256)
    (model / "big.bin").write_bytes(os.urandom(BIG))
    (model / "config.json").write_bytes(b"{}")
    (model / "planted.py").write_bytes(b"import os\n")
    with pytest.raises(PolicyDenied, match=r"the policy denies .*modified") as e:
        provenance.open_verified(model, policy=policy_file(tmp_path, p256))
    subjects = {r.subject for r in e.value.decision.reasons if r.severity == "error"}
    assert {"big.bin", "config.json", "planted.py"} <= subjects
    assert "and 2 more reason(s)" in str(e.value)


def test_unsigned_file_is_never_handed_out(tmp_path: Path, p256: KeyPair) -> None:
    model, _ = signed_model(tmp_path, p256)
    (model / "README.md").write_text("hello")
    pol = policy_file(tmp_path, p256, "files:\n  allow_unsigned: ['*.md']\n")
    with provenance.open_verified(model, policy=pol) as m:
        assert "README.md" not in m.files
        with pytest.raises(UsageError, match="not a verified file") as e:
            m.read("README.md")
        assert e.value.code == "not-verified"


def test_warn_mode_without_a_trusted_signature_has_nothing_to_load(
    tmp_path: Path, p256: KeyPair, other_key: KeyPair
) -> None:
    model, _ = signed_model(tmp_path, p256)
    pol = policy_file(tmp_path, other_key, "mode: warn\n")
    with pytest.raises(VerificationError, match="no file was verified") as e:
        provenance.open_verified(model, policy=pol)
    assert e.value.code == "nothing-verified"


def test_warn_mode_loads_what_was_read_and_warns(tmp_path: Path, p256: KeyPair) -> None:
    model, _ = signed_model(tmp_path, p256)
    (model / "config.json").write_bytes(b'{"changed": 1}')
    pol = policy_file(tmp_path, p256, "mode: warn\n")
    with (
        pytest.warns(provenance.loading.PolicyWarning, match=r"config\.json.*modified"),
        provenance.open_verified(model, policy=pol) as m,
    ):
        assert m.decision is not None and m.decision.allowed and not m.decision.passed
        assert m.read("config.json") == b'{"changed": 1}'


def test_single_file_and_shards(tmp_path: Path, p256: KeyPair) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(BIG + 17))
    provenance.sign(f, KeySigner.from_file(p256.private))
    with provenance.open_verified(f, policy=policy_file(tmp_path, p256)) as m:
        assert m.single and m.files == ("w.bin",)
        assert m.read("w.bin") == m.read(".") == f.read_bytes()
    model, files = signed_model(
        tmp_path / "s",
        p256,
        method="shards",
        shard_size=1 << 20,
    )
    with provenance.open_verified(model, verifier=KeyVerifier.from_files(p256.public)) as m:
        assert "empty" not in m.files  # a shard signature cannot cover an empty file
        for name, data in files.items():
            if data:
                assert m.read(name) == data, name


def test_exactly_one_of_policy_or_verifier(tmp_path: Path, p256: KeyPair) -> None:
    with pytest.raises(UsageError, match="exactly one"):
        provenance.open_verified(tmp_path)
    with pytest.raises(UsageError, match="exactly one"):
        provenance.open_verified(
            tmp_path,
            policy=policy_file(tmp_path, p256),
            verifier=KeyVerifier.from_files(p256.public),
        )


def test_scan_reads_held_bytes_not_the_disk(tmp_path: Path) -> None:
    """The seam the policy's scan uses under open_verified: memory wins over the file."""
    import pickle

    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(print))  # hostile on disk
    clean = pickle.dumps({"a": 1})
    report = scan(folder, contents={"model.pkl": clean})
    assert report.ok, report.to_json()
    assert not scan(folder).ok


@pytest.mark.parametrize("attack", ["flip", "truncate", "append", "swap", "link"])
def test_a_file_changed_during_the_load_is_caught_or_never_read(
    tmp_path: Path, p256: KeyPair, attack: str
) -> None:
    """A thread rewrites a signed file over and over while models load.

    Every load either raises or returns exactly the signed bytes: nothing
    read while the file was being changed escapes unverified.
    """
    model, files = signed_model(tmp_path, p256)
    target = model / "weights" / "huge.bin"
    good = files["weights/huge.bin"]
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    other = tmp_path / "other.bin"
    other.write_bytes(bytes(bad))
    stop = threading.Event()

    def attacker() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if attack == "flip":
                    mid = len(good) // 2
                    with open(target, "r+b") as f:
                        f.seek(mid)
                        f.write(bytes(bad[mid : mid + 1]))
                        f.flush()
                        f.seek(mid)
                        f.write(good[mid : mid + 1])
                elif attack == "truncate":
                    os.truncate(target, len(good) // 3)
                    with open(target, "r+b") as f:
                        f.seek(0)
                        f.write(good)
                elif attack == "append":
                    with open(target, "ab") as f:
                        f.write(b"\0" * 4096)
                    os.truncate(target, len(good))
                elif attack == "swap":
                    tmp = target.with_suffix(".tmp")
                    shutil.copyfile(other if n % 2 else tmp_path / "good.bin", tmp)
                    os.replace(tmp, target)
                else:
                    tmp = target.with_suffix(".lnk")
                    if tmp.is_symlink() or tmp.exists():
                        tmp.unlink()
                    os.symlink(other, tmp)
                    os.replace(tmp, target)
                    shutil.copyfile(tmp_path / "good.bin", tmp)
                    os.replace(tmp, target)
            except OSError:
                pass

    (tmp_path / "good.bin").write_bytes(good)
    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    loaded = refused = 0
    pol = policy_file(tmp_path, p256)
    try:
        for _ in range(40):
            try:
                with provenance.open_verified(model, policy=pol) as m:
                    assert m.read("weights/huge.bin") == good
                    loaded += 1
            except (PolicyDenied, provenance.InputError):
                refused += 1
    finally:
        stop.set()
        thread.join()
    assert loaded + refused == 40
    assert refused, "the attacker never got in: the test did not test anything"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM (Linux)")
def test_peak_memory_is_the_model_plus_a_little(tmp_path: Path, p256: KeyPair) -> None:
    """A verified load of 192 MiB commits about 192 MiB (bar: at most 64 MiB more)."""
    model = tmp_path / "m"
    model.mkdir()
    for i in range(3):
        with open(model / f"shard-{i}.bin", "wb") as f:
            for _ in range(64):
                f.write(os.urandom(1 << 20))
    provenance.sign(model, KeySigner.from_file(p256.private))
    pol = policy_file(tmp_path, p256)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "a").write_bytes(b"a")
    provenance.sign(tiny, KeySigner.from_file(p256.private))
    code = f"""
import provenance
# the first load imports the policy and signature stacks: not the model's memory
provenance.open_verified({str(tiny)!r}, policy={str(pol)!r}).close()
def hwm():  # this process's own peak RSS; ru_maxrss would start at the parent's
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1])
base = hwm()
with provenance.open_verified({str(model)!r}, policy={str(pol)!r}) as m:
    total = sum(m.size(n) for n in m.files)
    peak = hwm()
print(base * 1024, peak * 1024, total)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    base, peak, total = map(int, out)
    assert total == 192 << 20
    assert peak - base >= total // 2, "the probe did not see the model's memory"
    assert peak - base <= total + (64 << 20), (peak - base - total) >> 20


def test_a_sparse_giant_is_refused_before_it_is_read(tmp_path: Path, p256: KeyPair) -> None:
    """A signed file grown on disk past the memory (sparse: no disk) is never read into it."""
    model, _ = signed_model(tmp_path, p256)
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        pytest.skip("reads MemAvailable (Linux)")
    avail = next(int(x.split()[1]) for x in meminfo.read_text().splitlines() if "MemAvailable" in x)
    with open(model / "big.bin", "r+b") as f:
        f.truncate(avail * 1024 + (8 << 30))
    with pytest.raises(PolicyDenied, match="memory") as e:
        within(10, lambda: provenance.open_verified(model, policy=policy_file(tmp_path, p256)))
    assert "out-of-memory" in {r.code for r in e.value.decision.reasons}


def test_a_file_sig_planted_in_a_signed_folder_does_not_govern(
    tmp_path: Path, p256: KeyPair
) -> None:
    """load_file of a folder's file checks the folder, whatever FILE.sig lies beside it."""
    from provenance.loaders import safetensors as verified

    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    old = tmp_path / "old.safetensors"
    st.save_file({"w": np.zeros(4, np.float32)}, str(old))
    provenance.sign(old, KeySigner.from_file(p256.private))  # the key once signed this alone
    model = tmp_path / "m"
    model.mkdir()
    st.save_file({"w": np.ones(4, np.float32)}, str(model / "model.safetensors"))
    provenance.sign(model, KeySigner.from_file(p256.private))
    shutil.copyfile(old, model / "model.safetensors")
    shutil.copyfile(tmp_path / "old.safetensors.sig", model / "model.safetensors.sig")
    with pytest.raises(PolicyDenied, match="modified"):
        verified.load_file(model / "model.safetensors", policy=policy_file(tmp_path, p256))
