"""``provenance attest``: signed statements about datasets, training runs, evaluations.

Every subcommand takes the signer options of ``sign`` (one
:class:`~provenance_cli._signer_options.SignerOptions`) and its hashing
options (one :class:`~provenance_cli._common.HashingOptions`), and reports
through :func:`provenance_cli._output.emit`: the contract head, then
:meth:`provenance.attest.AttestResult.to_json` (``schemas/cli-attest.schema.json``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from provenance.errors import UsageError
from provenance_cli._common import HashingOptions, handle_errors, json_option
from provenance_cli._output import Line, emit
from provenance_cli._signer_options import SignerOptions
from provenance_cli.verify import TrustOptions

if TYPE_CHECKING:
    from provenance.attest import AttestResult, InputPaths, PruneResult
    from provenance.manifest import Manifest, Serialization

F = TypeVar("F", bound=Callable[..., Any])


def _attest_options(fn: F) -> F:
    """What every subcommand takes: signer, --output, hashing, --json."""
    fn = json_option(fn)
    fn = HashingOptions.options(fn)
    fn = click.option(
        "--output",
        type=click.Path(path_type=str),
        metavar="FILE",
        help="Attestations file to append to (default TARGET/model.intoto.jsonl).",
    )(fn)
    return SignerOptions.options(fn)


def _serialization(target: str, hashing: HashingOptions) -> Serialization:
    """The hashing settings the user chose for the subject and every local input.

    Never read from a signature beside the target: sign and attest with the
    same settings and the digests meet.
    """
    from provenance.hashing import serialization_for

    return serialization_for(
        target,
        method=hashing.resolved_method(),
        algorithm=hashing.algorithm,
        shard_size=hashing.shard_size,
        ignore_paths=hashing.ignore_paths,
        allow_symlinks=hashing.allow_symlinks,
    )


def _inputs_serialization(serialization: Serialization) -> Serialization:
    """The same settings without the subject's own ignore list (inputs have theirs)."""
    from provenance.manifest import DEFAULT_IGNORE_PATHS, Serialization

    return Serialization(
        serialization.method,
        serialization.hash_type,
        serialization.allow_symlinks,
        serialization.shard_size,
        DEFAULT_IGNORE_PATHS,
    )


#: Library error codes whose reason the caller would act on through one option.
_FLAG_OF_CODE = {
    "value-not-json": "--metric/--param",
    "source-commit-invalid": "--source-commit",
    "image-unpinned": "--image",
    "metrics-missing": "--metric",
}


@contextlib.contextmanager
def _in_flag_words() -> Iterator[None]:
    """Name the option at fault: library messages speak of values, never of flags."""
    try:
        yield
    except UsageError as e:
        flag = _FLAG_OF_CODE.get(e.code)
        if flag is None:
            raise
        raise UsageError(f"{flag}: {e.reason}", e.details, code=e.code, hint=e.hint) from None


def _input_paths_options(fn: F) -> F:
    """How inputs' local paths are recorded: relative to the model (default), absolute, none."""
    fn = click.option(
        "--absolute-input-paths",
        is_flag=True,
        help="Record inputs' paths as given on this machine (they are published with "
        "the attestation).",
    )(fn)
    return click.option(
        "--no-input-paths",
        is_flag=True,
        help="Record inputs by name and digest only (verify cannot re-hash them).",
    )(fn)


def _input_paths(no_input_paths: bool, absolute_input_paths: bool) -> InputPaths:
    if no_input_paths and absolute_input_paths:
        raise UsageError("give --no-input-paths or --absolute-input-paths, not both")
    if no_input_paths:
        return "none"
    return "absolute" if absolute_input_paths else "relative"


def _check_output(target: str, output: str | None) -> None:
    """Refuse an output that is not ours before anything is hashed or signed."""
    from provenance import attest

    if os.path.exists(target) or os.path.islink(target):
        attest.check_output(target, output)


