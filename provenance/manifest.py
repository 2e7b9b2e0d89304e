"""Manifests: what was hashed, how, and the root digest that names a model.

A manifest converts to and from the OpenSSF Model Signing (OMS) predicate,
``https://model_signing/signature/v1.0``, byte-compatible with the
``model-signing`` package; the legacy ``https://model_signing/Digests/v0.1``
statements of its 0.2 releases are read too.

Names in a manifest come from signed but untrusted input and are later joined
to a folder on disk, so they are checked strictly (security invariant 4): no
``..``, no absolute paths, no backslashes, no control characters, no
duplicates.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from provenance._internal.engine import ALGORITHMS
from provenance._internal.uris import LEGACY_PREDICATE_TYPE, OMS_PREDICATE_TYPE, STATEMENT_TYPE
from provenance.errors import InputError, UsageError

if TYPE_CHECKING:
    from provenance.intoto import Statement, Subject

__all__ = [
    "DEFAULT_IGNORE_PATHS",
    "DEFAULT_SHARD_SIZE",
    "LEGACY_PREDICATE_TYPE",
    "OMS_PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Diff",
    "Manifest",
    "Resource",
    "Serialization",
    "check_name",
    "diff",
]


#: 1 GB, as ``model-signing`` counts it, so default shard names match its own.
DEFAULT_SHARD_SIZE = 1_000_000_000

#: Always left out of a model's manifest: version-control metadata and the
#: files this tool writes beside the model (``model.sig.d`` holds the
#: co-signatures of ``model.sig``; a signature records the list, so
#: ``model-signing`` leaves them out too).
DEFAULT_IGNORE_PATHS: tuple[str, ...] = (
    ".git",
    ".gitattributes",
    ".github",
    ".gitignore",
    "model.sig",
    "model.sig.d",
    "model.intoto.jsonl",
)

# The names model-signing writes in ``serialization.hash_type``.
_WIRE_HASH_TYPE = {"blake2b": "blake2"}
_FROM_WIRE_HASH_TYPE = {"blake2": "blake2b", "blake2b": "blake2b"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Anything check_name would object to; a name that does not match is fine.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f\\]|^/|^[A-Za-z]:|//|/$|(?:^|/)\.\.?(?:/|$)")
_DIGEST_SIZE = {"sha256": 32, "sha384": 48, "sha512": 64, "blake2b": 64, "blake3": 32}


_CONTROL_OR_BACKSLASH = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\\]")
# Substrings that betray an empty, "." or ".." component, or an absolute path,
# in names joined as "\n" + "\n".join(names) + "\n".
_BAD_JOINED = (
    "\n\n", "//", "\n/", "/\n",
    "/./", "/../", "\n./", "\n../", "/.\n", "/..\n", "\n.\n", "\n..\n",
)  # fmt: skip
_DRIVE = re.compile(r"\n[A-Za-z]:")


def _all_plain(names: list[str]) -> bool:
    """What check_name checks, for many names in a few C-speed passes.

    Hashing a 200,000-file dataset must not spend its time on per-name regex
    calls; only when this says no is each name checked, to name the bad one.
    """
    plain = [n for n in names if n != "."]
    if not plain:
        return True
    joined = "\n" + "\n".join(plain) + "\n"
    if joined.count("\n") != len(plain) + 1:  # a name holds a newline
        return False
    if _CONTROL_OR_BACKSLASH.search(joined, 1, len(joined) - 1):
        return False
    if any(bad in joined for bad in _BAD_JOINED):
        return False
    return not (":" in joined and _DRIVE.search(joined))


def check_name(name: str) -> None:
    """Refuse a resource path that could escape or confuse the model root."""
    if not name:
        raise InputError("manifest names an empty path")
    if name == "." or not _SUSPECT.search(name):
        return
    shown = name.encode("unicode_escape").decode("ascii")
    if _CONTROL.search(name):
        raise InputError(f"manifest path '{shown}' contains a control character")
    if "\\" in name:
        raise InputError(f"manifest path '{shown}' contains a backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise InputError(f"manifest path '{shown}' is absolute")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise InputError(f"manifest path '{shown}' is not a plain relative path")


class Resource(NamedTuple):
    """One hashed resource: a file, or a byte range ``path:start:end`` of one.

    A named tuple, not a dataclass: a 200,000-file manifest builds 200,000 of
    them on every sign and every verification, and a tuple is half the cost.
    """

    name: str
    algorithm: str
    digest: bytes

    @property
    def path(self) -> str:
        """The file this resource belongs to (without a shard's range)."""
        return split_shard(self.name)[0] if "-sharded-" in self.algorithm else self.name


# Resource fields by position, for C-speed passes over 200,000 of them.
_NAME, _ALGORITHM, _DIGEST = itemgetter(0), itemgetter(1), itemgetter(2)

# A shard's offsets: ASCII digits only (str.isdigit also takes "²", which int()
# refuses), and no more than a 64-bit offset needs.
_OFFSET = re.compile(r"[0-9]{1,20}")


def split_shard(name: str) -> tuple[str, int, int]:
    # rsplit: a file name may itself contain ':'.
    parts = name.rsplit(":", 2)
    if len(parts) != 3 or not _OFFSET.fullmatch(parts[1]) or not _OFFSET.fullmatch(parts[2]):
        raise InputError(f"shard name {name!r} is not of the form path:start:end")
    start, end = int(parts[1]), int(parts[2])
    if start >= end:
        raise InputError(f"shard name {name!r} has an empty or inverted range")
    return parts[0], start, end


@dataclass(frozen=True)
class Serialization:
    """How the model was turned into resources; verification repeats it exactly."""

    method: str = "files"
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: tuple[str, ...] = ()
    #: Glob patterns the user asked to leave out. Never written to a signature:
    #: hashing expands them into the concrete ``ignore_paths`` they hid, which
    #: every verifier (``model-signing`` too) can repeat exactly.
    ignore_patterns: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.method not in ("files", "shards"):
            raise InputError(f"unknown serialization method {self.method!r}")
        if self.hash_type not in ALGORITHMS:
            raise InputError(
                f"hash algorithm {self.hash_type!r} is not allowed; "
                f"use one of {', '.join(ALGORITHMS)}"
            )
        if self.method == "shards":
            if self.shard_size is None:
                object.__setattr__(self, "shard_size", DEFAULT_SHARD_SIZE)
            elif self.shard_size <= 0:
                raise InputError(f"shard size must be positive, not {self.shard_size}")
        elif self.shard_size is not None:
            object.__setattr__(self, "shard_size", None)

    @property
    def resource_algorithm(self) -> str:
        """The per-resource algorithm string, as ``model-signing`` names it."""
        if self.method == "shards":
            return f"{self.hash_type}-sharded-{self.shard_size}"
        return self.hash_type

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "hash_type": _WIRE_HASH_TYPE.get(self.hash_type, self.hash_type),
            "allow_symlinks": self.allow_symlinks,
        }
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Serialization:
        if not isinstance(data, Mapping):
            raise InputError("predicate.serialization is not an object")
        method = data.get("method")
        hash_type = data.get("hash_type")
        if isinstance(hash_type, str):  # a list or object here is unhashable: check first
            hash_type = _FROM_WIRE_HASH_TYPE.get(hash_type, hash_type)
        allow = data.get("allow_symlinks", False)
        if isinstance(allow, str):  # model-signing 0.2 wrote "false"
            allow = allow.lower() == "true"
        if not isinstance(allow, bool):
            raise InputError("serialization.allow_symlinks is not a boolean")
        shard_size = data.get("shard_size")
        if method == "shards":
            shard_size = _integer(shard_size, "serialization.shard_size")
        ignore = data.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise InputError("serialization.ignore_paths is not a list of strings")
        if not isinstance(method, str) or not isinstance(hash_type, str):
            raise InputError("serialization.method and hash_type must be strings")
        return cls(
            method=method,
            hash_type=hash_type,
            allow_symlinks=allow,
            shard_size=shard_size if method == "shards" else None,
            ignore_paths=tuple(ignore),
        )


