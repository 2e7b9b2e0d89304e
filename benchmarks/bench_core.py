"""Benchmark provenance's core paths against references measured in the same run.

Run it with the interpreter of the virtualenv that has provenance (and, for the
comparisons, model-signing) installed::

    python benchmarks/bench_core.py [--quick] [--workdir DIR] [--json]

This is not a timed test. Absolute timings on a small, shared machine are too
noisy to gate on, so every target is a *ratio* against a reference measured
moments earlier on the same machine (openssl's SHA-256 speed, model-signing's
wall time), each side taking the best of several runs. The script always exits
0 once it has produced its report; read the PASS/FAIL column.

Measured, in order:

1. openssl SHA-256 throughput on all cores (the hardware limit) and on one core.
2. ``provenance.hash_model`` in-process on a warm 1 GiB folder (4 x 256 MiB).
3. The same in a fresh process (``python -c 'import provenance; provenance.hash_model(F)'``)
   against the bare threads + ``os.preadv`` + ``hashlib`` baseline, also in a fresh
   process: start-up included (the wall time of each process) and excluded (the hash
   call alone, timed inside each process); ``provenance hash`` for context.
4. ``provenance sign`` vs ``model_signing sign key`` end to end on that folder.
5. The same on 20,000 files of 4 KiB in 100 subfolders, and ``provenance verify`` of
   that folder against ``provenance sign`` of it.
6. ``provenance --version`` wall time, and which heavy modules ``import provenance``
   pulls in.
7. Peak RSS of ``provenance sign`` (and model-signing's, for context) on both folders.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
BIN_DIR = Path(sys.executable).parent
PROVENANCE = BIN_DIR / "provenance"
MODEL_SIGNING = BIN_DIR / "model_signing"

# Modules that must stay out of a bare ``import provenance``: each costs tens to
# hundreds of milliseconds at start-up and none is needed to hash a model.
HEAVY_MODULES = ("sigstore", "jsonschema", "huggingface_hub", "rich")
# Not forbidden, but worth seeing: the library promises these load lazily.
NOTABLE_MODULES = ("cryptography", "click", "blake3", "concurrent.futures")

# Run in a fresh interpreter so that RUSAGE_CHILDREN covers exactly one command
# (ru_maxrss of children is the largest single descendant that was waited for).
RSS_WRAPPER = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""

# Run in a fresh interpreter: what the import itself costs and drags in, with no
# module cached by this script.
IMPORT_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import provenance
dt = time.perf_counter() - t0
def loaded(name):
    return any(m == name or m.startswith(name + ".") for m in sys.modules)
print(json.dumps({"seconds": dt,
                  "heavy": [m for m in %r if loaded(m)],
                  "notable": [m for m in %r if loaded(m)]}))
""" % (HEAVY_MODULES, NOTABLE_MODULES)  # noqa: UP031


# The bare baseline of ``plain_read_hash`` as a script for a fresh interpreter, and
# provenance's equivalent. Each prints the seconds its hash call took (imports and
# interpreter start-up excluded), so one run gives both fresh-process figures. Both
# import what they call before the clock starts: ``import provenance`` alone is lazy,
# and would move the hashing modules' import into provenance's timed call.
FRESH_BASELINE = """
import sys, time
import hashlib, os
from concurrent.futures import ThreadPoolExecutor
t0 = time.perf_counter()
def one(path):
    buf = memoryview(bytearray(1 << 20))
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while n := os.preadv(fd, [buf], offset):
            h.update(buf[:n])
            offset += n
    finally:
        os.close(fd)
    return h.digest()
paths = [os.path.join(r, f) for r, _d, fs in os.walk(sys.argv[1]) for f in fs]
with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
    list(pool.map(one, paths))
print(time.perf_counter() - t0)
"""
FRESH_PROVENANCE = """
import sys, time
from provenance import hash_model
t0 = time.perf_counter()
hash_model(sys.argv[1])
print(time.perf_counter() - t0)
"""


@dataclass
class Target:
    """One PASS/FAIL line; ``passed`` is None when the measurement was skipped."""

    name: str
    value: float | None
    op: str
    threshold: float
    unit: str
    passed: bool | None
    note: str = ""


