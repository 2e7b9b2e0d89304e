"""``provenance verify-pipeline``: verify every step's link against the signed layout."""

from __future__ import annotations

from typing import Any

import click

from provenance_cli._common import handle_errors, json_option, parse_size
from provenance_cli._output import Line, emit
from provenance_cli._pipeline import short


@click.command("verify-pipeline")
@handle_errors(failure_code=1)
@click.option(
    "--layout",
    "layout",
    required=True,
    type=click.Path(path_type=str),
    metavar="FILE",
    help="The signed layout (provenance layout sign wrote it).",
)
@click.option(
    "--layout-key",
    "layout_keys",
    multiple=True,
    required=True,
    type=click.Path(path_type=str),
    metavar="OWNER.pub",
    help="The layout owner's public key (repeatable: every one must have signed it).",
)
@click.option(
    "--links",
    "links_dir",
    default=".",
    show_default=True,
    type=click.Path(path_type=str),
    metavar="DIR",
    help="The folder holding the steps' links (STEP.KEYID8.link).",
)
@click.option(
    "--run-inspections",
    is_flag=True,
    help="Run the layout's inspection commands (refused by default: verifying runs nothing).",
)
@click.option(
    "--max-link-size",
    callback=parse_size,
    default=None,
    metavar="SIZE",
    help="Largest link file read (default 64MiB; a link lists every file a step touched).",
)
@json_option
def verify_pipeline_command(
    layout: str,
    layout_keys: tuple[str, ...],
    links_dir: str,
    run_inspections: bool,
    max_link_size: int | None,
    as_json: bool,
) -> None:
    """Verify a pipeline: every step done by its functionaries, each step's inputs
    exactly an earlier step's outputs, as the signed layout says (in-toto's verification).

    \b
    Example:
      provenance verify-pipeline --layout root.layout --layout-key owner.pub --links links

    A failure names the step, the rule or threshold, and the file. Exit
    codes: 0 verified, 1 not verified, 2 usage error, 3 bad input (no such
    layout, links folder or key).
    """
    from provenance import pipeline
    from provenance.errors import VerificationError
    from provenance.findings import first_error_summary

    report = pipeline.verify_pipeline(
        layout,
        list(layout_keys),
        links_dir,
        run_inspections=run_inspections,
        max_link_bytes=max_link_size or pipeline.MAX_LINK_BYTES,
    )
    lines = _lines(report)
    if report.ok:
        lines.append(
            Line(
                f"Verified: pipeline {layout} ({len(report.steps)} steps, links in {links_dir}, "
                f"layout expires {report.expires})",
                fg="green",
            )
        )
        emit(report, as_json=as_json, lines=lines)
        return
    errs = report.errors
    error = VerificationError(
        first_error_summary(errs), [f.message for f in errs], code=errs[0].code
    )
    emit(report, as_json=as_json, lines=lines, error=error, exit_code=1)


def _lines(report: Any) -> list[Line]:
    """A line per step: ✓ verified, ✗ failed, · not reached (in-toto stops at the first failure)."""
    out: list[Line] = []
    for s in report.steps:
        code = "" if s.exit_code is None else f", exit {s.exit_code}"
        if not s.signed_by and not s.ok:
            out.append(Line(f"✗ {s.name}: no link from a functionary the layout lists", fg="red"))
            continue
        signed = ", ".join(short(k) for k in s.signed_by)
        body = (
            f"{s.name}: signed by {signed} ({len(s.signed_by)} of {s.threshold} needed){code}, "
            f"{len(s.materials)} material(s), {len(s.products)} product(s)"
        )
        failed = any(f.severity == "error" and f"'{s.name}'" in f.message for f in report.findings)
        if s.ok:
            out.append(Line(f"✓ {body}"))
        elif failed or len(s.signed_by) < s.threshold or (s.exit_code or 0) != 0:
            out.append(Line(f"✗ {body}", fg="red"))
        else:
            out.append(Line(f"· {body}; not checked: verification stopped before it", fg="yellow"))
    for f in report.findings:
        if f.severity != "error":
            out.append(Line(f"{f.severity}: {f.message}", err=True, fg="yellow"))
    return out
