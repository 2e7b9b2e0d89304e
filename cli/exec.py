"""``provenance exec``: verify a model, then run a command on what was verified.

For loaders that only take a path (llama.cpp, ONNX Runtime, a C++ server)
and for container entrypoints. The verdict is the library's, through the
same pipeline as ``provenance verify``: a policy's
:func:`provenance.policy.evaluate`, or :func:`provenance.verification.check_model`
with the trust options; in the sealed and copy modes
:func:`provenance.loading.open_verified`, which keeps the bytes it hashed.
This module only chooses how those bytes reach the command and renders
the verdict.

The modes (what the command is given, what is guaranteed, what it costs):

* ``path`` (default): the model's own path. Verified, then the command opens
  it again: whoever can write the folder in between decides what loads
  (the gap remains). No extra memory or disk; as fast as ``verify``.
* ``sealed`` (Linux): the verified bytes in sealed memory files
  (:mod:`provenance._internal.sealed`), behind a private folder of links.
  No gap: the bytes the command reads are the bytes that were hashed, and
  nobody can change them. Costs the model's size in memory (shared memory,
  counted against the container's memory limit), one descriptor per file.
* ``copy``: a read-only copy of the verified bytes in a new folder
  (``--into``; :mod:`provenance._internal.private_copy`). No gap as long as
  nothing else can write there: meant for a Kubernetes init container
  writing into an ``emptyDir`` the main container mounts read-only. Costs
  the model's size on that volume. The command is optional.

Why ``execve`` and no supervisor: the command *replaces* provenance, so in
a container it is PID 1 itself and gets ``SIGTERM`` directly, its exit code
is the container's, and no Python process stays resident beside a server.
Sealed mode works across ``execve`` because the memfds are inheritable and
``execve`` keeps the PID the links name (``/proc/PID/fd/N``). The price:
nothing is left to remove the link folder (symbolic links only, a few
hundred bytes each, in ``$TMPDIR``, ``/dev/shm`` or ``/tmp``), and the
command must not close those descriptors while it or its children load.

Output: stdout belongs to the command. The verdict is one line on stderr
(none with ``--quiet``; a denial and its reasons always), or with ``--json``
one JSON object on one stderr line, a log collector's unit. ``--audit-log``
appends a policy's decision as ``verify`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from provenance.errors import ProvenanceError, UsageError, VerificationError
from provenance_cli._common import EXIT_FAILED, handle_errors
from provenance_cli._output import Line, emit, error_json, head
from provenance_cli.verify import TrustOptions

if TYPE_CHECKING:
    from provenance.policy import Decision
    from provenance.verification import VerificationReport

F = TypeVar("F", bound=Callable[..., Any])

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
MODES = ("path", "sealed", "copy")
_ARGV = "provenance.exec.argv"
_PATH = click.Path(path_type=str)
_GUARANTEE = {
    "path": "at its own path, not sealed",
    "sealed": "sealed in memory at {}",
    "copy": "verified copy at {}",
}


class CommandError(ProvenanceError):
    """The command could not be started (126 not executable, 127 not found)."""

    def __init__(self, reason: str, exit_code: int) -> None:
        super().__init__(reason, code="command-not-found" if exit_code == 127 else "not-executable")
        self.exit_code = exit_code


class _Exec(click.Command):
    """Everything after the first ``--`` is the command, untouched by option parsing."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[_ARGV] = args[cut + 1 :]
            args = args[:cut]
        else:
            ctx.meta[_ARGV] = None
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[OPTIONS]", "MODEL", "[-- COMMAND [ARGS]...]"]


def report_error(error: ProvenanceError, exit_code: int, *, as_json: bool) -> NoReturn:
    """A failure on stderr (text, or the error object on one line) and its exit code."""
    if as_json:
        _json_line({**head("exec", False), "error": error_json(error, exit_code, "exec")})
        sys.exit(exit_code)
    emit({}, as_json=False, command="exec", error=error, exit_code=exit_code)
    sys.exit(exit_code)  # emit exits; this tells the type checker


