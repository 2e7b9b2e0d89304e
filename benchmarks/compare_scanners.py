"""Compare ``provenance scan`` with picklescan, modelscan and fickling on one corpus.

    python benchmarks/compare_scanners.py [--peers DIR] [--corpus DIR]

The corpus is written by ``benchmarks/scan_corpus.py`` (hostile and benign
files, all made from code). The peers are PyPI packages kept out of this
project's dependencies; install them into their own virtualenv and pass its
``bin`` folder::

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install picklescan modelscan fickling typing_extensions numpy

Each scanner is run once per file in the same run; exit code 1 is "flagged",
0 is "clean", anything else is "error" (counted apart: a scanner that
crashes on a hostile file has not flagged it). The goal is every hostile file
flagged and no benign file flagged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_corpus import write  # a sibling script, not a package

PROVENANCE = Path(sys.executable).parent / "provenance"


def commands(peers: Path | None, path: Path) -> dict[str, list[str]]:
    out = {"provenance scan": [str(PROVENANCE), "scan", str(path)]}
    if peers is not None:
        out["picklescan"] = [str(peers / "picklescan"), "-p", str(path)]
        out["modelscan"] = [str(peers / "modelscan"), "scan", "-p", str(path)]
        out["fickling"] = [str(peers / "fickling"), "--check-safety", str(path)]
    return out


def verdict(cmd: list[str]) -> str:
    if not Path(cmd[0]).exists():
        return "missing"
    try:
        # In a scratch folder: fickling writes safety_results.json where it runs.
        with tempfile.TemporaryDirectory() as cwd:
            rc = subprocess.run(
                cmd, capture_output=True, timeout=120, check=False, cwd=cwd
            ).returncode
    except subprocess.TimeoutExpired:
        return "error"
    return {0: "clean", 1: "flagged"}.get(rc, "error")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=Path, help="bin folder of a venv with the peer scanners")
    ap.add_argument("--corpus", type=Path, help="where to write the corpus (kept)")
    ap.add_argument("--details", action="store_true", help="print every file's verdicts")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp)
        names = write(corpus)
        table: dict[str, dict[str, dict[str, int]]] = {}
        rows: list[tuple[str, str, dict[str, str]]] = []
        for kind in ("hostile", "benign"):
            for name in names[kind]:
                path = corpus / kind / name
                got = {who: verdict(cmd) for who, cmd in commands(args.peers, path).items()}
                rows.append((kind, name, got))
                for who, v in got.items():
                    table.setdefault(who, {}).setdefault(kind, {}).setdefault(v, 0)
                    table[who][kind][v] += 1
        n_h, n_b = len(names["hostile"]), len(names["benign"])
        print(f"corpus: {n_h} hostile, {n_b} benign files ({corpus})\n")
        print(f"| scanner | hostile flagged (of {n_h}) | benign flagged (of {n_b}) | errors |")
        print("|---|---|---|---|")
        for who, kinds in table.items():
            h = kinds.get("hostile", {})
            b = kinds.get("benign", {})
            errors = h.get("error", 0) + b.get("error", 0)
            print(f"| {who} | {h.get('flagged', 0)} | {b.get('flagged', 0)} | {errors} |")
        if args.details:
            print()
            who_all = list(table)
            print("| kind | file | " + " | ".join(who_all) + " |")
            print("|---|---|" + "---|" * len(who_all))
            for kind, name, got in rows:
                print(f"| {kind} | {name} | " + " | ".join(got[w] for w in who_all) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
