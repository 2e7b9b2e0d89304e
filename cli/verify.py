"""``provenance verify``: check a model against its signature.

The verdict is the library's (:func:`provenance.verification.check_model`,
or :func:`~provenance.verification.check_attestations_only` when the user
asks for attestations only); this module parses the trust options and
renders the report. A missing signature is never a silent switch to
checking attestations alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from provenance.errors import UsageError, VerificationError
from provenance_cli._common import (
    EXIT_FAILED,
    HashingOptions,
    OptionSpec,
    handle_errors,
    json_option,
    option_group,
    parse_size,
    progress_bar,
)
from provenance_cli._output import Line, emit

if TYPE_CHECKING:
    from provenance.attest import AttestationReport
    from provenance.signing import Verifier
    from provenance.verification import VerificationReport

F = TypeVar("F", bound=Callable[..., Any])

_PATH = click.Path(path_type=str)


def _keyless(field: str, flag: str, help_: str, **attrs: Any) -> OptionSpec:
    return OptionSpec(field, (flag,), {"help": f"Keyless: {help_}", **attrs})


_TRUST_SPECS = (
    OptionSpec(
        "keys",
        ("--key",),
        {
            "multiple": True,
            "type": _PATH,
            "metavar": "PUBLIC.pem",
            "help": "Trusted public key (repeatable: any one of them may have signed).",
        },
    ),
    OptionSpec(
        "roots",
        ("--root",),
        {
            "multiple": True,
            "type": _PATH,
            "metavar": "CA.pem",
            "help": "Trusted root certificate(s) for certificate signatures (repeatable).",
        },
    ),
    OptionSpec(
        "chain",
        ("--chain",),
        {
            "multiple": True,
            "type": _PATH,
            "metavar": "INT.pem",
            "help": "Extra intermediate certificate(s), if the signature does not carry them.",
        },
    ),
    _keyless(
        "identity",
        "--identity",
        "the signer's exact identity (e-mail, or workflow URI for CI).",
        metavar="ID",
    ),
    _keyless(
        "identity_regexp",
        "--identity-regexp",
        "a regular expression the whole identity must match.",
        metavar="PATTERN",
    ),
    _keyless(
        "issuer",
        "--issuer",
        "the OIDC issuer that vouched for the identity, "
        "e.g. https://token.actions.githubusercontent.com.",
        metavar="URL",
    ),
    _keyless(
        "github_repository",
        "--github-repository",
        "the GitHub repository whose workflow signed.",
        metavar="OWNER/REPO",
    ),
    _keyless(
        "github_ref",
        "--github-ref",
        "the git ref the workflow ran on, e.g. refs/heads/main.",
        metavar="REF",
    ),
    _keyless(
        "github_workflow_name", "--github-workflow-name", "the workflow name.", metavar="NAME"
    ),
    _keyless(
        "github_trigger",
        "--github-trigger",
        "the event that started the workflow, e.g. push.",
        metavar="EVENT",
    ),
    _keyless("github_sha", "--github-sha", "the commit the workflow ran at.", metavar="SHA"),
    _keyless(
        "trust_root",
        "--trust-root",
        "a trusted_root.json, for private deployments and air-gapped machines.",
        type=_PATH,
        metavar="FILE",
    ),
    _keyless(
        "trust_config",
        "--trust-config",
        "a Sigstore client trust config (its trusted root is used).",
        type=_PATH,
        metavar="FILE",
    ),
    _keyless("staging", "--staging", "trust Sigstore's staging instance.", is_flag=True),
    _keyless(
        "offline", "--offline", "use the pinned or cached trust root; no network.", is_flag=True
    ),
)


@dataclass(frozen=True)
class TrustOptions:
    """Whom ``verify`` trusts, as given on the command line (checked by :meth:`build`)."""

    keys: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    github_repository: str | None = None
    github_ref: str | None = None
    github_workflow_name: str | None = None
    github_trigger: str | None = None
    github_sha: str | None = None
    trust_root: str | None = None
    trust_config: str | None = None
    staging: bool = False
    offline: bool = False

    @classmethod
    def options(cls, fn: F) -> F:
        """Decorator: add the trust options; the command gets ``trust: TrustOptions``."""
        return option_group(cls, _TRUST_SPECS, "trust")(fn)

    @property
    def wants_keyless(self) -> bool:
        return any(
            (
                self.identity,
                self.identity_regexp,
                self.issuer,
                self.github_repository,
                self.github_ref,
                self.github_workflow_name,
                self.github_trigger,
                self.github_sha,
            )
        )

    def build(self) -> Verifier:
        """Exactly one kind of trust: plain keys, certificate roots, or a keyless identity.

        Mixing kinds is refused instead of guessing which one the user meant:
        a verifier that quietly trusts more than asked is a silent pass.
        """
        from provenance import signing

        keyless = self.wants_keyless
        if sum(map(bool, (self.keys, self.roots, keyless))) > 1:
            raise UsageError("give one kind of trust: --key, --root, or --identity/--issuer")
        if self.chain and not self.roots:
            raise UsageError("--chain needs --root")
        sigstore_root = (self.trust_root, self.trust_config, self.staging, self.offline)
        if any(sigstore_root) and not keyless:
            raise UsageError("--trust-root/--trust-config/--staging/--offline go with --identity")
        if self.keys:
            return signing.KeyVerifier.from_files(*self.keys)
        if self.roots:
            return signing.CertificateVerifier.from_files(self.roots, self.chain)
        if keyless:
            policy = signing.identity_policy(
                identity=self.identity,
                identity_regexp=self.identity_regexp,
                issuer=self.issuer,
                github_repository=self.github_repository,
                github_ref=self.github_ref,
                github_workflow_name=self.github_workflow_name,
                github_trigger=self.github_trigger,
                github_sha=self.github_sha,
            )
            root = signing.load_trusted_root(
                self.trust_root, self.trust_config, staging=self.staging, offline=self.offline
            )
            return signing.SigstoreVerifier(policy, root)
        raise UsageError(
            "say whom to trust: --policy FILE (or $PROVENANCE_POLICY), --key PUBLIC.pem, "
            "--root CA.pem, or --identity ID --issuer URL"
        )


@click.command("verify")
@handle_errors(failure_code=EXIT_FAILED)
@click.argument("model", type=click.Path(path_type=str))
@TrustOptions.options
@click.option(
    "--signature",
    "signature_path",
    type=_PATH,
    metavar="PATH",
    help="The signature to check (default MODEL/model.sig, or MODEL.sig for a file).",
)
@click.option(
    "--ignore",
    "ignore_paths",
    multiple=True,
    metavar="PATH|GLOB",
    help="A local file, folder or glob, relative to the model, to leave out (repeatable). "
    "Files the signature lists are checked regardless.",
)
@click.option(
    "--ignore-unsigned-files",
    is_flag=True,
    help="Let files the signature does not list be present (they are reported, not checked).",
)
@click.option(
    "--attestations",
    "check_attestations",
    is_flag=True,
    help="Also check MODEL/model.intoto.jsonl: every attestation signed by a trusted "
    "signer, about this model, valid against its schema, with local inputs re-hashed.",
)
@click.option(
    "--attestations-file",
    type=_PATH,
    metavar="PATH",
    help="Check the attestations in PATH (e.g. written with attest --output); "
    "implies --attestations.",
)
@click.option(
    "--attestations-only",
    is_flag=True,
    help="Check the attestations without a signature (a dataset, say), against "
    "--subject-digest or a fresh hash of MODEL made with the hashing options below.",
)
@click.option(
    "--subject-digest",
    metavar="HEX",
    help="With --attestations-only: the root digest the attestations must name "
    "(nothing is hashed).",
)
@click.option(
    "--require-inputs",
    is_flag=True,
    help="Fail when an input an attestation names by a local path is not on this "
    "machine (by default a note); implies --attestations.",
)
@click.option(
    "--hash",
    "algorithm",
    type=click.Choice(["sha256", "sha384", "sha512", "blake2b", "blake3"]),
    default=None,
    help="With --attestations-only: digest algorithm of the fresh hash (default sha256).",
)
@click.option(
    "--method",
    type=click.Choice(["files", "shards"]),
    default=None,
    help="With --attestations-only: hashing method of the fresh hash (default files).",
)
@click.option(
    "--shard-size",
    callback=parse_size,
    default=None,
    metavar="SIZE",
    help="With --attestations-only: shard size of the fresh hash.",
)
@click.option(
    "--allow-symlinks",
    is_flag=True,
    help="With --attestations-only: follow links that stay inside the model when hashing.",
)
@click.option(
    "--policy",
    "policy_path",
    type=_PATH,
    metavar="POLICY",
    envvar="PROVENANCE_POLICY",
    help="Let a policy file decide (who must sign, which attestations, files, lineage, "
    "revocations) instead of the trust options; also read from $PROVENANCE_POLICY. "
    "See `provenance policy --help`.",
)
@click.option(
    "--audit-log",
    type=_PATH,
    metavar="FILE",
    envvar="PROVENANCE_AUDIT_LOG",
    help="With --policy: append the decision to FILE as one JSON line "
    "(also read from $PROVENANCE_AUDIT_LOG).",
)
@json_option
def verify_command(
    model: str,
    trust: TrustOptions,
    signature_path: str | None,
    ignore_paths: tuple[str, ...],
    ignore_unsigned_files: bool,
    check_attestations: bool,
    attestations_file: str | None,
    attestations_only: bool,
    subject_digest: str | None,
    require_inputs: bool,
    algorithm: str | None,
    method: str | None,
    shard_size: int | None,
    allow_symlinks: bool,
    policy_path: str | None,
    audit_log: str | None,
    as_json: bool,
) -> None:
    """Verify that MODEL matches its signature and that a trusted signer made it.

    \b
    Plain key:    provenance verify my-model --key key.pub
    Certificate:  provenance verify my-model --root ca.pem
    Keyless:      provenance verify my-model --identity alice@example.com \\
                      --issuer https://accounts.google.com
    GitHub CI:    provenance verify my-model \\
                      --issuer https://token.actions.githubusercontent.com \\
                      --identity-regexp 'https://github.com/org/repo/.*' \\
                      --github-ref refs/heads/main
    Attestations: provenance verify my-model --key key.pub --attestations
    A dataset:    provenance verify data/ --key key.pub --attestations-only
    A policy:     provenance verify my-model --policy policy.yaml \\
                      --audit-log /var/log/provenance.jsonl

    The hashing settings (method, algorithm, shard size, ignored paths) are
    read from the signature. Every signed file must match and, unless
    --ignore-unsigned-files, no unsigned file may be present. A missing
    signature is an error, with --attestations too: checking attestations
    without one is --attestations-only, which never reads MODEL/model.sig.
    With --policy, the policy decides instead of the trust options: exit 0
    allowed (warn and audit modes allow, and print every reason), 1 denied,
    2 an invalid policy, 3 bad input (a policy file that cannot be read too).
    Without it, exit codes: 0 verified, 1 verification failed, 2 usage error,
    3 bad input.
    """
    from provenance.bundle import refuse_bundle_as_model
    from provenance.verification import check_attestations_only, check_model

    sources = click.get_current_context().get_parameter_source
    from_env = sources("policy_path") is click.core.ParameterSource.ENVIRONMENT
    if audit_log is not None and policy_path is None:
        if sources("audit_log") is click.core.ParameterSource.ENVIRONMENT:
            # Set for a service's policy checks; a verification without a
            # policy has no decision to log, and must not fail for it.
            audit_log = None
        else:
            raise UsageError("--audit-log records a policy's decisions; give --policy too")
    if policy_path is not None:
        given = [
            name
            for name, value in (
                ("the trust options (--key, --root, --identity ...)", trust != TrustOptions()),
                ("--ignore", ignore_paths),
                ("--ignore-unsigned-files", ignore_unsigned_files),
                ("--attestations", check_attestations),
                ("--attestations-only", attestations_only),
                ("--subject-digest", subject_digest),
                ("--require-inputs", require_inputs),
                ("the hashing options", any((algorithm, method, shard_size, allow_symlinks))),
            )
            if value
        ]
        if given:
            policy_named = (
                f"$PROVENANCE_POLICY is set ({policy_path}), so" if from_env else "with --policy,"
            )
            raise UsageError(
                f"{policy_named} leave out {', '.join(given)}: the policy says whom to trust, "
                "which files may be present and which attestations must hold"
                + ("; or unset PROVENANCE_POLICY to verify without it" if from_env else "")
            )
        _verify_with_policy(
            model, policy_path, signature_path, attestations_file, audit_log, as_json
        )
        return

    hashing_given = any((algorithm, method, shard_size is not None, allow_symlinks))
    if subject_digest is not None and not attestations_only:
        raise UsageError("--subject-digest goes with --attestations-only")
    if hashing_given and not attestations_only:
        raise UsageError(
            "--hash, --method, --shard-size and --allow-symlinks go with --attestations-only; "
            "a signature says how its model was hashed"
        )
    if attestations_only:
        if signature_path is not None:
            raise UsageError("--attestations-only checks no signature; leave out --signature")
        if ignore_unsigned_files:
            raise UsageError(
                "--ignore-unsigned-files is about a signature; --attestations-only checks none"
            )
        if subject_digest is not None and (hashing_given or ignore_paths):
            raise UsageError("--subject-digest is not hashed; leave out the hashing options")
    check = check_attestations or attestations_file is not None or require_inputs

    refuse_bundle_as_model(model)  # before any trust is loaded: a usage error costs nothing
    verifier = trust.build()
    report: VerificationReport
    if attestations_only:
        serialization = None
        if subject_digest is None:
            from provenance.hashing import serialization_for

            options = HashingOptions(algorithm or "sha256", method, shard_size)
            serialization = serialization_for(
                model,
                method=options.resolved_method(),
                algorithm=options.algorithm,
                shard_size=shard_size,
                ignore_paths=ignore_paths,
                allow_symlinks=allow_symlinks,
            )
        report = check_attestations_only(
            model,
            verifier,
            attestations_path=attestations_file,
            serialization=serialization,
            subject_digest=subject_digest,
            require_inputs=require_inputs,
        )
    else:
        with progress_bar("verifying", not as_json) as progress:
            report = check_model(
                model,
                verifier,
                signature_path=signature_path,
                ignore_paths=ignore_paths,
                ignore_unsigned_files=ignore_unsigned_files,
                attestations=check,
                attestations_path=attestations_file,
                require_inputs=require_inputs,
                progress=progress,
            )
    failure = _failure(report)
    if failure is not None:
        emit(report, as_json=as_json, error=failure, exit_code=EXIT_FAILED)
    else:
        emit(report, as_json=as_json, lines=_text(report))


def _verify_with_policy(
    model: str,
    policy_path: str,
    signature_path: str | None,
    attestations_file: str | None,
    audit_log: str | None,
    as_json: bool,
) -> None:
    from provenance import policy as policies
    from provenance.bundle import refuse_bundle_as_model
    from provenance_cli._decision import denial, summary_lines

    refuse_bundle_as_model(model)
    rules = policies.load(policy_path)
    with progress_bar("verifying", not as_json) as progress:
        decision = policies.evaluate(
            rules,
            model,
            signature_path=signature_path,
            attestations_path=attestations_file,
            progress=progress,
        )
    if audit_log is not None:
        policies.append_audit(audit_log, decision)
    body = {"ok": decision.allowed, "decision": decision.to_json()}
    if decision.allowed:
        emit(body, as_json=as_json, lines=summary_lines(decision))
        return
    emit(
        body,
        as_json=as_json,
        lines=summary_lines(decision),
        error=denial(decision),
        exit_code=EXIT_FAILED,
    )


def _failure(report: VerificationReport) -> VerificationError | None:
    """The report's verdict as the library states it, or None when it passed."""
    try:
        report.raise_for_failure()
    except VerificationError as e:
        return e
    return None


