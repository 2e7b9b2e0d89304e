"""Parsing an attestation's statement, bounded: the one reader every path here uses.

An attestation line is untrusted until a verifier vouches for it, and even
then its JSON is parsed by Python into objects many times its size. So a
statement is parsed only after two cheap checks counted in C:

* at most :data:`MAX_STATEMENT_VALUES` JSON values (opening brackets plus
  commas bound the number of values and keys; brackets and commas inside
  strings count too, which only makes the bound stricter);
* within one file, at most :data:`MAX_FILE_VALUES` values over all its
  statements (:class:`Budget`), so a file of many lines costs no more than
  one large line.

``NaN``, ``Infinity`` and numbers too large for a double (``1e999``) are
refused: they are not JSON, and a metric of ``NaN`` compares false with
every threshold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from provenance.errors import InputError
from provenance.intoto import Statement

__all__ = ["MAX_FILE_VALUES", "MAX_STATEMENT_VALUES", "Budget", "non_finite", "parse_statement"]

#: JSON values one statement may hold (a training run with a large config has
#: a few thousand; 100,000 leaves room and bounds the objects Python builds).
MAX_STATEMENT_VALUES = 100_000
#: JSON values all statements of one attestations file may hold together
#: (an evaluation has about 30, a training run a few hundred).
MAX_FILE_VALUES = 200_000

_CODE = "statement-invalid"


class _NotJson(ValueError):
    """A constant or number that JSON does not have."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(text)
    return value


def values_in(data: bytes) -> int:
    """An upper bound on the JSON values (and keys) ``data`` holds, counted in C."""
    return data.count(b"[") + data.count(b"{") + data.count(b",") + 1


class Budget:
    """How many JSON values the statements of one file may still hold."""

    def __init__(self, total: int = MAX_FILE_VALUES) -> None:
        self.left = total
        self.total = total

    def take(self, n: int) -> None:
        if n > self.left:
            self.left = 0
            raise InputError(
                f"not read: the statements of this file hold more than {self.total:,} "
                "JSON values together",
                code="attestations-too-complex",
            )
        self.left -= n


def parse_statement(payload: bytes, budget: Budget | None = None) -> Statement:
    """The in-toto statement in ``payload``: bounded, strict JSON, else :class:`InputError`."""
    n = values_in(payload)
    if n > MAX_STATEMENT_VALUES:
        raise InputError(
            f"statement holds more than {MAX_STATEMENT_VALUES:,} JSON values; "
            "it is not an attestation",
            code="statement-too-complex",
        )
    if budget is not None:
        budget.take(n)
    try:
        obj = json.loads(payload, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotJson as e:
        raise InputError(f"statement holds {e}, which is not a JSON number", code=_CODE) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers json.JSONDecodeError and integers too long to read.
        raise InputError("statement is not valid JSON", code=_CODE) from None
    return Statement.from_json(obj)


def non_finite(value: object, where: str = "predicate") -> str | None:
    """Where ``value`` holds NaN or an infinity (or a value JSON cannot hold), or None."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return at
        elif isinstance(item, Mapping):
            for k, v in item.items():
                if not isinstance(k, str):
                    return f"{at} (a key that is not a string)"
                stack.append((v, f"{at}.{k}"))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
        elif item is not None and not isinstance(item, (str, int)):
            return f"{at} (a {type(item).__name__}, not JSON)"
    return None
