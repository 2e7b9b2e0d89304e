"""Sharded checkpoints: ``*.index.json`` against their shards (issue 10).

``transformers`` (and ``diffusers``, ``huggingface_hub``) save a large model
as shards, ``model-00001-of-00003.safetensors`` and so on, with an index,
``model.safetensors.index.json``: ``{"metadata": {"total_size": BYTES},
"weight_map": {tensor: shard file}}``. A loader reads the index and opens
each shard it names, relative to the index's folder. Indexes are found by
name (``*.index.json``), as the loaders find them.

For every index in the listing:

* it is a regular file of at most :data:`MAX_INDEX` bytes, UTF-8 JSON as
  strict as the safetensors header (no duplicate key at any level, no
  ``NaN``), an object with a ``weight_map`` that maps tensor names (no
  control characters) to shard names;
* every shard name is a plain relative path: no ``/`` at the start, no
  ``\\``, no drive, no empty, ``.`` or ``..`` component; it names a regular
  file of the listing, relative to the index's folder;
* every file of the index's family in its folder (``{stem}-N-of-M{ext}``
  for ``{stem}{ext}.index.json``) is referenced: an unreferenced shard is
  weights a loader never loads, or loads by another route;
* a shard of a safetensors index is safetensors (by content), one of a
  torch index (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) is a torch file or a
  pickle; an index of another kind (``.h5``, ``.msgpack``) gets the name
  and reference checks only;
* for safetensors: each shard's header is read (bounded, the same reader as
  the file check); every tensor of the index is in exactly the shard the
  index names, no shard holds a tensor the index does not list, no tensor
  is in two shards, and ``metadata.total_size``, when present, is the sum of
  the tensors' byte sizes.

For torch shards the tensors cannot be checked against the index without
unpickling ``data.pkl`` (or walking its opcodes for the persistent ids, which
does not give tensor names reliably): only their names, existence,
referencing and format are checked here, and each shard gets the pickle
scanner as a file of its own. ``total_size`` of a torch index is checked to
be a non-negative integer, not against the data.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from pathlib import Path

from provenance.errors import InputError
from provenance.formats._detect import _show
from provenance.formats._safetensors import bad_name, dups, read_header, strict_json
from provenance.formats._scan import (
    FormatFinding,
    ScannedFile,
    ScanOptions,
    Severity,
    open_source,
)

__all__ = ["MAX_INDEX", "check_indexes"]

#: The largest index read (a million tensor names fit in about 80 MB).
MAX_INDEX = 128 << 20
#: Objects and arrays an index may hold (it needs two or three).
MAX_CONTAINERS = 10_000
#: Entries an index may hold.
MAX_ENTRIES = 2_000_000
FINDINGS_PER_CODE = 20

_SUFFIX = ".index.json"
_TORCH_EXTS = frozenset({".bin", ".pt", ".pth", ".ckpt"})
_TORCH_FORMATS = frozenset({"pytorch-zip", "pytorch-legacy", "pickle"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_REGULAR = frozenset({"scan-not-regular", "scan-unreadable"})


class _Out:
    def __init__(self, name: str) -> None:
        self.name = name
        self.out: list[FormatFinding] = []
        self.counts: dict[str, tuple[int, Severity]] = {}

    def add(self, code: str, message: str, severity: Severity = "error") -> None:
        n = self.counts.get(code, (0, severity))[0] + 1
        self.counts[code] = (n, severity)
        if n <= FINDINGS_PER_CODE:
            self.out.append(FormatFinding(self.name, "json", code, message, None, None, severity))

    def done(self) -> list[FormatFinding]:
        for code, (n, severity) in self.counts.items():
            if n > FINDINGS_PER_CODE:
                self.out.append(
                    FormatFinding(
                        self.name,
                        "json",
                        code,
                        f"and {n - FINDINGS_PER_CODE} more findings '{code}' not listed",
                        None,
                        None,
                        severity,
                    )
                )
        return self.out


def check_indexes(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    """Check every ``*.index.json`` of the listing against the shards it names."""
    listing = {f.name: f for f in files if not any(x.code in _NOT_REGULAR for x in f.findings)}
    out: list[FormatFinding] = []
    for f in files:
        if f.name.rsplit("/", 1)[-1].endswith(_SUFFIX) and f.name in listing:
            o = _Out(f.name)
            _check_index(root, f, listing, o, options)
            out.extend(o.done())
    return out


def bad_shard_name(shard: str) -> str | None:
    """Why ``shard`` is no plain relative file name, or None."""
    if not shard:
        return "is empty"
    if "\\" in shard:
        return "holds a backslash"
    if shard.startswith("/"):
        return "is absolute"
    if _DRIVE.match(shard):
        return "starts with a drive"
    why = bad_name(shard)
    if why is not None:
        return why
    parts = shard.split("/")
    if ".." in parts:
        return "goes up a folder ('..')"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' component"
    return None


def _load(root: Path, name: str, o: _Out, options: ScanOptions) -> dict[str, object] | None:
    """The index's JSON object, or None (reported)."""
    try:
        src = open_source(root, name, options, "index")
    except InputError as e:
        o.add("index-unreadable", str(e))
        return None
    try:
        size = src.size
        if size > MAX_INDEX:
            o.add("index-too-large", f"{size} bytes, over the limit of {MAX_INDEX}")
            return None
        raw = src.read(0, size)
    except (InputError, OSError) as e:
        o.add("index-unreadable", str(e))
        return None
    finally:
        src.close()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        o.add("index-json", f"not UTF-8 at byte {e.start} ({e.reason})")
        return None
    if not _bounded(raw):
        o.add(
            "index-too-complex",
            f"more than {MAX_CONTAINERS} objects and arrays or {MAX_ENTRIES} entries; not parsed",
        )
        return None
    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        top, end = strict_json(text[start:])
    except ValueError as e:  # json.JSONDecodeError too
        o.add("index-json", f"not JSON as the loaders read it: {e}")
        return None
    if text[start + end :].strip(" \t\r\n"):
        o.add("index-json", "not JSON: data after the object")
        return None
    if not isinstance(top, dict):
        o.add("index-json", "not a JSON object")
        return None
    return top


