"""Fuzzing: every parser of untrusted input refuses with a ProvenanceError, in bounded time.

Property-based tests (``hypothesis``) over what a stranger can hand the tool:
bundle bytes, the statement inside, manifest names, attestation lines and
certificate chains. Each property is the same promise: only a
:class:`~provenance.errors.ProvenanceError` subclass ever escapes (never a
``TypeError``, ``ValueError``, ``RecursionError`` ...), and a parse-then-verify
entry point answers within a deadline. Inputs start from real signatures
(signed here with a generated key, and the interoperability fixtures in
``../shared/fixtures`` when present) and are mutated structurally and byte by
byte.

The CI budget is fixed and reproducible: every test sets its own
``max_examples`` and ``derandomize=True`` (the whole file runs in well under a
minute). Locally, ``PROVENANCE_FUZZ_EXAMPLES=5000`` runs that many examples per
test, and ``PROVENANCE_FUZZ_RANDOM=1`` draws new ones on each run (hypothesis
prints a ``@reproduce_failure`` blob for anything it finds). For long,
coverage-guided runs, see ``tests/fuzz/README.md`` (atheris).

The resource-bound tests at the end run one hostile file each in a fresh
interpreter and assert its time and peak memory (``ru_maxrss``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, make_model
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provenance
from provenance.attest import EVALUATION_PREDICATE_TYPE, _store, attest, verify_attestations
from provenance.bundle import MAX_BUNDLE_BYTES, Bundle
from provenance.errors import InputError, ProvenanceError
from provenance.intoto import (
    LEGACY_PREDICATE_TYPE,
    MAX_STATEMENT_VALUES,
    PREDICATE_TYPES,
    Statement,
)
from provenance.manifest import Manifest, _all_plain, check_name
from provenance.signing import (
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
    Verified,
    describe_bundle,
)
from provenance.signing._certs import CertificateSigner
from provenance.verification import VerificationReport, check_model

# ---------------------------------------------------------------- budget

_EXAMPLES = os.environ.get("PROVENANCE_FUZZ_EXAMPLES")
_RANDOM = bool(os.environ.get("PROVENANCE_FUZZ_RANDOM"))


def fuzz(examples: int, deadline_ms: int | None = 2000) -> Callable[[Any], Any]:
    """Settings for one property: ``examples`` in CI, reproducible, no database on disk."""
    return settings(
        max_examples=int(_EXAMPLES) if _EXAMPLES else examples,
        derandomize=not _RANDOM,
        database=None,
        deadline=deadline_ms,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


# ---------------------------------------------------------------- material


@dataclasses.dataclass(repr=False)
class World:
    """A signed model and everything signed about it, made once per module."""

    base: Path
    model: Path
    signer: KeySigner
    verifier: KeyVerifier
    bundle: bytes  # the model's signature, as written
    statement: bytes  # the statement it signs
    root: str
    attestation: bytes  # one attestation line (no newline)
    seeds: list[dict[str, Any]]  # bundle JSON to mutate: ours and the fixtures'


def _fixture_bundles() -> list[dict[str, Any]]:
    """Real bundles from other implementations, when the shared fixtures are present."""
    if not FIXTURES.is_dir():
        return []
    paths = sorted(FIXTURES.glob("oms-golden/*/model.sig"))
    paths += sorted(FIXTURES.glob("sigstore-python-assets/*.sigstore*"))
    paths += sorted(FIXTURES.glob("sigstore-conformance/bundle-verify/*/bundle.sigstore.json"))[:20]
    out = []
    for p in paths:
        try:
            doc = json.loads(p.read_bytes())
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("fuzz")
    model = make_model(base / "model")
    signer = KeySigner(ec.generate_private_key(ec.SECP256R1()))
    verifier = KeyVerifier([signer.public_key()])
    signed = provenance.sign(model, signer, signature_path=base / "model.sig")
    bundle = (base / "model.sig").read_bytes()
    predicate = {
        "metrics": [{"name": "accuracy", "value": 0.93}],
        "evaluatedOn": "2025-01-01T00:00:00Z",
    }
    result = attest(
        model,
        EVALUATION_PREDICATE_TYPE,
        predicate,
        signer,
        output=base / "one.intoto.jsonl",
        subject=(signed.manifest.model_name, signed.manifest.root_digest),
    )
    line = result.path.read_bytes().rstrip(b"\n")
    seeds = [json.loads(bundle), json.loads(line), *_fixture_bundles()]
    return World(
        base,
        model,
        signer,
        verifier,
        bundle,
        signed.manifest.statement_bytes(),
        signed.manifest.root_digest,
        line,
        seeds,
    )


# ---------------------------------------------------------------- strategies

#: Strings that have broken parsers before: paths that escape, controls,
#: odd Unicode, numbers in strings, base64 near-misses.
TRICKY = [
    "", ".", "..", "/", "../x", "a/../b", "/etc/passwd", "a//b", "a/", "C:x", "a\\b",
    "a\nb", "a\x00b", "\x1b[31m", "\x7f", "\u202e", "\u2028", "\ud800", "é/模型",
    "a:1:2", "a:²:3", "a:0:0", "a:" + "9" * 30 + ":1", "sha256", "sha256-sharded-1",
    "blake2", "files", "shards", "true", "false", "null", "0", "-1", "1e309", "NaN",
    "AAAA", "AAA", "A===", "-_-_", "=", " ", "\t",
    "https://in-toto.io/Statement/v1",
    "https://model_signing/signature/v1.0",
    LEGACY_PREDICATE_TYPE,
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.in-toto+json",
    *PREDICATE_TYPES,
]  # fmt: skip

#: Keys the parsers look up, so that added members land where they matter.
KEYS = [
    "mediaType", "verificationMaterial", "publicKey", "hint", "rawBytes",
    "x509CertificateChain", "certificates", "certificate", "tlogEntries",
    "dsseEnvelope", "payload", "payloadType", "signatures", "sig", "keyid",
    "_type", "subject", "name", "digest", "predicateType", "predicate",
    "serialization", "method", "hash_type", "allow_symlinks", "shard_size",
    "ignore_paths", "resources", "algorithm", "sha256", "annotations", "path",
    "role", "buildDefinition", "runDetails", "builder", "id", "metrics", "value",
    "evaluatedOn", "datasets", "thresholds", "evaluator", "splits", "records",
]  # fmt: skip

#: Raw JSON tokens no Python value serializes to: numbers past every limit.
RAW_TOKENS = [
    b"1" * 5000,
    b"-" + b"9" * 4301,
    b"1e999999",
    b"-1e-999999",
    b"123456789012345678901234567890",
    b"1.5e300",
    b"-0",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"[" * 3000 + b"]" * 3000,
    b"{}" * 1,
    b'"\\ud800"',
    b'"\\u0000"',
]

_numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64 + 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_texts = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, _texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=10,
)


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON document, the root first."""
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, (*path, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _mutate_string(draw: st.DrawFn, s: str) -> str:
    how = draw(st.sampled_from(["truncate", "insert", "flip", "repeat", "tricky"]))
    if how == "tricky" or not s:
        return draw(st.sampled_from(TRICKY))
    i = draw(st.integers(0, len(s) - 1))
    if how == "truncate":
        return s[:i]
    if how == "insert":
        return s[:i] + draw(st.sampled_from(["..", "/", "\x00", "\n", "=", "-", "é", "\\"])) + s[i:]
    if how == "flip":
        return s[:i] + chr((ord(s[i]) ^ (1 << draw(st.integers(0, 6)))) or 65) + s[i + 1 :]
    return s * draw(st.integers(2, 20))


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any, rounds: int = 3) -> bytes:
    """``doc`` with a few structural mutations, serialized (sometimes with raw tokens)."""
    doc = copy.deepcopy(doc)
    raws: list[bytes] = []
    for _ in range(draw(st.integers(1, rounds))):
        path = draw(st.sampled_from(list(_nodes(doc))))
        node = _get(doc, path)
        op = draw(
            st.sampled_from(
                ["replace", "raw", "delete", "add", "repeat", "string", "number", "wrap"]
            )
        )
        new: Any = node
        if op == "replace":
            new = draw(json_values)
        elif op == "raw":
            raws.append(draw(st.sampled_from(RAW_TOKENS)))
            new = f"@@RAW{len(raws) - 1}@@"
        elif op == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
            continue
        elif op == "add" and isinstance(node, dict):
            new = {**node, draw(st.sampled_from(KEYS)): draw(json_values)}
        elif op == "add" and isinstance(node, list):
            new = [*node, draw(json_values)]
        elif op == "repeat" and isinstance(node, list) and node:
            new = node * draw(st.integers(2, 60))
        elif op == "string" and isinstance(node, str):
            new = _mutate_string(draw, node)
        elif op == "number":
            new = draw(_numbers)
        elif op == "wrap":
            new = draw(st.sampled_from([[node], {"x": node}, [node, node]]))
        else:
            new = draw(json_values)
        if not path:
            doc = new
        else:
            _get(doc, path[:-1])[path[-1]] = new
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode(
        "utf-8", "surrogatepass"
    )
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"'.encode(), raw)
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few byte-level edits: flips, inserts, cuts, repeats."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if op == "flip" and i < len(out):
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            out[i:i] = draw(st.one_of(st.binary(max_size=8), st.sampled_from(RAW_TOKENS)))
        elif op == "delete":
            del out[i : i + draw(st.integers(1, 16))]
        elif op == "truncate":
            del out[i:]
        else:
            out[i:i] = out[i : i + draw(st.integers(1, 32))] * draw(st.integers(1, 8))
    return bytes(out)


