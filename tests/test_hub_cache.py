"""Verifying a Hugging Face cache snapshot in place: its own links, nothing else.

The layouts here are built by hand, link by link, so each hostile variant is
exact; tests/test_hub.py checks the same rules on a cache the real
``huggingface_hub`` client wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import provenance
from provenance.hashing import LinkPolicy, hash_model, walk
from provenance.signing import KeyVerifier
from tests.conftest import assert_fails, assert_ok, make_model, run_cli

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


def make_cache(tmp_path: Path, files: dict[str, bytes] | None = None) -> tuple[Path, Path]:
    """A cache repository folder and its snapshot, as the client lays them out."""
    src = make_model(tmp_path / "source") if files is None else tmp_path / "source"
    if files is not None:
        for name, data in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
    repo = tmp_path / "hub" / "models--org--tiny"
    blobs = repo / "blobs"
    snap = repo / "snapshots" / ("ab" * 20)
    blobs.mkdir(parents=True)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        data = path.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab" * 20)
    return repo, snap


def digest_of(path: Path) -> str:
    return hash_model(path).root_digest


def test_a_snapshot_hashes_as_the_plain_folder_it_came_from(tmp_path):
    _, snap = make_cache(tmp_path)
    assert digest_of(snap) == digest_of(tmp_path / "source")
    found = walk(snap)
    assert not found.refused
    assert all("/blobs/" in e.path for e in found.files)


def test_signed_elsewhere_verified_in_the_cache(tmp_path, p256):
    _, snap = make_cache(tmp_path)
    sig = tmp_path / "model.sig"
    assert_ok(run_cli("sign", tmp_path / "source", "--key", p256.private, "--signature", sig))
    assert_ok(run_cli("verify", snap, "--key", p256.public, "--signature", sig))


def test_a_changed_blob_fails_naming_the_file(tmp_path, p256):
    _repo, snap = make_cache(tmp_path)
    sig = tmp_path / "model.sig"
    assert_ok(run_cli("sign", snap, "--key", p256.private, "--signature", sig))
    target = (snap / "config.json").resolve()
    target.write_bytes(b'{"hidden_size": 9}\n')
    stderr = assert_fails(
        run_cli("verify", snap, "--key", p256.public, "--signature", sig), 1, "config.json"
    )
    assert "modified" in stderr or "differ" in stderr or "digest" in stderr


def _replace(link: Path, text: str) -> None:
    link.unlink()
    os.symlink(text, link)


@pytest.mark.parametrize(
    "variant",
    [
        "absolute-to-blob",
        "other-repository",
        "outside-the-cache",
        "dotdot-through-blobs",
        "link-to-link",
        "link-to-folder",
        "link-inside-snapshot",
        "dotdot-after-a-linked-folder-in-blobs",
        "dotdot-after-an-ignored-linked-folder",
        "trailing-slash",
        "dot-segment",
    ],
)
def test_a_link_that_is_not_the_cache_own_is_refused(tmp_path, p256, variant):
    repo, snap = make_cache(tmp_path)
    plain, followed = tmp_path / "plain.sig", tmp_path / "followed.sig"
    source = tmp_path / "source"
    assert_ok(run_cli("sign", source, "--key", p256.private, "--signature", plain))
    assert_ok(
        run_cli("sign", source, "--key", p256.private, "--signature", followed, "--allow-symlinks")
    )
    link = snap / "config.json"
    blob = link.resolve()
    if variant == "absolute-to-blob":
        _replace(link, str(blob))
    elif variant == "other-repository":
        other = repo.parent / "models--evil--twin" / "blobs"
        other.mkdir(parents=True)
        (other / blob.name).write_bytes(blob.read_bytes())
        _replace(link, f"../../../models--evil--twin/blobs/{blob.name}")
    elif variant == "outside-the-cache":
        (tmp_path / "elsewhere.json").write_bytes(blob.read_bytes())
        _replace(link, "../../../../../elsewhere.json")
    elif variant == "dotdot-through-blobs":
        (tmp_path / "elsewhere.json").write_bytes(blob.read_bytes())
        _replace(link, "../../blobs/../../../../elsewhere.json")
    elif variant == "link-to-link":
        (tmp_path / "real.json").write_bytes(blob.read_bytes())
        chained = repo / "blobs" / "chained"
        os.symlink(tmp_path / "real.json", chained)
        _replace(link, "../../blobs/chained")
    elif variant == "link-to-folder":
        (repo / "blobs" / "dir").mkdir()
        _replace(link, "../../blobs/dir")
    elif variant == "link-inside-snapshot":
        (snap / "copy.json").symlink_to(os.readlink(link))
        _replace(link, "copy.json")
    elif variant == "dotdot-after-a-linked-folder-in-blobs":
        # On paper blobs/d/../X is blobs/X; the kernel follows d first.
        evil = tmp_path / "E" / "x"
        evil.mkdir(parents=True)
        (tmp_path / "E" / blob.name).write_text('{"evil": true}')
        os.symlink(evil, repo / "blobs" / "d")
        _replace(link, f"../../blobs/d/../{blob.name}")
    elif variant == "dotdot-after-an-ignored-linked-folder":
        # .git is left out by name, so nothing else looks at it.
        deep = tmp_path / "E2" / "y" / "z" / "w"
        deep.mkdir(parents=True)
        (tmp_path / "E2" / "blobs").mkdir()
        (tmp_path / "E2" / "blobs" / blob.name).write_text('{"evil": true}')
        os.symlink(deep, snap / ".git")
        _replace(link, f".git/../../../blobs/{blob.name}")
    elif variant == "trailing-slash":
        _replace(link, f"../../blobs/{blob.name}/")
    elif variant == "dot-segment":
        _replace(link, f"../.././blobs/{blob.name}")
    refusals = {r.name: r.code for r in walk(snap).refused}
    assert refusals["config.json"] == "symlink-escapes"
    assert set(refusals) <= {"config.json", ".git"} and set(refusals.values()) == {
        "symlink-escapes"
    }
    for sig in (plain, followed):  # a signature that allowed links changes nothing here
        result = run_cli("verify", snap, "--key", p256.public, "--signature", sig)
        assert_fails(result, 1, "config.json")
        assert "blobs/" in result.stderr


def test_a_linked_blobs_folder_is_no_cache(tmp_path):
    """blobs/ itself a link (to anywhere): the layout is not the client's, nothing follows."""
    repo, snap = make_cache(tmp_path)
    real = tmp_path / "real-blobs"
    shutil.move(repo / "blobs", real)
    os.symlink(real, repo / "blobs")
    found = walk(snap)
    assert found.refused and {r.code for r in found.refused} == {"symlink-refused"}