def _bounded(raw: bytes) -> bool:
    def ok(data: bytes) -> bool:
        return (
            data.count(b"{") + data.count(b"[") <= MAX_CONTAINERS
            and data.count(b",") <= MAX_ENTRIES
        )

    return ok(raw) or ok(_STRING.sub(b'""', raw))


def _duplicates(top: dict[str, object], o: _Out) -> None:
    """Duplicate keys in any object of the index (walked without recursion)."""
    stack: list[tuple[str, object]] = [("the index", top)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key in dups(value):
                o.add("index-duplicate-key", f"{where} has the key '{_show(key)}' more than once")
            stack.extend((f"'{_show(k)}'", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((where, v) for v in value)


def _family(index: str) -> tuple[str, str, str, re.Pattern[str]]:
    """The index's folder, its target file, its kind and the pattern of its shards."""
    folder, _, base = index.rpartition("/")
    target = base[: -len(_SUFFIX)]
    stem, ext = posixpath.splitext(target)
    kind = "safetensors" if ext == ".safetensors" else "torch" if ext in _TORCH_EXTS else "other"
    pattern = re.compile(re.escape(stem) + r"-\d+-of-\d+" + re.escape(ext))
    return folder, target, kind, pattern


def _check_index(
    root: Path, f: ScannedFile, listing: dict[str, ScannedFile], o: _Out, options: ScanOptions
) -> None:
    top = _load(root, f.name, o, options)
    if top is None:
        return
    _duplicates(top, o)
    folder, target, kind, pattern = _family(f.name)
    prefix = folder + "/" if folder else ""
    if prefix + target in listing:
        o.add(
            "index-shadowed",
            f"'{_show(prefix + target)}' is there too: loaders take it and ignore this index",
            "info",
        )
    for key in top:
        if key not in ("metadata", "weight_map"):
            o.add("index-unknown-key", f"unknown top-level key '{_show(key)}'", "info")
    weight_map = top.get("weight_map")
    if not isinstance(weight_map, dict):
        o.add("index-weight-map", "no weight_map object")
        return
    shards: dict[str, str] = {}  # shard name in the index -> path in the listing
    mapped: dict[str, str] = {}  # tensor -> shard name
    for tensor, shard in weight_map.items():
        why = bad_name(tensor)
        if why is not None:
            o.add("index-tensor-name", f"tensor name '{_show(tensor)}' {why}")
        if not isinstance(shard, str):
            o.add("index-weight-map", f"tensor '{_show(tensor)}' maps to a non-string")
            continue
        mapped[tensor] = shard
        if shard not in shards:
            why = bad_shard_name(shard)
            if why is not None:
                o.add("index-shard-name", f"shard name '{_show(shard)}' {why}")
                shards[shard] = ""
                continue
            path = prefix + shard
            shards[shard] = path
            if path not in listing:
                o.add("index-shard-missing", f"shard '{_show(shard)}' is not in the model")
    referenced = {p for p in shards.values() if p in listing}
    for name in sorted(listing):
        d, _, base = name.rpartition("/")
        if d == folder and pattern.fullmatch(base) and name not in referenced:
            o.add("index-shard-unreferenced", f"'{_show(name)}' is a shard the index never names")
    for shard, path in shards.items():
        if path not in listing:
            continue
        fmt = listing[path].format
        if (kind == "safetensors" and fmt != "safetensors") or (
            kind == "torch" and fmt not in _TORCH_FORMATS
        ):
            o.add(
                "index-shard-format",
                f"shard '{_show(shard)}' of a {kind} index is {fmt} by its content",
            )
    total = _total_size(top, o)
    if kind == "safetensors":
        _tensors(root, shards, mapped, listing, total, o, options)


def _total_size(top: dict[str, object], o: _Out) -> int | None:
    """``metadata.total_size``, when the index has one that is an integer."""
    meta = top.get("metadata")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        o.add("index-metadata", "metadata is not an object")
        return None
    if "total_size" not in meta:
        return None
    total = meta["total_size"]
    if isinstance(total, bool) or not isinstance(total, int):
        o.add("index-total-size", f"metadata.total_size {total!r} is not a non-negative integer")
        return None
    return total


def _tensors(
    root: Path,
    shards: dict[str, str],
    mapped: dict[str, str],
    listing: dict[str, ScannedFile],
    total: int | None,
    o: _Out,
    options: ScanOptions,
) -> None:
    """Each tensor of the index against the headers of the safetensors shards."""
    held: dict[str, list[str]] = {}  # tensor -> shards that hold it
    sizes: dict[str, int | None] = {}
    complete = True
    checked: set[str] = set()
    for shard, path in shards.items():
        if path not in listing or listing[path].format != "safetensors":
            complete = False
            continue
        tensors = _shard_tensors(root, path, options)
        if tensors is None:
            o.add(
                "index-shard-unchecked",
                f"the tensors of shard '{_show(shard)}' are not checked: its header does not"
                " read (see its own findings)",
                "info",
            )
            complete = False
            continue
        checked.add(shard)
        for t, size in tensors.items():
            held.setdefault(t, []).append(shard)
            sizes[t] = size
    for tensor, shard in mapped.items():
        holders = held.get(tensor, [])
        if shard in holders or shard not in checked:
            continue
        if holders:
            o.add(
                "index-tensor-wrong-shard",
                f"the index puts tensor '{_show(tensor)}' in '{_show(shard)}', but"
                f" '{_show(holders[0])}' holds it",
            )
        elif complete:
            o.add(
                "index-tensor-missing",
                f"tensor '{_show(tensor)}' is in no shard (the index names '{_show(shard)}')",
            )
        else:
            o.add(
                "index-tensor-missing",
                f"tensor '{_show(tensor)}' is not in '{_show(shard)}', which the index names",
            )
    for tensor, holders in held.items():
        if len(holders) > 1:
            o.add(
                "index-tensor-duplicate",
                f"tensor '{_show(tensor)}' is in {len(holders)} shards: "
                + ", ".join(f"'{_show(h)}'" for h in holders[:4]),
            )
        if tensor not in mapped:
            o.add(
                "index-tensor-unlisted",
                f"shard '{_show(holders[0])}' holds tensor '{_show(tensor)}', which the index"
                " does not list",
            )
    if total is not None and complete and all(s is not None for s in sizes.values()):
        actual = sum(s for s in sizes.values() if s is not None)
        if actual != total:
            o.add(
                "index-total-size",
                f"metadata.total_size is {total}, the shards' tensors add up to {actual} bytes",
            )


def _shard_tensors(root: Path, path: str, options: ScanOptions) -> dict[str, int | None] | None:
    """The tensors a safetensors shard holds, with their byte sizes; None if unreadable."""
    try:
        src = open_source(root, path, options, "shard")
    except InputError:
        return None
    try:
        header, _ = read_header(src, path)
    except (InputError, OSError):
        return None
    finally:
        src.close()
    if header is None or not header.parsed:
        return None
    return header.tensors
