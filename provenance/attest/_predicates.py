"""Predicates for lineage attestations: dataset, training (SLSA v1), evaluation.

Each builder returns the predicate as JSON-able data, written through the
typed models of :mod:`provenance.intoto` so that what is built and what is
read back are one shape. Inputs that name data on disk are hashed with the
same engine as models, so every edge of the lineage is a root digest; the
path and the hashing settings are kept in annotations so verification can
hash the data again exactly as it was hashed here.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from provenance.errors import InputError, UsageError
from provenance.hashing import hash_as, serialization_for
from provenance.intoto import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    TRAINING_BUILD_TYPE,
    DatasetPredicate,
    DatasetSplit,
    EvaluationPredicate,
    Metric,
    MetricThreshold,
    ResourceDescriptor,
    SlsaProvenance,
)
from provenance.manifest import Manifest, Serialization

__all__ = [
    "DATASET_PREDICATE_TYPE",
    "EVALUATION_PREDICATE_TYPE",
    "SLSA_PREDICATE_TYPE",
    "TRAINING_BUILD_TYPE",
    "Artifact",
    "CiContext",
    "dataset_predicate",
    "detect_ci",
    "evaluation_predicate",
    "input_base",
    "load_config",
    "now",
    "parse_params",
    "resolve",
    "rfc3339",
    "subject_manifest",
    "training_predicate",
]

_REF = re.compile(r"^(?P<uri>.+)@(?P<algo>sha256|sha384|sha512):(?P<hex>[0-9a-fA-F]+)$")


def subject_manifest(
    model_path: str | os.PathLike[str], serialization: Serialization | None = None
) -> Manifest:
    """The manifest whose root digest an attestation about this model names.

    Hashed with the settings the caller chose (the defaults unless given),
    never with settings read from a signature file beside the model: nobody
    has verified that file here, and its ignore list could hide a poisoned
    file. Sign and attest with the same settings and the digests meet.
    """
    if serialization is not None and not Path(model_path).is_dir():
        serialization = Serialization(
            serialization.method,
            serialization.hash_type,
            serialization.allow_symlinks,
            serialization.shard_size,
        )  # a single file has nothing to ignore
    return hash_as(model_path, serialization or serialization_for(model_path))


def input_base(model_path: str | os.PathLike[str]) -> str:
    """The folder inputs' relative paths are relative to: the model folder, or for a
    single-file model the folder that holds it (as the file system resolves it)."""
    real = os.path.realpath(model_path)
    return real if os.path.isdir(real) else os.path.dirname(real)


def now() -> str:
    """RFC 3339 UTC time, second precision, as SLSA and in-toto use."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Artifact:
    """A dataset or model named either by a local path or by ``URI@sha256:DIGEST``."""

    name: str
    digest: dict[str, str]
    uri: str | None = None
    path: str | None = None
    serialization: dict[str, Any] | None = None  # how a local path was hashed

    def resource(self, role: str | None = None) -> ResourceDescriptor:
        """The typed descriptor: role, local path and hashing settings as annotations."""
        annotations: dict[str, Any] = {}
        if role:
            annotations["role"] = role
        if self.path:
            annotations["path"] = self.path
        if self.serialization is not None:
            annotations["serialization"] = self.serialization
        return ResourceDescriptor(self.name, self.uri, dict(self.digest), annotations)


def resolve(
    reference: str, *, plain_file: bool = False, serialization: Serialization | None = None
) -> Artifact:
    """Hash a path, or parse ``URI@sha256:HEX``; the result names the artifact by digest.

    A path is named by its root digest, hashed with ``serialization`` (the
    caller's choice; the defaults unless given), which the descriptor records
    so verification repeats it exactly. A signature file beside the input is
    never read for its settings: nobody has verified it here. Hash inputs
    with the settings they were signed with and lineage edges meet the
    digests their signatures and attestations use. ``plain_file`` gives a
    single file's own SHA-256 instead (logs and metrics files, which people
    check with ``sha256sum``).
    """
    if reference.startswith("hf://") and not Path(reference).exists():
        hub_artifact = _hub_artifact(reference, serialization)
        if hub_artifact is not None:
            return hub_artifact
    m = _REF.match(reference)
    if m and not Path(reference).exists():
        algo, hexdigest = m.group("algo"), m.group("hex").lower()
        sizes = {"sha256": 64, "sha384": 96, "sha512": 128}
        if len(hexdigest) != sizes[algo]:
            raise InputError(f"'{reference}': a {algo} digest has {sizes[algo]} hex digits")
        uri = m.group("uri")
        return Artifact(name=uri.rstrip("/").rsplit("/", 1)[-1], digest={algo: hexdigest}, uri=uri)
    path = Path(reference)
    if not path.exists():
        raise InputError(
            f"'{reference}' is neither an existing path nor of the form URI@sha256:DIGEST"
        )
    if plain_file and not path.is_dir():
        return Artifact(
            name=path.name, digest={"sha256": _file_sha256(path)}, path=os.path.abspath(path)
        )
    manifest = subject_manifest(path, serialization)
    return Artifact(
        name=Path(os.path.abspath(path)).name,
        digest={"sha256": manifest.root_digest},
        path=os.path.abspath(path),
        serialization=manifest.serialization.to_json(),
    )