def _integer(value: Any, what: str) -> int:
    # Protobuf JSON writes integers as floats ("1024.0"); accept exact ones.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} is not a number")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InputError(f"{what} is not an integer")
    return int(value)


class Manifest:
    """An ordered list of resources and the parameters that produced them.

    The root digest, SHA-256 over the raw resource digests in listed order,
    names the model in signatures, attestations and lineage.

    Immutable. A manifest read from a signature keeps its names and digests
    as columns and builds :attr:`resources` only when asked: a verifier that
    finds every file intact compares columns and never needs 200,000
    resource objects.
    """

    __slots__ = ("_columns", "_files", "_resources", "_root", "model_name", "serialization")

    model_name: str
    serialization: Serialization
    _resources: tuple[Resource, ...] | None
    # names, the resource algorithm, the digests concatenated, one digest's size
    _columns: tuple[list[str], str, bytes, int] | None
    _files: tuple[str, ...]
    _root: str | None

    def __init__(
        self,
        model_name: str,
        resources: Iterable[Resource],
        serialization: Serialization | None = None,
    ) -> None:
        resources = tuple(resources)
        names = list(map(_NAME, resources))
        sharded = any("-sharded-" in a for a in set(map(_ALGORITHM, resources)))
        paths = [r.path for r in resources] if sharded else names
        self._init(model_name, serialization, names, paths, resources, None)

    @classmethod
    def _from_columns(
        cls,
        model_name: str,
        serialization: Serialization,
        names: list[str],
        blob: bytes,
        size: int,
    ) -> Manifest:
        """Well-formed columns of one algorithm (see :func:`_columns_from_json`), checked as
        :meth:`__init__` checks resources; the resources are built on first use."""
        algorithm = serialization.resource_algorithm
        paths = [split_shard(n)[0] for n in names] if "-sharded-" in algorithm else names
        m = cls.__new__(cls)
        m._init(model_name, serialization, names, paths, None, (names, algorithm, blob, size))
        return m

    def _init(
        self,
        model_name: str,
        serialization: Serialization | None,
        names: list[str],
        paths: list[str],
        resources: tuple[Resource, ...] | None,
        columns: tuple[list[str], str, bytes, int] | None,
    ) -> None:
        if not _all_plain(paths):  # rare: find and name the offending path
            for path in paths:
                check_name(path)
        if len(set(names)) != len(names):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise InputError(f"manifest lists '{name}' twice")
                seen.add(name)
        files = tuple(dict.fromkeys(paths))
        if "." in files and len(files) > 1:
            raise InputError("manifest mixes a single-file entry '.' with other files")
        setattr_ = object.__setattr__
        setattr_(self, "model_name", model_name)
        setattr_(self, "serialization", serialization or Serialization())
        setattr_(self, "_resources", resources)
        setattr_(self, "_columns", columns)
        # Computed once: verification asks for it several times on 200,000 files.
        setattr_(self, "_files", files)
        setattr_(self, "_root", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Manifest is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Manifest is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return (
            self.model_name == other.model_name
            and self.serialization == other.serialization
            and self.resources == other.resources
        )

    def __hash__(self) -> int:
        return hash((self.model_name, self.resources, self.serialization))

    def __repr__(self) -> str:
        return (
            f"Manifest(model_name={self.model_name!r}, resources=<{len(self)} resources>, "
            f"serialization={self.serialization!r})"
        )

    def __len__(self) -> int:
        """How many resources (files, or shards) the manifest lists."""
        if self._columns is not None:
            return len(self._columns[0])
        return len(self.resources)

    @property
    def resources(self) -> tuple[Resource, ...]:
        """Every resource in manifest order."""
        if self._resources is None:
            assert self._columns is not None
            names, algorithm, blob, size = self._columns
            # tuple.__new__ is what Resource() does, without its Python-level
            # __new__: a third of the cost of 200,000 resources.
            new = tuple.__new__
            built = tuple(
                [
                    new(Resource, (name, algorithm, blob[i : i + size]))
                    for name, i in zip(names, range(0, len(blob), size), strict=True)
                ]
            )
            object.__setattr__(self, "_resources", built)
            return built
        return self._resources

    def lists(self, names: Sequence[str], digests: Sequence[bytes]) -> bool:
        """Whether the manifest lists exactly these resources, in this order.

        A verifier's common case, answered in a few C passes without
        building a resource object per file.
        """
        if len(names) != len(self) or len(digests) != len(names):
            return False
        if self._columns is not None:
            mine, _, blob, _ = self._columns
            return mine == list(names) and b"".join(digests) == blob
        return all(
            r.name == n and r.digest == d
            for r, n, d in zip(self.resources, names, digests, strict=True)
        )

    @property
    def root_digest(self) -> str:
        """Hex SHA-256 over the concatenated raw resource digests (computed once)."""
        cached = self._root
        if cached is None:
            if self._columns is not None:
                cached = hashlib.sha256(self._columns[2]).hexdigest()
            else:
                cached = hashlib.sha256(b"".join(map(_DIGEST, self.resources))).hexdigest()
            object.__setattr__(self, "_root", cached)
        return cached

    @property
    def files(self) -> list[str]:
        """The distinct files covered, in manifest order."""
        return list(self._files)

    def statement(
        self, resources: bool = True, extra: Mapping[str, Any] | None = None
    ) -> Statement:
        """The in-toto Statement v1 with the OMS predicate (``resources=False``: none listed).

        ``extra`` adds fields to the predicate, between ``serialization`` and
        ``resources``. OMS v1.0 verifiers ignore fields they do not know
        (``model-signing`` does), so a record such as where on the Hugging
        Face Hub the files came from travels inside the signed statement.
        """
        listed = (
            [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest.hex()}
                for r in self.resources
            ]
            if resources
            else []
        )
        from provenance.intoto import Statement

        predicate: dict[str, Any] = {"serialization": self.serialization.to_json()}
        for key, value in (extra or {}).items():
            if key in ("serialization", "resources"):
                raise UsageError(f"the predicate field '{key}' is the manifest's own")
            predicate[key] = value
        predicate["resources"] = listed
        return Statement.about(self.model_name, self.root_digest, OMS_PREDICATE_TYPE, predicate)

    def to_statement(self) -> dict[str, Any]:
        """The in-toto Statement v1 with the OMS predicate, as JSON-able data."""
        return self.statement().to_json()

    def statement_bytes(self, extra: Mapping[str, Any] | None = None) -> bytes:
        """Compact UTF-8 JSON of :meth:`to_statement`, byte for byte, built in one pass.

        A 200,000-file dataset would otherwise hold a dict per resource and
        several copies of a 25 MB string at once; here each resource goes
        straight to its JSON text, spliced into the statement's own bytes.
        """
        import json

        head = self.statement(resources=False, extra=extra).to_bytes().decode("utf-8")
        assert head.endswith('"resources":[]}}')
        quote = json.encoder.encode_basestring
        parts = [
            f'{{"name":{quote(r.name)},"algorithm":{quote(r.algorithm)},"digest":"{r.digest.hex()}"}}'
            for r in self.resources
        ]
        return (head[:-3] + ",".join(parts) + "]}}").encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        """The manifest as data: ``hash --json``'s body and ``verify --json``'s ``manifest``.

        Keep these four fields and their shape stable: ``attest dataset``
        records ``manifestDigest``, SHA-256 over this object as canonical
        JSON (sorted keys, no spaces), so a new field would change the digest
        of every manifest and orphan the ones already recorded.
        """
        return {
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "serialization": self.serialization.to_json(),
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest.hex()}
                for r in self.resources
            ],
        }

    @classmethod
    def from_statement(cls, statement: Statement | Mapping[str, Any]) -> Manifest:
        """Read a manifest from a statement (OMS v1.0 or legacy v0.1), parsed or as JSON data.

        The statement's shape is checked by :class:`provenance.intoto.Statement`;
        here the OMS predicate. The subject digest must equal the root
        recomputed from the listed resources, so a statement cannot claim one
        model and list another.
        """
        from provenance.intoto import Statement

        stmt = statement if isinstance(statement, Statement) else Statement.from_json(statement)
        if stmt.predicate_type == LEGACY_PREDICATE_TYPE:
            return cls._from_legacy(stmt.subjects)
        if stmt.predicate_type != OMS_PREDICATE_TYPE:
            raise InputError(
                f"statement predicate is {stmt.predicate_type!r}, not a model signature "
                f"({OMS_PREDICATE_TYPE})"
            )
        if len(stmt.subjects) != 1:
            raise InputError(
                f"a model signature has one subject, this one has {len(stmt.subjects)}"
            )
        subject = stmt.subjects[0]
        expected_root = subject.digest.get("sha256")
        if expected_root is None:
            raise InputError("statement subject has no sha256 digest")
        serialization = Serialization.from_json(stmt.predicate.get("serialization"))
        raw_resources = stmt.predicate.get("resources")
        if not isinstance(raw_resources, list):
            raise InputError("predicate.resources is not a list")
        columns = _columns_from_json(raw_resources, serialization)
        if columns is not None:
            manifest = cls._from_columns(subject.name, serialization, *columns)
        else:
            manifest = cls(
                subject.name, _resources_from_json(raw_resources, serialization), serialization
            )
        if manifest.root_digest != expected_root.lower():
            raise InputError(
                "statement is inconsistent: its subject digest does not match its resources"
            )
        return manifest

    @classmethod
    def _from_legacy(cls, subjects: Sequence[Subject]) -> Manifest:
        """model-signing 0.2: one subject per file, each with its sha256, no serialization."""
        resources = [
            Resource(s.name, "sha256", _hex(s.digest.get("sha256"), "sha256", s.name))
            for s in subjects
        ]
        return cls("", tuple(resources), Serialization(method="files", hash_type="sha256"))


