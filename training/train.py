"""OIELLM fine-tuning: ``python -m training.train --config FILE [key=value | --key value ...]``.

One script for a laptop CPU and a GPU node (``torchrun --nproc-per-node N -m training.train``):

- data: accepted JSONL records -> OIELLM text -> examples packed into rows of
  ``max_seq_len`` tokens (see ``training.packing``); the loss covers the output tokens only and
  is normalised by the output tokens of the whole optimizer step (all micro-batches and ranks);
- model: a base model by hub id / path (full fine-tune or LoRA), or one built from
  ``model_config`` with a byte-level BPE tokenizer trained on the training texts;
- speed on GPU: bf16 (bf16 weights, fp32 master weights in the optimizer), fused AdamW,
  optional torch.compile, gradient checkpointing, liger-kernel (never with compile);
- several GPUs: DDP, or FSDP2 (``fsdp=true``) when ``WORLD_SIZE > 1``;
- checkpoints every ``save_every`` steps (model, tokenizer, optimizer, step, data position, RNG)
  and ``resume=auto``; the learning-rate schedule is a pure function of the step, so the step
  is its whole state; ``out_dir/final`` holds the model that ``training.infer`` loads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import TrainConfig, cli_front, help_text, load_config

logger = logging.getLogger(__name__)

#: Written next to every saved model: how ``training.infer`` must build prompts.
OIELLM_META_FILE = "oiellm.json"
TRAINER_STATE_FILE = "trainer_state.pt"


@dataclass
class TrainResult:
    """What a run did."""

    steps: int
    losses: list[float] = field(default_factory=list)  # mean loss per output token, per step
    eval_loss: float | None = None
    tokens_per_s: float = 0.0  # non-padding tokens per second, all ranks
    padding_waste: float = 0.0
    final_dir: Path | None = None
    model: Any = None  # the trained model, in memory (unwrapped from DDP / compile)
    tokenizer: Any = None


# ---------------------------------------------------------------------------------------------
# distributed setup


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """The process group from torchrun's environment (WORLD_SIZE > 1), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), local_rank=local_rank, world=dist.get_world_size())


def resolve_device(name: str, local_rank: int = 0) -> Any:
    import torch

    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(precision: str, device_type: str) -> str:
    if precision == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    return precision


# ---------------------------------------------------------------------------------------------
# optimizer and schedule


class AdamW:
    """AdamW (fused on CUDA) over the trainable parameters, with weight-decay groups.

    ``master=True`` keeps an fp32 copy of bf16 parameters: gradients are copied to the fp32
    copy, the step runs there, and the result is copied back to the bf16 weights, so updates
    far smaller than a bf16 ulp are not lost. The forward and backward run in bf16 with no
    autocast casts.
    """

    def __init__(self, model: Any, cfg: TrainConfig, *, master: bool, fused: bool) -> None:
        import torch

        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.master = master
        self.shadow = (
            [p.detach().float().clone() for p in self.params] if master else list(self.params)
        )
        decay = [s for p, s in zip(self.params, self.shadow, strict=True) if p.ndim >= 2]
        no_decay = [s for p, s in zip(self.params, self.shadow, strict=True) if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        self.opt = torch.optim.AdamW(
            groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None
        )

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, grad_clip: float) -> float:
        """One update; returns the gradient norm before clipping (0.0 when not measured)."""
        import torch

        if self.master:
            for p, s in zip(self.params, self.shadow, strict=True):
                s.grad = None if p.grad is None else p.grad.detach().float()
        norm = 0.0
        if grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.shadow, grad_clip))
        self.opt.step()
        if self.master:
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.shadow)
        return norm

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
        if self.master:
            for s in self.shadow:
                s.grad = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"opt": self.opt.state_dict()}
        if self.master:
            state["master"] = [s.detach().cpu() for s in self.shadow]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.opt.load_state_dict(state["opt"])
        if self.master and "master" in state:
            with torch.no_grad():
                for s, saved in zip(self.shadow, state["master"], strict=True):
                    s.copy_(saved)
                torch._foreach_copy_(self.params, self.shadow)


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------------------------
# data order


