"""A local Sigstore on 127.0.0.1, so keyless signing is tested for real and offline.

No machine that builds or tests provenance reaches the public Fulcio, Rekor or
an OIDC provider, and mocking the ``sigstore`` client would test nothing but the
mock. Instead this serves, on one loopback port, the few endpoints the
*unmodified* ``sigstore`` client talks to:

- an OIDC issuer (discovery document only; tokens are minted in-process),
- Fulcio (``/api/v2/signingCert``): checks the token's signature, audience,
  issuer and expiry, like the real one, and issues a short-lived certificate
  with an embedded SCT from a CT log key,
- Rekor v1 (``/api/v1/log/entries``, ``dsse`` entries) with signed entry
  timestamps, RFC 6962 inclusion proofs and signed checkpoints,
- Rekor v2 (``/api/v2/log/entries``, ``hashedrekord`` 0.0.2, which is how v2
  records DSSE envelopes), whose entries carry no time, and
- an RFC 3161 timestamp authority (``/api/v1/timestamp``) that gives v2
  signatures their verified time.

So the client does the whole protocol (CSR, SCT check, log submission, bundle
assembly) and ``sigstore.verify.Verifier`` checks genuine cryptography. What a
local fake cannot cover: real Fulcio claim mapping, CT submission, log
persistence and online lookups, TUF refresh, and the browser sign-in.

Needs ``PyJWT``, ``rfc8785`` and ``asn1crypto`` (the ``test`` extra).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import rfc8785
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Fulcio's OIDC-issuer extensions (v1 raw bytes, v2 a DER UTF8String) and the SCT list.
OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

AUDIENCE = "sigstore"
SIGNING_CERT_LIFETIME = dt.timedelta(minutes=10)  # as Fulcio's
TIMESTAMP_PATH = "/api/v1/timestamp"
_VALID_FOR = {"start": "2020-01-01T00:00:00Z"}

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: PrivateKey) -> bytes:
    """Sigstore's log and CT key ids: SHA-256 of the DER public key."""
    return hashlib.sha256(_spki(key)).digest()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _der_utf8(text: str) -> bytes:
    data = text.encode()
    if len(data) < 0x80:
        return b"\x0c" + bytes([len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(size)]) + size + data


# ---------------------------------------------------------------- RFC 6962 Merkle tree


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n``: where RFC 6962 splits a tree."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(_root(leaves[:k]), _root(leaves[k:]))


def _inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_inclusion_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_inclusion_path(index - k, leaves[k:]), _root(leaves[:k])]


