"""Sigstore bundles (v0.1-v0.3) holding one DSSE envelope.

Three kinds of verification material are recognised: a plain public key
(``publicKey``), an organisation's certificate chain
(``x509CertificateChain``) and a Sigstore keyless certificate with
transparency-log entries (``certificate``). This module only parses and
writes; trust decisions belong to the verifiers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance.dsse import Envelope, b64decode
from provenance.errors import Hint, InputError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "SIGNATURE_NAME",
    "Bundle",
    "MaterialKind",
    "default_signature_path",
    "refuse_bundle_as_model",
]

#: The default signature file of a model folder, as ``model-signing`` names it.
SIGNATURE_NAME = "model.sig"

#: The largest signature read. A 200,000-file model's is about 30 MiB (its
#: manifest, base64 in the envelope); parsing costs about three times the
#: size, so this cap keeps any hostile bundle under 150 MB of memory.
MAX_BUNDLE_BYTES = 40 << 20

#: JSON objects and arrays a bundle may hold before it is parsed. The model's
#: manifest is base64 inside a string, so even the largest real bundle has a
#: few dozen (log entries, proof hashes, certificates); the cap stops a file
#: of nested empty arrays from expanding tens of times in memory.
MAX_BUNDLE_CONTAINERS = 10_000

#: Array elements and object members beyond the first of each, counted as
#: commas: real bundles have a few hundred. Without it a file of ``0,``
#: repeated, or of short keys, costs twenty to forty times its size to parse.
MAX_BUNDLE_ELEMENTS = 100_000


def default_signature_path(model_path: str | os.PathLike[str]) -> Path:
    """``MODEL/model.sig`` for a folder, ``MODEL.sig`` beside a single file."""
    p = Path(model_path)
    return p / SIGNATURE_NAME if p.is_dir() else p.with_name(p.name + ".sig")


BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_MEDIA_TYPES = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    BUNDLE_MEDIA_TYPE,
}

MaterialKind = Literal["public_key", "x509_chain", "sigstore"]


def _shown(value: object) -> str:
    """A short repr of an unexpected JSON value for a message, whatever its size."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else f"{value[:80]!r}..."
    if value is None or isinstance(value, (bool, int, float)):
        return "null" if value is None else json.dumps(value)[:80]
    return f"a JSON {'object' if isinstance(value, Mapping) else 'array'}"


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle; ``raw`` keeps the JSON for Sigstore's own verifier."""

    envelope: Envelope
    kind: MaterialKind
    key_hint: str | None = None
    key_raw: bytes | None = None  # pre-1.1 model-signing put the key PEM here
    certificates: tuple[bytes, ...] = ()  # DER, leaf first
    media_type: str = BUNDLE_MEDIA_TYPE
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def for_key(cls, envelope: Envelope, hint: str) -> Bundle:
        return cls(envelope=envelope, kind="public_key", key_hint=hint)

    @classmethod
    def for_chain(cls, envelope: Envelope, certificates: list[bytes]) -> Bundle:
        return cls(envelope=envelope, kind="x509_chain", certificates=tuple(certificates))

    def _head(self) -> dict[str, Any]:
        """mediaType and verificationMaterial, for the key and chain kinds."""
        material: dict[str, Any]
        if self.kind == "public_key":
            material = {"publicKey": {"hint": self.key_hint or ""}}
        else:
            import base64

            material = {
                "x509CertificateChain": {
                    "certificates": [
                        {"rawBytes": base64.b64encode(c).decode("ascii")} for c in self.certificates
                    ]
                }
            }
        material["tlogEntries"] = []
        return {"mediaType": self.media_type, "verificationMaterial": material}

    def to_json(self) -> dict[str, Any]:
        if self.kind == "sigstore":
            return dict(self.raw)
        return {**self._head(), "dsseEnvelope": self.envelope.to_json()}

    def to_bytes(self) -> bytes:
        """Compact JSON, one object, as ``model-signing`` writes ``model.sig``.

        The (possibly very large) base64 payload is spliced in as bytes
        rather than passed through ``json.dumps``, which would copy it twice.
        """
        if self.kind == "sigstore":
            return json.dumps(self.to_json(), separators=(",", ":")).encode("utf-8")
        import base64

        head = json.dumps(self._head(), separators=(",", ":")).encode("utf-8")
        payload_type = json.dumps(self.envelope.payload_type).encode("utf-8")
        signatures = json.dumps(
            [
                {
                    "sig": base64.b64encode(self.envelope.signature).decode(),
                    "keyid": self.envelope.keyid,
                }
            ],
            separators=(",", ":"),
        ).encode("utf-8")
        return b"".join(
            (
                head[:-1],
                b',"dsseEnvelope":{"payload":"',
                base64.b64encode(self.envelope.payload),
                b'","payloadType":',
                payload_type,
                b',"signatures":',
                signatures,
                b"}}",
            )
        )

    @classmethod
    def read(cls, path: str | os.PathLike[str], what: str = "signature") -> Bundle:
        """Read and parse a bundle file (size-capped; parsed, not verified).

        The file is read by the one small-file reader (never blocks, never
        reads past the cap; a link is followed, its target must be a regular
        file). Whatever is wrong with its content is an :class:`InputError`
        (malformed input), never another exception: a field that does not
        decode, certificates included, makes the file unusable before any
        verifier sees it.
        """
        from provenance._internal.fsutil import read_limited

        p = Path(path)
        try:
            data = read_limited(p, what, MAX_BUNDLE_BYTES)
        except InputError as e:
            if e.code == "not-found" and not os.path.lexists(p):
                raise InputError(
                    f"no {what} at '{p}'; sign the model first or say where the signature is",
                    code="signature-missing",
                    hint=Hint.SIGNATURE_PATH,
                ) from None
            raise
        source = f"{what} '{p}'"
        try:
            bundle = cls.from_bytes(data, source=source)
        except InputError as e:
            if source in e.reason:
                raise
            # Every reason names the file, also those the envelope parser gives.
            raise InputError(f"{source}: {e.reason}", e.details, code=e.code, hint=e.hint) from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
            # The parser met a shape it did not expect (a 5,000-digit number,
            # a list where a string belongs): the file is malformed.
            reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise InputError(f"{source} is malformed ({reason})", code="bundle-malformed") from None
        _check_certificates(bundle, source)
        return bundle

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "signature") -> Bundle:
        if not data.strip():
            raise InputError(f"{source} is empty; sign the model again", code="bundle-malformed")
        if len(data) > MAX_BUNDLE_BYTES:
            raise InputError(f"{source} is larger than {MAX_BUNDLE_BYTES >> 20} MiB")
        # Counted in C before parsing: brackets inside strings count too, which
        # only makes the bound stricter. A bundle is mostly base64, which has
        # none of these marks: one pass counts them all, and only a file with
        # many is counted mark by mark.
        marks = len(data) - len(data.translate(None, b"[{,"))
        if marks > min(MAX_BUNDLE_CONTAINERS, MAX_BUNDLE_ELEMENTS):
            if data.count(b"[") + data.count(b"{") > MAX_BUNDLE_CONTAINERS:
                raise InputError(
                    f"{source} holds more than {MAX_BUNDLE_CONTAINERS} JSON objects and "
                    "arrays; it is not a signature",
                    code="bundle-too-complex",
                )
            if data.count(b",") > MAX_BUNDLE_ELEMENTS:
                raise InputError(
                    f"{source} holds more than {MAX_BUNDLE_ELEMENTS} JSON values; "
                    "it is not a signature",
                    code="bundle-too-complex",
                )
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{source} is not valid JSON ({e})") from None
        except RecursionError:
            raise InputError(f"{source} nests too deeply to be a signature") from None
        except ValueError:  # an integer of more digits than Python converts (int_max_str_digits)
            raise InputError(f"{source} holds a number too long to be a signature's") from None
        if not isinstance(doc, dict):
            raise InputError(f"{source} is not a JSON object")
        media_type = doc.get("mediaType")
        if not isinstance(media_type, str) or media_type not in _MEDIA_TYPES:
            raise InputError(f"{source} is not a Sigstore bundle (mediaType {_shown(media_type)})")
        if "dsseEnvelope" not in doc:
            raise InputError(
                f"{source} signs a message, not an in-toto statement; it is not a model signature"
            )
        envelope = Envelope.from_json(doc["dsseEnvelope"])
        material = doc.get("verificationMaterial")
        if not isinstance(material, Mapping):
            raise InputError(f"{source} has no verificationMaterial")

        if "publicKey" in material:
            pk = material["publicKey"]
            if not isinstance(pk, Mapping):
                raise InputError(f"{source}: verificationMaterial.publicKey is not an object")
            hint = pk.get("hint")
            raw_key = pk.get("rawBytes")
            if hint is not None and not isinstance(hint, str):
                raise InputError(f"{source}: publicKey.hint is not a string")
            return cls(
                envelope=envelope,
                kind="public_key",
                key_hint=hint or None,
                key_raw=b64decode(raw_key, "publicKey.rawBytes") if raw_key else None,
                media_type=media_type,
                raw=doc,
            )
        tlog = material.get("tlogEntries") or []
        if "x509CertificateChain" in material:
            chain = material["x509CertificateChain"]
            certs = chain.get("certificates") if isinstance(chain, Mapping) else None
            if not isinstance(certs, list) or not certs:
                raise InputError(f"{source}: x509CertificateChain has no certificates")
            ders = []
            for c in certs:
                if not isinstance(c, Mapping):
                    raise InputError(f"{source}: a chain certificate is not an object")
                ders.append(b64decode(c.get("rawBytes"), "certificate rawBytes"))
            return cls(
                envelope=envelope,
                # Bundles before v0.3 carried Fulcio certificates as a chain.
                kind="sigstore" if tlog else "x509_chain",
                certificates=tuple(ders),
                media_type=media_type,
                raw=doc,
            )
        if "certificate" in material:
            cert = material["certificate"]
            der = b64decode(
                cert.get("rawBytes") if isinstance(cert, Mapping) else None, "certificate"
            )
            return cls(
                envelope=envelope,
                kind="sigstore",
                certificates=(der,),
                media_type=media_type,
                raw=doc,
            )
        raise InputError(f"{source} has no verification material this tool understands")


def _check_certificates(bundle: Bundle, source: str) -> None:
    """Every certificate of a bundle decodes as DER X.509, or the bundle is malformed."""
    if not bundle.certificates:
        return
    from cryptography import x509

    for i, der in enumerate(bundle.certificates, start=1):
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            raise InputError(
                f"{source}: certificate {i} of its verification material is not a DER "
                "X.509 certificate",
                code="bundle-malformed",
            ) from None


def refuse_bundle_as_model(model_path: str | os.PathLike[str]) -> None:
    """Raise :class:`~provenance.errors.UsageError` when ``model_path`` is a signature
    or an attestations file (judged by content), not a model.

    ``sign`` and ``check_model`` call it first; a front end that takes a model
    path elsewhere can too.
    """
    from provenance._internal import fsutil

    fsutil.refuse_bundle_as_model(model_path)
