"""Verifier inference throughput: records/s of OIELLM extraction, today's path against the new one.

    python bench/infer_throughput.py --json out.json            # tiny model on CPU (default)
    python bench/infer_throughput.py --shape 0.5b --new-tokens 64 --batches 64,256  # H200

Every variant runs in the same process on the same prompts (Japanese stockmark texts when the
data is there, else a built-in handful repeated) and reports records/s and generated tokens/s:

- ``today``: the path before issue 15: batches of 16 sorted by prompt length, ``generate``
  with the checkpoint's generation config filling unset options, dynamic cache;
- ``dynamic-bN``: greedy with every option set (``training.infer.greedy_config``), prompts
  sorted by prompt and text length, batch N, dynamic cache;
- ``static-bN``: the same with a static (preallocated) cache;
- ``continuous``: transformers' continuous batching (``generate_batch``) where installed.

A model with random weights never emits EOS, so every record generates exactly
``--new-tokens`` tokens: the figure is the decoder's speed at that output length (the issue's
"records/s at 64 new tokens"). ``--checkpoint DIR`` measures a trained model instead, whose
outputs stop at EOS. A variant that fails is reported with its error; the others still run.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAPES = {
    "tiny": dict(
        model_type="qwen2", hidden_size=192, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=1024,
        tie_word_embeddings=True,
    ),
    "0.5b": dict(
        model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1_000_000.0, tie_word_embeddings=True,
    ),
}  # fmt: skip
FALLBACK_TEXTS = [
    "レッドフォックス株式会社は、東京都千代田区に本社を置くITサービス企業である。",
    "鳥山明は漫画家で、代表作に『ドラゴンボール』がある。",
    "1984年、CBU-87/Bの開発が始まった。",
    "華為技術は深圳市に本社を置く。",
]


def _texts(data: str, n: int) -> list[str]:
    path = Path(data)
    texts: list[str] = []
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    texts.append(json.loads(line)["text"])
    if not texts:
        texts = list(FALLBACK_TEXTS)
    return [texts[i % len(texts)] for i in range(n)]


def _model(args: argparse.Namespace, texts: list[str], device: Any) -> Any:
    import torch

    from training.infer import OIELLM

    if args.checkpoint:
        return OIELLM.load(args.checkpoint, device=str(device))
    from training.model import build_model_from_config
    from training.tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer([t + "/NER\n" for t in texts], args.vocab)
    model = build_model_from_config(SHAPES[args.shape], tok, seed=0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model.to(device=device, dtype=dtype).eval()
    # what an instruction-tuned base ships: today's path inherits it
    model.generation_config.repetition_penalty = 1.05
    return OIELLM(model, tok, device=device)


def today(oiellm: Any, inputs: list[str], max_new_tokens: int) -> list[int]:
    """The generate loop as it was before issue 15 (batch 16, the checkpoint's defaults)."""
    import torch
    from transformers import GenerationConfig

    from training.data import build_prompt, encode_prompt

    tok = oiellm.tokenizer
    prompts = [encode_prompt(build_prompt(x, tok, "plain"), tok, "plain") for x in inputs]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    eos, pad = tok.eos_token_id, tok.pad_token_id
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
        eos_token_id=[eos], pad_token_id=pad,
    )  # fmt: skip
    counts = [0] * len(prompts)
    with torch.inference_mode():
        for b in range(0, len(order), 16):
            batch = order[b : b + 16]
            width = max(len(prompts[i]) for i in batch)
            ids = [[pad] * (width - len(prompts[i])) + prompts[i] for i in batch]
            mask = [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch]
            out = oiellm.model.generate(
                input_ids=torch.tensor(ids, device=oiellm.device),
                attention_mask=torch.tensor(mask, device=oiellm.device),
                generation_config=config,
            )
            for row, i in zip(out[:, width:].tolist(), batch, strict=True):
                end = next((j for j, t in enumerate(row) if t == eos), None)
                counts[i] = len(row) if end is None else end
    return counts


def run(name: str, oiellm: Any, inputs: list[str], args: argparse.Namespace) -> dict[str, Any]:
    import torch

    def once(n: int) -> list[int]:
        if name == "today":
            return today(oiellm, inputs[:n], args.new_tokens)
        cache, _, batch = name.partition("-b")
        gens = oiellm.generate(
            inputs[:n], batch_size=int(batch or 64), max_new_tokens=args.new_tokens, cache=cache
        )
        return [g.n_tokens for g in gens]

    once(min(len(inputs), 8))  # warm-up (and compile, for a static cache on GPU): not timed
    if oiellm.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    counts = once(len(inputs))
    if oiellm.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {
        "variant": name,
        "records": len(inputs),
        "seconds": round(seconds, 3),
        "records_per_s": round(len(inputs) / seconds, 2),
        "new_tokens_per_s": round(sum(counts) / seconds, 1),
        "mean_new_tokens": round(sum(counts) / len(counts), 1),
    }


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--checkpoint", help="a trained OIELLM directory instead of random weights")
    p.add_argument("--records", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batches", default="64", help="comma-separated batch sizes of the new path")
    p.add_argument("--caches", default="dynamic,static", help="dynamic, static")
    p.add_argument("--continuous", action="store_true", help="also transformers' continuous batching")
    p.add_argument("--no-today", action="store_true", help="skip today's path")
    p.add_argument("--vocab", type=int, default=4096, help="tokenizer of a random-weight model")
    p.add_argument(
        "--data", default=str(ROOT.parent / "shared" / "data" / "stockmark-ner-ja" / "ner.jsonl")
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="write the figures here as JSON")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    texts = _texts(args.data, args.records)
    oiellm = _model(args, texts, device)
    inputs = [f"{t}/NER" for t in texts]
    variants = [] if args.no_today else ["today"]
    variants += [
        f"{c.strip()}-b{b.strip()}" for c in args.caches.split(",") for b in args.batches.split(",")
    ]
    if args.continuous:
        variants.append("continuous")
    results = []
    for name in variants:
        try:
            r = run(name, oiellm, inputs, args)
        except Exception as err:  # one broken variant must not lose the others' figures
            traceback.print_exc()
            r = {"variant": name, "error": f"{type(err).__name__}: {str(err)[:300]}"}
        results.append(r)
        print(json.dumps(r), flush=True)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    base = next((r for r in results if r["variant"] == "today" and "error" not in r), None)
    if base:
        for r in results:
            if "error" not in r:
                r["vs_today"] = round(r["records_per_s"] / base["records_per_s"], 2)
    import transformers

    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "shape": args.checkpoint or args.shape,
        "new_tokens": args.new_tokens,
        "results": results,
    }
    for r in results:
        if "error" in r:
            print(f"{r['variant']:>16}: {r['error']}")
        else:
            print(
                f"{r['variant']:>16}: {r['records_per_s']:8.1f} records/s "
                f"{r['new_tokens_per_s']:9.1f} tokens/s  x{r.get('vs_today', 1.0):.2f} vs today"
            )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if any("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
