"""Write a tiny but real model folder: a safetensors file, a config, a tokenizer.

The safetensors file is built by hand (8-byte little-endian header length,
JSON header, raw little-endian float32 data) so the example needs nothing
beyond the standard library.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path


def write_safetensors(path: Path, tensors: dict[str, list[float]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, values in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": [len(values)],
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def main(folder: str) -> None:
    root = Path(folder)
    (root / "tokenizer").mkdir(parents=True, exist_ok=True)
    write_safetensors(
        root / "model.safetensors",
        {"embed.weight": [0.1 * i for i in range(32)], "head.bias": [0.0, 1.0, -1.0, 0.5]},
    )
    (root / "config.json").write_text(
        json.dumps({"model_type": "tiny", "hidden_size": 8, "vocab_size": 4}, indent=2) + "\n"
    )
    (root / "tokenizer" / "vocab.json").write_text(
        json.dumps({"<pad>": 0, "hello": 1, "world": 2, "<eos>": 3}) + "\n"
    )
    print(f"wrote a tiny model to {root}/")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny-model")
