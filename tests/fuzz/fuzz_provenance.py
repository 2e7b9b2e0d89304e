"""Coverage-guided fuzzing of provenance's parsers with atheris, for long local runs.

    pip install atheris
    python tests/fuzz/fuzz_provenance.py TARGET [libFuzzer options] [CORPUS_DIR ...]

TARGET is one of ``bundle``, ``statement``, ``names``, ``attestations``,
``chain``. Each feeds the fuzzer's bytes to one parser and treats anything
but a :class:`~provenance.errors.ProvenanceError` as a crash, the property
``tests/test_fuzz.py`` checks in CI with a fixed budget. Crashes already
reported against modules that suite does not fix (its ``KNOWN_ELSEWHERE``)
are tolerated unless ``PROVENANCE_FUZZ_STRICT=1``.

Seeds are the real signatures in ``../shared/fixtures`` (next to the project
root), read where they are at start-up and handed over with
``-seed_inputs=``; nothing is copied. Unless a corpus folder is given, new
inputs go to a temporary one, printed at start; crash files go to the
corpus folder too (``-artifact_prefix``). See ``tests/fuzz/README.md``.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
FIXTURES = PROJECT.parent / "shared" / "fixtures"
sys.path[:0] = [str(PROJECT), str(HERE.parent)]

with atheris.instrument_imports(include=["provenance"]):
    from provenance.attest import _store, verify_attestations
    from provenance.bundle import Bundle
    from provenance.errors import ProvenanceError
    from provenance.intoto import (
        LEGACY_PREDICATE_TYPE,
        OMS_PREDICATE_TYPE,
        PREDICATE_TYPES,
        Statement,
    )
    from provenance.manifest import Manifest, _all_plain, check_name
    from provenance.signing import CertificateVerifier, KeySigner, KeyVerifier, describe_bundle
    from provenance.signing._certs import CertificateSigner

from cryptography import x509  # noqa: E402 (after the instrumented imports)
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from test_fuzz import _known_elsewhere  # noqa: E402 (the same tolerance as the CI suite)

# ---------------------------------------------------------------- fixed material

_KEY = ec.generate_private_key(ec.SECP256R1())
_KEY_VERIFIER = KeyVerifier([_KEY.public_key()])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key, ca: bool):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


_ROOT_KEY, _INT_KEY = (
    ec.generate_private_key(ec.SECP256R1()),
    ec.generate_private_key(ec.SECP256R1()),
)
_ROOT = _cert("Fuzz Root", _ROOT_KEY, "Fuzz Root", _ROOT_KEY, True)
_INTER = _cert("Fuzz Intermediate", _INT_KEY, "Fuzz Root", _ROOT_KEY, True)
_LEAF = _cert("Fuzz Leaf", _KEY, "Fuzz Intermediate", _INT_KEY, False)
_CHAIN_BUNDLE = CertificateSigner(KeySigner(_KEY), _LEAF, (_INTER,)).sign(b"{}")
_CERT_VERIFIER = CertificateVerifier([_ROOT])
_DER = [c.public_bytes(serialization.Encoding.DER) for c in (_LEAF, _INTER, _ROOT)]

_WORK = Path(tempfile.mkdtemp(prefix="provenance-fuzz-"))
(_WORK / "model").mkdir()
(_WORK / "model" / "weights.bin").write_bytes(b"weights")


# ---------------------------------------------------------------- targets


def _guard(call: Callable[[], object]) -> object:
    """Only a ProvenanceError is an answer; anything else crashes the run."""
    try:
        return call()
    except ProvenanceError as e:
        return e
    except Exception as e:
        if _known_elsewhere(e):
            return e
        raise


def bundle(data: bytes) -> None:
    parsed = _guard(lambda: Bundle.from_bytes(data))
    if isinstance(parsed, Bundle):
        _guard(lambda: describe_bundle(parsed))
        verifier = _CERT_VERIFIER if parsed.kind == "x509_chain" else _KEY_VERIFIER
        _guard(lambda: verifier.verify(parsed))


def statement(data: bytes) -> None:
    def read() -> None:
        stmt = Statement.parse(data)
        if stmt.predicate_type in (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE):
            manifest = Manifest.from_statement(stmt)
            for r in manifest.resources:  # invariant 4: never a name that escapes
                check_name(r.path)
        else:
            kind = PREDICATE_TYPES.get(stmt.predicate_type)
            if kind is not None and kind.parser is not None:
                kind.parse(stmt.predicate)

    _guard(read)


def names(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    listed = [
        fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12)) for _ in range(fdp.ConsumeIntInRange(0, 6))
    ]

    def plain(name: str) -> bool:
        try:
            check_name(name)
        except ProvenanceError:
            return False
        return True

    if _all_plain(listed) != all(plain(n) for n in listed):
        raise AssertionError(f"_all_plain and check_name disagree on {listed!r}")


def attestations(data: bytes) -> None:
    path = _WORK / "model.intoto.jsonl"
    path.write_bytes(data)
    lines = _store.read(path)  # a regular file under the cap: never raises
    for line in lines:
        assert (line.bundle is None) != (line.error is None)
    report = verify_attestations(
        _WORK / "model", _KEY_VERIFIER, "00" * 32, attestations_path=path, rehash=False
    )
    assert len(report.checks) == len(lines)
    report.to_json()


def chain(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    ders = []
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        how = fdp.ConsumeIntInRange(0, 2)
        if how == 2:  # the fuzzer's own bytes
            ders.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048)))
            continue
        der = bytearray(_DER[fdp.ConsumeIntInRange(0, len(_DER) - 1)])
        for _ in range(fdp.ConsumeIntInRange(0, 4) if how == 1 else 0):
            der[fdp.ConsumeIntInRange(0, len(der) - 1)] = fdp.ConsumeInt(1) & 0xFF
        ders.append(bytes(der))
    doc = json.loads(_CHAIN_BUNDLE.to_bytes())
    doc["verificationMaterial"]["x509CertificateChain"]["certificates"] = [
        {"rawBytes": base64.b64encode(d).decode()} for d in ders
    ]
    blob = json.dumps(doc).encode()
    parsed = _guard(lambda: Bundle.from_bytes(blob))
    if isinstance(parsed, Bundle):
        _guard(lambda: describe_bundle(parsed))
        _guard(lambda: _CERT_VERIFIER.verify(parsed))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "bundle": bundle,
    "statement": statement,
    "names": names,
    "attestations": attestations,
    "chain": chain,
}


# ---------------------------------------------------------------- seeds


def _seed_files(target: str) -> list[Path]:
    """Real inputs for ``target`` from the shared fixtures, where they lie."""
    if not FIXTURES.is_dir() or target == "names":
        return []
    found = sorted(FIXTURES.glob("oms-golden/*/model.sig"))
    found += sorted(FIXTURES.glob("sigstore-python-assets/*.sigstore*"))
    found += sorted(FIXTURES.glob("sigstore-conformance/bundle-verify/*/bundle.sigstore.json"))
    if target == "chain":
        found = sorted(FIXTURES.glob("oms-golden/keys/certificate/*-cert.pem"))
    return found


def _statement_seeds(work: Path) -> list[Path]:
    """The statements inside the fixture signatures, written to the work folder."""
    out = []
    for i, p in enumerate(_seed_files("bundle")):
        try:
            payload = Bundle.from_bytes(p.read_bytes()).envelope.payload
        except ProvenanceError:
            continue
        seed = work / f"seed-{i}.json"
        seed.write_bytes(payload)
        out.append(seed)
    return out


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS ...]")
    target = sys.argv[1]
    args = [sys.argv[0], *sys.argv[2:]]
    corpora = [a for a in args[1:] if not a.startswith("-")]
    if not corpora:
        corpus = Path(tempfile.mkdtemp(prefix=f"provenance-fuzz-{target}-"))
        print(f"corpus and crashes in {corpus}", file=sys.stderr)
        args.append(str(corpus))
        corpora = [str(corpus)]
    replay = all(os.path.isfile(c) for c in corpora)  # crash files given: run just those
    seeds = _statement_seeds(_WORK) if target == "statement" else _seed_files(target)
    if seeds and not replay and not any(a.startswith("-seed_inputs=") for a in args):
        args.append("-seed_inputs=" + ",".join(str(s) for s in seeds))
    if not any(a.startswith("-artifact_prefix=") for a in args):
        folder = corpora[0] if os.path.isdir(corpora[0]) else os.path.dirname(corpora[0]) or "."
        args.append(f"-artifact_prefix={os.path.join(folder, '')}")
    if target == "attestations" and not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=65536")
    atheris.Setup(args, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
