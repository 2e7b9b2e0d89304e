"""Rekor v1 log-entry checks for bundles signed with a managed (plain) key.

Decision: keep these hand-written checks (recorded here; revisit as below).

Why. sigstore-python verifies log entries only for keyless bundles: its
``Verifier`` needs the bundle's signing certificate and refuses a bundle that
has only a public-key hint ("expected certificate in bundle"), and it has no
way to verify with a caller's key (sigstore/sigstore-python#1244, open). Yet
key-signed bundles do carry log entries: ``cosign sign-blob --key`` uploads to
Rekor by default and writes the entry into the bundle, and the conformance
suite's ``managed-key-*`` cases are such bundles, to be verified with a key
*and* a trusted root (sigstore/sigstore-conformance#301). Accepting an entry
unchecked would let a bundle claim a log record it does not have; refusing
every bundle with entries would refuse what cosign writes.

What is checked, for every entry of a key-signed bundle (``_keys`` calls
:func:`verify_log_entry`; a v0.2+ bundle's entry must have a proof):

* the entry is hashedrekord/0.0.1 and its body records this very signature,
  this key and the artifact's SHA-256 (for DSSE, of the envelope's PAE);
* it comes from a log in the trusted root, and its integrated time (entries
  are refused with a negative time or index) lies in that log key's validity;
* its signed entry timestamp, if present, verifies with that log key over the
  canonical JSON of body, time, log id and index;
* its inclusion proof, if present, leads from the body's leaf hash to the
  proof's root (RFC 9162 2.1.3.2), and a checkpoint signed by that same log
  key names that tree size and root;
* at least one of SET and proof is present.

What is deliberately not done: Rekor v2 entries and the dsse / intoto kinds
(refused as unsupported, not half-checked); RFC 3161 timestamps in key-signed
bundles; the integrated time used as a signing time (a managed key has no
validity period to hold it to, and without a SET nothing signs that time);
the checkpoint's origin line (the log key binds it), witness cosignatures,
consistency proofs between checkpoints and any online lookup. A key-signed
bundle without entries is verified by its key alone (this module is not used).

When to drop it: once sigstore-python verifies managed-key bundles with a
caller's key and a trusted root (the conformance suite's managed-key cases
pass through its ``Verifier``, and the test that expects its refusal,
``test_managed_key_bundle_refused_by_the_sigstore_verifier``, fails), replace
:func:`verify_log_entry` by that and delete this module. The tests in
``tests/test_rekor_checks.py`` and the managed-key tests of
``tests/test_sigstore_conformance.py`` say what the replacement must refuse.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provenance._internal.jsonshape import array, obj, opt_obj, string
from provenance._internal.timefmt import parse_time
from provenance.errors import VerificationError

_E = VerificationError


def _int(value: object, what: str) -> int:
    """An integer field (Rekor writes them as numbers or decimal strings)."""
    if isinstance(value, bool):
        raise VerificationError(f"log entry {what} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 40:
        return int(value)
    raise VerificationError(f"log entry {what} is not an integer")


def _b64(value: object, what: str) -> bytes:
    if isinstance(value, (str, bytes)):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            pass
    raise VerificationError(f"log entry {what} is not valid base64")


@dataclass(frozen=True)
class _LogKey:
    key: PublicKeyTypes
    start: datetime.datetime
    end: datetime.datetime | None


def _instant(value: str) -> datetime.datetime:
    return parse_time(value)


def log_keys(trusted_root: Mapping[str, Any]) -> dict[bytes, _LogKey]:
    """Transparency-log keys of a trusted root, by log id, with their validity.

    A key without a validity start is unusable (the trusted-root format
    requires one), so it is left out rather than trusted forever.
    """
    keys: dict[bytes, _LogKey] = {}
    tlogs = trusted_root.get("tlogs")
    for tlog in tlogs if isinstance(tlogs, list) else []:
        try:
            tlog = obj(tlog, "tlog", _E)
            log_id = _b64(obj(tlog.get("logId"), "logId", _E).get("keyId"), "log id")
            public = obj(tlog.get("publicKey"), "publicKey", _E)
            valid = opt_obj(public.get("validFor"), "validFor", _E)
            start = _instant(string(valid.get("start"), "validFor.start", _E))
            end_text = valid.get("end")
            end = _instant(string(end_text, "validFor.end", _E)) if end_text else None
            der = _b64(public.get("rawBytes"), "log key")
            keys[log_id] = _LogKey(serialization.load_der_public_key(der), start, end)
        except (VerificationError, ValueError):
            continue  # an unusable key is not trusted
    return keys


def _verify_with(key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: recompute the tree root from an audit path."""
    if not 0 <= index < size:
        raise VerificationError("log entry inclusion proof has an index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("log entry inclusion proof is too long")
        if fn % 2 == 1 or fn == sn:
            r = _node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("log entry inclusion proof is too short")
    return r


def _check_checkpoint(
    note: str, key: PublicKeyTypes, log_id: bytes, size: int, root: bytes
) -> None:
    """A signed note: origin, size, base64 root; then signature lines from the log."""
    body, sep, signatures = note.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) < 3:
        raise VerificationError("log entry checkpoint is malformed")
    if lines[1] != str(size) or lines[2] != base64.b64encode(root).decode():
        raise VerificationError("log entry checkpoint does not match its inclusion proof")
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        try:
            raw = base64.b64decode(parts[2])
        except ValueError:
            continue
        if raw[:4] == log_id[:4] and _verify_with(key, raw[4:], (body + "\n").encode()):
            return
    raise VerificationError("log entry checkpoint is not signed by the log")