#: Crashes this suite found in modules it does not fix, tolerated here so that
#: the properties keep guarding everything else: (exception type, file, the
#: innermost function of ours on the traceback). Each is reported, and has a
#: reproducer below marked ``xfail(strict=True)``: when it is fixed, that test
#: fails until its line here is removed. ``PROVENANCE_FUZZ_STRICT=1`` tolerates none.
#: Crashes found in modules outside the fuzzed parsers, tolerated while open.
#: Empty: every one found so far is fixed (see the regression tests at the end).
KNOWN_ELSEWHERE: list[tuple[Any, str, set[str]]] = []


def _known_elsewhere(e: BaseException) -> bool:
    if os.environ.get("PROVENANCE_FUZZ_STRICT"):
        return False
    ours = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if "/provenance/" in f.filename.replace(os.sep, "/")
    ]
    if not ours:
        return False
    where = ours[-1]
    return any(
        isinstance(e, kind)
        and where.filename.replace(os.sep, "/").endswith(file)
        and where.name in functions
        for kind, file, functions in KNOWN_ELSEWHERE
    )


def _only_provenance_errors(call: Callable[[], Any]) -> Any:
    """Run ``call``; a ProvenanceError is an answer, anything else fails the property."""
    try:
        return call()
    except ProvenanceError as e:
        assert isinstance(e.reason, str) and e.reason, "a refusal carries a reason"
        return e
    except Exception as e:
        if _known_elsewhere(e):
            return e
        raise


def _rewrap(world: World, doc: dict[str, Any], statement: bytes, resign: bool) -> dict[str, Any]:
    """``doc`` (a bundle) carrying ``statement``, signed again by the trusted key or not."""
    doc = copy.deepcopy(doc)
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        return doc
    envelope["payload"] = base64.b64encode(statement).decode()
    if resign:
        fresh = world.signer.sign(statement, "application/vnd.in-toto+json")
        envelope["payloadType"] = fresh.envelope.payload_type
        envelope["signatures"] = [
            {"sig": base64.b64encode(fresh.envelope.signature).decode(), "keyid": ""}
        ]
    return doc


# ---------------------------------------------------------------- bundles


@fuzz(400)
@given(data=st.binary(max_size=512))
def test_bundle_from_arbitrary_bytes(data: bytes):
    result = _only_provenance_errors(lambda: Bundle.from_bytes(data))
    assert isinstance(result, (Bundle, InputError))


