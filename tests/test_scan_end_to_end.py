"""provenance.formats.scan end to end: every checker in place, as the CLI runs it."""

from __future__ import annotations

import pytest

from provenance.formats._scan import ScanOptions, _scan_file


def test_an_index_scanned_alone_is_a_note_not_missing_shards(tmp_path):
    import json as _json

    from provenance.formats import scan

    (tmp_path / "model.safetensors.index.json").write_text(
        _json.dumps({"metadata": {}, "weight_map": {"w": "model-00001-of-00001.safetensors"}})
    )
    report = scan(tmp_path / "model.safetensors.index.json")
    codes = [(f.code, f.severity) for f in report.findings]
    assert codes == [("index-shard-unchecked", "info")], codes
    assert report.ok


def test_a_hugging_face_cache_snapshot_is_scanned_through_its_blob_links(tmp_path):
    """Snapshot files are links into the repository's blobs/: followed that far
    (with or without follow_symlinks), and no further."""
    import os as _os

    from provenance.formats import scan

    repo = tmp_path / "models--org--name"
    blobs, snap = repo / "blobs", repo / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (blobs / "1111").write_bytes(b'{"hidden_size": 8}')
    (blobs / "2222").write_bytes(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
    _os.symlink("../../blobs/1111", snap / "config.json")
    _os.symlink("../../blobs/2222", snap / "extra.pkl")
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    _os.symlink(str(outside), snap / "escape.json")

    for follow in (False, True):
        followed = scan(snap, follow_symlinks=follow)
        by_name = {f.name: f for f in followed.files}
        assert set(by_name) == {"config.json", "extra.pkl"}
        assert by_name["extra.pkl"].format == "pickle"
        assert any(f.code == "pickle-global-denied" for f in by_name["extra.pkl"].findings), (
            by_name["extra.pkl"]
        )
        assert any(f.file == "escape.json" for f in followed.findings)  # not followed out
        assert not followed.ok


def test_a_second_build_on_an_allowlisted_object_is_refused(tmp_path):
    """OrderedDict() BUILD {'__setstate__': f} then BUILD {...}: the second calls f(state)."""
    from provenance.formats import scan

    once = b"\x80\x02ccollections\nOrderedDict\n)R}X\t\x00\x00\x00_metadata}sb."
    twice = (
        b"\x80\x02ccollections\nOrderedDict\n)R"
        b"}X\x0c\x00\x00\x00__setstate__ccollections\nOrderedDict\nsb"
        b"}X\x01\x00\x00\x00a}sb."
    )
    (tmp_path / "once.pkl").write_bytes(once)
    (tmp_path / "twice.pkl").write_bytes(twice)
    report = scan(tmp_path)
    by = {f.name: [x.code for x in f.findings] for f in report.files}
    assert by["once.pkl"] == [], by
    assert "pickle-build-denied" in by["twice.pkl"], by


def test_a_cut_off_safetensors_file_is_an_error(tmp_path):
    # a download cut short inside the header: no loader reads it, and a
    # release gate must not call it clean, whatever its name
    numpy = pytest.importorskip("numpy", reason="numpy is not installed (a test dependency)")
    from safetensors.numpy import save_file

    whole = tmp_path / "whole.safetensors"
    save_file({"w": numpy.zeros((4, 4), numpy.float32)}, str(whole))
    data = whole.read_bytes()
    for name, cut in (("model.safetensors", 40), ("pytorch_model.bin", 40), ("m", 20)):
        (tmp_path / name).write_bytes(data[:cut])
        found = _scan_file(str(tmp_path / name), name, ScanOptions())
        assert found.format == "safetensors", name
        assert {f.code for f in found.findings if f.severity == "error"} == {
            "safetensors-header-out-of-bounds"
        }, found.findings
