"""The JSON Schemas shipped as ``provenance._schemas`` (the `schemas/` folder), read cheaply."""

from __future__ import annotations

import importlib
import os

__all__ = ["read"]


def read(name: str) -> str:
    """One schema file's text, through the package's own loader (as ``pkgutil.get_data``).

    Not ``importlib.resources``: importing it costs about 9 ms (it pulls in
    ``tempfile`` and ``shutil``), a tenth of what a policy adds at start-up.
    """
    if os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        raise ValueError(f"not a schema file name: {name!r}")
    package = importlib.import_module("provenance._schemas")
    spec = package.__spec__
    loader = spec.loader if spec is not None else None
    get_data = getattr(loader, "get_data", None)
    if get_data is None or package.__file__ is None:  # pragma: no cover - any real install
        raise RuntimeError("provenance._schemas has no loader to read its files")
    data: bytes = get_data(os.path.join(os.path.dirname(package.__file__), name))
    return data.decode("utf-8")
