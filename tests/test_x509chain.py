"""Certificate path validation (provenance._internal.x509chain) on real certificates.

Every certificate is made here with cryptography (or read from the shared
interoperability fixtures); nothing is mocked. Each failure test checks that
the reason names the cause, because that reason is what the user acts on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance._internal.x509chain import verify_chain
from provenance.errors import VerificationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CERTS = PROJECT_ROOT.parent / "shared" / "fixtures" / "oms-golden" / "keys" / "certificate"

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
CODE_SIGNING = [ExtendedKeyUsageOID.CODE_SIGNING]
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.2")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(*, sign: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


_DEFAULT = object()


def make_cert(
    subject: str,
    key,
    issuer: str,
    issuer_key,
    *,
    ca: bool | None,
    path_length: int | None = None,
    key_usage=_DEFAULT,
    eku: list[x509.ObjectIdentifier] | None = None,
    not_before: datetime.datetime = NOW - 30 * DAY,
    not_after: datetime.datetime = NOW + 365 * DAY,
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> x509.Certificate:
    """A real certificate; ``key_usage`` defaults to what a CA or a signer needs."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length), critical=True
        )
    if key_usage is _DEFAULT:
        key_usage = _key_usage(cert_sign=True) if ca else _key_usage(sign=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def _ec():
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Pki:
    root_key: object
    int_key: object
    leaf_key: object
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key, int_key, leaf_key = _ec(), _ec(), _ec()
    root = make_cert("Test Root", root_key, "Test Root", root_key, ca=True)
    intermediate = make_cert("Test Int", int_key, "Test Root", root_key, ca=True)
    leaf = make_cert("Signer", leaf_key, "Test Int", int_key, ca=False, eku=CODE_SIGNING)
    return Pki(root_key, int_key, leaf_key, root, intermediate, leaf)


def leaf_under(pki: Pki, **kwargs) -> x509.Certificate:
    """A leaf issued by the intermediate; ``kwargs`` override make_cert's."""
    options = {"ca": False, "eku": CODE_SIGNING, **kwargs}
    return make_cert("Signer", pki.leaf_key, "Test Int", pki.int_key, **options)


def intermediate(pki: Pki, **kwargs) -> x509.Certificate:
    """An intermediate for the same key, issued by the root; ``kwargs`` override make_cert's."""
    options = {"ca": True, **kwargs}
    return make_cert("Test Int", pki.int_key, "Test Root", pki.root_key, **options)


def subjects(path: list[x509.Certificate]) -> list[str]:
    return [c.subject.rfc4514_string() for c in path]


def fails(leaf, untrusted, roots, *words: str, at: datetime.datetime = NOW) -> str:
    """Assert verification fails with a one-line reason containing every word."""
    with pytest.raises(VerificationError) as info:
        verify_chain(leaf, untrusted, roots, at)
    reason = str(info.value)
    assert "\n" not in reason
    for word in words:
        assert word in reason, f"{word!r} not in {reason!r}"
    return reason


# ---------------------------------------------------------------- accepted paths


def test_valid_chain_through_untrusted_intermediate(pki):
    path = verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW)
    assert path == [pki.leaf, pki.intermediate, pki.root]


def test_untrusted_list_with_leaf_duplicates_roots_and_junk(pki):
    junk_key = _ec()
    junk = make_cert("Junk", junk_key, "Junk", junk_key, ca=True)
    impostor = make_cert("Test Int", _ec(), "Test Root", pki.root_key, ca=True)
    untrusted = [pki.leaf, junk, impostor, pki.root, pki.intermediate, pki.intermediate]
    path = verify_chain(pki.leaf, untrusted, [junk, pki.root], NOW)
    assert path == [pki.leaf, pki.intermediate, pki.root]


def test_intermediate_given_as_anchor(pki):
    path = verify_chain(pki.leaf, [], [pki.intermediate], NOW)
    assert path == [pki.leaf, pki.intermediate]


def test_leaf_given_as_anchor(pki):
    assert verify_chain(pki.leaf, [], [pki.leaf], NOW) == [pki.leaf]


def test_leaf_marked_ca_is_accepted(pki):
    leaf = leaf_under(pki, ca=True, key_usage=_key_usage(sign=True))
    assert verify_chain(leaf, [pki.intermediate], [pki.root], NOW)[0] == leaf


@pytest.mark.parametrize("kind", ["ku-only", "eku-only", "any-eku"])
def test_leaf_with_either_usage_extension(pki, kind):
    options = {
        "ku-only": {"eku": None},
        "eku-only": {"key_usage": None},
        "any-eku": {"eku": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]},
    }[kind]
    leaf = leaf_under(pki, **options)
    assert len(verify_chain(leaf, [pki.intermediate], [pki.root], NOW)) == 3


