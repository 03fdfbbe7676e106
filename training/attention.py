"""How packed rows reach the attention kernel without attending across examples.

A packed row holds several examples; each must see only itself. What keeps them apart depends
on the kernel:

- **sdpa / eager**: no attention mask and ``position_ids`` that restart at 0 for each example;
  transformers finds the boundaries from the position resets and builds a block-diagonal causal
  mask (``masking_utils.find_packed_sequence_indices``), for any batch size.
- **flash_attention_2 / 3**: transformers detects packing from ``position_ids`` **only when the
  batch has one row** (``modeling_flash_attention_utils._is_packed_sequence``); with more rows it
  runs plain causal attention and every example attends to the ones before it in its row. So a
  micro-batch of several rows is flattened to one row of ``rows x max_seq_len`` tokens, and the
  varlen lengths (``cu_seq_lens_q/k``, ``max_length_q/k``) are passed in, computed once per
  batch (:func:`flatten_for_varlen`). The loss is unchanged: a row ends with padding or an
  example's EOS, and the next row begins with a prompt token whose label is -100.
- **flex_attention** (the default packed path on CUDA): a ``BlockMask`` built once per batch,
  outside the model, from the document ids (:func:`packed_block_mask`), and passed as the
  attention mask, so torch.compile sees no data-dependent control flow.
"""

from __future__ import annotations

import importlib.util
from typing import Any

#: Kernels that need a one-row micro-batch to keep packed examples apart.
VARLEN_KERNELS = ("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn")


def resolve_attn_implementation(name: str, device_type: str) -> str:
    """``auto``: flex_attention on CUDA (the packed path with a block mask), sdpa elsewhere.

    flash_attention_2 is used only when asked for by name (it needs flash-attn and the flattened
    one-row micro-batches of :func:`flatten_for_varlen`).
    """
    if name != "auto":
        return name
    if device_type == "cuda":
        return "flex_attention"
    return "sdpa"


def is_varlen_kernel(attn_implementation: str) -> bool:
    return attn_implementation in VARLEN_KERNELS or "flash" in attn_implementation


def packing_mode(attn_implementation: str, rows_per_batch: int) -> str:
    """How packed micro-batches of ``rows_per_batch`` rows are fed to ``attn_implementation``:

    ``"positions"`` (the model finds the boundaries from ``position_ids``), ``"flatten"``
    (flash kernels with more than one row: one row plus varlen lengths) or ``"block_mask"``
    (flex attention).
    """
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be at least 1, got {rows_per_batch}")
    if attn_implementation == "flex_attention":
        return "block_mask"
    if is_varlen_kernel(attn_implementation):
        return "flatten"
    return "positions"


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def sequence_lengths(position_ids: Any) -> list[int]:
    """The lengths of the sequences in a one-row (or flattened) ``position_ids`` (restarts at 0)."""
    flat = position_ids.reshape(-1).tolist()
    starts = [i for i, p in enumerate(flat) if p == 0]
    if not starts or starts[0] != 0:
        raise ValueError("position_ids must start at 0")
    ends = [*starts[1:], len(flat)]
    return [e - s for s, e in zip(starts, ends, strict=True)]


def flatten_for_varlen(batch: dict[str, Any]) -> dict[str, Any]:
    """A packed micro-batch as one row, with the varlen lengths flash-attention needs.

    ``input_ids``, ``labels`` and ``position_ids`` become ``(1, rows * max_len)``;
    ``cu_seq_lens_q/k`` (int32, cumulative lengths starting at 0) and ``max_length_q/k`` are
    added, so transformers calls the varlen kernel without recomputing them in every layer.
    """
    import torch

    out = dict(batch)
    for key in ("input_ids", "labels", "position_ids"):
        if key in batch:
            out[key] = batch[key].reshape(1, -1)
    lengths = sequence_lengths(out["position_ids"])
    cu = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    out["cu_seq_lens_q"] = out["cu_seq_lens_k"] = cu
    out["max_length_q"] = out["max_length_k"] = max(lengths)
    return out


def document_ids(position_ids: Any) -> Any:
    """Per token, the index of its sequence within the row (a new one at each position 0)."""
    import torch

    starts = (position_ids == 0).to(torch.int32)
    return torch.cumsum(starts, dim=-1) - 1


def packed_block_mask(position_ids: Any, device: Any = None) -> Any:
    """A flex-attention ``BlockMask``: causal, and each token sees only its own sequence."""
    from torch.nn.attention.flex_attention import create_block_mask

    docs = document_ids(position_ids)
    if device is not None:
        docs = docs.to(device)
    batch, length = docs.shape

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return (q_idx >= kv_idx) & (docs[b, q_idx] == docs[b, kv_idx])

    return create_block_mask(
        mask_mod, B=batch, H=None, Q_LEN=length, KV_LEN=length, device=docs.device
    )


def check_packing(attn_implementation: str, rows_per_batch: int, mode: str) -> None:
    """Refuse a combination that would let packed examples attend to each other."""
    if is_varlen_kernel(attn_implementation) and rows_per_batch > 1 and mode != "flatten":
        raise ValueError(
            f"{attn_implementation} with packed rows and rows_per_batch={rows_per_batch} "
            "attends across examples (transformers detects packing only in one-row batches): "
            "flatten each micro-batch (training.attention.flatten_for_varlen) or use "
            "rows_per_batch=1"
        )


def prepare_batch(batch: dict[str, Any], mode: str, device: Any) -> dict[str, Any]:
    """The model inputs of a packed micro-batch for packing ``mode`` (see :func:`packing_mode`)."""
    if mode == "flatten":
        batch = flatten_for_varlen(batch)
    inputs = {
        k: v.to(device, non_blocking=True)
        for k, v in batch.items()
        if k in ("input_ids", "labels", "position_ids", "attention_mask", "cu_seq_lens_q",
                 "cu_seq_lens_k")
    }  # fmt: skip
    for k in ("max_length_q", "max_length_k"):
        if k in batch:
            inputs[k] = batch[k]
    if mode == "block_mask" and "attention_mask" not in batch:
        inputs["attention_mask"] = packed_block_mask(batch["position_ids"], device)
    return inputs
