"""in-toto Statement v1: the one model of a statement, and the predicate types known here.

Every statement this project signs or reads is the same envelope around a
different predicate: a model signature (OMS), a training run (SLSA Provenance
v1), a dataset card, an evaluation. Reading them all through one strict
parser means a malformed statement is refused in one place, with a reason a
person can act on, instead of each reader guessing at the shape of a dict and
catching the ``TypeError`` when it guessed wrong.

The parsers are strict about the fields a reader here relies on and ignore
the others, as in-toto asks of consumers (fields are added by later versions
and by extensions). Nothing here re-serializes a signed payload to check it
(security invariant 2): a verifier parses the exact bytes it verified, and
:meth:`Statement.to_bytes` is only for building new statements.

The registry maps a predicate-type URI to a :class:`PredicateType`: a name
for people, the JSON Schema file in ``schemas/`` for the predicates this
project defines (``provenance.attest`` validates with it), and a typed parser
where a reader needs one. The OMS signature predicate is parsed by
``provenance.manifest.Manifest.from_statement``; it is listed here without a
parser so that this module stays a leaf that everything else may import.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from provenance.errors import InputError, UsageError

__all__ = [
    "DATASET",
    "DATASET_PREDICATE_TYPE",
    "EVALUATION",
    "EVALUATION_PREDICATE_TYPE",
    "LEGACY_DIGESTS",
    "LEGACY_PREDICATE_TYPE",
    "MAX_STATEMENT_VALUES",
    "OMS_PREDICATE_TYPE",
    "OMS_SIGNATURE",
    "PREDICATE_TYPES",
    "SLSA_PREDICATE_TYPE",
    "SLSA_PROVENANCE",
    "STATEMENT_TYPE",
    "TRAINING_BUILD_TYPE",
    "DatasetPredicate",
    "DatasetSplit",
    "EvaluationPredicate",
    "Metric",
    "MetricThreshold",
    "PredicateType",
    "ResourceDescriptor",
    "SlsaProvenance",
    "Statement",
    "Subject",
    "predicate_type",
]

from provenance._internal.uris import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    STATEMENT_TYPE,
    TRAINING_BUILD_TYPE,
)

#: The error code of every malformed statement or predicate.
_CODE = "statement-invalid"

#: Objects, arrays, elements and members a statement may hold before it is
#: parsed, counted as the ``[ { , :`` that open or separate them. A statement
#: is often read before anyone checked its signature (``inspect``,
#: ``lineage``); the largest real one, a 200,000-file model's, has 1.4
#: million, and parsing it takes about 170 MB. The cap keeps any statement
#: within about that, where ``{},`` or ``"k1":0,`` repeated would otherwise
#: cost 20 times its size.
MAX_STATEMENT_VALUES = 2_000_000


# ---------------------------------------------------------------- strict field readers
#
# Each reader names the field it rejects (``predicate.runDetails.builder.id``),
# so the reason points at the byte that is wrong.


def _fail(reason: str) -> InputError:
    return InputError(reason, code=_CODE)


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{where} is not a JSON object")
    return value


def _optional_object(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    return {} if value is None else _object(value, f"{where}.{key}")


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{where} is not a list")
    return value


def _optional_list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    return [] if value is None else _list(value, f"{where}.{key}")


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        missing = key not in data
        raise _fail(f"{where}.{key} is {'missing' if missing else 'not a string'}")
    return value


def _optional_string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{where}.{key} is not a string")
    return value


def _optional_count(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    # bool is an int to Python, never a count to JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{where}.{key} is not an integer")
    return value


def _digest_set(value: object, where: str) -> dict[str, str]:
    digests = _object(value, where)
    out: dict[str, str] = {}
    for algorithm, hexdigest in digests.items():
        if not isinstance(algorithm, str) or not isinstance(hexdigest, str):
            raise _fail(f"{where} maps {algorithm!r} to a value that is not a string")
        out[algorithm] = hexdigest
    return out


def _put(out: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """Add the fields that are set, in the order given (JSON omits unset fields)."""
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


# ---------------------------------------------------------------- the statement


@dataclass(frozen=True)
class Subject:
    """What a statement is about: a name and its digests (``{"sha256": ROOT}``)."""

    name: str
    digest: Mapping[str, str]

    @classmethod
    def from_json(cls, data: object, where: str = "subject") -> Subject:
        obj = _object(data, where)
        if "digest" not in obj:
            raise _fail(f"{where}.digest is missing")
        digest = _digest_set(obj["digest"], f"{where}.digest")
        if not digest:
            raise _fail(f"{where}.digest is empty: a subject is named by its digests")
        return cls(_string(obj, "name", where), digest)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(self.digest)}


@dataclass(frozen=True, kw_only=True)
class Statement:
    """An in-toto Statement v1: subjects, a predicate type, and the predicate.

    ``predicate`` is the parsed JSON object, kept as it came so a reader can
    hand it to the typed parser of its :class:`PredicateType` (or to a schema);
    it is not copied, since an OMS predicate can list 200,000 resources.
    """

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any] = field(default_factory=dict)
    type: str = STATEMENT_TYPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "subjects", tuple(self.subjects))
        if self.type != STATEMENT_TYPE:
            raise _fail(f"not an in-toto Statement v1 ({STATEMENT_TYPE}): _type is {self.type!r}")
        if not self.subjects:
            raise _fail("statement has no subject")
        if not self.predicate_type:
            raise _fail("statement predicateType is empty")

    @classmethod
    def about(
        cls, name: str, sha256: str, predicate_type: str, predicate: Mapping[str, Any]
    ) -> Statement:
        """A statement about one artifact named by its root digest: the only kind made here."""
        return cls(
            subjects=(Subject(name, {"sha256": sha256}),),
            predicate_type=predicate_type,
            predicate=predicate,
        )

    @classmethod
    def parse(cls, data: bytes) -> Statement:
        """Parse exact (signed) bytes; any shape but a Statement v1 is an :class:`InputError`."""
        # Counted in C before parsing (one pass: what deleting the marks
        # removes); marks inside strings count too, which only makes the
        # bound stricter.
        text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        values = len(text) - len(text.translate(None, b"[{,:"))
        if values > MAX_STATEMENT_VALUES:
            raise _fail(
                f"statement holds more than {MAX_STATEMENT_VALUES} JSON values; "
                "it is not one this tool reads"
            )
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            # ValueError covers json.JSONDecodeError; RecursionError a hostile nesting depth.
            raise _fail("statement is not valid JSON") from None
        return cls.from_json(obj)

    @classmethod
    def from_json(cls, data: object) -> Statement:
        """A statement from already-parsed JSON, checked as strictly as :meth:`parse`."""
        obj = _object(data, "statement")
        kind = obj.get("_type")
        if kind != STATEMENT_TYPE:
            raise _fail(f"not an in-toto Statement v1 ({STATEMENT_TYPE}): _type is {kind!r}")
        subjects = _list(obj.get("subject"), "statement subject") if "subject" in obj else []
        if not subjects:
            raise _fail("statement has no subject")
        predicate_type = obj.get("predicateType")
        if not isinstance(predicate_type, str) or not predicate_type:
            raise _fail("statement predicateType is missing or not a string")
        # in-toto: an unset predicate is the same as an empty one.
        predicate = obj.get("predicate")
        predicate = {} if predicate is None else _object(predicate, "statement predicate")
        return cls(
            subjects=tuple(Subject.from_json(s, f"subject[{i}]") for i, s in enumerate(subjects)),
            predicate_type=predicate_type,
            predicate=predicate,
        )

    def to_json(self) -> dict[str, Any]:
        """The statement as JSON-able data, fields in the order in-toto lists them."""
        predicate = self.predicate if isinstance(self.predicate, dict) else dict(self.predicate)
        return {
            "_type": self.type,
            "subject": [s.to_json() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": predicate,
        }

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON, the bytes a new statement is signed as."""
        text = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A value made from bytes that are not UTF-8 (a file name, a shell
            # argument): such text cannot be signed as JSON.
            raise UsageError(
                "the statement holds text that is not valid UTF-8 (undecodable bytes in a "
                "name or value); give UTF-8 text",
                code="not-utf8",
            ) from None

    def has_subject_digest(self, digest: str, algorithm: str = "sha256") -> bool:
        """Whether any subject is named by this digest: is the statement about that artifact?"""
        want = digest.lower()
        return any(s.digest.get(algorithm, "").lower() == want for s in self.subjects)

    @property
    def subject_names(self) -> str:
        """The subjects' names, for a person reading why a statement was refused."""
        return ", ".join(s.name for s in self.subjects)


# ---------------------------------------------------------------- predicates


@dataclass(frozen=True)
class ResourceDescriptor:
    """An in-toto ResourceDescriptor v1: a dataset, model, source or image by digest.

    ``annotations.role`` says what the resource was to the run; a local
    ``annotations.path`` and the ``annotations.serialization`` it was hashed
    with let a verifier hash it again exactly as the attestation recorded.
    """

    name: str | None = None
    uri: str | None = None
    digest: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str | None:
        value = self.annotations.get("role")
        return value if isinstance(value, str) else None

    @property
    def path(self) -> str | None:
        value = self.annotations.get("path")
        return value if isinstance(value, str) else None

    @property
    def serialization(self) -> Mapping[str, Any] | None:
        """How a local path was hashed (the OMS ``serialization`` object), if recorded."""
        value = self.annotations.get("serialization")
        return value if isinstance(value, Mapping) else None

    @classmethod
    def from_json(cls, data: object, where: str) -> ResourceDescriptor:
        obj = _object(data, where)
        annotations = _optional_object(obj, "annotations", where)
        for key in ("role", "path"):
            _optional_string(annotations, key, f"{where}.annotations")
        if annotations.get("serialization") is not None:
            _object(annotations["serialization"], f"{where}.annotations.serialization")
        digest = _digest_set(obj["digest"], f"{where}.digest") if "digest" in obj else {}
        return cls(
            name=_optional_string(obj, "name", where),
            uri=_optional_string(obj, "uri", where),
            digest=digest,
            annotations=annotations,
        )

    def to_json(self) -> dict[str, Any]:
        out = _put({}, name=self.name, uri=self.uri)
        if self.digest:
            out["digest"] = dict(self.digest)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def _descriptors(data: Mapping[str, Any], key: str, where: str) -> tuple[ResourceDescriptor, ...]:
    items = _optional_list(data, key, where)
    return tuple(
        ResourceDescriptor.from_json(d, f"{where}.{key}[{i}]") for i, d in enumerate(items)
    )


@dataclass(frozen=True)
class SlsaProvenance:
    """SLSA Provenance v1: how an artifact was built, from which inputs, by whom.

    Generic over the build type: ``provenance`` writes
    :data:`TRAINING_BUILD_TYPE`, but a lineage may meet any builder's.
    """

    build_type: str
    builder_id: str
    external_parameters: Mapping[str, Any] = field(default_factory=dict)
    resolved_dependencies: tuple[ResourceDescriptor, ...] = ()
    invocation_id: str | None = None
    started_on: str | None = None
    finished_on: str | None = None
    byproducts: tuple[ResourceDescriptor, ...] = ()

    @property
    def kind(self) -> str | None:
        """What the run did (training, fine-tuning, ...), in this project's build type."""
        value = self.external_parameters.get("kind")
        return value if isinstance(value, str) else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlsaProvenance:
        where = "predicate"
        build = _object(data.get("buildDefinition"), f"{where}.buildDefinition")
        run = _object(data.get("runDetails"), f"{where}.runDetails")
        builder = _object(run.get("builder"), f"{where}.runDetails.builder")
        metadata = _optional_object(run, "metadata", f"{where}.runDetails")
        bw, mw = f"{where}.buildDefinition", f"{where}.runDetails.metadata"
        return cls(
            build_type=_string(build, "buildType", bw),
            builder_id=_string(builder, "id", f"{where}.runDetails.builder"),
            external_parameters=_object(
                build.get("externalParameters"), f"{bw}.externalParameters"
            ),
            resolved_dependencies=_descriptors(build, "resolvedDependencies", bw),
            invocation_id=_optional_string(metadata, "invocationId", mw),
            started_on=_optional_string(metadata, "startedOn", mw),
            finished_on=_optional_string(metadata, "finishedOn", mw),
            byproducts=_descriptors(run, "byproducts", f"{where}.runDetails"),
        )

    def to_json(self) -> dict[str, Any]:
        metadata = _put(
            {},
            invocationId=self.invocation_id,
            startedOn=self.started_on,
            finishedOn=self.finished_on,
        )
        run: dict[str, Any] = {"builder": {"id": self.builder_id}}
        if metadata:
            run["metadata"] = metadata
        if self.byproducts:
            run["byproducts"] = [b.to_json() for b in self.byproducts]
        return {
            "buildDefinition": {
                "buildType": self.build_type,
                "externalParameters": dict(self.external_parameters),
                "resolvedDependencies": [d.to_json() for d in self.resolved_dependencies],
            },
            "runDetails": run,
        }


@dataclass(frozen=True)
class DatasetSplit:
    name: str
    records: int | None = None


@dataclass(frozen=True)
class DatasetPredicate:
    """What a dataset is: its name, origin, licence, version, splits and size."""

    name: str
    source_uri: str | None = None
    license: str | None = None
    version: str | None = None
    description: str | None = None
    records: int | None = None
    files: int | None = None
    manifest_digest: str | None = None
    splits: tuple[DatasetSplit, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetPredicate:
        w = "predicate"
        splits = []
        for i, item in enumerate(_optional_list(data, "splits", w)):
            split = _object(item, f"{w}.splits[{i}]")
            splits.append(
                DatasetSplit(
                    _string(split, "name", f"{w}.splits[{i}]"),
                    _optional_count(split, "records", f"{w}.splits[{i}]"),
                )
            )
        return cls(
            name=_string(data, "name", w),
            source_uri=_optional_string(data, "sourceUri", w),
            license=_optional_string(data, "license", w),
            version=_optional_string(data, "version", w),
            description=_optional_string(data, "description", w),
            records=_optional_count(data, "records", w),
            files=_optional_count(data, "files", w),
            manifest_digest=_optional_string(data, "manifestDigest", w),
            splits=tuple(splits),
        )

    def to_json(self) -> dict[str, Any]:
        out = _put(
            {"name": self.name},
            sourceUri=self.source_uri,
            license=self.license,
            version=self.version,
            description=self.description,
            records=self.records,
            files=self.files,
            manifestDigest=self.manifest_digest,
        )
        if self.splits:
            out["splits"] = [_put({"name": s.name}, records=s.records) for s in self.splits]
        return out


MetricValue = float | int | str | bool


@dataclass(frozen=True)
class Metric:
    name: str
    value: MetricValue


@dataclass(frozen=True)
class MetricThreshold:
    """The bar a metric was held to: ``metric`` and a condition such as ``>=0.9``."""

    metric: str
    condition: str

    def parts(self) -> tuple[str, float] | None:
        """The operator and the bound, or None when the condition is not one this
        tool reads (``attest eval`` refuses those; a policy denies them)."""
        m = _CONDITION.fullmatch(self.condition)
        if m is None:
            return None
        bound = float(m.group(2))
        return (m.group(1), bound) if math.isfinite(bound) else None


# ``>=0.9``, ``< 1e-3``: an operator and a plain decimal number, as JSON writes it.
_CONDITION = re.compile(r"\s*(>=|<=|==|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*")


@dataclass(frozen=True)
class EvaluationPredicate:
    """Metrics measured on datasets named by digest, and the thresholds they were held to."""

    metrics: tuple[Metric, ...]
    evaluated_on: str
    datasets: tuple[ResourceDescriptor, ...] = ()
    thresholds: tuple[MetricThreshold, ...] = ()
    evaluator_id: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationPredicate:
        w = "predicate"
        metrics = []
        for i, item in enumerate(_list(data.get("metrics"), f"{w}.metrics")):
            m = _object(item, f"{w}.metrics[{i}]")
            value = m.get("value")
            finite = not isinstance(value, float) or math.isfinite(value)
            if not isinstance(value, (int, float, str)) or not finite:
                raise _fail(f"{w}.metrics[{i}].value is not a number, string or boolean")
            metrics.append(Metric(_string(m, "name", f"{w}.metrics[{i}]"), value))
        thresholds = []
        for i, item in enumerate(_optional_list(data, "thresholds", w)):
            t = _object(item, f"{w}.thresholds[{i}]")
            thresholds.append(
                MetricThreshold(
                    _string(t, "metric", f"{w}.thresholds[{i}]"),
                    _string(t, "condition", f"{w}.thresholds[{i}]"),
                )
            )
        evaluator = _optional_object(data, "evaluator", w)
        evaluator_id = _string(evaluator, "id", f"{w}.evaluator") if "evaluator" in data else None
        return cls(
            metrics=tuple(metrics),
            evaluated_on=_string(data, "evaluatedOn", w),
            datasets=_descriptors(data, "datasets", w),
            thresholds=tuple(thresholds),
            evaluator_id=evaluator_id,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metrics": [{"name": m.name, "value": m.value} for m in self.metrics],
            "datasets": [d.to_json() for d in self.datasets],
            "evaluatedOn": self.evaluated_on,
        }
        if self.thresholds:
            out["thresholds"] = [
                {"metric": t.metric, "condition": t.condition} for t in self.thresholds
            ]
        if self.evaluator_id:
            out["evaluator"] = {"id": self.evaluator_id}
        return out


# ---------------------------------------------------------------- the registry

P = TypeVar("P")


@dataclass(frozen=True)
class PredicateType(Generic[P]):
    """What this project knows about one predicate type.

    ``schema`` is the file in ``schemas/`` that governs the predicate, for the
    types this project defines; SLSA provenance is governed per build type
    (``build_schemas``), since only this project's build type is ours to
    describe. ``parser`` turns a predicate into its typed model.
    """

    uri: str
    name: str
    schema: str | None = None
    build_schemas: Mapping[str, str] = field(default_factory=dict)
    parser: Callable[[Mapping[str, Any]], P] | None = field(default=None, repr=False)

    def schema_for(self, predicate: Mapping[str, Any]) -> str | None:
        """The schema file for this predicate, or None when it is not one of ours."""
        if self.schema is not None:
            return self.schema
        build = predicate.get("buildDefinition")
        build_type = build.get("buildType") if isinstance(build, Mapping) else None
        return self.build_schemas.get(build_type) if isinstance(build_type, str) else None

    def parse(self, predicate: Mapping[str, Any]) -> P:
        """The typed predicate; :class:`InputError` naming the first field that is wrong."""
        if self.parser is None:
            raise _fail(f"{self.name} predicates have no typed parser here")
        return self.parser(_object(predicate, "predicate"))


OMS_SIGNATURE: PredicateType[Any] = PredicateType(
    OMS_PREDICATE_TYPE, "model signature (OpenSSF Model Signing)"
)
LEGACY_DIGESTS: PredicateType[Any] = PredicateType(
    LEGACY_PREDICATE_TYPE, "model signature (model-signing 0.2 digests)"
)
SLSA_PROVENANCE: PredicateType[SlsaProvenance] = PredicateType(
    SLSA_PREDICATE_TYPE,
    "SLSA provenance",
    build_schemas=MappingProxyType({TRAINING_BUILD_TYPE: "training.schema.json"}),
    parser=SlsaProvenance.from_json,
)
DATASET: PredicateType[DatasetPredicate] = PredicateType(
    DATASET_PREDICATE_TYPE, "dataset", "dataset.schema.json", parser=DatasetPredicate.from_json
)
EVALUATION: PredicateType[EvaluationPredicate] = PredicateType(
    EVALUATION_PREDICATE_TYPE,
    "evaluation",
    "evaluation.schema.json",
    parser=EvaluationPredicate.from_json,
)

#: Every predicate type known here, by URI.
PREDICATE_TYPES: Mapping[str, PredicateType[Any]] = MappingProxyType(
    {t.uri: t for t in (OMS_SIGNATURE, LEGACY_DIGESTS, SLSA_PROVENANCE, DATASET, EVALUATION)}
)


def predicate_type(uri: str) -> PredicateType[Any] | None:
    """The registered description of a predicate type, or None for one unknown here."""
    return PREDICATE_TYPES.get(uri)
