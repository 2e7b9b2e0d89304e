"""``provenance scan``: check every file of a model by the rules of its format.

The verdict is :func:`provenance.formats.scan`'s; this renders it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from provenance.errors import VerificationError
from provenance_cli._common import EXIT_FAILED, handle_errors, json_option
from provenance_cli._output import Line, emit

if TYPE_CHECKING:
    from provenance.formats import FormatFinding, ScanReport


@click.command("scan")
@handle_errors()
@click.argument("path", type=click.Path(path_type=str))
@click.option(
    "--allow-global",
    "allow_globals",
    multiple=True,
    metavar="MODULE.NAME",
    help="Also allow this pickle global, exactly as the scan names it (repeatable; no "
    "wildcards), e.g. --allow-global collections.Counter. Loading the pickle may call "
    "it: name only what you trust.",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Scan a link as its target when the target stays inside PATH (links are "
    "refused without it). A Hugging Face cache snapshot (.../snapshots/REV) is "
    "scanned through its own links into the repository's blobs/ either way.",
)
@json_option
def scan_command(
    path: str, allow_globals: tuple[str, ...], follow_symlinks: bool, as_json: bool
) -> None:
    """Check every file under PATH by the rules of its format, found by content.

    An allowlist, not a denylist: a pickle may import only the globals a
    plain state dict or numpy array needs; safetensors headers must be exact;
    zip archives must agree with themselves; GGUF, ONNX and Keras files are
    bounded and checked for what their loaders run. Nothing is unpickled,
    imported or executed, and tensor data is never read. Code a loader runs
    (*.py, auto_map in config.json, chat templates) is reported as a warning,
    and warnings exit 1 too.

    \b
      provenance scan my-model
      provenance scan pytorch_model.bin --json
      provenance scan my-model --allow-global collections.Counter

    To make a load depend on it, a policy runs the same scan
    (files: {scan: true}) or refuses pickle-based formats outright
    (files: {formats: {deny: [pickle]}}): see provenance policy init.

    Exit codes: 0 clean (info findings only), 1 errors or warnings, 2 usage
    error, 3 unreadable.
    """
    from provenance.formats import scan

    report = scan(path, allow_globals=allow_globals, follow_symlinks=follow_symlinks)
    lines = _lines(report)
    if allow_globals:
        lines.append(Line(f"note: allowed beyond the built-in list: {', '.join(allow_globals)}"))
    errors = sum(x.severity == "error" for x in report.findings)
    warnings = sum(x.severity == "warning" for x in report.findings)
    if report.ok:
        lines.append(Line(f"Clean: {len(report.files)} file(s) scanned", "green"))
        emit(report, as_json=as_json, lines=lines)
        return
    lines.extend(Line(f"hint: {h}") for h in _hints(report, allow_globals))
    # The findings are listed above (and in the JSON report): the error only counts them.
    error = VerificationError(
        f"{errors} error(s) and {warnings} warning(s) in {len(report.files)} file(s) scanned",
        code="scan-findings",
    )
    emit(report, as_json=as_json, lines=lines, error=error, exit_code=EXIT_FAILED)


_ORDER = {"error": 0, "warning": 1, "info": 2}
_COLOUR = {"error": "red", "warning": "yellow", "info": None}


def _lines(report: ScanReport) -> list[Line]:
    """Each file with every finding about it under it (the folder checks' too);
    then what concerns no scanned file: links refused, the folder itself."""
    lines: list[Line] = []
    names = {f.name for f in report.files}
    about: dict[str, list[FormatFinding]] = {}
    for x in report.folder_findings:
        about.setdefault(x.file if x.file in names else "", []).append(x)
    for f in report.files:
        detail = f" ({f.detail})" if f.detail else ""
        own = [*f.findings, *about.get(f.name, ())]
        lines.append(Line(f"{_mark(own)} {f.name}: {f.format}{detail}"))
        lines.extend(_finding(x, member_only=True) for x in sorted(own, key=_severity))
    others: dict[str, list[FormatFinding]] = {}
    for x in about.get("", ()):
        others.setdefault(x.file, []).append(x)
    for name, found in others.items():
        unread = all(x.code.startswith("scan-") for x in found)
        lines.append(Line(f"{_mark(found)} {name}{': not scanned' if unread else ''}"))
        lines.extend(_finding(x, member_only=True) for x in sorted(found, key=_severity))
    return lines


def _mark(found: list[FormatFinding]) -> str:
    """✗ for an error, ! for a warning (both exit 1), ✓ for info or nothing."""
    severities = {x.severity for x in found}
    return "✗" if "error" in severities else "!" if "warning" in severities else "✓"


def _severity(x: object) -> int:
    return _ORDER[getattr(x, "severity", "info")]


def _finding(x: object, *, member_only: bool = False) -> Line:
    file, member = getattr(x, "file", ""), getattr(x, "member", None)
    where = f"[{member}]" if member_only and member else "" if member_only else file
    if not member_only and member:
        where += f" [{member}]"
    sev = getattr(x, "severity", "info")
    prefix = f"{sev}: {where}: " if where else f"{sev}: "
    return Line(f"  {prefix}{getattr(x, 'message', '')} ({getattr(x, 'code', '')})", _COLOUR[sev])


def _hints(report: ScanReport, allow_globals: tuple[str, ...]) -> list[str]:
    """What to do about the findings, once per kind, in words for whoever runs the scan."""
    codes = {x.code for x in report.findings if x.severity != "info"}
    texts = " ".join(x.message for x in report.findings if x.code == "pickle-global-denied")
    out: list[str] = []
    if "torch.jit" in texts or "'__torch__" in texts:
        out.append(
            "this is a TorchScript archive, which holds code: load it with torch.jit.load "
            "only from a source you trust, or ask for safetensors"
        )
    elif "torch.nn.modules" in texts or "'__main__." in texts:
        out.append(
            "this is a whole pickled object (torch.save(model)), which names classes to run "
            "on load: save model.state_dict() instead, or better, safetensors"
        )
    if "pickle-global-denied" in codes or "pickle-call-denied" in codes:
        out.append(
            "loading a pickle imports and calls what it names, which can run any code: do "
            "not load a file flagged here. Ask for safetensors; or, if you trust a name, allow "
            "it with --allow-global MODULE.NAME, exactly as shown"
        )
    out.extend(_unmatched(report, allow_globals))
    if "scan-symlink-refused" in codes:
        out.append("pass --follow-symlinks to scan links whose targets stay inside PATH")
    return out


_DENIED_NAME = re.compile(r"'([^']+)'(?: \(loaded as '([^']+)'\))? is not in the allowlist")


def _unmatched(report: ScanReport, allow_globals: tuple[str, ...]) -> list[str]:
    """An allowed name that a denied global ends like: the name was likely
    written as Python spells it (os.system), not as the pickle does (posix.system)."""
    denied: set[str] = set()
    for x in report.findings:
        if x.code == "pickle-global-denied":
            for got in _DENIED_NAME.finditer(x.message):
                denied.update(n for n in got.groups() if n)
    out = []
    for name in allow_globals:
        near = sorted(d for d in denied if d.rpartition(".")[2] == name.rpartition(".")[2])
        if name not in denied and near:
            out.append(
                f"--allow-global {name} matched nothing, but the pickle names "
                f"{', '.join(repr(n) for n in near)}: allow the name exactly as the scan shows it"
            )
    return out
