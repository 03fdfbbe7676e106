"""What a training run builds before its first step: the model and tokenizer (fresh, from a base
model, or from a checkpoint to resume), placed on the device in its precision with its optimizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.distributed import Dist
from training.optim import AdamW, cast_model


def _tokenizer_texts(records: list[Any]) -> Iterator[str]:
    from mre.oiellm import encode

    for r in records:
        input_text, output_text = encode(r)
        yield input_text + "\n" + output_text


def build_model_and_tokenizer(
    cfg: TrainConfig, train_records: list[Any], *, attn: str, source: Path | None
) -> tuple[Any, Any]:
    """The model and tokenizer to train (fp32): from the checkpoint ``source`` when resuming,
    else from ``cfg.model`` (+ LoRA), else built from ``cfg.model_config``."""
    import torch

    from training.model import add_lora, build_model_from_config, load_pretrained, load_tokenizer
    from training.tokenizer import train_bpe_tokenizer

    if source is not None:
        tokenizer = load_tokenizer(str(source))
        model = load_pretrained(
            str(source), attn_implementation=attn, dtype=torch.float32, trainable=True,
            input_grads=cfg.gradient_checkpointing,
        )  # fmt: skip
        return model, tokenizer

    if cfg.tokenizer:
        tokenizer = load_tokenizer(cfg.tokenizer)
    elif cfg.model:
        tokenizer = load_tokenizer(cfg.model)
    else:
        tokenizer = train_bpe_tokenizer(_tokenizer_texts(train_records), cfg.tokenizer_vocab_size)
    if cfg.model:
        model = load_pretrained(cfg.model, attn_implementation=attn, dtype=torch.float32)
    else:
        model = build_model_from_config(
            cfg.model_config, tokenizer, attn_implementation=attn, seed=cfg.seed
        )
    if cfg.lora:
        model = add_lora(
            model,
            r=cfg.lora_r,
            alpha=cfg.lora_alpha,
            dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )
    return model, tokenizer


def shared_tokenizer(cfg: TrainConfig, train_records: list[Any], dist: Dist) -> TrainConfig:
    """Rank 0 trains the tokenizer of a from-scratch run and saves it; every rank loads it
    (ranks that each trained their own could disagree on the vocabulary)."""
    import dataclasses

    import torch.distributed as tdist

    from training.tokenizer import train_bpe_tokenizer

    path = Path(cfg.out_dir) / "tokenizer"
    if dist.main:
        tok = train_bpe_tokenizer(_tokenizer_texts(train_records), cfg.tokenizer_vocab_size)
        tok.save_pretrained(path)
    tdist.barrier()
    return dataclasses.replace(cfg, tokenizer=str(path))


def place_model(
    model: Any, cfg: TrainConfig, *, precision: str, device: Any, dist: Dist
) -> tuple[Any, AdamW]:
    """``model`` on ``device`` in its precision, wrapped for DDP / FSDP, and its optimizer.

    The optimizer's fp32 master weights are taken from the fp32 model before the bf16 cast;
    the rotary buffers stay fp32 (``training.optim.cast_model``).
    """
    import torch

    from training.model import apply_liger, decoder_layers

    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if cfg.liger:
        apply_liger(model)
    use_fsdp = dist.world > 1 and cfg.fsdp
    model.to(device)
    model.train()
    if use_fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if precision != "fp32"
            else MixedPrecisionPolicy()
        )
        for layer in decoder_layers(model):
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        # FSDP's DTensor params: foreach, not fused; FSDP keeps fp32 shards itself
        return model, AdamW(model, cfg, master=False, fused=False)
    fused = device.type == "cuda"
    optim = AdamW(model, cfg, master=precision == "bf16", fused=fused)
    if precision in ("bf16", "bf16-pure"):
        cast_model(model, torch.bfloat16)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return model, optim
