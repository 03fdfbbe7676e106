"""Training throughput of OIELLM fine-tuning on one GPU, against a naive baseline.

    python bench/train_throughput.py                     # on a CUDA machine (H200 target)
    python bench/train_throughput.py --smoke             # a tiny CPU version: does it run?
    python bench/train_throughput.py --real-data         # also: train from scratch on the
                                                         # Japanese data, F1 on held-out 10%

A Qwen2-0.5B-shaped model (random weights) trains on MRE-length examples (64-320 tokens,
random token ids, the last 25-40% of each is output). Every variant reports non-padding
tokens/s and MFU: model FLOPs of the real tokens (6 x matmul weights + causal attention within
each example) per second, over the bf16 matmul peak measured here and over the nominal one.

Variants (``--variants``, comma-separated; each one fails alone without stopping the rest):

- ``baseline``: fp32 weights + bf16 autocast, each batch padded to its longest example,
  plain (foreach) AdamW, no compile -- the naive recipe;
- ``packed``: examples packed into rows of ``--seq-len`` tokens (position resets, no
  attention between examples), bf16 weights with an fp32 master copy, fused AdamW;
- ``packed-compile``: the same under torch.compile;
- ``packed-flex-compile``: with transformers' flex_attention, whose block mask skips the
  blocks that packing masks out, under torch.compile;
- ``packed-liger``: liger-kernel in eager mode, when it is installed (never with compile:
  that combination crashed with an illegal memory access on an H200).

Targets: >= 50% MFU and >= 5x the baseline's tokens/s. The figures are appended to
bench/RESULTS.md (``--results``) with the date, GPU and versions.

Nothing here needs pydantic except ``--real-data`` (records, the text format and the
word-level F1 come from ``mre``/``training``/``eval``). The device image has no pydantic:
carry its wheels (pydantic, pydantic-core, annotated-types, typing-inspection) for that mode.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.util
import json
import platform
import random
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.attention import packing_mode  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.flops import flops_per_token, peak_flops  # noqa: E402
from training.model import build_model_from_config  # noqa: E402
from training.optim import AdamW, cast_model  # noqa: E402
from training.packing import (  # noqa: E402
    Example,
    collate_packed,
    collate_padded,
    count_loss_tokens,
    pack_examples,
)
from training.train import forward_loss  # noqa: E402

QWEN2_05B = dict(
    model_type="qwen2",
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    vocab_size=151936,
)
SMOKE_MODEL = dict(
    model_type="qwen2",
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    tie_word_embeddings=True,
    vocab_size=1000,
)


class SyntheticVocab:
    """What ``build_model_from_config`` reads from a tokenizer."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pad_token_id, self.eos_token_id, self.bos_token_id = 0, 1, None

    def __len__(self) -> int:
        return self.size


def synthetic_examples(n: int, vocab: int, lo: int, hi: int, seed: int) -> list[Example]:
    """``n`` examples of ``lo``..``hi`` random tokens; the last 25-40% is the output."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(lo, hi)
        n_out = max(1, int(length * rng.uniform(0.25, 0.40)))
        ids = (*(rng.randrange(2, vocab) for _ in range(length - 1)), 1)
        out.append(Example(ids=ids, n_prompt=length - n_out))
    return out


# ---------------------------------------------------------------------------------------------
# measurements


def matmul_peak(device: Any, dtype: Any, size: int, seconds: float = 3.0) -> float:
    """FLOP/s of repeated square matmuls (the achievable dense peak)."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            a @ b
        n += 10
        _sync(device)
    elapsed = time.perf_counter() - t0
    return 2.0 * size**3 * n / elapsed


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class VariantResult:
    name: str
    tokens_per_s: float = 0.0
    flops_per_s: float = 0.0
    steps: int = 0
    tokens_per_step: float = 0.0
    padding_waste: float = 0.0
    max_memory_gb: float = 0.0
    final_loss: float = float("nan")
    error: str = ""


