"""The toy ML pipeline's four steps: python steps.py prepare|train|evaluate|package.

Each reads and writes plain files in the current folder, as a real step reads
a dataset and writes a checkpoint: prepare-data splits raw/measurements.csv
into data/train.csv and data/test.csv; train fits a line to the training
rows (least squares) into model/; evaluate scores it on the test rows into
eval/metrics.json; package copies the model into release/ with a model card.
Standard library only, so the example needs nothing beyond provenance.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def rows(path: str) -> list[tuple[float, float]]:
    out = []
    for line in Path(path).read_text().splitlines()[1:]:
        x, y = line.split(",")
        out.append((float(x), float(y)))
    return out


def prepare() -> None:
    data = rows("raw/measurements.csv")
    Path("data").mkdir(exist_ok=True)
    for name, part in (("train", data[::2] + data[1::4]), ("test", data[3::4])):
        lines = ["x,y", *(f"{x},{y}" for x, y in part)]
        Path(f"data/{name}.csv").write_text("\n".join(lines) + "\n")


def train() -> None:
    data = rows("data/train.csv")
    n = len(data)
    mx = sum(x for x, _ in data) / n
    my = sum(y for _, y in data) / n
    slope = sum((x - mx) * (y - my) for x, y in data) / sum((x - mx) ** 2 for x, _ in data)
    Path("model").mkdir(exist_ok=True)
    Path("model/weights.json").write_text(
        json.dumps({"slope": slope, "intercept": my - slope * mx}) + "\n"
    )
    Path("model/config.json").write_text(json.dumps({"kind": "linear", "inputs": 1}) + "\n")


def evaluate() -> None:
    w = json.loads(Path("model/weights.json").read_text())
    data = rows("data/test.csv")
    mse = sum((w["slope"] * x + w["intercept"] - y) ** 2 for x, y in data) / len(data)
    Path("eval").mkdir(exist_ok=True)
    Path("eval/metrics.json").write_text(json.dumps({"mse": round(mse, 6)}) + "\n")


def package() -> None:
    Path("release").mkdir(exist_ok=True)
    for f in Path("model").iterdir():
        shutil.copy(f, Path("release") / f.name)
    metrics = json.loads(Path("eval/metrics.json").read_text())
    Path("release/README.md").write_text(f"# Toy linear model\n\nTest MSE: {metrics['mse']}\n")


if __name__ == "__main__":
    {"prepare": prepare, "train": train, "evaluate": evaluate, "package": package}[sys.argv[1]]()
