"""Layouts: the pipeline's owner says which steps, by whom, and how they chain.

A layout is in-toto's: steps, each with the keys of the functionaries who
may perform it and how many of them must (its threshold), artifact rules
that tie each step's materials to an earlier step's products, and an
expiry. :func:`starter_layout` writes one for the usual ML pipeline; the
owner edits it as plain JSON, then :func:`sign_layout` signs it (a DSSE
envelope, as in-toto 3 writes it), and a second owner adds a signature to
the same file the same way.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance._internal.timefmt import FORMAT, format_time
from provenance.errors import Hint, InputError, UsageError
from provenance.pipeline._keys import as_signer, keyid_of, public_key_dict
from provenance.pipeline._run import check_step_name

__all__ = [
    "DEFAULT_STEPS",
    "MAX_LAYOUT_BYTES",
    "Folders",
    "SignedLayout",
    "lint_layout",
    "sign_layout",
    "starter_layout",
    "write_layout",
]

#: The usual ML pipeline, in order.
DEFAULT_STEPS: tuple[str, ...] = ("prepare-data", "train", "evaluate", "package")

#: The largest layout file read (a layout lists keys and rules: kilobytes).
MAX_LAYOUT_BYTES = 8 << 20

#: How long a starter layout is valid when no expiry is given.
DEFAULT_VALIDITY = datetime.timedelta(days=365)

KeySource = str | os.PathLike[str] | bytes | Mapping[str, Any]


@dataclass(frozen=True)
class Folders:
    """Where the starter pipeline's artifacts live, relative to each step's base folder.

    ``raw`` is what data preparation reads (from outside the pipeline),
    ``data`` what it writes; training writes ``model``; evaluation writes
    ``evaluation``; packaging writes ``release``: the model's files exactly
    as training made them, plus ``model_card`` (a name inside ``release``).
    """

    raw: str = "raw"
    data: str = "data"
    model: str = "model"
    evaluation: str = "eval"
    release: str = "release"
    model_card: str = "README.md"


def _rules(f: Folders) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """Each step's (material rules, product rules): every input is an earlier product."""

    def match(folder: str, step: str) -> list[str]:
        return ["MATCH", f"{folder}/*", "WITH", "PRODUCTS", "FROM", step]

    deny = ["DISALLOW", "*"]
    return {
        "prepare-data": (
            [["ALLOW", f"{f.raw}/*"], deny],
            [["CREATE", f"{f.data}/*"], deny],
        ),
        "train": (
            [match(f.data, "prepare-data"), deny],
            [["CREATE", f"{f.model}/*"], deny],
        ),
        "evaluate": (
            [match(f.model, "train"), match(f.data, "prepare-data"), deny],
            [["CREATE", f"{f.evaluation}/*"], deny],
        ),
        "package": (
            [match(f.model, "train"), match(f.evaluation, "evaluate"), deny],
            [
                # The release holds training's model, byte for byte ...
                ["MATCH", "*", "IN", f.release, "WITH", "PRODUCTS", "IN", f.model, "FROM", "train"],
                # ... and a model card written by this step; nothing else.
                ["CREATE", f"{f.release}/{f.model_card}"],
                deny,
            ],
        ),
    }


