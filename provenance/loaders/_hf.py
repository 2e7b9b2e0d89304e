"""What the Hugging Face loaders (transformers, PEFT) share: the policy, the private copy, code.

Both libraries read a model folder by path, file by file, whenever they
like. Handing them the verified folder would let them read bytes nobody
verified (a file swapped after the check, an unsigned file the policy
tolerates). So the loaders hand the weights over as tensors built over the
verified memory, and every other file the libraries read comes from a
*private copy*: a fresh folder only this process can open (``mkdtemp``,
0700), holding the verified bytes of the signed files and nothing else.
An unsigned file is not in it, so it cannot be read, whatever the policy
tolerated.

Remote code (``trust_remote_code=True``) is the one thing the policy must
allow by name (``loading.trust_remote_code``): the model's own Python runs
with this process's rights. When it is allowed, every ``.py`` file in the
model folder must be signed, whatever ``files.allow_unsigned`` lets pass,
and every module an ``auto_map`` names must be one of them.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError, VerificationError

if TYPE_CHECKING:
    from provenance.loading import VerifiedModel
    from provenance.policy import Policy
    from provenance.signing import Verifier

__all__ = [
    "PRIVATE_PREFIX",
    "WEIGHT_SUFFIXES",
    "check_kwargs",
    "check_remote_code",
    "json_object",
    "library",
    "open_model",
    "opened",
    "private_copy",
    "refuse_remote_code",
    "resolve_policy",
]

#: The name every private copy's folder starts with (under the temporary folder).
PRIVATE_PREFIX = "provenance-verified-"

#: Files left out of the private copy: weights and other tensor containers,
#: which the loaders hand over as tensors (or not at all). Nothing a library
#: reads beside the weights (configs, tokenizers, templates, code) ends so.
WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".h5",
    ".msgpack",
    ".onnx",
    ".onnx_data",
    ".ot",
    ".tflite",
    ".npz",
    ".npy",
    ".pkl",
    ".pickle",
    ".keras",
)

#: Weights files that hold pickle (torch.save's zip or a bare pickle).
_PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

#: Keyword arguments that make the libraries fetch, or read from somewhere
#: other than the folder they are given, and so could load unverified bytes.
#: Each is refused with the reason shown.
HUB_KWARGS: Mapping[str, str] = {
    "revision": "selects a revision on the Hub; the verified folder is the revision",
    "code_revision": "selects a revision of remote code on the Hub",
    "cache_dir": "reads from a download cache, not the verified folder",
    "force_download": "downloads from the Hub",
    "resume_download": "downloads from the Hub",
    "proxies": "downloads from the Hub",
    "token": "authenticates to the Hub",
    "use_auth_token": "authenticates to the Hub",
    "subfolder": "reads another folder; sign and load that folder itself",
    "mirror": "downloads from a mirror",
    "local_files_only": "is always True here",
}


def resolve_policy(
    path: str | os.PathLike[str] | VerifiedModel,
    policy: Policy | str | os.PathLike[str] | None,
    verifier: Verifier | None,
) -> Policy | None:
    """The policy as an object (a file is loaded once, here), or None with a verifier.

    The loaders need the object itself: the ``loading:`` section decides
    what they may do, and :func:`provenance.open_verified` is then given the
    same object, so the file is read once and both act on one policy.

    ``path`` may be a :class:`~provenance.loading.VerifiedModel` already
    open (a model and its tokenizer from one verification, one read): then
    ``policy`` is optional, and when given must be the one it was opened
    under (its decision records the policy's digest), since it is what
    decides whether remote code may run.
    """
    from provenance.loading import VerifiedModel

    if isinstance(path, VerifiedModel):
        if verifier is not None:
            raise UsageError("a VerifiedModel is verified already: give no verifier")
        rules = _policy(policy) if policy is not None else None
        if rules is not None and (
            path.decision is None or path.decision.policy_digest != rules.digest
        ):
            raise UsageError(
                f"the VerifiedModel of '{path.path}' was not opened under the policy "
                f"{rules.source}; its rules (remote code among them) cannot be taken from it",
                code="policy-mismatch",
            )
        return rules
    if (policy is None) == (verifier is None):
        raise UsageError("give exactly one of policy= or verifier=")
    return _policy(policy) if policy is not None else None


def _policy(policy: Policy | str | os.PathLike[str]) -> Policy:
    from provenance.policy._model import Policy

    if isinstance(policy, Policy):
        return policy
    from provenance.policy._load import load

    return load(policy)


@contextmanager
def opened(
    path: str | os.PathLike[str] | VerifiedModel,
    rules: Policy | None,
    verifier: Verifier | None,
    *,
    signature: str | os.PathLike[str] | None,
    attestations: str | os.PathLike[str] | None,
    workers: int | None,
) -> Iterator[VerifiedModel]:
    """The verified model: opened here and closed on exit, or the caller's, left open."""
    from provenance.loading import VerifiedModel

    if isinstance(path, VerifiedModel):
        if signature is not None or attestations is not None or workers is not None:
            raise UsageError(
                "signature=, attestations= and workers= are for verifying; "
                "a VerifiedModel is verified already"
            )
        yield path
        return
    with open_model(
        path, rules, verifier, signature=signature, attestations=attestations, workers=workers
    ) as vm:
        yield vm


def open_model(
    path: str | os.PathLike[str],
    rules: Policy | None,
    verifier: Verifier | None,
    *,
    signature: str | os.PathLike[str] | None,
    attestations: str | os.PathLike[str] | None,
    workers: int | None,
) -> VerifiedModel:
    """:func:`provenance.open_verified`, with a denial of pickle weights said as such.

    The policy's format rule names the format it detected (``pytorch-zip``),
    which a person who wrote ``deny: [pickle]`` may not connect with
    ``pytorch_model.bin``; the loader knows what those files are for.
    """
    from provenance.loading import open_verified
    from provenance.policy import PolicyDenied

    try:
        return open_verified(
            path,
            policy=rules,
            verifier=verifier if rules is None else None,
            signature=signature,
            attestations=attestations,
            workers=workers,
        )
    except PolicyDenied as e:
        pickled = [
            r.subject
            for r in e.decision.errors
            if r.code == "format-denied" and r.subject and r.subject.endswith(_PICKLE_WEIGHTS)
        ]
        if not pickled:
            raise
        raise PolicyDenied(
            f"{e.reason}; {', '.join(pickled[:5])}: pickle-based weights, which the policy's "
            "file formats refuse (unpickling runs code); remove or convert them to "
            "safetensors, and sign again",
            e.details,
            code=e.code,
            decision=e.decision,
        ) from e


def library(name: str) -> Any:
    """The module ``name`` (transformers, peft), typed ``Any``: they ship no types to rely on."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise UsageError(
            f"{name} is not installed (pip install 'ml-provenance[transformers]', with the "
            f"torch build for your machine): {e}",
            code="framework-missing",
        ) from None


def refuse_remote_code(rules: Policy | None, asked: object) -> bool:
    """Whether remote code may run: asked for, and allowed by the policy (raise if not).

    Checked before anything is read, so a model that needs code the policy
    forbids costs nothing. A plain verifier checks signatures only: it never
    allows remote code.
    """
    if asked is None or asked is False:
        return False
    if asked is not True:
        raise UsageError(f"trust_remote_code must be True or False, not {asked!r}")
    if rules is None:
        raise UsageError(
            "trust_remote_code=True needs a policy that allows it (loading: "
            "{trust_remote_code: true}); a verifier checks signatures only",
            code="remote-code-denied",
        )
    if not rules.loading.trust_remote_code:
        raise UsageError(
            f"the policy {rules.source} does not allow the model's own code to run "
            "(trust_remote_code=True); it would need loading: {trust_remote_code: true}",
            code="remote-code-denied",
        )
    return True


def check_kwargs(kwargs: Mapping[str, Any], refused: Mapping[str, str]) -> None:
    """Refuse the keyword arguments that could load bytes nobody verified."""
    for name, why in {**HUB_KWARGS, **refused}.items():
        if name not in kwargs:
            continue
        if name == "local_files_only" and kwargs[name] is True:
            continue
        raise UsageError(f"{name}= is not accepted by a verified load: it {why}")
    if isinstance(kwargs.get("config"), (str, os.PathLike)):
        raise UsageError(
            "config= naming a file or folder is not accepted by a verified load: the config "
            "is the verified folder's (or pass a config object)"
        )


def json_object(vm: VerifiedModel, name: str) -> dict[str, Any]:
    """A signed JSON file's object, parsed from the verified bytes."""
    try:
        doc = json.loads(vm.read(name))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"'{name}' of '{vm.path}' is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InputError(f"'{name}' of '{vm.path}' is not a JSON object")
    return doc


def _python_files(root: Path) -> Iterator[str]:
    """Every ``*.py`` under ``root``, as a relative POSIX name (names only: nothing is read).

    Version-control metadata (``.git``) is not the model's and is never imported.
    """
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unlisted, and so never in the private copy either
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git":
                    stack.append((Path(entry.path), name + "/"))
            elif entry.name.endswith(".py"):
                yield name


def _auto_map_refs(doc: Mapping[str, Any]) -> Iterator[str]:
    auto_map = doc.get("auto_map")
    if not isinstance(auto_map, dict):
        return
    for value in auto_map.values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str):
                yield ref