@click.command("exec", cls=_Exec)
# Errors go to stderr (stdout is the command's); an unexpected one denies (1):
# the command must not run on a model nothing vouched for (fail closed).
@handle_errors(failure_code=EXIT_FAILED, report=report_error)
@click.argument("model", type=_PATH)
@click.argument("stray", nargs=-1, type=click.UNPROCESSED)  # a command without --
@click.option(
    "--policy",
    "policy_path",
    type=_PATH,
    metavar="POLICY",
    envvar="PROVENANCE_POLICY",
    help="Let a policy file decide (also read from $PROVENANCE_POLICY); "
    "or give the trust options below, as for verify.",
)
@TrustOptions.options
@click.option(
    "--signature",
    "signature_path",
    type=_PATH,
    metavar="PATH",
    help="The signature to check (default MODEL/model.sig, or MODEL.sig for a file).",
)
@click.option(
    "--attestations-file",
    type=_PATH,
    metavar="PATH",
    help="The attestations to check (default: a policy reads MODEL/model.intoto.jsonl; "
    "with the trust options, none unless given).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="path",
    show_default=True,
    help="What the command gets: the model's own path (path); the verified bytes in "
    "sealed memory files, Linux (sealed); a read-only verified copy in --into (copy).",
)
@click.option(
    "--into",
    type=_PATH,
    metavar="DIR",
    help="With --mode copy: the new folder to write the verified copy into.",
)
@click.option(
    "--placeholder",
    default="{}",
    show_default=True,
    metavar="TEXT",
    help="Replaced by the model's path wherever it appears in the command's arguments "
    "('' for none). The path is also in $PROVENANCE_MODEL.",
)
@click.option(
    "--audit-log",
    type=_PATH,
    metavar="FILE",
    envvar="PROVENANCE_AUDIT_LOG",
    help="With --policy: append the decision to FILE as one JSON line "
    "(also read from $PROVENANCE_AUDIT_LOG).",
)
@click.option("--quiet", "-q", is_flag=True, help="No verdict line when the model is allowed.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="The verdict (or error) as one JSON object on one line of stderr.",
)
def exec_command(
    model: str,
    stray: tuple[str, ...],
    policy_path: str | None,
    trust: TrustOptions,
    signature_path: str | None,
    attestations_file: str | None,
    mode: str,
    into: str | None,
    placeholder: str,
    audit_log: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Verify MODEL, then run COMMAND on exactly what was verified.

    \b
    Examples:
      provenance exec --policy policy.yaml models/m -- llama-server -m {}
      provenance exec --key key.pub --mode sealed models/m -- onnx-serve --model {}/model.onnx
      provenance exec --policy policy.yaml --mode copy --into /verified/m /models/m

    Every {} in the command's arguments becomes the path the mode gives
    (--placeholder changes it); the command also gets it in $PROVENANCE_MODEL
    and the signed root digest in $PROVENANCE_MODEL_DIGEST. The command
    replaces provenance (execve): its exit code is the exit code.

    \b
    Modes (guarantee; cost):
      path    the model's own path: verified, but it could change before the
              command opens it; nothing extra (the default)
      sealed  the verified bytes in sealed memory files behind a private folder of
              links (Linux): nobody can change them; the model's size in memory
              (the container's limit counts it), one descriptor per file
      copy    a read-only copy of the verified bytes in a new folder --into (an
              emptyDir an init container fills): nothing else may write there;
              the model's size on that disk; COMMAND is optional

    Exit codes: 1 not verified or denied (the command never runs), 2 usage
    error or invalid policy, 3 bad input, 126 the command cannot be run,
    127 it was not found; otherwise the command's own.
    """
    ctx = click.get_current_context()
    argv: list[str] | None = ctx.meta.get(_ARGV)
    if stray:
        raise UsageError(
            "put -- before the command: provenance exec [OPTIONS] MODEL -- COMMAND [ARGS]...",
            hint="help",
        )
    if (argv is None or not argv) and mode != "copy":
        raise UsageError(
            "give the command to run after --: provenance exec [OPTIONS] MODEL -- COMMAND "
            "[ARGS]... (only --mode copy may leave it out)",
            hint="help",
        )
    if argv and not argv[0]:
        raise UsageError("the command after -- is an empty string")
    if mode == "copy" and into is None:
        raise UsageError("--mode copy needs --into DIR: the new folder for the verified copy")
    if into is not None and mode != "copy":
        raise UsageError("--into goes with --mode copy (the other modes write nothing)")
    from_env = ctx.get_parameter_source("audit_log") is click.core.ParameterSource.ENVIRONMENT
    if audit_log is not None and policy_path is None:
        if not from_env:
            raise UsageError("--audit-log records a policy's decisions; give --policy too")
        audit_log = None
    if policy_path is not None and trust != TrustOptions():
        if ctx.get_parameter_source("policy_path") is click.core.ParameterSource.ENVIRONMENT:
            raise UsageError(
                f"$PROVENANCE_POLICY is set ({policy_path}), so leave out the trust options "
                "(--key, --root, --identity ...): the policy says whom to trust; or unset "
                "PROVENANCE_POLICY to verify without it"
            )
        raise UsageError(
            "give --policy or the trust options (--key, --root, --identity ...), not both"
        )
    program = _resolve(argv[0]) if argv else None  # before hashing: fail fast
    run = _Run(
        model, mode, policy_path, trust, signature_path, attestations_file, audit_log, as_json
    )
    if mode == "path":
        path, digest = run.verify_in_place()
    else:
        path, digest = run.verify_and_expose(into)
    if not quiet:
        run.render(path, argv)
    if not argv or program is None:
        return
    substituted = [a.replace(placeholder, path) if placeholder else a for a in argv]
    env = {**os.environ, "PROVENANCE_MODEL": path, "PROVENANCE_MODEL_DIGEST": digest}
    _execute(program, substituted, env)


class _Run:
    """One verification: the trust to use, then its verdict, rendered on stderr."""

    def __init__(
        self,
        model: str,
        mode: str,
        policy_path: str | None,
        trust: TrustOptions,
        signature_path: str | None,
        attestations_file: str | None,
        audit_log: str | None,
        as_json: bool,
    ) -> None:
        self.model = model
        self.mode = mode
        self.policy_path = policy_path
        self.trust = trust
        self.signature_path = signature_path
        self.attestations_file = attestations_file
        self.audit_log = audit_log
        self.decision: Decision | None = None
        self.report: VerificationReport | None = None
        self.as_json = as_json
        #: Copy mode: False when an identical verified copy was already there.
        self.written = True

    def verify_in_place(self) -> tuple[str, str]:
        """Path mode: the verify pipeline itself, bytes hashed and let go."""
        from provenance.bundle import refuse_bundle_as_model

        refuse_bundle_as_model(self.model)
        if self.policy_path is not None:
            from provenance import policy as policies

            decision = policies.evaluate(
                policies.load(self.policy_path),
                self.model,
                signature_path=self.signature_path,
                attestations_path=self.attestations_file,
            )
            self._judged(decision)
        else:
            from provenance.verification import check_model

            report = check_model(
                self.model,
                self.trust.build(),
                signature_path=self.signature_path,
                attestations_path=self.attestations_file,
            )
            self._checked(report)
        return os.path.abspath(self.model), self._digest()

    def verify_and_expose(self, into: str | None) -> tuple[str, str]:
        """Sealed and copy modes: keep the verified bytes and hand those on."""
        from provenance.bundle import refuse_bundle_as_model
        from provenance.loading import open_verified
        from provenance.policy import PolicyDenied

        mode = self.mode
        refuse_bundle_as_model(self.model)
        if mode == "sealed":
            from provenance._internal import sealed

            if not sealed.available():
                raise UsageError("--mode sealed needs Linux (memfd_create)")
        try:
            if self.policy_path is not None:
                from provenance import policy as policies

                trust: dict[str, Any] = {"policy": policies.load(self.policy_path)}
            else:
                trust = {"verifier": self.trust.build()}
            opened = open_verified(
                self.model,
                signature=self.signature_path,
                attestations=self.attestations_file,
                **trust,
            )
        except PolicyDenied as e:
            self._judged(e.decision)
            raise  # not reached: a denial exits
        except VerificationError as e:
            report = getattr(e, "report", None)
            if report is None:
                raise
            self._checked(report)
            raise
        with opened as verified:
            if verified.decision is not None:
                self._judged(verified.decision)
            else:
                self._checked(verified.report)
            if mode == "sealed":
                from provenance._internal.sealed import seal

                path = seal(verified).path
            else:
                from provenance._internal.private_copy import copy_verified

                assert into is not None
                path, self.written = copy_verified(verified, into)
        return str(path), self._digest()

    # ------------------------------------------------------------ verdicts

    def _judged(self, decision: Decision) -> None:
        """A policy's decision: logged if asked; a denial ends here (exit 1)."""
        self.decision = decision
        if self.audit_log is not None:
            from provenance import policy as policies

            policies.append_audit(self.audit_log, decision)
        if not decision.allowed:
            from provenance_cli._decision import denial, verdict

            self._fail(denial(decision), verdict(decision).text)

    def _checked(self, report: VerificationReport) -> None:
        """A verification without a policy: a failure ends here (exit 1)."""
        self.report = report
        try:
            report.raise_for_failure()
        except VerificationError as e:
            self._fail(e, f"Not verified: '{self.model}'")

    def _fail(self, error: VerificationError, line: str) -> NoReturn:
        code = EXIT_FAILED
        if self.as_json:
            body = {**head("exec", False), **self._body(None)}
            _json_line({**body, "error": error_json(error, code, "exec")})
            sys.exit(code)
        emit(
            {},
            as_json=False,
            command="exec",
            lines=[Line(f"provenance: {line}", "red", err=True)],
            error=error,
            exit_code=code,
        )
        sys.exit(code)

    def _digest(self) -> str:
        if self.decision is not None:
            return self.decision.root_digest or ""
        return (self.report.root_digest if self.report is not None else None) or ""

    def _body(self, path: str | None) -> dict[str, Any]:
        """The JSON verdict: the decision, or the report without its (long) manifest."""
        out: dict[str, Any] = {"mode": self.mode, "path": path}
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        elif self.report is not None:
            report = dict(self.report.to_json())
            report.pop("manifest", None)
            out["report"] = report
        return out

    def render(self, path: str, argv: list[str] | None) -> None:
        """The allowed verdict: one line (and any warnings) on stderr."""
        mode = self.mode
        if self.as_json:
            body = {**head("exec", True), **self._body(path), "argv": argv or []}
            _json_line(body)
            return
        how = _GUARANTEE[mode].format(path)
        if not self.written:
            how += ", already there"
        then = f"; running {argv[0]}" if argv else ""
        lines: list[Line] = []
        if self.decision is not None:
            from provenance_cli._decision import reason_lines, verdict

            first = verdict(self.decision)
            files = len(self.decision.manifest.files) if self.decision.manifest else 0
            text = f"{first.text}, sha256:{self._digest()} ({files} file(s), {how}){then}"
            lines.append(Line(f"provenance: {text}", first.fg, err=True))
            lines.extend(Line(r.text, r.fg, err=True) for r in reason_lines(self.decision))
        elif self.report is not None:
            m = self.report.manifest
            who = self.report.verified.signer.description if self.report.verified else "?"
            files = len(m.files) if m is not None else 0
            text = (
                f"Verified '{self.model}': {files} file(s) signed by {who}, "
                f"sha256:{self._digest()} ({how}){then}"
            )
            lines.append(Line(f"provenance: {text}", "green", err=True))
            lines.extend(Line(f"  warning: {w}", "yellow", err=True) for w in self.report.warnings)
        emit({}, as_json=False, command="exec", lines=lines)


def _json_line(data: dict[str, Any]) -> None:
    """One JSON object on one line of stderr: a log collector's unit, safe for a terminal."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed stderr loses the line, never the exit code
        pass


def _resolve(program: str) -> str:
    """The file ``program`` names (as ``execvp`` would find it), or exit 127 / 126."""
    if "/" in program:
        if not os.path.exists(program):
            raise CommandError(f"command not found: {program}", EXIT_NOT_FOUND)
        found = program
    else:
        which = shutil.which(program)
        if which is None:
            raise CommandError(f"command not found: {program} (not on $PATH)", EXIT_NOT_FOUND)
        found = which
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise CommandError(f"cannot run {program}: not an executable file", EXIT_NOT_EXECUTABLE)
    return found


def _execute(program: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with the command (its exit code becomes ours)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.execve(program, argv, env)  # noqa: S606 (the user's command, as given, no shell)
    except OSError as e:
        code = EXIT_NOT_FOUND if isinstance(e, FileNotFoundError) else EXIT_NOT_EXECUTABLE
        raise CommandError(f"cannot run {argv[0]}: {e.strerror or e}", code) from None
