"""Sigstore identities and issuers read from real certificates.

Fulcio puts a non-e-mail, non-URI identity in an OtherName SAN (OID
1.3.6.1.4.1.57264.1.7) whose value is a DER UTF8String, and the OIDC issuer in
two extensions: v2 (1.3.6.1.4.1.57264.1.8, a DER UTF8String) and the older v1
(1.3.6.1.4.1.57264.1.1, raw UTF-8 bytes). These certificates are built with
``cryptography`` under a self-signed CA, their DER built with ``asn1crypto``
(not with the decoder under test), at lengths either side of DER's short-form
limit (127) and of one- and two-byte long-form lengths (255/256).
"""

from __future__ import annotations

import datetime
import re

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from sigstore.errors import VerificationError as SigstoreVerificationError

from provenance.signing._sigstore import IdentityRegexp, identities, identity_policy, issuer_of

OID_USERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")  # Microsoft's UPN OtherName

LENGTHS = [1, 16, 127, 128, 200, 255, 256, 1000]

_NOW = datetime.datetime.now(datetime.timezone.utc)
_CA_KEY = ec.generate_private_key(ec.SECP256R1())
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "identities test CA")])
_CA = (
    x509.CertificateBuilder()
    .subject_name(_CA_NAME)
    .issuer_name(_CA_NAME)
    .public_key(_CA_KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(_NOW - datetime.timedelta(minutes=1))
    .not_valid_after(_NOW + datetime.timedelta(days=1))
    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    .sign(_CA_KEY, hashes.SHA256())
)


def _utf8(text: str) -> bytes:
    return core.UTF8String(text).dump()


def _text(length: int, suffix: str) -> str:
    """Exactly ``length`` characters, ending in ``suffix`` when there is room."""
    if length < len(suffix):
        return "a" * length
    return "a" * (length - len(suffix)) + suffix


def _leaf(
    sans: list[x509.GeneralName] | None = None,
    *,
    issuer_v2: bytes | None = None,
    issuer_v1: bytes | None = None,
    raw_san: bytes | None = None,
) -> x509.Certificate:
    """A leaf signed by the CA, round-tripped through DER as a verifier would load it."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(_CA.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=1))
        .not_valid_after(_NOW + datetime.timedelta(minutes=10))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=True)
    if raw_san is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, raw_san),
            critical=True,
        )
    if issuer_v1 is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer_v1), False)
    if issuer_v2 is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(OID_ISSUER_V2, issuer_v2), False)
    cert = builder.sign(_CA_KEY, hashes.SHA256())
    return x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))


def _accepts(policy: object, cert: x509.Certificate) -> bool:
    try:
        policy.verify(cert)
    except SigstoreVerificationError:
        return False
    return True


@pytest.mark.parametrize("length", LENGTHS)
def test_othername_identity_of_every_length(length: int) -> None:
    identity = _text(length, "@example.com")
    issuer = _text(length, "https://issuer.example")
    cert = _leaf(
        [x509.OtherName(OID_USERNAME, _utf8(identity))],
        issuer_v2=_utf8(issuer),
        issuer_v1=issuer.encode(),
    )
    assert identities(cert) == [identity]
    assert issuer_of(cert) == issuer

    assert _accepts(IdentityRegexp(re.escape(identity), issuer), cert)
    assert _accepts(identity_policy(identity=identity, issuer=issuer), cert)  # exact
    assert not _accepts(identity_policy(identity=identity + "x", issuer=issuer), cert)
    assert not _accepts(identity_policy(identity=identity, issuer=issuer + "x"), cert)
    assert _accepts(IdentityRegexp(".*", None), cert)
    assert not _accepts(IdentityRegexp(re.escape(identity) + "x", issuer), cert)
    assert not _accepts(IdentityRegexp(re.escape(identity[:-1]), issuer), cert)
    assert not _accepts(IdentityRegexp(re.escape(identity), issuer + "x"), cert)


@pytest.mark.parametrize("length", LENGTHS)
def test_issuer_v2_alone_of_every_length(length: int) -> None:
    issuer = _text(length, "https://issuer.example")
    cert = _leaf([x509.RFC822Name("who@example.com")], issuer_v2=_utf8(issuer))
    assert issuer_of(cert) == issuer
    assert _accepts(IdentityRegexp(r"who@example\.com", issuer), cert)
    assert not _accepts(IdentityRegexp(r"who@example\.com", issuer[:-1]), cert)


@pytest.mark.parametrize("length", LENGTHS)
def test_issuer_v1_alone_of_every_length(length: int) -> None:
    issuer = _text(length, "https://issuer.example")
    cert = _leaf([x509.RFC822Name("who@example.com")], issuer_v1=issuer.encode())
    assert issuer_of(cert) == issuer
    assert _accepts(IdentityRegexp(r"who@example\.com", issuer), cert)
    assert not _accepts(IdentityRegexp(r"who@example\.com", issuer + "/"), cert)


def test_issuer_v2_is_preferred_to_v1() -> None:
    cert = _leaf(
        [x509.RFC822Name("who@example.com")],
        issuer_v2=_utf8("https://v2.example"),
        issuer_v1=b"https://v1.example",
    )
    assert issuer_of(cert) == "https://v2.example"


def test_non_ascii_othername_identity() -> None:
    identity = "jürgen-ß-" + "é" * 120  # more UTF-8 bytes than characters: long form
    cert = _leaf([x509.OtherName(OID_USERNAME, _utf8(identity))], issuer_v2=_utf8("https://i"))
    assert identities(cert) == [identity]
    assert _accepts(IdentityRegexp(re.escape(identity), "https://i"), cert)


def test_othername_of_another_oid_is_not_an_identity() -> None:
    cert = _leaf([x509.OtherName(OID_UPN, _utf8("evil@example.com"))], issuer_v2=_utf8("https://i"))
    assert identities(cert) == []
    assert not _accepts(IdentityRegexp(".*", "https://i"), cert)
    assert not _accepts(IdentityRegexp(r"evil@example\.com", None), cert)


@pytest.mark.parametrize(
    "value",
    [
        core.PrintableString("evil@example.com").dump(),  # not a UTF8String
        core.IA5String("evil@example.com").dump(),
        core.OctetString(b"evil@example.com").dump(),
        b"\x30\x12" + _utf8("evil@example.com"),  # wrapped in a SEQUENCE
        b"\x0c\x03\xff\xfeA",  # UTF8String tag, bytes that are not UTF-8
    ],
    ids=["printable", "ia5", "octets", "sequence", "bad-utf8"],
)
def test_malformed_othername_is_skipped(value: bytes) -> None:
    cert = _leaf(
        [
            x509.RFC822Name("who@example.com"),
            x509.OtherName(OID_USERNAME, value),
            x509.OtherName(OID_UPN, _utf8("upn@example.com")),
            x509.OtherName(OID_USERNAME, _utf8("good")),
        ],
        issuer_v2=_utf8("https://i"),
    )
    assert identities(cert) == ["who@example.com", "good"]
    assert _accepts(IdentityRegexp("good", "https://i"), cert)
    assert not _accepts(IdentityRegexp(".*evil.*", "https://i"), cert)


def test_only_malformed_othername_means_no_identity() -> None:
    cert = _leaf(
        [x509.OtherName(OID_USERNAME, core.PrintableString("evil").dump())],
        issuer_v2=_utf8("https://i"),
    )
    assert identities(cert) == []
    assert not _accepts(IdentityRegexp(".*", "https://i"), cert)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x0c",
        b"\x0c\x05ab",  # shorter than its length says
        _utf8("https://v2.example") + b"\x00",  # trailing bytes
        core.PrintableString("https://v2.example").dump(),  # not a UTF8String
        b"\x0c\x02\xff\xfe",  # not UTF-8
    ],
    ids=["empty", "tag-only", "truncated", "trailing", "printable", "bad-utf8"],
)
def test_malformed_issuer_v2_falls_back_to_v1(value: bytes) -> None:
    with_v1 = _leaf([x509.RFC822Name("who@example.com")], issuer_v2=value, issuer_v1=b"https://v1")
    assert issuer_of(with_v1) == "https://v1"
    assert _accepts(IdentityRegexp(r"who@example\.com", "https://v1"), with_v1)

    without = _leaf([x509.RFC822Name("who@example.com")], issuer_v2=value)
    assert issuer_of(without) is None
    assert not _accepts(IdentityRegexp(r"who@example\.com", "https://v2.example"), without)


def test_no_san_and_no_issuer() -> None:
    cert = _leaf()
    assert identities(cert) == []
    assert issuer_of(cert) is None
    assert not _accepts(IdentityRegexp(".*", None), cert)


def test_unparseable_san_extension_does_not_raise() -> None:
    # A SAN whose OtherName lacks its [0] value: cryptography refuses to parse the extensions.
    oid = core.ObjectIdentifier("1.3.6.1.4.1.57264.1.7").dump()
    other = b"\xa0" + bytes([len(oid)]) + oid
    cert = _leaf(raw_san=b"\x30" + bytes([len(other)]) + other, issuer_v1=b"https://v1")
    with pytest.raises(ValueError):
        _ = cert.extensions
    assert identities(cert) == []
    assert issuer_of(cert) is None
    assert not _accepts(IdentityRegexp(".*", None), cert)