def check_remote_code(vm: VerifiedModel) -> None:
    """Refuse remote code that is not all signed, or that lives outside the model.

    The private copy holds only signed files, so unsigned code could never be
    imported from it; this says so plainly instead of letting transformers
    fail on a missing module. An ``auto_map`` entry ``repo--module.Class``
    names another repository's code, which nothing here verified.
    """
    signed = set(vm.files)
    unsigned = sorted(n for n in _python_files(vm.path) if n not in signed)
    if unsigned:
        raise VerificationError(
            f"'{vm.path}' holds Python files the signature does not list ("
            + ", ".join(unsigned[:10])
            + (" ..." if len(unsigned) > 10 else "")
            + "); with trust_remote_code every .py of the model must be signed",
            unsigned,
            code="remote-code-unsigned",
        )
    for name in vm.files:
        if "/" in name or not name.endswith("config.json"):
            continue
        for ref in _auto_map_refs(json_object(vm, name)):
            if "--" in ref:
                raise VerificationError(
                    f"'{name}' of '{vm.path}' names code in another repository ({ref}); "
                    "only the model's own signed code may run",
                    code="remote-code-elsewhere",
                )
            module = ref.rpartition(".")[0]
            if f"{module}.py" not in signed:
                raise VerificationError(
                    f"'{name}' of '{vm.path}' names the module {module}, and "
                    f"'{module}.py' is not a signed file of the model",
                    code="remote-code-unsigned",
                )


