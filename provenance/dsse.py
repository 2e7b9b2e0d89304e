"""DSSE v1 envelopes: the pre-authentication encoding and one signature.

Signatures are computed over ``PAE(type, body)``, never over the JSON of the
envelope, so the payload is kept as the exact bytes that were signed and is
parsed only after the signature has been checked (security invariant 2).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from provenance.errors import InputError

__all__ = ["INTOTO_PAYLOAD_TYPE", "Envelope", "pae"]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """``DSSEv1 <len(type)> <type> <len(body)> <body>``, lengths in bytes."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def legacy_pae(payload: bytes) -> bytes:
    """The malformed PAE that ``model-signing`` 0.2 signed (verification only).

    It formatted the payload's Python ``repr`` into a string and spelled the
    prefix ``DSSEV1``; the capital V means it can never collide with a real PAE.
    """
    t = INTOTO_PAYLOAD_TYPE
    return f"DSSEV1 {len(t)} {t} {len(payload)} {payload!r}".encode()


# The alphabets, padding optional. URL-safe text may mix in "+" and "/" as
# base64.urlsafe_b64decode always allowed; anything else (spaces, newlines,
# "=" inside) is refused rather than skipped.
_STANDARD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URLSAFE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_FROM_URLSAFE = str.maketrans("-_", "+/")
# Python 3.11 added a strict decoder in C; 3.10 checks with the pattern.
_STRICT_C = sys.version_info >= (3, 11)
# Decoded a slice at a time when the text needs padding or translating, so a
# payload of hundreds of MiB is never copied whole.
_CHUNK = 4 << 20


def b64decode(value: Any, what: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, padding optional), as DSSE allows either.

    Padded standard base64, what every signer writes, is decoded straight
    from the string, without the two copies ``base64.b64decode`` makes.
    """
    if not isinstance(value, str):
        raise InputError(f"{what} is not a base64 string")
    if _STRICT_C and not len(value) % 4:
        # Padded standard base64 in one C pass, which refuses what the pattern
        # below would (any other character, "=" inside); URL-safe text fails
        # here on its "-" or "_" and takes the slow path.
        try:
            return binascii.a2b_base64(value, strict_mode=True)  # type: ignore[call-arg,unused-ignore]
        except (binascii.Error, ValueError):
            pass
    urlsafe = "-" in value or "_" in value
    padded = 0
    while padded < 3 and value.endswith("=" * (padded + 1)):
        padded += 1
    missing = -len(value) % 4
    if padded + missing > 2 or not (_URLSAFE if urlsafe else _STANDARD).fullmatch(value):
        raise InputError(f"{what} is not valid base64")
    try:
        if not urlsafe and not missing:
            return binascii.a2b_base64(value)  # ASCII (the pattern says so): read in place
        parts = []
        for start in range(0, len(value), _CHUNK):
            part = value[start : start + _CHUNK]
            if urlsafe:
                part = part.translate(_FROM_URLSAFE)
            if start + _CHUNK >= len(value):
                part += "=" * missing
            parts.append(binascii.a2b_base64(part))
        return b"".join(parts)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not valid base64") from None


# Payloads decoded in the current shared_payloads() scope: (base64 text, bytes).
_SHARED: contextvars.ContextVar[list[tuple[str, bytes]] | None] = contextvars.ContextVar(
    "provenance_dsse_shared_payloads", default=None
)


@contextlib.contextmanager
def shared_payloads() -> Iterator[None]:
    """Within this scope, envelopes whose payload text is identical share one decode.

    A signature and its co-signatures sign the same statement, often megabytes
    of base64 (10 ms each to decode strictly); comparing the text costs a
    fraction of that, and equal text decodes to equal bytes. The decoded
    payloads are dropped when the scope ends.
    """
    token = _SHARED.set([])
    try:
        yield
    finally:
        _SHARED.reset(token)


def _payload(value: Any) -> bytes:
    shared = _SHARED.get()
    if shared is not None and isinstance(value, str):
        for text, raw in shared:
            if text == value:
                return raw
    raw = b64decode(value, "dsseEnvelope.payload")
    if shared is not None and isinstance(value, str) and len(shared) < 8:
        shared.append((value, raw))
    return raw


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope with exactly one signature."""

    payload: bytes
    payload_type: str
    signature: bytes
    keyid: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"sig": base64.b64encode(self.signature).decode("ascii"), "keyid": self.keyid}
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Envelope:
        if not isinstance(data, Mapping):
            raise InputError("dsseEnvelope is not an object")
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str):
            raise InputError("dsseEnvelope has no payloadType")
        try:  # the PAE signs its UTF-8; JSON can spell a lone surrogate, which has none
            payload_type.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("dsseEnvelope payloadType is not valid Unicode") from None
        sigs = data.get("signatures")
        if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], Mapping):
            count = len(sigs) if isinstance(sigs, list) else 0
            raise InputError(f"dsseEnvelope must carry exactly one signature, not {count}")
        keyid = sigs[0].get("keyid") or ""
        if not isinstance(keyid, str):
            raise InputError("dsseEnvelope signature keyid is not a string")
        return cls(
            payload=_payload(data.get("payload")),
            payload_type=payload_type,
            signature=b64decode(sigs[0].get("sig"), "dsseEnvelope signature"),
            keyid=keyid,
        )
