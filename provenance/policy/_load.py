"""Loading a policy: parse, check against the schema, resolve what it names, build the model.

A policy decides whether a model may load, so a mistake in one must show when
it is written, not months later when a model is refused (or, worse, allowed).
Hence:

* Every problem is reported at once, each naming its place in the file
  (``signers[1].sigstore``) and its line, as a :class:`PolicyError` (a usage
  error, exit code 2), never as a traceback.
* Unknown keys are errors: a typo in ``identity`` must not silently drop a
  constraint. So are duplicate keys (YAML would keep the last one) and YAML
  aliases (a policy has no use for them, and they are how a small file
  expands into a huge one).
* Everything the evaluator needs is resolved here, once: key and certificate
  files read and parsed, type aliases turned into URIs, dates into UTC
  moments, sizes into bytes, nested policies and revocation lists loaded. The
  evaluator reads only :mod:`provenance.policy._model`.

Files are read through :func:`provenance._internal.fsutil.read_limited`:
never a FIFO or device, never more than a bound.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from provenance._internal import schemacheck
from provenance._internal.fsutil import read_limited
from provenance._internal.timefmt import parse_time
from provenance._internal.uris import (
    DATASET_PREDICATE_TYPE,
    EVALUATION_PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
)
from provenance.errors import InputError, UsageError
from provenance.policy._describe import signer_text
from provenance.policy._model import (
    AttestationRule,
    CertificateSigner,
    FileRules,
    FingerprintSigner,
    FormatRules,
    GitHubClaims,
    InputRules,
    KeySigner,
    LineageRules,
    LoadingRules,
    Match,
    Mode,
    PipelineRule,
    Policy,
    Revocation,
    SignerRule,
    SigstoreSigner,
    SigstoreTrust,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["PolicyError", "load", "loads"]

#: The largest policy file (and nested policy, and revocation list) read.
MAX_POLICY_BYTES = 1 << 20
#: The largest key or certificate file a policy names.
MAX_PEM_BYTES = 1 << 20
#: The largest trusted_root.json / trust config (as the Sigstore verifier reads them).
MAX_TRUST_BYTES = 16 << 20
#: YAML nodes in one file: far more than any policy holds, far fewer than a bomb.
MAX_NODES = 100_000
#: Policies nested in policies (lineage.*.policy), counting from the top one.
MAX_NESTING = 8
#: Collections inside collections in one file (keeps the parsers off the recursion limit).
_MAX_DEPTH = 100
#: Problems listed in one error; more are counted.
_MAX_PROBLEMS = 100

SCHEMA_ID = "https://ml-provenance.dev/schemas/policy.schema.json"

_ALIASES = {
    "training": SLSA_PREDICATE_TYPE,
    "slsa": SLSA_PREDICATE_TYPE,
    "dataset": DATASET_PREDICATE_TYPE,
    "evaluation": EVALUATION_PREDICATE_TYPE,
}

_EKU = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "timeStamping": "1.3.6.1.5.5.7.3.8",
}

_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
}
_SIZE = re.compile(r"^ *([0-9]+(?:\.[0-9]+)?) *([KMGT]i?B|B) *$")

#: Marks what follows in the digest input: a valid policy never holds a NUL.
_DIGEST_DOMAIN = b"provenance-policy-v1\x00"


class PolicyError(UsageError):
    """A policy that cannot be used, with every problem found in it.

    Each problem names the file, the line when known and the place in the
    file (``policy.yaml line 7: signers[1].sigstore: unknown key 'identiy'
    (did you mean 'identity'?)``); ``details`` holds them all, the reason is
    the first. A usage error (exit code 2): the policy, as written, makes no
    sense. A policy file that cannot be read at all is an
    :class:`~provenance.errors.InputError` instead (exit code 3).
    """

    default_code = "policy-invalid"


def _error(problems: list[str]) -> PolicyError:
    shown = problems[:_MAX_PROBLEMS]
    if len(problems) > _MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - _MAX_PROBLEMS} more problems")
    return PolicyError(shown[0], shown)


# ---------------------------------------------------------------- places in a file

JsonPath = tuple[str | int, ...]


def where_of(path: Iterable[str | int]) -> str:
    """A path in a document as people read it: ``signers[1].sigstore``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class _Source:
    """One file being read: how messages name it, where its relative paths start, its lines."""

    label: str
    base: Path
    lines: Mapping[JsonPath, int]

    def line(self, path: JsonPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor with one (JSON has none)."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return line
        return None

    def message(self, path: JsonPath, text: str, line: int | None = None) -> str:
        line = line if line is not None else self.line(path)
        at = f"{self.label} line {line}" if line else self.label
        where = where_of(path)
        return f"{at}: {where}: {text}" if where else f"{at}: {text}"


# ---------------------------------------------------------------- parsing


class _Refused(Exception):
    """Parsing stopped at ``line`` (None: unknown) for the reason ``text``."""

    def __init__(self, line: int | None, text: str) -> None:
        super().__init__(text)
        self.line = line
        self.text = text


class _Loader(yaml.SafeLoader):
    """Safe YAML composition that refuses aliases and bounds node count and depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            alias: yaml.AliasEvent = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(
                _mark_line(alias.start_mark),
                f"YAML aliases (*{alias.anchor}) are not allowed in a policy; "
                "write the value out where it is needed",
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(None, f"more than {MAX_NODES:,} YAML nodes; this is not a policy")
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _Refused(
                    _mark_line(event.start_mark), f"nested more than {_MAX_DEPTH} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mark_line(mark: Any) -> int | None:
    """A YAML mark's line, counted from 1 (marks count from 0)."""
    return int(mark.line) + 1 if mark is not None else None


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN = (str, int, float, bool, type(None), datetime.date)


@dataclass
class _Doc:
    """A parsed file: plain values, the line of every node, problems found while building."""

    value: Any
    lines: dict[JsonPath, int]
    problems: list[tuple[JsonPath, str, int | None]]


def _from_yaml(loader: _Loader, node: yaml.Node, path: JsonPath, doc: _Doc) -> Any:
    line = _mark_line(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise _Refused(line, f"the YAML tag {node.tag} is not allowed in a policy")
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            kline = _mark_line(knode.start_mark)
            if knode.tag == _MERGE_TAG:
                raise _Refused(kline, "YAML merge keys (<<) are not allowed in a policy")
            if not isinstance(knode, yaml.ScalarNode):
                doc.problems.append((path, "a key may not be a list or a mapping", kline))
                continue
            key = _from_yaml(loader, knode, path, doc)
            if not isinstance(key, str):
                read = f"{type(key).__name__} {json.dumps(key, default=str)}"
                doc.problems.append(
                    (path, f"the key {knode.value!r} reads as {read}; quote it", kline)
                )
                continue
            if key in out:
                first = doc.lines.get((*path, key))
                doc.problems.append((path, f"duplicate key '{key}' (first on line {first})", kline))
                continue
            at = (*path, key)
            doc.lines[at] = kline or 0
            out[key] = _from_yaml(loader, vnode, at, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise _Refused(line, f"the YAML tag {node.tag} is not allowed in a policy")
        items: list[Any] = []
        for i, item in enumerate(node.value):
            at = (*path, i)
            doc.lines[at] = _mark_line(item.start_mark) or 0
            items.append(_from_yaml(loader, item, at, doc))
        return items
    try:
        value = loader.construct_object(node)
    except ValueError:  # 2027-02-30 looks like a date and is none: the checks say so
        value = str(node.value)
    if not isinstance(value, _PLAIN):
        raise _Refused(line, f"a {type(value).__name__} value (YAML tag {node.tag}) is not allowed")
    return value


def _parse_yaml(text: str) -> _Doc:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        doc = _Doc(None, {(): 1}, [])
        if root is not None:
            doc.lines[()] = _mark_line(root.start_mark) or 1
            doc.value = _from_yaml(loader, root, (), doc)
        return doc
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = ": ".join(part for part in (e.context, e.problem) if part) or "malformed YAML"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        hint = ""
        if e.context in ("while scanning an alias", "while scanning an anchor"):
            # `allow_unsigned: [*.md]`: YAML reads * and & at the start as an alias
            hint = "; a value that starts with * or & must be quoted, as in '*.md'"
        raise _Refused(_mark_line(mark), f"YAML syntax error: {what}{column}{hint}") from None
    except yaml.YAMLError as e:
        raise _Refused(None, f"YAML error: {e}") from None
    finally:
        loader.dispose()


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as read, before duplicate keys are looked for."""


def _from_json(value: Any, path: JsonPath, doc: _Doc, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise _Refused(None, f"nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, _Pairs):
        out: dict[str, Any] = {}
        for key, item in value:
            if key in out:
                doc.problems.append((path, f"duplicate key '{key}'", None))
                continue
            out[key] = _from_json(item, (*path, key), doc, depth + 1)
        return out
    if isinstance(value, list):
        return [_from_json(item, (*path, i), doc, depth + 1) for i, item in enumerate(value)]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(text: str) -> _Doc:
    try:
        raw = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise _Refused(e.lineno, f"JSON syntax error: {e.msg} (column {e.colno})") from None
    except ValueError as e:
        raise _Refused(None, f"JSON error: {e}") from None
    except RecursionError:
        raise _Refused(None, "nested too deeply") from None
    doc = _Doc(None, {}, [])
    doc.value = _from_json(raw, (), doc)
    return doc


def _is_json(label: str, text: str) -> bool:
    """The spec's rule: a ``.json`` name, or text that starts with ``{``."""
    return label.lower().endswith(".json") or text.lstrip().startswith("{")


def _parse(data: bytes, label: str) -> tuple[Any, _Source]:
    """Bytes to plain values (dates as strings) and their lines; PolicyError if unreadable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _error([f"{label} line {line}: not UTF-8 text"]) from None
    try:
        doc = _parse_json(text) if _is_json(label, text) else _parse_yaml(text)
    except _Refused as e:
        src = _Source(label, Path("."), {})
        raise _error([src.message((), e.text, e.line)]) from None
    src = _Source(label, Path("."), doc.lines)
    if doc.problems:
        raise _error([src.message(p, text, line) for p, text, line in doc.problems])
    return _plain(doc.value), src


def _plain(value: Any) -> Any:
    """YAML dates and times as the strings JSON would hold (the schema checks strings)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- the schema


@functools.cache
def _schema() -> dict[str, Any]:
    """``schemas/policy.schema.json``, as installed (``provenance._schemas``), like predicates."""
    from provenance._internal.schemafiles import read

    schema: dict[str, Any] = json.loads(read("policy.schema.json"))
    return schema


@functools.cache
def _validator(definition: str | None = None) -> Validator:
    """The policy's validator, or one for a definition in it (``revocation_list``)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema = _schema()
    if definition is None:
        return Draft202012Validator(schema)
    registry: Registry[Any] = Registry().with_resource(SCHEMA_ID, Resource.from_contents(schema))
    return Draft202012Validator({"$ref": f"{SCHEMA_ID}#/$defs/{definition}"}, registry=registry)


@dataclass(frozen=True)
class _Issue:
    """One schema violation in words. ``key``: located at that key of ``path`` (unknown keys)."""

    path: JsonPath
    text: str
    key: str | None = None
    missing: tuple[str, ...] = ()  # keys this issue says are missing
    suggests: str | None = None  # the known key an unknown key probably meant


_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return "a mapping" if isinstance(value, dict) else "a list"


def _or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _quoted(names: Iterable[object]) -> list[str]:
    return [f"'{n}'" for n in names]


def _unknown(path: JsonPath, key: str, known: list[str]) -> _Issue:
    import difflib  # only when there is something to suggest

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return _Issue(path, f"unknown key '{key}' (did you mean '{close[0]}'?)", key, (), close[0])
    return _Issue(path, f"unknown key '{key}' (known keys: {', '.join(known)})", key)


def _explain(e: ValidationError) -> list[_Issue]:
    """One jsonschema error as issues a person can act on."""
    path: JsonPath = tuple(e.absolute_path)
    rule = e.validator
    value: Any = e.validator_value
    inst: Any = e.instance
    schema = e.schema if isinstance(e.schema, dict) else {}
    if rule == "additionalProperties" and isinstance(inst, dict):
        known = list(schema.get("properties", {}))
        return [_unknown(path, k, known) for k in inst if k not in known]
    if rule == "required" and isinstance(inst, dict):
        return [
            _Issue(path, f"missing required key '{k}'", None, (k,)) for k in value if k not in inst
        ]
    if rule == "type":
        wanted = [value] if isinstance(value, str) else list(value)
        return [_Issue(path, f"expected {_or([_TYPES[t] for t in wanted])}, got {_what(inst)}")]
    if rule == "oneOf":
        return _explain_one_of(e, path)
    if rule == "not" and isinstance(value, dict) and value.get("required"):
        names = list(value["required"])
        return [_Issue(path, f"give only one of {_or(_quoted(names))}", names[-1])]
    if rule == "enum" or rule == "const":
        options = value if rule == "enum" else [value]
        text = f"must be {_or([json.dumps(o) for o in options])}, got {_what(inst)}"
        if isinstance(inst, str):
            same = [o for o in options if not isinstance(o, str) and json.dumps(o) == inst]
            if same:  # `version: "1"`: the quotes make it a string
                text += f" (write {json.dumps(same[0])} without quotes)"
            else:
                import difflib  # only when there is something to suggest

                close = difflib.get_close_matches(inst, [str(o) for o in options], n=1)
                text += f" (did you mean '{close[0]}'?)" if close else ""
        return [_Issue(path, text)]
    if rule == "pattern":
        described = str(schema.get("description", ""))
        if described.endswith(".") and not described.endswith("..."):
            described = described[:-1]
        expected = described[:1].lower() + described[1:] if described else f"to match {value}"
        return [_Issue(path, f"got {_what(inst)}; expected {expected}")]
    if rule == "minItems":
        return [_Issue(path, "must not be empty" if value == 1 else f"needs {value} entries")]
    if rule == "maxItems":
        return [_Issue(path, f"has {len(inst)} entries; at most {value} are allowed")]
    if rule == "minLength":
        return [_Issue(path, "must not be empty")]
    if rule == "maxLength":
        return [_Issue(path, f"is longer than {value} characters")]
    if rule in ("minimum", "maximum"):
        bound = "at least" if rule == "minimum" else "at most"
        return [_Issue(path, f"must be {bound} {value}, got {_what(inst)}")]
    if rule == "minProperties":
        names = list(schema.get("properties", {}))
        return [_Issue(path, f"needs at least one of {_or(_quoted(names))}", None, tuple(names))]
    return [_Issue(path, e.message)]


def _explain_one_of(e: ValidationError, path: JsonPath) -> list[_Issue]:
    """Which alternative was meant (by the value's type, then by its kind key), and what is wrong.

    The schema's ``oneOf`` alternatives are written so this can tell: each
    object alternative names its kind in ``required`` (``key``,
    ``sigstore``, ``trusted_root``), each other alternative has a ``type``.
    """
    alts: list[Any] = list(cast(list[Any], e.validator_value))
    inst: Any = e.instance
    by_alt: dict[int, list[ValidationError]] = {i: [] for i in range(len(alts))}
    for c in e.context or ():
        by_alt[int(c.schema_path[0])].append(c)

    def wrong_type(errors: list[ValidationError]) -> bool:
        return any(not c.path and c.validator == "type" for c in errors)

    options = [i for i in by_alt if not wrong_type(by_alt[i])]
    if isinstance(inst, dict) and len(options) != 1:
        kinds = {
            i: str(alts[i]["required"][0])
            for i in (options or by_alt)
            if isinstance(alts[i], dict) and alts[i].get("required")
        }
        present = [i for i, k in kinds.items() if k in inst]
        if len(present) > 1:
            names = [kinds[i] for i in present]
            return [_Issue(path, f"give only one of {_or(_quoted(names))}", names[-1])]
        if len(present) == 1:
            options = present
        elif kinds:
            issues: list[_Issue] = []
            if any(isinstance(a, dict) and a.get("additionalProperties") is False for a in alts):
                known: list[str] = []
                for a in alts:
                    known.extend(k for k in a.get("properties", {}) if k not in known)
                issues.extend(_unknown(path, k, known) for k in inst if k not in known)
            names = list(kinds.values())
            issues.append(_Issue(path, f"needs one of {_or(_quoted(names))}", None, tuple(names)))
            return issues
    if len(options) == 1:
        errors = by_alt[options[0]]
        if errors:
            return [issue for c in errors for issue in _explain(c)]
    if not options:
        wanted: list[str] = []
        for errors in by_alt.values():
            for c in errors:
                if not c.path and c.validator == "type":
                    given: Any = c.validator_value
                    types = [given] if isinstance(given, str) else list(given)
                    wanted.extend(_TYPES[t] for t in types if _TYPES[t] not in wanted)
        return [_Issue(path, f"expected {_or(wanted)}, got {_what(inst)}")]
    return [_Issue(path, e.message)]


def _schema_problems(
    value: Any, src: _Source, definition: str | None = None, prefix: JsonPath = ()
) -> list[str]:
    """Every violation of the schema (or one of its definitions), in file order, as
    located messages. A valid document is proved so without importing jsonschema
    (:mod:`provenance._internal.schemacheck`); jsonschema judges and words the rest."""
    schema = _schema()
    if definition is None:
        fast = schemacheck.is_valid(schema, value)
    else:
        ref = {"$ref": f"{SCHEMA_ID}#/$defs/{definition}"}
        fast = schemacheck.is_valid(ref, value, registry={SCHEMA_ID: schema})
    if fast:
        return []
    issues: list[_Issue] = []
    for error in _validator(definition).iter_errors(value):
        issues.extend(_explain(error))
    # A typo reported as an unknown key need not be reported again as a missing key.
    meant = {(i.path, i.suggests) for i in issues if i.suggests}
    issues = [i for i in issues if not any((i.path, m) in meant for m in i.missing)]
    located: list[tuple[int, str]] = []
    for issue in dict.fromkeys(issues):
        full = prefix + issue.path
        line = src.line((*full, issue.key) if issue.key else full)
        located.append((line or 0, src.message(full, issue.text, line)))
    located.sort(key=lambda item: item[0])  # by line; the schema's order within one
    return [message for _, message in located]


# ---------------------------------------------------------------- building the model


def _hex(value: str) -> str:
    """A digest or fingerprint as the model keeps it: 64 lowercase hex, no ``sha256:``."""
    value = value.strip()
    if value[:7].lower() == "sha256:":
        value = value[7:]
    return value.lower()


def _serial(value: str) -> str:
    """A certificate serial as SignerInfo writes it: lowercase hex, no leading zeros."""
    text = value.replace(":", "")
    if text[:2].lower() == "0x":
        text = text[2:]
    return format(int(text, 16), "x")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _identity_of(rule: SignerRule) -> object:
    """What makes two signer entries the same signer (a key is a key, however it is given)."""
    if isinstance(rule, KeySigner):
        return ("key", hashlib.sha256(rule.pem).hexdigest())
    if isinstance(rule, FingerprintSigner):
        return ("key", rule.fingerprint)
    return replace(rule, where="", name="")


Stack = tuple[tuple[str, str], ...]  # (real path, as shown) of each policy file being loaded


class _Builder:
    """Turns one schema-valid policy document into the model, collecting every problem.

    ``prefix`` is where the document sits in its file (an inline nested
    policy's path), for messages; rules' ``where`` is relative to the
    document. ``pulled`` collects what the policy's digest covers beyond its
    own bytes, in the order the document names it.
    """

    def __init__(self, src: _Source, prefix: JsonPath, stack: Stack, nesting: int) -> None:
        self.src = src
        self.prefix = prefix
        self.stack = stack
        self.nesting = nesting
        self.problems: list[str] = []
        self.pulled: list[bytes] = []

    def fail(self, path: JsonPath, text: str) -> None:
        self.problems.append(self.src.message(self.prefix + path, text))

    def resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.src.base / path

    # -------------------------------------------------------- the policy

    def policy(self, doc: dict[str, Any], source: str, own: bytes) -> Policy | None:
        signers = self.signers(doc["signers"], ("signers",))
        attestation_signers = (
            self.signers(doc["attestation_signers"], ("attestation_signers",))
            if "attestation_signers" in doc
            else None
        )
        threshold = int(doc.get("threshold", 1))
        if threshold > len(doc["signers"]):
            n = len(doc["signers"])
            self.fail(
                ("threshold",),
                f"is {threshold}, but only {n} signer{'s are' if n != 1 else ' is'} listed",
            )
        expires = self.moment(doc["expires"], ("expires",), end=True) if "expires" in doc else None
        files = self.files(doc.get("files", {}))
        attestations = [
            self.attestation(rule, ("attestations", i))
            for i, rule in enumerate(doc.get("attestations", ()))
        ]
        lineage = self.lineage(doc["lineage"]) if "lineage" in doc else None
        pins = doc.get("pins", ())
        revocations = self.revocations(doc.get("revocations", {}))
        pipeline = self.pipeline(doc["pipeline"]) if "pipeline" in doc else None
        if self.problems:
            return None
        return Policy(
            source=source,
            digest=self.digest(own),
            signers=signers,
            mode=cast(Mode, doc.get("mode", "enforce")),
            expires=expires,
            threshold=threshold,
            attestation_signers=attestation_signers,
            files=files,
            attestations=tuple(a for a in attestations if a is not None),
            lineage=lineage,
            pins=tuple(_hex(p) for p in ([pins] if isinstance(pins, str) else pins)),
            revocations=revocations,
            loading=LoadingRules(
                trust_remote_code=bool(doc.get("loading", {}).get("trust_remote_code", False))
            ),
            pipeline=pipeline,
        )

    def digest(self, own: bytes) -> str:
        """SHA-256 of the file alone, or (files pulled in) of all of it, each length-prefixed."""
        if not self.pulled:
            return hashlib.sha256(own).hexdigest()
        h = hashlib.sha256(_DIGEST_DOMAIN)
        for chunk in (own, *self.pulled):
            h.update(len(chunk).to_bytes(8, "big"))
            h.update(chunk)
        return h.hexdigest()

    # -------------------------------------------------------- signers

    def signers(self, entries: list[dict[str, Any]], path: JsonPath) -> tuple[SignerRule, ...]:
        out: list[SignerRule] = []
        seen: dict[object, str] = {}
        for i, entry in enumerate(entries):
            rule = self.signer(entry, (*path, i))
            if rule is None:
                continue
            same = seen.setdefault(_identity_of(rule), rule.where)
            if same != rule.where:
                self.fail((*path, i), f"is the same signer as {same}; list each signer once")
                continue
            out.append(rule)
        return tuple(out)

    def signer(self, entry: dict[str, Any], path: JsonPath) -> SignerRule | None:
        where = where_of(path)
        rule: SignerRule | None
        if "key" in entry:
            pem = self.public_key(entry["key"], (*path, "key"))
            rule = KeySigner(where, "", pem) if pem is not None else None
        elif "fingerprint" in entry:
            rule = self.fingerprint_signer(entry, path)
        elif "certificate" in entry:
            rule = self.certificate_signer(entry["certificate"], (*path, "certificate"))
        else:
            rule = self.sigstore_signer(entry["sigstore"], (*path, "sigstore"))
        if rule is None:
            return None
        return replace(rule, where=where, name=entry.get("name") or signer_text(rule))

    def fingerprint_signer(self, entry: dict[str, Any], path: JsonPath) -> FingerprintSigner | None:
        fingerprint = _hex(entry["fingerprint"])
        keys: list[bytes] = []
        for i, value in enumerate(entry.get("keys", ())):
            pem = self.public_key(value, (*path, "keys", i))
            if pem is None:
                continue
            actual = hashlib.sha256(pem).hexdigest()
            if actual != fingerprint:
                self.fail(
                    (*path, "keys", i),
                    f"this key's fingerprint is {actual}, not the entry's {fingerprint}",
                )
                continue
            keys.append(pem)
        return FingerprintSigner(where_of(path), "", fingerprint, tuple(keys))

    def certificate_signer(self, spec: dict[str, Any], path: JsonPath) -> CertificateSigner | None:
        roots = self.certificates(spec["roots"], (*path, "roots"))
        intermediates = self.certificates(spec.get("intermediates", ()), (*path, "intermediates"))
        subject = self.match(spec, "subject", path)
        email = self.match(spec, "email", path)
        uri = self.match(spec, "uri", path)
        eku = tuple(_EKU.get(u, u) for u in spec.get("eku", ()))
        if roots is None or intermediates is None:
            return None
        return CertificateSigner(
            where_of(path), "", roots, intermediates, subject, email, uri, tuple(dict.fromkeys(eku))
        )

    def sigstore_signer(self, spec: dict[str, Any], path: JsonPath) -> SigstoreSigner | None:
        identity = self.match(spec, "identity", path)
        github = dict(spec.get("github", {}))
        if "sha" in github:
            github["sha"] = github["sha"].lower()
        trust = self.trust(spec.get("trust", "public-good"), (*path, "trust"))
        if identity is None or trust is None:
            return None
        return SigstoreSigner(
            where_of(path), "", identity, spec["issuer"], GitHubClaims(**github), trust
        )

    def match(self, spec: dict[str, Any], key: str, path: JsonPath) -> Match | None:
        """``key`` exactly, or ``key_regexp`` (compiled here, so a bad one is found now)."""
        if key in spec:
            return Match(exact=spec[key])
        pattern = spec.get(f"{key}_regexp")
        if pattern is None:
            return None
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as e:
            self.fail((*path, f"{key}_regexp"), f"not a valid regular expression: {e}")
            return None
        return Match(regexp=pattern)

    def trust(self, spec: str | dict[str, str], path: JsonPath) -> SigstoreTrust | None:
        if isinstance(spec, str):
            return SigstoreTrust("staging" if spec == "staging" else "public-good")
        kind, value = next(iter(spec.items()))
        file = self.resolve(value)
        what = "trusted root" if kind == "trusted_root" else "trust config"
        try:
            data = read_limited(file, what, MAX_TRUST_BYTES)
            parsed = json.loads(data)
        except InputError as e:
            self.fail((*path, kind), str(e))
            return None
        except (ValueError, RecursionError):
            self.fail((*path, kind), f"{what} '{file}' is not JSON")
            return None
        if not isinstance(parsed, dict):
            self.fail((*path, kind), f"{what} '{file}' is not a JSON object")
            return None
        self.pulled.append(data)
        return SigstoreTrust(
            "trusted_root" if kind == "trusted_root" else "trust_config",
            Path(os.path.abspath(file)),
        )

    # -------------------------------------------------------- PEM material

    def pem(self, value: str, path: JsonPath, what: str) -> tuple[bytes, str] | None:
        """Inline PEM, or the file's bytes (bounded, never a FIFO); and how to name it."""
        if "-----BEGIN" in value:
            return value.encode("utf-8"), f"the inline {what}"
        file = self.resolve(value)
        try:
            data = read_limited(file, what, MAX_PEM_BYTES)
        except InputError as e:
            self.fail(path, str(e))
            return None
        self.pulled.append(data)
        return data, f"{what} '{file}'"

    def public_key(self, value: str, path: JsonPath) -> bytes | None:
        """A supported public key, as its SubjectPublicKeyInfo PEM (what fingerprints hash)."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization

        from provenance.signing._keys import check_supported

        found = self.pem(value, path, "public key")
        if found is None:
            return None
        data, shown = found
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm, TypeError):
            if b"PRIVATE KEY" in data:
                self.fail(path, f"{shown} is a private key; a policy names public keys only")
            else:
                self.fail(path, f"{shown} is not a PEM public key")
            return None
        try:
            check_supported(key, shown)
        except InputError as e:
            self.fail(path, str(e))
            return None
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def certificates(self, values: Iterable[str], path: JsonPath) -> tuple[bytes, ...] | None:
        """Each file's certificates, re-encoded as PEM; None if any is unusable."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        out: list[bytes] = []
        ok = True
        for i, value in enumerate(values):
            found = self.pem(value, (*path, i), "certificate")
            if found is None:
                ok = False
                continue
            data, shown = found
            try:
                certs = x509.load_pem_x509_certificates(data)
            except ValueError:
                self.fail((*path, i), f"{shown} holds no PEM certificate")
                ok = False
                continue
            out.append(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        return tuple(out) if ok else None

    # -------------------------------------------------------- values

    def moment(self, value: str, path: JsonPath, *, end: bool) -> datetime.datetime | None:
        """A date is a whole UTC day (its end for expiry, its start for ``since``)."""
        try:
            if len(value) == 10:
                day = datetime.date.fromisoformat(value)
                at = datetime.time.max if end else datetime.time.min
                return datetime.datetime.combine(day, at, tzinfo=datetime.timezone.utc)
            return parse_time(value).astimezone(datetime.timezone.utc)
        except ValueError:
            self.fail(path, f"'{value}' is not a real date or time")
            return None

    def size(self, value: int | str, path: JsonPath) -> int | None:
        if isinstance(value, int):
            return value
        from decimal import Decimal  # exact for 1.5GB; imported only for a size

        m = _SIZE.match(value)
        size = int(Decimal(m.group(1)) * _UNITS[m.group(2)]) if m else 0
        if size < 1:
            self.fail(path, f"'{value}' is less than one byte")
            return None
        return size

    # -------------------------------------------------------- files, attestations

    def files(self, spec: dict[str, Any]) -> FileRules:
        from provenance.formats import FORMATS

        formats = spec.get("formats", {})
        allow = tuple(formats["allow"]) if "allow" in formats else None
        deny = tuple(formats.get("deny", ()))
        # A misspelt name would match nothing: `deny: [pickel]` must not let a pickle in.
        for key, names in (("allow", allow or ()), ("deny", deny)):
            for i, name in enumerate(names):
                if name not in FORMATS:
                    import difflib  # only when there is something to suggest

                    close = difflib.get_close_matches(name, FORMATS, n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    self.fail(
                        ("files", "formats", key, i),
                        f"'{name}' is not a format provenance detects{hint}; "
                        f"known: {', '.join(FORMATS)}",
                    )
        both = [f for f in dict.fromkeys(deny) if f in (allow or ())]
        if both:
            self.fail(("files", "formats"), f"{', '.join(both)}: both allowed and denied")
        size = None
        if "max_total_bytes" in spec:
            size = self.size(spec["max_total_bytes"], ("files", "max_total_bytes"))
        scan = spec.get("scan", False)
        return FileRules(
            unsigned=spec.get("unsigned", "deny"),
            allow_unsigned=tuple(spec.get("allow_unsigned", ())),
            formats=FormatRules(allow, deny),
            max_total_bytes=size,
            scan=scan is not False,
            allow_globals=tuple(scan.get("allow_globals", ())) if isinstance(scan, dict) else (),
        )

    def attestation(self, spec: dict[str, Any], path: JsonPath) -> AttestationRule | None:
        ptype = _ALIASES.get(spec["type"], spec["type"])
        if "thresholds" in spec and ptype != EVALUATION_PREDICATE_TYPE:
            self.fail(
                (*path, "thresholds"),
                "applies only to evaluation attestations (type: evaluation); "
                f"this one is {spec['type']}",
            )
        signers = self.signers(spec["signers"], (*path, "signers")) if "signers" in spec else None
        schema = spec.get("predicate")
        if schema is not None and not self.predicate_schema(schema, (*path, "predicate")):
            return None
        return AttestationRule(
            where_of(path), ptype, signers, schema, enforce_thresholds="thresholds" in spec
        )

    def predicate_schema(self, schema: dict[str, Any], path: JsonPath) -> bool:
        """A valid 2020-12 schema whose references stay inside it (nothing is fetched)."""
        declared = schema.get("$schema")
        if declared is not None and (
            not isinstance(declared, str) or declared.rstrip("#") != schemacheck.DRAFT_2020_12
        ):
            self.fail(
                (*path, "$schema"),
                "only JSON Schema draft 2020-12 is read, not "
                + (declared if isinstance(declared, str) else json.dumps(declared)),
            )
            return False
        bad_types = list(_unknown_types(schema))
        for at, name in bad_types:
            self.fail((*path, *at), _unknown_type_text(name))
        if bad_types:  # the metaschema would only say "not valid under any of the given schemas"
            return False
        if not schemacheck.schema_ok(schema):
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                self.fail((*path, *e.absolute_path), f"not a valid JSON Schema: {e.message}")
                return False
        ok = True
        for at, key in _unknown_keywords(schema, ()):
            self.fail((*path, *at), _unknown_keyword_text(key))
            ok = False
        for at in _ids(schema):
            self.fail(
                (*path, *at),
                "$id inside a predicate schema is not allowed: it changes what '#' refers to",
            )
            ok = False
        anchors = set(_anchors(schema))
        for at, ref in _refs(schema):
            if not ref.startswith("#"):
                self.fail(
                    (*path, *at),
                    f"refers outside the schema ({ref!r}); only references inside it "
                    "(#/$defs/...) are allowed, so nothing is fetched",
                )
                ok = False
            elif not _resolves(schema, ref[1:], anchors):
                self.fail((*path, *at), f"refers to nothing in the schema ({ref!r})")
                ok = False
            elif ref[1:].startswith("/") and not _schema_position(ref[1:]):
                self.fail(
                    (*path, *at),
                    f"refers to {ref!r}, which is not a subschema (a literal value or a list "
                    "of names): it would be read as a schema that nothing checked",
                )
                ok = False
        if ok:
            # A reference that leads back to itself without descending into the value
            # recurses on any value: try the schema on the simplest ones now.
            probes: tuple[Any, ...] = (None, {}, [])
            try:
                if not all(schemacheck.terminates(schema, probe) for probe in probes):
                    from jsonschema import Draft202012Validator

                    validator = Draft202012Validator(schema)
                    for probe in probes:
                        for _ in validator.iter_errors(probe):
                            break
            except RecursionError:
                self.fail(path, "refers to itself without descending into the value (a loop)")
                ok = False
            except Exception as failure:  # what check_schema let through and still fails
                what = f"{type(failure).__name__}: {str(failure)[:200]}"
                self.fail(path, f"cannot be evaluated ({what})")
                ok = False
            except BaseException as failure:
                if not schemacheck.recursed(failure):
                    raise
                self.fail(path, "refers to itself without descending into the value (a loop)")
                ok = False
        return ok

    # -------------------------------------------------------- pipeline

    def pipeline(self, spec: dict[str, Any]) -> PipelineRule | None:
        """The layout and links by path (read at evaluation), the owners' keys read now."""
        path: JsonPath = ("pipeline",)
        keys = [
            self.public_key(value, (*path, "layout_keys", i))
            for i, value in enumerate(spec["layout_keys"])
        ]
        model = spec.get("model", {})
        prefix = str(model.get("path", "")).strip("/")
        while prefix.startswith("./"):
            prefix = prefix[2:].lstrip("/")  # ./release is release, as the link names it
        if prefix == ".":
            prefix = ""
        if any(part in ("..", ".", "") for part in prefix.split("/") if prefix):
            self.fail(
                (*path, "model", "path"),
                f"'{prefix}' must be a path as the link names it (e.g. release), with no "
                "'..' or '.' parts",
            )
        layout = self.resolve(spec["layout"])
        if not os.path.lexists(layout):
            self.fail((*path, "layout"), f"layout '{layout}' does not exist")
        if any(k is None for k in keys):
            return None
        return PipelineRule(
            where="pipeline",
            layout=layout,
            layout_keys=tuple(k for k in keys if k is not None),
            links=self.resolve(spec["links"]),
            step=model.get("step"),
            path=prefix,
        )

    # -------------------------------------------------------- lineage

    def lineage(self, spec: dict[str, Any]) -> LineageRules:
        kinds = {
            kind: self.inputs(spec[kind], ("lineage", kind))
            for kind in ("base_models", "datasets")
            if kind in spec
        }
        return LineageRules(
            int(spec.get("depth", 1)), kinds.get("base_models"), kinds.get("datasets")
        )

    def inputs(self, spec: dict[str, Any], path: JsonPath) -> InputRules:
        policy = self.nested(spec["policy"], (*path, "policy")) if "policy" in spec else None
        return InputRules(
            where=where_of(path),
            digests=tuple(_hex(d) for d in spec.get("digests", ())),
            uris=tuple(spec.get("uris", ())),
            policy=policy,
        )

    def nested(self, spec: str | dict[str, Any], path: JsonPath) -> Policy | None:
        """A nested policy: a file (relative to this one's folder) or inline."""
        if self.nesting + 1 > MAX_NESTING:
            self.fail(path, f"policies nest more than {MAX_NESTING} deep")
            return None
        if isinstance(spec, dict):
            inner = _Builder(self.src, self.prefix + path, self.stack, self.nesting + 1)
            policy = inner.policy(spec, f"<inline in {self.src.label}>", _canonical(spec))
            self.problems.extend(inner.problems)
        else:
            policy = self.nested_file(spec, path)
        if policy is not None:
            self.pulled.append(policy.digest.encode("ascii"))
        return policy

    def nested_file(self, value: str, path: JsonPath) -> Policy | None:
        file = self.resolve(value)
        real = os.path.realpath(file)
        if any(real == seen for seen, _ in self.stack):
            chain = " -> ".join([*(shown for _, shown in self.stack), os.fspath(file)])
            self.fail(path, f"'{value}' includes itself (a cycle: {chain})")
            return None
        try:
            data = read_limited(file, "policy", MAX_POLICY_BYTES)
        except InputError as e:
            self.fail(path, str(e))
            return None
        try:
            return _load_bytes(
                data,
                file.parent,
                os.fspath(file),
                (*self.stack, (real, os.fspath(file))),
                self.nesting + 1,
            )
        except PolicyError as e:
            n = len(e.details)
            self.fail(path, f"the policy '{value}' is invalid ({n} problem{'s' * (n != 1)}):")
            self.problems.extend(e.details)
            return None

    # -------------------------------------------------------- revocations

    def revocations(self, spec: dict[str, Any]) -> tuple[Revocation, ...]:
        out = self.revocation_list(spec, ("revocations",), "revocations")
        for i, value in enumerate(spec.get("include", ())):
            out.extend(self.include(value, ("revocations", "include", i)))
        return tuple(out)

    def include(self, value: str, path: JsonPath) -> list[Revocation]:
        """A revocations file: its entries, ``where`` naming the include and the file."""
        file = self.resolve(value)
        try:
            data = read_limited(file, "revocations file", MAX_POLICY_BYTES)
            doc, src = _parse(data, os.fspath(file))
        except InputError as e:
            self.fail(path, str(e))
            return []
        except PolicyError as e:
            self.problems.extend(e.details)
            return []
        self.pulled.append(data)
        src = replace(src, base=file.parent)
        prefix: JsonPath = ()
        if isinstance(doc, dict) and "revocations" in doc:
            if len(doc) > 1:
                self.problems.append(
                    src.message(
                        (),
                        "holds entries both under 'revocations:' and beside it; "
                        "put them all in one place",
                    )
                )
                return []
            doc, prefix = doc["revocations"], ("revocations",)
        if isinstance(doc, dict) and "include" in doc:
            self.problems.append(
                src.message(
                    (*prefix, "include"),
                    "an included revocations file cannot include others; list every file "
                    "in the policy's revocations.include",
                )
            )
            return []
        problems = _schema_problems(doc, src, "revocation_list", prefix)
        if problems:
            self.problems.extend(problems)
            return []
        inner = _Builder(src, prefix, self.stack, self.nesting)
        entries = inner.revocation_list(doc, (), f"{where_of(path)} ({value})")
        self.problems.extend(inner.problems)
        return entries

    def revocation_list(self, spec: dict[str, Any], path: JsonPath, head: str) -> list[Revocation]:
        """``path``: the block in this document; ``head``: how ``where`` starts."""

        def where(kind: str, i: int) -> str:
            return f"{head}.{kind}[{i}]"

        def since(item: dict[str, Any], kind: str, i: int) -> datetime.datetime | None:
            if "since" not in item:
                return None
            return self.moment(item["since"], (*path, kind, i, "since"), end=False)

        out: list[Revocation] = []
        for i, item in enumerate(spec.get("digests", ())):
            if isinstance(item, str):
                out.append(Revocation(where("digests", i), "digest", _hex(item)))
            else:
                out.append(
                    Revocation(
                        where("digests", i), "digest", _hex(item["digest"]), item.get("reason")
                    )
                )
        for i, item in enumerate(spec.get("keys", ())):
            out.append(
                Revocation(
                    where("keys", i),
                    "key",
                    _hex(item["fingerprint"]),
                    item.get("reason"),
                    since=since(item, "keys", i),
                )
            )
        for i, item in enumerate(spec.get("identities", ())):
            out.append(
                Revocation(
                    where("identities", i),
                    "identity",
                    item["identity"],
                    item.get("reason"),
                    issuer=item.get("issuer"),
                    since=since(item, "identities", i),
                )
            )
        for i, item in enumerate(spec.get("serials", ())):
            out.append(
                Revocation(
                    where("serials", i), "serial", _serial(item["serial"]), item.get("reason")
                )
            )
        return out


# Keywords whose value maps names to subschemas: there, "enum" or "default" is a
# name, and what it holds is a schema like any other.
_NAME_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)


# Draft 2020-12's keywords, every vocabulary. A predicate schema may use no other:
# jsonschema ignores a keyword it does not know, so `minimun: 100` or a draft-4
# `dependencies` would switch a rule off without a word.
_KEYWORDS_2020_12 = frozenset(
    {
        "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
        "$comment", "$defs", "definitions",
        "prefixItems", "items", "contains", "additionalProperties", "properties",
        "patternProperties", "dependentSchemas", "propertyNames", "if", "then", "else",
        "allOf", "anyOf", "oneOf", "not", "unevaluatedItems", "unevaluatedProperties",
        "type", "const", "enum", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties",
        "required", "dependentRequired",
        "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
        "format", "contentEncoding", "contentMediaType", "contentSchema",
    }
)  # fmt: skip
_ONE_SUBSCHEMA = frozenset(
    {
        "items", "contains", "additionalProperties", "propertyNames", "if", "then", "else",
        "not", "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    }
)  # fmt: skip
_SUBSCHEMA_LISTS = frozenset({"prefixItems", "allOf", "anyOf", "oneOf"})
# Keywords 2020-12 makes annotations (they never fail a value), refused so that no
# one writes a rule that is never enforced.
_NOT_CHECKED = {
    "format": "write the rule with 'pattern' (a regular expression)",
    "contentEncoding": "write the rule with 'pattern'",
    "contentMediaType": "write the rule with 'pattern'",
    "contentSchema": "a string's content is not parsed",
}
_OLD_KEYWORDS = {
    "dependencies": "dependentRequired or dependentSchemas",
    "additionalItems": "items (with prefixItems)",
    "$recursiveRef": "$dynamicRef",
    "$recursiveAnchor": "$dynamicAnchor",
    "id": "$id",
}


# Keywords that act only beside another: alone, jsonschema ignores them.
_PARTNERS = {"then": "if", "else": "if", "minContains": "contains", "maxContains": "contains"}


def _subschemas(schema: Any, at: JsonPath = ()) -> Iterable[tuple[JsonPath, dict[str, Any]]]:
    """Every place jsonschema evaluates a schema, with its path: the keywords that
    hold a schema, a list of them, or names mapped to them. Literal values (``const``,
    ``enum``, ``default``, ``examples``) and other data are not schemas."""
    if not isinstance(schema, dict):
        return
    yield at, schema
    for key, value in schema.items():
        if key in _ONE_SUBSCHEMA:
            yield from _subschemas(value, (*at, key))
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _subschemas(sub, (*at, key, i))
        elif key in _NAME_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from _subschemas(sub, (*at, key, name))


def _unknown_keywords(schema: Any, at: JsonPath) -> Iterable[tuple[JsonPath, str]]:
    """Every key of a subschema that jsonschema would not act on: not a 2020-12
    keyword, an annotation that looks like a rule, or a keyword without its partner."""
    for where, sub in _subschemas(schema, at):
        for key in sub:
            alone = key in _PARTNERS and _PARTNERS[key] not in sub
            if key not in _KEYWORDS_2020_12 or key in _NOT_CHECKED or alone:
                yield (*where, key), key


def _unknown_keyword_text(key: str) -> str:
    if key in _PARTNERS:
        return (
            f"'{key}' without '{_PARTNERS[key]}' beside it is ignored, so its rule would "
            "never be checked"
        )
    if key in _NOT_CHECKED:
        return (
            f"'{key}' is only an annotation in a predicate schema and is never checked; "
            f"{_NOT_CHECKED[key]}"
        )
    text = f"'{key}' is not a JSON Schema (draft 2020-12) keyword"
    if key in _OLD_KEYWORDS:
        return f"{text}: it is an older draft's; use {_OLD_KEYWORDS[key]}"
    import difflib  # only when there is something to suggest

    close = difflib.get_close_matches(key, sorted(_KEYWORDS_2020_12), n=1, cutoff=0.7)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (
        f"{text}{hint}; an unknown keyword would be ignored and its rule never checked "
        "(a property name belongs under 'properties')"
    )


def _unknown_types(schema: Any) -> Iterable[tuple[JsonPath, str]]:
    """Every name under a subschema's ``type`` that is not one of JSON Schema's seven."""
    for at, sub in _subschemas(schema):
        given = sub.get("type")
        names = [given] if isinstance(given, str) else given if isinstance(given, list) else []
        for i, name in enumerate(names):
            if isinstance(name, str) and name not in schemacheck.JSON_TYPES:
                yield ((*at, "type") if isinstance(given, str) else (*at, "type", i)), name


def _unknown_type_text(name: str) -> str:
    import difflib  # only when there is something to suggest

    close = difflib.get_close_matches(name, schemacheck.JSON_TYPES, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    types = ", ".join(schemacheck.JSON_TYPES)
    return f"'{name}' is not a JSON Schema type{hint}; the types are {types}"


def _ids(schema: Any) -> Iterable[JsonPath]:
    """Every ``$id`` of a subschema below the root."""
    for at, sub in _subschemas(schema):
        if at and "$id" in sub:
            yield (*at, "$id")


def _anchors(schema: Any) -> Iterable[str]:
    """Every ``$anchor`` / ``$dynamicAnchor`` name a subschema declares."""
    for _, sub in _subschemas(schema):
        for key in ("$anchor", "$dynamicAnchor"):
            if isinstance(sub.get(key), str):
                yield sub[key]


def _refs(schema: Any) -> Iterable[tuple[JsonPath, str]]:
    """Every ``$ref`` / ``$dynamicRef`` string of a subschema, with its path."""
    for at, sub in _subschemas(schema):
        for key in ("$ref", "$dynamicRef"):
            if isinstance(sub.get(key), str):
                yield (*at, key), sub[key]


def _pointer_parts(fragment: str) -> list[str]:
    """The tokens of a percent-decoded JSON pointer (``/a~1b/0``), ~-decoded."""
    if not fragment:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in fragment[1:].split("/")]


def _resolves(schema: Any, fragment: str, anchors: set[str]) -> bool:
    """Whether ``#fragment`` names something in the schema (a JSON pointer or an anchor)."""
    from urllib.parse import unquote

    fragment = unquote(fragment)
    if not fragment:
        return True
    if not fragment.startswith("/"):
        return fragment in anchors
    node = schema
    for part in _pointer_parts(fragment):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _schema_position(fragment: str) -> bool:
    """Whether a JSON pointer (``/$defs/a``) names a place a schema sits. jsonschema
    evaluates whatever a reference points at as a schema; a literal (``/default``,
    ``/enum/0``) or a names map (``/properties``) is one nothing else checked."""
    from urllib.parse import unquote

    state = "schema"
    for part in _pointer_parts(unquote(fragment)):
        if state == "schema":
            if part in _ONE_SUBSCHEMA:
                continue
            if part in _SUBSCHEMA_LISTS:
                state = "list"
            elif part in _NAME_MAPS:
                state = "names"
            else:
                return False
        else:
            state = "schema"
    return state == "schema"


# ---------------------------------------------------------------- entry points


def _load_bytes(data: bytes, base: Path, label: str, stack: Stack, nesting: int) -> Policy:
    doc, src = _parse(data, label)
    src = replace(src, base=base)
    if doc is None:
        raise _error([f"{label}: is empty; a policy needs at least `version: 1` and `signers`"])
    problems = _schema_problems(doc, src)
    if problems:
        raise _error(problems)
    builder = _Builder(src, (), stack, nesting)
    policy = builder.policy(doc, label, data)
    if policy is None:
        raise _error(builder.problems)
    return policy


def load(path: str | os.PathLike[str]) -> Policy:
    """Read, check and resolve the policy file at ``path``.

    Raises :class:`PolicyError` (exit code 2) listing every problem, each
    with its place in the file and its line; an
    :class:`~provenance.errors.InputError` (exit code 3) when the file itself
    cannot be read (missing, not a regular file, over 1 MiB). Paths in the
    policy are relative to its folder.
    """
    shown = os.fspath(path)
    data = read_limited(shown, "policy", MAX_POLICY_BYTES)
    stack: Stack = ((os.path.realpath(shown), shown),)
    return _load_bytes(data, Path(shown).parent, shown, stack, 0)


def loads(text: str | bytes, *, base: Path, source: str) -> Policy:
    """Check and resolve a policy given as text.

    ``base`` is the folder its relative paths start from; ``source`` names it
    in messages and becomes :attr:`Policy.source` (a ``.json`` name, or text
    starting with ``{``, is read as JSON).
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_POLICY_BYTES:
        raise InputError(f"policy '{source}' is larger than 1 MiB", code="too-large")
    return _load_bytes(data, Path(base), source, (), 0)
