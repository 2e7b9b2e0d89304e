"""The Rekor v1 checks of ``provenance.signing._rekor``, each pinned by a real bundle.

``tests/test_sigstore_conformance.py`` already refuses tampered copies of the conformance
suite's ``managed-key-happy-path`` bundle (a P-256 key, a hashedrekord entry in
public-good Rekor, with SET, inclusion proof and checkpoint). Most of those tampers break
several checks at once, so some checks could be deleted without any test noticing. Each test
here changes the real bundle, key or trusted root so that exactly one check stands between
it and acceptance, and asserts that check's reason: deleting the check makes the test fail.

No mocks and no made-up log data: the entry, its SET, proof and checkpoint are Rekor's own.
Where a test needs a key other than the signer's, it is recovered from the bundle's real
ECDSA signature (public-key recovery, SEC 1 section 4.1.6), so that signature verifies under
it; where it needs a second valid signature, it is the real one's ECDSA twin (r, n - s).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest
from conftest import FIXTURES, needs_fixtures
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from provenance.errors import ProvenanceError, VerificationError
from provenance.signing._keys import KeyVerifier

if not FIXTURES.is_dir():
    pytest.skip(needs_fixtures.mark.kwargs["reason"], allow_module_level=True)

BUNDLE_VERIFY = FIXTURES / "sigstore-conformance" / "bundle-verify"
MANAGED = BUNDLE_VERIFY / "managed-key-happy-path"
ARTIFACT = (BUNDLE_VERIFY / "a.txt").read_bytes()
PRODUCTION_ROOT = FIXTURES / "trust-roots" / "production" / "trusted_root.json"
STAGING_ROOT = FIXTURES / "trust-roots" / "staging" / "trusted_root.json"


# ---------------------------------------------------------------- helpers


def bundle() -> dict[str, Any]:
    return json.loads((MANAGED / "bundle.sigstore.json").read_text())


def entry(b: dict[str, Any]) -> dict[str, Any]:
    return b["verificationMaterial"]["tlogEntries"][0]


def signer_key() -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key((MANAGED / "key.pub").read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def production_root() -> dict[str, Any]:
    return json.loads(PRODUCTION_ROOT.read_text())


def verify(
    b: dict[str, Any],
    *,
    key: ec.EllipticCurvePublicKey | None = None,
    artifact: bytes = ARTIFACT,
    root: dict[str, Any] | None = None,
) -> None:
    KeyVerifier([key or signer_key()]).verify_artifact(
        artifact, b, trusted_root=production_root() if root is None else root
    )


def refused(b: dict[str, Any], reason: str, **kwargs: Any) -> None:
    """The bundle is refused with a VerificationError for exactly ``reason``."""
    with pytest.raises(ProvenanceError) as err:
        verify(b, **kwargs)
    assert type(err.value) is VerificationError, repr(err.value)
    assert str(err.value) == reason


def without_set(b: dict[str, Any]) -> dict[str, Any]:
    """The entry authenticated by its inclusion proof and checkpoint alone (v0.2+ bundles
    need the proof, the SET is optional)."""
    del entry(b)["inclusionPromise"]
    return b


def without_key_hint(b: dict[str, Any]) -> dict[str, Any]:
    """No key hint, so the verifier tries its key rather than refusing it by the hint."""
    del b["verificationMaterial"]["publicKey"]
    return b


# P-256 (SEC 2 / FIPS 186-4) and just enough affine point arithmetic for key recovery.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
Point = tuple[int, int] | None


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % _P == 0:
        return None
    if p == q:
        slope = (3 * p[0] * p[0] + _A) * pow(2 * p[1], -1, _P)
    else:
        slope = (q[1] - p[1]) * pow(q[0] - p[0], -1, _P)
    x = (slope * slope - p[0] - q[0]) % _P
    return x, (slope * (p[0] - x) - p[1]) % _P


def _mul(k: int, p: Point) -> Point:
    out: Point = None
    while k:
        if k & 1:
            out = _add(out, p)
        p = _add(p, p)
        k >>= 1
    return out


def recovered_keys(signature: bytes, digest: bytes) -> list[ec.EllipticCurvePublicKey]:
    """Both P-256 keys under which the DER ``signature`` verifies over ``digest``.

    Q = r^-1 (s R - e G), for each of the two points R with x(R) = r (SEC 1, 4.1.6).
    """
    r, s = decode_dss_signature(signature)
    e = int.from_bytes(digest, "big")
    y = pow((r**3 + _A * r + _B) % _P, (_P + 1) // 4, _P)  # p = 3 mod 4
    keys = []
    for ry in (y, _P - y):
        sr = _mul(s, (r, ry))
        minus_eg = _mul(_N - e % _N, _G)
        q = _mul(pow(r, -1, _N), _add(sr, minus_eg))
        assert q is not None
        keys.append(ec.EllipticCurvePublicNumbers(q[0], q[1], ec.SECP256R1()).public_key())
    return keys


def verifies(key: ec.EllipticCurvePublicKey, signature: bytes, digest: bytes) -> bool:
    try:
        key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def message_signature(b: dict[str, Any]) -> bytes:
    return base64.b64decode(b["messageSignature"]["signature"])


def same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


# ---------------------------------------------------------------- control


def test_control_the_bundle_verifies():
    """The untouched bundle verifies, with its SET and without it: every refusal below is
    the tamper's doing, including those that drop the SET to reach the checkpoint check."""
    verify(bundle())
    verify(without_set(bundle()))


