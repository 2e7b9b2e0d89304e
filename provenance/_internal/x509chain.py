"""Certificate path validation for signatures made with an organisation's PKI.

Why a small path builder of our own rather than ``cryptography.x509.verification``:
that verifier only offers the Web PKI profile, and two of its fixed rules (not
settable from Python) turn away chains that code-signing PKIs use every day:

* CA certificates with Ed25519 keys are refused ("forbidden public key algorithm");
* a CA's extendedKeyUsage must allow serverAuth/clientAuth, so an intermediate
  restricted to codeSigning is refused (unless one rewrites the whole CA policy).

Its failures also name no certificate ("candidates exhausted: cert is not valid
at validation time"), whereas our reasons must tell the user *which* certificate
to replace. The cryptography stays in the library: every signature is checked
by ``Certificate.verify_directly_issued_by``; what is written here is only the
search for a path and the RFC 5280 checks a relying party makes on it.

The rules:

* a path runs from the leaf through ``untrusted`` certificates to one of the
  ``roots`` (any of them, self-signed or not: an intermediate given as a root is
  a trust anchor, like OpenSSL's ``X509_V_FLAG_PARTIAL_CHAIN``); a leaf that is
  itself one of the roots is trusted as it is;
* every certificate on the path, the anchor included, is valid at ``at``;
* every issuer on the path is a CA (basicConstraints cA), may sign certificates
  (keyUsage keyCertSign, when keyUsage is present) and honours its
  pathLenConstraint;
* the leaf may sign code, as ``model-signing`` requires, a little stricter: its
  keyUsage, if present, has digitalSignature; its extendedKeyUsage, if present,
  has codeSigning or anyExtendedKeyUsage; at least one of the two is present.
  A leaf marked cA is accepted (the interoperability fixtures' leaf is one);
* no certificate on the path has a critical extension we do not act on.

Nothing is "self-signed, hence a root" here: the fixtures' leaf has subject ==
issuer == the intermediate's name, and is signed by the intermediate's key.
Only the user's ``roots`` are trusted, compared by their DER bytes.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from provenance._internal.timefmt import format_time
from provenance.errors import VerificationError

__all__ = ["check_leaf", "verify_chain"]

#: Most intermediates between the leaf and the anchor. Real PKIs use one or two;
#: the bound keeps a hostile bundle from sending the search down long detours.
_MAX_INTERMEDIATES = 8

#: Most issuer candidates the search will try in all. A bundle comes from
#: whoever made the signature, so many certificates under one name must not
#: make verification explode combinatorially.
_MAX_STEPS = 2000

#: Extensions we may meet marked critical and still accept: those we enforce
#: (basic constraints, key usage, extended key usage) and those that constrain
#: nothing a relying party must enforce (names and key identifiers). Any other
#: critical extension (name constraints, policies, ...) would oblige us to
#: process it, which we do not, so such a certificate is refused (RFC 5280 4.2).
_UNDERSTOOD_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)

_SIGNING_EKUS = (ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)


def verify_chain(
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime.datetime,
) -> list[x509.Certificate]:
    """Validate ``leaf`` up to one of ``roots`` at time ``at``; return the path.

    ``untrusted`` may hold intermediates from the bundle and from the user in
    any order, with duplicates, the leaf itself, roots or junk: they are only
    candidates, never trusted. The returned path starts with the leaf and ends
    with the anchor. Raises :class:`VerificationError` with a one-line reason
    naming the certificate at fault.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verify_chain needs a timezone-aware time")
    at = at.astimezone(datetime.timezone.utc)
    if not roots:
        raise VerificationError("no trusted root certificate given to verify the chain with")

    # The leaf's own faults come first: no choice of intermediates can fix them.
    check_leaf(leaf, at)

    anchors = _unique(roots)
    anchor_ders = {_der(c) for c in anchors}
    if _der(leaf) in anchor_ders:
        return [leaf]
    # Anchors first, so that a path stops at the first trusted certificate.
    candidates = _unique([*anchors, *untrusted])
    search = _Search(at=at, candidates=candidates, anchor_ders=anchor_ders)
    path = search.extend([leaf])
    if path is not None:
        return path
    raise VerificationError(search.best_reason(leaf))


