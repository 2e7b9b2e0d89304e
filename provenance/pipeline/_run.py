"""Running one step of a pipeline and recording its signed in-toto link.

The link is in-toto's own: an ``in_toto.models.link.Link`` (name, command,
byproducts with the return value, materials, products) in a DSSE envelope
signed by a securesystemslib signer, written as ``NAME.KEYID8.link`` the way
``in-toto-run`` names it, so ``in-toto-verify`` reads it too. Only the
artifacts come from elsewhere: this project's hashing engine records them
(see :mod:`provenance.pipeline._record`), and in-toto's recorder is handed
empty lists.

Two ways to run the command, because in-toto's runner has one of two costs:

* ``record_streams=True``: in-toto's ``in_toto_run`` runs it, echoes and
  records its standard output and error in the link's byproducts. It polls
  the child without pausing (one core busy for the whole step) and holds the
  output in memory, so it suits short steps.
* the default: the command runs with this process's standard streams (its
  log stays visible, nothing is buffered) and the link records its return
  value with empty ``stdout``/``stderr``, exactly the byproducts
  ``in_toto_run`` writes when it does not record streams. (``in_toto_run``
  itself would send the output to /dev/null, which a training log cannot
  afford.)

A command that fails still gets its link, recording the exit code: the
evidence that the step ran and failed is worth keeping, and the verifier
refuses a chain with a failed step.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import InputError, ProvenanceError, UsageError
from provenance.pipeline._keys import as_signer, keyid_of
from provenance.pipeline._record import record_artifacts

__all__ = ["CommandError", "StepResult", "link_name", "run_step", "signed_envelope"]

#: What a step may be called: it becomes part of a file name (``NAME.KEYID8.link``).
_STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CommandError(ProvenanceError):
    """The step's command could not be run, or did not finish; no link was written.

    ``exit_code`` is what a shell would report: 127 not found, 126 not
    executable, 4 timed out (the CLI's code for a failed command).
    """

    default_code = "command-failed"

    def __init__(self, reason: str, *, code: str, exit_code: int) -> None:
        super().__init__(reason, code=code)
        self.exit_code = exit_code


@dataclass(frozen=True)
class StepResult:
    """One recorded step: what ran, how it ended, what it read and wrote, where the link is."""

    name: str
    command: tuple[str, ...]
    exit_code: int
    materials: dict[str, str]  # in-toto path -> hex sha256
    products: dict[str, str]
    link_path: Path
    keyid: str
    streams_recorded: bool
    material_bytes: int = 0
    product_bytes: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The command exited 0 (the link is written either way)."""
        return self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "step": self.name,
            "argv": list(self.command),
            "exit_code": self.exit_code,
            "link": str(self.link_path),
            "keyid": self.keyid,
            "materials": {"files": len(self.materials), "bytes": self.material_bytes},
            "products": {"files": len(self.products), "bytes": self.product_bytes},
            "streams_recorded": self.streams_recorded,
            "warnings": list(self.warnings),
        }


def check_step_name(name: str) -> None:
    if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
        raise UsageError(
            f"step name {name!r} is not usable: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 128 characters (it names the link file)",
            code="bad-step-name",
        )


def link_name(step: str, keyid: str) -> str:
    """The file a functionary's link for ``step`` is stored as (in-toto's FILENAME_FORMAT)."""
    from in_toto.models.link import FILENAME_FORMAT

    return FILENAME_FORMAT.format(step_name=step, keyid=keyid)


def signed_envelope(signable: Any, signer: Any) -> bytes:
    """in-toto's DSSE envelope over a Link or Layout, signed, checked, as the file's bytes.

    The signature is verified with the signer's public key before anything
    is written: a KMS or HSM that signs with another key than the one given
    would otherwise leave a file no verifier accepts.
    """
    from in_toto.models.metadata import Envelope
    from securesystemslib.exceptions import VerificationError

    envelope = Envelope.from_signable(signable)
    _sign(envelope, signer)
    try:
        envelope.verify([signer.public_key], 1)
    except VerificationError:
        raise InputError(
            f"the signature made with key {keyid_of(signer)[:16]} does not verify with that "
            "key; is the public key given this key's?",
            code="kms-key-mismatch",
        ) from None
    return json.dumps(envelope.to_dict(), sort_keys=True).encode("utf-8")


def _sign(envelope: Any, signer: Any) -> None:
    try:
        envelope.create_signature(signer)
    except ProvenanceError:
        raise
    except Exception as e:  # each securesystemslib backend raises its own types
        raise InputError(
            f"signing with key {keyid_of(signer)[:16]} failed: {e or type(e).__name__}",
            code="signing-failed",
        ) from None


