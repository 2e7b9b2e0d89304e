"""Pickle streams checked opcode by opcode against an allowlist of globals (issue 10).

To be written: see the docstrings of the functions below for the contract.
"""

from __future__ import annotations

from collections.abc import Callable

from provenance.formats._detect import Detected
from provenance.formats._scan import FormatFinding, ScanOptions, Source

#: ``read(offset, n) -> bytes``: bounded positional reads of whatever holds the stream.
Reader = Callable[[int, int], bytes]


def scan_pickle(
    read: Reader,
    start: int,
    end: int,
    *,
    file: str,
    fmt: str,
    options: ScanOptions,
    member: str | None = None,
    single: bool = True,
) -> tuple[list[FormatFinding], int]:
    """Check the pickle stream at ``[start, end)``; return the findings and where it stopped.

    ``single``: exactly one pickle is expected there (trailing data after
    its STOP is a finding); otherwise the caller reads further pickles.
    """
    raise NotImplementedError("pickle scanner: issue 10")


def check_pickle_file(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    """A raw pickle file (``pickle``) or a legacy ``torch.save`` file (``pytorch-legacy``)."""
    raise NotImplementedError("pickle scanner: issue 10")