def run_variant(
    name: str,
    *,
    model_config: dict[str, Any],
    examples: list[Example],
    device: Any,
    seq_len: int,
    rows: int,
    batch_examples: int,
    warmup_steps: int,
    seconds: float,
    max_steps: int,
) -> VariantResult:
    """Train variant ``name`` for ``seconds`` (after warm-up) and measure it."""
    import torch

    result = VariantResult(name)
    packed = name.startswith("packed")
    on_gpu = device.type == "cuda"
    attn = "flex_attention" if "flex" in name else "sdpa"
    vocab = SyntheticVocab(model_config["vocab_size"])
    with device:  # initialise the weights where they will live (fast on a GPU)
        model = build_model_from_config(model_config, vocab, attn_implementation=attn, seed=0)
    model.config.use_cache = False
    if "liger" in name:
        from training.model import apply_liger

        if not apply_liger(model):
            raise RuntimeError("liger-kernel is not installed")
    cfg = TrainConfig(model_config=model_config, lr=1e-4, weight_decay=0.0)
    mode = packing_mode(attn, rows) if packed else "positions"
    if packed:  # fp32 master weights taken before the bf16 cast; RoPE buffers stay fp32
        model.to(device)
        optim = AdamW(model, cfg, master=on_gpu, fused=on_gpu)
        if on_gpu:
            cast_model(model, torch.bfloat16)
        autocast: Any = contextlib.nullcontext
    else:  # the naive recipe: fp32 weights, autocast, plain AdamW
        model.to(device)
        optim = AdamW(model, cfg, master=False, fused=False)

        def autocast() -> Any:
            if on_gpu:
                return torch.autocast("cuda", dtype=torch.bfloat16)
            return contextlib.nullcontext()

    model.train()
    train_model = torch.compile(model) if "compile" in name else model

    if packed:
        packed_rows, stats = pack_examples(examples, seq_len, seed=0)
        result.padding_waste = stats.padding_waste
        batches = [packed_rows[i : i + rows] for i in range(0, len(packed_rows) - rows + 1, rows)]

        def make_batch(i: int) -> dict[str, Any]:
            return collate_packed(batches[i % len(batches)], seq_len, vocab.pad_token_id)

    else:
        groups = [
            examples[i : i + batch_examples]
            for i in range(0, len(examples) - batch_examples + 1, batch_examples)
        ]
        pad = sum(max(len(e) for e in g) * len(g) for g in groups)
        result.padding_waste = 1 - sum(len(e) for g in groups for e in g) / pad

        def make_batch(i: int) -> dict[str, Any]:
            return collate_padded(groups[i % len(groups)], vocab.pad_token_id)

    dense, attn_flops = flops_per_token(model.config, (len(e) for e in examples))
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)

    def step(i: int) -> tuple[int, Any]:
        return _train_step(train_model, optim, make_batch(i), device, autocast, mode)

    for i in range(warmup_steps):  # compiles, allocator warm-up
        step(i)
    _sync(device)
    tokens, n, t0 = 0, 0, time.perf_counter()
    loss = None
    while n < max_steps and (time.perf_counter() - t0 < seconds or n == 0):
        k, loss = step(warmup_steps + n)
        tokens += k
        n += 1
    _sync(device)
    elapsed = time.perf_counter() - t0
    result.steps = n
    result.tokens_per_s = tokens / elapsed
    result.flops_per_s = result.tokens_per_s * (dense + attn_flops)
    result.tokens_per_step = tokens / n
    result.final_loss = float(loss) if loss is not None else float("nan")
    if on_gpu:
        result.max_memory_gb = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def _train_step(
    model: Any, optim: AdamW, batch: dict[str, Any], device: Any, autocast: Any, mode: str
) -> tuple[int, Any]:
    import torch

    n_items = torch.tensor(max(1, count_loss_tokens(batch)), device=device)
    with autocast():
        loss = forward_loss(model, batch, device, n_items, mode)
    loss.backward()
    optim.step(1.0)
    optim.zero_grad()
    return int(batch["n_tokens"]), loss.detach()


def _free(device: Any) -> None:
    """Drop what the last variant left: compiled graphs (they hold the model) and the cache."""
    import torch

    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# real data: train from scratch on the Japanese NER data, word-level F1 on the held-out 10%


