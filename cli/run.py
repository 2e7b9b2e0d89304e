"""``provenance run``: run one step of a pipeline and record its signed in-toto link."""

from __future__ import annotations

import shlex
from typing import Any

import click

from provenance_cli._common import handle_errors, json_option
from provenance_cli._output import Line, emit, warn
from provenance_cli._pipeline import PipelineSignerOptions, short

#: The step's command ran and failed (its link, recording the exit code, is written).
EXIT_COMMAND_FAILED = 4

_GREEDY = {"--materials", "-m", "--products", "-p"}


class _RunCommand(click.Command):
    """``--materials a b c`` as in-toto-run takes it, and the command only after ``--``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("-h", "--help") for a in args[: _end(args)]):
            return super().parse_args(ctx, args)
        end = _end(args)
        if end == len(args):
            raise click.UsageError(
                "give the step's command after --: provenance run --step NAME ... -- COMMAND",
                ctx,
            )
        out: list[str] = []
        option: str | None = None
        for arg in args[:end]:
            if arg.startswith("-"):
                option = arg if arg in _GREEDY else None
                out.append(arg)
            elif option is not None and out[-1] != option:
                out.extend((option, arg))  # one more value of the same option
            else:
                out.append(arg)
        after = args[end + 1 :]
        ctx.meta["provenance.run.command"] = after
        return super().parse_args(ctx, [*out, "--", *after])


def _end(args: list[str]) -> int:
    return args.index("--") if "--" in args else len(args)


@click.command("run", cls=_RunCommand)
@handle_errors()
@click.option("--step", "-n", "step", required=True, metavar="NAME", help="The step's name.")
@click.option(
    "--materials",
    "-m",
    multiple=True,
    metavar="PATH...",
    help="Files or folders the step reads, hashed before it runs (one or more).",
)
@click.option(
    "--products",
    "-p",
    multiple=True,
    metavar="PATH...",
    help="Files or folders the step writes, hashed after it ran (one or more).",
)
@PipelineSignerOptions.options
@click.option(
    "--links",
    "links_dir",
    default=".",
    show_default=True,
    metavar="DIR",
    help="Folder for the link (created if needed): DIR/STEP.KEYID8.link.",
)
@click.option(
    "--base-path",
    default=".",
    show_default=True,
    metavar="DIR",
    help="Artifact paths are relative to DIR, and recorded so. The command itself runs in "
    "the current folder (as with in-toto-run), and --key and --links are relative to it too.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave matching files out of materials and products (repeatable). Always left "
    "out: .git, __pycache__, *.pyc, .DS_Store, .ipynb_checkpoints, *.link, and this "
    "tool's own model.sig, model.sig.d and model.intoto.jsonl (signing a product later "
    "must not change what the step recorded).",
)
@click.option(
    "--allow-symlinks",
    is_flag=True,
    help="Follow symbolic links that stay inside the base folder (refused by default).",
)
@click.option(
    "--record-streams",
    is_flag=True,
    help="Record the command's stdout and stderr in the link (in-toto's runner: it keeps "
    "them in memory and keeps one core busy while the command runs; for short steps).",
)
@click.option("--timeout", type=float, metavar="SECONDS", help="Stop the command after this long.")
@json_option
@click.argument("command", nargs=-1, required=True)
def run_command(
    step: str,
    materials: tuple[str, ...],
    products: tuple[str, ...],
    signer: PipelineSignerOptions,
    links_dir: str,
    base_path: str,
    exclude: tuple[str, ...],
    allow_symlinks: bool,
    record_streams: bool,
    timeout: float | None,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as step NAME of a pipeline and write its signed in-toto link.

    The materials are hashed, the command runs, the products are hashed,
    and the link (the command, its exit code, every material and product
    with its sha256) is signed and written as DIR/NAME.KEYID8.link, the way
    in-toto-run writes it; provenance verify-pipeline and in-toto-verify
    check it against the layout.

    \b
    Example:
      provenance run --step train --key bob.pem --links links \\
          --materials data --products model -- python train.py

    Exit codes: 0 the command succeeded; 4 it failed (the link is written
    and records its exit code, which verify-pipeline refuses) or ran past
    --timeout (stopped, no link); 2 usage error; 3 bad input (a material
    that is missing, a FIFO, a link not allowed); 126 the command cannot be
    run, 127 it was not found (no link for those). With --json, the
    command's stdout goes to stderr, so that stdout holds the one JSON
    object.
    """
    from provenance import pipeline
    from provenance.errors import ProvenanceError, UsageError

    ctx = click.get_current_context()
    given = ctx.meta.get("provenance.run.command", list(command))
    if list(command) != list(given):
        stray = list(command)[: len(command) - len(given)]
        raise UsageError(f"unexpected argument {stray[0]!r} before --", code="usage")
    result = pipeline.run_step(
        step,
        list(command),
        signer=signer.build(),
        materials=materials,
        products=products,
        links_dir=links_dir,
        base_path=base_path,
        exclude=exclude,
        allow_symlinks=allow_symlinks,
        record_streams=record_streams,
        timeout=timeout,
        output_to_stderr=as_json,
    )
    if not as_json:
        for w in result.warnings:
            warn(w)
    lines = _lines(result)
    if result.ok:
        emit(result, as_json=as_json, lines=lines)
        return
    error = ProvenanceError(
        f"step '{step}': the command exited with {result.exit_code}; the link records it "
        f"({result.link_path})",
        code="command-failed",
    )
    emit(result, as_json=as_json, lines=lines, error=error, exit_code=EXIT_COMMAND_FAILED)


def _lines(result: Any) -> list[Line]:
    ok = result.ok
    return [
        Line(
            f"Recorded step '{result.name}': {result.link_path} (key {short(result.keyid)})",
            fg="green" if ok else None,
        ),
        Line(f"  command: {shlex.join(result.command)} -> exit {result.exit_code}"),
        Line(
            f"  materials: {len(result.materials)} file(s), {result.material_bytes} bytes; "
            f"products: {len(result.products)} file(s), {result.product_bytes} bytes"
        ),
    ]
