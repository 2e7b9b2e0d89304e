"""Verified transformers and PEFT loading: what loads is what was signed, or nothing loads.

Real tiny models (a 2-layer GPT-2 with hidden size 32, a word-level
tokenizer, a LoRA adapter), written by the libraries' own ``save_pretrained``,
signed with real keys and loaded under real policies. Nothing is fetched
(HF_HUB_OFFLINE=1). What transformers reads is observed, not mocked: a
Python audit hook records every file opened during a load, and the same
hook rewrites the original files at the moment verification ends, which
must change nothing that loads.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import KeyPair

import provenance
import provenance.policy
from provenance.errors import InputError, UsageError, VerificationError
from provenance.loaders import peft as verified_peft
from provenance.loaders import transformers as verified
from provenance.loaders._hf import PRIVATE_PREFIX
from provenance.policy import PolicyDenied
from provenance.signing import KeySigner, KeyVerifier

# Before transformers / huggingface_hub are imported: they read these once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
_MODULES = tempfile.mkdtemp(prefix="provenance-test-hf-modules-")
os.environ["HF_MODULES_CACHE"] = _MODULES  # where remote code is copied to be imported
atexit.register(shutil.rmtree, _MODULES, True)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


# ---------------------------------------------------------------- fixtures


def policy_file(folder: Path, key: KeyPair, extra: str = "", name: str = "policy.yaml") -> Path:
    p = folder / name
    p.write_text(f"version: 1\nsigners:\n  - key: {key.public}\n{extra}")
    return p


def sign(folder: Path, key: KeyPair) -> Path:
    provenance.sign(folder, KeySigner.from_file(key.private))  # type: ignore[arg-type]
    return folder


def tiny_config() -> Any:
    return transformers.GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=64,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<s>": 0, "<unk>": 1, **{f"w{i}": i + 2 for i in range(62)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="<s>"
    )


def save_tiny(folder: Path, seed: int = 0, **save_kw: Any) -> Any:
    """A tiny GPT-2 with its tokenizer and a distinctive generation config, saved to ``folder``."""
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(tiny_config())
    model.generation_config.max_new_tokens = 7
    model.save_pretrained(folder, **save_kw)
    tiny_tokenizer().save_pretrained(folder)
    return model


@pytest.fixture
def gpt2(tmp_path: Path, p256: KeyPair) -> tuple[Path, Any]:
    folder = tmp_path / "gpt2"
    model = save_tiny(folder)
    return sign(folder, p256), model


def same_weights(a: Any, b: Any) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Opens:
    """Every path opened while recording (a ``sys.addaudithook`` hook: observing, not mocking).

    ``on_first_private`` runs once, at the first open inside a private copy:
    the moment verification is over and loading begins.
    """

    _current: Opens | None = None
    _installed = False

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.on_first_private: Callable[[], None] | None = None
        self._busy = False

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        self = cls._current
        if self is None or self._busy or event != "open" or not args:
            return
        target = args[0]
        if isinstance(target, int):
            return
        try:
            path = os.path.realpath(os.fsdecode(target))
        except (TypeError, ValueError):
            return
        self.paths.append(path)
        if self.on_first_private is not None and PRIVATE_PREFIX in path:
            action, self.on_first_private = self.on_first_private, None
            self._busy = True
            try:
                action()
            finally:
                self._busy = False

    @classmethod
    @contextmanager
    def recording(cls) -> Iterator[Opens]:
        if not cls._installed:
            sys.addaudithook(cls._hook)  # stays for the session; idle unless recording
            cls._installed = True
        cls._current = rec = cls()
        try:
            yield rec
        finally:
            cls._current = None

    def under(self, folder: Path) -> list[str]:
        root = os.path.realpath(folder) + os.sep
        return [p for p in self.paths if p.startswith(root)]

    def private(self) -> list[str]:
        return [p for p in self.paths if PRIVATE_PREFIX in p]


# ---------------------------------------------------------------- models and tokenizers


def test_model_tokenizer_and_generation_config_load_as_signed(
    tmp_path: Path, p256: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    folder, original = gpt2
    pol = policy_file(tmp_path, p256)
    model = verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)
    assert type(model) is transformers.GPT2LMHeadModel
    assert same_weights(model, original)
    assert model.generation_config.max_new_tokens == 7  # generation_config.json was read
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied

    # Zero-copy: the parameters lie in one block no larger than the weights file
    # (tensors over the verified memory), not in allocations of their own.
    params = list(model.parameters())
    start = min(p.data_ptr() for p in params)
    end = max(p.data_ptr() + p.numel() * p.element_size() for p in params)
    assert end - start <= (folder / "model.safetensors").stat().st_size

    tok = verified.from_pretrained(transformers.AutoTokenizer, folder, policy=pol)
    assert tok("w1 w2 w3")["input_ids"] == tiny_tokenizer()("w1 w2 w3")["input_ids"]
    ids = torch.tensor([[2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original.eval()(ids).logits)


def test_concrete_class_config_overrides_dtype_and_a_verifier(
    p256: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    folder, original = gpt2
    key = KeyVerifier.from_files(p256.public)
    model = verified.from_pretrained(
        transformers.GPT2LMHeadModel,
        folder,
        verifier=key,
        output_attentions=True,
        dtype=torch.float64,
    )
    assert model.config.output_attentions is True
    assert model.dtype == torch.float64
    ref = original.state_dict()
    assert all(torch.equal(t, ref[k].double()) for k, t in model.state_dict().items())
    cfg = verified.from_pretrained(transformers.AutoConfig, folder, verifier=key)
    assert cfg.n_embd == 32


def test_sharded_weights_every_shard_from_verified_bytes(tmp_path: Path, p256: KeyPair) -> None:
    folder = tmp_path / "sharded"
    original = save_tiny(folder, max_shard_size="40KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    sign(folder, p256)
    model = verified.from_pretrained(
        transformers.AutoModelForCausalLM, folder, policy=policy_file(tmp_path, p256)
    )
    assert same_weights(model, original)


def test_an_index_that_disagrees_with_its_shards_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    folder = tmp_path / "sharded"
    save_tiny(folder, max_shard_size="40KB")
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    moved = next(iter(index["weight_map"]))
    other = sorted(set(index["weight_map"].values()) - {index["weight_map"][moved]})[0]
    index["weight_map"][moved] = other  # signed so: the signature is not the problem
    index_path.write_text(json.dumps(index))
    sign(folder, p256)
    with pytest.raises(InputError, match=rf"holds the tensor '{moved}'.*maps it to '{other}'"):
        verified.from_pretrained(
            transformers.AutoModelForCausalLM, folder, policy=policy_file(tmp_path, p256)
        )


# ---------------------------------------------------------------- what fails loads nothing


@pytest.mark.parametrize("victim", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_tampered_file_loads_nothing(
    tmp_path: Path, p256: KeyPair, gpt2: tuple[Path, Any], victim: str
) -> None:
    folder, _ = gpt2
    target = folder / victim
    data = bytearray(target.read_bytes())
    data[-2] ^= 0x01  # the last tensor's bytes / inside the JSON text
    target.write_bytes(bytes(data))
    with Opens.recording() as opens, pytest.raises(PolicyDenied, match=victim) as e:
        verified.from_pretrained(
            transformers.AutoModelForCausalLM, folder, policy=policy_file(tmp_path, p256)
        )
    assert any(r.subject == victim for r in e.value.decision.errors)
    assert opens.private() == []  # no private copy was made: transformers got nothing


def test_pickle_weights_under_a_no_pickle_policy_are_a_clear_denial(
    tmp_path: Path, p256: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    folder, original = gpt2
    torch.save(original.state_dict(), folder / "pytorch_model.bin")
    sign(folder, p256)
    pol = policy_file(tmp_path, p256, "files:\n  formats: {deny: [pickle]}\n")
    with pytest.raises(PolicyDenied) as e:
        verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)
    assert str(e.value).endswith(
        "; pytorch_model.bin: pickle-based weights, which the policy's file formats refuse "
        "(unpickling runs code); remove or convert them to safetensors, and sign again"
    )
    (reason,) = [r for r in e.value.decision.errors if r.subject == "pytorch_model.bin"]
    assert reason.rule == "files.formats.deny"


def test_pickle_weights_load_restricted_only_when_the_policy_lets_them_in(
    tmp_path: Path, p256: KeyPair
) -> None:
    folder = tmp_path / "bin-only"
    original = save_tiny(folder)
    (folder / "model.safetensors").unlink()
    torch.save(original.state_dict(), folder / "pytorch_model.bin")
    sign(folder, p256)
    pol = policy_file(tmp_path, p256)  # no format rules: pickle may be present
    model = verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)
    assert same_weights(model, original)
    with pytest.raises(InputError, match="no signed weights") as e:
        verified.from_pretrained(
            transformers.AutoModelForCausalLM, folder, policy=pol, use_safetensors=True
        )
    assert e.value.code == "no-weights"


@pytest.mark.parametrize(
    ("kwarg", "value"),
    [
        ("revision", "main"),
        ("cache_dir", "/tmp"),
        ("subfolder", "x"),
        ("gguf_file", "model.gguf"),
        ("from_tf", True),
        ("local_files_only", False),
        ("use_kernels", True),
        ("adapter_kwargs", {}),
        ("state_dict", {}),
        ("weights_only", False),
        ("token", "hf_x"),
        ("config", "/somewhere/else"),
    ],
)
def test_keyword_arguments_that_read_elsewhere_are_refused(
    tmp_path: Path, p256: KeyPair, kwarg: str, value: object
) -> None:
    missing = tmp_path / "never-read"  # refused before anything is read
    with pytest.raises(UsageError, match=f"{kwarg}="):
        verified.from_pretrained(
            transformers.AutoModelForCausalLM,
            missing,
            policy=policy_file(tmp_path, p256),
            **{kwarg: value},
        )


def test_an_adapter_folder_given_to_the_model_loader_says_where_to_go(
    tmp_path: Path, p256: KeyPair
) -> None:
    adapter = save_adapter(tmp_path / "adapter")
    sign(adapter, p256)
    with pytest.raises(InputError, match=r"no signed config\.json.*provenance\.loaders\.peft"):
        verified.from_pretrained(
            transformers.AutoModelForCausalLM, adapter, policy=policy_file(tmp_path, p256)
        )


# ---------------------------------------------------------------- never re-read


def test_after_verification_nothing_under_the_model_folder_is_opened(
    tmp_path: Path, p256: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    """Each original file is opened once, to verify it; after that only the private copy."""
    folder, original = gpt2
    pol = policy_file(tmp_path, p256)
    with Opens.recording() as opens:
        model = verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)
        tok = verified.from_pretrained(transformers.AutoTokenizer, folder, policy=pol)
    assert same_weights(model, original) and tok.unk_token == "<unk>"
    originals = opens.under(folder)
    private = opens.private()
    assert private, "transformers read nothing from a private copy?"
    assert any(p.endswith("/config.json") for p in private)
    assert any(p.endswith("/tokenizer.json") for p in private)
    # Two loads, two verifications: each file opened once per verification, and
    # every one of those before the first private open of its load.
    signed = {str(p.resolve()) for p in folder.iterdir() if p.name != "model.sig"}
    for path in signed:
        assert originals.count(path) == 2, (path, originals.count(path))
    first_private = opens.paths.index(private[0])
    first_load = [p for p in opens.paths[:first_private] if p in signed]
    assert sorted(set(first_load)) == sorted(signed)


def test_one_verification_for_the_model_and_its_tokenizer(
    tmp_path: Path, p256: KeyPair, other_key: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    """An open VerifiedModel serves both: every original file is read once in all."""
    folder, original = gpt2
    pol = provenance.policy.load(policy_file(tmp_path, p256))
    with Opens.recording() as opens, provenance.open_verified(folder, policy=pol) as vm:
        model = verified.from_pretrained(transformers.AutoModelForCausalLM, vm, policy=pol)
        tok = verified.from_pretrained(transformers.AutoTokenizer, vm)
        assert vm.files  # left open: the caller's
    assert same_weights(model, original) and tok.eos_token == "<s>"
    every = [str(p.resolve()) for p in folder.iterdir()]  # model.sig too
    assert sorted(opens.under(folder)) == sorted(every)  # each once, none twice
    with provenance.open_verified(folder, policy=pol) as vm:
        other = policy_file(tmp_path, other_key, ALLOW_CODE, name="other.yaml")
        with pytest.raises(UsageError, match="was not opened under the policy") as e:
            verified.from_pretrained(transformers.AutoModel, vm, policy=other)
        assert e.value.code == "policy-mismatch"
        with pytest.raises(UsageError, match="verified already"):
            verified.from_pretrained(transformers.AutoModel, vm, workers=2)


def test_rewriting_the_originals_once_verified_changes_nothing_that_loads(
    tmp_path: Path, p256: KeyPair, gpt2: tuple[Path, Any]
) -> None:
    folder, original = gpt2
    pol = policy_file(tmp_path, p256)

    def swap() -> None:
        """What an attacker with write access does between check and use."""
        config = json.loads((folder / "config.json").read_text())
        config["n_layer"] = 1
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "generation_config.json").write_text('{"max_new_tokens": 999}')
        save_tiny(tmp_path / "evil", seed=1)
        shutil.copy(tmp_path / "evil" / "model.safetensors", folder / "model.safetensors")

    with Opens.recording() as opens:
        opens.on_first_private = swap
        model = verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)
    assert opens.on_first_private is None, "the swap never ran"
    assert model.config.n_layer == 2 and model.generation_config.max_new_tokens == 7
    assert same_weights(model, original)
    with pytest.raises(PolicyDenied):  # the swap was real: the folder no longer verifies
        verified.from_pretrained(transformers.AutoModelForCausalLM, folder, policy=pol)


# ---------------------------------------------------------------- remote code

CONFIGURATION = """\
from transformers import PreTrainedConfig