@fuzz(500)
@given(data=st.data())
def test_bundle_from_mutated_json(world: World, data: st.DataObject):
    seed = data.draw(st.sampled_from(world.seeds), label="seed")
    blob = data.draw(mutated_json(seed), label="bundle")
    result = _only_provenance_errors(lambda: Bundle.from_bytes(blob))
    assert isinstance(result, (Bundle, InputError))
    if isinstance(result, Bundle):
        # What inspect shows of a bundle nobody verified.
        _only_provenance_errors(lambda: describe_bundle(result))


@fuzz(400)
@given(data=st.data())
def test_bundle_from_mutated_bytes(world: World, data: st.DataObject):
    seed = data.draw(st.sampled_from([world.bundle, world.attestation]), label="seed")
    blob = data.draw(mutated_bytes(seed), label="bundle")
    result = _only_provenance_errors(lambda: Bundle.from_bytes(blob))
    assert isinstance(result, (Bundle, InputError))


@fuzz(150, deadline_ms=5000)
@given(data=st.data())
def test_check_model_on_mutated_signature(world: World, data: st.DataObject, tmp_path_factory):
    """Verification end to end: a report with findings or a refusal, never a crash.

    A third of the time the mutation is inside the statement, and then half the
    time the bundle is signed again with the trusted key: the hostile statement
    reaches the manifest parser and the file checks, as a careless or
    compromised signer's would.
    """
    doc = json.loads(world.bundle)
    where = data.draw(st.sampled_from(["bundle", "statement", "bytes"]), label="where")
    if where == "statement":
        statement = data.draw(mutated_json(json.loads(world.statement)), label="statement")
        blob = json.dumps(_rewrap(world, doc, statement, data.draw(st.booleans()))).encode()
    elif where == "bundle":
        blob = data.draw(mutated_json(doc), label="bundle")
    else:
        blob = data.draw(mutated_bytes(world.bundle), label="bundle")
    sig = tmp_path_factory.mktemp("sig") / "model.sig"
    sig.write_bytes(blob)
    before = sorted(p.name for p in world.model.rglob("*"))
    result = _only_provenance_errors(
        lambda: check_model(world.model, world.verifier, signature_path=sig)
    )
    assert sorted(p.name for p in world.model.rglob("*")) == before
    if isinstance(result, ProvenanceError):
        assert isinstance(result, InputError), f"malformed input is an InputError: {result!r}"
        return
    assert isinstance(result, VerificationReport), result
    for f in result.findings:
        assert f.code and f.message and f.severity in ("error", "warning", "info")
    if result.ok:
        # Nothing but the real signature can vouch for these files.
        assert result.manifest is not None and result.manifest.root_digest == world.root


# ---------------------------------------------------------------- statements


def _statements(world: World) -> list[dict[str, Any]]:
    oms = json.loads(world.statement)
    sharded = copy.deepcopy(oms)
    sharded["predicate"]["serialization"].update(method="shards", shard_size=1000)
    for r in sharded["predicate"]["resources"]:
        r["name"] += ":0:1000"
        r["algorithm"] = "sha256-sharded-1000"
    legacy = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a.txt", "digest": {"sha256": "00" * 32}}],
        "predicateType": LEGACY_PREDICATE_TYPE,
        "predicate": {},
    }
    attested = Bundle.from_bytes(world.attestation).envelope.payload
    slsa = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": world.root}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://ml-provenance.dev/training/v1",
                "externalParameters": {"kind": "training"},
                "resolvedDependencies": [
                    {"name": "data", "digest": {"sha256": "11" * 32}, "annotations": {"role": "x"}}
                ],
            },
            "runDetails": {"builder": {"id": "ci"}, "metadata": {"startedOn": "2025"}},
        },
    }
    dataset = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "d", "digest": {"sha256": "22" * 32}}],
        "predicateType": "https://ml-provenance.dev/dataset/v1",
        "predicate": {"name": "d", "records": 3, "splits": [{"name": "train", "records": 2}]},
    }
    return [oms, sharded, legacy, json.loads(attested), slsa, dataset]


def _read_statement(blob: bytes) -> Any:
    """What a reader does with statement bytes: parse, then its typed predicate."""
    stmt = Statement.parse(blob)
    if stmt.predicate_type in ("https://model_signing/signature/v1.0", LEGACY_PREDICATE_TYPE):
        manifest = Manifest.from_statement(stmt)
        # Invariant 4: whatever a statement says, its names stay inside the model.
        for r in manifest.resources:
            check_name(r.path)
        assert len({r.name for r in manifest.resources}) == len(manifest.resources)
        return manifest
    kind = PREDICATE_TYPES.get(stmt.predicate_type)
    if kind is not None and kind.parser is not None:
        return kind.parse(stmt.predicate)
    return stmt


@fuzz(500)
@given(data=st.data())
def test_statement_and_manifest_from_mutated_json(world: World, data: st.DataObject):
    seed = data.draw(st.sampled_from(_statements(world)), label="seed")
    blob = data.draw(mutated_json(seed, rounds=4), label="statement")
    _only_provenance_errors(lambda: _read_statement(blob))


@fuzz(300)
@given(data=st.data())
def test_statement_from_mutated_bytes(world: World, data: st.DataObject):
    blob = data.draw(mutated_bytes(world.statement), label="statement")
    _only_provenance_errors(lambda: _read_statement(blob))


_hostile_names = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.sampled_from([*list("ab./\\:\n\r\t\x00\x1f\x7f C²"), "é", "\x85"])),
    st.text(max_size=8),
)


@fuzz(400)
@given(names=st.lists(_hostile_names, min_size=1, max_size=6), sharded=st.booleans())
def test_manifest_never_accepts_an_escaping_name(names: list[str], sharded: bool):
    """Consistent, hostile statements (the subject digest matches): names are refused or plain."""
    algorithm = "sha256-sharded-8" if sharded else "sha256"
    resources = [
        {"name": f"{n}:0:8" if sharded else n, "algorithm": algorithm, "digest": f"{i:064x}"}
        for i, n in enumerate(names)
    ]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": root}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "shards" if sharded else "files", "hash_type": "sha256"}
            | ({"shard_size": 8} if sharded else {}),
            "resources": resources,
        },
    }
    blob = json.dumps(statement).encode("utf-8", "surrogatepass")
    result = _only_provenance_errors(lambda: _read_statement(blob))
    plain = all(_slow_says_plain(n) for n in names)
    if isinstance(result, Manifest):
        assert plain, f"accepted {names!r}"


