"""OIELLM fine-tuning: ``python -m training.train --config FILE [key=value | --key value ...]``.

One script for a laptop CPU and a GPU node (``torchrun --nproc-per-node N -m training.train``):

- data: accepted JSONL records -> OIELLM text -> examples packed into rows of
  ``max_seq_len`` tokens (``training.packing``); the loss covers the output tokens only and
  is normalised by the output tokens of the whole optimizer step (all micro-batches and ranks);
- model: a base model by hub id / path (full fine-tune or LoRA), or one built from
  ``model_config`` with a byte-level BPE tokenizer trained on the training texts;
- packed attention (``training.attention``): flex attention with a block mask on CUDA, sdpa
  elsewhere; flash-attention micro-batches are flattened to one row;
- speed on GPU: bf16 (bf16 weights, fp32 master weights taken before the cast, rotary buffers
  kept fp32), fused AdamW, optional torch.compile, gradient checkpointing, liger-kernel;
- several GPUs: DDP, or FSDP2 (``fsdp=true``) when ``WORLD_SIZE > 1`` (``training.distributed``);
- checkpoints every ``save_every`` steps and ``resume=auto`` (``training.checkpoint``); the
  learning-rate schedule is a pure function of the step (``training.optim``); ``out_dir/final``
  holds the model that ``training.infer`` loads.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.build import build_model_and_tokenizer, place_model, shared_tokenizer
from training.checkpoint import (
    OIELLM_META_FILE,
    TRAINER_STATE_FILE,
    load_trainer_state,
    prune_checkpoints,
    resume_dir,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from training.config import TrainConfig, cli_front, help_text, load_config
from training.distributed import (
    all_reduce_counts,
    destroy,
    init_distributed,
    resolve_device,
    resolve_precision,
    sum_over_ranks,
    time_is_up,
)
from training.optim import AdamW, lr_at
from training.sampler import RowStream

__all__ = [
    "OIELLM_META_FILE",
    "TRAINER_STATE_FILE",
    "AdamW",
    "RowStream",
    "TrainResult",
    "evaluate",
    "forward_loss",
    "lr_at",
    "main",
]

logger = logging.getLogger(__name__)

#: Steps left out of ``tokens_per_s_steady`` (torch.compile and allocator warm-up).
WARM_STEPS = 3


@dataclass
class TrainResult:
    """What a run did."""

    steps: int
    losses: list[float] = field(default_factory=list)  # mean loss per output token, per step
    eval_loss: float | None = None
    tokens_per_s: float = 0.0  # non-padding tokens per second, all ranks
    tokens_per_s_steady: float = 0.0  # the same after the first WARM_STEPS (compile excluded)
    rows: int = 0  # packed training rows (an epoch)
    padding_waste: float = 0.0
    final_dir: Path | None = None
    model: Any = None  # the trained model, in memory (unwrapped from DDP / compile)
    tokenizer: Any = None
    span_labels: dict[str, list[str]] = field(default_factory=dict)  # saved in oiellm.json


def forward_loss(
    model: Any, batch: dict[str, Any], device: Any, num_items: Any, mode: str = "positions"
) -> Any:
    """The summed token loss of ``batch`` divided by ``num_items`` (HF ``num_items_in_batch``).

    ``mode`` is the packing mode of ``training.attention.packing_mode``.
    """
    from training.attention import prepare_batch

    inputs = prepare_batch(batch, mode, device)
    out = model(**inputs, num_items_in_batch=num_items, use_cache=False)
    return out.loss


def evaluate(
    model: Any,
    rows: list[list[Any]],
    *,
    max_len: int,
    pad_id: int,
    batch_rows: int,
    device: Any,
    autocast: Any,
    mode: str = "positions",
) -> float:
    """Mean loss per output token over packed ``rows``."""
    import torch

    from training.packing import collate_packed, count_loss_tokens

    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_rows):
            batch = collate_packed(rows[i : i + batch_rows], max_len, pad_id)
            k = count_loss_tokens(batch)
            if k == 0:
                continue
            with autocast():
                loss = forward_loss(model, batch, device, k, mode)
            total += float(loss) * k
            n += k
    model.train(was_training)
    return total / n if n else float("nan")


# ---------------------------------------------------------------------------------------------
# the run


def main(cfg: TrainConfig) -> TrainResult:
    """Train as ``cfg`` says; returns the losses and figures of the run."""
    import torch

    from training.attention import check_packing, packing_mode, resolve_attn_implementation
    from training.data import build_examples, labels_by_task, load_records, split_records
    from training.flops import flops_per_token, peak_flops
    from training.model import check_model_source
    from training.packing import collate_packed, count_loss_tokens, pack_examples

    if cfg.lora and cfg.fsdp:
        raise ValueError("lora with fsdp is not supported: use DDP (fsdp=false) for LoRA runs")
    for name in ("model", "tokenizer"):
        if getattr(cfg, name):
            check_model_source(getattr(cfg, name), what=name)  # before any data is read
    dist = init_distributed()
    device = resolve_device(cfg.device, dist.local_rank)
    precision = resolve_precision(cfg.precision, device.type)
    attn = resolve_attn_implementation(cfg.attn_implementation, device.type)
    mode = packing_mode(attn, cfg.rows_per_batch)
    check_packing(attn, cfg.rows_per_batch, mode)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)

    # -- data
    records = load_records(cfg.train_files, tasks=cfg.tasks, langs=cfg.langs)
    if not records:
        raise ValueError(
            f"no training records in {cfg.train_files} (tasks={cfg.tasks}, langs={cfg.langs})"
        )
    if cfg.eval_files:
        train_records = records
        eval_records = load_records(cfg.eval_files, tasks=cfg.tasks, langs=cfg.langs)
    else:
        train_records, eval_records = split_records(records, cfg.eval_fraction, cfg.seed)

    span_labels = labels_by_task(train_records)
    source = resume_dir(cfg)
    if source is None and not cfg.model and not cfg.tokenizer and dist.world > 1:
        cfg = shared_tokenizer(cfg, train_records, dist)
    model, tokenizer = build_model_and_tokenizer(cfg, train_records, attn=attn, source=source)
    pad_id = tokenizer.pad_token_id
    examples, _ = build_examples(train_records, tokenizer, cfg.prompt_style, cfg.max_seq_len)
    if not examples:
        raise ValueError(f"no training example fits in max_seq_len={cfg.max_seq_len} tokens")
    rows, stats = pack_examples(examples, cfg.max_seq_len, seed=cfg.seed)
    eval_examples, _ = build_examples(eval_records, tokenizer, cfg.prompt_style, cfg.max_seq_len)
    eval_rows, _ = pack_examples(eval_examples, cfg.max_seq_len, seed=cfg.seed)
    if dist.main:
        logger.info(
            "data: %d train records -> %s; %d eval records; attention %s (%s)",
            len(train_records), stats, len(eval_records), attn, mode,
        )  # fmt: skip

    model, optim = place_model(model, cfg, precision=precision, device=device, dist=dist)
    use_fsdp = dist.world > 1 and cfg.fsdp
    train_model = torch.compile(model) if cfg.compile else model

    def autocast() -> Any:
        if precision == "autocast":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- schedule and position
    stream = RowStream(len(rows), seed=cfg.seed, rank=dist.rank, world=dist.world)
    rows_per_step = cfg.rows_per_batch * cfg.grad_accum
    if cfg.max_steps > 0:
        total_steps = cfg.max_steps
    else:
        total_steps = max(1, math.ceil(cfg.epochs * stream.rows_per_epoch / rows_per_step))
    step = 0
    if source is not None:
        state = load_trainer_state(source)
        step = int(state["step"])
        if use_fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(
                model, optim.opt, state["optimizer"]["opt"],
                options=StateDictOptions(full_state_dict=True),
            )  # fmt: skip
        else:
            optim.load_state_dict(state["optimizer"])
        if state.get("stream"):
            stream.load_state_dict(state["stream"])
        set_rng_state(state["rng"])
        if dist.main:
            logger.info("resumed from %s at step %d", source, step)

    def run_eval() -> float:
        return evaluate(
            model, eval_rows, max_len=cfg.max_seq_len, pad_id=pad_id,
            batch_rows=cfg.rows_per_batch, device=device, autocast=autocast, mode=mode,
        )  # fmt: skip

    def save_step_checkpoint(step: int) -> None:
        save_checkpoint(
            out_dir / "checkpoints" / f"step-{step:07d}", model=model, tokenizer=tokenizer,
            optim=optim, cfg=cfg, step=step, stream=stream, dist=dist, span_labels=span_labels,
        )  # fmt: skip
        if dist.main:
            prune_checkpoints(out_dir, cfg.keep_checkpoints)

    dense_flops, attn_flops = flops_per_token(unwrap(model).config, (len(e) for e in examples))
    peak = peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    result = TrainResult(steps=step, padding_waste=stats.padding_waste, rows=len(rows))
    progress = _progress(total_steps, step, enabled=cfg.progress and dist.main)
    tokens_seen, t_start = 0, time.perf_counter()
    t_log, tokens_log = t_start, 0
    first_step, t_warm, tokens_warm = step, t_start, 0

    while step < total_steps:
        optim.set_lr(lr_at(step, cfg, total_steps))
        micro = [
            collate_packed(
                [rows[i] for i in stream.take(cfg.rows_per_batch)], cfg.max_seq_len, pad_id
            )
            for _ in range(cfg.grad_accum)
        ]
        n_items, n_tokens = all_reduce_counts(
            [sum(count_loss_tokens(b) for b in micro), sum(int(b["n_tokens"]) for b in micro)],
            dist,
            device,
        )
        # a tensor, so that torch.compile does not recompile for every new count
        n_items_t = torch.tensor(max(1, n_items), device=device)
        # DDP and FSDP average gradients over ranks; scale so the step's loss is the sum over
        # every rank's output tokens divided by their global count
        scale = float(dist.world)
        step_loss = torch.zeros((), device=device)
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1
            sync: Any = contextlib.nullcontext()
            if dist.world > 1 and not use_fsdp and not last:
                sync = model.no_sync()
            elif use_fsdp:
                model.set_requires_gradient_sync(last)
            with sync, autocast():
                loss = forward_loss(train_model, batch, device, n_items_t, mode) * scale
            loss.backward()
            step_loss += loss.detach() / scale
        optim.step(cfg.grad_clip)
        optim.zero_grad()
        step += 1
        tokens_seen += n_tokens
        tokens_log += n_tokens
        if step - first_step == WARM_STEPS:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_warm, tokens_warm = time.perf_counter(), tokens_seen
        loss_value = float(step_loss) if dist.world == 1 else sum_over_ranks(step_loss)
        result.losses.append(loss_value)
        progress.update(1)
        if step % cfg.log_every == 0 or step == total_steps:
            now = time.perf_counter()
            tps = tokens_log / max(now - t_log, 1e-9)
            t_log, tokens_log = now, 0
            mfu = ""
            if peak:
                mfu = f" mfu {100 * tps * (dense_flops + attn_flops) / (peak * dist.world):.1f}%"
            progress.set_postfix(loss=f"{loss_value:.4f}", tok_s=f"{tps:,.0f}")
            if dist.main:
                logger.info(
                    "step %d/%d loss %.4f lr %.2e tok/s %.0f%s", step, total_steps, loss_value,
                    lr_at(step - 1, cfg, total_steps), tps, mfu,
                )  # fmt: skip
        if eval_rows and cfg.eval_every and step % cfg.eval_every == 0 and step < total_steps:
            eval_loss = run_eval()
            if dist.main:
                logger.info("step %d eval loss %.4f", step, eval_loss)
        if cfg.max_minutes and time_is_up(t_start, cfg.max_minutes, dist, device):
            if dist.main:
                logger.info("max_minutes=%s reached at step %d; stopping", cfg.max_minutes, step)
            total_steps = step
        if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
            save_step_checkpoint(step)
    progress.close()

    elapsed = time.perf_counter() - t_start
    result.steps = step
    result.tokens_per_s = tokens_seen / elapsed if elapsed > 0 else 0.0
    if step - first_step > WARM_STEPS:
        steady = time.perf_counter() - t_warm
        result.tokens_per_s_steady = (tokens_seen - tokens_warm) / steady if steady > 0 else 0.0
    else:
        result.tokens_per_s_steady = result.tokens_per_s
    if eval_rows:
        result.eval_loss = run_eval()
        if dist.main:
            logger.info("eval loss %.4f", result.eval_loss)
    if cfg.save_every:
        save_step_checkpoint(step)
    final = out_dir / "final"
    save_checkpoint(
        final, model=model, tokenizer=tokenizer, optim=None, cfg=cfg, step=step, stream=None,
        dist=dist, merge_lora=True, span_labels=span_labels,
    )  # fmt: skip
    result.final_dir = final
    result.model = unwrap(model)
    result.tokenizer = tokenizer
    result.span_labels = span_labels
    if dist.main:
        logger.info(
            "done: %d steps, %.0f tokens/s, padding waste %.1f%%, model in %s",
            step, result.tokens_per_s, 100 * stats.padding_waste, final,
        )  # fmt: skip
    destroy(dist)
    return result


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, *, enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


def cli(argv: list[str] | None = None) -> int:
    cfg = cli_front(
        argv,
        load_config,
        doc=__doc__,
        options="options (--config FILE, then key=value or --key value):\n" + help_text(),
    )
    if isinstance(cfg, int):
        return cfg
    main(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
