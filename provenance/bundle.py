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
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance.dsse import Envelope, b64decode, shared_payloads
from provenance.errors import Hint, InputError, ProvenanceError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "COSIGNATURE_NAME",
    "MAX_BUNDLE_BYTES",
    "MAX_COSIGNATURES",
    "SIGNATURE_NAME",
    "Bundle",
    "MaterialKind",
    "cosignature_dir",
    "cosignature_path",
    "default_signature_path",
    "read_signatures",
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


#: What a co-signature's name may be: a file name on every system, never hidden.
COSIGNATURE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")

#: The most co-signatures :func:`read_signatures` reads beside one signature.
MAX_COSIGNATURES = 64

#: Entries of a co-signature folder looked at, whatever their names: the
#: listing stops there, so a folder of a million files costs no more.
_MAX_COSIGNATURE_ENTRIES = 4096


def cosignature_dir(signature_path: str | os.PathLike[str]) -> Path:
    """The folder of a signature's co-signatures: its path plus ``.d``.

    ``MODEL/model.sig`` has ``MODEL/model.sig.d``, ``weights.bin.sig`` has
    ``weights.bin.sig.d``. Each ``NAME.sig`` in it is a complete OMS bundle,
    normally over the same statement as the signature itself (a threshold
    counts distinct signers of one statement). ``model.sig.d`` is among the
    paths every manifest leaves out, so ``model-signing`` verifies the
    signature as before.
    """
    p = Path(signature_path)
    if p.name in ("", ".", ".."):
        from provenance.errors import UsageError

        raise UsageError(f"'{p}' names a folder, not a signature file", hint=Hint.SIGNATURE_PATH)
    return p.with_name(p.name + ".d")


def cosignature_path(signature_path: str | os.PathLike[str], name: str) -> Path:
    """Where the co-signature called ``name`` of a signature goes: ``<sig>.d/<name>.sig``.

    ``name`` must be 1 to 64 of ``A-Z a-z 0-9 . _ -`` and not start with a
    dot; anything else is a :class:`~provenance.errors.UsageError`.
    """
    if not isinstance(name, str) or not COSIGNATURE_NAME.fullmatch(name):
        from provenance.errors import UsageError

        raise UsageError(
            f"co-signature name {_shown(name)} is not 1 to 64 letters, digits, '.', '_' or '-' "
            "(not starting with '.')",
            code="cosignature-name-invalid",
        )
    return cosignature_dir(signature_path) / f"{name}.sig"


def read_signatures(
    signature_path: str | os.PathLike[str], *, cosignatures: bool = True
) -> list[tuple[Path, Bundle | InputError]]:
    """A signature and its co-signatures, each parsed (not verified) or the reason it is not.

    The signature at ``signature_path`` comes first (read as
    :meth:`Bundle.read` reads it: a link the user gave is followed; a
    missing one is an :class:`InputError` with code ``signature-missing``),
    then, with ``cosignatures``, every ``*.sig`` in :func:`cosignature_dir`
    in name order. Nothing here raises for a bad file: each entry is a
    :class:`Bundle` or the :class:`InputError` that says what is wrong, so a
    policy can report it and go on. No folder means no co-signatures.

    The folder is opened without following a link (a link or any other
    non-folder there is one error entry, with the folder's path), and so is
    each entry in it: a ``*.sig`` that is a link, FIFO, socket, device or
    folder is an error entry naming it and is never opened. Names without
    ``.sig`` are not co-signatures and are passed over. More than
    :data:`MAX_COSIGNATURES` co-signatures (or a folder of more than a few
    thousand entries) is one error entry, code ``too-many-cosignatures``,
    and none of them is read: which ones would count is then anybody's guess.
    """
    primary = Path(signature_path)
    with shared_payloads():  # co-signatures of one statement decode its payload once
        try:
            first: Bundle | InputError = Bundle.read(primary)
        except InputError as e:
            first = e
        out: list[tuple[Path, Bundle | InputError]] = [(primary, first)]
        if cosignatures:
            try:
                folder = cosignature_dir(primary)
            except ProvenanceError as e:  # a path that names no file has no folder beside it
                out.append((primary, InputError(str(e), code="cosignature-folder-refused")))
            else:
                out.extend(_read_cosignatures(folder))
    return out


_O_FOLDER = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _read_cosignatures(folder: Path) -> list[tuple[Path, Bundle | InputError]]:
    from provenance._internal.fsutil import _kind_of

    def refused(why: str, code: str = "cosignature-folder-refused") -> InputError:
        return InputError(f"co-signature folder '{folder}' {why}", code=code)

    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return []
    except OSError as e:
        return [(folder, refused(f"cannot be examined ({e.strerror})"))]
    if not stat.S_ISDIR(st.st_mode):
        what = _kind_of(st.st_mode)
        return [(folder, refused(f"is {what}, not a folder; nothing in it is read"))]
    try:
        dfd = os.open(folder, _O_FOLDER)
    except OSError as e:  # swapped for a link or a file since the lstat
        return [(folder, refused(f"cannot be opened as a folder ({e.strerror})"))]
    try:
        names: list[str] = []
        seen = 0
        try:
            with os.scandir(dfd) as entries:
                for entry in entries:
                    seen += 1
                    if entry.name.endswith(".sig"):
                        names.append(entry.name)
                    if len(names) > MAX_COSIGNATURES or seen > _MAX_COSIGNATURE_ENTRIES:
                        too_many = (
                            f"more than {MAX_COSIGNATURES} co-signatures"
                            if len(names) > MAX_COSIGNATURES
                            else f"more than {_MAX_COSIGNATURE_ENTRIES} entries"
                        )
                        return [
                            (
                                folder,
                                refused(
                                    f"holds {too_many}; none of them is read",
                                    "too-many-cosignatures",
                                ),
                            )
                        ]
        except OSError as e:
            return [(folder, refused(f"cannot be listed ({e.strerror})"))]
        return [(folder / name, _read_cosignature(dfd, folder / name)) for name in sorted(names)]
    finally:
        os.close(dfd)


def _read_cosignature(dfd: int, path: Path) -> Bundle | InputError:
    """One entry of the open co-signature folder: a regular file, no link followed."""
    from provenance._internal.fsutil import _kind_of, _read_fd, open_regular

    what = "co-signature"
    try:
        st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
    except OSError as e:  # removed since the listing
        return InputError(f"{what} '{path}' cannot be examined ({e.strerror})", code="not-found")
    if not stat.S_ISREG(st.st_mode):
        return InputError(
            f"{what} '{path}' is {_kind_of(st.st_mode)}; only a regular file is read, "
            "so it was skipped",
            code="not-regular",
        )
    try:
        fd = open_regular(path.name, what, dir_fd=dfd)  # fstat again: a swap is refused
    except InputError as e:
        return InputError(
            f"{what} '{path}' changed while it was read and was skipped ({e})", code=e.code
        )
    try:
        try:
            data = _read_fd(fd, what, os.fspath(path), MAX_BUNDLE_BYTES)
        finally:
            os.close(fd)
        return Bundle._parse_file(data, path, what)
    except InputError as e:
        return e


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
        return cls._parse_file(data, p, what)

    @classmethod
    def _parse_file(cls, data: bytes, p: Path, what: str) -> Bundle:
        """:meth:`from_bytes` for a file's bytes: every error names the file, none escapes."""
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