def real_data_config(args: argparse.Namespace, device: Any) -> Any:
    """The training config of ``--real-data``: ``--real-config`` (a YAML file, e.g.
    training/configs/cpu.yaml) or the built-in one, on ``--data`` with a 90/10 split."""
    from training.config import load_config

    data, work = str(Path(args.data)), str(Path(args.work_dir) / "real-data")
    common = [f"train_files=[{data}]", f"out_dir={work}", "progress=false", "save_every=0"]
    if args.real_config:
        return load_config(args.real_config, [*common, f"device={device}"])
    model_config = dict(SMOKE_MODEL) if args.smoke else dict(
        model_type="qwen2", hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
        tie_word_embeddings=True,
    )  # fmt: skip
    model_config.pop("vocab_size", None)
    on_gpu = device.type == "cuda"
    return TrainConfig(
        model_config=model_config,
        tokenizer_vocab_size=200 if args.smoke else 8000,
        train_files=[data],
        eval_fraction=0.1,
        max_seq_len=256 if args.smoke else 2048,
        rows_per_batch=2 if args.smoke else 16,
        max_steps=3 if args.smoke else 0,
        epochs=args.real_epochs,
        max_minutes=args.real_minutes,
        lr=3e-3 if args.smoke else 1e-3,
        warmup_steps=1 if args.smoke else 50,
        weight_decay=0.0,
        device=str(device),
        precision="bf16" if on_gpu else "fp32",
        compile=on_gpu and not args.no_compile,
        attn_implementation="auto",
        out_dir=work,
        save_every=0,
        log_every=50,
        progress=False,
        seed=0,
    )


