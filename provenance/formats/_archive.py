"""Zip archives (torch zips, npz, .keras, any zip) and .npy files (issue 10). To be written."""

from __future__ import annotations

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScanOptions, Source


def check_zip(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("archive checks: issue 10")


def check_npy(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("npy checks: issue 10")
