"""Code that loaders run: ``*.py`` files, and ``auto_map`` in ``config.json`` and its kin.

Transformers (``trust_remote_code=True``) and diffusers import the Python
files a model folder ships, named by ``auto_map`` in ``config.json``,
``tokenizer_config.json``, ``preprocessor_config.json`` (any JSON file, here:
the key is what counts) and by ``custom_pipelines``. They are reported so a
person or a policy decides; they are not errors in themselves.

* :func:`check_code_files` (the folder): every ``*.py``, ``*.pyc``,
  ``*.pyo`` and ``*.pyw`` file is a warning (``code-python-file``): code
  that runs with ``trust_remote_code`` or whenever it is imported. Python
  finds modules by name, so here the name is what counts. So is every
  ``*.so`` and ``*.pyd`` (``code-native-module``): an extension module that
  any import of its name loads, a pickle's ``GLOBAL`` among them.
* :func:`check_json` (each JSON file): the top-level keys are found by a
  token walk (strings, brackets, commas and colons; values are not built),
  and the values of ``auto_map`` and ``custom_pipelines`` are parsed. Each
  is a warning naming the modules and classes (``code-auto-map``,
  ``code-custom-pipeline``); a reference of the ``repo--module.Class`` form
  loads code from another repository (``code-auto-map-remote``, a warning
  naming it); a module that is not a plain module name (``..``, a slash, a
  backslash) reaches outside the folder (``code-auto-map-path``, an error).
  A JSON object with ``class_name`` and ``config`` at the top is a Keras
  model config and is checked as one. At most :data:`MAX_JSON` bytes are
  read (a larger file is a warning: not examined); other JSON yields nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScannedFile, ScanOptions, Source

__all__ = ["CODE_SUFFIXES", "NATIVE_SUFFIXES", "check_code_files", "check_json"]

CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw")
#: Native extension modules: ``import name`` loads ``name.so`` (or
#: ``name.cpython-311-x86_64-linux-gnu.so``, ``name.pyd`` on Windows) from
#: any folder on ``sys.path``, and a pickle's ``GLOBAL`` is such an import.
NATIVE_SUFFIXES = (".so", ".pyd")
MAX_JSON = 64 << 20
#: The most bytes of one ``auto_map`` / ``custom_pipelines`` value parsed.
MAX_VALUE = 1 << 20
MAX_KEY = 4096
_TARGETS = ("auto_map", "custom_pipelines")
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]', re.DOTALL)
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def check_code_files(
    root: Path, files: Sequence[ScannedFile], options: ScanOptions
) -> list[FormatFinding]:
    out: list[FormatFinding] = []
    for f in files:
        if f.name.lower().endswith(NATIVE_SUFFIXES):
            out.append(
                FormatFinding(
                    f.name,
                    f.format,
                    "code-native-module",
                    "native extension module: importing it (a pickle's import is one) "
                    "runs its machine code",
                    severity="warning",
                )
            )
        elif f.name.lower().endswith(CODE_SUFFIXES):
            compiled = f.name.lower().endswith((".pyc", ".pyo"))
            what = "compiled Python bytecode" if compiled else "Python code"
            out.append(
                FormatFinding(
                    f.name,
                    f.format,
                    "code-python-file",
                    f"{what}: it runs with trust_remote_code, or whenever it is imported",
                    severity="warning",
                )
            )
    return out


def _top_level(data: bytes) -> list[tuple[str, int, int, int]]:
    """(key, key offset, value start, value end) of each top-level key of a JSON object."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body[:1] != b"{":
        return []
    out: list[tuple[str, int, int, int]] = []
    depth = 0
    expect_key = False
    key: str | None = None
    key_at = 0
    value_at: int | None = None
    for m in _TOKEN.finditer(data, len(data) - len(body)):
        c = data[m.start()]
        if c == 0x22:  # a string
            if depth == 1 and expect_key:
                raw = m.group()
                key = None
                if len(raw) <= MAX_KEY:
                    try:
                        decoded = json.loads(raw)
                    except ValueError:
                        decoded = None
                    key = decoded if isinstance(decoded, str) else None
                key_at = m.start()
                expect_key = False
            continue
        if c in b"{[":
            depth += 1
            if depth == 1:
                expect_key = c == 0x7B
        elif c in b"}],":
            if depth == 1 and value_at is not None and key is not None:
                out.append((key, key_at, value_at, m.start()))
                value_at = None
            if c == 0x2C:
                if depth == 1:
                    expect_key = True
            else:
                depth -= 1
                if depth <= 0:
                    break
        elif c == 0x3A and depth == 1:  # a colon
            value_at = m.end()
    return out


def check_json(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    if src.size > MAX_JSON:
        return [
            FormatFinding(
                name,
                "json",
                "code-json-too-large",
                f"a {src.size}-byte JSON file (more than {MAX_JSON}): auto_map not ruled out",
                severity="warning",
            )
        ]
    data = src.read(0, src.size)
    keys = _top_level(data)
    found: list[FormatFinding] = []
    names = {k for k, _, _, _ in keys}
    if "class_name" in names and "config" in names:
        from provenance.formats._keras import check_keras_config

        found.extend(check_keras_config(data, file=name, member=None, options=options))
    for key, at, start, end in keys:
        if key not in _TARGETS:
            continue
        raw = data[start:end]
        value: Any = None
        problem = None
        if len(raw) > MAX_VALUE:
            problem = f"a {len(raw)}-byte value (more than {MAX_VALUE}): not examined"
        else:
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError) as e:
                problem = f"not valid JSON ({_show(str(e), 80)})"
        if problem is not None:
            found.append(
                FormatFinding(
                    name,
                    "json",
                    "code-auto-map-invalid",
                    f"'{key}' {problem}: code references not ruled out",
                    at,
                )
            )
            continue
        if key == "auto_map":
            found.extend(_auto_map(name, value, at))
        else:
            found.extend(_pipelines(name, value, at))
    return found


def _references(value: Any) -> tuple[list[str], bool]:
    """The class references in an auto_map value, and whether it had only strings/nulls."""
    if isinstance(value, str):
        return [value], True
    if value is None:
        return [], True
    if isinstance(value, list):
        out: list[str] = []
        ok = True
        for v in value[:64]:
            refs, good = _references(v) if not isinstance(v, list) else ([], False)
            out.extend(refs)
            ok = ok and good
        return out, ok and len(value) <= 64
    return [], False


def _reference(name: str, key: str, ref: str, at: int, code: str, what: str) -> list[FormatFinding]:
    out: list[FormatFinding] = []
    repo = None
    local = ref
    if "--" in ref:
        repo, local = ref.split("--", 1)
        out.append(
            FormatFinding(
                name,
                "json",
                f"{code}-remote",
                f"{what} '{_show(key, 60)}' loads '{_show(local, 120)}' from another repository,"
                f" '{_show(repo, 120)}': code outside this model and its signature",
                at,
                severity="warning",
            )
        )
    module = local.rsplit(".", 1)[0] if "." in local else local
    if not _MODULE.match(local) or ".." in local or "/" in module or "\\" in module:
        out.append(
            FormatFinding(
                name,
                "json",
                f"{code}-path",
                f"{what} '{_show(key, 60)}' names '{_show(ref, 120)}', not a plain"
                " module.Class: it can reach code outside the folder",
                at,
            )
        )
    return out


def _auto_map(name: str, value: Any, at: int) -> list[FormatFinding]:
    if isinstance(value, list):  # an old tokenizer_config.json: [slow, fast]
        value = {"AutoTokenizer": value}
    if not isinstance(value, dict):
        return [
            FormatFinding(
                name,
                "json",
                "code-auto-map-invalid",
                "'auto_map' is not an object: code references not ruled out",
                at,
            )
        ]
    out: list[FormatFinding] = []
    pairs: list[str] = []
    for auto, target in list(value.items())[:256]:
        refs, ok = _references(target)
        if not ok:
            out.append(
                FormatFinding(
                    name,
                    "json",
                    "code-auto-map-invalid",
                    f"auto_map '{_show(auto, 60)}' is not a class reference or a list of them",
                    at,
                )
            )
        for ref in refs:
            out.extend(_reference(name, auto, ref, at, "code-auto-map", "auto_map"))
        pairs.append(f"{_show(auto, 40)} -> {', '.join(_show(r, 80) for r in refs) or 'nothing'}")
    more = f" and {len(value) - 256} more" if len(value) > 256 else ""
    out.insert(
        0,
        FormatFinding(
            name,
            "json",
            "code-auto-map",
            f"auto_map maps {'; '.join(pairs) or 'nothing'}{more}: Python code from the model"
            " folder that runs with trust_remote_code",
            at,
            severity="warning",
        ),
    )
    return out


def _pipelines(name: str, value: Any, at: int) -> list[FormatFinding]:
    if not isinstance(value, dict):
        return [
            FormatFinding(
                name,
                "json",
                "code-auto-map-invalid",
                "'custom_pipelines' is not an object: code references not ruled out",
                at,
            )
        ]
    out: list[FormatFinding] = []
    pairs: list[str] = []
    for task, spec in list(value.items())[:256]:
        impl = spec.get("impl") if isinstance(spec, dict) else None
        if not isinstance(impl, str):
            out.append(
                FormatFinding(
                    name,
                    "json",
                    "code-auto-map-invalid",
                    f"custom_pipelines '{_show(task, 60)}' has no 'impl' class reference",
                    at,
                )
            )
            continue
        out.extend(_reference(name, task, impl, at, "code-custom-pipeline", "custom pipeline"))
        pairs.append(f"{_show(task, 40)} -> {_show(impl, 80)}")
    out.insert(
        0,
        FormatFinding(
            name,
            "json",
            "code-custom-pipeline",
            f"custom_pipelines maps {'; '.join(pairs) or 'nothing'}: Python code that runs with"
            " trust_remote_code",
            at,
            severity="warning",
        ),
    )
    return out
