"""Building the model and tokenizer of a run: from a hub id or path, or from a config.

Pure model code: no logging setup, no device choice; ``training.train.main`` decides those.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


def build_model_from_config(
    model_config: dict[str, Any],
    tokenizer: Any,
    *,
    attn_implementation: str = "sdpa",
    seed: int | None = None,
) -> Any:
    """A randomly initialised causal LM from a config mapping (``model_type`` plus sizes).

    The vocabulary and the pad / EOS ids come from the tokenizer.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = dict(model_config)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ValueError("model_config needs a model_type, e.g. qwen2 or llama")
    values.setdefault("vocab_size", len(tokenizer))
    values.setdefault("pad_token_id", tokenizer.pad_token_id)
    values.setdefault("eos_token_id", tokenizer.eos_token_id)
    values.setdefault("bos_token_id", tokenizer.bos_token_id)
    config = AutoConfig.for_model(model_type, **values)
    if seed is not None:
        torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)


def check_model_source(name: str, *, what: str = "model") -> None:
    """Fail fast, before any data is read, when ``name`` is neither a local directory nor a
    hub id that can be had (in the local cache when ``HF_HUB_OFFLINE`` is set, else online)."""
    from pathlib import Path

    path = Path(name)
    if path.is_dir():
        if not any(
            (path / f).exists()
            for f in (
                "config.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "adapter_config.json",
            )
        ):
            raise FileNotFoundError(
                f"{what}={name}: the directory holds no config.json / tokenizer files "
                "(expected a save_pretrained directory)"
            )
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or path.suffix
    if looks_local:
        raise FileNotFoundError(f"{what}={name}: no such directory")
    import huggingface_hub
    from huggingface_hub import constants

    cached = huggingface_hub.try_to_load_from_cache(name, "config.json")
    if what == "tokenizer" and not isinstance(cached, str):
        cached = huggingface_hub.try_to_load_from_cache(name, "tokenizer_config.json")
    if isinstance(cached, str):
        return
    if constants.HF_HUB_OFFLINE:
        raise FileNotFoundError(
            f"{what}={name}: not a local directory and not in the Hugging Face cache, and "
            "HF_HUB_OFFLINE is set; download it first (huggingface-cli download "
            f"{name}) or pass a local directory"
        )
    try:
        huggingface_hub.model_info(name, timeout=10)
    except Exception as err:  # any failure means the same thing here: it cannot be loaded
        raise FileNotFoundError(
            f"{what}={name}: not a local directory, and the hub did not answer for it "
            f"({type(err).__name__}: {str(err)[:200]})"
        ) from err


def load_pretrained(
    path: str,
    *,
    attn_implementation: str = "sdpa",
    dtype: Any = None,
    trainable: bool = False,
    input_grads: bool = False,
) -> Any:
    """A causal LM from a hub id or a local directory (a LoRA adapter directory included).

    ``trainable``: LoRA adapters are loaded trainable; ``input_grads``: the base model's input
    embeddings require grads (LoRA with gradient checkpointing).
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    adapter = Path(path) / "adapter_config.json"
    if adapter.exists():
        import json

        from peft import PeftModel

        base_path = json.loads(adapter.read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(
            base_path, attn_implementation=attn_implementation, dtype=dtype
        )
        if input_grads:
            base.enable_input_require_grads()
        return PeftModel.from_pretrained(base, path, is_trainable=trainable)
    return AutoModelForCausalLM.from_pretrained(
        path, attn_implementation=attn_implementation, dtype=dtype
    )


#: ``tokenizer_class`` values of a tokenizer trained on the spot (``training.tokenizer``):
#: a plain fast tokenizer whose ``tokenizer.json`` is the whole truth.
PLAIN_TOKENIZER_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend")


def load_tokenizer(path: str) -> Any:
    """The tokenizer at ``path`` with a pad token (EOS when it has none).

    A tokenizer trained on the spot is loaded as the plain fast tokenizer it was saved as:
    ``AutoTokenizer`` would pick the model type's class (``Qwen2Tokenizer`` next to a qwen2
    config) with another pre-tokenizer, and text with digits (``1984年``) would tokenize
    differently from training.
    """
    import json
    from pathlib import Path

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config = Path(path) / "tokenizer_config.json"
    tok: Any = None
    if config.is_file() and (Path(path) / "tokenizer.json").is_file():
        cls = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class")
        if cls in PLAIN_TOKENIZER_CLASSES:
            tok = PreTrainedTokenizerFast.from_pretrained(path)
    if tok is None:
        tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def add_lora(
    model: Any,
    *,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: Iterable[str],
    gradient_checkpointing: bool = False,
) -> Any:
    """``model`` with LoRA adapters (peft); only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    if gradient_checkpointing:
        model.enable_input_require_grads()
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def apply_liger(model: Any) -> bool:
    """Patch ``model`` with liger-kernel (fused RMSNorm, SwiGLU, RoPE, linear+cross-entropy).

    Returns False, with a warning, when liger-kernel is not installed. Never use it together
    with torch.compile: on an H200 that combination crashed with an illegal memory access.
    """
    if importlib.util.find_spec("liger_kernel") is None:
        logger.warning("liger=true but liger-kernel is not installed (pip install liger-kernel)")
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    _apply_liger_kernel_to_instance(model=target)
    return True


def decoder_layers(model: Any) -> list[Any]:
    """The transformer blocks of ``model`` (the units FSDP shards one by one)."""
    return [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]


def count_parameters(model: Any, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