def test_control_key_recovery_finds_the_signer():
    """The recovery the body tests rely on is right: one of the two keys it finds for the
    bundle's signature over a.txt is the signer's key from key.pub."""
    digest = hashlib.sha256(ARTIFACT).digest()
    keys = recovered_keys(message_signature(bundle()), digest)
    assert [same_key(k, signer_key()) for k in keys].count(True) == 1
    assert all(verifies(k, message_signature(bundle()), digest) for k in keys)


# ---------------------------------------------------------------- the entry's body


def test_body_records_a_different_signature():
    """Pins ``logged_sig != signature``. ECDSA signatures are malleable: (r, n - s) is a
    second valid signature by the same key over the same artifact, one the log never saw.
    With it in the bundle, the message signature, the logged key and digest, SET, proof
    and checkpoint all still hold; only comparing the logged signature bytes refuses it."""
    b = bundle()
    r, s = decode_dss_signature(message_signature(b))
    twin = encode_dss_signature(r, _N - s)
    assert verifies(signer_key(), twin, hashlib.sha256(ARTIFACT).digest())
    b["messageSignature"]["signature"] = base64.b64encode(twin).decode()
    refused(b, "log entry records a different signature")


def test_body_records_a_different_artifact():
    """Pins the logged-digest comparison. For another artifact there is a key under which
    the bundle's very signature verifies over it (recovered from the signature). Verifying
    that artifact with that key, the logged signature matches and SET, proof and checkpoint
    hold, but the entry logged a.txt's digest: the entry is not about this artifact. (The
    key comparison would refuse it too, but only after this check, whose reason is asserted.)"""
    other = ARTIFACT + b"\n"
    digest = hashlib.sha256(other).digest()
    b = without_key_hint(bundle())
    del b["messageSignature"]["messageDigest"]
    key = recovered_keys(message_signature(b), digest)[0]
    assert verifies(key, message_signature(b), digest)
    refused(b, "log entry records a different artifact", key=key, artifact=other)


def test_body_records_a_different_key():
    """Pins the logged-key comparison. The signature over a.txt verifies under a second key
    besides the signer's (the other recovered one). Verifying with that key, signature and
    digest match the entry and SET, proof and checkpoint hold; only the logged key shows
    that the log recorded somebody else's key, so the entry vouches for nothing about it."""
    b = without_key_hint(bundle())
    digest = hashlib.sha256(ARTIFACT).digest()
    (key,) = [
        k for k in recovered_keys(message_signature(b), digest) if not same_key(k, signer_key())
    ]
    assert verifies(key, message_signature(b), digest)
    refused(b, "log entry records a different key", key=key)


# ---------------------------------------------------------------- what the log vouches with


def test_entry_with_neither_promise_nor_proof():
    """Pins the "neither an inclusion promise nor a proof" check. A v0.1 bundle may lack the
    proof (only v0.2+ must carry one), so with the SET also gone nothing from the log
    authenticates the entry: its body is whatever the bundle's maker wrote."""
    b = without_set(bundle())
    b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    del entry(b)["inclusionProof"]
    refused(b, "log entry has neither an inclusion promise nor a proof")


def test_entry_with_a_negative_log_index():
    """Pins the negative index/time check. Without a SET the entry's own logIndex is signed
    by nothing (the proof has its own index), so only this check refuses a negative one, as
    the conformance case bundle-negative-log-index_fail requires of keyless bundles."""
    b = without_set(bundle())
    entry(b)["logIndex"] = "-1"
    refused(b, "log entry has a negative index or time")


def test_checkpoint_for_another_tree_than_the_proof():
    """Pins the checkpoint-matches-proof comparison. An inclusion proof in a one-leaf tree
    of the entry alone needs no log at all (no hashes, root = the leaf's hash); the real
    checkpoint beside it is genuinely signed but for Rekor's tree. Unless the checkpoint's
    size and root are those the proof leads to, such a proof would pass (the SET is left
    intact and valid, so it is this check alone that refuses)."""
    b = bundle()
    body = base64.b64decode(entry(b)["canonicalizedBody"])
    leaf = hashlib.sha256(b"\x00" + body).digest()
    proof = entry(b)["inclusionProof"]
    proof.update(logIndex="0", treeSize="1", hashes=[], rootHash=base64.b64encode(leaf).decode())
    refused(b, "log entry checkpoint does not match its inclusion proof")


def test_checkpoint_signed_by_another_key_than_the_entrys_log():
    """Pins that the checkpoint is verified with the key of the entry's own log, not with
    any key in the trusted root. The root here names staging Rekor's key for the entry's
    log id and lists the real production key under another log id. The checkpoint is
    genuinely signed, by a trusted key, but not by the log the entry claims; without a SET
    the checkpoint is all that authenticates the entry, so it must be refused."""
    root = production_root()
    staging = json.loads(STAGING_ROOT.read_text())
    log_id = entry(bundle())["logId"]["keyId"]
    (ours,) = [t for t in root["tlogs"] if t["logId"]["keyId"] == log_id]
    (other,) = [t for t in staging["tlogs"] if t["baseUrl"] == "https://rekor.sigstage.dev"]
    moved = copy.deepcopy(ours)
    moved["logId"] = other["logId"]
    ours["publicKey"] = {**other["publicKey"], "validFor": ours["publicKey"]["validFor"]}
    root["tlogs"].append(moved)
    refused(without_set(bundle()), "log entry checkpoint is not signed by the log", root=root)