class _Log:
    """An append-only Merkle tree, seeded so that every proof has hashes to tamper with."""

    def __init__(self, origin: str, key: PrivateKey) -> None:
        self.origin = origin
        self.key = key
        self.leaves = [_leaf_hash(b"seed %d" % i) for i in range(3)]
        self.lock = threading.Lock()

    def append(self, body: bytes) -> tuple[int, list[bytes]]:
        """Add a leaf; return its index and a snapshot of the tree that includes it."""
        with self.lock:
            self.leaves.append(_leaf_hash(body))
            return len(self.leaves) - 1, list(self.leaves)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed note (the checkpoint format Sigstore's clients verify)."""
        note = f"{self.origin}\n{size}\n{_b64(root)}\n"
        signature = _b64(_key_id(self.key)[:4] + self.sign(note.encode()))
        return f"{note}\n\u2014 {self.origin} {signature}\n"


class TokenRefused(Exception):
    """Fulcio would not accept the identity token (HTTP 401, as the real one)."""


class LocalSigstore:
    """OIDC issuer, Fulcio, CT log, Rekor v1 and v2 and a TSA, with their trust material.

    Use as a context manager (or ``start`` / ``close``). Once started:

    - ``url`` is the one base URL of every service, and ``issuer`` the OIDC issuer
      (the same URL, which serves the discovery document);
    - ``trust_config_path`` is a client trust config for Rekor v1 (log time only),
      ``trust_config_v2_path`` one for Rekor v2 with the timestamp authority;
    - ``trusted_root_path`` is the trusted root both share.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_v1 = _Log("local-rekor", ec.generate_private_key(ec.SECP256R1()))
        self.rekor_v2 = _Log("local-rekor-v2", ed25519.Ed25519PrivateKey.generate())
        self.fulcio_root_key = ec.generate_private_key(ec.SECP384R1())
        self.fulcio_key = ec.generate_private_key(ec.SECP384R1())
        self.tsa_root_key = ec.generate_private_key(ec.SECP384R1())
        self.tsa_key = ec.generate_private_key(ec.SECP256R1())
        self.fulcio_root = self._ca("local-fulcio-root", self.fulcio_root_key, None, None)
        self.fulcio_intermediate = self._ca(
            "local-fulcio-intermediate",
            self.fulcio_key,
            self.fulcio_root,
            self.fulcio_root_key,
            eku=ExtendedKeyUsageOID.CODE_SIGNING,
        )
        self.tsa_root = self._ca("local-tsa-root", self.tsa_root_key, None, None)
        self.tsa_cert = self._ca(
            "local-tsa",
            self.tsa_key,
            self.tsa_root,
            self.tsa_root_key,
            eku=ExtendedKeyUsageOID.TIME_STAMPING,
            leaf=True,
        )
        #: Offset applied to the validity of the certificates Fulcio issues.
        self.cert_offset = dt.timedelta(0)
        self._server: _Server | None = None
        self.url = ""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LocalSigstore:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.sigstore = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, name="local-sigstore", daemon=True).start()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.trusted_root_path.write_text(json.dumps(self.trusted_root(), indent=2))
        self.trust_config_path.write_text(json.dumps(self.client_trust_config(1), indent=2))
        self.trust_config_v2_path.write_text(json.dumps(self.client_trust_config(2), indent=2))
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSigstore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def trusted_root_path(self) -> Path:
        return self.directory / "trusted_root.json"

    @property
    def trust_config_path(self) -> Path:
        return self.directory / "trust_config.json"

    @property
    def trust_config_v2_path(self) -> Path:
        return self.directory / "trust_config_v2.json"

    # ------------------------------------------------------------ OIDC

    def mint_token(
        self,
        email: str,
        lifetime: int = 600,
        aud: str = AUDIENCE,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        """An identity token for ``email``; ``key`` other than the issuer's forges one."""
        now = int(time.time())
        issued = now if lifetime > 0 else now + lifetime - 600  # an expired token was once valid
        claims = {
            "iss": self.issuer,
            "sub": email,
            "email": email,
            "email_verified": True,
            "aud": aud,
            "iat": issued,
            "nbf": issued,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, key or self.oidc_key, algorithm="ES256")

    # ------------------------------------------------------------ Fulcio + CT

    @contextmanager
    def expired_certificates(self) -> Iterator[None]:
        """Make Fulcio issue certificates that expired before they were issued.

        A real Fulcio never does; this is how a test gets a bundle whose
        certificate was not valid at the time the log or the TSA vouches for.
        """
        self.cert_offset = -2 * SIGNING_CERT_LIFETIME
        try:
            yield
        finally:
            self.cert_offset = dt.timedelta(0)

    def _ca(
        self,
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        issuer_key: ec.EllipticCurvePrivateKey | None,
        *,
        eku: x509.ObjectIdentifier | None = None,
        leaf: bool = False,
    ) -> x509.Certificate:
        """A CA (or the TSA's leaf), valid from yesterday for ten years."""
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.local"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        signer = issuer_key or key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(
                x509.BasicConstraints(ca=not leaf, path_length=None if leaf else 1),
                critical=True,
            )
            .add_extension(
                x509.KeyUsage(leaf, False, False, False, False, not leaf, not leaf, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer_key is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=leaf)
        return builder.sign(signer, hashes.SHA384())

    def issue_chain(self, csr_pem: bytes, token: str) -> list[x509.Certificate]:
        """Fulcio: verify the token, then certify the CSR's key for the token's e-mail."""
        try:
            claims = jwt.decode(
                token,
                self.oidc_key.public_key(),
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "email"]},
            )
        except jwt.PyJWTError as e:
            raise TokenRefused(f"identity token refused: {e}") from None
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the CSR's proof of possession does not verify")
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + self.cert_offset
        serial = x509.random_serial_number()

        def build(sct_list: bytes) -> x509.Certificate:
            key = csr.public_key()
            return (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self.fulcio_intermediate.subject)
                .public_key(key)
                .serial_number(serial)
                .not_valid_before(start)
                .not_valid_after(start + SIGNING_CERT_LIFETIME)
                .add_extension(
                    x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                    critical=True,
                )
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), False)  # type: ignore[arg-type]
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        self.fulcio_key.public_key()
                    ),
                    False,
                )
                .add_extension(
                    x509.SubjectAlternativeName([x509.RFC822Name(claims["email"])]), critical=True
                )
                .add_extension(
                    x509.UnrecognizedExtension(OID_ISSUER_V1, claims["iss"].encode()), False
                )
                .add_extension(
                    x509.UnrecognizedExtension(OID_ISSUER_V2, _der_utf8(claims["iss"])), False
                )
                .add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, sct_list), False)
                .sign(self.fulcio_key, hashes.SHA384())
            )

        # The SCT signs the precertificate's TBS, which is the certificate without the SCT
        # extension: build once with a placeholder to get it, then again with the real SCT.
        tbs = build(self._sct_list(b"\x00")).tbs_precertificate_bytes
        return [build(self._sct_list(self._sct(tbs))), self.fulcio_intermediate, self.fulcio_root]

    def _sct(self, tbs_precertificate: bytes) -> bytes:
        """An RFC 6962 v1 SCT over a precertificate entry, signed by the CT log key."""
        timestamp = int(time.time() * 1000)
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp, 1)  # v1, certificate_timestamp, precert_entry
            + _key_id(self.fulcio_key)  # issuer key hash
            + len(tbs_precertificate).to_bytes(3, "big")
            + tbs_precertificate
            + struct.pack("!H", 0)  # no extensions
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (
            struct.pack("!B", 0)
            + _key_id(self.ct_key)
            + struct.pack("!QH", timestamp, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )

    @staticmethod
    def _sct_list(sct: bytes) -> bytes:
        """The SCT list extension value: a DER OCTET STRING around a TLS-encoded list."""
        inner = struct.pack("!H", len(sct)) + sct
        tls = struct.pack("!H", len(inner)) + inner
        size = len(tls)
        length = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
        return b"\x04" + length + tls

    # ------------------------------------------------------------ Rekor v1

    def log_v1(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Record a ``dsse`` entry; answer as Rekor v1 does (SET, proof, checkpoint)."""
        if proposed.get("kind") != "dsse":
            raise ValueError(f"this log takes dsse entries, not {proposed.get('kind')!r}")
        content = proposed["spec"]["proposedContent"]
        envelope = json.loads(content["envelope"])
        payload = base64.b64decode(envelope["payload"])
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(content["envelope"].encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [
                        {"signature": s["sig"], "verifier": content["verifiers"][0]}
                        for s in envelope["signatures"]
                    ],
                },
            }
        )
        log = self.rekor_v1
        index, leaves = log.append(body)
        root = _root(leaves)
        log_id = _key_id(log.key).hex()
        integrated = int(time.time())
        promise = rfc8785.dumps(
            {"body": _b64(body), "integratedTime": integrated, "logID": log_id, "logIndex": index}
        )
        entry = {
            "body": _b64(body),
            "integratedTime": integrated,
            "logID": log_id,
            "logIndex": index,
            "verification": {
                "signedEntryTimestamp": _b64(log.sign(promise)),
                "inclusionProof": {
                    "logIndex": index,
                    "treeSize": len(leaves),
                    "rootHash": root.hex(),
                    "hashes": [h.hex() for h in _inclusion_path(index, leaves)],
                    "checkpoint": log.checkpoint(len(leaves), root),
                },
            },
        }
        return {hashlib.sha256(body).hexdigest(): entry}

    # ------------------------------------------------------------ Rekor v2

    def log_v2(self, request: dict[str, Any]) -> dict[str, Any]:
        """Record a ``hashedrekord`` 0.0.2 entry; answer with the bundle's log entry."""
        rekord = request.get("hashedRekordRequestV002")
        if rekord is None:
            raise ValueError("this log takes hashedRekordRequestV002 requests only")
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.2",
                "kind": "hashedrekord",
                "spec": {
                    "hashedRekordV002": {
                        "data": {"algorithm": "SHA2_256", "digest": rekord["digest"]},
                        "signature": rekord["signature"],
                    }
                },
            }
        )
        log = self.rekor_v2
        index, leaves = log.append(body)
        root = _root(leaves)
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(_key_id(log.key))},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(len(leaves)),
                "hashes": [_b64(h) for h in _inclusion_path(index, leaves)],
                "checkpoint": {"envelope": log.checkpoint(len(leaves), root)},
            },
            "canonicalizedBody": _b64(body),
        }

    # ------------------------------------------------------------ RFC 3161 TSA

    def timestamp(self, request_der: bytes) -> bytes:
        """A granted TimeStampResp: a CMS SignedData over a TSTInfo, signed by the TSA key."""
        request = tsp.TimeStampReq.load(request_der)
        cert_der = _der(self.tsa_cert)
        tsa_cert = asn1_x509.Certificate.load(cert_der)
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.57264.99.1",
                "message_imprint": request["message_imprint"],
                "serial_number": x509.random_serial_number(),
                "gen_time": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
                "nonce": request["nonce"].native,
            }
        ).dump()
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(info).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(cert_der).digest()}]}],
                },
            ]
        )
        # The signature covers the attributes as a SET OF, not as the [0] IMPLICIT field.
        signature = self.tsa_key.sign(b"\x31" + signed_attrs.dump()[1:], ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": tsa_cert.issuer, "serial_number": tsa_cert.serial_number}
                        )
                    }
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(info),
                },
                "certificates": [tsa_cert] if request["cert_req"].native else [],
                "signer_infos": [signer],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": token}
        ).dump()

    # ------------------------------------------------------------ trust material

    def trusted_root(self) -> dict[str, Any]:
        """Both logs, the CA, the CT log and the TSA, as a ``trusted_root.json``."""

        def public_key(key: PrivateKey, details: str) -> dict[str, Any]:
            return {"rawBytes": _b64(_spki(key)), "keyDetails": details, "validFor": _VALID_FOR}

        def log(key: PrivateKey, details: str) -> dict[str, Any]:
            return {
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": public_key(key, details),
                "logId": {"keyId": _b64(_key_id(key))},
            }

        def authority(name: str, uri: str, chain: list[x509.Certificate]) -> dict[str, Any]:
            return {
                "subject": {"organization": "sigstore.local", "commonName": name},
                "uri": uri,
                "certChain": {"certificates": [{"rawBytes": _b64(_der(c))} for c in chain]},
                "validFor": _VALID_FOR,
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [
                log(self.rekor_v1.key, "PKIX_ECDSA_P256_SHA_256"),
                log(self.rekor_v2.key, "PKIX_ED25519"),
            ],
            "certificateAuthorities": [
                authority("local-fulcio", self.url, [self.fulcio_intermediate, self.fulcio_root])
            ],
            "ctlogs": [log(self.ct_key, "PKIX_ECDSA_P256_SHA_256")],
            "timestampAuthorities": [
                authority("local-tsa", self.url + TIMESTAMP_PATH, [self.tsa_cert, self.tsa_root])
            ],
        }

    def client_trust_config(self, rekor_version: int = 1) -> dict[str, Any]:
        """Trusted root plus signing config; v2 logs to Rekor v2 and timestamps with the TSA."""

        def service(url: str, version: int = 1) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": version,
                "validFor": _VALID_FOR,
                "operator": "sigstore.local",
            }

        signing_config = {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(self.url)],
            "oidcUrls": [service(self.url)],
            "rekorTlogUrls": [service(self.url, rekor_version)],
            "tsaUrls": [service(self.url + TIMESTAMP_PATH)] if rekor_version == 2 else [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        }
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": signing_config,
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sigstore: LocalSigstore


