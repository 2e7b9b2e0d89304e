"""The one way a command reports: text for people, one JSON object for CI.

Why one function: the ``--json`` output is a documented contract (output
contract v1, ``schemas/cli-*.schema.json``), so its head, its error object,
its hints and its encoding must not be re-invented by each command. A
command computes a result object with the library, then hands it here; it
decides nothing about the verdict itself.

Every JSON object starts with ``{"version": 1, "command": NAME, "ok": BOOL}``
followed by the result's ``to_json()`` fields; a failure adds
``"error": {"code", "message", "exit_code", "hint"?, "details"?}``. Text goes
to stdout, errors and warnings to stderr, colour only when allowed
(``NO_COLOR`` turns it off). A closed stdout (``provenance verify M | head
-0``) never changes the exit code: the rest of the output is discarded.

Adopting it in a command (``inspect``, ``lineage``, ``attest`` ...)::

    from provenance_cli._common import handle_errors, json_option
    from provenance_cli._output import Line, emit

    @click.command("lineage")
    @click.argument("model")
    @json_option
    @handle_errors()                    # library errors -> error object + exit code
    def lineage_command(model: str, as_json: bool) -> None:
        graph = build(model)            # a result object with .to_json() (and .ok)
        emit(graph, as_json=as_json, lines=[Line(render_tree(graph))])

* ``emit(result, as_json=..., lines=...)`` prints the head plus
  ``result.to_json()`` (a mapping is taken as it is), or the text lines.
  ``ok`` is ``result.ok`` when the result has one, else true. Pass
  ``error=`` (a :class:`~provenance.errors.ProvenanceError`) and
  ``exit_code=`` for a result that is reported *and* failed (``verify``
  reports its findings with the error); ``emit`` then exits.
* ``emit_error(error, exit_code, as_json=...)`` is a failure with nothing
  else to report; :func:`provenance_cli._common.handle_errors` calls it.
* ``command`` defaults to the running Click command's path without the
  program name (``verify``, ``attest training``).
* Library errors and findings carry :class:`provenance.errors.Hint` names,
  never flags. Add the command's row to :data:`HINTS` so a hint is rendered
  as an option *that command* has; a hint with no row is left out rather
  than advising an option the command does not take.
* Add ``schemas/cli-NAME.schema.json`` (``$ref`` the shared
  ``output-common.schema.json#/$defs``, ``additionalProperties: false``)
  and a case in ``tests/test_output_contract.py`` that validates real output.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, NoReturn, Protocol

import click

from provenance.errors import Hint, ProvenanceError

__all__ = [
    "CONTRACT_VERSION",
    "HELP_HINT",
    "HINTS",
    "JsonResult",
    "Line",
    "command_name",
    "emit",
    "emit_error",
    "error_json",
    "head",
    "render_hint",
    "warn",
    "write_json",
]

#: The version of the ``--json`` output contract (``schemas/cli-*.schema.json``).
CONTRACT_VERSION = 1

_PASSWORD_ENV = "PROVENANCE_KEY_PASSWORD"  # noqa: S105 (a variable name, not a secret)

# A hint rendered per command, as an option the command has. A command not
# listed (or a hint missing from its row) renders no hint: advising a flag the
# command does not take (inspect has no --signature; keyless sign has no
# --offline) is worse than saying nothing.
_SIGN_HINTS: dict[str, str] = {
    Hint.ALLOW_SYMLINKS: "pass --allow-symlinks to follow links that stay inside the model",
    Hint.SIGNATURE_PATH: "pass --signature PATH",
    Hint.KEY: "pass --key PRIVATE.pem (or --kms URI, or --sigstore)",
    Hint.KEY_PASSWORD: f"set ${_PASSWORD_ENV}, or run on a terminal to be asked for it",
    Hint.KMS_PUBLIC_KEY: "pass --kms-public-key PUBLIC.pem",
    Hint.KMS_EXTRA: "install the kms extra: pip install 'securesystemslib>=1.0'",
    Hint.IDENTITY_TOKEN: "pass --identity-token TOKEN (or set $SIGSTORE_ID_TOKEN)",
    Hint.IGNORE_PATH: "pass --ignore PATH to leave that file out of the signature",
    Hint.OUTPUT_PATH: "pass --signature PATH with a new file name",
}

HINTS: dict[str, dict[str, str]] = {
    "hash": {
        Hint.ALLOW_SYMLINKS: "pass --allow-symlinks to follow links that stay inside the model",
    },
    "sign": _SIGN_HINTS,
    "attest": {
        **{
            k: v
            for k, v in _SIGN_HINTS.items()
            if k not in (Hint.SIGNATURE_PATH, Hint.IGNORE_PATH, Hint.OUTPUT_PATH)
        },
        Hint.OUTPUT_PATH: "pass --output PATH with a new file name",
        Hint.PRUNE: "drop the damaged lines with: provenance attest prune MODEL",
    },
    "attest prune": {
        Hint.SIGNATURE_PATH: "pass --signature PATH",
        Hint.KEY: "pass --key PUBLIC.pem with the public key of the signer",
        Hint.ROOT: "pass --root CA.pem with the trusted root certificate",
        Hint.IDENTITY: "pass --identity ID (or --identity-regexp PATTERN) and --issuer URL",
        Hint.ISSUER: "pass --issuer URL, the OIDC issuer that vouched for the identity",
        Hint.OFFLINE: "pass --offline to use the pinned trust root without the network",
        Hint.TRUST_ROOT: "pass --trust-root FILE (a trusted_root.json)",
        Hint.SUBJECT_DIGEST: "pass --subject-digest HEX (64 hex digits, as provenance hash prints)",
        Hint.ATTESTATIONS_FILE: "pass --attestations-file PATH",
        Hint.ALLOW_SYMLINKS: "pass --allow-symlinks to follow links that stay inside the model",
    },
    "verify": {
        # No allow_symlinks row: verify takes the symlink rule from the
        # signature, and advising to re-sign around a new link would be unsafe.
        Hint.SIGNATURE_PATH: "pass --signature PATH",
        Hint.SIGN_FIRST: "sign the model first: provenance sign MODEL --key PRIVATE.pem",
        Hint.KEY: "pass --key PUBLIC.pem with the public key of the signer",
        Hint.ROOT: "pass --root CA.pem with the trusted root certificate",
        Hint.IDENTITY: "pass --identity ID (or --identity-regexp PATTERN) and --issuer URL",
        Hint.ISSUER: "pass --issuer URL, the OIDC issuer that vouched for the identity",
        Hint.OFFLINE: "pass --offline to use the pinned trust root without the network",
        Hint.TRUST_ROOT: "pass --trust-root FILE (a trusted_root.json)",
        Hint.IGNORE_UNSIGNED: "pass --ignore-unsigned-files to let files the signature "
        "does not list be present",
        Hint.ATTESTATIONS_ONLY: "pass --attestations-only to check the attestations against a "
        "fresh hash of the model (or --subject-digest HEX to pin the digest)",
        Hint.SUBJECT_DIGEST: "pass --subject-digest HEX (64 hex digits, as provenance hash prints)",
        Hint.ATTESTATIONS_FILE: "pass --attestations-file PATH",
    },
    # inspect takes the signature as TARGET and has no option that fixes a
    # missing one; lineage has none either.
    "inspect": {Hint.ATTESTATIONS_FILE: "pass --attestations-file PATH"},
    "lineage": {Hint.ATTESTATIONS_FILE: "pass --attestations-file PATH"},
    "run": {
        Hint.KEY: "pass --key PRIVATE.pem (or --kms URI)",
        Hint.KEY_PASSWORD: _SIGN_HINTS[Hint.KEY_PASSWORD],
        Hint.KMS_PUBLIC_KEY: _SIGN_HINTS[Hint.KMS_PUBLIC_KEY],
        Hint.KMS_EXTRA: _SIGN_HINTS[Hint.KMS_EXTRA],
        Hint.ALLOW_SYMLINKS: "pass --allow-symlinks to follow links that stay inside the "
        "base folder",
        Hint.OUTPUT_PATH: "pass --links DIR with a folder where the link may be written",
    },
    "layout sign": {
        Hint.KEY: "pass --key PRIVATE.pem (or --kms URI)",
        Hint.KEY_PASSWORD: _SIGN_HINTS[Hint.KEY_PASSWORD],
        Hint.KMS_PUBLIC_KEY: _SIGN_HINTS[Hint.KMS_PUBLIC_KEY],
        Hint.KMS_EXTRA: _SIGN_HINTS[Hint.KMS_EXTRA],
        Hint.OUTPUT_PATH: "pass --output PATH with a new file name",
    },
    "layout init": {
        Hint.OUTPUT_PATH: "pass --output PATH with a new file name (or --force to replace "
        "a regular file)",
    },
    "key generate": {
        Hint.OUTPUT_PATH: "give a NAME for which neither NAME.pem nor NAME.pub exists",
    },
    "scan": {
        Hint.ALLOW_SYMLINKS: "pass --follow-symlinks to scan links whose targets stay inside PATH",
    },
    "policy init": {
        Hint.OUTPUT_PATH: "pass --output PATH with a new file name (or --force to replace "
        "a regular file)",
    },
}


#: What exit code 1 is called where it is not a failed verification.
_FAILED = {"scan": "not clean"}

#: A CLI-only hint for Click's own usage errors: every command has ``--help``.
HELP_HINT = "help"


def render_hint(hint: str | None, command: str) -> str | None:
    """A hint name as advice in the words of ``command`` (None when it has no such option)."""
    if not hint:
        return None
    if hint == HELP_HINT:
        return f"see: provenance {command} --help"
    table = HINTS.get(command) or HINTS.get(command.split(" ", 1)[0], {})
    return table.get(hint)


class JsonResult(Protocol):
    """A result object: it owns its JSON (the command adds only the head)."""

    def to_json(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Line:
    """One line of text output: where it goes and how it looks."""

    text: str
    fg: str | None = None
    err: bool = False
    #: A block already rendered line by line (a lineage graph whose renderer
    #: escaped every name): its newlines are kept, other controls escaped.
    block: bool = False


def command_name(ctx: click.Context | None = None) -> str:
    """The running command's path without the program name: ``verify``, ``attest training``."""
    ctx = ctx or click.get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        if ctx.info_name:
            names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names)) or "provenance"