def _hub_artifact(reference: str, serialization: Serialization | None) -> Artifact | None:
    """``hf://ORG/NAME@REV``: the cached snapshot of that commit, hashed in place.

    Recorded as ``hf://ORG/NAME@COMMIT`` with its root digest and hashing
    settings, so a checker finds the same snapshot in its own cache (or
    says it is not there). ``hf://ORG/NAME@COMMIT@sha256:ROOT`` records the
    digest given, as ``hf://ORG/NAME@sha256:ROOT`` does without a commit.
    None for text that is no Hub reference (read as ``URI@DIGEST``, or refused).
    """
    from provenance import hub

    ref = hub.parse_reference(reference)
    if ref is None:
        return None  # not one: read as URI@DIGEST, or refused as neither
    if ref.sha256 is not None:
        if ref.revision is None:
            # No commit: named by its repository, with the digest given.
            return Artifact(
                name=ref.repo_id, digest={"sha256": ref.sha256}, uri=f"hf://{ref.repo_id}"
            )
        if ref.commit is None:
            raise UsageError(
                f"'{reference}': with a digest, name the commit (40 hex digits), not "
                f"'{ref.revision}'"
            )
        return Artifact(
            name=ref.repo_id, digest={"sha256": ref.sha256}, uri=f"hf://{ref.repo_id}@{ref.commit}"
        )
    commit, folder = hub.cached_snapshot(ref.repo_id, ref.revision or "main")
    manifest = subject_manifest(folder, serialization)
    claimed = hub.claimed_manifest(folder)
    # The cache holding part of the commit (or changed bytes): recording its
    # digest would name a model nobody signed.
    if (
        claimed is not None
        and _same_hashing(claimed.serialization, manifest.serialization)
        and claimed.root_digest != manifest.root_digest
    ):
        raise InputError(
            f"the cached snapshot of {ref.repo_id}@{commit[:12]} does not hash to what "
            f"its signature lists (sha256:{claimed.root_digest[:16]}...): files are "
            f"missing or changed in {folder}; fetch and check it with provenance hub "
            f"verify {ref.repo_id} --revision {commit} ...",
            code="hub-cache-incomplete",
        )
    return Artifact(
        name=ref.repo_id,
        digest={"sha256": manifest.root_digest},
        uri=f"hf://{ref.repo_id}@{commit}",
        serialization=manifest.serialization.to_json(),
    )


def _same_hashing(a: Serialization, b: Serialization) -> bool:
    return (a.method, a.hash_type, a.shard_size) == (b.method, b.hash_type, b.shard_size)


def _file_sha256(path: Path) -> str:
    """SHA-256 of a regular file, opened without blocking (a FIFO or device is refused)."""
    import hashlib

    from provenance._internal.fsutil import open_regular

    fd = open_regular(path, "file", follow_symlinks=True)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise InputError(f"cannot read '{path}': {e.strerror}", code="unreadable") from None
    finally:
        os.close(fd)
    return h.hexdigest()


