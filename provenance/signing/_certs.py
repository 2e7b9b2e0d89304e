"""Signing with an organisation's certificates, and verifying to its roots.

The bundle carries the leaf first, then the intermediates
(``x509CertificateChain``), as ``model-signing`` writes it. Roots never
come from the bundle: the verifier is given them.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from provenance._internal.fsutil import read_limited
from provenance._internal.x509chain import check_leaf, verify_chain
from provenance.bundle import Bundle
from provenance.dsse import INTOTO_PAYLOAD_TYPE
from provenance.errors import InputError, UsageError, VerificationError
from provenance.signing._base import PaeSigner, SignerInfo, Verified, envelope_for
from provenance.signing._keys import (
    check_supported,
    describe_key,
    key_hint,
    verify_envelope,
    wrong_kind,
)

#: Largest certificate file read (a CA bundle of a few hundred certificates fits).
MAX_CERTIFICATE_BYTES = 16 << 20

PathArg = str | os.PathLike[str]


def paths_of(value: PathArg | Iterable[PathArg] | None, what: str) -> list[PathArg]:
    """One path or an iterable of paths, as a list; a single string is one path.

    ``CertificateVerifier.from_files("root.pem")`` means one file, not the
    eight one-letter files its characters would name.
    """
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, (bytes, bytearray)):
        raise UsageError(f"{what}: give paths as str or os.PathLike, not bytes")
    try:
        items = list(value)
    except TypeError:
        raise UsageError(f"{what}: give a path or a list of paths") from None
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise UsageError(f"{what}: {item!r} is not a path")
    return items


def load_certificates(path: PathArg, what: str = "certificate") -> list[x509.Certificate]:
    """All certificates in a PEM file (or one DER certificate)."""
    data = read_limited(path, what, MAX_CERTIFICATE_BYTES)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InputError(
            f"{what} '{path}' holds no readable X.509 certificate", code="not-a-certificate"
        ) from None
    if not certs:
        raise InputError(
            f"{what} '{path}' holds no readable X.509 certificate", code="not-a-certificate"
        )
    return certs


def subject_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _identities(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.RFC822Name)] + [
        str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)
    ]


def describe_certificate(cert: x509.Certificate) -> str:
    """The leaf in words: its common name or subject, and any e-mail/URI identity."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[0].value) if cns else subject_of(cert)
    ids = _identities(cert)
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    by = f", issued by '{issuer[0].value!s}'" if issuer else ""
    return f"certificate '{name}'" + (f" <{', '.join(ids)}>" if ids else "") + by