class RowStream:
    """The row indices a rank trains on, epoch after epoch, with a resumable position.

    Each epoch is a seeded permutation of all rows; rank r takes every world-th row of it
    (the tail that does not divide evenly is left out, so every rank runs the same steps).
    """

    def __init__(self, n_rows: int, *, seed: int, rank: int = 0, world: int = 1) -> None:
        if n_rows < world:
            raise ValueError(f"{n_rows} packed rows cannot feed {world} ranks")
        self.n_rows, self.seed, self.rank, self.world = n_rows, seed, rank, world
        self.epoch = 0
        self.pos = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> list[int]:
        order = list(range(self.n_rows))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        usable = self.n_rows - self.n_rows % self.world
        return order[self.rank : usable : self.world]

    @property
    def rows_per_epoch(self) -> int:
        return len(self._order)

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if self.pos >= len(self._order):
                self.epoch += 1
                self.pos = 0
                self._order = self._epoch_order()
            out.append(self._order[self.pos])
            self.pos += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._epoch_order()


# ---------------------------------------------------------------------------------------------
# steps


def forward_loss(model: Any, batch: dict[str, Any], device: Any, num_items: Any) -> Any:
    """The summed token loss of ``batch`` divided by ``num_items`` (HF ``num_items_in_batch``)."""
    inputs = {
        k: batch[k].to(device, non_blocking=True)
        for k in ("input_ids", "labels", "position_ids", "attention_mask")
        if k in batch
    }
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
                loss = forward_loss(model, batch, device, k)
            total += float(loss) * k
            n += k
    model.train(was_training)
    return total / n if n else float("nan")


# ---------------------------------------------------------------------------------------------
# checkpoints


def write_oiellm_meta(directory: Path, cfg: TrainConfig) -> None:
    meta = {"format": "oiellm", "prompt_style": cfg.prompt_style}
    (directory / OIELLM_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _unwrap(model: Any) -> Any:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)  # DDP


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path,
    *,
    model: Any,
    tokenizer: Any,
    optim: AdamW | None,
    cfg: TrainConfig,
    step: int,
    stream: RowStream | None,
    dist: Dist,
    merge_lora: bool = False,
) -> None:
    """Model + tokenizer (``save_pretrained``), OIELLM meta and, with ``optim``, the trainer
    state. Written to a temporary directory first, then renamed into place."""
    import torch

    raw = _unwrap(model)
    state_dict = None
    optim_state = optim.state_dict() if optim is not None and not cfg.fsdp else None
    if dist.world > 1 and cfg.fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state_dict = get_model_state_dict(raw, options=options)
        if optim is not None:
            optim_state = {"opt": get_optimizer_state_dict(raw, optim.opt, options=options)}
    if not dist.main:
        return
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    to_save = raw
    if merge_lora and hasattr(raw, "merge_and_unload"):
        import copy

        to_save = copy.deepcopy(raw).merge_and_unload()
    to_save.save_pretrained(tmp, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    write_oiellm_meta(tmp, cfg)
    if optim_state is not None:
        torch.save(
            {
                "step": step,
                "optimizer": optim_state,
                "stream": stream.state_dict() if stream is not None else None,
                "rng": _rng_state(),
                "config": cfg.to_dict(),
            },
            tmp / TRAINER_STATE_FILE,
        )
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)


def find_latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"))
    ckpts = [c for c in ckpts if (c / TRAINER_STATE_FILE).exists()]
    return ckpts[-1] if ckpts else None


