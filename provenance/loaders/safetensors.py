"""safetensors, loaded from the bytes that were verified: one read, zero copies.

::

    from provenance.loaders import safetensors

    tensors = safetensors.load_file("model.safetensors", policy="policy.yaml")
    tensors = safetensors.load_folder("my-model/", policy="policy.yaml", framework="torch")

Each file is read once into memory of its own, hashed from it and checked
against the signature (:func:`provenance.open_verified`); the header is then
parsed strictly (the format scan's own reader: duplicate keys, overlaps,
gaps, offsets past the end and unknown dtypes are refused) and every tensor
is a view of that memory with the dtype and shape its header gives
(``numpy.frombuffer`` / ``torch.frombuffer``). Results compare equal to the
``safetensors`` package's ``load_file`` of the same file; the difference is
that nothing here reads the file again after it was verified.

The arrays own the memory: dropping them frees it. They are writable, like
``safetensors``'s, and writing to them changes nothing on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provenance.errors import InputError, UsageError

if TYPE_CHECKING:
    from provenance.loading import VerifiedModel
    from provenance.policy import Policy
    from provenance.signing import Verifier

__all__ = ["load_file", "load_folder", "tensors_of"]

Framework = Literal["numpy", "torch"]
_INDEX = ".safetensors.index.json"


def load_file(
    path: str | os.PathLike[str],
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    framework: Framework = "numpy",
) -> dict[str, Any]:
    """The tensors of one verified safetensors file, by name.

    ``path`` is a file of a signed folder (``model.sig`` beside it): then the
    whole folder is verified first, since a policy's rules (unsigned files,
    formats) are about the folder, and this file's tensors are returned; or
    a file signed on its own (``FILE.sig`` beside it, or ``signature``).
    Give exactly one of ``policy`` or ``verifier``.
    """
    from provenance.bundle import SIGNATURE_NAME
    from provenance.loading import open_verified

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"'{p}' is a folder; load it with load_folder")
    model, name = p, p.name
    if signature is None and os.path.lexists(p.parent / SIGNATURE_NAME):
        # A file of a signed folder: the folder's signature governs, even when a
        # FILE.sig lies beside it (one planted with a file the key signed long
        # ago would otherwise let that old file in, past the folder's policy).
        model = p.parent
    with open_verified(model, policy=policy, verifier=verifier, signature=signature) as m:
        return tensors_of(m, [name], framework)


def load_folder(
    path: str | os.PathLike[str],
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    framework: Framework = "numpy",
) -> dict[str, Any]:
    """Every tensor of a verified folder's safetensors weights, as transformers finds them.

    ``model.safetensors`` when there is one; otherwise the shards its index
    (``model.safetensors.index.json``, or the folder's one ``*.safetensors.index.json``)
    names, after the index was checked against them as the format scan
    checks it (every shard present and signed, every tensor in exactly the
    shard the index says, no shard holding a tensor the index does not list);
    otherwise every ``*.safetensors`` file at the top of the folder. A tensor
    name in two files is an error.
    """
    from provenance.loading import open_verified

    if not Path(path).is_dir() and Path(path).exists():
        raise UsageError(f"'{path}' is a file; load it with load_file")
    with open_verified(path, policy=policy, verifier=verifier, signature=signature) as m:
        if m.single:
            raise UsageError(f"'{path}' is a single file; load it with load_file")
        return tensors_of(m, _weights(m), framework)


def tensors_of(
    model: VerifiedModel, names: Iterable[str], framework: Framework = "numpy"
) -> dict[str, Any]:
    """The tensors of the named files of an open verified model, zero-copy over its memory."""
    from provenance.loaders._st import tensors

    out: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name in names:
        got = tensors(model.buffer(name), name, framework)
        for key in got:
            if key in where:
                raise InputError(
                    f"tensor '{key}' is in both '{where[key]}' and '{name}'",
                    code="format-denied",
                )
            where[key] = name
        out.update(got)
    return out


def _weights(m: VerifiedModel) -> list[str]:
    """The files whose tensors make the model, chosen as transformers chooses them."""
    top = [n for n in m.files if "/" not in n]
    if "model.safetensors" in top:
        return ["model.safetensors"]
    indexes = [n for n in top if n.endswith(_INDEX)]
    if "model" + _INDEX in indexes:
        indexes = ["model" + _INDEX]
    if len(indexes) > 1:
        raise InputError(
            f"'{m.path}' holds {len(indexes)} safetensors indexes ({', '.join(sorted(indexes))}) "
            "and no model.safetensors.index.json: which one loads is not clear",
            code="format-denied",
        )
    if indexes:
        return _check_index(m, indexes[0])
    files = sorted(n for n in top if n.endswith(".safetensors"))
    if not files:
        raise InputError(f"'{m.path}' holds no signed safetensors file", code="not-found")
    return files


def _check_index(m: VerifiedModel, index: str) -> list[str]:
    """The shards of ``index``, once the scan's index rules hold on the verified bytes."""
    from provenance.formats import detect_buffer
    from provenance.formats._index import check_indexes
    from provenance.formats._scan import ScannedFile, ScanOptions

    held = {n: m.buffer(n) for n in m.files}
    listing = []
    for n in m.files:
        found = detect_buffer(held[n], n)
        listing.append(ScannedFile(n, found.format, found.detail, found.pickle_based, len(held[n])))
    options = ScanOptions(signed_files=frozenset(m.files), contents=held)
    problems = [
        f
        for f in check_indexes(m.path, listing, options)
        if f.file == index and f.severity != "info"
    ]
    if problems:
        raise InputError(
            f"the index '{index}' does not match its shards: "
            + "; ".join(f.message for f in problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            code="format-denied",
        )
    weight_map = json.loads(m.read(index))["weight_map"]
    return sorted(set(weight_map.values()))
