"""``provenance.loaders.safetensors``: verified tensors equal the package's own.

Every file is written by the real ``safetensors`` package (or, for the lying
headers, by hand), signed with a real key and loaded under a real policy;
results are compared tensor by tensor with ``safetensors.numpy.load_file``.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import threading
from pathlib import Path

import pytest
from conftest import KeyPair

import provenance
from provenance.errors import InputError
from provenance.policy import PolicyDenied
from provenance.signing import KeySigner, KeyVerifier

np = pytest.importorskip("numpy")
st_numpy = pytest.importorskip("safetensors.numpy")
from provenance.loaders import safetensors as verified  # noqa: E402


def policy(tmp_path: Path, key: KeyPair, extra: str = "") -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(f"version: 1\nsigners:\n  - key: {key.public}\n{extra}")
    return p


def sharded(folder: Path, shards: int = 3, per: int = 4) -> dict[str, object]:
    """A Hub-style sharded checkpoint: shards, their index, a config."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    weight_map: dict[str, str] = {}
    everything: dict[str, object] = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"layer.{s}.{i}": rng.standard_normal((64, 16 + i)).astype(np.float32)
            for i in range(per)
        }
        tensors[f"layer.{s}.ids"] = np.arange(300_000, dtype=np.int64)  # > 1 MiB: own memory
        st_numpy.save_file(tensors, str(folder / name), metadata={"format": "np"})
        weight_map.update(dict.fromkeys(tensors, name))
        everything.update(tensors)
    total = sum(t.nbytes for t in everything.values())  # type: ignore[attr-defined]
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    (folder / "config.json").write_text("{}")
    return everything


def assert_same(got: dict[str, object], want: dict[str, object]) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        g = got[k]
        assert g.dtype == v.dtype and g.shape == v.shape, k  # type: ignore[attr-defined]
        assert np.array_equal(g, v), k


def test_sharded_folder_equals_the_package(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    provenance.sign(model, KeySigner.from_file(p256.private))
    want: dict[str, object] = {}
    for f in sorted(model.glob("*.safetensors")):
        want.update(st_numpy.load_file(str(f)))
    got = verified.load_folder(model, policy=policy(tmp_path, p256))
    assert_same(got, want)
    arr = got["layer.0.ids"]
    assert arr.flags.writeable  # like the package's arrays
    arr[0] = 42  # and writing changes nothing on disk
    assert (
        st_numpy.load_file(str(model / "model-00001-of-00003.safetensors"))["layer.0.ids"][0] == 0
    )
    got = verified.load_folder(model, verifier=KeyVerifier.from_files(p256.public))
    assert_same(got, want)


def test_single_file_and_a_file_of_a_signed_folder(tmp_path: Path, p256: KeyPair) -> None:
    signer = KeySigner.from_file(p256.private)
    f = tmp_path / "alone.safetensors"
    tensors = {"a": np.ones((3, 4), np.float16), "b": np.array(5, np.int8)}
    st_numpy.save_file(tensors, str(f))
    provenance.sign(f, signer)
    assert_same(verified.load_file(f, policy=policy(tmp_path, p256)), st_numpy.load_file(str(f)))

    model = tmp_path / "m"
    sharded(model)
    provenance.sign(model, signer)
    shard = model / "model-00002-of-00003.safetensors"
    assert_same(
        verified.load_file(shard, policy=policy(tmp_path, p256)), st_numpy.load_file(str(shard))
    )
    # the whole folder is verified first: a change elsewhere in it denies this file too
    (model / "config.json").write_text('{"changed": true}')
    with pytest.raises(PolicyDenied, match=r"config\.json"):
        verified.load_file(shard, policy=policy(tmp_path, p256))


def test_model_safetensors_is_taken_before_the_index(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    st_numpy.save_file({"only": np.zeros(3, np.float32)}, str(model / "model.safetensors"))
    provenance.sign(model, KeySigner.from_file(p256.private))
    assert list(verified.load_folder(model, policy=policy(tmp_path, p256))) == ["only"]


def test_a_shard_missing_from_the_index_is_a_clear_error(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    (model / "model-00003-of-00003.safetensors").unlink()
    provenance.sign(model, KeySigner.from_file(p256.private))
    with pytest.raises(InputError, match=r"index 'model\.safetensors\.index\.json'.*not in the"):
        verified.load_folder(model, policy=policy(tmp_path, p256))


def test_an_index_that_misplaces_a_tensor_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    index = json.loads((model / "model.safetensors.index.json").read_text())
    index["weight_map"]["layer.0.0"] = "model-00002-of-00003.safetensors"
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    provenance.sign(model, KeySigner.from_file(p256.private))
    with pytest.raises(InputError, match="does not match its shards"):
        verified.load_folder(model, policy=policy(tmp_path, p256))


def lying(path: Path, header: dict[str, object], data: bytes) -> None:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


@pytest.mark.parametrize(
    ("header", "data", "words"),
    [
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}, b"\0" * 16, "past"),
        (
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
            },
            b"\0" * 24,
            "overlap",
        ),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, b"\0" * 12, "shape"),
        ({"a": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4, "dtype"),
    ],
)
def test_a_header_that_lies_is_refused_with_the_file_named(
    tmp_path: Path, p256: KeyPair, header: dict[str, object], data: bytes, words: str
) -> None:
    f = tmp_path / "bad.safetensors"
    lying(f, header, data)
    provenance.sign(f, KeySigner.from_file(p256.private))
    with pytest.raises(InputError, match=r"bad\.safetensors") as e:
        verified.load_file(f, policy=policy(tmp_path, p256))
    assert words in str(e.value).lower()