def _prune_checkpoints(out_dir: Path, keep: int) -> None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"))
    ckpts = [c for c in ckpts if not c.name.endswith(".tmp")]
    for old in ckpts[: max(0, len(ckpts) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the run


def _resume_dir(cfg: TrainConfig) -> Path | None:
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        found = find_latest_checkpoint(Path(cfg.out_dir))
        if found is None:
            logger.info("resume=auto: no checkpoint in %s, starting fresh", cfg.out_dir)
        return found
    path = Path(cfg.resume)
    if not (path / TRAINER_STATE_FILE).exists():
        raise FileNotFoundError(f"resume={cfg.resume}: no {TRAINER_STATE_FILE} there")
    return path


def _tokenizer_texts(records: list[Any]) -> Iterator[str]:
    from mre.oiellm import encode

    for r in records:
        input_text, output_text = encode(r)
        yield input_text + "\n" + output_text


def build_model_and_tokenizer(
    cfg: TrainConfig, train_records: list[Any], *, device_type: str, source: Path | None
) -> tuple[Any, Any]:
    """The model and tokenizer to train: from the checkpoint ``source`` when resuming, else
    from ``cfg.model`` (+ LoRA), else built from ``cfg.model_config``."""
    from training.model import (
        add_lora,
        build_model_from_config,
        load_pretrained,
        load_tokenizer,
        resolve_attn_implementation,
    )
    from training.tokenizer import train_bpe_tokenizer

    attn = resolve_attn_implementation(cfg.attn_implementation, device_type)
    if source is not None:
        tokenizer = load_tokenizer(str(source))
        if (source / "adapter_config.json").exists():
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            base_path = json.loads((source / "adapter_config.json").read_text())[
                "base_model_name_or_path"
            ]
            base = AutoModelForCausalLM.from_pretrained(base_path, attn_implementation=attn)
            if cfg.gradient_checkpointing:
                base.enable_input_require_grads()
            return PeftModel.from_pretrained(base, str(source), is_trainable=True), tokenizer
        return load_pretrained(str(source), attn_implementation=attn), tokenizer

    if cfg.tokenizer:
        tokenizer = load_tokenizer(cfg.tokenizer)
    elif cfg.model:
        tokenizer = load_tokenizer(cfg.model)
    else:
        tokenizer = train_bpe_tokenizer(_tokenizer_texts(train_records), cfg.tokenizer_vocab_size)
    if cfg.model:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            cfg.model, attn_implementation=attn, dtype=torch.float32
        )
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


def _shared_tokenizer(cfg: TrainConfig, train_records: list[Any], dist: Dist) -> TrainConfig:
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


def main(cfg: TrainConfig) -> TrainResult:
    """Train as ``cfg`` says; returns the losses and figures of the run."""
    import torch

    from training.data import build_examples, load_records, split_records
    from training.model import apply_liger, decoder_layers, flops_per_token
    from training.packing import collate_packed, count_loss_tokens, pack_examples

    if cfg.lora and cfg.fsdp:
        raise ValueError("lora with fsdp is not supported: use DDP (fsdp=false) for LoRA runs")
    dist = init_distributed()
    device = resolve_device(cfg.device, dist.local_rank)
    precision = resolve_precision(cfg.precision, device.type)
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

    source = _resume_dir(cfg)
    if source is None and not cfg.model and not cfg.tokenizer and dist.world > 1:
        cfg = _shared_tokenizer(cfg, train_records, dist)
    model, tokenizer = build_model_and_tokenizer(
        cfg, train_records, device_type=device.type, source=source
    )
    pad_id = tokenizer.pad_token_id
    examples, _ = build_examples(train_records, tokenizer, cfg.prompt_style, cfg.max_seq_len)
    if not examples:
        raise ValueError(f"no training example fits in max_seq_len={cfg.max_seq_len} tokens")
    rows, stats = pack_examples(examples, cfg.max_seq_len, seed=cfg.seed)
    eval_examples, _ = build_examples(eval_records, tokenizer, cfg.prompt_style, cfg.max_seq_len)
    eval_rows, _ = pack_examples(eval_examples, cfg.max_seq_len, seed=cfg.seed)
    if dist.main:
        logger.info(
            "data: %d train records -> %s; %d eval records",
            len(train_records),
            stats,
            len(eval_records),
        )

    # -- model on the device, in its precision
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if cfg.liger:
        apply_liger(model)
    use_fsdp = dist.world > 1 and cfg.fsdp
    if precision in ("bf16", "bf16-pure") and not use_fsdp:
        model.to(dtype=torch.bfloat16)
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
    elif dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optim = AdamW(
        model,
        cfg,
        master=precision == "bf16" and not use_fsdp,
        fused=device.type == "cuda" and not use_fsdp,  # FSDP's DTensor params: foreach
    )
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
        state = torch.load(source / TRAINER_STATE_FILE, map_location="cpu", weights_only=False)
        step = int(state["step"])
        if use_fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(
                model,
                optim.opt,
                state["optimizer"]["opt"],
                options=StateDictOptions(full_state_dict=True),
            )
        else:
            optim.load_state_dict(state["optimizer"])
        if state.get("stream"):
            stream.load_state_dict(state["stream"])
        _set_rng_state(state["rng"])
        if dist.main:
            logger.info("resumed from %s at step %d", source, step)

    def run_eval() -> float:
        return evaluate(
            model,
            eval_rows,
            max_len=cfg.max_seq_len,
            pad_id=pad_id,
            batch_rows=cfg.rows_per_batch,
            device=device,
            autocast=autocast,
        )

    def save_step_checkpoint(step: int) -> None:
        save_checkpoint(
            out_dir / "checkpoints" / f"step-{step:07d}",
            model=model,
            tokenizer=tokenizer,
            optim=optim,
            cfg=cfg,
            step=step,
            stream=stream,
            dist=dist,
        )
        if dist.main:
            _prune_checkpoints(out_dir, cfg.keep_checkpoints)

    dense_flops, attn_flops = flops_per_token(_unwrap(model).config, (len(e) for e in examples))
    peak = _peak_flops(device) if device.type == "cuda" else None
    result = TrainResult(steps=step, padding_waste=stats.padding_waste)
    progress = _progress(total_steps, step, enabled=cfg.progress and dist.main)
    tokens_seen, t_start = 0, time.perf_counter()
    t_log, tokens_log = t_start, 0

    while step < total_steps:
        optim.set_lr(lr_at(step, cfg, total_steps))
        micro = [
            collate_packed(
                [rows[i] for i in stream.take(cfg.rows_per_batch)], cfg.max_seq_len, pad_id
            )
            for _ in range(cfg.grad_accum)
        ]
        n_items = sum(count_loss_tokens(b) for b in micro)
        n_tokens = sum(int(b["n_tokens"]) for b in micro)
        if dist.world > 1:
            import torch.distributed as tdist

            counts = torch.tensor([n_items, n_tokens], device=device)
            tdist.all_reduce(counts)
            n_items, n_tokens = int(counts[0]), int(counts[1])
        # a tensor, so that torch.compile does not recompile for every new count
        n_items_t = torch.tensor(max(1, n_items), device=device)
        # DDP and FSDP average gradients over ranks; scale so the step's loss is the sum over
        # every rank's output tokens divided by their global count
        scale = float(dist.world)
        step_loss = torch.zeros((), device=device)
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1
            sync = contextlib.nullcontext()
            if dist.world > 1 and not use_fsdp and not last:
                sync = model.no_sync()
            elif use_fsdp:
                model.set_requires_gradient_sync(last)
            with sync, autocast():
                loss = forward_loss(train_model, batch, device, n_items_t) * scale
            loss.backward()
            step_loss += loss.detach() / scale
        optim.step(cfg.grad_clip)
        optim.zero_grad()
        step += 1
        tokens_seen += n_tokens
        tokens_log += n_tokens
        loss_value = float(step_loss) if dist.world == 1 else _sum_over_ranks(step_loss)
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
                    "step %d/%d loss %.4f lr %.2e tok/s %.0f%s",
                    step,
                    total_steps,
                    loss_value,
                    lr_at(step - 1, cfg, total_steps),
                    tps,
                    mfu,
                )
        if eval_rows and cfg.eval_every and step % cfg.eval_every == 0 and step < total_steps:
            eval_loss = run_eval()
            if dist.main:
                logger.info("step %d eval loss %.4f", step, eval_loss)
        if cfg.max_minutes and _time_is_up(t_start, cfg.max_minutes, dist, device):
            if dist.main:
                logger.info("max_minutes=%s reached at step %d; stopping", cfg.max_minutes, step)
            total_steps = step
        if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
            save_step_checkpoint(step)
    progress.close()

    elapsed = time.perf_counter() - t_start
    result.steps = step
    result.tokens_per_s = tokens_seen / elapsed if elapsed > 0 else 0.0
    if eval_rows:
        result.eval_loss = run_eval()
        if dist.main:
            logger.info("eval loss %.4f", result.eval_loss)
    if cfg.save_every:
        save_step_checkpoint(step)
    final = out_dir / "final"
    save_checkpoint(
        final,
        model=model,
        tokenizer=tokenizer,
        optim=None,
        cfg=cfg,
        step=step,
        stream=None,
        dist=dist,
        merge_lora=True,
    )
    result.final_dir = final
    result.model = _unwrap(model)
    result.tokenizer = tokenizer
    if dist.main:
        logger.info(
            "done: %d steps, %.0f tokens/s, padding waste %.1f%%, model in %s",
            step,
            result.tokens_per_s,
            100 * stats.padding_waste,
            final,
        )
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.destroy_process_group()
    return result


def _time_is_up(t_start: float, minutes: float, dist: Dist, device: Any) -> bool:
    """Whether ``minutes`` have passed; ranks agree (any rank's clock decides for all)."""
    up = time.perf_counter() - t_start > 60 * minutes
    if dist.world == 1:
        return up
    import torch
    import torch.distributed as tdist

    flag = torch.tensor([1 if up else 0], device=device)
    tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
    return bool(flag.item())


def _sum_over_ranks(value: Any) -> float:
    """Each rank's step loss is its tokens' loss sum over the global token count: add them."""
    import torch.distributed as tdist

    value = value.clone()
    tdist.all_reduce(value)
    return float(value)


def _peak_flops(device: Any) -> float | None:
    """Dense bf16 peak of known GPUs (FLOP/s), for the MFU in the log."""
    import torch

    name = torch.cuda.get_device_name(device)
    for key, peak in (("H200", 790e12), ("H100", 989e12), ("A100", 312e12)):
        if key in name:
            return peak
    return None


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
