"""``provenance hub``: sign, publish and verify models on the Hugging Face Hub."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from provenance.errors import UsageError
from provenance_cli._common import (
    EXIT_FAILED,
    HashingOptions,
    handle_errors,
    json_option,
    progress_bar,
)
from provenance_cli._output import Line, emit
from provenance_cli._signer_options import SignerOptions
from provenance_cli.verify import TrustOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from provenance.hub import HubVerification, PushResult

    F = Callable[..., Any]

_ENDPOINT_HELP = (
    "The Hub to talk to (default: $HF_ENDPOINT, else https://huggingface.co). A token, "
    "where one is needed, comes from $HF_TOKEN or `hf auth login`."
)


def _repo_id(value: str, what: str = "REPO_ID") -> str:
    """REPO_ID as the Hub spells it; near misses get the form that was meant."""
    import os

    from provenance import hub

    if value.startswith("hf://"):
        raise UsageError(f"{what}: drop the hf:// prefix: give {value[5:].split('@')[0]}")
    if value.startswith(("https://", "http://")):
        raise UsageError(f"{what}: give the repository id (ORG/NAME), not a URL: '{value}'")
    if "@" in value:
        repo, _, rev = value.partition("@")
        raise UsageError(f"{what}: give the revision separately: {repo} --revision {rev}")
    if value.startswith(("./", "../", "/", "~")) or (os.path.exists(value) and "/" not in value):
        raise UsageError(
            f"{what} '{value}' is a local path; a local folder is verified with "
            "`provenance verify PATH`, pushed with `provenance hub push PATH ORG/NAME`"
        )
    return hub.check_repo_id(value)


def _repo_argument(fn: F) -> F:
    return click.argument("repo_id", metavar="REPO_ID")(fn)


def _endpoint(fn: F) -> F:
    return click.option("--endpoint", metavar="URL", help=_ENDPOINT_HELP)(fn)


def _cache_dir(fn: F) -> F:
    return click.option(
        "--cache-dir",
        type=click.Path(path_type=str, file_okay=False),
        metavar="DIR",
        help="The Hugging Face cache (default: $HF_HUB_CACHE, else ~/.cache/huggingface/hub).",
    )(fn)


@click.group("hub")
def hub_group() -> None:
    """Sign, publish and verify models on the Hugging Face Hub, by repository id.

    \b
    Publish a signed folder:      provenance hub push my-model org/name --key key.pem
    Sign what a branch holds:     provenance hub sign org/name --revision main --key key.pem
    Verify before loading:        provenance hub verify org/name --revision main --key key.pub
    With a policy, from cache:    provenance hub verify org/name --policy policy.yaml --offline

    The signature is the repository's model.sig (an OpenSSF Model Signing
    bundle), and it records the repository and commit it was made for.
    Verification compares the signature with the Hub's listing before any
    weight is downloaded, then hashes the files in the local cache in place.
    """


def _push_text(result: PushResult, pushed: bool) -> list[Line]:
    m = result.signed.manifest
    who = result.signed.signer.description if result.signed.signer else "the given signer"
    where = f"{result.repo_id}@{result.revision}"
    head = (
        f"Pushed {where}: {len(m.files)} file(s) signed by {who}, with model.sig, in one commit"
        if pushed
        else f"Signed {where}: {len(m.files)} file(s) by {who}; model.sig committed on top"
    )
    lines = [
        Line(head, "green"),
        Line(f"  commit       {result.commit}"),
        Line(f"  parent       {result.parent_commit}"),
    ]
    if result.record.commit is not None:
        lines.append(Line(f"  signed       {result.record.commit} (the files of this commit)"))
    lines.append(Line(f"  root digest  sha256:{m.root_digest}"))
    lines.extend(Line(f"  deleted      {d}") for d in result.deleted)
    if result.commit_url:
        lines.append(Line(f"  url          {result.commit_url}"))
    lines.extend(Line(f"warning: {w}", "yellow", err=True) for w in result.warnings)
    return lines


def _quiet_client(as_json: bool) -> None:
    """The client's download and upload bars only for a person at a terminal."""
    import sys

    if as_json or not sys.stderr.isatty():
        from huggingface_hub.utils.tqdm import disable_progress_bars

        disable_progress_bars()


def _hashing_kwargs(hashing: HashingOptions) -> dict[str, Any]:
    return {
        "method": hashing.resolved_method(),
        "algorithm": hashing.algorithm,
        "shard_size": hashing.shard_size,
        "ignore_paths": hashing.ignore_paths,
        "allow_symlinks": hashing.allow_symlinks,
    }


