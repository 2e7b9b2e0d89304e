"""Verified loading against plain loading, measured in the same run.

    python benchmarks/bench_load.py [--quick] [--workdir DIR] [--repeat N] [--json]

Not a timed test: every figure is a ratio against ``safetensors.numpy.load_file``
on the same files, moments apart, warm page cache, median of interleaved runs
(the machine's load drifts over seconds, so each pair is measured back to back).

1. The usual Hub layout: 4 x 512 MiB safetensors shards with their index,
   signed with the defaults (sha256, files). Rows: the verified load
   (``provenance.loaders.safetensors.load_folder`` under a key policy), the naive
   way (``provenance.verify`` then ``load_file`` per shard: two reads), and
   hashing alone (``provenance.hash_model``). Bar: the verified load at most 1.1x.
2. One 2 GiB safetensors file signed three ways: sha256 files (one SHA-256 on
   one core: quoted, no bar), sha256 shards of 256 MiB, blake3 files (bars 1.1x).
3. Peak memory of a verified load in a fresh process (ru_maxrss after the load,
   less before it) against the model's size. Bar: at most 64 MiB more.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MiB = 1 << 20


def make_shards(folder: Path, shards: int, shard_bytes: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    per = 8
    elems = shard_bytes // per // 4
    rng = np.random.default_rng(0)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"layers.{s * per + i}.weight": rng.standard_normal(elems, dtype=np.float32)
            for i in range(per)
        }
        save_file(tensors, str(folder / name), metadata={"format": "np"})
        for k, v in tensors.items():
            weight_map[k] = name
            total += v.nbytes
        del tensors
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    (folder / "config.json").write_text('{"model_type": "bench"}\n')


def make_single(path: Path, size: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    tensors = {f"t{i}": rng.standard_normal(size // 16 // 4, dtype=np.float32) for i in range(16)}
    save_file(tensors, str(path))


def warm(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(64 * MiB):
                    pass


def median_ratio(
    ours: Callable[[], Any], ref: Callable[[], Any], repeat: int
) -> tuple[float, float, float]:
    """Median of per-pair ratios, alternating who goes first; and each side's median time."""
    ratios, a, b = [], [], []
    for i in range(repeat):
        pair = [(ours, a), (ref, b)]
        if i % 2:
            pair.reverse()
        times = {}
        for fn, out in pair:
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            dt = time.perf_counter() - t0
            del result
            out.append(dt)
            times[id(out)] = dt
        ratios.append(times[id(a)] / times[id(b)])
    return statistics.median(ratios), statistics.median(a), statistics.median(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 x 64 MiB and a 256 MiB file")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from safetensors.numpy import load_file as st_load_file

    import provenance
    from provenance.loaders import safetensors as verified
    from provenance.signing import KeySigner, KeyVerifier

    shard_bytes = 64 * MiB if args.quick else 512 * MiB
    single_bytes = 256 * MiB if args.quick else 2048 * MiB
    own_tmp = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="bench-load-")) if own_tmp else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        # Kept with the model in a --workdir, so the signed files made by an
        # earlier run still verify.
        key = ec.generate_private_key(ec.SECP256R1())
        if (work / "k.pem").exists():
            loaded = serialization.load_pem_private_key((work / "k.pem").read_bytes(), None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            key = loaded
        (work / "k.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (work / "k.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        policy = work / "policy.yaml"
        policy.write_text(
            f"version: 1\nsigners:\n  - key: {work / 'k.pub'}\n"
            "files:\n  formats:\n    deny: [pickle]\n"
        )
        signer = KeySigner.from_file(work / "k.pem")
        verifier = KeyVerifier.from_files(work / "k.pub")

        model = work / "hub"
        if not (model / "model.sig").exists():
            shutil.rmtree(model, ignore_errors=True)
            make_shards(model, 4, shard_bytes)
            provenance.sign(model, signer)
        shards = sorted(model.glob("*.safetensors"))
        warm(model)

        def reference() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for s in shards:
                out.update(st_load_file(str(s)))
            return out

        def ours() -> dict[str, Any]:
            return verified.load_folder(model, policy=policy)

        def naive() -> dict[str, Any]:
            provenance.verify(model, verifier)
            return reference()

        def hashing() -> object:
            return provenance.hash_model(model)

        # results first: equal to the package's own, tensor by tensor
        a, b = ours(), reference()
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
        del a, b
        size = sum(s.stat().st_size for s in shards)
        for label, fn, bar in (
            ("verified load_folder (policy)", ours, 1.1),
            ("naive: verify, then load_file", naive, None),
            ("hash_model alone", hashing, None),
        ):
            r, t_ours, t_ref = median_ratio(fn, reference, args.repeat)
            rows.append(
                {
                    "row": f"4 x {shard_bytes // MiB} MiB shards: {label} / load_file",
                    "ratio": r,
                    "seconds": t_ours,
                    "reference_seconds": t_ref,
                    "bar": bar,
                    "pass": None if bar is None else r <= bar,
                }
            )

        single = work / "single" / "model.safetensors"
        if not single.exists():
            single.parent.mkdir(parents=True, exist_ok=True)
            make_single(single, single_bytes)
        variants = {
            "sha256 files": dict(method="files", algorithm="sha256"),
            f"sha256 shards of {256 if not args.quick else 32} MiB": dict(
                method="shards",
                algorithm="sha256",
                shard_size=(256 if not args.quick else 32) * MiB,
            ),
            "blake3 files": dict(method="files", algorithm="blake3"),
        }
        warm(single.parent)
        for i, (label, kw) in enumerate(variants.items()):
            sig = work / "single" / f"v{i}.sig"
            if not sig.exists():
                provenance.sign(single, signer, signature_path=sig, **kw)  # type: ignore[arg-type]

            def one(sig: Path = sig) -> dict[str, Any]:
                return verified.load_file(single, verifier=verifier, signature=sig)

            def ref_one() -> dict[str, Any]:
                return st_load_file(str(single))

            r, t_ours, t_ref = median_ratio(one, ref_one, args.repeat)
            bar = None if label == "sha256 files" else 1.1
            rows.append(
                {
                    "row": f"one {single_bytes // MiB} MiB file, {label}: verified load_file"
                    " / load_file",
                    "ratio": r,
                    "seconds": t_ours,
                    "reference_seconds": t_ref,
                    "bar": bar,
                    "pass": None if bar is None else r <= bar,
                }
            )

        probe = f"""
import provenance
from provenance.loaders import safetensors as v
tiny = {str(work / "tiny")!r}
v.load_folder(tiny, policy={str(policy)!r})
def hwm():  # this process's own peak RSS; ru_maxrss would start at the parent's
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1])
base = hwm()
t = v.load_folder({str(model)!r}, policy={str(policy)!r})
print(base * 1024, hwm() * 1024)
"""
        tiny = work / "tiny"
        if not (tiny / "model.sig").exists():
            make_shards(tiny, 1, MiB)
            provenance.sign(tiny, signer)
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
        base, peak = int(out[0]), int(out[1])
        extra = (peak - base - size) / MiB
        rows.append(
            {
                "row": f"peak memory of the verified load, beyond the model's {size // MiB} MiB",
                "ratio": None,
                "mib": extra,
                "bar": 64,
                "pass": extra <= 64,
            }
        )
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps({"rows": rows, "cpus": os.cpu_count()}, indent=2))
    else:
        print(f"{'measurement':<78} {'ratio':>7} {'ours s':>8} {'ref s':>8}  bar    result")
        for r in rows:
            ratio = f"{r['ratio']:.3f}" if r.get("ratio") is not None else f"{r['mib']:+.1f}M"
            ours_s = f"{r['seconds']:.3f}" if "seconds" in r else ""
            ref_s = f"{r['reference_seconds']:.3f}" if "reference_seconds" in r else ""
            bar = "" if r["bar"] is None else (f"<={r['bar']}")
            res = "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
            print(f"{r['row']:<78} {ratio:>7} {ours_s:>8} {ref_s:>8}  {bar:<6} {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