def test_a_regular_file_planted_in_a_snapshot_is_unsigned(tmp_path, p256):
    _, snap = make_cache(tmp_path)
    sig = tmp_path / "model.sig"
    assert_ok(run_cli("sign", snap, "--key", p256.private, "--signature", sig))
    (snap / "extra.py").write_text("import os\n")
    assert_fails(run_cli("verify", snap, "--key", p256.public, "--signature", sig), 1, "extra.py")


def test_one_file_of_a_snapshot(tmp_path, p256):
    _, snap = make_cache(tmp_path)
    one = snap / "weights" / "model-00001.bin"
    assert one.is_symlink()
    sig = tmp_path / "one.sig"
    assert_ok(run_cli("sign", one, "--key", p256.private, "--signature", sig))
    assert_ok(run_cli("verify", one, "--key", p256.public, "--signature", sig))
    assert digest_of(one) == digest_of(tmp_path / "source" / "weights" / "model-00001.bin")


def test_a_subfolder_of_a_snapshot(tmp_path):
    _, snap = make_cache(tmp_path)
    assert digest_of(snap / "weights") == digest_of(tmp_path / "source" / "weights")


def test_the_cache_rule_can_be_turned_off(tmp_path):
    _, snap = make_cache(tmp_path)
    found = walk(snap, links=LinkPolicy(hub_cache=False))
    assert not found.files and {r.code for r in found.refused} == {"symlink-refused"}


def test_open_verified_reads_the_blobs(tmp_path, p256):
    _, snap = make_cache(tmp_path)
    sig = tmp_path / "model.sig"
    assert_ok(run_cli("sign", snap, "--key", p256.private, "--signature", sig))
    verifier = KeyVerifier.from_files(p256.public)
    with provenance.open_verified(snap, verifier=verifier, signature=sig) as model:
        assert model.read("config.json") == b'{"hidden_size": 8}\n'


@pytest.mark.skipif(not MODEL_SIGNING.exists(), reason="model_signing is not installed")
def test_model_signing_over_a_snapshot_verifies(tmp_path, p256):
    _, snap = make_cache(tmp_path)
    sig = tmp_path / "ms.sig"
    proc = subprocess.run(
        [
            str(MODEL_SIGNING),
            "sign",
            "key",
            "--private_key",
            str(p256.private),
            "--allow_symlinks",
            "--signature",
            str(sig),
            str(snap),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = assert_ok(run_cli("verify", snap, "--key", p256.public, "--signature", sig, "--json"))
    doc = json.loads(out)
    assert doc["ok"] is True
    assert doc["root_digest"] == digest_of(tmp_path / "source")


def test_a_policy_with_format_rules_and_scan_reads_the_blobs(tmp_path, p256):
    """Format detection and the scan open files by name: a snapshot's names are links."""
    from provenance import policy

    _, snap = make_cache(tmp_path)
    sig = tmp_path / "model.sig"
    assert_ok(run_cli("sign", snap, "--key", p256.private, "--signature", sig))
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        f"version: 1\nsigners:\n  - key: {p256.public}\n"
        "files:\n  scan: true\n  formats:\n    deny: [pickle]\n"
    )
    decision = policy.evaluate(policy.load(rules), snap, signature_path=sig)
    assert decision.allowed, [r.message for r in decision.reasons]
    with provenance.open_verified(snap, policy=rules, signature=sig) as model:
        assert "config.json" in model.files