def _sign_and_append(
    target: str,
    predicate_type: str,
    predicate: Mapping[str, Any],
    subject: Manifest,
    *,
    signer: SignerOptions,
    output: str | None,
    as_json: bool,
    input_paths: InputPaths = "relative",
) -> None:
    """Sign and append; ``subject`` is the target's manifest, already hashed."""
    from provenance import attest

    result = attest.attest(
        target,
        predicate_type,
        predicate,
        signer.build(),
        output=output,
        subject=(subject.model_name, subject.root_digest),
        input_paths=input_paths,
    )
    emit(result, as_json=as_json, lines=_text(result))


def _text(result: AttestResult) -> list[Line]:
    """What was attested, by whom, and where it went, for people."""
    named = result.statement.subjects[0]
    lines = [
        Line(
            f"Attested {result.statement.predicate_type} for '{named.name}' "
            f"(sha256:{named.digest['sha256']})"
        )
    ]
    if result.signer is not None:
        lines.append(Line(f"  signed by {result.signer.description}"))
    lines.append(Line(f"  appended as line {result.line} of {result.path}"))
    return lines


@click.group("attest")
def attest_group() -> None:
    """Sign statements about what a model was made from and how it scored.

    Each statement's subject is the model's (or dataset's) root digest; it is
    appended to model.intoto.jsonl beside model.sig, outside the model's
    manifest. Signer options are those of `provenance sign`. After the model
    changed and was signed again, `provenance attest prune MODEL` drops the
    lines about its old digest.
    """