# ---------------------------------------------------------------- manifest names


def _slow_says_plain(name: str) -> bool:
    try:
        check_name(name)
    except InputError:
        return False
    return True


@fuzz(2000, deadline_ms=None)
@given(names=st.lists(_hostile_names, max_size=8))
def test_batched_name_check_agrees_with_check_name(names: list[str]):
    """``_all_plain`` (joined, C-speed) says yes exactly when check_name accepts every name."""
    assert _all_plain(names) == all(_slow_says_plain(n) for n in names), names


# ---------------------------------------------------------------- attestation lines


@st.composite
def attestation_files(draw: st.DrawFn, world: World) -> tuple[bytes, list[bytes]]:
    line = st.one_of(
        st.just(world.attestation),
        mutated_json(json.loads(world.attestation)),
        mutated_bytes(world.attestation),
        st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"")),
        st.sampled_from([b"", b" ", b"\r", b"\t \r", b"{}", b"[]", b"null", b"\xff\xfe"]),
    )
    lines = [x.replace(b"\n", b"") for x in draw(st.lists(line, min_size=1, max_size=6))]
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"])), lines


@fuzz(200, deadline_ms=5000)
@given(data=st.data())
def test_attestation_lines_damaged_are_reported_never_fatal(
    world: World, data: st.DataObject, tmp_path_factory
):
    content, lines = data.draw(attestation_files(world), label="file")
    path = tmp_path_factory.mktemp("att") / "model.intoto.jsonl"
    path.write_bytes(content)
    read = _store.read(path)  # never raises for a regular file under the cap
    numbers = [x.number for x in read]
    assert numbers == sorted(set(numbers))
    expected = [i for i, text in enumerate(lines, start=1) if text.strip()]
    assert numbers == expected
    for x in read:
        # A bundle, or why not; a repeat of an earlier line points at it instead.
        assert (x.bundle is not None) + (x.error is not None) + (x.duplicate_of is not None) == 1
    report = verify_attestations(world.model, world.verifier, world.root, attestations_path=path)
    assert [c.line for c in report.checks] == numbers
    for check, text in zip(report.checks, [lines[n - 1] for n in numbers], strict=True):
        if text.strip() == world.attestation:
            assert check.ok, check.problems  # a good line stays good beside damaged ones
        elif not check.ok:
            assert check.problems
    report.to_json()
    report.findings()


# ---------------------------------------------------------------- certificate chains


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    days: tuple[int, int] = (-1, 30),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclasses.dataclass(repr=False)
class Pki:
    root: x509.Certificate
    leaf: x509.Certificate
    bundle: Bundle  # signed by the leaf key, chain leaf + intermediate
    pool: list[bytes]  # DER: the real chain and its look-alikes
    leaf_key: ec.EllipticCurvePrivateKey


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki() -> Pki:
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(6)]
    root_key, int_key, leaf_key, twin_key, loop_key, other_key = keys
    root = _cert("Fuzz Root", root_key, "Fuzz Root", root_key, ca=True)
    inter = _cert("Fuzz Intermediate", int_key, "Fuzz Root", root_key, ca=True)
    leaf = _cert("Fuzz Leaf", leaf_key, "Fuzz Intermediate", int_key, ca=False)
    look_alikes = [
        # the same name under another key, signed by the real root
        _cert("Fuzz Intermediate", twin_key, "Fuzz Root", root_key, ca=True),
        # the real key, but expired
        _cert("Fuzz Intermediate", int_key, "Fuzz Root", root_key, ca=True, days=(-30, -1)),
        # the real intermediate's name issued by itself: a loop
        _cert("Fuzz Intermediate", int_key, "Fuzz Intermediate", int_key, ca=True),
        _cert("Fuzz Intermediate", loop_key, "Fuzz Intermediate", int_key, ca=True),
        # a root of the same name that nobody trusts
        _cert("Fuzz Root", other_key, "Fuzz Root", other_key, ca=True),
        # a leaf that is no CA, as an issuer
        _cert("Fuzz Intermediate", other_key, "Fuzz Root", root_key, ca=False),
        # the leaf signed by the wrong key
        _cert("Fuzz Leaf", leaf_key, "Fuzz Intermediate", twin_key, ca=False),
    ]
    signer = CertificateSigner(KeySigner(leaf_key), leaf, (inter,))
    bundle = signer.sign(b'{"_type": "https://in-toto.io/Statement/v1"}')
    pool = [_der(c) for c in (leaf, inter, root, *look_alikes)]
    return Pki(root, leaf, bundle, pool, leaf_key)


#: DER tags a certificate's fields use, and some it may not: a tag swapped for
#: another keeps every length right, so the certificate still loads and the
#: damage surfaces only when a field is read (names and extensions are parsed
#: lazily).
DER_TAGS = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x1A, 0x1C, 0x1E, 0x30, 0x31, 0x80, 0xA0, 0xA3,
]  # fmt: skip


@st.composite
def retagged(draw: st.DrawFn, der: bytes) -> bytes:
    """``der`` with one to three tags swapped for other tags."""
    out = bytearray(der)
    spots = [i for i, b in enumerate(out) if b in DER_TAGS]
    for _ in range(draw(st.integers(1, 3))):
        out[draw(st.sampled_from(spots))] = draw(st.sampled_from(DER_TAGS))
    return bytes(out)


@st.composite
def chains(draw: st.DrawFn, pki: Pki) -> list[bytes]:
    one = st.one_of(
        st.sampled_from(pki.pool),
        st.sampled_from(pki.pool).flatmap(mutated_bytes),
        st.sampled_from(pki.pool).flatmap(retagged),
        st.binary(max_size=48),
    )
    certs = draw(st.lists(one, min_size=1, max_size=8))
    if draw(st.booleans()):  # many copies of one
        i = draw(st.integers(0, len(certs) - 1))
        certs[i:i] = [certs[i]] * draw(st.integers(1, 300))
    return draw(st.permutations(certs)) if draw(st.booleans()) else certs


