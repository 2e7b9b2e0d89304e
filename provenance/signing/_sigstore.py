"""Sigstore keyless signing and verification, on the ``sigstore`` package.

The OMS statement goes into a DSSE envelope that Sigstore's own client signs
with a short-lived Fulcio certificate and records in a transparency log, so
the bundle is exactly what ``sigstore`` (and ``model-signing``) produce and
verify. Nothing here re-implements Sigstore's checks: verification is
``sigstore.verify.Verifier.verify_dsse`` with an identity policy.

Identity policies are tiny objects with one ``verify(certificate)`` method,
composed with :class:`AllOf` / :class:`AnyOf` (the ``sigstore`` ones).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenance._internal.timefmt import format_time
from provenance.bundle import Bundle
from provenance.dsse import INTOTO_PAYLOAD_TYPE
from provenance.errors import Hint, InputError, UsageError, VerificationError
from provenance.signing._base import SignerInfo, Verified
from provenance.signing._keys import wrong_kind

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore.oidc import IdentityToken

#: Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
_OID_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
#: The OtherName SAN in which Fulcio puts an identity that is neither e-mail nor URI.
_OID_OTHERNAME_USERNAME = "1.3.6.1.4.1.57264.1.7"


def _caught() -> tuple[type[Exception], ...]:
    """What a Sigstore check can raise on hostile input: sigstore's errors, bad values."""
    return (*_errors(), ValueError, TypeError, KeyError)