def starter_layout(
    functionaries: Mapping[str, Sequence[KeySource]],
    *,
    thresholds: Mapping[str, int] | None = None,
    expires: datetime.datetime | datetime.timedelta | None = None,
    folders: Folders = Folders(),
    readme: str | None = None,
) -> dict[str, Any]:
    """The usual ML pipeline as an (unsigned) in-toto layout, as plain JSON data.

    prepare-data -> train -> evaluate -> package, each step's materials
    MATCHing an earlier step's products and each step's products CREATEd
    by it, with a closing ``DISALLOW *`` on both sides so nothing else may
    appear. ``functionaries`` maps each step to the public keys (PEM files,
    PEM bytes or key dictionaries) that may sign its link; ``thresholds``
    how many distinct ones must (default 1). ``expires`` is a moment or a
    validity from now (default a year).
    """
    from in_toto.models.layout import Layout

    unknown = [s for s in functionaries if s not in DEFAULT_STEPS]
    if unknown:
        raise UsageError(
            f"the starter pipeline has no step {unknown[0]!r}; its steps are "
            f"{', '.join(DEFAULT_STEPS)} (add others by editing the layout)",
            code="unknown-step",
        )
    missing = [s for s in DEFAULT_STEPS if not functionaries.get(s)]
    if missing:
        raise UsageError(
            f"every step needs at least one functionary key; none for {', '.join(missing)}",
            code="functionary-missing",
        )
    thresholds = dict(thresholds or {})
    bad = [s for s in thresholds if s not in DEFAULT_STEPS]
    if bad:
        raise UsageError(f"threshold for unknown step {bad[0]!r}", code="unknown-step")
    keys: dict[str, dict[str, Any]] = {}
    pubkeys: dict[str, list[str]] = {}
    for step in DEFAULT_STEPS:
        ids: list[str] = []
        for source in functionaries[step]:
            key = public_key_dict(source)
            keys.setdefault(key["keyid"], key)
            if key["keyid"] not in ids:
                ids.append(key["keyid"])
        pubkeys[step] = ids
        k = thresholds.get(step, 1)
        if not 1 <= k <= len(ids):
            raise UsageError(
                f"step {step!r} has threshold {k} but {len(ids)} distinct functionary key(s)",
                code="bad-threshold",
            )
    rules = _rules(folders)
    steps = [
        {
            "_type": "step",
            "name": step,
            "threshold": thresholds.get(step, 1),
            "pubkeys": pubkeys[step],
            "expected_command": [],
            "expected_materials": rules[step][0],
            "expected_products": rules[step][1],
        }
        for step in DEFAULT_STEPS
    ]
    layout: dict[str, Any] = {
        "_type": "layout",
        "expires": _expiry(expires),
        "readme": readme
        if readme is not None
        else "ML pipeline: prepare-data -> train -> evaluate -> package "
        "(written by provenance layout init).",
        "keys": keys,
        "steps": steps,
        "inspect": [],
    }
    Layout.read(copy.deepcopy(layout))  # in-toto's own checks, before anyone signs it
    return layout


def _expiry(expires: datetime.datetime | datetime.timedelta | None) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    if expires is None:
        moment = now + DEFAULT_VALIDITY
    elif isinstance(expires, datetime.timedelta):
        moment = now + expires
    else:
        moment = expires
    return format_time(moment)


def write_layout(
    layout: Mapping[str, Any], path: str | os.PathLike[str], *, force: bool = False
) -> None:
    """Write an unsigned layout as indented JSON, for its owner to read and edit."""
    from provenance._internal.fsutil import safe_output, write_output

    if os.path.lexists(path) and not force:
        raise InputError(
            f"refusing to overwrite '{os.fspath(path)}': it exists",
            code="output-refused",
            hint=Hint.OUTPUT_PATH,
        )
    text = json.dumps(layout, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_output(safe_output(path, None), text.encode("utf-8"))


@dataclass(frozen=True)
class SignedLayout:
    """A layout signed (or signed once more), and where it went."""

    path: Path | None
    keyid: str
    signers: tuple[str, ...]  # every key id that has signed the envelope
    expires: str
    steps: tuple[str, ...]
    data: bytes = field(repr=False)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": str(self.path) if self.path is not None else None,
            "keyid": self.keyid,
            "signed_by": list(self.signers),
            "expires": self.expires,
            "steps": list(self.steps),
            "warnings": list(self.warnings),
        }