def run_step(
    name: str,
    command: Sequence[str],
    *,
    signer: object,
    materials: Sequence[str | os.PathLike[str]] = (),
    products: Sequence[str | os.PathLike[str]] = (),
    links_dir: str | os.PathLike[str] = ".",
    base_path: str | os.PathLike[str] = ".",
    exclude: Sequence[str] = (),
    allow_symlinks: bool = False,
    record_streams: bool = False,
    timeout: float | None = None,
    output_to_stderr: bool = False,
    workers: int | None = None,
) -> StepResult:
    """Hash ``materials``, run ``command``, hash ``products``, write the signed link.

    ``signer`` is a securesystemslib signer or one of this project's key or
    KMS signers (:func:`provenance.pipeline.key_signer`,
    :func:`provenance.pipeline.kms_signer`). Artifact paths are relative to
    ``base_path`` (the command itself runs in the current folder, as with
    ``in-toto-run``). The link goes to ``links_dir/NAME.KEYID8.link``
    (created if needed; an existing link of that step and key is replaced).

    Returns the result whatever the command's exit code (the link records
    it). Raises :class:`CommandError` when the command cannot start (127,
    126) or runs past ``timeout`` seconds (killed; no link), and
    :class:`~provenance.errors.InputError` for unreadable materials or
    products (a FIFO, a link that is not allowed), before anything is signed.
    """
    from in_toto.models.link import Link

    from provenance._internal.fsutil import safe_output, write_output

    check_step_name(name)
    argv = list(command)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise UsageError("give the step's command: a program and its arguments", code="usage")
    sslib_signer = as_signer(signer)
    keyid = keyid_of(sslib_signer)
    folder = Path(links_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"cannot create the links folder '{folder}': {e.strerror}", code="unreadable"
        ) from None
    link_path = folder / link_name(name, keyid)
    target = safe_output(link_path, None)  # refused now, not after an hour of training

    found = record_artifacts(
        materials,
        base=base_path,
        exclude=exclude,
        allow_symlinks=allow_symlinks,
        what="material",
        workers=workers,
    )
    if record_streams:
        byproducts = _run_in_toto(name, argv, timeout, output_to_stderr)
    else:
        byproducts = _run_plain(argv, timeout, output_to_stderr)
    made = record_artifacts(
        products,
        base=base_path,
        exclude=exclude,
        allow_symlinks=allow_symlinks,
        missing_ok=True,
        what="product",
        workers=workers,
    )
    link = Link(
        name=name,
        materials=found.as_link_dict(),
        products=made.as_link_dict(),
        byproducts=byproducts,
        command=argv,
        environment={},
    )
    write_output(target, signed_envelope(link, sslib_signer))
    code = byproducts["return-value"]
    return StepResult(
        name=name,
        command=tuple(argv),
        exit_code=code if isinstance(code, int) else -1,
        materials=found.artifacts,
        products=made.artifacts,
        link_path=link_path,
        keyid=keyid,
        streams_recorded=record_streams,
        material_bytes=found.total_bytes,
        product_bytes=made.total_bytes,
        warnings=found.warnings + made.warnings,
    )


def _run_plain(argv: list[str], timeout: float | None, to_stderr: bool) -> dict[str, Any]:
    """The command with this process's streams; in-toto's byproducts without streams."""
    stdout: int | None = None
    if to_stderr:
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
            stdout = subprocess.PIPE
    with _started(argv, timeout):
        done = subprocess.run(argv, timeout=timeout, stdout=stdout, check=False)
    if stdout == subprocess.PIPE and done.stdout:
        sys.stderr.write(done.stdout.decode("utf-8", "replace"))
    return {"stdout": "", "stderr": "", "return-value": done.returncode}


def _run_in_toto(
    name: str, argv: list[str], timeout: float | None, to_stderr: bool
) -> dict[str, Any]:
    """in-toto's runner, recording stdout and stderr; only its byproducts are kept."""
    from in_toto.runlib import in_toto_run

    redirect = contextlib.redirect_stdout(sys.stderr) if to_stderr else contextlib.nullcontext()
    with _started(argv, timeout), redirect, _quiet_in_toto():
        metadata = in_toto_run(
            name, [], [], argv, record_streams=True, timeout=timeout, use_dsse=True
        )
    from in_toto.models.link import Link

    link = metadata.get_payload()
    assert isinstance(link, Link)  # in_toto_run makes a link
    return dict(link.byproducts)


@contextlib.contextmanager
def _started(argv: list[str], timeout: float | None) -> Iterator[None]:
    """Starting and timing out, as errors with a shell's exit codes."""
    try:
        yield
    except FileNotFoundError:
        raise CommandError(
            f"command not found: {argv[0]}", code="command-not-found", exit_code=127
        ) from None
    except PermissionError:
        raise CommandError(
            f"command not executable: {argv[0]}", code="not-executable", exit_code=126
        ) from None
    except OSError as e:
        raise CommandError(
            f"cannot run {argv[0]}: {e.strerror or e}", code="not-executable", exit_code=126
        ) from None
    except UnicodeDecodeError:
        raise CommandError(
            f"{argv[0]} wrote output that is not text; in-toto records streams as text, "
            "so run it without recording its streams",
            code="command-output-not-text",
            exit_code=4,
        ) from None
    except subprocess.TimeoutExpired:
        raise CommandError(
            f"{argv[0]} ran longer than {timeout:g} s and was stopped; no link was written",
            code="command-timeout",
            exit_code=4,
        ) from None


@contextlib.contextmanager
def _quiet_in_toto() -> Iterator[None]:
    """in-toto logs to stderr through its own handler; the caller reports instead."""
    import logging

    import in_toto.log  # noqa: F401 (importing it adds the stderr handler this replaces)

    logger = logging.getLogger("in_toto")
    handlers = logger.handlers[:]
    for h in handlers:
        logger.removeHandler(h)
    logger.addHandler(logging.NullHandler())
    try:
        yield
    finally:
        for h in logger.handlers[:]:
            logger.removeHandler(h)
        for h in handlers:
            logger.addHandler(h)