def _errors() -> tuple[type[Exception], ...]:
    """sigstore's error types (its base Error covers e.g. an unusable trusted root)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError as SigstoreVerificationError

    return SigstoreVerificationError, SigstoreError


# ---------------------------------------------------------------- trust material


def load_trust_config(
    trust_config: str | os.PathLike[str] | None = None,
    *,
    staging: bool = False,
    offline: bool = False,
) -> ClientTrustConfig:
    """The client trust config: a file, or Sigstore's staging / production instance.

    ``offline`` uses the root cached by an earlier TUF refresh, or the one
    pinned inside the ``sigstore`` package, and makes no network request.
    """
    from sigstore.models import ClientTrustConfig

    if trust_config is not None and staging:
        raise UsageError("give either a trust config or the staging instance, not both")
    if trust_config is not None:
        from provenance._internal.fsutil import read_limited

        raw = read_limited(trust_config, "trust config", 16 << 20)
        try:
            return ClientTrustConfig.from_json(raw.decode("utf-8"))
        except Exception as e:
            raise InputError(
                f"trust config '{trust_config}' is not usable: {_first_line(e)}"
            ) from None
    try:
        if staging:
            return ClientTrustConfig.staging(offline=offline)
        return ClientTrustConfig.production(offline=offline)
    except Exception as e:
        which = "staging" if staging else "production"
        raise InputError(
            f"cannot load Sigstore's {which} trust root: {_first_line(e)}",
            code="trust-root-unavailable",
            hint=None if offline else Hint.OFFLINE,
        ) from None


def load_trusted_root(
    trust_root: str | os.PathLike[str] | None = None,
    trust_config: str | os.PathLike[str] | None = None,
    *,
    staging: bool = False,
    offline: bool = False,
) -> TrustedRoot:
    """The trusted root to verify against (a ``trusted_root.json`` or a trust config)."""
    if trust_root is not None:
        if trust_config is not None or staging:
            raise UsageError("give only one of a trusted root, a trust config, or staging")
        from sigstore.models import TrustedRoot

        from provenance._internal.fsutil import read_limited

        read_limited(trust_root, "trusted root", 16 << 20)  # clear errors for missing files
        try:
            return TrustedRoot.from_file(os.fspath(trust_root))
        except Exception as e:
            raise InputError(
                f"trusted root '{trust_root}' is not usable: {_first_line(e)}"
            ) from None
    return load_trust_config(trust_config, staging=staging, offline=offline).trusted_root


def _first_line(e: BaseException) -> str:
    """One line for an exception; for a schema error, which field and what is wrong."""
    errors = getattr(e, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(top)"
            return f"{where}: {first.get('msg', 'invalid')}"
        except (TypeError, IndexError, AttributeError, KeyError):
            pass
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------- identity tokens


def get_identity_token(
    token: str | None = None,
    *,
    trust_config: ClientTrustConfig | None = None,
    interactive: bool = True,
) -> IdentityToken:
    """An OIDC identity token: given, ambient (CI), or from the browser flow.

    Ambient detection is ``sigstore``'s own (GitHub Actions, GitLab CI,
    Buildkite, Google Cloud); the browser flow runs only on a terminal.
    """
    from sigstore.oidc import IdentityError, IdentityToken, detect_credential

    raw = token or os.environ.get("SIGSTORE_ID_TOKEN")
    if not raw:
        try:
            raw = detect_credential()
        except IdentityError as e:
            raise InputError(f"ambient CI credentials failed: {_first_line(e)}") from None
    if not raw and interactive:
        from sigstore.oidc import Issuer

        if trust_config is None:
            trust_config = load_trust_config()
        urls = trust_config.signing_config.get_oidc_url()
        try:
            return Issuer(urls).identity_token()
        except Exception as e:
            raise InputError(f"interactive sign-in failed: {_first_line(e)}") from None
    if not raw:
        raise InputError(
            "no identity token: give one, run in CI with OIDC enabled, "
            "or run on a terminal to sign in",
            code="no-identity-token",
            hint=Hint.IDENTITY_TOKEN,
        )
    try:
        return IdentityToken(raw)
    except IdentityError as e:
        # sigstore's own message is generic ("malformed or missing claims");
        # the JWT library's cause says what is actually wrong.
        cause = f" ({_first_line(e.__cause__)})" if e.__cause__ is not None else ""
        raise InputError(f"identity token rejected: {_first_line(e)}{cause}") from None


# ---------------------------------------------------------------- signing


@dataclass
class SigstoreSigner:
    """Signs keyless: Fulcio certificate for the token's identity, log entry, bundle."""

    identity_token: IdentityToken
    trust_config: ClientTrustConfig

    def sign(self, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Bundle:
        if payload_type != INTOTO_PAYLOAD_TYPE:
            raise UsageError("Sigstore signs in-toto statements only")
        from sigstore.dsse import Statement
        from sigstore.sign import SigningContext

        try:
            context = SigningContext.from_trust_config(self.trust_config)
            with context.signer(self.identity_token, cache=True) as signer:
                signed = signer.sign_dsse(Statement(payload))
        except Exception as e:
            reason = _describe_failure(e)
            if "signed timestamp" in reason:
                # sigstore only logs the timestamp authority's failure; name it here.
                try:
                    urls = [t.url for t in self.trust_config.signing_config.get_tsas()]
                except Exception:
                    urls = []
                if urls:
                    reason = f"no signed timestamp from {', '.join(urls)} ({reason})"
            raise InputError(f"Sigstore signing failed: {reason}") from None
        return Bundle.from_bytes(signed.to_json().encode("utf-8"), source="Sigstore's bundle")

    def describe(self) -> SignerInfo:
        token = self.identity_token
        return SignerInfo(
            kind="keyless",
            description=f"Sigstore identity {token.identity} (issuer {token.issuer})",
            identity=str(token.identity),
            issuer=str(token.issuer),
        )


def _describe_failure(e: BaseException) -> str:
    """Name the service that could not be reached, rather than a stack of wrappers."""
    import requests

    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.RequestException):
            url = getattr(getattr(current, "request", None), "url", None)
            if isinstance(current, requests.ConnectionError):
                return f"cannot reach {url or 'the signing service'}"
            return f"{url or 'the signing service'}: {_first_line(current)}"
        current = current.__cause__ or current.__context__
    text = _first_line(e)
    match = re.search(r"https?://[^\s'\")]+", str(e))
    if "Connection" in text and match:
        return f"cannot reach {match.group(0)}"
    return text


# ---------------------------------------------------------------- identity policies