def rfc3339(value: str | None, what: str) -> str | None:
    """Check an RFC 3339 time (``2026-01-31T12:00:00Z``) and return it unchanged."""
    if value is None:
        return None
    text = value.strip()
    ok = re.fullmatch(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text
    )
    try:
        if ok:
            datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        ok = None
    if not ok:
        raise UsageError(f"{what} {value!r} is not an RFC 3339 time like 2026-01-31T12:00:00Z")
    return text


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(name)


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values that read as JSON (numbers, booleans) keep their type.

    ``NaN``, ``Infinity`` and numbers beyond a double (``1e999``) are refused:
    JSON has no such numbers, and a metric of NaN passes no threshold honestly.
    """
    from provenance.attest._parse import non_finite

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"'{pair}' is not KEY=VALUE")
        try:
            parsed = json.loads(value, parse_constant=_no_constant)
        except _NotJson:
            parsed = None
            bad = True
        except (ValueError, RecursionError):
            parsed, bad = value, False
        else:
            bad = non_finite(parsed) is not None
        if bad:
            raise UsageError(
                f"'{pair}': {value.strip()} is not a JSON number (NaN and infinities are not JSON)",
                code="value-not-json",
            )
        out[key] = parsed
    return out


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training config file (JSON, or YAML when PyYAML is installed)."""
    from provenance._internal.fsutil import read_limited

    raw = read_limited(path, "config", 16 << 20)
    text = raw.decode("utf-8", "replace")
    if str(path).endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InputError(f"config '{path}' is YAML; install PyYAML or give JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"config '{path}' is not valid YAML: {e}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputError(f"config '{path}' is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"config '{path}' must hold an object at the top")
    return data


# ---------------------------------------------------------------- CI environments


@dataclass(frozen=True)
class CiContext:
    """What a CI system says about the run: who built, which run, from which source."""

    builder_id: str
    invocation_id: str | None = None
    source_uri: str | None = None
    source_commit: str | None = None


_COMMIT = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:\s]+)@(?P<host>[^:/\s]+):(?P<path>[^\s]+)$")


def _commit(value: str | None) -> str | None:
    """A full commit id, or None (CI systems also say ``HEAD`` or a short id)."""
    return value.lower() if value and _COMMIT.fullmatch(value) else None


def _git_uri(repo: str | None, ref: str | None) -> str | None:
    """``git+<repository URL>@<ref>`` (SPDX download location style), or None.

    An scp-like address (``git@host:org/repo.git``) becomes ``ssh://git@host/org/repo.git``
    so that the result is a URI.
    """
    if not repo:
        return None
    m = _SCP_LIKE.match(repo)
    if m and "://" not in repo:
        repo = f"ssh://{m.group('user')}@{m.group('host')}/{m.group('path')}"
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", repo):
        return None
    return f"git+{repo}@{ref}" if ref else f"git+{repo}"


def _github(env: Mapping[str, str]) -> CiContext:
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo = env.get("GITHUB_REPOSITORY", "")
    workflow_ref = env.get("GITHUB_WORKFLOW_REF")
    run = env.get("GITHUB_RUN_ID")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
    return CiContext(
        builder_id=f"{server}/{workflow_ref}" if workflow_ref else f"{server}/{repo}",
        invocation_id=f"{server}/{repo}/actions/runs/{run}/attempts/{attempt}" if run else None,
        source_uri=f"git+{server}/{repo}@{env['GITHUB_REF']}" if env.get("GITHUB_REF") else None,
        source_commit=env.get("GITHUB_SHA"),
    )


def _gitlab(env: Mapping[str, str]) -> CiContext:
    server = env.get("CI_SERVER_URL", "https://gitlab.com")
    project = env.get("CI_PROJECT_PATH", "")
    runner = env.get("CI_RUNNER_ID")
    ref = env.get("CI_COMMIT_REF_NAME")
    return CiContext(
        builder_id=f"{server}/{project}/-/runners/{runner}" if runner else f"{server}/{project}",
        invocation_id=env.get("CI_JOB_URL"),
        source_uri=f"git+{server}/{project}@{ref}" if ref else None,
        source_commit=env.get("CI_COMMIT_SHA"),
    )


def _buildkite(env: Mapping[str, str]) -> CiContext:
    """BUILDKITE_ORGANIZATION_SLUG, _PIPELINE_SLUG, _BUILD_URL, _JOB_ID, _REPO, _BRANCH, _TAG,
    _COMMIT (Buildkite's documented agent environment)."""
    org = env.get("BUILDKITE_ORGANIZATION_SLUG")
    pipeline = env.get("BUILDKITE_PIPELINE_SLUG")
    builder = "https://buildkite.com"
    if org and pipeline:
        builder += f"/{quote(org)}/{quote(pipeline)}"
    build_url = env.get("BUILDKITE_BUILD_URL")
    job = env.get("BUILDKITE_JOB_ID")
    invocation = f"{build_url}#{job}" if build_url and job else build_url
    ref = env.get("BUILDKITE_TAG") or env.get("BUILDKITE_BRANCH")
    return CiContext(
        builder_id=builder,
        invocation_id=invocation,
        source_uri=_git_uri(env.get("BUILDKITE_REPO"), ref),
        source_commit=_commit(env.get("BUILDKITE_COMMIT")),
    )


