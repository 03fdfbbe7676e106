"""FLOP counting for MFU: training FLOPs per token of a decoder-only transformer, and the dense
bf16 peak of the GPUs we know (the one table the trainer's log and the bench both read)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Dense bf16 peak FLOP/s by a substring of ``torch.cuda.get_device_name``.
PEAK_FLOPS: dict[str, float] = {"H200": 790e12, "H100": 989e12, "A100": 312e12}


def peak_flops(device_name: str) -> float | None:
    """The nominal dense bf16 peak of a GPU named ``device_name``; None when unknown."""
    return next((peak for key, peak in PEAK_FLOPS.items() if key in device_name), None)


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
