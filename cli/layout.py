"""``provenance layout``: write and sign the in-toto layout a pipeline is verified against."""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit, warn
from provenance_cli._pipeline import PipelineSignerOptions, short


@click.group("layout")
def layout_group() -> None:
    """Write and sign the layout: which steps, by whom, how their files chain.

    \b
      provenance layout init --functionary prepare-data=alice.pub \\
          --functionary train=bob.pub --functionary evaluate=alice.pub \\
          --functionary package=bob.pub --output root.layout.json
      provenance layout sign root.layout.json --key owner.pem     (writes root.layout)
      provenance verify-pipeline --layout root.layout --layout-key owner.pub --links links
    """


_DURATION = re.compile(r"^\s*(\d+)\s*([dwy])\s*$")


def _expires(value: str | None) -> datetime.datetime | datetime.timedelta | None:
    from provenance.errors import UsageError

    if value is None:
        return None
    m = _DURATION.match(value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return datetime.timedelta(days=n * {"d": 1, "w": 7, "y": 365}[unit])
    try:
        if len(value) == 10:
            day = datetime.date.fromisoformat(value)
            return datetime.datetime.combine(day, datetime.time.max, tzinfo=datetime.timezone.utc)
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    except ValueError:
        raise UsageError(
            f"--expires {value!r} is neither a date (2027-06-30), a time "
            "(2027-06-30T12:00:00Z) nor a validity (90d, 12w, 1y)"
        ) from None


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str | None, str]]:
    from provenance.errors import UsageError
    from provenance.pipeline import DEFAULT_STEPS

    out: list[tuple[str | None, str]] = []
    for v in values:
        step, sep, rest = v.partition("=")
        if sep and (step in DEFAULT_STEPS or what == "threshold"):
            out.append((step, rest))
        elif sep and not os.path.exists(v):
            raise UsageError(
                f"--{what} {v!r}: the starter pipeline has no step {step!r}; its steps are "
                f"{', '.join(DEFAULT_STEPS)}"
            )
        else:
            out.append((None, v))
    return out


@layout_group.command("init")
@handle_errors()
@click.option(
    "--functionary",
    "functionaries",
    multiple=True,
    required=True,
    metavar="[STEP=]PUBLIC.pem",
    help="A public key that may sign STEP's link (repeatable; without STEP=, every step's). "
    "Steps: prepare-data, train, evaluate, package.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="STEP=N",
    help="How many distinct functionaries must sign STEP's link (default 1).",
)
@click.option(
    "--expires",
    metavar="DATE|TIME|90d",
    help="When the layout stops verifying: a date (its end, UTC), an RFC 3339 time, or a "
    "validity from now in days, weeks or years. Default 1y.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=str),
    help="Write the layout to this file (default: print it). Never overwritten without --force.",
)
@click.option("--force", is_flag=True, help="Replace --output if it exists (a regular file).")
@json_option
def init_command(
    functionaries: tuple[str, ...],
    thresholds: tuple[str, ...],
    expires: str | None,
    output: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a starter layout for the usual ML pipeline, unsigned, to edit and sign.

    prepare-data reads raw/ and writes data/; train reads data/ (exactly
    prepare-data's products) and writes model/; evaluate reads model/ and
    data/ and writes eval/; package reads model/ and eval/ and writes
    release/: training's model byte for byte, plus release/README.md.
    Every step's rules end in DISALLOW *, so nothing else may appear. Edit
    the JSON (steps, rules, expected commands) before signing it.
    """
    from provenance import pipeline
    from provenance.errors import UsageError

    keys: dict[str, list[str]] = {s: [] for s in pipeline.DEFAULT_STEPS}
    for step, path in _pairs(functionaries, "functionary"):
        for s in [step] if step else pipeline.DEFAULT_STEPS:
            keys[s].append(path)
    counts: dict[str, int] = {}
    for step, value in _pairs(thresholds, "threshold"):
        if step is None or not value.isdigit():
            raise UsageError(f"--threshold {value!r}: give STEP=N, e.g. train=2")
        counts[step] = int(value)
    layout = pipeline.starter_layout(keys, thresholds=counts, expires=_expires(expires))
    if not as_json:
        for w in pipeline.lint_layout(layout):  # an expiry already past, a threshold too high
            warn(w)
    if output is not None:
        pipeline.write_layout(layout, output, force=force)
    text = json.dumps(layout, indent=2, sort_keys=True, ensure_ascii=False)
    result = {
        "output": output,
        "expires": layout["expires"],
        "steps": [s["name"] for s in layout["steps"]],
        "functionaries": len(layout["keys"]),
        "layout": layout,
    }
    if output is None:
        lines = [Line(text, block=True)]
    else:
        lines = [
            Line(f"Wrote a starter layout to {output} (expires {layout['expires']}).", fg="green"),
            *(
                Line(
                    f"  {s['name']}: {s['threshold']} of {len(s['pubkeys'])} functionary key(s) "
                    f"({', '.join(short(k) for k in s['pubkeys'])})"
                )
                for s in layout["steps"]
            ),
            Line(f"Sign it after editing: provenance layout sign {output} --key OWNER.pem"),
        ]
    emit(result, as_json=as_json, lines=lines)


@layout_group.command("sign")
@handle_errors()
@click.argument("layout", type=click.Path(path_type=str))
@PipelineSignerOptions.options
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=str),
    help="Where to write the signed layout (default: NAME for NAME.json; an envelope "
    "signed already gets this signature added in place).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an output signed by other owners (their signatures are lost).",
)
@json_option
def sign_command(
    layout: str, signer: PipelineSignerOptions, output: str | None, force: bool, as_json: bool
) -> None:
    """Sign LAYOUT with the pipeline owner's key (a DSSE envelope, as in-toto 3 writes it).

    LAYOUT is the plain JSON layout init wrote (or in-toto's own formats):
    a second owner signs the signed file again, and verify-pipeline then
    needs every owner's key.
    """
    from provenance import pipeline

    result = pipeline.sign_layout(layout, signer.build(), output=output, force=force)
    if not as_json:
        for w in result.warnings:
            warn(w)
    assert result.path is not None
    emit(
        result,
        as_json=as_json,
        lines=[
            Line(
                f"Signed {Path(layout)} with key {short(result.keyid)}: {result.path} "
                f"({len(result.signers)} signature(s), expires {result.expires})",
                fg="green",
            )
        ],
    )