@contextmanager
def private_copy(vm: VerifiedModel, names: Iterable[str]) -> Iterator[Path]:
    """A new folder (mode 0700) holding the verified bytes of ``names``; removed on exit.

    Files are created exclusively (never through a link) and written from
    the verified memory, so what a library reads there is what was hashed.
    """
    folder = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        for name in names:
            parts = PurePosixPath(name).parts
            if not parts or any(p in ("", ".", "..") for p in parts) or name.startswith("/"):
                raise InputError(f"'{name}' is not a plain relative name")  # manifests never are
            target = folder.joinpath(*parts)
            if len(parts) > 1:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(vm.buffer(name))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_weights(vm: VerifiedModel, name: str) -> dict[str, Any]:
    """One verified weights file's tensors: safetensors zero-copy, else torch's restricted load.

    A pickle gets here only when the policy let it into the folder; it goes
    through ``torch.load(weights_only=True)`` (tensors and plain containers
    only) over the verified bytes, never the file.
    """
    if name.endswith(".safetensors"):
        from provenance.loaders._st import tensors

        return tensors(vm.buffer(name), name, "torch")
    import io

    torch = importlib.import_module("torch")
    state = torch.load(
        io.BytesIO(vm.buffer(name)), map_location="cpu", weights_only=True, mmap=False
    )
    if not isinstance(state, dict):
        raise InputError(f"'{name}' of '{vm.path}' does not hold a state dict")
    return state
