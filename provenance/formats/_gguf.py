"""GGUF, read bounded (issue 10). To be written."""

from __future__ import annotations

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScanOptions, Source


def check_gguf(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("gguf checks: issue 10")