class _Handler(BaseHTTPRequestHandler):
    """Routes the handful of endpoints the ``sigstore`` client calls."""

    server: _Server

    def log_message(self, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode())

    def do_GET(self) -> None:
        # sigstore's Issuer (model-signing builds one even with a given token) reads this.
        if self.path == "/.well-known/openid-configuration":
            base = self.server.sigstore.url
            self._send_json(
                200,
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/auth",
                    "token_endpoint": f"{base}/token",
                    "jwks_uri": f"{base}/jwks",
                },
            )
        else:
            self._send_json(404, {"message": "not found"})

    def do_POST(self) -> None:
        sigstore = self.server.sigstore
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if self.path == TIMESTAMP_PATH:
                self._send(200, sigstore.timestamp(raw), "application/timestamp-reply")
            elif self.path == "/api/v2/signingCert":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                csr = base64.b64decode(json.loads(raw)["certificateSigningRequest"])
                chain = sigstore.issue_chain(csr, token)
                pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in chain]
                self._send_json(
                    201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}}
                )
            elif self.path == "/api/v1/log/entries":
                self._send_json(201, sigstore.log_v1(json.loads(raw)))
            elif self.path == "/api/v2/log/entries":
                self._send_json(201, sigstore.log_v2(json.loads(raw)))
            else:
                self._send_json(404, {"message": "not found"})
        except TokenRefused as e:
            self._send_json(401, {"message": str(e)})
        except (ValueError, KeyError, TypeError) as e:
            self._send_json(400, {"message": f"{type(e).__name__}: {e}"})
