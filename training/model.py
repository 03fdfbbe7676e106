"""Building the model and tokenizer of a run: from a hub id or path, or from a config.

Pure model code: no logging setup, no device choice; ``training.train.main`` decides those.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


def resolve_attn_implementation(name: str, device_type: str) -> str:
    """``auto``: flash_attention_2 on CUDA when flash-attn is installed, else sdpa.

    Packed rows work with every choice: see ``training.packing``.
    """
    if name != "auto":
        return name
    if device_type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


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


def load_pretrained(path: str, *, attn_implementation: str = "sdpa", dtype: Any = None) -> Any:
    """A causal LM from a hub id or a local directory (a LoRA adapter directory included)."""
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
        return PeftModel.from_pretrained(base, path)
    return AutoModelForCausalLM.from_pretrained(
        path, attn_implementation=attn_implementation, dtype=dtype
    )


def load_tokenizer(path: str) -> Any:
    """The tokenizer at ``path`` with a pad token (EOS when it has none), padding left."""
    from transformers import AutoTokenizer

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


def flops_per_token(config: Any, seq_lengths: Iterable[int] | None = None) -> tuple[float, float]:
    """Training FLOPs (forward + backward) per token of a decoder-only transformer.

    Returns (dense, attention): dense = 6 x the matmul weights a token meets (every linear
    layer and the LM head; embeddings are lookups); attention = the causal score and value
    matmuls averaged per token over sequences of ``seq_lengths`` (each attends to itself
    only, as in packed rows): forward 2 matmuls x 2 FLOPs x n^2/2 per layer and head-dim,
    times 3 for forward + backward.
    """
    hidden = config.hidden_size
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    inter = config.intermediate_size
    q_dim = heads * head_dim
    kv_dim = kv_heads * head_dim
    per_layer = hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden + 3 * hidden * inter
    dense = 6.0 * (layers * per_layer + hidden * config.vocab_size)
    attention = 0.0
    if seq_lengths is not None:
        lengths = list(seq_lengths)
        tokens = sum(lengths)
        if tokens:
            attention = 3.0 * 2.0 * 2.0 * layers * q_dim * sum(n * n / 2 for n in lengths) / tokens
    return dense, attention
