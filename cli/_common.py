"""What every command shares: exit codes, error rendering, options, progress."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError

EXIT_OK = 0
EXIT_FAILED = 1  # verification failed or policy denied
EXIT_USAGE = 2
EXIT_INPUT = 3  # missing, malformed or unreadable input

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def fail(error: ProvenanceError | str, code: int, as_json: bool) -> None:
    """Report a failure in one line (or one JSON object) and exit."""
    reason = str(error)
    details = getattr(error, "details", [])
    if as_json:
        out: dict[str, Any] = {"ok": False, "error": reason}
        if details:
            out["details"] = details
        emit_json(out)
    else:
        prefix = "verification failed" if code == EXIT_FAILED else "error"
        click.secho(f"{prefix}: {reason}", fg="red", err=True)
        for d in details[1:21]:
            click.echo(f"  also: {d}", err=True)
        if len(details) > 21:
            click.echo(f"  ... and {len(details) - 21} more", err=True)
    sys.exit(code)


def handle_errors(*, failure_code: int = EXIT_INPUT) -> Callable[[F], F]:
    """Map library errors to exit codes; never show a traceback.

    ``failure_code`` is what an *unexpected* exception becomes: for verify it
    is 1, because an error while verifying must deny, never pass (fail closed).
    Set PROVENANCE_DEBUG=1 to see the traceback instead.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            as_json = bool(kwargs.get("as_json"))
            try:
                return fn(*args, **kwargs)
            except VerificationError as e:
                fail(e, EXIT_FAILED, as_json)
            except UsageError as e:
                fail(e, EXIT_USAGE, as_json)
            except InputError as e:
                fail(e, EXIT_INPUT, as_json)
            except ProvenanceError as e:
                fail(e, failure_code, as_json)
            except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
                raise
            except KeyboardInterrupt:
                fail("interrupted", 130, as_json)
            except Exception as e:
                if os.environ.get("PROVENANCE_DEBUG"):
                    raise
                fail(f"unexpected {type(e).__name__}: {e}", failure_code, as_json)

        return inner  # type: ignore[return-value]

    return wrap


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout, for CI."
)

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(_ctx: Any, _param: Any, value: str | None) -> int | None:
    """``1000000``, ``1GB`` (10^9), ``512MiB`` (2^29)."""
    if value is None:
        return None
    m = _SIZE.match(value)
    if not m:
        raise click.BadParameter(f"{value!r} is not a size like 1GB, 512MiB or 1048576")
    n, unit = int(m.group(1)), (m.group(2) or "").lower()
    if "i" in unit:
        mult = 1 << (10 * "kmgt".index(unit[0]) + 10)
    else:
        mult = _UNITS[unit.rstrip("b")] if unit != "b" else 1
    size = n * mult
    if size <= 0:
        raise click.BadParameter("shard size must be positive")
    return size


def hashing_options(fn: F) -> F:
    """``--hash``, ``--method``, ``--shard-size``, ``--ignore``, ``--allow-symlinks``."""
    options = [
        click.option(
            "--hash",
            "algorithm",
            type=click.Choice(["sha256", "sha384", "sha512", "blake2b", "blake3"]),
            default="sha256",
            show_default=True,
            help="Digest algorithm for every file or shard.",
        ),
        click.option(
            "--method",
            type=click.Choice(["files", "shards"]),
            default=None,
            help="One digest per file, or per fixed-size byte range "
            "(default: files; shards when --shard-size is given).",
        ),
        click.option(
            "--shard-size",
            callback=parse_size,
            default=None,
            metavar="SIZE",
            help="Shard size for --method shards, e.g. 1GB (the default) or 256MiB.",
        ),
        click.option(
            "--ignore",
            "ignore_paths",
            multiple=True,
            metavar="PATH",
            help="A file or folder, relative to the model, to leave out (repeatable). "
            ".git*, model.sig and model.intoto.jsonl are always left out.",
        ),
        click.option(
            "--allow-symlinks",
            is_flag=True,
            help="Follow symbolic links that stay inside the model (refused by default).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def hashing_kwargs(algorithm: str, method: str | None, shard_size: int | None) -> dict[str, Any]:
    if method == "files" and shard_size is not None:
        raise UsageError("--shard-size only applies to --method shards")
    return {
        "algorithm": algorithm,
        "method": method or ("shards" if shard_size else "files"),
        "shard_size": shard_size,
    }


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal and the work is large."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    state: dict[str, Any] = {"bar": None, "shown": 0}

    def update(done: int, total: int) -> None:
        if state["bar"] is None:
            if total < (256 << 20):
                return
            state["bar"] = click.progressbar(
                length=total, label=label, file=sys.stderr, show_pos=False, show_percent=True
            )
            state["bar"].__enter__()
        state["bar"].update(done - state["shown"])
        state["shown"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
