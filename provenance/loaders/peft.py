"""PEFT adapters (LoRA and the rest) from verified bytes.

Serving stacks load adapters at run time, long after the base model was
checked, often from folders that change (a new fine-tune dropped beside the
old one). PEFT's own loaders open ``adapter_config.json`` and
``adapter_model.safetensors`` by path; here the adapter folder is verified
first (:func:`provenance.open_verified`, under its own policy or verifier),
then:

* the adapter's weights are a state dict of tensors over the verified
  memory, handed to PEFT's ``set_peft_model_state_dict`` (or to
  transformers' ``load_adapter(adapter_state_dict=...)``);
* ``adapter_config.json`` is read by PEFT's own ``PeftConfig.from_pretrained``
  from a private copy of its verified bytes, so its checks and defaults
  are PEFT's;
* nothing is fetched, and the base model is touched only once the adapter
  verified: a folder that fails its policy leaves the model as it was.

::

    from provenance.loaders import peft as verified

    model = verified.from_pretrained(base, "adapters/support-bot/", policy="adapters.yaml")
    verified.load_adapter(model, "adapters/legal/", policy="adapters.yaml", adapter_name="legal")

Three entry points, as PEFT and transformers name them:
:func:`from_pretrained` wraps a base model in a ``PeftModel``
(``PeftModel.from_pretrained``); :func:`load_adapter` adds an adapter to a
``PeftModel`` (``PeftModel.load_adapter``) or, in place, to a transformers
model (``PreTrainedModel.load_adapter``).
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError
from provenance.loaders._hf import (
    library,
    load_weights,
    opened,
    private_copy,
    resolve_policy,
)

if TYPE_CHECKING:
    from provenance.loading import VerifiedModel
    from provenance.policy import Policy
    from provenance.signing import Verifier

__all__ = ["from_pretrained", "load_adapter"]

_CONFIG = "adapter_config.json"
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def from_pretrained(
    model: Any,
    path: str | os.PathLike[str] | VerifiedModel,
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    attestations: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    adapter_name: str = "default",
    is_trainable: bool = False,
    autocast_adapter_dtype: bool = True,
) -> Any:
    """``PeftModel.from_pretrained(model, path)``, from the adapter's verified bytes.

    Returns the ``PeftModel`` (of the class for the adapter's task type,
    ``PeftModelForCausalLM`` and so on) wrapping ``model``. Give exactly one
    of ``policy`` or ``verifier``; they, and ``signature``, ``attestations``
    and ``workers`` (:func:`provenance.open_verified`'s), apply to the
    adapter folder.
    """
    config, state = _verified_adapter(path, policy, verifier, signature, attestations, workers)
    peft = library("peft")
    if config.is_prompt_learning and is_trainable:
        raise UsageError("a prompt-learning adapter cannot be loaded trainable (PEFT's rule)")
    config.inference_mode = not is_trainable
    peft_cls = peft.MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, peft.PeftModel)
    wrapped = peft_cls(model, config, adapter_name, autocast_adapter_dtype=autocast_adapter_dtype)
    _set_weights(peft, wrapped, state, adapter_name, autocast_adapter_dtype)
    return wrapped


def load_adapter(
    model: Any,
    path: str | os.PathLike[str] | VerifiedModel,
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    attestations: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    adapter_name: str = "default",
    is_trainable: bool = False,
    autocast_adapter_dtype: bool = True,
) -> Any:
    """Add the verified adapter at ``path`` to ``model`` as ``adapter_name``; return ``model``.

    ``model`` is a ``PeftModel`` (the adapter is added beside the others,
    not made active: ``set_adapter`` chooses) or a transformers model
    (transformers' own PEFT integration injects it in place). An adapter of
    that name already there is refused: its config would stay, and the new
    weights would be read against it.
    """
    peft = library("peft")
    is_peft = isinstance(model, peft.PeftModel)
    if not is_peft and not callable(getattr(model, "load_adapter", None)):
        raise UsageError(
            "model must be a PeftModel or a transformers model (PreTrainedModel); "
            "for another torch module, use from_pretrained to wrap it"
        )
    names = getattr(model, "peft_config", None) or {}
    if adapter_name in names:
        raise UsageError(
            f"the model already has an adapter named {adapter_name!r}; delete it first "
            "(delete_adapter) or choose another name"
        )
    config, state = _verified_adapter(path, policy, verifier, signature, attestations, workers)
    if not is_peft:
        model.load_adapter(
            adapter_name=adapter_name,
            peft_config=config,
            adapter_state_dict=state,
            is_trainable=is_trainable,
        )
        return model
    check = getattr(model, "_check_new_adapter_config", None)
    if check is not None:
        check(config, is_trainable=is_trainable)
    config.inference_mode = not is_trainable
    model.add_adapter(adapter_name, config, autocast_adapter_dtype=autocast_adapter_dtype)
    if is_trainable:
        model.set_requires_grad(adapter_name)
    _set_weights(peft, model, state, adapter_name, autocast_adapter_dtype)
    return model


def _verified_adapter(
    path: str | os.PathLike[str] | VerifiedModel,
    policy: Policy | str | os.PathLike[str] | None,
    verifier: Verifier | None,
    signature: str | os.PathLike[str] | None,
    attestations: str | os.PathLike[str] | None,
    workers: int | None,
) -> tuple[Any, dict[str, Any]]:
    """The adapter's PEFT config and state dict, once the folder verified."""
    rules = resolve_policy(path, policy, verifier)
    peft = library("peft")
    with opened(
        path, rules, verifier, signature=signature, attestations=attestations, workers=workers
    ) as vm:
        signed = set(vm.files)
        if vm.single or _CONFIG not in signed:
            raise InputError(f"'{vm.path}' has no signed {_CONFIG}: it is not a PEFT adapter")
        with private_copy(vm, [_CONFIG]) as folder:
            config = peft.PeftConfig.from_pretrained(os.fspath(folder))
        for name in _WEIGHTS:
            if name in signed:
                return config, load_weights(vm, name)
        raise InputError(
            f"'{vm.path}' has no signed adapter weights ({' or '.join(_WEIGHTS)})",
            code="no-weights",
        )


def _set_weights(
    peft: Any, model: Any, state: dict[str, Any], adapter_name: str, autocast: bool
) -> None:
    """The verified tensors into the adapter ``adapter_name`` of the PeftModel ``model``.

    As ``PeftModel.load_adapter`` does after reading its file: PEFT maps the
    saved keys (adapter name, v5 weight conversions) itself. Adapter weights
    the file lacks are reported as PEFT reports them, with a warning.
    """
    result = peft.set_peft_model_state_dict(model, state, adapter_name=adapter_name)
    if hasattr(model.base_model, "_cast_adapter_dtype"):
        model.base_model._cast_adapter_dtype(
            adapter_name=adapter_name, autocast_adapter_dtype=autocast
        )
    mapping = importlib.import_module("peft.mapping")
    prefix = mapping.PEFT_TYPE_TO_PREFIX_MAPPING.get(model.peft_config[adapter_name].peft_type, "")
    # PEFT's own filter matches the adapter name anywhere in a key ("b" is in
    # "base_model"); the name is a whole component of the key.
    missing = [k for k in result.missing_keys if prefix in k and f".{adapter_name}." in k]
    if missing:
        warnings.warn(
            f"Found missing adapter keys while loading the checkpoint: {missing}.",
            stacklevel=3,
        )