class TinyConfig(PreTrainedConfig):
    model_type = "provenance-tiny-remote"

    def __init__(self, width=4, **kwargs):
        self.width = width
        super().__init__(**kwargs)
"""

MODELING = """\
import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.width, config.width)
        self.post_init()

    def forward(self, x):
        return self.proj(x)
"""


def remote_model(folder: Path, auto_model: str = "modeling_tiny.TinyModel") -> dict[str, Any]:
    """A model whose classes are its own code (auto_map), weights by safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "configuration_tiny.py").write_text(CONFIGURATION)
    (folder / "modeling_tiny.py").write_text(MODELING)
    config = {
        "model_type": "provenance-tiny-remote",
        "width": 4,
        "architectures": ["TinyModel"],
        "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": auto_model},
    }
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(3)
    state = {"proj.weight": torch.randn(4, 4), "proj.bias": torch.randn(4)}
    save_file(state, folder / "model.safetensors")
    return state


ALLOW_CODE = "loading:\n  trust_remote_code: true\n"


def test_remote_code_loads_only_when_the_policy_allows_it(tmp_path: Path, p256: KeyPair) -> None:
    folder = tmp_path / "remote"
    state = remote_model(folder)
    sign(folder, p256)
    denying = policy_file(tmp_path, p256)
    with pytest.raises(UsageError, match="does not allow the model") as e:
        verified.from_pretrained(
            transformers.AutoModel, folder, policy=denying, trust_remote_code=True
        )
    assert e.value.code == "remote-code-denied"
    with pytest.raises(UsageError, match=r"own code .*needs trust_remote_code=True and a policy"):
        verified.from_pretrained(transformers.AutoModel, folder, policy=denying)
    with pytest.raises(UsageError, match="a verifier checks signatures only"):
        verified.from_pretrained(
            transformers.AutoModel,
            folder,
            verifier=KeyVerifier.from_files(p256.public),
            trust_remote_code=True,
        )

    allowing = policy_file(tmp_path, p256, ALLOW_CODE, name="allow.yaml")
    model = verified.from_pretrained(
        transformers.AutoModel, folder, policy=allowing, trust_remote_code=True
    )
    assert type(model).__name__ == "TinyModel"
    assert torch.equal(model.proj.weight, state["proj.weight"])
    assert torch.equal(model.proj.bias, state["proj.bias"])