@dataclass
class Report:
    """Everything measured, kept structured so ``--json`` can print it as is."""

    info: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, str]] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, label: str, text: str) -> None:
        """Record a table row and echo it now, so a long run shows progress."""
        self.rows.append((label, text))
        print(f"  {label:<52} {text}", flush=True)

    def target(
        self, name: str, value: float | None, op: str, threshold: float, unit: str, note: str = ""
    ) -> None:
        """Compare against the threshold; ``op`` is '>=', '<=' or '<'."""
        if value is None:
            passed = None
        elif op == ">=":
            passed = value >= threshold
        elif op == "<=":
            passed = value <= threshold
        else:
            passed = value < threshold
        self.targets.append(Target(name, value, op, threshold, unit, passed, note))


# --------------------------------------------------------------------------- helpers


def fmt_rate(bytes_per_s: float) -> str:
    """GB/s in 10^9 bytes, the unit openssl's ``k`` column scales to."""
    return f"{bytes_per_s / 1e9:.2f} GB/s"


def fmt_s(seconds: float) -> str:
    """Seconds with enough digits for both start-up times and minute-long runs."""
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def best_of(n: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    """Minimum of n timings: on a noisy 2-core box, the minimum is the least-disturbed run."""
    runs = [fn() for _ in range(n)]
    return min(runs), runs


def run_checked(cmd: Sequence[str | Path], what: str) -> float:
    """Wall time of one command; raise with its stderr if it fails, since a failed
    sign is fast and would otherwise look like a spectacular win."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {err[-2000:]}")
    return dt


# --------------------------------------------------------------------------- data


def write_random_file(path: Path, size: int) -> None:
    """Random bytes so no layer (filesystem, hash) can take a shortcut on zeros."""
    chunk = 16 * MiB
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def make_big_folder(workdir: Path, n_files: int, file_size: int) -> Path:
    """Create (once) n_files random files; a marker beside the folder records completion,
    so an interrupted run is redone rather than silently benchmarked half-written."""
    name = f"big-{n_files}x{file_size // MiB}MiB"
    folder = workdir / name
    marker = workdir / f"{name}.done"
    if marker.exists() and folder.is_dir():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n_files):
        write_random_file(folder / f"weights-{i:02d}.bin", file_size)
    marker.write_text("ok\n")
    return folder


def make_small_folder(workdir: Path, n_files: int, file_size: int, n_dirs: int = 100) -> Path:
    """Create (once) many small random files spread over subfolders, the shape where
    per-file overhead (stat, open, thread hand-off) rather than hashing dominates."""
    name = f"small-{n_files}x{file_size // 1024}KiB"
    folder = workdir / name
    marker = workdir / f"{name}.done"
    if marker.exists() and folder.is_dir():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    dirs = [folder / f"d{d:03d}" for d in range(n_dirs)]
    for d in dirs:
        d.mkdir()
    for i in range(n_files):
        (dirs[i % n_dirs] / f"f{i:05d}.bin").write_bytes(os.urandom(file_size))
    marker.write_text("ok\n")
    return folder


def warm(folder: Path) -> int:
    """Read every file once so all runs see the page cache, not the disk; returns bytes."""
    buf = bytearray(8 * MiB)
    view = memoryview(buf)
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while n := f.readinto(view):
                    total += n
    return total


def make_key(workdir: Path) -> Path:
    """A fresh unencrypted P-256 PEM key: both tools accept it and neither prompts.
    Its public half is written beside it (``.pub``) for ``provenance verify``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = workdir / "bench-key.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# --------------------------------------------------------------------------- measurements


def openssl_sha256(multi: int | None) -> float:
    """Bytes/s from ``openssl speed``; its last ``sha256`` line is the total in kB/s
    (1000-byte units), summed over processes when ``-multi`` is given."""
    cmd = ["openssl", "speed"]
    if multi:
        cmd += ["-multi", str(multi)]
    cmd += ["-bytes", "1048576", "sha256"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if re.match(r"^sha256\s+[\d.]+k\s*$", ln)]
    if not lines:
        raise RuntimeError(f"could not parse openssl output:\n{out}")
    return float(lines[-1].split()[-1].rstrip("k")) * 1000


def measure_openssl(report: Report, repeat: int) -> float | None:
    """The ceiling: what this CPU does for SHA-256 with every core busy."""
    if shutil.which("openssl") is None:
        report.row("openssl", "SKIPPED: openssl not on PATH")
        return None
    ncpu = os.cpu_count() or 1
    multi = max(openssl_sha256(ncpu) for _ in range(repeat))
    single = max(openssl_sha256(None) for _ in range(max(1, repeat - 1)))
    report.measurements["openssl_sha256_multi_Bps"] = multi
    report.measurements["openssl_sha256_single_Bps"] = single
    report.row(f"openssl sha256, -multi {ncpu} (best of {repeat})", fmt_rate(multi))
    report.row("openssl sha256, one core", fmt_rate(single))
    return multi


def plain_read_hash(folder: Path) -> None:
    """The simplest fast Python equivalent (one thread per core, preadv into a 1 MiB
    buffer, hashlib.sha256): it pays the same page-cache copy as provenance, which
    openssl speed does not, so it shows how much of a gap to openssl is I/O."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: str) -> bytes:
        buf = memoryview(bytearray(MiB))
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY)
        try:
            offset = 0
            while n := os.preadv(fd, [buf], offset):
                h.update(buf[:n])
                offset += n
        finally:
            os.close(fd)
        return h.digest()

    paths = [os.path.join(r, f) for r, _d, fs in os.walk(folder) for f in fs]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(one, paths))


def measure_hash_model(report: Report, folder: Path, size: int, repeat: int) -> float:
    """In-process hash throughput, timing only the call (import and warm-up excluded).
    Runs alternate with the plain read+hash baseline so both see the same noise."""
    import provenance

    provenance.hash_model(folder)  # first call pays one-off costs (thread pool, lazy imports)
    prov_runs: list[float] = []
    plain_runs: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        provenance.hash_model(folder)
        prov_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain_read_hash(folder)
        plain_runs.append(time.perf_counter() - t0)
    best = min(prov_runs)
    rate = size / best
    plain_rate = size / min(plain_runs)
    report.measurements["hash_model_seconds"] = prov_runs
    report.measurements["hash_model_Bps"] = rate
    report.measurements["plain_read_hash_seconds"] = plain_runs
    report.measurements["plain_read_hash_Bps"] = plain_rate
    report.row(
        f"provenance.hash_model, warm folder (best of {repeat})",
        f"{fmt_rate(rate)}  ({fmt_s(best)})",
    )
    report.row(
        f"  context: plain threads+preadv+hashlib (best of {repeat})",
        f"{fmt_rate(plain_rate)}  (hash_model at {rate / plain_rate:.2f}x of it)",
    )
    return rate


def run_timed(cmd: Sequence[str | Path], what: str) -> tuple[float, float]:
    """Wall time of one fresh-process run and the seconds it printed last (its own
    timing of the hash call)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return dt, float(proc.stdout.split()[-1])


def missing_bytecode(packages: Sequence[str]) -> list[Path]:
    """Sources of these packages whose cached bytecode is missing or stale.

    An installed wheel has its bytecode compiled by pip; an editable install under
    ``PYTHONDONTWRITEBYTECODE=1`` (as in CI sandboxes) never gets any, so every fresh
    process compiles provenance from source (measured: about 15 ms of start-up)."""
    out: list[Path] = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        for src in Path(spec.origin).parent.rglob("*.py"):
            pyc = Path(importlib.util.cache_from_source(str(src)))
            if not pyc.exists() or pyc.stat().st_mtime < src.stat().st_mtime:
                out.append(src)
    return out


def compile_bytecode(sources: Sequence[Path]) -> list[Path]:
    """Compile these sources as pip would at install; returns the files written."""
    import py_compile

    written = []
    for src in sources:
        written.append(Path(py_compile.compile(str(src), doraise=True)))
    return written


def remove_bytecode(files: Sequence[Path]) -> None:
    """Undo ``compile_bytecode``: leave the install as it was found."""
    for pyc in files:
        pyc.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            pyc.parent.rmdir()  # only if now empty


def fresh_runs(folder: Path, repeat: int, cli: bool) -> dict[str, list[tuple[float, float]]]:
    """Interleaved fresh-process runs (rotating who goes first): the baseline, provenance
    through ``python -c``, and (if ``cli``) ``provenance hash``. Each entry is
    (wall seconds, seconds the process timed for its hash call; NaN for the CLI)."""
    cmds: dict[str, list[str | Path]] = {
        "baseline": [sys.executable, "-c", FRESH_BASELINE, folder],
        "provenance": [sys.executable, "-c", FRESH_PROVENANCE, folder],
    }
    if cli:
        cmds["cli"] = [PROVENANCE, "hash", folder]
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    keys = list(cmds)
    for i in range(repeat):
        for k in keys[i % len(keys) :] + keys[: i % len(keys)]:
            if k == "cli":
                runs[k].append((run_checked(cmds[k], "provenance hash"), float("nan")))
            else:
                runs[k].append(run_timed(cmds[k], f"fresh-process {k}"))
    return runs


def measure_fresh_hash(report: Report, folder: Path, size: int, repeat: int) -> None:
    """Hashing in a fresh process, as a start-up hook or a CLI would, against the bare
    baseline in a fresh process, interleaved, best of ``repeat`` per side.

    Two ratios: start-up included (each process's wall time: interpreter, imports,
    thread start, hash, exit) and start-up excluded (the hash call alone, timed inside
    each process, first-call costs included). Measured with provenance's bytecode
    cached, as an installed package has it; if it was missing, the start-up-included
    ratio without it is measured first, for context, and the compiled files are
    removed again afterwards."""
    packages = ("provenance", "provenance_cli")
    missing = missing_bytecode(packages)
    if missing:
        cold = fresh_runs(folder, repeat, cli=False)
        base = min(w for w, _ in cold["baseline"])
        prov = min(w for w, _ in cold["provenance"])
        report.measurements["fresh_no_bytecode"] = cold
        report.row(
            f"  context: fresh, no provenance bytecode (best of {repeat})",
            f"{fmt_rate(size / prov)}  ({base / prov:.3f} of baseline {fmt_rate(size / base)})",
        )
    written = compile_bytecode(missing)
    try:
        runs = fresh_runs(folder, repeat, cli=True)
    finally:
        remove_bytecode(written)
    report.measurements["fresh"] = runs
    base_wall = min(w for w, _ in runs["baseline"])
    prov_wall = min(w for w, _ in runs["provenance"])
    cli_wall = min(w for w, _ in runs["cli"])
    base_call = min(c for _, c in runs["baseline"])
    prov_call = min(c for _, c in runs["provenance"])
    included = base_wall / prov_wall
    excluded = base_call / prov_call
    report.measurements["fresh_ratio_startup_included"] = included
    report.measurements["fresh_ratio_startup_excluded"] = excluded
    report.row(
        f"fresh process: provenance.hash_model (best of {repeat})",
        f"{fmt_rate(size / prov_wall)}  ({fmt_s(prov_wall)}, start-up included)",
    )
    report.row(
        f"  context: fresh process, bare baseline (best of {repeat})",
        f"{fmt_rate(size / base_wall)}  ({fmt_s(base_wall)}, start-up included)",
    )
    report.row("    ratio provenance / baseline, start-up included", f"{included:.3f}")
    report.row(
        "    ratio, hash call only (start-up excluded)",
        f"{fmt_rate(size / prov_call)} vs {fmt_rate(size / base_call)}: {excluded:.3f}",
    )
    report.row(
        f"  context: provenance hash CLI (best of {repeat})",
        f"{fmt_rate(size / cli_wall)}  ({base_wall / cli_wall:.3f} of baseline)",
    )
    report.target("fresh process hash_model/baseline, start-up incl.", included, ">=", 0.95, "")
    report.target("fresh process hash_model/baseline, start-up excl.", excluded, ">=", 0.95, "")


def measure_verify_vs_sign(
    report: Report, label: str, folder: Path, key: Path, sigdir: Path, repeat: int
) -> float:
    """``provenance verify`` against ``provenance sign`` of the same folder, end to end.

    Run in pairs, back to back, the order alternating: this machine's speed
    drifts by 10-20% over seconds, which moves two runs of a pair together
    but a best-of over the whole series apart. The target is the median of
    the pairs' ratios; the best-of ratio is shown for context.
    """
    signed = sigdir / f"{folder.name}.verify-me.sig"
    sign = [PROVENANCE, "sign", folder, "--key", key, "--signature", signed]
    signed.unlink(missing_ok=True)
    run_checked(sign, "provenance sign")
    scratch = sigdir / f"{folder.name}.scratch.sig"
    pub = key.with_suffix(".pub")
    cmds = {
        "verify": [PROVENANCE, "verify", folder, "--key", pub, "--signature", signed],
        "sign": [PROVENANCE, "sign", folder, "--key", key, "--signature", scratch],
    }
    runs: dict[str, list[float]] = {"verify": [], "sign": []}
    for i in range(repeat):
        for k in ("verify", "sign") if i % 2 == 0 else ("sign", "verify"):
            scratch.unlink(missing_ok=True)
            runs[k].append(run_checked(cmds[k], f"provenance {k}"))
    v, s = min(runs["verify"]), min(runs["sign"])
    paired = statistics.median(a / b for a, b in zip(runs["verify"], runs["sign"], strict=True))
    report.measurements["verify_vs_sign_seconds"] = runs
    report.row(f"provenance verify, {label} (best of {repeat})", fmt_s(v))
    report.row(f"  ratio verify / sign, {label}, best of each", f"{v / s:.2f} (sign {fmt_s(s)})")
    report.row(f"  ratio verify / sign, {label}, median of {repeat} pairs", f"{paired:.2f}")
    return paired


def sign_commands(
    folder: Path, key: Path, sigdir: Path
) -> tuple[list[str | Path], list[str | Path], Path, Path]:
    """Both tools' sign command lines, writing signatures outside the model so
    neither tool has to skip (or worse, hash) the other's output."""
    prov_sig = sigdir / f"{folder.name}.provenance.sig"
    ms_sig = sigdir / f"{folder.name}.model_signing.sig"
    prov = [PROVENANCE, "sign", folder, "--key", key, "--signature", prov_sig]
    ms = [MODEL_SIGNING, "sign", "key", "--private_key", key, "--signature", ms_sig, folder]
    return prov, ms, prov_sig, ms_sig


def measure_sign(
    report: Report, key_name: str, label: str, folder: Path, key: Path, sigdir: Path, repeat: int
) -> float | None:
    """End-to-end wall time of both CLIs, interleaved (and alternating who goes first)
    so a burst of background noise hurts both sides rather than one."""
    prov, ms, prov_sig, ms_sig = sign_commands(folder, key, sigdir)
    have_ms = MODEL_SIGNING.exists()
    prov_runs: list[float] = []
    ms_runs: list[float] = []
    for i in range(repeat):
        order = [("p", prov, prov_sig), ("m", ms, ms_sig)]
        if i % 2:
            order.reverse()
        for who, cmd, sig in order:
            if who == "m" and not have_ms:
                continue
            sig.unlink(missing_ok=True)
            runs = prov_runs if who == "p" else ms_runs
            runs.append(run_checked(cmd, "provenance sign" if who == "p" else "model_signing"))
            if not sig.exists():
                raise RuntimeError(f"{cmd[0]} exited 0 but wrote no signature at {sig}")
    prov_best = min(prov_runs)
    report.measurements[f"sign_{key_name}_provenance_seconds"] = prov_runs
    report.row(f"provenance sign, {label} (best of {repeat})", fmt_s(prov_best))
    if not have_ms:
        report.row(f"model_signing sign key, {label}", f"SKIPPED: {MODEL_SIGNING} not found")
        return None
    ms_best = min(ms_runs)
    report.measurements[f"sign_{key_name}_model_signing_seconds"] = ms_runs
    report.row(f"model_signing sign key, {label} (best of {repeat})", fmt_s(ms_best))
    ratio = ms_best / prov_best
    report.measurements[f"sign_{key_name}_ratio"] = ratio
    report.row(f"  ratio model_signing / provenance, {label}", f"{ratio:.2f}x")
    return ratio


def measure_version(report: Report, n: int = 10) -> float:
    """Start-up cost users pay on every invocation (and shells pay on completion)."""
    best, runs = best_of(n, lambda: run_checked([PROVENANCE, "--version"], "provenance --version"))
    report.measurements["version_seconds"] = runs
    report.row(f"provenance --version (best of {n})", fmt_s(best))
    return best


def measure_import(report: Report) -> list[str]:
    """Import cost and side effects in a clean interpreter, free of this script's imports."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
    ).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    report.measurements["import"] = probe
    heavy = probe["heavy"]
    report.row("import provenance (fresh interpreter)", fmt_s(probe["seconds"]))
    report.row("  heavy modules loaded", ", ".join(heavy) if heavy else "none")
    report.row("  also loaded (informational)", ", ".join(probe["notable"]) or "none")
    return heavy


def peak_rss_mb(cmd: Sequence[str | Path], what: str) -> float:
    """Max RSS in MB (10^6 bytes) of one command, via a fresh wrapper interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *map(str, cmd)],
        capture_output=True,
        text=True,
        check=True,
    )
    kib, rc = proc.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{what} failed under the RSS wrapper (exit {rc})")
    return int(kib) * 1024 / 1e6