def certificate_info(
    leaf: x509.Certificate, chain: Sequence[x509.Certificate], root: x509.Certificate | None = None
) -> SignerInfo:
    """A certificate signer: subject, SANs, serial, its key, and the chain as checked.

    Also used to describe unverified certificates, so every part that does
    not parse is left out (or described as unreadable) rather than raised.
    """
    errors = unreadable_certificate_errors()
    fingerprint = type_label = None
    try:
        key = leaf.public_key()
        check_supported(key, "certificate")
        fingerprint = key_hint(key)  # type: ignore[arg-type]
        type_label = describe_key(key)  # type: ignore[arg-type]
    except InputError:
        pass
    except errors:
        pass

    def safe(read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except errors:
            return default

    return SignerInfo(
        kind="certificate",
        description=safe(lambda: describe_certificate(leaf), "an unreadable certificate"),
        key_fingerprint=fingerprint,
        key_type=type_label,
        certificate_subject=safe(lambda: subject_of(leaf), None),
        certificate_sans=safe(lambda: tuple(_identities(leaf)), ()),
        certificate_serial=safe(lambda: format(leaf.serial_number, "x"), None),
        certificate_chain=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
        root_subject=safe(lambda: subject_of(root), None) if root is not None else None,
    )


def _check_leaf_for_signing(cert: x509.Certificate, path: str, now: datetime.datetime) -> None:
    """Refuse at signing what a verifier would refuse, naming the file."""
    try:
        check_leaf(cert, now)
    except VerificationError as e:
        raise InputError(f"signing certificate '{path}': {e}") from None


@dataclass(frozen=True)
class CertificateSigner:
    """Signs with a key whose certificate (and intermediates) go in the bundle."""

    key: PaeSigner
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_files(
        cls,
        key: PaeSigner,
        certificate: PathArg,
        chain: PathArg | Iterable[PathArg] = (),
    ) -> CertificateSigner:
        """The key's certificate file (leaf first, maybe its chain after) and chain files.

        ``chain`` is one path or an iterable of paths.
        """
        if not isinstance(certificate, (str, os.PathLike)):
            raise UsageError("signing certificate: give one path")
        certs = load_certificates(certificate, "signing certificate")
        leaf = certs[0]
        intermediates = [
            c
            for p in paths_of(chain, "chain certificates")
            for c in load_certificates(p, "chain certificate")
        ]
        # A leaf file may carry its own chain after the leaf.
        intermediates = certs[1:] + intermediates
        if leaf.public_key() != key.public_key():
            raise InputError(
                f"signing certificate '{certificate}' is for a different key than the private key"
            )
        check_supported(leaf.public_key(), f"signing certificate '{certificate}'")
        _check_leaf_for_signing(
            leaf, str(certificate), datetime.datetime.now(datetime.timezone.utc)
        )
        return cls(key, leaf, tuple(intermediates))

    def describe(self) -> SignerInfo:
        return certificate_info(self.certificate, (self.certificate, *self.chain))

    def sign(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Bundle:
        envelope = envelope_for(self.key, payload, payload_type)
        ders = [c.public_bytes(serialization.Encoding.DER) for c in (self.certificate, *self.chain)]
        return Bundle.for_chain(envelope, ders)


T = TypeVar("T")


def unreadable_certificate_errors() -> tuple[type[Exception], ...]:
    """What cryptography raises, lazily, for a certificate whose parts do not parse.

    A hostile certificate loads (the outer DER is fine) and then fails when its
    key, a name of an odd string type, or an extension is first read.
    """
    from cryptography.exceptions import UnsupportedAlgorithm

    return (
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        x509.DuplicateExtension,
        x509.InvalidVersion,
    )


#: Certificates a bundle may carry: a leaf and its intermediates (real chains
#: have two to four). More is refused before any is parsed.
MAX_BUNDLE_CERTIFICATES = 16


class CertificateVerifier:
    """Accepts bundles whose leaf chains to one of the given roots.

    Certificates are checked at the time of verification: a bundle of this
    kind has no trusted timestamp, so an expired certificate cannot be told
    apart from a stolen key used after its certificate ran out.
    """

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime.datetime | None = None,
    ) -> None:
        if not roots:
            raise InputError("no root certificate given to verify with")
        self.roots = list(roots)
        self.intermediates = list(intermediates)
        self.at = at

    @classmethod
    def from_files(
        cls,
        roots: PathArg | Iterable[PathArg],
        intermediates: PathArg | Iterable[PathArg] = (),
    ) -> CertificateVerifier:
        """Roots and intermediates from files: each one path or an iterable of paths."""
        return cls(
            [
                c
                for p in paths_of(roots, "root certificates")
                for c in load_certificates(p, "root certificate")
            ],
            [
                c
                for p in paths_of(intermediates, "chain certificates")
                for c in load_certificates(p, "chain certificate")
            ],
        )

    def verify(self, bundle: Bundle) -> Verified:
        if bundle.kind != "x509_chain":
            raise wrong_kind(bundle, "a certificate chain")
        if len(bundle.certificates) > MAX_BUNDLE_CERTIFICATES:
            raise VerificationError(
                f"signature carries {len(bundle.certificates)} certificates; a chain has at most "
                f"{MAX_BUNDLE_CERTIFICATES} (leaf and intermediates)",
                code="chain-too-long",
            )
        try:
            certs = [x509.load_der_x509_certificate(d) for d in bundle.certificates]
        except (ValueError, x509.InvalidVersion):
            raise VerificationError("signature's certificate chain is malformed") from None
        leaf = certs[0]
        at = self.at or datetime.datetime.now(datetime.timezone.utc)
        try:
            path = verify_chain(leaf, [*certs[1:], *self.intermediates], self.roots, at)
        except unreadable_certificate_errors() as e:
            raise VerificationError(
                f"signature's certificate chain holds a certificate that does not parse ({e})",
                code="chain-malformed",
            ) from None
        try:
            key = leaf.public_key()
            check_supported(key, "signing certificate")
        except InputError as e:
            raise VerificationError(str(e)) from None
        except unreadable_certificate_errors() as e:
            raise VerificationError(f"signing certificate's key does not parse ({e})") from None
        legacy = verify_envelope(key, bundle.envelope)  # type: ignore[arg-type]
        envelope = bundle.envelope
        info = certificate_info(leaf, path, path[-1])
        return Verified(info, envelope.payload_type, envelope.payload, legacy)
