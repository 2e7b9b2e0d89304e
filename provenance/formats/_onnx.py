"""ONNX: external data locations and custom-op domains (issue 10). To be written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions, Source


def check_onnx(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("onnx checks: issue 10")


def check_external_data(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    raise NotImplementedError("onnx external data: issue 10")