def real_data_run(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """Train from scratch on the real data, then extract from the held-out records and score
    them (word-level F1); tokens/s is measured after the first steps (compile excluded)."""
    if importlib.util.find_spec("pydantic") is None:
        raise RuntimeError(
            "--real-data needs pydantic (records and the text format); carry its wheels: "
            "pydantic, pydantic-core, annotated-types, typing-inspection"
        )
    from eval.metrics import score
    from training.data import load_records, split_records
    from training.infer import OIELLM
    from training.train import main as train_main

    cfg = real_data_config(args, device)
    t0 = time.perf_counter()
    result = train_main(cfg)
    train_s = time.perf_counter() - t0
    records = load_records(cfg.train_files)
    _, held = split_records(records, cfg.eval_fraction, cfg.seed)
    if args.real_heldout:
        held = held[: args.real_heldout]
    smoke = args.smoke and not args.real_config
    if smoke:
        held = held[:8]
    model = OIELLM(result.model.eval(), result.tokenizer, span_labels=result.span_labels)
    t0 = time.perf_counter()
    predicted = model.extract(
        [r.text for r in held], held[0].task, held[0].lang, ids=[r.id for r in held],
        batch_size=64, max_new_tokens=16 if smoke else 160,
    )  # fmt: skip
    infer_s = time.perf_counter() - t0
    overall = score(held, predicted).overall.to_dict()
    copy: dict[str, Any] | None = None
    if args.real_copy_spans:
        # the same model decoding spans as substrings of their text only (training.copy_spans)
        copied = model.extract(
            [r.text for r in held], held[0].task, held[0].lang, ids=[r.id for r in held],
            batch_size=64, max_new_tokens=16 if smoke else 160, copy_spans=True,
        )  # fmt: skip
        scored = score(held, copied).overall.to_dict()
        copy = {k: scored[k] for k in ("wl_precision", "wl_recall", "wl_f1")}
        copy["parse_errors"] = sum(1 for p in copied if p.meta.get("parse_errors"))
    return {
        "config": args.real_config or "built-in",
        "records": len(records),
        "held_out": len(held),
        "steps": result.steps,
        "epochs": round(result.steps * cfg.rows_per_batch * cfg.grad_accum / max(1, result.rows), 2),
        "train_minutes": round(train_s / 60, 2),
        "train_tokens_per_s": round(result.tokens_per_s, 1),
        "train_tokens_per_s_after_warmup": round(result.tokens_per_s_steady, 1),
        "eval_loss": result.eval_loss,
        "wl_precision": overall["wl_precision"],
        "wl_recall": overall["wl_recall"],
        "wl_f1": overall["wl_f1"],
        "all_accuracy": overall["all_accuracy"],
        "parse_errors": sum(1 for p in predicted if p.meta.get("parse_errors")),
        "copy_spans": copy,
        "infer_texts_per_s": round(len(held) / infer_s, 2),
        "threads": __import__("torch").get_num_threads(),
        "model": {k: v for k, v in cfg.model_config.items() if k != "model_type"},
    }


# ---------------------------------------------------------------------------------------------
# report


def environment(device: Any) -> dict[str, str]:
    import torch
    import transformers

    gpu = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device": gpu,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def render(
    env: dict[str, str],
    args: argparse.Namespace,
    peak: float,
    nominal: float | None,
    results: list[VariantResult],
    real: dict[str, Any] | None,
) -> str:
    mode = "CPU smoke (tiny model, figures mean nothing)" if args.smoke else "GPU"
    lines = [
        f"## {env['date']} -- {env['device']} -- {mode}",
        "",
        f"torch {env['torch']}, transformers {env['transformers']}, python {env['python']}. "
        f"Model: {'tiny' if args.smoke else 'Qwen2-0.5B shape'}, random weights; examples "
        f"{args.min_len}-{args.max_len} tokens; packed rows {args.rows} x {args.seq_len}; "
        f"baseline batches of {args.batch_examples} examples.",
        f"Measured matmul peak: {peak / 1e12:.3g} TFLOP/s"
        + (f"; nominal {nominal / 1e12:.0f} TFLOP/s." if nominal else "."),
        "",
        "| variant | tokens/s | MFU (measured peak) | MFU (nominal) | x baseline | tokens/step "
        "| padding waste | peak mem GiB | steps | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = next((r for r in results if r.name == "baseline" and not r.error), None)
    for r in results:
        if r.error:
            lines.append(f"| {r.name} | - | - | - | - | - | - | - | - | failed: {r.error} |")
            continue
        mfu = r.flops_per_s / peak if peak else 0.0
        mfu_nom = f"{100 * r.flops_per_s / nominal:.1f}%" if nominal else "-"
        speed = f"{r.tokens_per_s / base.tokens_per_s:.2f}x" if base else "-"
        lines.append(
            f"| {r.name} | {r.tokens_per_s:,.0f} | {100 * mfu:.1f}% | {mfu_nom} | {speed} | "
            f"{r.tokens_per_step:,.0f} | {100 * r.padding_waste:.1f}% | {r.max_memory_gb:.1f} | "
            f"{r.steps} | loss {r.final_loss:.3f} |"
        )
    ok = [r for r in results if not r.error and r.name != "baseline"]
    if ok and base and not args.smoke:
        best = max(ok, key=lambda r: r.tokens_per_s)
        mfu = best.flops_per_s / (nominal or peak)
        lines += [
            "",
            f"Best: {best.name}, {100 * mfu:.1f}% MFU (target >= 50%: "
            f"{'met' if mfu >= 0.5 else 'not met'}), {best.tokens_per_s / base.tokens_per_s:.2f}x "
            f"the baseline (target >= 5x: "
            f"{'met' if best.tokens_per_s >= 5 * base.tokens_per_s else 'not met'}).",
        ]
    if real is not None:
        lines += ["", "Real data (from scratch, Japanese NER, 90/10 split):", "", "```json",
                  json.dumps(real, indent=2, ensure_ascii=False), "```"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU (automatic w/o CUDA)")
    p.add_argument("--max-minutes", type=float, default=8.0, help="budget for the whole run")
    p.add_argument(
        "--variants",
        default="baseline,packed,packed-compile,packed-flex-compile,packed-liger",
        help="comma-separated; see the module docstring",
    )
    p.add_argument("--seq-len", type=int, default=2048, help="packed row length")
    p.add_argument("--rows", type=int, default=8, help="packed rows per step")
    p.add_argument("--batch-examples", type=int, default=64, help="baseline examples per step")
    p.add_argument("--min-len", type=int, default=64)
    p.add_argument("--max-len", type=int, default=320)
    p.add_argument("--examples", type=int, default=4096, help="synthetic examples generated")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=60, help="measured steps per variant, at most")
    p.add_argument("--real-data", action="store_true", help="also train on the Japanese data")
    p.add_argument("--real-minutes", type=float, default=3.0, help="time cap, --real-data")
    p.add_argument("--real-epochs", type=float, default=3.0, help="epochs of --real-data")
    p.add_argument("--real-config", help="a training YAML for --real-data (training/configs/cpu.yaml)")
    p.add_argument("--real-heldout", type=int, default=0, help="score only N held-out records")
    p.add_argument(
        "--real-copy-spans",
        action="store_true",
        help="also score --real-data decoding spans as substrings of their text only",
    )
    p.add_argument(
        "--data",
        default=str(ROOT.parent / "shared" / "data" / "stockmark-ner-ja" / "ner.jsonl"),
        help="records for --real-data (stockmark JSONL or canonical JSONL)",
    )
    p.add_argument("--no-compile", action="store_true", help="no torch.compile in --real-data")
    p.add_argument("--work-dir", default="runs/bench", help="where --real-data saves its model")
    p.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="append here")
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    t_start = time.perf_counter()
    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA device: running the CPU smoke version (--smoke)", flush=True)
        args.smoke = True
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if args.smoke:
        args.seq_len, args.rows, args.batch_examples = 1024, 2, 8
        args.examples, args.warmup_steps, args.max_steps = 64, 1, 3
        if "--variants" not in " ".join(argv or sys.argv):
            args.variants = "baseline,packed"
    model_config = dict(SMOKE_MODEL if args.smoke else QWEN2_05B)
    env = environment(device)
    print(f"{env['device']}: torch {env['torch']}, transformers {env['transformers']}", flush=True)

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        peak = matmul_peak(device, torch.bfloat16, 8192)
        nominal = peak_flops(env["device"])
    else:
        peak = matmul_peak(device, torch.float32, 512, seconds=1.0)
        nominal = None
    print(f"matmul peak {peak / 1e12:.2f} TFLOP/s", flush=True)

    examples = synthetic_examples(
        args.examples, model_config["vocab_size"], args.min_len, args.max_len, seed=0
    )
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "packed-liger" in variants and importlib.util.find_spec("liger_kernel") is None:
        variants.remove("packed-liger")
        print("liger-kernel not installed: skipping packed-liger", flush=True)
    reserve = args.real_minutes + 1.0 if args.real_data else 0.0
    budget = max(0.5, args.max_minutes - reserve - (time.perf_counter() - t_start) / 60)
    results: list[VariantResult] = []
    for i, name in enumerate(variants):
        left = budget * 60 - (time.perf_counter() - t_start)
        # compile warm-up is not measured: give each variant an equal share of what is left
        seconds = max(5.0, 0.5 * left / (len(variants) - i)) if not args.smoke else 0.0
        print(f"-- {name}: measuring ~{seconds:.0f} s", flush=True)
        try:
            r = run_variant(
                name, model_config=model_config, examples=examples, device=device,
                seq_len=args.seq_len, rows=args.rows, batch_examples=args.batch_examples,
                warmup_steps=args.warmup_steps, seconds=seconds, max_steps=args.max_steps,
            )  # fmt: skip
        except Exception as err:  # one broken variant must not lose the others' figures
            traceback.print_exc()
            r = VariantResult(name, error=f"{type(err).__name__}: {str(err)[:160]}")
        _free(device)
        results.append(r)
        if not r.error:
            mfu = r.flops_per_s / peak
            print(
                f"   {r.tokens_per_s:,.0f} tokens/s, MFU {100 * mfu:.1f}% (measured peak)",
                flush=True,
            )

    real = None
    if args.real_data:
        try:
            real = real_data_run(args, device)
        except Exception as err:
            traceback.print_exc()
            real = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(real, indent=2, ensure_ascii=False, default=str), flush=True)

    report = render(env, args, peak, nominal, results, real)
    print(report)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"env": env, "peak": peak, "results": [r.__dict__ for r in results], "real": real},
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
    if not args.no_write:
        path = Path(args.results)
        text = path.read_text(encoding="utf-8") if path.exists() else "# Training throughput\n\n"
        path.write_text(text.rstrip("\n") + "\n\n" + report, encoding="utf-8")
        print(f"appended to {path}")
    failed = [r for r in results if r.error]
    return 1 if failed and len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