def test_remote_code_refused_before_anything_is_read(tmp_path: Path, p256: KeyPair) -> None:
    folder = tmp_path / "remote"
    remote_model(folder)
    sign(folder, p256)
    (folder / "modeling_tiny.py").write_text(MODELING + "\nraise SystemExit('ran')\n")
    with (
        Opens.recording() as opens,
        pytest.raises(UsageError, match="does not allow the model"),
    ):
        verified.from_pretrained(
            transformers.AutoModel,
            folder,
            policy=policy_file(tmp_path, p256),
            trust_remote_code=True,
        )
    assert opens.under(folder) == []


def test_unsigned_code_is_refused_even_where_the_policy_tolerates_unsigned_files(
    tmp_path: Path, p256: KeyPair
) -> None:
    folder = tmp_path / "remote"
    remote_model(folder)
    sign(folder, p256)
    (folder / "helpers.py").write_text("import os\n")  # unsigned, tolerated by the policy
    pol = policy_file(tmp_path, p256, ALLOW_CODE + "files:\n  allow_unsigned: ['*.py']\n")
    with pytest.raises(VerificationError, match=r"helpers\.py") as e:
        verified.from_pretrained(transformers.AutoModel, folder, policy=pol, trust_remote_code=True)
    assert e.value.code == "remote-code-unsigned"
    # Without remote code the same folder loads nothing of it: not copied, not imported.
    tok_cfg = verified.from_pretrained(transformers.PreTrainedConfig, folder, policy=pol)
    assert tok_cfg.to_dict()["width"] == 4


