"""Certificate path validation for signatures made with an organisation's PKI.

Path building and RFC 5280 checks are cryptography's own verifier (the Web
PKI profile for the CAs); only the leaf's policy is ours, because code-signing
leaves carry no server name and often look unlike Web PKI leaves (the
interoperability fixtures' leaf is even marked ``cA``). For the leaf we
require what ``model-signing`` requires, a little stricter: the key usage, if
present, allows digital signatures; the extended key usage, if present,
allows code signing; and at least one of the two is present.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import (
    VerificationError as _LibraryVerificationError,
)

from provenance.errors import VerificationError

_MAX_DEPTH = 8


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _stamp(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _check_time(cert: x509.Certificate, at: datetime.datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise VerificationError(
            f"certificate '{_name(cert)}' is not valid until {_stamp(cert.not_valid_before_utc)}"
        )
    if at > cert.not_valid_after_utc:
        raise VerificationError(
            f"certificate '{_name(cert)}' expired on {_stamp(cert.not_valid_after_utc)}"
        )


def _check_leaf_usage(leaf: x509.Certificate) -> None:
    try:
        ku: x509.KeyUsage | None = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    try:
        eku: x509.ExtendedKeyUsage | None = leaf.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        ).value
    except x509.ExtensionNotFound:
        eku = None
    name = _name(leaf)
    if ku is not None and not ku.digital_signature:
        raise VerificationError(
            f"certificate '{name}' may not sign (key usage lacks digitalSignature)"
        )
    if eku is not None and not (
        ExtendedKeyUsageOID.CODE_SIGNING in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    ):
        raise VerificationError(
            f"certificate '{name}' may not be used for code signing "
            "(extended key usage lacks codeSigning)"
        )
    if ku is None and eku is None:
        raise VerificationError(
            f"certificate '{name}' states neither key usage nor extended key usage"
        )


def verify_chain(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime.datetime,
) -> list[x509.Certificate]:
    """Validate ``leaf`` up to one of ``roots`` at time ``at``; return the path.

    ``untrusted`` may hold intermediates from the bundle and from the user, in
    any order, with duplicates or junk; roots never come from the bundle.
    """
    if not roots:
        raise VerificationError("no trusted root certificate given")
    _check_time(leaf, at)
    _check_leaf_usage(leaf)
    if any(leaf == root for root in roots):
        return [leaf]
    intermediates = [c for c in untrusted if c != leaf]
    builder = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(at)
        .max_chain_depth(_MAX_DEPTH)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, intermediates)
    except _LibraryVerificationError as e:
        raise VerificationError(
            f"certificate '{_name(leaf)}' does not chain to a trusted root ({_brief(e)})"
        ) from None
    return list(verified.chain)


def _brief(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.removeprefix("validation failed: ")
