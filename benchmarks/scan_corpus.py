"""Write a corpus of hostile and benign model files, for comparing format scanners.

    python benchmarks/scan_corpus.py OUT_DIR

``OUT_DIR/hostile/`` gets files a loader would be harmed by (code run on
load, or a malformed file a loader mis-parses); ``OUT_DIR/benign/`` gets
ordinary files real tools write. Every file is built here from code: nothing
opaque is checked in. Real libraries write the benign ones where they are
installed (numpy, safetensors); the rest are built byte by byte the way
those libraries write them. No hostile pickle is ever loaded.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def call_pickle(module: str, name: str, *args: str, protocol: int = 2) -> bytes:
    """GLOBAL module.name, called with string arguments (REDUCE)."""
    body = _global(module, name) + b"(" + b"".join(_str(a) for a in args) + b"tR."
    return (b"\x80" + bytes([protocol]) if protocol >= 2 else b"") + body


def stack_global_pickle(module: str, name: str, arg: str) -> bytes:
    """STACK_GLOBAL with module and name memoized, then fetched back from the memo."""
    return (
        b"\x80\x04"
        + b"\x8c" + bytes([len(module)]) + module.encode() + b"\x94"  # memo 0
        + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x94"  # memo 1
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + b"\x8c" + bytes([len(arg)]) + arg.encode() + b"\x85R."
    )  # fmt: skip


def inst_pickle(module: str, name: str, arg: str) -> bytes:
    """INST: protocol 0's call of module.name."""
    return b"(" + _str(arg) + b"i" + module.encode() + b"\n" + name.encode() + b"\n."


def ext_pickle(code: int) -> bytes:
    """EXT1: a global from copyreg's extension registry (unknown until load time)."""
    return b"\x80\x02\x82" + bytes([code]) + b"(X\x02\x00\x00\x00idtR."