def test_code_from_another_repository_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    folder = tmp_path / "remote"
    remote_model(folder, auto_model="someone/else--modeling_tiny.TinyModel")
    sign(folder, p256)
    pol = policy_file(tmp_path, p256, ALLOW_CODE)
    with pytest.raises(VerificationError, match="another repository") as e:
        verified.from_pretrained(transformers.AutoModel, folder, policy=pol, trust_remote_code=True)
    assert e.value.code == "remote-code-elsewhere"


# ---------------------------------------------------------------- PEFT adapters


def lora_config() -> Any:
    return peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM")


def save_adapter(folder: Path, seed: int = 5, *, base_seed: int = 0) -> Path:
    """A LoRA adapter on the tiny GPT-2, its B matrices non-zero so that it changes outputs."""
    torch.manual_seed(base_seed)
    base = transformers.GPT2LMHeadModel(tiny_config())
    tuned = peft.get_peft_model(base, lora_config())
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p))
    tuned.save_pretrained(folder)
    return folder


def base_model(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(tiny_config()).eval()


def adapter_weights(model: Any, adapter: str) -> dict[str, Any]:
    """The adapter's LoRA tensors by their saved names (no adapter name, no PeftModel prefix)."""
    return {
        n.replace(f".{adapter}.", ".").removeprefix("base_model.model."): p.detach().clone()
        for n, p in model.named_parameters()
        if "lora_" in n and f".{adapter}." in n
    }


@pytest.fixture
def adapter(tmp_path: Path, p256: KeyPair) -> Path:
    return sign(save_adapter(tmp_path / "adapter"), p256)


def test_peft_from_pretrained_matches_peft_reading_the_file(
    tmp_path: Path, p256: KeyPair, adapter: Path
) -> None:
    pol = policy_file(tmp_path, p256)
    ours = verified_peft.from_pretrained(base_model(), adapter, policy=pol)
    theirs = peft.PeftModel.from_pretrained(base_model(), adapter)  # the reference reader
    assert type(ours) is type(theirs) is peft.PeftModelForCausalLM
    mine, ref = adapter_weights(ours, "default"), adapter_weights(theirs, "default")
    assert mine.keys() == ref.keys() and len(mine) == 4
    assert all(torch.equal(mine[k], ref[k]) for k in mine)
    ids = torch.tensor([[2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, theirs(ids).logits)
        assert not torch.equal(ours(ids).logits, base_model()(ids).logits)
    assert ours.peft_config["default"].inference_mode is True


def test_load_adapter_into_a_peft_model_and_into_a_transformers_model(
    tmp_path: Path, p256: KeyPair, adapter: Path
) -> None:
    pol = policy_file(tmp_path, p256)
    second = sign(save_adapter(tmp_path / "second", seed=9), p256)
    model = verified_peft.from_pretrained(base_model(), adapter, policy=pol)
    assert verified_peft.load_adapter(model, second, policy=pol, adapter_name="second") is model
    assert set(model.peft_config) == {"default", "second"}
    ref = adapter_weights(peft.PeftModel.from_pretrained(base_model(), second), "default")
    got = adapter_weights(model, "second")
    assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in got)
    with pytest.raises(UsageError, match="already has an adapter named 'second'"):
        verified_peft.load_adapter(model, second, policy=pol, adapter_name="second")

    plain = base_model()  # transformers' own integration, in place
    assert verified_peft.load_adapter(plain, second, policy=pol, adapter_name="second") is plain
    got = adapter_weights(plain, "second")
    assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in got)


def test_a_tampered_adapter_leaves_the_model_untouched(
    tmp_path: Path, p256: KeyPair, adapter: Path
) -> None:
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x40
    weights.write_bytes(bytes(data))
    model = base_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PolicyDenied, match=r"adapter_model\.safetensors"):
        verified_peft.load_adapter(model, adapter, policy=policy_file(tmp_path, p256))
    with pytest.raises(PolicyDenied):
        verified_peft.from_pretrained(model, adapter, policy=policy_file(tmp_path, p256))
    assert not any("lora" in name for name, _ in model.named_modules())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_a_pickled_adapter_under_a_no_pickle_policy_is_denied(
    tmp_path: Path, p256: KeyPair
) -> None:
    folder = save_adapter(tmp_path / "adapter")
    from safetensors.torch import load_file

    state = load_file(folder / "adapter_model.safetensors")
    (folder / "adapter_model.safetensors").unlink()
    torch.save(state, folder / "adapter_model.bin")
    sign(folder, p256)
    pol = policy_file(tmp_path, p256, "files:\n  formats: {deny: [pickle]}\n")
    with pytest.raises(PolicyDenied, match=r"adapter_model\.bin"):
        verified_peft.from_pretrained(base_model(), folder, policy=pol)
    # Let in by a policy, pickle loads through torch's restricted unpickler.
    model = verified_peft.from_pretrained(base_model(), folder, policy=policy_file(tmp_path, p256))
    assert len(adapter_weights(model, "default")) == 4


