"""Entry point: a Click group that imports each command only when it runs.

``provenance --version`` and ``--help`` therefore load neither cryptography
nor the Sigstore stack. The group also renders Click's own usage errors (a
bad option value, a missing argument, an unknown option) as the output
contract's error object when ``--json`` was asked for, so a CI step parses
every failure the same way.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from provenance._version import __version__

# command name -> (module in provenance_cli, attribute, one-line help)
_COMMANDS = {
    "hash": ("hash", "hash_command", "Print a model's root digest (or its manifest)."),
    "sign": ("sign", "sign_command", "Hash a model and write its signature."),
    "verify": ("verify", "verify_command", "Check a model against its signature."),
    "inspect": ("inspect", "inspect_command", "Describe a signature and attestations."),
    "attest": ("attest", "attest_group", "Sign statements on datasets, training, evaluation."),
    "lineage": (
        "lineage",
        "lineage_command",
        "Show a model's lineage: tree, dot, mermaid or json.",
    ),
    "key": ("key", "key_group", "Make a signing key; print a key's fingerprint."),
    "policy": ("policy", "policy_group", "Write, check and explain policies."),
    "scan": ("scan", "scan_command", "Check every file's format: no pickle code, sane headers."),
    "exec": ("exec", "exec_command", "Verify a model, then run a command on what was verified."),
    "hub": ("hub", "hub_group", "Sign, publish and verify models on the Hugging Face Hub."),
    "run": ("run", "run_command", "Run one pipeline step and record its signed in-toto link."),
    "layout": ("layout", "layout_group", "Write and sign a pipeline's in-toto layout."),
    "verify-pipeline": (
        "verify_pipeline",
        "verify_pipeline_command",
        "Verify a pipeline's links against its signed layout (in-toto).",
    ),
}


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the options (before a ``--`` that ends them)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _command_of(args: list[str]) -> str:
    """The command the arguments name (``attest training``), for an error's ``command``."""
    words = [a for a in args if not a.startswith("-")][:2]
    if not words or words[0] not in _COMMANDS:
        return "provenance"
    if words[0] in ("attest", "layout") and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


class _LazyGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["provenance.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a Click usage error under ``--json`` becomes the error object."""
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            args: list[str] = ctx.meta.get("provenance.args", [])
            if not _wants_json(args):
                raise
            from provenance.errors import UsageError
            from provenance_cli._output import HELP_HINT, emit_error

            command = _command_of(args)
            hint = HELP_HINT if command != "provenance" else None
            error = UsageError(e.format_message(), code="usage", hint=hint)
            code = e.exit_code if e.exit_code in (1, 2, 3) else 2
            if command == "exec":  # stdout is the command's: the error goes to stderr
                from provenance_cli.exec import report_error

                report_error(error, code, as_json=True)
            emit_error(error, code, as_json=True, command=command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"provenance_cli.{entry[0]}")
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry[2]) for name, entry in _COMMANDS.items()])


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="provenance")
def cli() -> None:
    """Hash, sign, attest and verify machine-learning models.

    Signatures are Sigstore bundles in the OpenSSF Model Signing format, so
    `model-signing` verifies what provenance signs and the other way round.
    Attestations (datasets, training runs, evaluations) are signed in-toto
    statements about the model's root digest, kept in model.intoto.jsonl.

    \b
    Typical use:
      provenance sign my-model --key signing-key.pem       (or --sigstore)
      provenance attest training my-model --key signing-key.pem --dataset data/
      provenance verify my-model --key signing-key.pub --attestations
      provenance inspect my-model
      provenance policy init --key signing-key.pub --output policy.yaml
      provenance verify my-model --policy policy.yaml

    Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 bad input.
    """


def main(argv: Any = None) -> None:
    cli.main(args=argv, prog_name="provenance")


if __name__ == "__main__":
    main()