@fuzz(300, deadline_ms=5000)
@given(data=st.data())
def test_certificate_chain_mutations(pki: Pki, data: st.DataObject):
    ders = data.draw(chains(pki), label="chain")
    blob = dataclasses.replace(pki.bundle, certificates=tuple(ders)).to_bytes()
    bundle = _only_provenance_errors(lambda: Bundle.from_bytes(blob))
    if not isinstance(bundle, Bundle):
        return
    _only_provenance_errors(lambda: describe_bundle(bundle))
    verified = _only_provenance_errors(lambda: CertificateVerifier([pki.root]).verify(bundle))
    if isinstance(verified, Verified):
        # Sound: a certificate for the key that signed, on a path to the root.
        # (Not necessarily the real leaf: the pool holds a second, valid path.)
        chain = [x509.load_der_x509_certificate(d) for d in verified.signer.certificate_chain]
        assert chain[0].public_key() == pki.leaf_key.public_key()
        assert chain[-1] == pki.root


# ---------------------------------------------------------------- regressions found here


@pytest.mark.parametrize(
    "blob",
    [
        b'{"a":' + b"1" * 5000 + b"}",  # ValueError: exceeds int_max_str_digits
        b'{"mediaType":[]}',  # TypeError: unhashable type: 'list'
        b'{"mediaType":{"a":1}}',
        b"[" + b"0," * 100_001 + b"0]",  # a million elements: refused before parsing
    ],
)
def test_bundle_parse_regressions(blob: bytes):
    with pytest.raises(InputError):
        Bundle.from_bytes(blob)


def test_bundle_with_a_lone_surrogate_payload_type_is_refused(world: World):
    doc = json.loads(world.bundle)
    doc["dsseEnvelope"]["payloadType"] = "\ud800"
    with pytest.raises(InputError, match="payloadType"):
        Bundle.from_bytes(json.dumps(doc).encode())


def test_bundle_message_does_not_echo_a_huge_value():
    blob = b'{"mediaType":"' + b"x" * 1_000_000 + b'"}'
    with pytest.raises(InputError) as info:
        Bundle.from_bytes(blob)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("offset", ["\u00b2", "\u0663", "9" * 30])
def test_shard_offsets_are_ascii_digits(offset: str):
    from provenance.manifest import Resource

    with pytest.raises(InputError, match="path:start:end"):
        Resource(f"a:{offset}:8", "sha256-sharded-8", b"").path  # noqa: B018


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("QUJD", b"ABC"),
        ("QUI=", b"AB"),
        ("QUI", b"AB"),
        ("QQ", b"A"),
        ("-_8", b"\xfb\xff"),
        ("-_8=", b"\xfb\xff"),
        ("", b""),
    ],
)
def test_base64_still_reads_what_it_read(text: str, decoded: bytes):
    from provenance.dsse import b64decode

    assert b64decode(text, "x") == decoded


@pytest.mark.parametrize("text", ["Q", "QQ===", "QUJD=", "QU JD", "QU\nJD", "Q=UJ", "é", "-_ 8"])
def test_base64_refuses_junk(text: str):
    from provenance.dsse import b64decode

    with pytest.raises(InputError, match="not valid base64"):
        b64decode(text, "x")


def test_base64_decodes_in_chunks(monkeypatch):
    import provenance.dsse as dsse

    monkeypatch.setattr(dsse, "_CHUNK", 8)
    for n in range(40):
        raw = bytes(range(n))
        for text in (base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw)):
            assert dsse.b64decode(text if isinstance(text, str) else text.decode(), "x") == raw


@fuzz(400)
@given(st.text(alphabet="AQUJD+/-_= \n\u00e9", max_size=24))
def test_base64_fast_path_agrees_with_the_pattern(text: str):
    """The one-pass C decoder (Python 3.11+) accepts exactly what the pattern does."""
    import provenance.dsse as dsse

    def outcome(strict_c: bool) -> bytes | None:
        old = dsse._STRICT_C
        dsse._STRICT_C = strict_c
        try:
            return dsse.b64decode(text, "x")
        except InputError:
            return None
        finally:
            dsse._STRICT_C = old

    assert outcome(True) == outcome(False)


_HEX = "0123456789abcdefABCDEF"


@fuzz(300)
@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "name": st.one_of(
                        st.sampled_from(["a", "b/c", "d", ".", "../e", "a:0:5", "a:5:9", "/f"]),
                        st.integers(),
                    ),
                    "algorithm": st.one_of(
                        st.sampled_from(["sha256", "sha256-sharded-5", "blake2b", "SHA256"]),
                        st.lists(st.just("x")),
                    ),
                    "digest": st.one_of(
                        st.text(alphabet=_HEX, min_size=64, max_size=64),
                        st.text(alphabet=_HEX + " g", min_size=62, max_size=66),
                        st.none(),
                    ),
                }
            ),
            st.dictionaries(st.sampled_from(["name", "algorithm", "digest"]), st.just("aa")),
            st.just([]),
            st.just("x"),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_manifest_from_columns_agrees_with_the_checked_path(raw: list[Any], sharded: bool):
    """A manifest read column by column equals one checked resource by resource, and
    refuses what that refuses, with the same reason."""
    from provenance.manifest import (
        Manifest,
        Serialization,
        _columns_from_json,
        _resources_from_json,
    )

    serialization = (
        Serialization(method="shards", hash_type="sha256", shard_size=5)
        if sharded
        else Serialization(method="files", hash_type="sha256")
    )

    def outcome(build: Callable[[], Manifest]) -> Any:
        try:
            m = build()
        except InputError as e:
            return e.reason
        return (m, m.root_digest, m.files, len(m), m.resources)

    slow = outcome(lambda: Manifest("m", _resources_from_json(raw, serialization), serialization))
    columns = _columns_from_json(raw, serialization)
    if columns is not None:
        fast = outcome(lambda: Manifest._from_columns("m", serialization, *columns))
        assert fast == slow
        if not isinstance(fast, str):
            names = [r.name for r in fast[4]]
            digests = [r.digest for r in fast[4]]
            lazy = Manifest._from_columns("m", serialization, *columns)
            assert lazy.lists(names, digests)
            flipped = bytes(b ^ 0xFF for b in digests[-1])
            assert not lazy.lists(names, [*digests[:-1], flipped])
            assert not lazy.lists(names[:-1], digests[:-1])


