"""Code that loaders run: ``*.py`` files and ``auto_map`` in config.json (issue 10)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions, Source


def check_json(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("config.json checks: issue 10")


def check_code_files(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    raise NotImplementedError("code file checks: issue 10")