@dataclass
class _Search:
    """Depth-first search for a valid path, remembering why each branch failed.

    When no path exists, the reason reported is the one found deepest in the
    search: the branch that got closest to a root says best what is missing.
    """

    at: datetime.datetime
    candidates: list[x509.Certificate]
    anchor_ders: set[bytes]
    steps: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    _ders: dict[int, bytes] = field(default_factory=dict)
    _signed: dict[tuple[bytes, bytes], bool] = field(default_factory=dict)
    _by_subject: dict[x509.Name, list[x509.Certificate]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Indexed once by subject: each step looks up its issuer's name instead
        # of scanning every candidate (a hostile bundle may bring thousands).
        for c in self.candidates:
            self._by_subject.setdefault(c.subject, []).append(c)

    def extend(self, path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        """Try every issuer of ``path[-1]``; return the first complete valid path."""
        child = path[-1]
        depth = len(path)
        on_path = {self._der(c) for c in path}
        named = self._by_subject.get(child.issuer, [])
        unused = [c for c in named if self._der(c) not in on_path]
        if not unused:
            self.failures.append((depth, self._dead_end(child, path, named)))
            return None
        for issuer in unused:
            self.steps += 1
            if self.steps > _MAX_STEPS:
                self.failures.append(
                    (
                        _MAX_INTERMEDIATES + 2,
                        f"gave up searching for a path from '{_subject(path[0])}' to a trusted "
                        "root: too many candidate certificates under the same names",
                    )
                )
                return None
            reason = self._reject_issuer(child, issuer, path)
            if reason is not None:
                self.failures.append((depth, reason))
                continue
            if self._der(issuer) in self.anchor_ders:
                return [*path, issuer]
            if depth - 1 >= _MAX_INTERMEDIATES:
                self.failures.append(
                    (
                        depth,
                        f"no path from '{_subject(path[0])}' to a trusted root within "
                        f"{_MAX_INTERMEDIATES} intermediate certificates",
                    )
                )
                continue
            found = self.extend([*path, issuer])
            if found is not None or self.steps > _MAX_STEPS:
                return found
        return None

    def _reject_issuer(
        self, child: x509.Certificate, issuer: x509.Certificate, path: list[x509.Certificate]
    ) -> str | None:
        """Why ``issuer`` cannot stand above ``path`` (``None`` if it can)."""
        if not self._verifies(child, issuer):
            return (
                f"certificate '{_subject(child)}' is not signed by the key of '{_subject(issuer)}' "
                "(issued by a different CA of the same name?)"
            )
        try:
            _check_time(issuer, self.at)
            _check_critical(issuer)
            _check_ca(issuer, below=path[1:])
        except VerificationError as e:
            return e.reason
        return None

    def _verifies(self, child: x509.Certificate, issuer: x509.Certificate) -> bool:
        """Whether ``issuer``'s name and key match ``child``'s signature; checked once a pair."""
        pair = (self._der(child), self._der(issuer))
        if pair not in self._signed:
            try:
                child.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
                self._signed[pair] = False
            else:
                self._signed[pair] = True
        return self._signed[pair]

    def _dead_end(
        self,
        child: x509.Certificate,
        path: list[x509.Certificate],
        named: list[x509.Certificate],
    ) -> str:
        """The reason when no unused certificate bears ``child``'s issuer name."""
        start = f"no path from '{_subject(path[0])}' to a trusted root"
        # Subject == issuer is not enough to call a certificate self-signed: the
        # fixtures' leaf has both equal to its issuer's name. Its own key must sign it.
        if child.issuer == child.subject and self._verifies(child, child):
            return (
                f"{start}: the chain ends at self-signed '{_subject(child)}', "
                "which is not one of the trusted roots"
            )
        # The leaf itself may bear its issuer's name (the fixtures' leaf does);
        # only a CA met twice makes a circle.
        above_leaf = {self._der(c) for c in path[1:]}
        if any(self._der(c) in above_leaf for c in named):
            return f"{start}: the chain runs in a circle back to '{_name(child.issuer)}'"
        return (
            f"{start}: issuer '{_name(child.issuer)}' of '{_subject(child)}' is neither a trusted "
            "root nor among the chain certificates"
        )

    def _der(self, cert: x509.Certificate) -> bytes:
        """``cert``'s DER bytes, encoded once per certificate object."""
        der = self._ders.get(id(cert))
        if der is None:
            der = self._ders[id(cert)] = _der(cert)
        return der

    def best_reason(self, leaf: x509.Certificate) -> str:
        """The first failure at the greatest depth the search reached."""
        if not self.failures:
            return f"no path from '{_subject(leaf)}' to a trusted root"
        deepest = max(depth for depth, _ in self.failures)
        return next(reason for depth, reason in self.failures if depth == deepest)


def check_leaf(leaf: x509.Certificate, at: datetime.datetime) -> None:
    """The leaf's own checks (time, critical extensions, usage), also used at signing."""
    _check_time(leaf, at)
    _check_critical(leaf)
    _check_leaf_usage(leaf)


def _check_time(cert: x509.Certificate, at: datetime.datetime) -> None:
    """Refuse a certificate outside its validity period at ``at``."""
    if at < cert.not_valid_before_utc:
        raise VerificationError(
            f"certificate '{_subject(cert)}' is not valid until {_stamp(cert.not_valid_before_utc)}"
        )
    if at > cert.not_valid_after_utc:
        raise VerificationError(
            f"certificate '{_subject(cert)}' expired on {_stamp(cert.not_valid_after_utc)}"
        )


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    """The certificate's extensions; a malformed or duplicated one is a verification failure."""
    try:
        return cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise VerificationError(
            f"certificate '{_subject(cert)}' has malformed extensions ({e})"
        ) from None


def _check_critical(cert: x509.Certificate) -> None:
    """Refuse a critical extension we do not process, as RFC 5280 requires."""
    for ext in _extensions(cert):
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            label = ext.oid.dotted_string
            if not isinstance(ext.value, x509.UnrecognizedExtension):
                label = f"{type(ext.value).__name__} {label}"
            raise VerificationError(
                f"certificate '{_subject(cert)}' has a critical extension this verifier does not "
                f"support ({label})"
            )


def _check_ca(issuer: x509.Certificate, below: Sequence[x509.Certificate]) -> None:
    """Refuse an issuer that is not a CA allowed to sign the intermediates ``below`` it.

    ``below`` are the intermediates between ``issuer`` and the leaf (the leaf
    excluded); self-issued ones do not count against pathLenConstraint (RFC 5280 6.1.4).
    """
    exts = _extensions(issuer)
    name = _subject(issuer)
    try:
        bc: x509.BasicConstraints = exts.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise VerificationError(
            f"certificate '{name}' may not issue certificates (it has no basicConstraints)"
        ) from None
    if not bc.ca:
        raise VerificationError(
            f"certificate '{name}' may not issue certificates (basicConstraints cA is false)"
        )
    try:
        ku: x509.KeyUsage = exts.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if not ku.key_cert_sign:
            raise VerificationError(
                f"certificate '{name}' may not issue certificates (key usage lacks keyCertSign)"
            )
    if bc.path_length is not None:
        counted = sum(1 for c in below if c.subject != c.issuer)
        if counted > bc.path_length:
            raise VerificationError(
                f"certificate '{name}' allows at most {bc.path_length} intermediate CA "
                f"certificate(s) below it (pathLenConstraint), but the path has {counted}"
            )


def _check_leaf_usage(leaf: x509.Certificate) -> None:
    """Refuse a leaf whose key usages do not allow signing code."""
    exts = _extensions(leaf)
    name = _subject(leaf)
    try:
        ku: x509.KeyUsage | None = exts.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    try:
        eku: x509.ExtendedKeyUsage | None = exts.get_extension_for_class(
            x509.ExtendedKeyUsage
        ).value
    except x509.ExtensionNotFound:
        eku = None
    if ku is None and eku is None:
        raise VerificationError(
            f"certificate '{name}' states neither key usage nor extended key usage; a signing "
            "certificate needs keyUsage digitalSignature or extendedKeyUsage codeSigning"
        )
    if ku is not None and not ku.digital_signature:
        raise VerificationError(
            f"certificate '{name}' may not be used for signing (key usage lacks digitalSignature)"
        )
    if eku is not None and not any(oid in eku for oid in _SIGNING_EKUS):
        raise VerificationError(
            f"certificate '{name}' may not be used for code signing "
            "(extended key usage lacks codeSigning)"
        )


def _unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``certs`` without repeats (by DER), first occurrence kept, order kept."""
    seen: set[bytes] = set()
    out: list[x509.Certificate] = []
    for cert in certs:
        der = _der(cert)
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return out


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty name)"


def _subject(cert: x509.Certificate) -> str:
    return _name(cert.subject)


def _stamp(moment: datetime.datetime) -> str:
    return format_time(moment)