def measure_rss(
    report: Report, key_name: str, label: str, folder: Path, key: Path, sigdir: Path
) -> float:
    """Peak memory of signing: should stay flat whatever the model size or file count."""
    prov, ms, prov_sig, ms_sig = sign_commands(folder, key, sigdir)
    prov_sig.unlink(missing_ok=True)
    prov_mb = peak_rss_mb(prov, "provenance sign")
    report.measurements[f"rss_{key_name}_provenance_MB"] = prov_mb
    report.row(f"peak RSS provenance sign, {label}", f"{prov_mb:.1f} MB")
    if MODEL_SIGNING.exists():
        ms_sig.unlink(missing_ok=True)
        ms_mb = peak_rss_mb(ms, "model_signing sign key")
        report.measurements[f"rss_{key_name}_model_signing_MB"] = ms_mb
        report.row(f"peak RSS model_signing sign key, {label}", f"{ms_mb:.1f} MB")
    return prov_mb


# --------------------------------------------------------------------------- report


def print_targets(report: Report) -> None:
    """The verdict table, one line per target, with the measured value beside the bar."""
    print("\nTargets")
    print(f"  {'target':<46} {'value':>10}   {'bar':<12} result")
    for t in report.targets:
        value = "-" if t.value is None else f"{t.value:.3g}{t.unit}"
        bar = f"{t.op} {t.threshold:g}{t.unit}"
        result = {True: "PASS", False: "FAIL", None: "SKIP"}[t.passed]
        note = f"  ({t.note})" if t.note else ""
        print(f"  {t.name:<46} {value:>10}   {bar:<12} {result}{note}")
    for n in report.notes:
        print(f"  note: {n}")


