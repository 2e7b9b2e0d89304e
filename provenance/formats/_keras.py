"""Keras: .keras config.json and legacy .h5 models (issue 10). To be written."""

from __future__ import annotations

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScanOptions, Source


def check_keras_config(
    config: bytes, *, file: str, member: str | None, options: ScanOptions
) -> list[FormatFinding]:
    """A Keras ``config.json`` (from a .keras zip, or beside the weights)."""
    raise NotImplementedError("keras checks: issue 10")


def check_hdf5(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    raise NotImplementedError("hdf5 checks: issue 10")
