"""The one time format: RFC 3339, UTC, second precision (``2026-01-31T12:00:00Z``).

in-toto, SLSA and Sigstore all write times this way; so does every message,
attestation and ``--json`` field of provenance.
"""

from __future__ import annotations

import datetime

__all__ = ["FORMAT", "format_time", "now", "parse_time"]

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime.datetime) -> str:
    """A timezone-aware moment as RFC 3339 UTC (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime(FORMAT)


def now() -> str:
    return format_time(datetime.datetime.now(datetime.timezone.utc))


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime; ValueError if not one."""
    moment = datetime.datetime.fromisoformat(
        text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    )
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment
