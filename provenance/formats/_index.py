"""Sharded checkpoints: ``*.index.json`` against their shards (issue 10). To be written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions


def check_indexes(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    raise NotImplementedError("sharded index checks: issue 10")
