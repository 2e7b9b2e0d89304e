"""File formats, detected by content: the foundation of format policies and scans.

::

    from provenance.formats import detect

    found = detect("model/pytorch_model.bin")
    found.format        # "pytorch-zip"
    found.pickle_based  # True: loading it unpickles
    found.detail        # "zip with archive/data.pkl"

:func:`detect` opens a path (never following a link, never blocking on a
FIFO; anything but a regular file is refused with an
:class:`~provenance.errors.InputError`), :func:`detect_fd` examines a
descriptor the caller holds (the one it hashes, so the bytes examined are
the bytes verified), :func:`detect_buffer` bytes a verified loader holds.
All read a bounded prefix (64 KiB), and for zips a
bounded tail and central directory: about 1.2 MiB at the very most, whatever
the file's size. A hostile file yields a :class:`Detected`, never another
exception.

The file name only breaks ties the content leaves open: ``.json`` for a
JSON file too long to parse here, ``.onnx`` for protobuf. The rules are
tried in this order: an empty file; ``PROTO`` at byte 0; ``PK`` at byte 0
(the zip family); the pickle walk; then the other signatures; the name;
text. A pickle is looked for before the other signatures because a file can
be both (a GGUF whose counts are opcodes, a tar whose first member name is
a pickle, an HDF5 whose user block is one) and ``pickle.load`` runs it.

* ``pickle``: ``PROTO`` (``\\x80`` 0..5) at byte 0; otherwise a stream whose
  opcodes, walked from byte 0 with their stack effects, make a pickle (see
  ``_pickle.py``: a whole valid stream, or one that calls something before
  it stops or turns invalid). Joblib files are pickles; a gzip, zlib (as
  joblib writes), xz, lzma or bzip2 stream whose inflated start is a pickle
  is ``pickle`` too ("gzip-compressed pickle protocol 4"), since the loaders
  that read such files inflate them first.
* ``pytorch-legacy``: ``torch.save`` before 1.6: a protocol 2+ pickle of its
  magic number at byte 0; or the tar archive early versions wrote (members
  ``sys_info``, ``pickle``, ``storages``, ``tensors``).
* ``pytorch-zip`` (``PK`` at byte 0): a zip with ``data.pkl`` or
  ``constants.pkl`` at its root or one folder down (``archive/data.pkl``).
* ``keras``: a zip with ``config.json`` and ``metadata.json`` or
  ``model.weights.h5`` at its root.
* ``npz``: a zip of ``.npy`` members only; each member's header is read
  (stored or deflated members, within budgets) for an object dtype.
* ``zip``: any other zip, or one whose directory could not be read whole
  (more than 4096 entries or 512 KiB of directory, or malformed): then
  ``pickle_based`` is True, since a ``data.pkl`` is not ruled out.
* ``numpy``: ``\\x93NUMPY``; ``pickle_based`` when the header's dtype holds
  Python objects (``O``, or a structured dtype with such a field), or when
  the header could not be read (over 10,000 bytes, truncated, not the
  literals NumPy writes).
* ``gzip``: ``\\x1f\\x8b``, other than a gzip-compressed pickle (above);
  the detail says what its inflated start looks like (a tar archive, text).
* ``gguf``: ``GGUF`` and a version from 1 to 255 (either byte order).
* ``hdf5``: its signature at byte 0, 512, 1024, ... up to 32768 (a user
  block before the superblock).
* ``tflite``: ``TFL3`` at byte 4 and a root offset inside the file.
* ``safetensors``: an 8-byte little-endian header length N with
  2 <= N <= 100 MiB and N <= size - 8, then ``{`` and, after blanks, ``"``
  or ``}``. Only that start is read; the header itself is the scanner's.
* ``tar``: a ustar or v7 header at byte 0 whose checksum is right.
* ``onnx``: its first protobuf fields are ModelProto's (known field
  numbers, each with its wire type, lengths within the file, ``ir_version``
  from 1 to 100). A file not named ``*.onnx`` (``onnx.load`` takes any
  name) must also start with ``ir_version`` and hold a graph among them.
* ``json``: text whose first character is ``{`` or ``[`` and which parses
  whole; one longer than 64 KiB is ``json`` only when named ``*.json``.
* ``text``: UTF-8 (a leading BOM allowed) without NUL or other control
  characters than tab, newline, vertical tab, form feed, carriage return
  and escape, in the first 64 KiB; an empty file is ``text``.
* ``unknown``: anything else.

Known limits:

* Only the start of a file is examined for most formats: a text file with
  binary after 64 KiB is ``text``; an HDF5 superblock after 32 KiB, a zip
  appended to another file (``zipfile`` finds one; ``torch.load`` and
  ``numpy.load`` look at byte 0) are not seen.
* Keras ``Lambda`` layers (marshalled bytecode in ``config.json``, run when
  loaded with ``safe_mode=False``) and Lambda layers in legacy HDF5 models
  are not examined: that needs the member inflated or HDF5 parsed, which is
  the scanner's job.
* A bzip2 stream's first block may be larger than the bytes examined; its
  content is then not seen ("bzip2-compressed content past the bytes
  examined"), and a bzip2-compressed pickle goes unnoticed. An ``.lzma``
  stream is recognised only with the default properties byte (``0x5d``, what
  Python's ``lzma`` and joblib write). An xz or lzma stream whose decoder
  asks for more than 256 MiB is not inflated; it is ``unknown`` with
  ``pickle_based`` True (not ruled out).
* ``pickle_based`` says whether the format's usual loader can run code
  through pickle; it says nothing of what a particular pickle does (the
  scanner's opcode allowlist does).
"""

from __future__ import annotations

from provenance.formats._detect import (
    FORMATS,
    PICKLE_BASED,
    Detected,
    detect,
    detect_buffer,
    detect_fd,
)
from provenance.formats._scan import FormatFinding, ScannedFile, ScanReport, scan

__all__ = [
    "FORMATS",
    "PICKLE_BASED",
    "Detected",
    "FormatFinding",
    "ScanReport",
    "ScannedFile",
    "detect",
    "detect_buffer",
    "detect_fd",
    "scan",
]