def _circleci(env: Mapping[str, str]) -> CiContext:
    """CIRCLE_PROJECT_USERNAME, _PROJECT_REPONAME, _JOB, _BUILD_URL, _REPOSITORY_URL, _TAG,
    _BRANCH, _SHA1 (CircleCI's documented built-in environment variables)."""
    user = env.get("CIRCLE_PROJECT_USERNAME")
    repo = env.get("CIRCLE_PROJECT_REPONAME")
    builder = "https://circleci.com"
    if user and repo:
        builder += f"/{quote(user)}/{quote(repo)}"
        if env.get("CIRCLE_JOB"):
            builder += f"/jobs/{quote(env['CIRCLE_JOB'])}"
    ref = env.get("CIRCLE_TAG") or env.get("CIRCLE_BRANCH")
    return CiContext(
        builder_id=builder,
        invocation_id=env.get("CIRCLE_BUILD_URL"),
        source_uri=_git_uri(env.get("CIRCLE_REPOSITORY_URL"), ref),
        source_commit=_commit(env.get("CIRCLE_SHA1")),
    )


def _azure(env: Mapping[str, str]) -> CiContext:
    """SYSTEM_COLLECTIONURI, SYSTEM_TEAMPROJECT, SYSTEM_DEFINITIONID, BUILD_BUILDID,
    BUILD_REPOSITORY_URI, BUILD_SOURCEBRANCH, BUILD_SOURCEVERSION (Azure Pipelines'
    predefined variables, as the agent exports them)."""
    collection = env.get("SYSTEM_COLLECTIONURI", "https://dev.azure.com/")
    if not collection.endswith("/"):
        collection += "/"
    project = quote(env.get("SYSTEM_TEAMPROJECT", ""))
    definition = env.get("SYSTEM_DEFINITIONID")
    build = env.get("BUILD_BUILDID")
    builder = f"{collection}{project}/_build" if project else collection.rstrip("/")
    if project and definition:
        builder += f"?definitionId={quote(definition)}"
    invocation = (
        f"{collection}{project}/_build/results?buildId={quote(build)}"
        if build and project
        else None
    )
    return CiContext(
        builder_id=builder,
        invocation_id=invocation,
        source_uri=_git_uri(env.get("BUILD_REPOSITORY_URI"), env.get("BUILD_SOURCEBRANCH")),
        source_commit=_commit(env.get("BUILD_SOURCEVERSION")),
    )


def _jenkins(env: Mapping[str, str]) -> CiContext:
    """JENKINS_URL, JOB_URL, BUILD_URL, GIT_URL, GIT_BRANCH, GIT_COMMIT (Jenkins' documented
    build environment; the GIT_* ones come from its Git plugin)."""
    jenkins = env.get("JENKINS_URL", "")
    return CiContext(
        builder_id=env.get("JOB_URL") or jenkins,
        invocation_id=env.get("BUILD_URL"),
        source_uri=_git_uri(env.get("GIT_URL"), env.get("GIT_BRANCH")),
        source_commit=_commit(env.get("GIT_COMMIT")),
    )


def _is_url(value: str | None) -> bool:
    return bool(value) and bool(re.match(r"^https?://[^\s]+$", value or ""))


def detect_ci(env: Mapping[str, str] | None = None) -> CiContext | None:
    """The CI run this process is part of, from the system's documented variables.

    GitHub Actions (``GITHUB_ACTIONS=true``), GitLab CI (``GITLAB_CI=true``),
    Buildkite (``BUILDKITE=true``), CircleCI (``CIRCLECI=true``), Azure
    Pipelines (``TF_BUILD=True``) and Jenkins (``JENKINS_URL`` and
    ``BUILD_URL``); None elsewhere. ``env`` defaults to the process
    environment. A commit id is taken only when it is a full one.
    """
    env = os.environ if env is None else env
    flag = {k: env.get(k, "").strip().lower() for k in ("GITHUB_ACTIONS", "GITLAB_CI",
            "BUILDKITE", "CIRCLECI", "TF_BUILD")}  # fmt: skip
    if flag["GITHUB_ACTIONS"] == "true":
        return _github(env)
    if flag["GITLAB_CI"] == "true":
        return _gitlab(env)
    if flag["BUILDKITE"] == "true":
        return _buildkite(env)
    if flag["CIRCLECI"] == "true":
        return _circleci(env)
    if flag["TF_BUILD"] == "true":
        return _azure(env)
    if _is_url(env.get("JENKINS_URL")) and _is_url(env.get("BUILD_URL")):
        return _jenkins(env)
    return None


# ---------------------------------------------------------------- predicates


