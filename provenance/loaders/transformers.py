"""Transformers models, tokenizers and configs from verified bytes.

``transformers``' own ``from_pretrained(path)`` opens the folder's files by
path, one at a time, whenever it gets to them: a check of the folder made
before it proves nothing about what it reads. Here the folder is verified
first (:func:`provenance.open_verified`: every signed file read once, hashed
from the memory it was read into, the policy applied), and then:

* the weights are handed over as a state dict of tensors built over that
  verified memory, zero-copy (``from_pretrained(None, config=...,
  state_dict=...)``, the form transformers 5 supports for weights that are
  no file): they are never on disk again;
* every other file transformers reads (``config.json``, tokenizer files,
  ``generation_config.json``, chat templates, and for remote code the
  ``.py`` files) is read from a private copy made from the verified bytes
  (see :mod:`provenance.loaders._hf`), removed before this returns;
* nothing is fetched: no Hub, no cache, and the keyword arguments that
  would read elsewhere (``revision``, ``cache_dir``, ``gguf_file``,
  ``subfolder``, Hub kernels, ...) are refused;
* ``trust_remote_code=True`` is refused unless the policy allows it
  (``loading: {trust_remote_code: true}``), and then every ``.py`` of the
  model must be signed.

::

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from provenance.loaders import transformers as verified

    model = verified.from_pretrained(AutoModelForCausalLM, "my-model/", policy="policy.yaml")
    tokenizer = verified.from_pretrained(AutoTokenizer, "my-model/", policy="policy.yaml")

A model that fails its policy raises :class:`~provenance.policy.PolicyDenied`
before transformers is handed anything.

transformers, torch (and for adapters peft) have no types provenance's
strict checking can rely on; they are imported as modules of type ``Any``
at this boundary, and only when a loader is called.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError
from provenance.loaders._hf import (
    WEIGHT_SUFFIXES,
    check_kwargs,
    check_remote_code,
    json_object,
    library,
    load_weights,
    opened,
    private_copy,
    refuse_remote_code,
    resolve_policy,
)

if TYPE_CHECKING:
    from provenance.loading import VerifiedModel
    from provenance.policy import Policy
    from provenance.signing import Verifier

__all__ = ["REFUSED_KWARGS", "from_pretrained"]

#: Keyword arguments of ``from_pretrained`` refused beyond the Hub's, and why.
REFUSED_KWARGS: dict[str, str] = {
    "from_tf": "loads TensorFlow weights, which are not handed over from verified bytes",
    "from_flax": "loads Flax weights, which are not handed over from verified bytes",
    "gguf_file": "reads a GGUF file by path",
    "state_dict": "replaces the verified weights",
    "adapter_kwargs": "loads a PEFT adapter by path; use provenance.loaders.peft",
    "adapter_name": "loads a PEFT adapter by path; use provenance.loaders.peft",
    "use_kernels": "fetches kernels (code) from the Hub",
    "kernel_config": "fetches kernels (code) from the Hub",
    "allow_all_kernels": "fetches kernels (code) from the Hub",
    "pretrained_model_name_or_path": "is the verified folder",
}

#: The weights transformers looks for, in its order (safetensors first).
_SAFETENSORS = ("model.safetensors.index.json", "model.safetensors")
_PICKLE = ("pytorch_model.bin.index.json", "pytorch_model.bin")

#: ``from_pretrained``'s own loading arguments (transformers 5): handed to the
#: model's ``from_pretrained``; every other keyword argument overrides the
#: config (``output_attentions=True``) or goes to the model's ``__init__``, as
#: transformers itself splits them.
_LOADING_KWARGS = frozenset(
    {
        "dtype",
        "torch_dtype",
        "device_map",
        "max_memory",
        "offload_folder",
        "offload_buffers",
        "offload_state_dict",
        "quantization_config",
        "output_loading_info",
        "tqdm_class",
        "key_mapping",
        "ignore_mismatched_sizes",
        "attn_implementation",
        "experts_implementation",
        "distributed_config",
        "device_mesh",
        "tp_plan",
        "tp_size",
        "fusion_config",
        "disable_mmap",
        "low_cpu_mem_usage",
        "weights_only",
        "generation_config",
        "_from_pipeline",
        "_from_auto",
        "_fast_init",
    }
)


def from_pretrained(
    cls: Any,
    path: str | os.PathLike[str] | VerifiedModel,
    *,
    policy: Policy | str | os.PathLike[str] | None = None,
    verifier: Verifier | None = None,
    signature: str | os.PathLike[str] | None = None,
    attestations: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    **kwargs: Any,
) -> Any:
    """``cls.from_pretrained(path, **kwargs)``, from the bytes verified under ``policy``.

    ``cls`` is any transformers class with ``from_pretrained``: a model class
    (``AutoModelForCausalLM``, ``BertModel``, ...), whose weights come from
    the verified safetensors files as tensors over the verified memory, or
    a tokenizer, processor or config class, which reads the private copy.
    Give exactly one of ``policy`` (a policy or its file) or ``verifier``;
    ``signature``, ``attestations`` and ``workers`` are
    :func:`provenance.open_verified`'s. ``path`` may instead be a
    :class:`~provenance.loading.VerifiedModel` already open, so that a model
    and its tokenizer cost one verification (``policy``, if given, must be
    the one it was opened under; it is left open), or a Hub repository id
    (``"org/name"``, a string that names no local path): it is verified
    through :func:`provenance.loaders.hub.snapshot` first, with ``revision=``
    (default ``"main"``) and, optionally, ``offline=``, ``endpoint=``,
    ``token=`` and ``cache_dir=`` for it. Other keyword arguments are
    transformers' own (``dtype``, ``device_map``, config overrides such as
    ``output_attentions=True``), except those that read elsewhere
    (:data:`REFUSED_KWARGS` and the Hub's).

    Weights: ``model.safetensors`` or its sharded index (every shard it
    names must be signed, and the shards must hold exactly the tensors the
    index maps to them); with ``variant=`` the variant's names; without
    safetensors, ``pytorch_model.bin`` (pickle, loaded with torch's
    restricted ``weights_only`` unpickler) when the policy allowed the
    folder with it. ``use_safetensors=True`` refuses pickle weights.

    The model's ``name_or_path`` is ``None``: transformers was given no
    path, and a pipeline built from the model must be given its tokenizer
    (load it here too) rather than look it up by a path nobody verified. A
    ``custom_generate/`` folder (remote generation code) is not loaded.

    Raises :class:`~provenance.policy.PolicyDenied` or
    :class:`~provenance.errors.VerificationError` when the folder may not
    load (nothing is handed to transformers then),
    :class:`~provenance.errors.UsageError` for a refused keyword argument
    or remote code the policy does not allow,
    :class:`~provenance.errors.InputError` for a folder with no signed
    weights or an inconsistent index.
    """
    if not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
        raise UsageError(f"cls must be a transformers class with from_pretrained, not {cls!r}")
    if is_hub_id(path):
        return _from_hub(cls, str(path), policy, verifier, signature, attestations, workers, kwargs)
    check_kwargs(kwargs, REFUSED_KWARGS)
    kwargs.pop("local_files_only", None)  # True, checked: every load here is local
    if kwargs.get("weights_only", True) is not True:
        raise UsageError("weights_only=False is not accepted: pickle weights load restricted")
    rules = resolve_policy(path, policy, verifier)
    trust = refuse_remote_code(rules, kwargs.pop("trust_remote_code", None))
    tf = library("transformers")
    with opened(
        path, rules, verifier, signature=signature, attestations=attestations, workers=workers
    ) as vm:
        if vm.single:
            raise UsageError(f"'{vm.path}' is a single file; a transformers model is a folder")
        if trust:
            check_remote_code(vm)
        copied = [n for n in vm.files if not n.endswith(WEIGHT_SUFFIXES)]
        with private_copy(vm, copied) as folder:
            if _is_model_class(tf, cls):
                return _load_model(tf, cls, vm, folder, trust, kwargs)
            kwargs.pop("variant", None)
            kwargs.pop("use_safetensors", None)
            return cls.from_pretrained(
                os.fspath(folder), local_files_only=True, trust_remote_code=trust, **kwargs
            )


def is_hub_id(path: object) -> bool:
    """``ORG/NAME`` given as a string that names no local file: a Hub repository id."""
    from provenance.hub import check_repo_id

    if not isinstance(path, str) or path.count("/") != 1 or os.path.lexists(path):
        return False
    try:
        check_repo_id(path)
    except UsageError:
        return False
    return True


def _from_hub(
    cls: Any,
    repo_id: str,
    policy: Policy | str | os.PathLike[str] | None,
    verifier: Verifier | None,
    signature: str | os.PathLike[str] | None,
    attestations: str | os.PathLike[str] | None,
    workers: int | None,
    kwargs: dict[str, Any],
) -> Any:
    """A repository id: verified through :func:`provenance.loaders.hub.snapshot`, then loaded."""
    from provenance.loaders.hub import snapshot

    if signature is not None or attestations is not None:
        raise UsageError(
            "signature= and attestations= name local files; a Hub repository's are its own"
        )
    revision = kwargs.pop("revision", None) or "main"
    hub_args = {
        k: kwargs.pop(k) for k in ("offline", "endpoint", "token", "cache_dir") if k in kwargs
    }
    check_kwargs(kwargs, REFUSED_KWARGS)  # before anything is downloaded
    rules = resolve_policy(repo_id, policy, verifier)
    with snapshot(
        repo_id, revision, policy=rules, verifier=verifier, workers=workers, **hub_args
    ) as vm:
        return from_pretrained(cls, vm, policy=rules, **kwargs)


def _is_model_class(tf: Any, cls: type) -> bool:
    auto = importlib.import_module("transformers.models.auto.auto_factory")
    return issubclass(cls, (tf.PreTrainedModel, auto._BaseAutoModelClass))


def _load_model(
    tf: Any, cls: Any, vm: VerifiedModel, folder: Path, trust: bool, kwargs: dict[str, Any]
) -> Any:
    """The model, its config read from ``folder``, its weights from the verified memory."""
    signed = set(vm.files)
    if "config.json" not in signed:
        hint = (
            "; it holds a PEFT adapter: load it with provenance.loaders.peft"
            if "adapter_config.json" in signed
            else ""
        )
        raise InputError(f"'{vm.path}' has no signed config.json{hint}")
    variant = kwargs.pop("variant", None)
    use_safetensors = kwargs.pop("use_safetensors", None)
    loading = {k: kwargs.pop(k) for k in list(kwargs) if k in _LOADING_KWARGS}
    auto = importlib.import_module("transformers.models.auto.auto_factory")
    is_auto = issubclass(cls, auto._BaseAutoModelClass)

    config = kwargs.pop("config", None)
    doc = json_object(vm, "config.json")
    if config is None and not trust and _is_code(doc):
        raise UsageError(
            f"the config of '{vm.path}' is the model's own code (auto_map, model type "
            f"{doc.get('model_type')!r} unknown to transformers); loading it needs "
            "trust_remote_code=True and a policy that allows it"
        )
    if config is None:
        config_cls = tf.AutoConfig if is_auto else cls.config_class
        config, kwargs = config_cls.from_pretrained(
            os.fspath(folder),
            return_unused_kwargs=True,
            local_files_only=True,
            trust_remote_code=trust,
            **kwargs,
        )
    elif not isinstance(config, tf.PreTrainedConfig):
        raise UsageError(
            "config= must be a PreTrainedConfig object: config.json is the verified one"
        )
    model_cls, config = _model_class(cls, config, folder, trust) if is_auto else (cls, config)

    if "generation_config" not in loading and (folder / "generation_config.json").is_file():
        loading["generation_config"] = tf.GenerationConfig.from_pretrained(
            os.fspath(folder), local_files_only=True
        )
    state_dict = _state_dict(vm, variant, use_safetensors, doc.get("transformers_weights"))
    return model_cls.from_pretrained(
        None,
        config=config,
        state_dict=state_dict,
        local_files_only=True,
        trust_remote_code=trust,
        **loading,
        **kwargs,
    )


def _is_code(doc: dict[str, Any]) -> bool:
    """Whether ``config.json`` needs its own code: an ``auto_map`` config of a type not built in."""
    auto_map = doc.get("auto_map")
    if not isinstance(auto_map, dict) or "AutoConfig" not in auto_map:
        return False
    configs = importlib.import_module("transformers.models.auto.configuration_auto")
    return doc.get("model_type") not in configs.CONFIG_MAPPING


def _model_class(cls: Any, config: Any, folder: Path, trust: bool) -> tuple[Any, Any]:
    """The concrete class an Auto class would load ``config`` with (transformers 5's dispatch).

    The Auto classes' ``from_pretrained`` needs a path to hand on, and a path
    and a ``state_dict`` together are refused, so their choice is made here
    as theirs is: remote code from ``auto_map`` when allowed (from the
    private copy), else the library's own class for the config, with the
    text config of a composite model when that class wants it.
    """
    auto = importlib.import_module("transformers.models.auto.auto_factory")
    auto_map = getattr(config, "auto_map", None) or {}
    has_remote = cls.__name__ in auto_map
    has_local = type(config) in cls._model_mapping
    explicit_local = has_local and not auto._get_model_class(
        config, cls._model_mapping
    ).__module__.startswith("transformers.")
    if has_remote and trust and not explicit_local:
        dynamic = importlib.import_module("transformers.dynamic_module_utils")
        model_cls = dynamic.get_class_from_dynamic_module(
            auto_map[cls.__name__], os.fspath(folder), local_files_only=True
        )
        if not has_local:
            cls.register(config.__class__, model_cls, exist_ok=True)
        model_cls.register_for_auto_class(auto_class=cls)
        return auto.add_generation_mixin_to_remote_model(model_cls), config
    if has_local:
        model_cls = auto._get_model_class(config, cls._model_mapping)
        text_config_class = config.sub_configs.get("text_config", None)
        if text_config_class is not None and getattr(model_cls, "config_class", None) == (
            text_config_class
        ):
            parent_quant = getattr(config, "quantization_config", None)
            config = config.get_text_config()
            if parent_quant is not None:
                config.quantization_config = parent_quant
        return model_cls, config
    if has_remote:
        raise UsageError(
            f"the model's {cls.__name__} is its own code (auto_map); loading it needs "
            "trust_remote_code=True and a policy that allows it"
        )
    raise UsageError(
        f"{cls.__name__} has no model class for the configuration {type(config).__name__}"
    )


def _add_variant(name: str, variant: str | None) -> str:
    """transformers' variant names: ``model.safetensors`` -> ``model.fp16.safetensors``."""
    if variant is None:
        return name
    stem, _, ext = name.rpartition(".")
    return f"{stem}.{variant}.{ext}"


def _state_dict(
    vm: VerifiedModel, variant: str | None, use_safetensors: bool | None, explicit: object
) -> dict[str, Any]:
    """The weights, as transformers would pick them, from signed files only."""
    signed = set(vm.files)
    if isinstance(explicit, str):  # config.json's transformers_weights names the file
        if not explicit.endswith((".safetensors", ".safetensors.index.json")):
            raise InputError(
                f"config.json of '{vm.path}' names the weights '{explicit}'; only safetensors "
                "weights are handed over from verified bytes by name"
            )
        if explicit not in signed:
            raise InputError(f"'{explicit}', the weights config.json names, is not signed")
        return _from_file(vm, explicit)
    order: list[str] = []
    if use_safetensors is not False:
        order += [_add_variant(n, variant) for n in _SAFETENSORS]
    if use_safetensors is not True:
        order += [_add_variant(n, variant) for n in _PICKLE]
    for name in order:
        if name in signed:
            return _from_file(vm, name)
    present = sorted(n for n in signed if n.endswith((".safetensors", ".bin")))
    raise InputError(
        f"'{vm.path}' has no signed weights transformers would load (looked for "
        + ", ".join(order)
        + ")"
        + (f"; its signed weights are {', '.join(present[:5])}" if present else ""),
        code="no-weights",
    )


def _from_file(vm: VerifiedModel, name: str) -> dict[str, Any]:
    """One weights file's tensors, or every shard's that an index names."""
    if not name.endswith(".index.json"):
        return load_weights(vm, name)
    weight_map = json_object(vm, name).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise InputError(f"'{name}' of '{vm.path}' has no weight_map of names to shard files")
    folder = name.rpartition("/")[0]
    where = {k: f"{folder}/{v}" if folder else v for k, v in weight_map.items()}
    unsigned = sorted({s for s in where.values() if s not in set(vm.files)})
    if unsigned:
        raise InputError(
            f"'{name}' of '{vm.path}' names shards that are not signed: " + ", ".join(unsigned[:5])
        )
    state: dict[str, Any] = {}
    for shard in sorted(set(where.values())):
        for key, tensor in load_weights(vm, shard).items():
            if where.get(key) != shard:
                said = f"maps it to '{where[key]}'" if key in where else "does not list it"
                raise InputError(
                    f"'{shard}' of '{vm.path}' holds the tensor '{key}', and the index {said}"
                )
            state[key] = tensor
    missing = sorted(where.keys() - state.keys())
    if missing:
        raise InputError(
            f"'{name}' of '{vm.path}' maps tensors its shards do not hold: "
            + ", ".join(missing[:5])
        )
    return state