def test_a_policy_forbidding_pickle_refuses_a_bin_beside(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    provenance.sign(model, KeySigner.from_file(p256.private))
    pol = policy(tmp_path, p256, "files:\n  formats:\n    deny: [pickle]\n")
    with pytest.raises(PolicyDenied, match=r"pytorch_model\.bin.*denies") as e:
        verified.load_folder(model, policy=pol)
    assert [r.code for r in e.value.decision.reasons if r.severity == "error"] == ["format-denied"]


def test_a_tampered_weight_loads_nothing(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "m"
    sharded(model)
    provenance.sign(model, KeySigner.from_file(p256.private))
    shard = model / "model-00001-of-00003.safetensors"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(PolicyDenied, match=r"model-00001-of-00003\.safetensors"):
        verified.load_folder(model, policy=policy(tmp_path, p256))


def test_a_shard_rewritten_during_loads_is_caught_or_never_read(
    tmp_path: Path, p256: KeyPair
) -> None:
    """A thread flips a tensor byte back and forth while load_folder runs, repeatedly."""
    model = tmp_path / "m"
    sharded(model)
    provenance.sign(model, KeySigner.from_file(p256.private))
    want = verified.load_folder(model, verifier=KeyVerifier.from_files(p256.public))
    shard = model / "model-00001-of-00003.safetensors"
    size = shard.stat().st_size
    stop = threading.Event()

    def flip() -> None:
        fd = os.open(shard, os.O_RDWR)
        try:
            good = os.pread(fd, 1, size - 5)
            bad = bytes([good[0] ^ 0xFF])
            while not stop.is_set():
                os.pwrite(fd, bad, size - 5)
                os.pwrite(fd, good, size - 5)
        finally:
            os.close(fd)

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    loaded = refused = 0
    pol = policy(tmp_path, p256)
    try:
        for _ in range(30):
            try:
                got = verified.load_folder(model, policy=pol)
            except PolicyDenied:
                refused += 1
                continue
            assert_same(got, want)
            loaded += 1
    finally:
        stop.set()
        thread.join()
    assert refused, "the writer never got in: nothing was tested"


def test_torch_tensors_equal_the_package(tmp_path: Path, p256: KeyPair) -> None:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    model = tmp_path / "m"
    sharded(model)
    provenance.sign(model, KeySigner.from_file(p256.private))
    got = verified.load_folder(model, policy=policy(tmp_path, p256), framework="torch")
    for f in sorted(model.glob("*.safetensors")):
        for k, v in st_torch.load_file(str(f)).items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape
            assert torch.equal(got[k], v)
