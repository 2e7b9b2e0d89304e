"""What ``model-signing`` 1.1.1 can verify of what provenance signs.

Measured, not assumed: ``tests/test_interop.py`` signs every combination
with provenance and verifies it with model-signing's API and CLI. Its API
guesses the hashing settings from the signature and handles files or shards
with sha256 or blake2b, and files with blake3; its CLI always re-hashes as
files + sha256; neither knows sha384, sha512, blake3 shards or Ed25519 keys.
A signer who needs both tools to verify should hear so at signing time.
"""

from __future__ import annotations

from provenance.manifest import Serialization

__all__ = ["model_signing_warnings"]

_MS_HASHES = {"sha256", "blake2b", "blake3"}


def model_signing_warnings(serialization: Serialization, key_type: str | None) -> list[str]:
    """Why ``model-signing`` 1.1.1 would fail to verify such a signature (empty: it will)."""
    out = []
    if key_type == "Ed25519":
        out.append("model-signing cannot verify Ed25519 signatures (use an ECDSA key)")
    h = serialization.hash_type
    if h not in _MS_HASHES or (h == "blake3" and serialization.method == "shards"):
        out.append(f"model-signing cannot verify {h} {serialization.method} signatures")
    elif h != "sha256" or serialization.method != "files":
        out.append(
            "model-signing's CLI re-hashes as files + sha256, so only its Python API "
            f"verifies {h} {serialization.method} signatures"
        )
    return out