def head(command: str, ok: bool) -> dict[str, Any]:
    """The three fields every ``--json`` object starts with."""
    return {"version": CONTRACT_VERSION, "command": command, "ok": ok}


def error_json(error: ProvenanceError, exit_code: int, command: str) -> dict[str, Any]:
    """The contract's error object; the hint is rendered for ``command``."""
    out: dict[str, Any] = {"code": error.code, "message": str(error), "exit_code": exit_code}
    hint = render_hint(error.hint, command)
    if hint:
        out["hint"] = hint
    if error.details:
        out["details"] = list(error.details)
    return out


# ---------------------------------------------------------------- writing


def _color() -> bool | None:
    """False when NO_COLOR is set (https://no-color.org); else Click decides (a terminal)."""
    return False if os.environ.get("NO_COLOR") else None


def _discard(stream_name: str) -> None:
    """Point a stream whose reader went away at /dev/null, so nothing later fails on it.

    The file descriptor is redirected, not only the Python object, so the
    interpreter's final flush (of whatever Click had buffered) succeeds too
    and cannot turn into exit code 120.
    """
    stream: IO[Any] = getattr(sys, stream_name)
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        setattr(sys, stream_name, open(os.devnull, "w"))  # noqa: SIM115 (kept open on purpose)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _safely(to_stderr: bool, write: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """Run one write; a closed pipe (EPIPE) discards the output, never the verdict."""
    name = "stderr" if to_stderr else "stdout"
    if getattr(sys, name) is None:  # started with the stream closed (`>&-`)
        return
    try:
        write(*args, **kwargs)
        getattr(sys, name).flush()
    except BrokenPipeError:
        _discard(name)
    except OSError:  # a full disk (/dev/full), a closed descriptor: the output is lost,
        _discard(name)  # the verdict and its exit code are not


