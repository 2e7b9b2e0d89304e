"""Benchmark start-up verification under a policy, against references in the same run.

Run it with the interpreter of the virtualenv that has provenance (and, for the
comparison, model-signing) installed::

    python benchmarks/bench_policy.py [--quick] [--workdir DIR] [--repeat N]

The model is 20,000 files of 4 KiB in 100 folders (2,000 with ``--quick``),
signed by two release keys (``model.sig`` and a co-signature in
``model.sig.d/``) and attested twice (a training run and an evaluation with a
recorded threshold). The policy names both keys as signers (threshold 2) and
requires both attestations, with a predicate constraint on the training
builder and the evaluation's thresholds enforced.

Measured, each command end to end in a fresh process, run in interleaved
rounds (rotating who goes first); the targets are medians of the per-round
ratios, since this machine's speed drifts over seconds:

1. ``provenance verify MODEL --policy P`` (allowed: every rule holds).
2. ``provenance verify MODEL --key A.pub`` (the model signature alone) and
   ``provenance verify MODEL --key A.pub --attestations`` (the same checks a
   policy makes of the attestations, without a policy), for the 1.2x bar.
3. ``model_signing verify key`` of ``model.sig`` (the peer), for the 5x bar.

Not a timed test: it prints PASS/FAIL against ratios and always exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # a sibling script, not a package
    MODEL_SIGNING,
    PROVENANCE,
    Report,
    compile_bytecode,
    fmt_s,
    make_small_folder,
    missing_bytecode,
    print_targets,
    remove_bytecode,
    run_checked,
    warm,
)

POLICY = """\
version: 1
threshold: 2
signers:
  - {{name: release A, key: {a}}}
  - {{name: release B, key: {b}}}
attestations:
  - type: training
    predicate:
      properties:
        runDetails:
          properties:
            builder:
              properties:
                id: {{const: "https://ci.example.com/bench"}}
  - type: evaluation
    thresholds: enforce
"""


def make_keys(workdir: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = []
    for name in ("release-a", "release-b"):
        key = ec.generate_private_key(ec.SECP256R1())
        path = workdir / f"{name}.pem"
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
        out.append(path)
    return out[0], out[1]


def prepare(workdir: Path, n_files: int) -> tuple[Path, Path, Path, Path]:
    """The signed, co-signed and attested model; the policy; the two keys."""
    model = make_small_folder(workdir, n_files, 4096)
    for stale in ("model.sig", "model.intoto.jsonl"):
        (model / stale).unlink(missing_ok=True)
    subprocess.run(["rm", "-rf", str(model / "model.sig.d")], check=True)
    a, b = make_keys(workdir)
    data = workdir / "train-data"
    data.mkdir(exist_ok=True)
    (data / "part-0.jsonl").write_text('{"text": "bench"}\n')
    p = str(PROVENANCE)
    steps = [
        [p, "sign", model, "--key", a],
        [p, "sign", model, "--key", b, "--cosign"],
        [
            p, "attest", "training", model, "--key", a, "--dataset", data,
            "--builder-id", "https://ci.example.com/bench",
        ],
        [
            p, "attest", "eval", model, "--key", a, "--metric", "accuracy=0.93",
            "--threshold", "accuracy>=0.9",
        ],
    ]  # fmt: skip
    for cmd in steps:
        run_checked(cmd, " ".join(str(c) for c in cmd[1:3]))
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY.format(a=a.with_suffix(".pub"), b=b.with_suffix(".pub")))
    return model, policy, a, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 files instead of 20,000")
    ap.add_argument("--workdir", type=Path, help="where to build the model (kept)")
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds (default 7)")
    args = ap.parse_args(argv)
    n_files = 2_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir.resolve() if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"provenance policy benchmark: {n_files} x 4 KiB in {workdir}", flush=True)
        model, policy, a, _ = prepare(workdir, n_files)
        warm(model)
        report = Report()
        pub = a.with_suffix(".pub")
        cmds: dict[str, list[str | Path]] = {
            "policy": [PROVENANCE, "verify", model, "--policy", policy],
            "verify": [PROVENANCE, "verify", model, "--key", pub],
            "verify+attestations": [PROVENANCE, "verify", model, "--key", pub, "--attestations"],
        }
        if MODEL_SIGNING.exists():
            cmds["model_signing"] = [
                MODEL_SIGNING, "verify", "key", "--public_key", pub,
                "--signature", model / "model.sig",
                "--ignore-paths", model / "model.intoto.jsonl",
                "--ignore-paths", model / "model.sig.d",
                model,
            ]  # fmt: skip
        runs: dict[str, list[float]] = {k: [] for k in cmds}
        keys = list(cmds)
        # Measured with provenance's bytecode cached, as an installed package
        # has it (pip compiles at install; an editable checkout may not).
        written = compile_bytecode(missing_bytecode(("provenance", "provenance_cli")))
        try:
            for i in range(args.repeat):
                for k in keys[i % len(keys) :] + keys[: i % len(keys)]:
                    runs[k].append(run_checked(cmds[k], k))
        finally:
            remove_bytecode(written)
        for k, v in runs.items():
            report.row(
                f"{k} (best / median of {args.repeat})",
                f"{fmt_s(min(v))} / {fmt_s(statistics.median(v))}",
            )

        def ratio(num: str, den: str) -> float:
            return statistics.median(x / y for x, y in zip(runs[num], runs[den], strict=True))

        r_plain = ratio("policy", "verify")
        r_att = ratio("policy", "verify+attestations")
        report.row("ratio policy / verify (median of rounds)", f"{r_plain:.2f}")
        report.row("ratio policy / verify --attestations", f"{r_att:.2f}")
        report.target("policy within 1.2x of verify", r_plain, "<=", 1.2, "x")
        report.target("policy within 1.2x of verify --attestations", r_att, "<=", 1.2, "x")
        if "model_signing" in runs:
            r_ms = ratio("model_signing", "policy")
            report.row("ratio model_signing verify / policy", f"{r_ms:.2f}x")
            report.target("policy at least 5x faster than model_signing", r_ms, ">=", 5.0, "x")
        print_targets(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
