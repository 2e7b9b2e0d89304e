"""The audit log: one JSON line per decision, appended atomically under a lock.

Several services may share one log, so each line is written whole by one
``write`` on a descriptor opened with ``O_APPEND`` while an exclusive
``flock`` is held; a line a crashed writer left unfinished is closed with a
newline first, so a damaged line never swallows the next. The file is never
followed through a link, never read if it is not a regular file (a FIFO
would block), and created ``0600``: it names models, signers and reasons.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import stat
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError

if TYPE_CHECKING:
    from provenance.policy._evaluate import Decision

#: The ``version`` of each line (``schemas/audit-log.schema.json``).
AUDIT_VERSION = 1

#: The largest line written: reasons beyond it are cut, with a count of how many.
MAX_LINE_BYTES = 1 << 20


def audit_record(decision: Decision, *, time: datetime.datetime | None = None) -> dict[str, Any]:
    """The line :func:`append_audit` writes, as data."""
    when = time or datetime.datetime.now(datetime.timezone.utc)
    return {
        "version": AUDIT_VERSION,
        "time": when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model": os.path.abspath(decision.model_path),
        "root_digest": decision.root_digest,
        # Absolute, like the model's: the log outlives the working directory.
        "policy": decision.policy_source
        if decision.policy_source.startswith("<")
        else os.path.abspath(decision.policy_source),
        "policy_digest": decision.policy_digest,
        "mode": decision.mode,
        "decision": "allow" if decision.allowed else "deny",
        "passed": decision.passed,
        "reasons": [r.to_json() for r in decision.reasons],
        "signers": [s.to_json() for s in decision.signers],
    }


def append_audit(
    path: str | os.PathLike[str],
    decision: Decision,
    *,
    time: datetime.datetime | None = None,
) -> None:
    """Append the decision to the audit log at ``path`` (created if missing)."""
    import fcntl

    record = audit_record(decision, time=time)
    line = _encode(record)
    # Read and write: the last byte is read through the same descriptor.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(
                f"audit log '{path}' is a symbolic link; refusing to write through it",
                code="symlink-refused",
            ) from None
        raise InputError(
            f"cannot open audit log '{path}': {e.strerror}", code="unwritable"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                f"audit log '{path}' is not a regular file; refusing to write to it",
                code="special-file",
            )
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close a line a crashed writer left open
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        raise InputError(
            f"cannot append to audit log '{path}': {e.strerror}", code="unwritable"
        ) from None
    finally:
        os.close(fd)


def _encode(record: dict[str, Any]) -> bytes:
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
    if len(line) <= MAX_LINE_BYTES:
        return line
    reasons = record["reasons"]
    kept = list(reasons)
    while kept and len(line) > MAX_LINE_BYTES:
        kept = kept[: len(kept) // 2]
        record = {**record, "reasons": kept, "reasons_omitted": len(reasons) - len(kept)}
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    return line


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