def _hex(value: Any, algorithm: str, name: str) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"resource '{name}' has no digest")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InputError(f"resource '{name}' digest is not hexadecimal") from None
    size = _DIGEST_SIZE.get(algorithm)
    if size is not None and len(raw) != size:
        raise InputError(f"resource '{name}' digest has the wrong length for {algorithm}")
    return raw


def _resources_from_json(raw: list[Any], serialization: Serialization) -> tuple[Resource, ...]:
    """Every resource, each checked, so that the first malformed one is named."""
    algorithm = serialization.resource_algorithm
    return tuple(_resource_from_json(d, serialization, algorithm) for d in raw)


def _columns_from_json(
    raw: list[Any], serialization: Serialization
) -> tuple[list[str], bytes, int] | None:
    """Names, concatenated digests and digest size, if every resource is well formed.

    A 200,000-file signature is parsed at every verification, so the common
    shape (objects with a string name, the serialization's algorithm and a
    hex digest of the right length) is checked column by column and its
    digests decoded in one ``fromhex``. None means something is off, and
    :func:`_resources_from_json` names it.
    """
    algorithm = serialization.resource_algorithm
    size = _DIGEST_SIZE.get(serialization.hash_type, 0)
    if not raw or not size or set(map(type, raw)) != {dict}:
        return None
    try:
        names = [d["name"] for d in raw]
        digests = [d["digest"] for d in raw]
        algorithms = {d["algorithm"] for d in raw}
    except (KeyError, TypeError):  # a field missing, or an algorithm that is not a string
        return None
    if algorithms != {algorithm}:
        return None
    if set(map(type, names)) != {str} or set(map(type, digests)) != {str}:
        return None
    if set(map(len, digests)) != {2 * size}:
        return None
    try:
        blob = bytes.fromhex("".join(digests))
    except ValueError:
        return None
    if len(blob) != size * len(raw):  # fromhex skips whitespace: a short blob had some
        return None
    return names, blob, size