@dataclass(frozen=True)
class IdentityRegexp:
    """The certificate's identity (e-mail, URI or Sigstore username SAN) fully matches a pattern.

    ``sigstore`` has only exact-identity policies, hence this one; it reads
    identities and issuer through :func:`identities` and :func:`issuer_of`.
    """

    pattern: str
    issuer: str | None = None

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        ids = identities(cert)
        if not any(re.fullmatch(self.pattern, i) for i in ids):
            raise SigstoreVerificationError(
                f"identity {', '.join(ids) or '(none)'} does not match {self.pattern!r}"
            )
        if self.issuer is not None:
            issuer = issuer_of(cert)
            if issuer != self.issuer:
                raise SigstoreVerificationError(f"issuer {issuer or '(none)'} is not {self.issuer}")


@dataclass(frozen=True)
class Identity:
    """The certificate's identity is exactly this one, vouched for by this issuer.

    Not ``sigstore``'s ``policy.Identity``: that compares Sigstore username
    OtherNames with their DER tag and length still attached, so an exact
    identity of that kind never matches. This reads them through
    :func:`identities`, as :class:`IdentityRegexp` does.
    """

    identity: str
    issuer: str

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        issuer = issuer_of(cert)
        if issuer != self.issuer:
            raise SigstoreVerificationError(f"issuer {issuer or '(none)'} is not {self.issuer}")
        ids = identities(cert)
        if self.identity not in ids:
            raise SigstoreVerificationError(
                f"identity {', '.join(ids) or '(none)'} is not {self.identity}"
            )


def identities(cert: Certificate) -> list[str]:
    """The certificate's Sigstore identities: e-mail and URI SANs, then username OtherNames.

    Fulcio puts an identity that is neither an e-mail nor a URI in an
    OtherName of OID 1.3.6.1.4.1.57264.1.7 whose value is a DER UTF8String;
    ``cryptography`` hands that value over still encoded (tag, length, bytes),
    so it is decoded here with a real DER decoder (the one ``sigstore`` uses
    for its v2 extensions): stripping bytes by hand leaves the length in the
    string and no pattern matches. OtherNames of any other OID are not Sigstore identities, and a
    value that is not a well-formed UTF8String is skipped, so neither can be
    matched by ``--identity-regexp``. A certificate whose extensions cannot be
    parsed at all has no identity (this also reads unverified bundles, so it
    never raises).
    """
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    out = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
    out += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string != _OID_OTHERNAME_USERNAME:
            continue
        name = _der_utf8_string(other.value)
        if name is not None:
            out.append(name)
    return out