@attest_group.command("dataset")
@click.argument("dataset", type=click.Path(path_type=str))
@click.option("--name", help="Dataset name (default: the folder or file name).")
@click.option("--source-uri", metavar="URI", help="Where the data came from.")
@click.option("--license", "license_", metavar="SPDX", help="Licence, as an SPDX identifier.")
@click.option("--version", "version_", help="Dataset version or release tag.")
@click.option("--description", help="One line on what the data is.")
@click.option("--records", type=click.IntRange(min=0), help="Number of records, where known.")
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="NAME[=RECORDS]",
    help="A split and its record count (repeatable), e.g. --split train=9000.",
)
@_attest_options
@handle_errors()
def dataset_command(
    dataset: str,
    name: str | None,
    source_uri: str | None,
    license_: str | None,
    version_: str | None,
    description: str | None,
    records: int | None,
    splits: tuple[str, ...],
    output: str | None,
    signer: SignerOptions,
    hashing: HashingOptions,
    as_json: bool,
) -> None:
    """Attest what DATASET is; its subject is the dataset's root digest.

    Datasets are hashed with the same engine as models (`provenance hash
    DATASET` prints the digest), so training attestations can name them.
    """
    from provenance import attest

    split_counts: dict[str, int | None] = {}
    for s in splits:
        key, sep, value = s.partition("=")
        if not key:
            raise UsageError(f"--split {s!r} needs a name")
        try:
            count = int(value) if sep else None
        except ValueError:
            raise UsageError(f"--split {s!r}: the record count must be a whole number") from None
        if count is not None and count < 0:
            # Refused before the dataset is hashed, which can take a while.
            raise UsageError(f"--split {s!r}: a record count cannot be negative")
        split_counts[key] = count
    import hashlib
    import json

    from provenance.errors import InputError

    if not os.path.exists(dataset):
        raise InputError(f"dataset '{dataset}' does not exist")
    _check_output(dataset, output)
    # Hashed once: the same manifest gives the subject and the manifest digest.
    manifest = attest.subject_manifest(dataset, _serialization(dataset, hashing))
    # The manifest of a large dataset runs to megabytes; its digest pins it,
    # and `provenance hash DATASET --json` reproduces it.
    manifest_digest = hashlib.sha256(
        json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    predicate = attest.dataset_predicate(
        name=name or os.path.basename(os.path.abspath(dataset)),
        source_uri=source_uri,
        license=license_,
        version=version_,
        description=description,
        records=records,
        splits=split_counts,
        files=len(manifest.files),
        manifest_digest=manifest_digest,
    )
    _sign_and_append(
        dataset,
        attest.DATASET_PREDICATE_TYPE,
        predicate,
        manifest,
        signer=signer,
        output=output,
        as_json=as_json,
    )


@attest_group.command("training")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="PATH|URI@sha256:DIGEST",
    help="Training data (repeatable); a path is hashed.",
)
@click.option(
    "--validation-dataset",
    "validation_datasets",
    multiple=True,
    metavar="PATH|URI@sha256:DIGEST",
    help="Validation data (repeatable).",
)
@click.option(
    "--base-model",
    "base_models",
    multiple=True,
    metavar="PATH|URI@sha256:DIGEST|hf://ORG/NAME@REV",
    help="The model this one was tuned, quantised or converted from "
    "(repeat for the inputs of a merge). hf://ORG/NAME@REV hashes the snapshot of "
    "that revision in the local Hugging Face cache (no network: fetch and check it "
    "first with `provenance hub verify`) and records its commit.",
)
@click.option(
    "--kind",
    type=click.Choice(
        ["training", "fine-tuning", "quantisation", "conversion", "merge", "distillation"]
    ),
    default=None,
    help="What the run did (default: fine-tuning with --base-model, else training).",
)
@click.option("--source-commit", metavar="SHA", help="Full git commit of the training code.")
@click.option("--source-uri", metavar="URI", help="Repository of the code, e.g. git+https://...")
@click.option("--image", metavar="NAME@sha256:DIGEST", help="Container image the run used.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hyperparameter (repeatable); numbers and booleans keep their type.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=str),
    metavar="FILE",
    help="Training config (JSON, or YAML with PyYAML) recorded as given.",
)
@click.option("--entry-point", metavar="CMD", help="What was run, e.g. train.py.")
@click.option("--builder-id", metavar="URI", help="Who ran it (required outside CI).")
@click.option("--invocation-id", metavar="ID", help="Which run (CI fills this in).")
@click.option("--started-on", metavar="TIME", help="RFC 3339 start time.")
@click.option("--finished-on", metavar="TIME", help="RFC 3339 end time (default: now).")
@click.option(
    "--byproduct",
    "byproducts",
    multiple=True,
    type=click.Path(path_type=str),
    metavar="PATH",
    help="A log or metrics file to record by digest (repeatable).",
)
@_input_paths_options
@_attest_options
@handle_errors()
def training_command(
    model: str,
    datasets: tuple[str, ...],
    validation_datasets: tuple[str, ...],
    base_models: tuple[str, ...],
    kind: str | None,
    source_commit: str | None,
    source_uri: str | None,
    image: str | None,
    params: tuple[str, ...],
    config_path: str | None,
    entry_point: str | None,
    builder_id: str | None,
    invocation_id: str | None,
    started_on: str | None,
    finished_on: str | None,
    byproducts: tuple[str, ...],
    no_input_paths: bool,
    absolute_input_paths: bool,
    output: str | None,
    signer: SignerOptions,
    hashing: HashingOptions,
    as_json: bool,
) -> None:
    """Attest how MODEL was made, as SLSA Provenance v1.

    \b
    provenance attest training my-model --key key.pem \\
        --dataset data/train --validation-dataset data/val \\
        --base-model hf://org/base@main --param lr=3e-5 \\
        --source-commit $(git rev-parse HEAD) --builder-id https://ci.example/runner

    In GitHub Actions, GitLab CI, Buildkite, CircleCI, Azure Pipelines and
    Jenkins the builder, the run and the source come from the environment.
    Fine-tuning, quantisation, conversion and merging are recorded the same
    way: --kind says which, --base-model names the input model (repeated for
    a merge). Local inputs are recorded by a path relative to MODEL (e.g.
    ../data/train), unless --no-input-paths or --absolute-input-paths. See
    schemas/README.md.
    """
    import re

    from provenance import attest

    paths = _input_paths(no_input_paths, absolute_input_paths)
    ci = attest.detect_ci()
    builder = builder_id or (ci.builder_id if ci else None)
    if not builder:
        raise UsageError("say who built the model: --builder-id URI (outside CI)")
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", builder):
        raise UsageError(f"--builder-id {builder!r} is not a URI (e.g. https://ci.example/runner)")
    config = attest.load_config(config_path) if config_path else None
    _check_output(model, output)
    subject_s = _serialization(model, hashing)
    inputs_s = _inputs_serialization(subject_s)
    with _in_flag_words():
        predicate = attest.training_predicate(
            datasets=[attest.resolve(d, serialization=inputs_s) for d in datasets],
            validation_datasets=[
                attest.resolve(d, serialization=inputs_s) for d in validation_datasets
            ],
            base_model=[attest.resolve(b, serialization=inputs_s) for b in base_models],
            source_uri=source_uri or (ci.source_uri if ci else None),
            source_commit=source_commit or (ci.source_commit if ci else None),
            image=image,
            params=attest.parse_params(params),
            config=config,
            entry_point=entry_point,
            kind=kind or ("fine-tuning" if base_models else "training"),
            builder_id=builder,
            invocation_id=invocation_id or (ci.invocation_id if ci else None),
            started_on=attest.rfc3339(started_on, "--started-on"),
            finished_on=attest.rfc3339(finished_on, "--finished-on") or attest.now(),
            byproducts=[attest.resolve(b, plain_file=True) for b in byproducts],
        )
    _sign_and_append(
        model,
        attest.SLSA_PREDICATE_TYPE,
        predicate,
        attest.subject_manifest(model, subject_s),
        signer=signer,
        output=output,
        as_json=as_json,
        input_paths=paths,
    )