def _text(report: VerificationReport) -> list[Line]:
    """A passed verification in words: who signed, the digest, what was let through."""
    lines: list[Line] = []
    if report.verified is None:  # attestations only: nothing signed the target itself
        how = "the digest given" if report.subject_source == "given" else "a fresh hash"
        lines.append(
            Line(
                f"No signature checked; attestations checked against "
                f"sha256:{report.root_digest} ({how})",
                "green",
            )
        )
    else:
        m = report.manifest
        assert m is not None  # a report that passed has its manifest
        who = report.verified.signer.description
        lines.append(Line(f"Verified: {len(m.files)} file(s) signed by {who}", "green"))
        lines.append(Line(f"  root digest  sha256:{m.root_digest}"))
        lines.extend(Line(f"  not signed (ignored): {f}") for f in report.unsigned_files)
        lines.extend(Line(f"  warning: {w}", "yellow", err=True) for w in report.warnings)
    if report.attestations is not None:
        lines.extend(_attestation_lines(report.attestations))
    return lines


def _attestation_lines(attestations: AttestationReport) -> list[Line]:
    counted = len(attestations.counted)
    lines = [Line(f"Attestations: {counted} verified in {attestations.path}", "green")]
    for c in attestations.checks:
        if c.duplicate_of is not None:
            lines.append(Line(f"  line {c.line}: repeats line {c.duplicate_of} (counted once)"))
            continue
        lines.append(Line(f"  line {c.line}: {c.predicate_type} by {c.signer}"))
        lines.extend(Line(f"    note: {n}") for n in c.notes)
    return lines