def _resource_from_json(
    data: Any, serialization: Serialization, expected_algorithm: str | None = None
) -> Resource:
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InputError("a predicate resource is not an object")
    name, algorithm = data.get("name"), data.get("algorithm")
    if type(name) is not str or type(algorithm) is not str:
        raise InputError("a predicate resource lacks a name or algorithm")
    if algorithm != (expected_algorithm or serialization.resource_algorithm):
        base = algorithm.split("-sharded-")[0]
        if base not in ALGORITHMS:
            raise InputError(f"resource '{name}' uses a disallowed algorithm {algorithm!r}")
        raise InputError(
            f"resource '{name}' algorithm {algorithm!r} does not match the serialization "
            f"({serialization.resource_algorithm!r})"
        )
    return Resource(name, algorithm, _hex(data.get("digest"), serialization.hash_type, name))


@dataclass(frozen=True)
class Diff:
    """How files on disk differ from a signed manifest, file by file.

    ``extra`` are files the actual manifest has and the signed one does not;
    a verifier that hashes only signed files finds unsigned ones by walking.
    """

    modified: tuple[str, ...] = ()
    resized: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.modified or self.resized or self.missing or self.extra)


def diff(expected: Manifest, actual: Manifest | Sequence[Resource]) -> Diff:
    """Compare resource by resource; a file is named once, by its worst change.

    Shards make "modified" subtle: a file that changed size has shard names
    that no longer line up (resized), and one that grew by whole shards keeps
    every signed shard intact while adding new ones (also resized).
    """
    # Resources straight from hashing need no Manifest (and no second round
    # of name checks): a verifier compares 200,000 of them.
    have_resources = actual.resources if isinstance(actual, Manifest) else tuple(actual)
    if expected.resources == have_resources or [(r.name, r.digest) for r in expected.resources] == [
        (r.name, r.digest) for r in have_resources
    ]:
        # The common case: everything matches, in order (one tuple comparison
        # in C when the algorithms match too, as they do after hashing).
        return Diff()
    want = {r.name: r for r in expected.resources}
    have = {r.name: r for r in have_resources}
    signed_files = set(expected._files)
    present_files = {r.path for r in have_resources}
    modified: dict[str, None] = {}
    for name, r in want.items():
        other = have.get(name)
        if other is not None and other.digest != r.digest:
            modified[r.path] = None
    missing_paths = dict.fromkeys(want[n].path for n in want if n not in have)
    extra_paths = dict.fromkeys(have[n].path for n in have if n not in want)
    resized: dict[str, None] = {}
    missing: list[str] = []
    for f in missing_paths:
        if f in modified:
            continue
        if f in present_files:
            resized[f] = None
        else:
            missing.append(f)
    for f in extra_paths:
        if f in signed_files and f not in modified:
            resized[f] = None
    extra = [f for f in extra_paths if f not in signed_files]
    return Diff(tuple(modified), tuple(resized), tuple(missing), tuple(extra))