@attest_group.command("eval")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    required=True,
    metavar="NAME=VALUE",
    help="A measured metric (repeatable), e.g. --metric accuracy=0.91.",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="PATH|URI@sha256:DIGEST",
    help="Evaluation data (repeatable); a path is hashed.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="NAME>=VALUE",
    help="The bar a metric was held to (repeatable): >=, <=, >, < or ==, e.g. "
    "--threshold 'accuracy>=0.9' --threshold 'loss<=0.5'. A policy with "
    "`thresholds: enforce` checks each against the metric's value.",
)
@click.option("--evaluator-id", metavar="URI", help="Who or what ran the evaluation.")
@_input_paths_options
@_attest_options
@handle_errors()
def eval_command(
    model: str,
    metrics: tuple[str, ...],
    datasets: tuple[str, ...],
    thresholds: tuple[str, ...],
    evaluator_id: str | None,
    no_input_paths: bool,
    absolute_input_paths: bool,
    output: str | None,
    signer: SignerOptions,
    hashing: HashingOptions,
    as_json: bool,
) -> None:
    """Attest how MODEL scored, on which datasets (by digest).

    Metrics are JSON numbers, strings or booleans (NaN and infinities are
    refused). Evaluation datasets given by path are recorded relative to
    MODEL unless --no-input-paths or --absolute-input-paths. lineage shows
    the newest evaluation per set of metrics and datasets.
    """
    import re

    from provenance import attest

    paths = _input_paths(no_input_paths, absolute_input_paths)
    parsed_thresholds: dict[str, str] = {}
    for t in thresholds:
        # The bound itself is checked by the library, with the grammar a policy reads.
        m = re.fullmatch(r"\s*([^<>=\s]+)\s*((?:>=|<=|==|>|<)\s*\S+)\s*", t)
        if not m:
            raise UsageError(f"--threshold {t!r} is not like accuracy>=0.9")
        if m.group(1) in parsed_thresholds:
            raise UsageError(
                f"--threshold for {m.group(1)!r} given twice; one threshold per metric is recorded"
            )
        parsed_thresholds[m.group(1)] = m.group(2).replace(" ", "")
    names = [p.partition("=")[0] for p in metrics]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--metric {twice[0]!r} given twice; give each metric once")
    with _in_flag_words():
        parsed_metrics = attest.parse_params(metrics)
    _check_output(model, output)
    subject_s = _serialization(model, hashing)
    inputs_s = _inputs_serialization(subject_s)
    with _in_flag_words():
        predicate = attest.evaluation_predicate(
            metrics=parsed_metrics,
            datasets=[attest.resolve(d, serialization=inputs_s) for d in datasets],
            thresholds=parsed_thresholds,
            evaluator_id=evaluator_id,
        )
    _sign_and_append(
        model,
        attest.EVALUATION_PREDICATE_TYPE,
        predicate,
        attest.subject_manifest(model, subject_s),
        signer=signer,
        output=output,
        as_json=as_json,
        input_paths=paths,
    )