def test_attestations_file_is_not_read_through_a_link(world: World, tmp_path):
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(world.attestation + b"\n")
    link = tmp_path / "model.intoto.jsonl"
    link.symlink_to(target)
    with pytest.raises(InputError, match="symbolic link"):
        _store.read(link)


def test_attestations_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.intoto.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(InputError, match="FIFO; only a regular file is read"):
        _store.read(fifo)
    assert time.monotonic() - started < 5


def test_attestation_line_over_the_line_cap_is_reported(world: World, tmp_path):
    path = tmp_path / "model.intoto.jsonl"
    long_line = b'{"x":"' + b"a" * (_store.MAX_LINE_BYTES + 10) + b'"}'
    path.write_bytes(world.attestation + b"\n" + long_line + b"\n" + world.attestation)
    lines = _store.read(path)
    assert [x.number for x in lines] == [1, 2, 3]
    assert lines[1].bundle is None and lines[1].error
    assert lines[0].bundle is not None
    assert lines[2].duplicate_of == 1  # the same bytes as line 1: counted once


def test_attestation_lines_past_the_count_cap_are_reported_once(world: World, tmp_path):
    path = tmp_path / "model.intoto.jsonl"
    path.write_bytes(b"{}\n" * (_store.MAX_LINES + 500) + world.attestation + b"\n")
    lines = _store.read(path)
    assert len(lines) == _store.MAX_LINES + 1
    assert "not read" in (lines[-1].error or "")