def dist_version(name: str) -> str:
    """Installed distribution version, for the header: results only compare across
    runs of the same versions."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def parse_args(
    argv: Sequence[str] | None,
    description: str = __doc__.splitlines()[0],
    quick_help: str = "small sizes, for a smoke run",
    repeat_help: str = "runs per big case (default 3)",
) -> argparse.Namespace:
    """Flags shared by the benchmark scripts; sizes are fixed so runs compare across commits."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--workdir", type=Path, help="keep (and reuse) the data here")
    p.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    p.add_argument("--repeat", type=int, default=3, help=repeat_help)
    return p.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> Report:
    """All measurements, in the order the brief fixes: reference first, then provenance."""
    report = Report()
    big_n, big_size = (4, 32 * MiB) if args.quick else (4, 256 * MiB)
    small_n, small_size = (2_000, 4096) if args.quick else (20_000, 4096)
    repeat = max(1, args.repeat)

    report.info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "provenance": dist_version("ml-provenance"),
        "model_signing": dist_version("model-signing"),
        "quick": args.quick,
        "workdir": str(workdir),
        "repeat": repeat,
    }
    print("provenance core benchmark")
    for k, v in report.info.items():
        print(f"  {k:<14} {v}")
    if not PROVENANCE.exists():
        raise SystemExit(f"{PROVENANCE} not found: pip install -e . into this interpreter first")
    if not MODEL_SIGNING.exists():
        print(f"  NOTE: {MODEL_SIGNING} not found; model-signing comparisons are skipped")

    print("\nPreparing data", flush=True)
    t0 = time.perf_counter()
    big = make_big_folder(workdir, big_n, big_size)
    small = make_small_folder(workdir, small_n, small_size)
    key = make_key(workdir)
    sigdir = workdir / "signatures"
    sigdir.mkdir(exist_ok=True)
    # Fresh data leaves ~1 GiB of dirty pages; their background writeback would
    # slow whichever measurement runs first, so flush it before timing anything.
    os.sync()
    big_bytes = warm(big)
    warm(small)
    big_label = f"{big_n}x{big_size // MiB} MiB"
    small_label = f"{small_n} x {small_size // 1024} KiB"
    print(f"  {big} ({big_bytes / MiB:.0f} MiB), {small} ({small_n} files)")
    print(f"  ready in {time.perf_counter() - t0:.1f} s (page cache warmed)")

    print("\nMeasurements", flush=True)
    # 1. hardware limit
    multi = measure_openssl(report, repeat)
    # 2. in-process hashing
    rate = measure_hash_model(report, big, big_bytes, max(5, 2 * repeat))
    ratio_hw = rate / multi if multi else None
    if ratio_hw is not None:
        report.row("  ratio hash_model / openssl multi", f"{ratio_hw:.3f}")
    report.target("hash_model vs openssl -multi", ratio_hw, ">=", 0.90, "")
    # 3. in a fresh process
    measure_fresh_hash(report, big, big_bytes, max(7, 2 * repeat + 1))
    # 4. and 5. end to end
    r_big = measure_sign(report, "big", big_label, big, key, sigdir, repeat)
    report.target(f"sign {big_label}: model_signing/provenance", r_big, ">=", 2.0, "x")
    r_small = measure_sign(report, "small", small_label, small, key, sigdir, repeat)
    report.target(f"sign {small_label}: model_signing/provenance", r_small, ">=", 5.0, "x")
    r_verify = measure_verify_vs_sign(report, small_label, small, key, sigdir, max(9, repeat))
    report.target(f"verify/sign {small_label} (median of pairs)", r_verify, "<=", 1.0, "x")
    # 6. start-up
    version_s = measure_version(report)
    report.target("provenance --version wall time", version_s, "<", 0.25, "s")
    heavy = measure_import(report)
    report.target(
        "heavy modules after import provenance",
        float(len(heavy)),
        "<",
        1,
        "",
        ", ".join(heavy),
    )
    # 7. memory
    for key_name, label, folder in (("big", big_label, big), ("small", small_label, small)):
        mb = measure_rss(report, key_name, label, folder, key, sigdir)
        report.target(f"peak RSS provenance sign, {label}", mb, "<", 150, "MB")
    if args.quick:
        report.notes.append("--quick sizes: ratios are indicative only")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(parse_args(argv), run, "provenance-bench-")


def run_main(
    args: argparse.Namespace,
    run_fn: Callable[[argparse.Namespace, Path], Report],
    prefix: str,
) -> int:
    """Set up the workdir, run, report; a temp workdir is removed even on failure.

    Shared by every benchmark script in this folder.
    """
    if args.workdir is not None:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        cleanup = False
    else:
        workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        cleanup = True
    try:
        report = run_fn(args, workdir)
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)
    print_targets(report)
    if args.json:
        print(
            json.dumps(
                {
                    "info": report.info,
                    "measurements": report.measurements,
                    "targets": [asdict(t) for t in report.targets],
                    "notes": report.notes,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