def issuer_of(cert: Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded: the v2 extension, else v1.

    v2 (1.3.6.1.4.1.57264.1.8) is a DER UTF8String, decoded with a real DER
    decoder; one that does not decode is ignored rather than read as garbage.
    v1 (1.3.6.1.4.1.57264.1.1) is the issuer's raw UTF-8 bytes. ``None`` when
    neither is there or the extensions cannot be parsed; never raises, since
    this also describes unverified bundles.
    """
    from cryptography import x509

    try:
        extensions = cert.extensions
    except ValueError:
        return None
    try:
        v2 = extensions.get_extension_for_oid(x509.ObjectIdentifier(_OID_ISSUER_V2)).value
    except x509.ExtensionNotFound:
        pass
    else:
        issuer = _der_utf8_string(v2.value)  # type: ignore[attr-defined]
        if issuer is not None:
            return issuer
    try:
        v1 = extensions.get_extension_for_oid(x509.ObjectIdentifier(_OID_ISSUER_V1)).value
    except x509.ExtensionNotFound:
        return None
    return bytes(v1.value).decode("utf-8", "replace")  # type: ignore[attr-defined]


def _der_utf8_string(der: bytes) -> str | None:
    """A DER UTF8String's text, or ``None`` if ``der`` is not exactly one.

    ``cryptography``'s own ASN.1 decoder (the one ``sigstore`` uses) checks the
    tag, the short- or long-form length, UTF-8 validity and that nothing
    trails; hand-parsing got the length wrong.
    """
    from cryptography.hazmat import asn1

    try:
        return asn1.decode_der(str, bytes(der))
    except (ValueError, TypeError):
        return None


def identity_policy(
    *,
    identity: str | None = None,
    identity_regexp: str | None = None,
    issuer: str | None = None,
    github_repository: str | None = None,
    github_ref: str | None = None,
    github_workflow_name: str | None = None,
    github_trigger: str | None = None,
    github_sha: str | None = None,
) -> Any:
    """Compose the policy for ``verify``: an identity (exact or pattern), an
    issuer, and any GitHub workflow claims; all must hold."""
    from sigstore.verify import policy

    if identity and identity_regexp:
        raise UsageError("give either an exact identity or an identity pattern, not both")
    if not identity and not identity_regexp:
        raise UsageError(
            "keyless verification needs the signer's identity (exact or a pattern)",
            hint=Hint.IDENTITY,
        )
    if not issuer:
        raise UsageError(
            "keyless verification needs the OIDC issuer URL that vouched for the identity",
            hint=Hint.ISSUER,
        )
    parts: list[Any] = []
    if identity:
        parts.append(Identity(identity, issuer))
    else:
        try:
            re.compile(identity_regexp or "")
        except re.error as e:
            raise UsageError(
                f"the identity pattern is not a valid regular expression: {e}"
            ) from None
        parts.append(IdentityRegexp(identity_regexp or "", issuer))
    for value, kind in (
        (github_repository, policy.GitHubWorkflowRepository),
        (github_ref, policy.GitHubWorkflowRef),
        (github_workflow_name, policy.GitHubWorkflowName),
        (github_trigger, policy.GitHubWorkflowTrigger),
        (github_sha, policy.GitHubWorkflowSHA),
    ):
        if value:
            parts.append(kind(value))
    return parts[0] if len(parts) == 1 else policy.AllOf(parts)


# ---------------------------------------------------------------- verification


class SigstoreVerifier:
    """Accepts keyless bundles from the trusted instance whose identity fits the policy."""

    def __init__(self, policy: Any, trusted_root: TrustedRoot) -> None:
        self.policy = policy
        self.trusted_root = trusted_root

    def verify(self, bundle: Bundle) -> Verified:
        if bundle.kind != "sigstore":
            raise wrong_kind(bundle, "a Sigstore identity")
        payload_type, payload = self.verify_dsse(bundle.raw)
        if payload != bundle.envelope.payload or payload_type != bundle.envelope.payload_type:
            raise VerificationError("the verified payload differs from the bundle's envelope")
        return Verified(keyless_info(bundle), payload_type, payload)

    def verify_dsse(self, raw_bundle: Any) -> tuple[str, bytes]:
        """Sigstore's full check of a DSSE bundle; returns the signed type and bytes."""
        sigstore_bundle = parse_sigstore_bundle(raw_bundle)
        from sigstore.verify import Verifier

        try:
            return Verifier(trusted_root=self.trusted_root).verify_dsse(
                sigstore_bundle, self.policy
            )
        except _caught() as e:
            raise VerificationError(f"Sigstore verification failed: {_first_line(e)}") from None

    def verify_artifact(self, artifact: bytes, raw_bundle: Any) -> None:
        """Sigstore's full check of a bundle over an arbitrary artifact.

        A DSSE bundle must hold an in-toto statement with the artifact's
        SHA-256 among its subjects (``sigstore``'s library leaves that to the
        caller; its CLI does the same check).
        """
        if isinstance(raw_bundle, (str, bytes)):
            try:
                raw_bundle = json.loads(raw_bundle)
            except ValueError:
                raise VerificationError("not a valid Sigstore bundle: invalid JSON") from None
        if isinstance(raw_bundle, dict) and "dsseEnvelope" in raw_bundle:
            import hashlib

            from provenance.signing._keys import _check_subject

            payload_type, payload = self.verify_dsse(raw_bundle)
            if payload_type != INTOTO_PAYLOAD_TYPE:
                raise VerificationError(f"DSSE payload type {payload_type!r} is not in-toto")
            _check_subject(payload, hashlib.sha256(artifact).digest())
            return
        sigstore_bundle = parse_sigstore_bundle(raw_bundle)
        from sigstore.verify import Verifier

        try:
            Verifier(trusted_root=self.trusted_root).verify_artifact(
                artifact, sigstore_bundle, self.policy
            )
        except _caught() as e:
            raise VerificationError(f"Sigstore verification failed: {_first_line(e)}") from None


def parse_sigstore_bundle(raw_bundle: Any) -> Any:
    """``sigstore.models.Bundle`` from the parsed JSON (or its text)."""
    from sigstore.models import Bundle as SigstoreBundle

    text = raw_bundle if isinstance(raw_bundle, (str, bytes)) else json.dumps(raw_bundle)
    try:
        return SigstoreBundle.from_json(text)
    except Exception as e:
        raise VerificationError(f"not a valid Sigstore bundle: {_first_line(e)}") from None


# ---------------------------------------------------------------- description


def keyless_info(bundle: Bundle) -> SignerInfo:
    """Identity, issuer, log index and signing time, as the bundle states them.

    Read, not verified: after :meth:`SigstoreVerifier.verify` they are the
    verified certificate's; for ``inspect`` they are claims.
    """
    from cryptography import x509

    from provenance.signing._certs import unreadable_certificate_errors

    unreadable = SignerInfo(kind="keyless", description="an unreadable Sigstore certificate")
    try:
        leaf = x509.load_der_x509_certificate(bundle.certificates[0])
        ids = identities(leaf)
        subject = leaf.subject.rfc4514_string()
        serial = format(leaf.serial_number, "x")
    except IndexError:
        return unreadable
    except unreadable_certificate_errors():
        return unreadable
    identity = ids[0] if ids else subject
    issuer = issuer_of(leaf)
    material = bundle.raw.get("verificationMaterial", {})
    material = material if isinstance(material, dict) else {}
    log_index = None
    # Every time the bundle claims: the log's integrated time, each RFC 3161
    # timestamp's. Sigstore accepts a bundle when one of them verifies and skips
    # those that do not, so the one shown is the latest: never earlier than a
    # verified one, whatever earlier times were added (a `since` revocation
    # cannot be dodged by backdating).
    times: list[datetime.datetime] = []
    entries = material.get("tlogEntries") or []
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        entry = entries[0]
        log_index = _int_or_none(entry.get("logIndex"))
        integrated = _int_or_none(entry.get("integratedTime"))
        if integrated and 0 < integrated < 253402300800:
            times.append(datetime.datetime.fromtimestamp(integrated, datetime.timezone.utc))
    data = material.get("timestampVerificationData")
    timestamps = data.get("rfc3161Timestamps") if isinstance(data, dict) else None
    if isinstance(timestamps, list):
        # Rekor v2 entries carry no time; the timestamps do (Sigstore reads at most 32).
        times.extend(t for t in map(_timestamp_time, timestamps[:_MAX_TIMESTAMPS]) if t)
    signed_at = format_time(max(times)) if times else None
    return SignerInfo(
        kind="keyless",
        description=f"{identity} (issuer {issuer or 'unknown'})",
        identity=identity,
        issuer=issuer,
        log_index=log_index,
        signed_at=signed_at,
        certificate_subject=subject or None,
        certificate_sans=tuple(ids),
        certificate_serial=serial,
        certificate_chain=tuple(bundle.certificates),
    )


#: The most RFC 3161 timestamps Sigstore reads from one bundle (more fail verification).
_MAX_TIMESTAMPS = 32


def _timestamp_time(timestamp: Any) -> datetime.datetime | None:
    """genTime of an RFC 3161 timestamp, read (not verified), in UTC."""
    import base64

    try:
        from rfc3161_client import decode_timestamp_response

        raw = base64.b64decode(timestamp["signedTimestamp"])
        when = decode_timestamp_response(raw).tst_info.gen_time
        return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)
    except Exception:
        return None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None  # a float (1e999 overflows int()) or anything else: not a log index
    try:
        return int(value) if len(str(value)) < 40 else None
    except ValueError:
        return None