def test_statement_with_too_many_values_is_refused_before_parsing():
    blob = b'{"resources":[' + b"{}," * (MAX_STATEMENT_VALUES // 2) + b"{}]}"
    with pytest.raises(InputError, match="JSON values"):
        Statement.parse(blob)


# ---------------------------------------------------------------- resource bounds (point 4)

#: Peak memory any hostile file under its size cap may cost, and time.
PEAK_MB = 150
SECONDS = 5.0

# Runs the worker in its own interpreter and reports the worker's peak RSS
# (RUSAGE_CHILDREN of this wrapper: the worker is its only child). The worker
# is limited to 2 GiB of address space, so a regression fails with a
# MemoryError instead of swapping the CI machine.
_WRAPPER = r"""
import json, resource, subprocess, sys
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
r = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]],
                   capture_output=True, text=True, timeout=120, preexec_fn=limit)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": r.returncode, "out": r.stdout, "err": r.stderr[-3000:], "peak_mb": peak}))
"""

# The worker: imports first (not timed), then the one call, timed.
_WORKER = r"""
import json, sys, time
{imports}
from provenance.errors import ProvenanceError
arg = sys.argv[1]
started = time.perf_counter()
try:
    result = {call}
    outcome = "handled: " + type(result).__name__
except ProvenanceError as e:
    outcome = "refused: " + type(e).__name__ + ": " + str(e)[:200]
print(json.dumps({{"seconds": time.perf_counter() - started, "outcome": outcome}}))
"""


@dataclasses.dataclass
class Measured:
    seconds: float
    peak_mb: float
    outcome: str


def measure(imports: str, call: str, arg: str | os.PathLike[str]) -> Measured:
    code = _WORKER.format(imports=imports, call=call)
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, code, os.fspath(arg)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rc"] == 0, report["err"]
    worker = json.loads(report["out"])
    m = Measured(worker["seconds"], report["peak_mb"], worker["outcome"])
    print(f"{m.seconds:.2f}s peak {m.peak_mb:.0f} MB: {m.outcome}")
    return m


def _within_bounds(m: Measured) -> None:
    assert m.seconds < SECONDS, m
    assert m.peak_mb < PEAK_MB, m


_READ_BUNDLE = ("from provenance.bundle import Bundle", "Bundle.read(arg)")
_CHECK_MODEL = (
    "from provenance.verification import check_model\n"
    "from provenance.signing import KeyVerifier\n"
    "from cryptography.hazmat.primitives.asymmetric import ec\n"
    "verifier = KeyVerifier([ec.generate_private_key(ec.SECP256R1()).public_key()])\n"
    "model = sys.argv[1] + '.model'",
    "check_model(model, verifier, signature_path=arg)",
)


def _padded_bundle(world: World, path: Path, pad: bytes) -> Path:
    """The real signature with ``pad`` as an extra member: a file the parser must refuse."""
    path.write_bytes(world.bundle[:-1] + b',"pad":' + pad + b"}")
    return path


def _distinct_keys(count: int) -> bytes:
    """``"k":0,`` ``count`` times, each key eight random hex digits (in C, not a loop)."""
    out = bytearray(b'"00000000":0,' * count)
    digits = os.urandom(4 * count).hex().encode()
    for j in range(8):
        out[1 + j :: 13] = digits[j::8]
    return bytes(out)


_BOUNDED_MIB = 32  # the largest hostile bundle the parser can keep under PEAK_MB


@pytest.mark.parametrize(
    "pad",
    [
        pytest.param(lambda n: b"[" * (n // 2) + b"]" * (n // 2), id="nested-empty-arrays"),
        pytest.param(lambda n: b"[" + b"[]," * (n // 3) + b"0]", id="many-empty-arrays"),
        pytest.param(lambda n: b"[" + b"0," * (n // 2) + b"0]", id="many-zeros"),
        pytest.param(lambda n: b'["' + b'ab","' * (n // 5) + b'"]', id="many-short-strings"),
        pytest.param(lambda n: b"{" + _distinct_keys(n // 13) + b'"":0}', id="many-distinct-keys"),
        pytest.param(lambda n: b'"' + b"x" * n + b'"', id="one-long-string"),
    ],
)
def test_bound_hostile_bundle(world: World, tmp_path, pad):
    path = _padded_bundle(world, tmp_path / "model.sig", pad(_BOUNDED_MIB << 20))
    m = measure(*_READ_BUNDLE, path)
    _within_bounds(m)


def test_bound_hostile_bundle_payload_verified(world: World, tmp_path):
    """A well-formed bundle whose payload is 32 MiB of junk: refused at the signature."""
    doc = json.loads(world.bundle)
    doc["dsseEnvelope"]["payload"] = "A" * (_BOUNDED_MIB << 20)
    sig = tmp_path / "model.sig"
    sig.write_text(json.dumps(doc))
    (tmp_path / "model.sig.model").symlink_to(world.model)
    m = measure(*_CHECK_MODEL, sig)
    _within_bounds(m)
    assert "handled: VerificationReport" in m.outcome


def test_bound_hostile_bundle_at_the_size_cap(world: World, tmp_path):
    """The issue's own case: a signature padded to the size cap with nested empty arrays."""
    n = (MAX_BUNDLE_BYTES - len(world.bundle) - 64) // 2
    path = _padded_bundle(world, tmp_path / "model.sig", b"[" * n + b"]" * n)
    m = measure(*_READ_BUNDLE, path)
    assert m.outcome.startswith("refused"), m
    _within_bounds(m)


_READ_STATEMENT = (
    "from provenance.intoto import Statement\n"
    "from provenance.manifest import Manifest\n"
    "data = open(sys.argv[1], 'rb').read()",
    "Manifest.from_statement(Statement.parse(data))",
)


def _statement_with(resources: bytes) -> bytes:
    return (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m","digest":'
        b'{"sha256":"00"}}],"predicateType":"https://model_signing/signature/v1.0",'
        b'"predicate":{"serialization":{"method":"files","hash_type":"sha256"},"resources":['
        + resources
        + b"]}}"
    )


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(b"{}", id="empty-objects"),
        pytest.param(b"0", id="zeros"),
        pytest.param(b'"ab"', id="short-strings"),
        pytest.param(b'{"name":"a","algorithm":"sha256","digest":"00"}', id="junk-resources"),
    ],
)
def test_bound_statement_with_a_million_resources(tmp_path, resource: bytes):
    path = tmp_path / "statement.json"
    path.write_bytes(_statement_with(b",".join([resource] * 1_000_000)))
    m = measure(*_READ_STATEMENT, path)
    _within_bounds(m)
    assert m.outcome.startswith("refused: InputError"), m


_VERIFY_ATTESTATIONS = (
    "from provenance.attest import verify_attestations\n"
    "from provenance.signing import KeyVerifier\n"
    "from cryptography.hazmat.primitives.asymmetric import ec\n"
    "verifier = KeyVerifier([ec.generate_private_key(ec.SECP256R1()).public_key()])",
    "verify_attestations('.', verifier, '00' * 32, attestations_path=arg)",
)


def _fat_line(line: bytes, size: int) -> bytes:
    """An attestation line whose payload makes it ``size`` bytes: parsed and kept."""
    doc = json.loads(line)
    doc["dsseEnvelope"]["payload"] = ""
    short = json.dumps(doc, separators=(",", ":")).encode()
    fill = (size - len(short)) // 4 * 4
    return short.replace(b'"payload":""', b'"payload":"' + b"A" * fill + b'"')


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda line: b'{"x":"' + b"a" * (100 << 20) + b'"}\n', id="one-100MB-line"),
        pytest.param(lambda line: b'{"x":"' + b"a" * (30 << 20) + b'"}\n', id="one-30MB-line"),
        pytest.param(lambda line: b"\n" * (30 << 20), id="thirty-million-empty-lines"),
        pytest.param(lambda line: b"[]\n" * (10 << 20), id="ten-million-junk-lines"),
        pytest.param(
            lambda line: (line + b"\n") * ((30 << 20) // (len(line) + 1)), id="real-lines-to-cap"
        ),
        pytest.param(
            lambda line: (_fat_line(line, (4 << 20) - 4096) + b"\n") * 7, id="fat-bundles-to-cap"
        ),
    ],
)
def test_bound_hostile_attestations_file(world: World, tmp_path, content):
    path = tmp_path / "model.intoto.jsonl"
    path.write_bytes(content(world.attestation))
    m = measure(*_VERIFY_ATTESTATIONS, path)
    _within_bounds(m)


_VERIFY_CHAIN = (
    "from provenance.bundle import Bundle\n"
    "from provenance.signing import CertificateVerifier\n"
    "verifier = CertificateVerifier.from_files([sys.argv[1] + '.root'])",
    "verifier.verify(Bundle.read(arg))",
)


def _chain_file(pki: Pki, tmp_path: Path, certificates: list[bytes], copies: int = 0) -> Path:
    """A chain bundle of ``certificates``, then ``copies`` more of the last one."""
    path = tmp_path / "chain.sig"
    blob = dataclasses.replace(pki.bundle, certificates=tuple(certificates)).to_bytes()
    if copies:  # spliced in as bytes: json.dumps of 200,000 objects is slow
        one = b',{"rawBytes":"' + base64.b64encode(certificates[-1]) + b'"}'
        cut = blob.index(b"]", blob.index(b'"certificates":['))
        blob = blob[:cut] + one * copies + blob[cut:]
    path.write_bytes(blob)
    (tmp_path / "chain.sig.root").write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("copies", [200_000, 4_990])
def test_bound_chain_of_many_same_certificates(pki: Pki, tmp_path, copies: int):
    """One intermediate's DER repeated: refused before parsing, or found once."""
    path = _chain_file(pki, tmp_path, [_der(pki.leaf), pki.pool[3]], copies=copies)
    m = measure(*_VERIFY_CHAIN, path)
    _within_bounds(m)
    assert m.outcome.startswith("refused"), m


def test_bound_chain_of_distinct_same_named_certificates(pki: Pki, tmp_path):
    """3,000 different CA certificates, all one name, each signing the others: a bounded search."""
    key = ec.generate_private_key(ec.SECP256R1())
    loops = [
        _der(_cert("Fuzz Intermediate", key, "Fuzz Intermediate", key, ca=True))
        for _ in range(3000)
    ]
    leaf = _cert("Fuzz Leaf", pki.leaf_key, "Fuzz Intermediate", key, ca=False)
    path = _chain_file(pki, tmp_path, [_der(leaf), *loops])
    m = measure(*_VERIFY_CHAIN, path)
    _within_bounds(m)
    assert m.outcome.startswith("refused"), m


# ---------------------------------------------------------------- found here, fixed elsewhere
#
# Crashes this suite found in modules it does not own (see KNOWN_ELSEWHERE).
# Each is the smallest input that shows it; strict: a fix makes the test
# fail, and then its KNOWN_ELSEWHERE line and the xfail marker go.


def _keyless_bundle(material: dict[str, Any]) -> Bundle:
    doc = json.loads((FIXTURES / "oms-golden/v1.0.1-sigstore/model.sig").read_bytes())
    doc["verificationMaterial"].update(material)
    return Bundle.from_bytes(json.dumps(doc).encode())


def _crash(kind: type[BaseException], where: str) -> pytest.MarkDecorator:
    """A crash the fuzzers found (``kind`` in ``where``), now fixed: a plain regression test."""
    return pytest.mark.regression(found=f"{kind.__name__} in {where}")


_KEYLESS = "keyless_info (signing/_sigstore.py)"
_CERT_INFO = "certificate_info (signing/_certs.py)"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="needs ../shared/fixtures")
@pytest.mark.parametrize(
    "material",
    [
        pytest.param({"timestampVerificationData": True}, marks=_crash(AttributeError, _KEYLESS)),
        pytest.param(
            {"tlogEntries": [], "timestampVerificationData": {"rfc3161Timestamps": {"a": 1}}},
            marks=_crash(KeyError, _KEYLESS),
        ),
        pytest.param({"tlogEntries": [{"logIndex": 1e999}]}, marks=_crash(OverflowError, _KEYLESS)),
    ],
)
def test_known_crash_describe_keyless_bundle(material: dict[str, Any]):
    bundle = _keyless_bundle(material)
    _only_provenance_errors_strict(lambda: describe_bundle(bundle))


@pytest.mark.parametrize(
    "edit",
    [
        # the leaf's EC point tag 04 -> 05: "Invalid key" from public_key()
        pytest.param(
            lambda der: der.replace(b"\x03B\x00\x04", b"\x03B\x00\x05", 1),
            marks=_crash(ValueError, _CERT_INFO),
            id="key",
        ),
        # the leaf's curve P-256 (1.2.840.10045.3.1.7) as 3.1.6, which nobody supports
        pytest.param(
            lambda der: der.replace(_P256_OID, _P256_OID[:-1] + b"\x06", 1),
            marks=_crash(UnsupportedAlgorithm, _CERT_INFO),
            id="curve",
        ),
        # basicConstraints' SEQUENCE as a SET: "error parsing asn1 value" (in _identities)
        pytest.param(
            lambda der: der.replace(b"\x04\x020\x00", b"\x04\x021\x00", 1),
            marks=_crash(ValueError, _CERT_INFO),
            id="extensions",
        ),
        # extendedKeyUsage's OID (2.5.29.37) as basicConstraints' (2.5.29.19): two of one
        pytest.param(
            lambda der: der.replace(b"\x06\x03\x55\x1d\x25", b"\x06\x03\x55\x1d\x13", 1),
            marks=_crash(x509.DuplicateExtension, _CERT_INFO),
            id="duplicate-extension",
        ),
    ],
)
def test_known_crash_describe_certificate_bundle(pki: Pki, edit):
    der = edit(_der(pki.leaf))
    assert der != _der(pki.leaf)
    bundle = dataclasses.replace(pki.bundle, certificates=(der,))
    _only_provenance_errors_strict(lambda: describe_bundle(bundle))


def _retag_cn(der: bytes, cn: bytes, tag: int) -> bytes:
    """``der`` with the string type of common name ``cn`` changed: it still loads."""
    spelled = bytes([0x0C, len(cn)]) + cn
    assert der.count(spelled) == 1
    return der.replace(spelled, bytes([tag, len(cn)]) + cn)


_V3 = b"\xa0\x03\x02\x01\x02"  # [0] version INTEGER 2 (v3); 3 is no version


@pytest.mark.parametrize(
    "chain",
    [
        # an intermediate named in VideotexString: "error parsing asn1 value" from .subject
        pytest.param(
            lambda leaf, inter: [leaf, _retag_cn(inter, b"Fuzz Intermediate", 0x15)],
            marks=_crash(ValueError, "verify_chain (_internal/x509chain.py)"),
            id="videotex-name",
        ),
        # ... or as a BIT STRING: "oid must be X500_UNIQUE_IDENTIFIER for BitString type"
        pytest.param(
            lambda leaf, inter: [leaf, _retag_cn(inter, b"Fuzz Intermediate", 0x03)],
            marks=_crash(TypeError, "verify_chain (_internal/x509chain.py)"),
            id="bitstring-name",
        ),
        # a leaf of X.509 version 4: InvalidVersion, which "except ValueError" lets through
        pytest.param(
            lambda leaf, inter: [leaf.replace(_V3, _V3[:-1] + b"\x03", 1), inter],
            marks=_crash(x509.InvalidVersion, "CertificateVerifier.verify (signing/_certs.py)"),
            id="version-4",
        ),
    ],
)
def test_known_crash_verify_certificate_chain(pki: Pki, chain):
    ders = chain(_der(pki.leaf), pki.pool[1])
    bundle = dataclasses.replace(pki.bundle, certificates=tuple(ders))
    _only_provenance_errors_strict(lambda: CertificateVerifier([pki.root]).verify(bundle))


@_crash(x509.InvalidVersion, "describe_bundle (signing/__init__.py)")
def test_known_crash_describe_version_4_certificate(pki: Pki):
    der = _der(pki.leaf).replace(_V3, _V3[:-1] + b"\x03", 1)
    bundle = dataclasses.replace(pki.bundle, certificates=(der,))
    _only_provenance_errors_strict(lambda: describe_bundle(bundle))


_P256_OID = b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"


def _only_provenance_errors_strict(call: Callable[[], Any]) -> None:
    with contextlib.suppress(ProvenanceError):
        call()
