"""The format names: the stable strings policies use, importable without the detectors.

A policy file is checked against these names when it loads; keeping them
here lets that check run without importing every format's reader.
"""

from __future__ import annotations

__all__ = ["FORMATS", "PICKLE_BASED"]

#: Every format name :func:`~provenance.formats.detect` returns.
FORMATS: tuple[str, ...] = (
    "safetensors",
    "pickle",
    "pytorch-zip",
    "pytorch-legacy",
    "numpy",
    "npz",
    "gguf",
    "onnx",
    "keras",
    "hdf5",
    "tflite",
    "zip",
    "tar",
    "gzip",
    "json",
    "text",
    "unknown",
)

#: Formats that always unpickle when loaded (their ``pickle_based`` is always
#: True). ``numpy``, ``npz`` and ``zip`` files are pickle-based one by one:
#: read :attr:`Detected.pickle_based`, not this set, to decide about a file.
PICKLE_BASED: frozenset[str] = frozenset({"pickle", "pytorch-zip", "pytorch-legacy"})