def write_json(data: Mapping[str, Any]) -> None:
    """One JSON document on stdout, always valid UTF-8.

    A file name that is not valid UTF-8 reaches Python as lone surrogates;
    those are written as JSON ``\\uXXXX`` escapes instead of failing or
    emitting bytes that are not UTF-8.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raw = text.encode("utf-8", "backslashreplace")
    _safely(False, click.echo, raw, nl=False)


def warn(message: str) -> None:
    """One warning on stderr (never stdout, so ``--json`` output stays one object)."""
    _write_lines([Line(f"warning: {message}", fg="yellow", err=True)])


# C0/C1 controls, inner newlines, and the format characters that reorder or
# hide text on a terminal (bidi overrides and isolates, zero-width marks,
# line and paragraph separators, the BOM), plus lone surrogates (undecodable
# bytes of a file name), which no terminal encoding can write.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff]|\n(?!\\Z)"
)


def printable(text: str) -> str:
    """Escape control characters (and inner newlines) in a line for a terminal.

    Names of files, signers and attestations are untrusted: an escape
    sequence in one could repaint the screen or forge a ``Verified:`` line.
    Every text line goes through here, so no command can forget.
    """
    return _CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return c.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")


def _write_lines(lines: Iterable[Line | str]) -> None:
    color = _color()
    for line in lines:
        if isinstance(line, str):
            line = Line(line)
        if line.block:
            text = "\n".join(printable(part) for part in line.text.split("\n"))
        else:
            text = printable(line.text)
        _safely(line.err, click.secho, text, fg=line.fg, err=line.err, color=color)


def _error_lines(error: ProvenanceError, exit_code: int, command: str) -> list[Line]:
    """An error in words on stderr: the reason, its hint, then up to 20 more problems."""
    prefix = _FAILED.get(command, "verification failed") if exit_code == 1 else "error"
    lines = [Line(f"{prefix}: {error}", fg="red", err=True)]
    hint = render_hint(error.hint, command)
    if hint:
        lines.append(Line(f"  hint: {hint}", err=True))
    details = error.details
    lines.extend(Line(f"  also: {d}", err=True) for d in details[1:21])
    if len(details) > 21:
        lines.append(Line(f"  ... and {len(details) - 21} more", err=True))
    return lines


# ---------------------------------------------------------------- the output function


def emit(
    result: JsonResult | Mapping[str, Any],
    *,
    as_json: bool,
    lines: Iterable[Line | str] = (),
    command: str | None = None,
    error: ProvenanceError | None = None,
    exit_code: int | None = None,
) -> None:
    """Render one result: the contract's JSON object, or text for people.

    With ``error``, the result is a failure that still reports (``verify``'s
    findings): JSON gets ``ok: false`` and the error object, text gets the
    error block on stderr after ``lines``; then the process exits with
    ``exit_code`` (1 unless given). Without it, ``emit`` returns, unless a
    non-zero ``exit_code`` is given.
    """
    command = command or command_name()
    if error is not None and exit_code is None:
        exit_code = 1
    if as_json:
        body = dict(result) if isinstance(result, Mapping) else dict(result.to_json())
        ok = bool(body.pop("ok", getattr(result, "ok", True))) and error is None
        out = {**head(command, ok), **body}
        if error is not None:
            out["error"] = error_json(error, exit_code or 1, command)
        write_json(out)
    else:
        _write_lines(lines)
        if error is not None:
            _write_lines(_error_lines(error, exit_code or 1, command))
    if exit_code:
        sys.exit(exit_code)


def emit_error(
    error: ProvenanceError,
    exit_code: int,
    *,
    as_json: bool,
    command: str | None = None,
) -> NoReturn:
    """Report a failure with nothing else to say, and exit with ``exit_code``."""
    command = command or command_name()
    if as_json:
        write_json({**head(command, False), "error": error_json(error, exit_code, command)})
    else:
        _write_lines(_error_lines(error, exit_code, command))
    sys.exit(exit_code)