def test_intermediate_restricted_to_code_signing(pki):
    """Code-signing PKIs often restrict CAs by EKU; cryptography's Web PKI profile refuses them."""
    inter = intermediate(pki, eku=CODE_SIGNING)
    assert verify_chain(pki.leaf, [inter], [pki.root], NOW)[1] == inter


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa", "p384"])
def test_other_key_algorithms(algorithm):
    def new_key():
        if algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        if algorithm == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP384R1())

    root_key, int_key, leaf_key = new_key(), new_key(), new_key()
    root = make_cert("Root", root_key, "Root", root_key, ca=True)
    inter = make_cert("Int", int_key, "Root", root_key, ca=True)
    leaf = make_cert("Leaf", leaf_key, "Int", int_key, ca=False, eku=CODE_SIGNING)
    assert verify_chain(leaf, [inter], [root], NOW) == [leaf, inter, root]


def test_alternative_path_is_tried(pki):
    """An expired intermediate is passed over for a valid one of the same name and key."""
    expired = intermediate(pki, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    fresh = intermediate(pki)
    assert verify_chain(pki.leaf, [expired, fresh], [pki.root], NOW)[1] == fresh


def test_pathlen_allows_exact_depth(pki):
    int2_key = _ec()
    inter = intermediate(pki, path_length=1)
    int2 = make_cert("Test Int 2", int2_key, "Test Int", pki.int_key, ca=True, path_length=0)
    leaf = make_cert("Signer", pki.leaf_key, "Test Int 2", int2_key, ca=False, eku=CODE_SIGNING)
    path = verify_chain(leaf, [int2, inter], [pki.root], NOW)
    assert subjects(path) == ["CN=Signer", "CN=Test Int 2", "CN=Test Int", "CN=Test Root"]


@pytest.mark.skipif(
    not FIXTURE_CERTS.is_dir(),
    reason=f"interoperability fixture certificates not found at {FIXTURE_CERTS}",
)
def test_fixture_chain():
    """The fixtures' leaf is named like its issuer (subject == issuer) and is marked cA."""

    def load(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((FIXTURE_CERTS / name).read_bytes())

    leaf = load("signing-key-cert.pem")
    inter = load("int-ca-cert.pem")
    root = load("ca-cert.pem")
    assert leaf.subject == leaf.issuer == inter.subject
    at = leaf.not_valid_before_utc + DAY
    assert verify_chain(leaf, [inter], [root], at) == [leaf, inter, root]
    assert verify_chain(leaf, [leaf, inter, root], [root], at) == [leaf, inter, root]
    assert verify_chain(leaf, [], [inter], at) == [leaf, inter]
    reason = fails(leaf, [], [root], "issuer 'CN=intermediate-ca'", "trusted root", at=at)
    assert "self-signed" not in reason
    # Given the leaf again among the chain certificates, the missing issuer is still named.
    fails(leaf, [leaf], [root], "issuer 'CN=intermediate-ca'", "neither", at=at)


# ---------------------------------------------------------------- refused paths


def test_expired_leaf(pki):
    leaf = leaf_under(pki, not_before=NOW - 400 * DAY, not_after=NOW - 10 * DAY)
    fails(leaf, [pki.intermediate], [pki.root], "'CN=Signer'", "expired on", "Z")


def test_not_yet_valid_leaf(pki):
    leaf = leaf_under(pki, not_before=NOW + DAY, not_after=NOW + 400 * DAY)
    when = (NOW + DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    fails(leaf, [pki.intermediate], [pki.root], "'CN=Signer'", "not valid until", when)


def test_expired_intermediate(pki):
    inter = intermediate(pki, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    fails(pki.leaf, [inter], [pki.root], "'CN=Test Int'", "expired on")


def test_expired_root(pki):
    root = make_cert(
        "Test Root", pki.root_key, "Test Root", pki.root_key, ca=True, not_after=NOW - DAY
    )
    fails(pki.leaf, [pki.intermediate], [root], "'CN=Test Root'", "expired on")


def test_intermediate_without_ca(pki):
    inter = intermediate(pki, ca=False, key_usage=_key_usage(cert_sign=True))
    fails(pki.leaf, [inter], [pki.root], "'CN=Test Int'", "cA is false")


def test_intermediate_without_basic_constraints(pki):
    inter = intermediate(pki, ca=None, key_usage=_key_usage(cert_sign=True))
    fails(pki.leaf, [inter], [pki.root], "'CN=Test Int'", "no basicConstraints")


def test_intermediate_key_usage_lacks_cert_sign(pki):
    inter = intermediate(pki, key_usage=_key_usage(sign=True))
    fails(pki.leaf, [inter], [pki.root], "'CN=Test Int'", "keyCertSign")


def test_leaf_key_usage_lacks_digital_signature(pki):
    leaf = leaf_under(pki, key_usage=_key_usage(cert_sign=True))
    fails(leaf, [pki.intermediate], [pki.root], "'CN=Signer'", "digitalSignature")


def test_leaf_eku_server_auth_only(pki):
    leaf = leaf_under(pki, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    fails(leaf, [pki.intermediate], [pki.root], "'CN=Signer'", "code signing", "codeSigning")


def test_leaf_without_key_usage_or_eku(pki):
    leaf = leaf_under(pki, key_usage=None, eku=None)
    fails(leaf, [pki.intermediate], [pki.root], "'CN=Signer'", "neither key usage nor extended")


def test_untrusted_root(pki):
    """A root that comes only in the untrusted list is not trusted."""
    other_key = _ec()
    other_root = make_cert("Other Root", other_key, "Other Root", other_key, ca=True)
    reason = fails(pki.leaf, [pki.intermediate, pki.root], [other_root], "trusted root")
    assert "self-signed 'CN=Test Root'" in reason
    fails(pki.leaf, [pki.intermediate], [other_root], "'CN=Test Root'", "trusted root")


def test_missing_intermediate(pki):
    fails(pki.leaf, [], [pki.root], "issuer 'CN=Test Int'", "'CN=Signer'", "trusted root")


def test_wrong_signature(pki):
    """A leaf naming the intermediate as issuer but signed by another key."""
    forged = make_cert("Signer", pki.leaf_key, "Test Int", _ec(), ca=False, eku=CODE_SIGNING)
    fails(forged, [pki.intermediate], [pki.root], "'CN=Signer' is not signed by", "'CN=Test Int'")


def test_wrong_signature_against_anchor(pki):
    forged = make_cert("Signer", pki.leaf_key, "Test Int", _ec(), ca=False, eku=CODE_SIGNING)
    fails(forged, [], [pki.intermediate], "not signed by the key of 'CN=Test Int'")


def test_pathlen_violation(pki):
    int2_key = _ec()
    inter = intermediate(pki, path_length=0)
    int2 = make_cert("Test Int 2", int2_key, "Test Int", pki.int_key, ca=True)
    leaf = make_cert("Signer", pki.leaf_key, "Test Int 2", int2_key, ca=False, eku=CODE_SIGNING)
    fails(leaf, [int2, inter], [pki.root], "'CN=Test Int'", "pathLenConstraint", "at most 0")


@pytest.mark.parametrize("where", ["leaf", "intermediate", "root"])
def test_unknown_critical_extension(pki, where):
    extra = ((x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True),)
    leaf, inter, root = pki.leaf, pki.intermediate, pki.root
    if where == "leaf":
        leaf = leaf_under(pki, extra=extra)
    elif where == "intermediate":
        inter = intermediate(pki, extra=extra)
    else:
        root = make_cert("Test Root", pki.root_key, "Test Root", pki.root_key, ca=True, extra=extra)
    subject = {"leaf": "Signer", "intermediate": "Test Int", "root": "Test Root"}[where]
    fails(leaf, [inter], [root], f"'CN={subject}'", "critical extension", UNKNOWN_OID.dotted_string)


def test_unknown_noncritical_extension_is_ignored(pki):
    extra = ((x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), False),)
    leaf = leaf_under(pki, extra=extra)
    assert len(verify_chain(leaf, [pki.intermediate], [pki.root], NOW)) == 3


def test_no_roots(pki):
    fails(pki.leaf, [pki.intermediate], [], "no trusted root")


def test_cross_signed_loop_terminates(pki):
    """Two CAs that certify each other lead nowhere; the search must end and say so."""
    a_key, b_key = _ec(), _ec()
    a = make_cert("A", a_key, "B", b_key, ca=True)
    b = make_cert("B", b_key, "A", a_key, ca=True)
    leaf = make_cert("Signer", pki.leaf_key, "A", a_key, ca=False, eku=CODE_SIGNING)
    fails(leaf, [a, b], [pki.root], "no path from 'CN=Signer'", "trusted root", "circle")


def test_naive_time_is_refused(pki):
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_chain(pki.leaf, [pki.intermediate], [pki.root], NOW.replace(tzinfo=None))