def verify_log_entry(
    entry: Mapping[str, Any],
    *,
    trusted_root: Mapping[str, Any],
    signature: bytes,
    public_key_pem: bytes,
    artifact_digest: bytes,
) -> None:
    """Check one hashedrekord/0.0.1 entry against the bundle and the trusted root."""
    import rfc8785

    entry = obj(entry, "log entry", _E)
    kind = opt_obj(entry.get("kindVersion"), "log entry kindVersion", _E)
    if (kind.get("kind"), kind.get("version")) != ("hashedrekord", "0.0.1"):
        raise VerificationError(
            f"unsupported log entry kind {kind.get('kind')!s:.40}/{kind.get('version')!s:.40}"
        )
    body_b64 = string(entry.get("canonicalizedBody"), "log entry body", _E)
    body_raw = _b64(body_b64, "body")
    try:
        body = obj(json.loads(body_raw), "log entry body", _E)
        spec = obj(body.get("spec"), "log entry spec", _E)
        sig_spec = obj(spec.get("signature"), "log entry signature", _E)
        logged_sig = _b64(sig_spec.get("content"), "signature")
        key_spec = obj(sig_spec.get("publicKey"), "log entry public key", _E)
        logged_key = _b64(key_spec.get("content"), "public key")
        data_spec = obj(spec.get("data"), "log entry data", _E)
        logged_hash = obj(data_spec.get("hash"), "log entry hash", _E)
    except (VerificationError, ValueError, RecursionError):
        raise VerificationError("log entry body is not a hashedrekord record") from None
    if logged_sig != signature:
        raise VerificationError("log entry records a different signature")
    if (
        logged_hash.get("algorithm") != "sha256"
        or logged_hash.get("value") != artifact_digest.hex()
    ):
        raise VerificationError("log entry records a different artifact")
    try:
        logged = serialization.load_pem_public_key(logged_key)
    except (ValueError, TypeError):
        raise VerificationError("log entry records an unreadable key") from None
    if logged != serialization.load_pem_public_key(public_key_pem):
        raise VerificationError("log entry records a different key")

    log_id = _b64(opt_obj(entry.get("logId"), "log entry logId", _E).get("keyId"), "log id")
    log_key = log_keys(trusted_root).get(log_id)
    if log_key is None:
        raise VerificationError("log entry comes from a log the trusted root does not know")
    key = log_key.key
    if entry.get("logIndex") is None or entry.get("integratedTime") is None:
        raise VerificationError("log entry lacks its index or time")
    log_index = _int(entry.get("logIndex"), "index")
    integrated = _int(entry.get("integratedTime"), "time")
    if log_index < 0 or integrated < 0:
        raise VerificationError("log entry has a negative index or time")
    try:
        when = datetime.datetime.fromtimestamp(integrated, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise VerificationError("log entry time is out of range") from None
    if when < log_key.start or (log_key.end is not None and when > log_key.end):
        raise VerificationError("log entry was made outside its log key's validity period")

    promise = opt_obj(entry.get("inclusionPromise") or None, "inclusion promise", _E)
    proof = opt_obj(entry.get("inclusionProof") or None, "inclusion proof", _E)
    if not promise and not proof:
        raise VerificationError("log entry has neither an inclusion promise nor a proof")
    if promise:
        payload = rfc8785.dumps(
            {
                "body": body_b64,
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": log_index,
            }
        )
        set_sig = _b64(promise.get("signedEntryTimestamp"), "signed entry timestamp")
        if not _verify_with(key, set_sig, payload):
            raise VerificationError("log entry's signed entry timestamp does not verify")
    if proof:
        try:
            index = _int(proof.get("logIndex"), "proof index")
            size = _int(proof.get("treeSize"), "proof tree size")
            hashes_ = [_b64(h, "proof hash") for h in array(proof.get("hashes", []), "hashes", _E)]
            root = _b64(proof.get("rootHash"), "root hash")
            checkpoint = obj(proof.get("checkpoint"), "checkpoint", _E)
            note = string(checkpoint.get("envelope"), "checkpoint", _E)
        except VerificationError:
            raise VerificationError("log entry inclusion proof is incomplete") from None
        if _root_from_inclusion_proof(index, size, _leaf_hash(body_raw), hashes_) != root:
            raise VerificationError("log entry inclusion proof does not lead to its root hash")
        _check_checkpoint(note, key, log_id, size, root)