@hub_group.command("push")
@handle_errors()
@click.argument("model", type=click.Path(path_type=str))
@_repo_argument
@click.option(
    "--revision",
    default="main",
    show_default=True,
    metavar="BRANCH",
    help="The branch to commit to (made from main when missing).",
)
@SignerOptions.options
@HashingOptions.options
@click.option("--message", metavar="TEXT", help="The commit message.")
@click.option(
    "--private", is_flag=True, help="Make the repository private if it has to be created."
)
@click.option(
    "--no-create",
    is_flag=True,
    help="Fail instead of creating the repository when it does not exist.",
)
@_endpoint
@json_option
def push_command(
    model: str,
    repo_id: str,
    revision: str,
    signer: SignerOptions,
    hashing: HashingOptions,
    message: str | None,
    private: bool,
    no_create: bool,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Sign the folder MODEL and upload it with its signature to REPO_ID, in one commit.

    The commit goes on top of the branch's head as read before signing, and
    the signature records that commit: if the branch moves meanwhile the
    commit fails and nothing is uploaded. Files the branch holds that MODEL
    does not are deleted in the same commit, so the revision is exactly
    what was signed (history keeps them); the Hub's .gitattributes stays.
    MODEL/model.sig is written as `provenance sign` writes it;
    MODEL/model.intoto.jsonl goes along. A file that looks like credentials
    (.env, .netrc, ...) is refused before anything is signed or sent. A
    repository that does not exist is created (public, unless --private).

    \b
    Exit codes: 0 pushed, 2 usage error, 3 bad input (MODEL unreadable, the
    Hub unreachable or refusing, the branch moved meanwhile).
    """
    import os

    from provenance import hub

    if not os.path.isdir(model):
        swapped = os.path.isdir(repo_id)
        raise UsageError(
            f"MODEL '{model}' is not a folder"
            + (" (the arguments look swapped)" if swapped else "")
            + "; usage: provenance hub push MODEL REPO_ID"
        )
    _repo_id(repo_id)
    _quiet_client(as_json)
    kwargs = _hashing_kwargs(hashing)
    the_signer = signer.build()
    with progress_bar("hashing", not as_json) as progress:
        result = hub.push(
            model,
            repo_id,
            the_signer,
            revision=revision,
            create=not no_create,
            private=private or None,
            message=message,
            endpoint=endpoint,
            key_file=signer.key,
            progress=progress,
            **kwargs,
        )
    emit(result, as_json=as_json, lines=_push_text(result, pushed=True))


@hub_group.command("sign")
@handle_errors()
@_repo_argument
@click.option(
    "--revision",
    default="main",
    show_default=True,
    metavar="BRANCH",
    help="The branch whose files are signed; the signature is committed on top of it.",
)
@SignerOptions.options
@HashingOptions.options
@click.option("--message", metavar="TEXT", help="The commit message.")
@_endpoint
@_cache_dir
@json_option
def sign_command(
    repo_id: str,
    revision: str,
    signer: SignerOptions,
    hashing: HashingOptions,
    message: str | None,
    endpoint: str | None,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Sign what branch REVISION of REPO_ID holds on the Hub, and commit the signature.

    The files are downloaded into the cache at the commit the branch names
    now and hashed there; the signature records that commit and is committed
    with it pinned as the parent, so a branch that moved meanwhile fails
    the commit and nothing is written. Every file downloaded is checked
    against the Hub's own record of it (LFS sha256, git blob id) before it
    is signed. An existing model.sig is replaced.

    \b
    Exit codes: 0 signed and committed, 2 usage error (a tag given), 3 bad
    input (no such branch, bytes that are not what the Hub records, the
    branch moved meanwhile, the Hub unreachable or refusing).
    """
    from provenance import hub

    _repo_id(repo_id)
    _quiet_client(as_json)
    kwargs = _hashing_kwargs(hashing)
    the_signer = signer.build()
    with progress_bar("hashing", not as_json) as progress:
        result = hub.sign(
            repo_id,
            the_signer,
            revision=revision,
            message=message,
            endpoint=endpoint,
            cache_dir=cache_dir,
            key_file=signer.key,
            progress=progress,
            **kwargs,
        )
    emit(result, as_json=as_json, lines=_push_text(result, pushed=False))


def _trust_options(fn: F) -> F:
    """verify's trust options, with ``--offline`` meaning what it means here: no network."""
    from provenance_cli._common import OptionSpec, option_group
    from provenance_cli.verify import _TRUST_SPECS

    offline = OptionSpec(
        "offline",
        ("--offline",),
        {
            "is_flag": True,
            "help": "No network: verify what the local cache holds of the revision (and, "
            "for keyless trust, use the pinned Sigstore trust root).",
        },
    )
    specs = [offline if spec.field == "offline" else spec for spec in _TRUST_SPECS]
    return option_group(TrustOptions, specs, "trust")(fn)


@hub_group.command("verify")
@handle_errors(failure_code=EXIT_FAILED)
@_repo_argument
@click.option(
    "--revision",
    default="main",
    show_default=True,
    metavar="REV",
    help="A branch, tag or commit id; a branch or tag is resolved to its commit (reported).",
)
@_trust_options
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=str, dir_okay=False),
    envvar="PROVENANCE_POLICY",
    metavar="POLICY",
    help="Decide by this policy instead of the trust options ($PROVENANCE_POLICY).",
)
@click.option(
    "--signed-for",
    metavar="ORG/NAME",
    help="REPO_ID mirrors this repository: accept a signature made for it. Without it, a "
    "signature made for another repository fails.",
)
@_endpoint
@_cache_dir
@json_option
def verify_command(
    repo_id: str,
    revision: str,
    trust: TrustOptions,
    policy_path: str | None,
    signed_for: str | None,
    endpoint: str | None,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Verify REPO_ID at REVISION: the signature, then every file, hashed in the cache.

    \b
    Online: the revision is resolved to a commit, the signature downloaded
    and checked against the trust options or policy and against the Hub's
    own listing of that commit (a file it does not cover, a signed file
    missing, an LFS sha256 that differs, an untrusted signer fail before
    any weight is downloaded); then the signed files are downloaded into
    the cache and hashed there. --offline reads only the cache.

    \b
    Exit codes: 0 verified (or allowed), 1 failed (or denied), 2 usage
    error, 3 bad input (no such repository or revision, the Hub
    unreachable, not cached).
    """
    from provenance import hub

    _repo_id(repo_id)
    _quiet_client(as_json)
    if signed_for is not None:
        _repo_id(signed_for, "--signed-for")
    offline = trust.offline
    verifier = None
    policy = None
    if policy_path is not None:
        if dataclasses.replace(trust, offline=False) != TrustOptions():
            raise UsageError(
                "with --policy, leave out the trust options (--key, --root, --identity ...): "
                "the policy says whom to trust"
            )
        from provenance import policy as policies

        policy = policies.load(policy_path)
    else:
        verifier = dataclasses.replace(trust, offline=offline and trust.wants_keyless).build()
    with progress_bar("verifying", not as_json) as progress:
        result = hub.verify(
            repo_id,
            revision,
            verifier=verifier,
            policy=policy,
            offline=offline,
            endpoint=endpoint,
            cache_dir=cache_dir,
            progress=progress,
            signed_for=signed_for,
        )
    if result.ok:
        emit(result, as_json=as_json, lines=_verify_text(result))
        return
    from provenance.errors import ProvenanceError

    try:
        result.raise_for_failure()
    except ProvenanceError as e:
        # The reason names the repository and commit; warnings follow it.
        emit(result, as_json=as_json, error=e, exit_code=EXIT_FAILED)


def _verify_text(result: HubVerification) -> list[Line]:
    """A verified revision, for people (a failure prints only its error block)."""
    s = result.snapshot
    where = f"{s.repo_id}@{s.revision}"
    lines: list[Line] = []
    d = result.decision
    if d is not None:
        from provenance_cli._decision import summary_lines

        mode = f" in {d.mode} mode, though it would deny" if not d.passed else ""
        colour = "green" if d.passed else "yellow"
        lines.append(Line(f"Allowed by policy {d.policy_source}{mode}: {where}", colour))
        lines.extend(x for x in summary_lines(d)[1:] if "signed digest" not in x.text)
    else:
        assert result.report is not None and result.report.verified is not None
        who = result.report.verified.signer.description
        count = len(result.report.manifest.files) if result.report.manifest else 0
        lines.append(Line(f"Verified {where}: {count} file(s) signed by {who}", "green"))
    cached = " (from the cache)" if s.offline else ""
    lines.append(Line(f"  commit       {s.commit}{cached}"))
    lines.append(Line(f"  snapshot     {s.path}"))
    if result.root_digest:
        lines.append(Line(f"  root digest  sha256:{result.root_digest}"))
    if result.record is not None:
        r = result.record
        made = (
            f"the files of commit {r.commit}"
            if r.commit
            else f"an upload on top of {r.parent_commit}"
            if r.parent_commit
            else "no commit named"
        )
        lines.append(Line(f"  signed for   {r.repository}, {made}"))
    for f in result.findings:
        if f.severity == "warning":
            lines.append(Line(f"  warning: {f.message}", "yellow", err=True))
        elif f.severity == "info":
            lines.append(Line(f"  note: {f.message}"))
    return lines