def torch_zip(
    data_pkl: bytes, *, encrypt_flag: bool = False, hide_name: str | None = None
) -> bytes:
    """A zip laid out as torch.save writes it, around the given data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/data/0", b"\x00" * 64)
    raw = bytearray(buf.getvalue())
    if encrypt_flag or hide_name:
        # Edit the first member's local header: the flag bit, or its name.
        if encrypt_flag:
            raw[6] |= 0x01
        if hide_name:
            n = struct.unpack_from("<H", raw, 26)[0]
            new = hide_name.encode().ljust(n, b"_")[:n]
            raw[30 : 30 + n] = new
    return bytes(raw)


def benign_state_dict_pickle() -> bytes:
    """A state-dict pickle as torch writes it: rebuild calls on persistent storages."""
    return (
        b"\x80\x02"
        + _global("collections", "OrderedDict") + b")R"
        + b"X\x06\x00\x00\x00weight"
        + _global("torch._utils", "_rebuild_tensor_v2")
        + b"((X\x07\x00\x00\x00storage"
        + _global("torch", "FloatStorage")
        + b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x10tQ"
        + b"K\x00K\x04K\x04\x86K\x04K\x01\x86\x89"
        + _global("collections", "OrderedDict") + b")Rt"
        + b"R"
        + b"s."
    )  # fmt: skip


def npy_object_array_payload(pickled: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pickled


def safetensors_bytes(
    tensors: dict[str, tuple[str, list[int], bytes]], *, pad: bytes = b""
) -> bytes:
    header: dict[str, object] = {}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    text = json.dumps(header).encode() + pad
    return struct.pack("<Q", len(text)) + text + data


def write(out: Path) -> dict[str, list[str]]:
    hostile, benign = out / "hostile", out / "benign"
    hostile.mkdir(parents=True, exist_ok=True)
    benign.mkdir(parents=True, exist_ok=True)
    h: dict[str, bytes] = {}
    # Code run on load, each by another principle of reaching a callable.
    h["os-system.pkl"] = call_pickle("os", "system", "echo pwned")
    h["posix-system-proto0.pkl"] = call_pickle("posix", "system", "echo pwned", protocol=0)
    h["builtins-eval.pkl"] = call_pickle("builtins", "eval", "__import__('os').system('id')")
    h["builtins-exec.pkl"] = call_pickle("builtins", "exec", "import os")
    h["builtins-getattr.pkl"] = call_pickle("builtins", "getattr", "x")
    h["importlib-import-module.pkl"] = call_pickle("importlib", "import_module", "os")
    h["pip-main.pkl"] = call_pickle("pip", "main", "install")
    h["pkgutil-resolve-name.pkl"] = call_pickle("pkgutil", "resolve_name", "os:system")
    h["logging-filehandler.pkl"] = call_pickle("logging", "FileHandler", "/tmp/x")
    h["timeit-timeit.pkl"] = call_pickle("timeit", "timeit", "import os")
    h["asyncio-subprocess.pkl"] = call_pickle("asyncio.subprocess", "create_subprocess_shell", "id")
    h["runpy-run-path.pkl"] = call_pickle("runpy", "run_path", "/tmp/x.py")
    h["subprocess-popen.pkl"] = call_pickle("subprocess", "Popen", "id")
    h["shutil-rmtree.pkl"] = call_pickle("shutil", "rmtree", "/tmp/x")
    h["webbrowser-open.pkl"] = call_pickle("webbrowser", "open", "http://example.com")
    h["torch-load-from-bytes.pkl"] = call_pickle("torch.storage", "_load_from_bytes", "x")
    h["numpy-testing-runstring.pkl"] = call_pickle("numpy.testing._private.utils", "runstring", "1")
    h["stack-global-memo.pkl"] = stack_global_pickle("os", "system", "id")
    h["inst-opcode.pkl"] = inst_pickle("os", "system", "id")
    h["ext-registry.pkl"] = ext_pickle(1)
    h["dotted-name.pkl"] = call_pickle("builtins", "getattr.__call__", "x")
    h["trailing-second-pickle.pkl"] = pickle.dumps({"a": 1}) + call_pickle("os", "system", "id")
    h["disguised.safetensors"] = call_pickle("os", "system", "id")
    h["pytorch_model.bin"] = torch_zip(call_pickle("os", "system", "id"))
    h["torch-encrypted-flag.pt"] = torch_zip(call_pickle("os", "system", "id"), encrypt_flag=True)
    h["torch-hidden-name.pth"] = torch_zip(
        call_pickle("os", "system", "id"), hide_name="archive/data.pkx"
    )
    h["object-array.npy"] = npy_object_array_payload(call_pickle("os", "system", "id"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("arr_0.npy", npy_object_array_payload(call_pickle("os", "system", "id")))
    h["object-array.npz"] = buf.getvalue()
    keras = io.BytesIO()
    with zipfile.ZipFile(keras, "w") as z:
        config = {
            "class_name": "Sequential",
            "config": {"layers": [{"class_name": "Lambda", "config": {"function": "lambda x: x"}}]},
        }
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    h["lambda-layer.keras"] = keras.getvalue()
    h["overlap.safetensors"] = (
        struct.pack("<Q", 120)
        + json.dumps(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            }
        )
        .encode()
        .ljust(120)
        + b"\x00" * 12
    )
    h["trailing-data.safetensors"] = safetensors_bytes({"a": ("F32", [1], b"\x00" * 4)}) + b"EXTRA"
    for name, data in h.items():
        (hostile / name).write_bytes(data)

    b: dict[str, bytes] = {}
    b["dict.pkl"] = pickle.dumps({"lr": 0.001, "layers": [1, 2, 3], "name": "tiny"}, protocol=4)
    b["list-proto0.pkl"] = pickle.dumps([1, 2.5, "x", None, True], protocol=0)
    b["nested-proto5.pkl"] = pickle.dumps({"a": (1, 2), "b": {"c": b"bytes"}}, protocol=5)
    b["ordered-dict.pkl"] = pickle.dumps(OrderedDict(a=1, b=2), protocol=2)
    b["state_dict.bin"] = torch_zip(benign_state_dict_pickle())
    b["model.safetensors"] = safetensors_bytes(
        {"w": ("F32", [2, 2], b"\x00" * 16), "b": ("F32", [2], b"\x00" * 8)}
    )
    b["config.json"] = json.dumps({"hidden_size": 8, "num_layers": 2}).encode()
    b["README.md"] = b"# tiny model\n"
    try:
        import numpy as np

        arr = io.BytesIO()
        np.save(arr, np.arange(12, dtype=np.float32).reshape(3, 4))
        b["weights.npy"] = arr.getvalue()
        z = io.BytesIO()
        np.savez(z, a=np.ones(3), b=np.zeros((2, 2), dtype=np.int64))
        b["weights.npz"] = z.getvalue()
        b["numpy-array.pkl"] = pickle.dumps(np.arange(4), protocol=4)
    except ImportError:
        pass
    try:
        import numpy as np
        from safetensors.numpy import save

        b["real.safetensors"] = save({"x": np.ones((3, 3), dtype=np.float16)})
    except ImportError:
        pass
    for name, data in b.items():
        (benign / name).write_bytes(data)
    return {"hostile": sorted(h), "benign": sorted(b)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    written = write(Path(sys.argv[1]))
    print(json.dumps(written, indent=2))