@attest_group.command("prune")
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--subject-digest",
    metavar="HEX",
    help="The model's current root digest (as provenance hash prints it); nothing is hashed.",
)
@TrustOptions.options
@click.option(
    "--signature",
    "signature_path",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="With trust options: the signature to verify (default MODEL/model.sig).",
)
@click.option(
    "--attestations-file",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="The attestations file to prune (default MODEL/model.intoto.jsonl).",
)
@HashingOptions.options
@json_option
@handle_errors()
def prune_command(
    model: str,
    subject_digest: str | None,
    trust: TrustOptions,
    signature_path: str | None,
    attestations_file: str | None,
    hashing: HashingOptions,
    as_json: bool,
) -> None:
    """Drop the lines of MODEL's attestations that are not about its current digest.

    \b
    The current digest is, in this order of choice:
      --subject-digest HEX           the digest itself
      --key PUBLIC.pem (or --root, --identity ...)
                                     the root digest of MODEL's signature,
                                     verified (the files must match it)
      nothing of these               a fresh hash of MODEL with the hashing
                                     options (the defaults of sign)

    Damaged lines and lines repeated byte for byte go too. The lines kept
    are kept byte for byte; the file is replaced atomically, and only if
    something was dropped. Every dropped line is reported.
    """
    from provenance import attest

    trusted = trust != TrustOptions()
    hashed = hashing != HashingOptions()
    if subject_digest is not None and (trusted or hashed):
        raise UsageError(
            "--subject-digest is the digest itself: leave out trust and hashing options"
        )
    if trusted and hashed:
        raise UsageError(
            "a verified signature says how the model was hashed: leave out the hashing options"
        )
    if signature_path is not None and not trusted:
        raise UsageError(
            "--signature needs trust options (--key, --root or --identity) to verify it"
        )
    serialization = _serialization(model, hashing) if hashed else None
    result = attest.prune(
        model,
        root_digest=subject_digest,
        verifier=trust.build() if trusted else None,
        signature_path=signature_path,
        serialization=serialization,
        attestations_path=attestations_file,
    )
    emit(result, as_json=as_json, lines=_prune_text(result))


_SOURCE_WORDS = {
    "given": "the digest given",
    "signature": "the verified signature",
    "hash": "a fresh hash",
}


def _prune_text(result: PruneResult) -> list[Line]:
    source = _SOURCE_WORDS.get(result.subject_source, result.subject_source)
    head = (
        f"Pruned {len(result.dropped)} line(s) of {result.path}"
        if result.dropped
        else f"Nothing to prune in {result.path}"
    )
    lines = [
        Line(f"{head}; kept {result.kept} about sha256:{result.root_digest} ({source})"),
    ]
    lines.extend(Line(f"  dropped line {d.line}: {d.message}") for d in result.dropped)
    return lines
