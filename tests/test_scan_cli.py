"""``provenance scan`` as a user runs it: text for people, one JSON contract for CI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import run_cli
from test_output_contract import contract

# pickle.load of this runs `echo pwned` (never loaded here)
PAYLOAD = b"cos\nsystem\n(S'echo pwned'\ntR."


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(8)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(_safetensors())
    (model / "config.json").write_text('{"model_type": "tiny"}')
    return model


def test_a_clean_folder(clean: Path) -> None:
    result = run_cli("scan", clean)
    assert result.exit_code == 0, result.output
    assert "✓ model.safetensors: safetensors" in result.output
    assert "Clean: 2 file(s) scanned" in result.output
    data = contract(run_cli("scan", clean, "--json"), "scan", 0)
    assert [f["name"] for f in data["files"]] == ["config.json", "model.safetensors"]


def test_a_pickle_that_runs_code(clean: Path) -> None:
    (clean / "extra.pkl").write_bytes(PAYLOAD)
    result = run_cli("scan", clean)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    # the finding sits under its file, and advice follows
    at = lines.index("✗ extra.pkl: pickle (pickle protocol 0 or 1)")
    assert "'os.system' is not in the allowlist" in lines[at + 1], lines
    assert lines[at + 1].startswith("  error: ")
    assert any(line.startswith("hint: loading a pickle imports") for line in lines), lines
    assert "--allow-global MODULE.NAME" in result.stdout
    assert result.stderr.startswith("not clean: 1 error(s) and 0 warning(s) in 3 file(s)")
    data = contract(run_cli("scan", clean, "--json"), "scan", 1)
    assert data["error"]["code"] == "scan-findings"
    assert [f["code"] for f in data["findings"]] == ["pickle-global-denied"]


def test_allowing_a_global_is_said(clean: Path) -> None:
    (clean / "extra.pkl").write_bytes(PAYLOAD)
    result = run_cli("scan", clean, "--allow-global", "os.system")
    assert result.exit_code == 0, result.output
    assert "note: allowed beyond the built-in list: os.system" in result.output


@pytest.mark.parametrize("name", ["os.*", "system", "os.", ".system", "os system", ""])
def test_a_global_that_is_not_an_exact_name_is_a_usage_error(clean: Path, name: str) -> None:
    result = run_cli("scan", clean, "--allow-global", name)
    assert result.exit_code == 2, result.output
    assert "MODULE.NAME" in result.stderr
    data = contract(run_cli("scan", clean, "--allow-global", name, "--json"), "scan", 2)
    assert data["error"]["code"] == "scan-allow-global"


def test_a_whole_pickled_module_is_named_as_such(tmp_path: Path) -> None:
    # torch.save(model) of an nn.Module names its classes
    data = b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81}b."
    (tmp_path / "model.pt").write_bytes(data)
    result = run_cli("scan", tmp_path / "model.pt")
    assert result.exit_code == 1
    assert "save model.state_dict() instead" in result.stdout


def test_an_empty_folder_is_not_clean(tmp_path: Path) -> None:
    result = run_cli("scan", tmp_path)
    assert result.exit_code == 1, result.output
    assert "holds no file to scan (scan-empty)" in result.output
    data = contract(run_cli("scan", tmp_path, "--json"), "scan", 1)
    assert [(f["code"], f["severity"]) for f in data["findings"]] == [("scan-empty", "warning")]


def test_a_link_names_the_option_that_follows_it(clean: Path) -> None:
    (clean / "alias.safetensors").symlink_to("model.safetensors")
    result = run_cli("scan", clean)
    assert result.exit_code == 1
    assert "hint: pass --follow-symlinks" in result.stdout
    followed = run_cli("scan", clean, "--follow-symlinks")
    assert followed.exit_code == 0, followed.output


def test_help_points_to_policies() -> None:
    result = run_cli("scan", "--help")
    assert result.exit_code == 0
    assert "files: {scan: true}" in result.output
    assert "Symbolic links are refused: scan a real copy" not in result.output


def test_folder_findings_sit_under_the_file_they_concern(clean: Path) -> None:
    # the code check runs over the folder; its warning belongs to the .py,
    # and a refused link gets a line of its own after the files
    (clean / "a_helper.py").write_text("print(1)\n")
    (clean / "z_link.safetensors").symlink_to(clean / "model.safetensors")
    result = run_cli("scan", clean)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    at = lines.index("! a_helper.py: text")
    assert "(code-python-file)" in lines[at + 1] and lines[at + 1].startswith("  warning: ")
    at = lines.index("✓ model.safetensors: safetensors (64-byte header)")
    assert lines[at + 1] == "✗ z_link.safetensors: not scanned", lines
    assert "(scan-symlink-refused)" in lines[at + 2]


def test_an_allowed_name_spelt_otherwise_than_the_pickle_is_said(clean: Path) -> None:
    # a pickle made on Linux names posix.system, not os.system
    (clean / "extra.pkl").write_bytes(PAYLOAD.replace(b"cos\n", b"cposix\n"))
    result = run_cli("scan", clean, "--allow-global", "os.system")
    assert result.exit_code == 1
    assert (
        "hint: --allow-global os.system matched nothing, but the pickle names 'posix.system'"
        in result.stdout
    ), result.stdout
    assert "it runs a shell command" in result.stdout