def sign_layout(
    layout: Mapping[str, Any] | str | os.PathLike[str],
    signer: object,
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> SignedLayout:
    """Sign a layout with an owner's key and write it as a DSSE envelope.

    ``layout`` is the layout as data, or a file holding one of: a plain
    layout (what :func:`starter_layout` and ``provenance layout init``
    write), a DSSE envelope (signed by another owner: this signature is
    added over the very same payload bytes), or an old-style in-toto
    Metablock (its layout is signed anew as DSSE; its old signatures are
    dropped, with a warning). ``output`` defaults to the envelope itself,
    or a plain ``NAME.json`` file's ``NAME``. Nothing is written to
    ``output`` if it is a link, a FIFO or a folder. An ``output`` that holds
    a layout signed by other owners is not replaced by a new envelope (their
    signatures would be lost) unless ``force``: sign that file instead.
    """
    from provenance._internal.fsutil import safe_output, write_output
    from provenance.pipeline._run import signed_envelope

    sslib_signer = as_signer(signer)
    warnings: list[str] = []
    source: Path | None = None
    if isinstance(layout, Mapping):
        doc: Any = copy.deepcopy(dict(layout))
    else:
        source = Path(layout)
        doc = _read_json(source, "layout")
    if output is None:
        output = _default_output(source, doc)
    target = safe_output(output, None)
    if isinstance(doc, dict) and "payload" in doc and "signatures" in doc:
        envelope = _envelope(doc, source)
        plain = _payload(envelope)
        _parse_layout(plain, source)  # the owner vouches for it: it must be a valid layout
        before = [s.keyid for s in envelope.signatures.values()]
        _sign_envelope(envelope, sslib_signer)
        data = json.dumps(envelope.to_dict(), sort_keys=True).encode("utf-8")
        signers = tuple(dict.fromkeys([*before, keyid_of(sslib_signer)]))
    else:
        if isinstance(doc, dict) and "signed" in doc and "signatures" in doc:
            if doc.get("signatures"):
                warnings.append(
                    "the layout's old Metablock signatures were dropped: it is signed anew, "
                    "as a DSSE envelope"
                )
            doc = doc["signed"]
        plain = _layout_dict(doc, source)
        parsed = _parse_layout(plain, source)
        data = signed_envelope(parsed, sslib_signer)
        signers = (keyid_of(sslib_signer),)
    warnings.extend(lint_layout(plain))
    if not force and (source is None or os.path.abspath(source) != os.path.abspath(output)):
        _refuse_dropping_owners(Path(output), set(signers))
    write_output(target, data)
    return SignedLayout(
        path=Path(output),
        keyid=keyid_of(sslib_signer),
        signers=signers,
        expires=str(plain.get("expires", "")),
        steps=tuple(str(s.get("name")) for s in plain.get("steps", ()) if isinstance(s, dict)),
        data=data,
        warnings=tuple(warnings),
    )


def _default_output(source: Path | None, doc: Any) -> Path:
    if source is None:
        raise UsageError("give the path to write the signed layout to", code="usage")
    if isinstance(doc, dict) and "payload" in doc:
        return source  # one more signature on the same envelope
    if source.suffix == ".json":
        return source.with_suffix("")
    raise UsageError(
        f"give the path to write the signed layout to (not over the unsigned '{source}')",
        code="usage",
        hint=Hint.OUTPUT_PATH,
    )


def _refuse_dropping_owners(output: Path, mine: set[str]) -> None:
    """An existing signed layout at ``output`` whose signers the new envelope lacks."""
    if not output.is_file() or output.is_symlink():
        return
    try:
        doc = _read_json(output, "layout")
    except InputError:
        return  # not a layout this tool reads: safe_output decides
    if not isinstance(doc, dict) or not isinstance(doc.get("signatures"), list):
        return
    theirs = {
        s.get("keyid") for s in doc["signatures"] if isinstance(s, dict) and s.get("keyid")
    } - mine
    if theirs:
        raise InputError(
            f"'{output}' holds a layout signed by {len(theirs)} other owner(s); signing "
            "another file over it would drop their signatures. Sign it instead (adds yours), "
            "or replace it with --force",
            code="layout-signed-by-others",
        )


def _read_json(path: Path, what: str, limit: int = MAX_LAYOUT_BYTES) -> Any:
    from provenance._internal.fsutil import read_limited

    data = read_limited(path, what, limit)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise InputError(f"{what} '{path}' is not JSON", code="layout-malformed") from None


def _envelope(doc: dict[str, Any], source: Path | None) -> Any:
    from in_toto.models.metadata import ENVELOPE_PAYLOAD_TYPE, Envelope

    shown = f"'{source}'" if source else "the layout"
    if doc.get("payloadType") != ENVELOPE_PAYLOAD_TYPE:
        raise InputError(
            f"{shown} is a DSSE envelope of type {doc.get('payloadType')!r}, not an in-toto layout",
            code="layout-malformed",
        )
    try:
        return Envelope.from_dict(copy.deepcopy(doc))
    except Exception as e:
        raise InputError(f"{shown} is not a DSSE envelope: {e}", code="layout-malformed") from None


def _payload(envelope: Any) -> dict[str, Any]:
    try:
        plain = json.loads(envelope.payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("the envelope's payload is not JSON", code="layout-malformed") from None
    return _layout_dict(plain, None)


def _sign_envelope(envelope: Any, signer: Any) -> None:
    from provenance.pipeline._run import _sign

    _sign(envelope, signer)
    from securesystemslib.exceptions import VerificationError

    try:
        envelope.verify([signer.public_key], 1)
    except VerificationError:
        raise InputError(
            f"the signature made with key {keyid_of(signer)[:16]} does not verify with that key",
            code="kms-key-mismatch",
        ) from None


def _layout_dict(doc: Any, source: Path | None) -> dict[str, Any]:
    shown = f"'{source}'" if source else "the layout"
    if not isinstance(doc, dict) or doc.get("_type") != "layout":
        raise InputError(
            f'{shown} is not an in-toto layout (no "_type": "layout")',
            code="layout-malformed",
        )
    return doc


def _parse_layout(plain: dict[str, Any], source: Path | None) -> Any:
    from in_toto.models.layout import Layout

    shown = f"'{source}'" if source else "the layout"
    try:
        return Layout.read(copy.deepcopy(plain))
    except Exception as e:  # in-toto raises FormatError, KeyError, TypeError ... by field
        raise InputError(
            f"{shown} is not a valid in-toto layout: {e}", code="layout-malformed"
        ) from None


def lint_layout(layout: Mapping[str, Any]) -> list[str]:
    """What an owner should know before signing: each a warning, none fatal to in-toto.

    A rule that names a step the layout lacks matches nothing; a threshold
    above the step's keys can never be met; a step name that cannot name a
    file gets no link; an expiry already past makes the signature useless.
    """
    out: list[str] = []
    steps = [s for s in layout.get("steps", ()) if isinstance(s, dict)]
    names = {s.get("name") for s in steps}
    names |= {i.get("name") for i in layout.get("inspect", ()) if isinstance(i, dict)}
    for step in steps:
        name = step.get("name")
        try:
            check_step_name(str(name))
        except UsageError as e:
            out.append(str(e))
        keys = step.get("pubkeys", [])
        threshold = step.get("threshold", 1)
        if isinstance(threshold, int) and isinstance(keys, list) and threshold > len(keys):
            out.append(
                f"step '{name}' has threshold {threshold} but lists {len(keys)} key(s): "
                "it can never verify"
            )
        for kind in ("expected_materials", "expected_products"):
            for rule in step.get(kind, ()):
                if isinstance(rule, list) and rule and rule[0] == "MATCH" and "FROM" in rule:
                    source = rule[-1]
                    if source not in names:
                        out.append(
                            f"step '{name}' {kind[9:]} rule {' '.join(map(str, rule))!r} names "
                            f"step '{source}', which the layout does not have"
                        )
    if layout.get("inspect"):
        out.append(
            "the layout has inspections: verify-pipeline runs their commands only when asked "
            "to (run_inspections)"
        )
    expires = layout.get("expires")
    if isinstance(expires, str):
        try:
            moment = datetime.datetime.strptime(expires, FORMAT).replace(
                tzinfo=datetime.timezone.utc
            )
        except ValueError:
            moment = None
        if moment is not None and moment <= datetime.datetime.now(datetime.timezone.utc):
            out.append(f"the layout expired at {expires}: it will not verify")
    return out
