"""Entry point: a Click group that imports each command only when it runs.

``provenance --version`` and ``--help`` therefore load neither cryptography
nor the Sigstore stack.
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
    "lineage": ("lineage", "lineage_command", "Write a model's lineage graph (dot, mermaid)."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"provenance_cli.{entry[0]}")
        return getattr(module, entry[1])

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

    Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 bad input.
    """


def main(argv: Any = None) -> None:
    cli.main(args=argv, prog_name="provenance")


if __name__ == "__main__":
    main()
