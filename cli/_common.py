"""What every command shares: exit codes, error handling, option groups, progress.

Option groups parse into frozen dataclasses (:class:`HashingOptions` here,
``SignerOptions`` and ``TrustOptions`` beside their commands) so a command
receives one typed object per group instead of a dozen loose keyword
arguments popped in order. Output goes through :mod:`provenance_cli._output`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.hashing import ALGORITHMS
from provenance_cli._output import emit_error, write_json

EXIT_OK = 0
EXIT_FAILED = 1  # verification failed or policy denied
EXIT_USAGE = 2
EXIT_INPUT = 3  # missing, malformed or unreadable input
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def emit_json(data: Mapping[str, Any]) -> None:
    """Print ``data`` as it is (no contract head), safe against a closed stdout.

    Kept for commands not yet on :func:`provenance_cli._output.emit`; new
    code calls ``emit`` so the object carries ``version``/``command``/``ok``.
    """
    write_json(data)


def handle_errors(
    *,
    failure_code: int = EXIT_INPUT,
    report: Callable[..., NoReturn] | None = None,
) -> Callable[[F], F]:
    """Map library errors to exit codes; never show a traceback.

    ``failure_code`` is what an *unexpected* exception becomes: for verify it
    is 1, because an error while verifying must deny, never pass (fail closed).
    Set PROVENANCE_DEBUG=1 to see the traceback instead. ``report`` replaces
    how an error is written (``emit_error``'s signature; ``exec`` keeps stdout
    for its command). An error carrying its own ``exit_code`` exits with it.
    """
    write = report or emit_error

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            as_json = bool(kwargs.get("as_json"))
            try:
                return fn(*args, **kwargs)
            except ProvenanceError as e:
                write(e, _exit_code(e, failure_code), as_json=as_json)
            except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
                raise
            except KeyboardInterrupt:
                write(
                    ProvenanceError("interrupted", code="interrupted"),
                    EXIT_INTERRUPTED,
                    as_json=as_json,
                )
            except Exception as e:
                import os

                if os.environ.get("PROVENANCE_DEBUG"):
                    raise
                error = ProvenanceError(f"unexpected {type(e).__name__}: {e}", code="unexpected")
                write(error, failure_code, as_json=as_json)

        return inner  # type: ignore[return-value]

    return wrap


def _exit_code(e: ProvenanceError, other: int) -> int:
    """The exit code of a library error: its own, else by its kind, else ``other``."""
    own = getattr(e, "exit_code", None)
    if isinstance(own, int):
        return own
    if isinstance(e, VerificationError):
        return EXIT_FAILED
    if isinstance(e, UsageError):
        return EXIT_USAGE
    if isinstance(e, InputError):
        return EXIT_INPUT
    return other


# ---------------------------------------------------------------- option groups


@dataclass(frozen=True)
class OptionSpec:
    """One option of a group: the dataclass field it fills and how Click declares it.

    ``legacy`` is the keyword the option had before groups existed, for the
    loose-keyword decorators kept until every command uses the group.
    """

    field: str
    decls: tuple[str, ...]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    legacy: str | None = None

    def option(self, dest: str | None = None) -> Callable[[F], F]:
        return click.option(*self.decls, dest or self.field, **self.attrs)


def add_options(specs: Sequence[OptionSpec], *, legacy: bool = False) -> Callable[[F], F]:
    """Add the options as loose keyword arguments (their legacy names if asked)."""

    def decorate(fn: F) -> F:
        for spec in reversed(specs):
            fn = spec.option(spec.legacy if legacy else None)(fn)
        return fn

    return decorate


def option_group(cls: type[T], specs: Sequence[OptionSpec], into: str) -> Callable[[F], F]:
    """Add the options and hand the command one frozen ``cls`` as keyword ``into``.

    Building the dataclass validates nothing, so it cannot fail outside the
    command's error handling; checks live in the group's methods, which the
    command calls.
    """
    names = [s.field for s in specs]
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    assert set(names) == known, f"{cls.__name__}: options {names} vs fields {known}"

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            kwargs[into] = cls(**{n: kwargs.pop(n) for n in names})
            return fn(*args, **kwargs)

        return add_options(specs)(inner)  # type: ignore[return-value]

    return decorate


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


_HASHING_SPECS = (
    OptionSpec(
        "algorithm",
        ("--hash",),
        {
            "type": click.Choice(ALGORITHMS),
            "default": "sha256",
            "show_default": True,
            "help": "Digest algorithm for every file or shard.",
        },
    ),
    OptionSpec(
        "method",
        ("--method",),
        {
            "type": click.Choice(["files", "shards"]),
            "default": None,
            "help": "One digest per file, or per fixed-size byte range "
            "(default: files; shards when --shard-size is given).",
        },
    ),
    OptionSpec(
        "shard_size",
        ("--shard-size",),
        {
            "callback": parse_size,
            "default": None,
            "metavar": "SIZE",
            "help": "Shard size for --method shards, e.g. 1GB (the default) or 256MiB.",
        },
    ),
    OptionSpec(
        "ignore_paths",
        ("--ignore",),
        {
            "multiple": True,
            "metavar": "PATH|GLOB",
            "help": "A file or folder relative to the model, or a glob ('*.log', "
            "'logs/**/*.txt'), to leave out (repeatable; warns if it matches nothing). "
            "Always left out: model.sig, its co-signatures in model.sig.d/, model.intoto.jsonl, "
            "and at any depth "
            ".git, .github, .gitattributes, .gitignore, .gitmodules, .gitkeep, "
            "__pycache__, *.pyc, .DS_Store and .ipynb_checkpoints.",
        },
    ),
    OptionSpec(
        "allow_symlinks",
        ("--allow-symlinks",),
        {
            "is_flag": True,
            "help": "Follow symbolic links that stay inside the model (refused by default).",
        },
    ),
)


@dataclass(frozen=True)
class HashingOptions:
    """How to hash a model: ``--hash``, ``--method``, ``--shard-size``, ``--ignore``,
    ``--allow-symlinks``, as given (nothing resolved or checked yet)."""

    algorithm: str = "sha256"
    method: str | None = None
    shard_size: int | None = None
    ignore_paths: tuple[str, ...] = ()
    allow_symlinks: bool = False

    @classmethod
    def options(cls, fn: F) -> F:
        """Decorator: add the options; the command gets ``hashing: HashingOptions``."""
        return option_group(cls, _HASHING_SPECS, "hashing")(fn)

    def resolved_method(self) -> str:
        """``files`` unless shards were asked for; a ``--shard-size`` alone means shards.

        Raises :class:`UsageError` for ``--method files`` with a shard size,
        which would otherwise be silently dropped.
        """
        if self.method == "files" and self.shard_size is not None:
            raise UsageError("--shard-size only applies to --method shards")
        return self.method or ("shards" if self.shard_size else "files")


def hashing_options(fn: F) -> F:
    """Compatibility: the hashing options as loose keywords (``algorithm``, ``method``,
    ``shard_size``, ``ignore_paths``, ``allow_symlinks``).

    New code uses :meth:`HashingOptions.options`, which hands the command
    one ``hashing: HashingOptions``.
    """
    return add_options(_HASHING_SPECS, legacy=True)(fn)


def hashing_kwargs(algorithm: str, method: str | None, shard_size: int | None) -> dict[str, Any]:
    """Compatibility: ``algorithm``/``method``/``shard_size`` for the library.

    New code uses ``HashingOptions(...).resolved_method()``.
    """
    options = HashingOptions(algorithm, method, shard_size)
    return {
        "algorithm": algorithm,
        "method": options.resolved_method(),
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
            bar = click.progressbar(
                length=total, label=label, file=sys.stderr, show_pos=False, show_percent=True
            )
            bar.__enter__()
            state["bar"] = bar
        state["bar"].update(done - state["shown"])
        state["shown"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