def dataset_predicate(
    *,
    name: str,
    source_uri: str | None = None,
    license: str | None = None,
    version: str | None = None,
    splits: Mapping[str, int | None] | None = None,
    records: int | None = None,
    manifest_digest: str | None = None,
    files: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """What a dataset is: its name, origin, licence, version, splits and size."""
    return DatasetPredicate(
        name=name,
        source_uri=source_uri,
        license=license,
        version=version,
        description=description,
        records=records,
        files=files,
        manifest_digest=manifest_digest,
        splits=tuple(DatasetSplit(k, v) for k, v in (splits or {}).items()),
    ).to_json()


def _source(commit: str, uri: str | None) -> ResourceDescriptor:
    if not re.fullmatch(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", commit):
        raise UsageError(
            f"source commit {commit!r} is not a full git commit id (40 or 64 hex digits)",
            code="source-commit-invalid",
        )
    return ResourceDescriptor(
        uri=uri, digest={"gitCommit": commit.lower()}, annotations={"role": "source"}
    )


def _image(image: str) -> ResourceDescriptor:
    m = _REF.match(image)
    if not m or m.group("algo") != "sha256":
        raise UsageError(
            f"container image {image!r} must be pinned by digest: NAME@sha256:HEX",
            code="image-unpinned",
        )
    uri = m.group("uri")
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        uri = f"oci://{uri}"  # a ResourceDescriptor's uri needs a scheme
    return ResourceDescriptor(
        uri=uri,
        digest={"sha256": m.group("hex").lower()},
        annotations={"role": "container-image"},
    )


def training_predicate(
    *,
    datasets: Sequence[Artifact] = (),
    validation_datasets: Sequence[Artifact] = (),
    base_model: Artifact | Sequence[Artifact] | None = None,
    source_uri: str | None = None,
    source_commit: str | None = None,
    image: str | None = None,
    params: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    entry_point: str | None = None,
    kind: str = "training",
    builder_id: str,
    invocation_id: str | None = None,
    started_on: str | None = None,
    finished_on: str | None = None,
    byproducts: Sequence[Artifact] = (),
) -> dict[str, Any]:
    """SLSA Provenance v1 for a training, fine-tuning, quantisation, conversion or merge."""
    external: dict[str, Any] = {"kind": kind}
    if entry_point:
        external["entryPoint"] = entry_point
    if params:
        external["hyperparameters"] = dict(params)
    if config:
        external["config"] = dict(config)
    bases = [base_model] if isinstance(base_model, Artifact) else list(base_model or ())
    deps = [
        *(d.resource("training-data") for d in datasets),
        *(d.resource("validation-data") for d in validation_datasets),
        *(b.resource("base-model") for b in bases),
    ]
    if source_commit:
        deps.append(_source(source_commit, source_uri))
    if image:
        deps.append(_image(image))
    return SlsaProvenance(
        build_type=TRAINING_BUILD_TYPE,
        builder_id=builder_id,
        external_parameters=external,
        resolved_dependencies=tuple(deps),
        invocation_id=invocation_id,
        started_on=started_on,
        finished_on=finished_on,
        byproducts=tuple(b.resource() for b in byproducts),
    ).to_json()


def evaluation_predicate(
    *,
    metrics: Mapping[str, Any],
    datasets: Sequence[Artifact] = (),
    thresholds: Mapping[str, str] | None = None,
    evaluator_id: str | None = None,
    evaluated_on: str | None = None,
) -> dict[str, Any]:
    """Metrics measured on named datasets, with the thresholds they were held to."""
    if not metrics:
        raise UsageError(
            "an evaluation needs at least one metric NAME=VALUE", code="metrics-missing"
        )
    for name, condition in (thresholds or {}).items():
        # A threshold on no metric, on one without a number, or one a policy
        # cannot read is recorded fine and only fails at deployment.
        if MetricThreshold(name, condition).parts() is None:
            raise UsageError(
                f"threshold {name}{condition} is not an operator (>=, <=, ==, >, <) and a "
                "finite decimal number, like accuracy>=0.9",
                code="threshold-unreadable",
            )
        if name not in metrics:
            import difflib

            close = difflib.get_close_matches(name, list(metrics), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(
                f"threshold on metric '{name}', which this evaluation does not record{hint}; "
                f"its metrics: {', '.join(metrics)}",
                code="threshold-without-metric",
            )
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(
                f"threshold on metric '{name}', whose value {value!r} is not a number",
                code="threshold-without-metric",
            )
    return EvaluationPredicate(
        metrics=tuple(Metric(k, v) for k, v in metrics.items()),
        evaluated_on=evaluated_on or now(),
        datasets=tuple(d.resource("evaluation-data") for d in datasets),
        thresholds=tuple(MetricThreshold(k, v) for k, v in (thresholds or {}).items()),
        evaluator_id=evaluator_id,
    ).to_json()