def test_the_adapter_config_is_read_from_the_verified_bytes(
    tmp_path: Path, p256: KeyPair, adapter: Path
) -> None:
    pol = policy_file(tmp_path, p256)
    config = adapter / "adapter_config.json"

    def swap() -> None:
        doc = json.loads(config.read_text())
        doc["lora_alpha"] = 400
        config.write_text(json.dumps(doc))

    with Opens.recording() as opens:
        opens.on_first_private = swap
        model = verified_peft.from_pretrained(base_model(), adapter, policy=pol)
    assert opens.on_first_private is None
    assert model.peft_config["default"].lora_alpha == 4
    assert opens.under(adapter).count(str(config.resolve())) == 1  # the verification's read


# ---------------------------------------------------------------- by Hub repository id


def test_from_pretrained_by_repository_id(local_hub, tmp_path, p256):
    """A Hub repository id goes through provenance.loaders.hub.snapshot: verified, then loaded."""
    from provenance import hub

    folder = tmp_path / "gpt2"
    model = save_tiny(folder)
    hub.push(
        folder,
        "acme/gpt2",
        KeySigner.from_file(p256.private),
        endpoint=local_hub.endpoint,
        token=local_hub.token,
    )
    where = {
        "endpoint": local_hub.endpoint,
        "token": local_hub.token,
        "cache_dir": tmp_path / "cache",
    }
    verifier = KeyVerifier.from_files(p256.public)
    loaded = verified.from_pretrained(
        transformers.AutoModelForCausalLM, "acme/gpt2", revision="main", verifier=verifier, **where
    )
    assert same_weights(loaded, model)
    tok = verified.from_pretrained(
        transformers.AutoTokenizer, "acme/gpt2", verifier=verifier, **where
    )
    assert tok("w1 w2")["input_ids"] == [3, 4]
    local_hub.commit("acme/gpt2", {"modeling_gpt2.py": b"import os\n"})
    with pytest.raises(VerificationError, match=r"modeling_gpt2\.py"):
        verified.from_pretrained(
            transformers.AutoModelForCausalLM, "acme/gpt2", verifier=verifier, **where
        )
