"""``provenance scan``: check every file of a model by the rules of its format.

The verdict is :func:`provenance.formats.scan`'s; this renders it.
"""

from __future__ import annotations

import click

from provenance.errors import VerificationError
from provenance_cli._common import EXIT_FAILED, handle_errors, json_option
from provenance_cli._output import Line, emit


@click.command("scan")
@handle_errors()
@click.argument("path", type=click.Path(path_type=str))
@click.option(
    "--allow-global",
    "allow_globals",
    multiple=True,
    metavar="MODULE.NAME",
    help="Also allow this pickle global, exactly (repeatable; no wildcards), "
    "e.g. --allow-global collections.Counter. Loading the pickle may call it: "
    "name only what you trust.",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Scan a link as its target when the target stays inside PATH. A Hugging Face "
    "cache snapshot (.../snapshots/REV) is scanned through its links into the "
    "repository's blobs/ without this flag.",
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
    and warnings exit 1 too. Symbolic links are refused: scan a real copy of
    a Hugging Face cache snapshot (cp -rL).

    \b
      provenance scan my-model
      provenance scan pytorch_model.bin --json
      provenance scan my-model --allow-global collections.Counter

    Exit codes: 0 clean (info findings only), 1 errors or warnings, 3 unreadable.
    """
    from provenance.formats import scan

    report = scan(path, allow_globals=allow_globals, follow_symlinks=follow_symlinks)
    lines: list[Line] = []
    # A file's mark counts every finding about it, the folder checks' too.
    flagged = {x.file for x in report.findings if x.severity != "info"}
    for f in report.files:
        detail = f" ({f.detail})" if f.detail else ""
        mark = "✗" if f.name in flagged else "✓"
        lines.append(Line(f"{mark} {f.name}: {f.format}{detail}"))
    order = {"error": 0, "warning": 1, "info": 2}
    for x in sorted(report.findings, key=lambda x: order[x.severity]):
        where = x.file + (f" [{x.member}]" if x.member else "")
        colour = {"error": "red", "warning": "yellow", "info": None}[x.severity]
        lines.append(Line(f"  {x.severity}: {where}: {x.message} ({x.code})", colour))
    errors = sum(x.severity == "error" for x in report.findings)
    warnings = sum(x.severity == "warning" for x in report.findings)
    if report.ok:
        lines.append(Line(f"Clean: {len(report.files)} file(s) scanned", "green"))
        emit(report, as_json=as_json, lines=lines)
        return
    # The findings are listed above (and in the JSON report): the error only counts them.
    error = VerificationError(
        f"{errors} error(s) and {warnings} warning(s) in {len(report.files)} file(s) scanned",
        code="scan-findings",
    )
    emit(report, as_json=as_json, lines=lines, error=error, exit_code=EXIT_FAILED)
