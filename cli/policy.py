"""``provenance policy``: check a policy file, or write a starter one.

``check`` is how a policy is written well: it reports every problem at once,
each with its line, and otherwise reads the policy back in plain words.
``init`` writes a commented starter that already passes ``check``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit, warn

if TYPE_CHECKING:
    from provenance.policy._model import Policy


def _summary(policy: Policy, requires: list[str]) -> dict[str, Any]:
    """The ``policy`` object of the JSON output (schemas/cli-policy.schema.json)."""
    from provenance._internal.timefmt import format_time

    return {
        "source": policy.source,
        "digest": policy.digest,
        "mode": policy.mode,
        "expires": format_time(policy.expires) if policy.expires is not None else None,
        "requires": requires,
    }


@click.group("policy")
def policy_group() -> None:
    """Write, check and explain policies: one file decides whether a model may load.

    A policy (YAML or JSON) says who must have signed the model (keys,
    certificate roots, Sigstore identities; k of n), which attestations it
    must carry and what they must say, which files and formats may be
    present, which base models and datasets it may come from, and what is
    pinned or revoked. Its format is schemas/policy.schema.json; examples
    are in examples/policies/.

    \b
      provenance policy init --key release.pub --output policy.yaml
      provenance policy check policy.yaml
      provenance verify my-model --policy policy.yaml
      provenance policy explain my-model --policy policy.yaml
    """


@policy_group.command("check")
@handle_errors()
@click.argument("policy", type=click.Path(path_type=str))
@json_option
def check_command(policy: str, as_json: bool) -> None:
    """Check POLICY and say, in plain words, what it requires.

    Every problem is reported at once, each with its line and its place in
    the file (signers[1].sigstore); unknown keys are errors. Key and
    certificate files, nested policies and revocation lists it names are
    read and checked too (paths relative to POLICY's folder).

    \b
    Examples:
      provenance policy check policy.yaml
      provenance policy check policy.yaml --json     (for CI)

    Exit codes: 0 valid, 2 the policy is invalid, 3 it cannot be read.
    """
    from provenance.policy._describe import describe
    from provenance.policy._load import load

    loaded = load(policy)
    requires = describe(loaded)
    if loaded.expires is not None and loaded.expires < datetime.datetime.now(datetime.timezone.utc):
        from provenance._internal.timefmt import format_time

        warn(f"{policy} expired at {format_time(loaded.expires)}: it now denies every model")
    emit(
        {"policy": _summary(loaded, requires)},
        as_json=as_json,
        lines=[
            Line(f"Policy {policy} is valid (sha256 {loaded.digest}).", fg="green"),
            *(Line(f"  {line}") for line in requires),
        ],
    )


def _relative(path: str, folder: Path) -> str:
    """``path`` as the policy in ``folder`` should name it (policy paths start there)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


@policy_group.command("init")
@handle_errors()
@click.option(
    "--key",
    type=click.Path(path_type=str),
    help="A public key file: the policy trusts signatures made with its private half. "
    "One signer only: add more to the written file (the starter shows how).",
)
@click.option(
    "--root",
    type=click.Path(path_type=str),
    help="A root CA certificate: the policy trusts certificates that chain to it.",
)
@click.option(
    "--identity",
    help="With --issuer: a Sigstore identity (email or workflow URI). With --root: an "
    "email or URI the leaf certificate must carry.",
)
@click.option("--issuer", help="The OIDC issuer of a Sigstore --identity.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=str),
    help="Write the policy to this file (default: print it). Never overwritten without --force.",
)
@click.option("--force", is_flag=True, help="Replace --output if it exists (a regular file).")
@json_option
def init_command(
    key: str | None,
    root: str | None,
    identity: str | None,
    issuer: str | None,
    output: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a commented starter policy for one signer.

    The comments explain each section; optional ones are there, commented
    out, to switch on. Paths in the policy are written relative to its
    folder. It is checked before it is written: it passes policy check.

    \b
    Examples:
      provenance policy init --key release.pub --output policy.yaml
      provenance policy init --root ca.pem --identity release@example.com -o policy.yaml
      provenance policy init --identity release@example.com \\
          --issuer https://accounts.google.com > policy.yaml
    """
    from provenance._internal.fsutil import safe_output, write_output
    from provenance.errors import Hint, InputError, UsageError
    from provenance.policy._describe import describe, starter
    from provenance.policy._load import loads

    folder = Path(output).parent if output else Path(".")
    if sum(x is not None for x in (key, root, issuer)) != 1:
        raise UsageError("give one of --key, --root, or --identity with --issuer")
    if key is not None:
        if identity is not None:
            raise UsageError("--identity goes with --root or --issuer, not --key")
        text = starter("key", key=_relative(key, folder))
    elif root is not None:
        text = starter("root", root=_relative(root, folder), identity=identity)
    else:
        if not identity:
            raise UsageError("--issuer needs the --identity it vouches for")
        text = starter("identity", identity=identity, issuer=issuer)

    # Said in the words the user typed, before the starter text is checked (whose
    # messages would name a file the user never wrote).
    for flag, given in (("--key", key), ("--root", root)):
        if given is not None and not os.path.isfile(given):
            why = "is not a file" if os.path.lexists(given) else "does not exist"
            raise InputError(f"{flag} {given}: {why}", code="not-found")
    if output is not None and not folder.is_dir():
        raise InputError(
            f"--output {output}: the folder '{folder}' does not exist", code="output-refused"
        )
    policy = loads(text, base=folder, source=output or "<stdout>")
    requires = describe(policy)
    if output is not None:
        if os.path.lexists(output) and not force:
            raise InputError(
                f"refusing to overwrite '{output}': it exists",
                code="output-refused",
                hint=Hint.OUTPUT_PATH,
            )
        write_output(safe_output(output, None), text.encode("utf-8"))
    result = {"output": output, "text": text, "policy": _summary(policy, requires)}
    if output is None:
        lines = [Line(text.rstrip("\n"), block=True)]
    else:
        lines = [
            Line(f"Wrote a starter policy to {output}.", fg="green"),
            *(Line(f"  {line}") for line in requires),
            Line(f"Check it after editing: provenance policy check {output}"),
        ]
    emit(result, as_json=as_json, lines=lines)


# ---------------------------------------------------------------- explain


@policy_group.command("explain")
@handle_errors(failure_code=1)
@click.argument("model", type=click.Path(path_type=str))
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(path_type=str),
    envvar="PROVENANCE_POLICY",
    metavar="POLICY",
    help="The policy to explain the decision of (also read from $PROVENANCE_POLICY).",
)
@click.option(
    "--signature",
    "signature_path",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="The model's signature (default MODEL/model.sig; co-signatures in PATH.d/).",
)
@click.option(
    "--attestations-file",
    type=click.Path(path_type=str),
    metavar="PATH",
    help="The attestations to check (default MODEL/model.intoto.jsonl).",
)
@json_option
def explain_command(
    model: str,
    policy_path: str,
    signature_path: str | None,
    attestations_file: str | None,
    as_json: bool,
) -> None:
    """Show, rule by rule, what held and what did not when POLICY judged MODEL.

    The same decision as `provenance verify MODEL --policy POLICY`, with
    every rule of the policy listed (held or not, and why) and the notes
    verify leaves out. Exit 0 when the policy allows the model, 1 when it
    denies it, 2 for a bad policy, 3 for bad input.

    \b
    Example:
      provenance policy explain my-model --policy policy.yaml
    """
    from provenance import policy as policies
    from provenance_cli._decision import denial, explain_lines

    rules = policies.load(policy_path)
    decision = policies.evaluate(
        rules, model, signature_path=signature_path, attestations_path=attestations_file
    )
    body = {"ok": decision.allowed, "decision": decision.to_json()}
    lines = explain_lines(decision)
    if decision.allowed:
        emit(body, as_json=as_json, lines=lines)
        return
    emit(body, as_json=as_json, lines=lines, error=denial(decision), exit_code=1)
