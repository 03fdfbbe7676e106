"""The command line of ``python -m training.infer``: extract from the texts of a record file
with a saved checkpoint, or report throughput (``--bench``). See ``training.infer``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from mre.oiellm import PARSE_ERRORS_META_KEY
from training.infer import OIELLM, OUTPUT_META_KEY


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.infer",
        description="Batched OIELLM extraction with a trained checkpoint.",
    )
    p.add_argument("--checkpoint", required=True, help="a saved model directory")
    p.add_argument("--input", help="records to extract from (JSONL, stockmark, ...)")
    p.add_argument("--task", default="SCNM", help="task of the extraction (default SCNM)")
    p.add_argument("--lang", default="ja", help="language of the texts (default ja)")
    p.add_argument("--out", help="write the extracted records here (JSONL; default stdout)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N texts")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--cache", choices=["dynamic", "static", "continuous"], default="dynamic",
        help="KV cache: dynamic, static (preallocated; for torch.compile on GPU) or continuous "
        "(transformers' continuous batching, where installed)",
    )  # fmt: skip
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if present)")
    p.add_argument(
        "--copy-spans", action="store_true",
        help="spans only as substrings of the text, on word (entity tasks: name-run) edges, "
        "each then relabelled (training.copy_spans, training.relabel): for a weak model",
    )  # fmt: skip
    p.add_argument("--bench", action="store_true", help="report throughput instead of records")
    return p


_BENCH_TEXTS = [
    "レッドフォックス株式会社は、東京都千代田区に本社を置くITサービス企業である。",
    "鳥山明は漫画家で、代表作に『ドラゴンボール』がある。",
    "Marlon Brando starred in On the Waterfront, which Kazan directed in 1954.",
    "华为技术有限公司总部位于深圳市。",
]


def cli(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.input:
        from mre.io import read_records

        records = list(read_records(args.input, fmt="auto"))
        texts, ids = [r.text for r in records], [r.id for r in records]
    elif args.bench:
        texts = _BENCH_TEXTS * 16
        ids = [f"bench-{i}" for i in range(len(texts))]
    else:
        print("error: --input is required unless --bench", file=sys.stderr)
        return 2
    if args.limit:
        texts, ids = texts[: args.limit], ids[: args.limit]
    model = OIELLM.load(args.checkpoint, device=args.device)
    model.cache = args.cache
    t0 = time.perf_counter()
    extractions = model.extract_with_errors(
        texts,
        args.task,
        args.lang,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        ids=ids,
        copy_spans=args.copy_spans,
    )
    elapsed = time.perf_counter() - t0
    if args.bench:
        n_tok = sum(
            len(model.tokenizer(e.output, add_special_tokens=False)["input_ids"]) + 1
            for e in extractions
        )
        bad = sum(1 for e in extractions if e.errors)
        print(
            f"{len(texts)} texts in {elapsed:.2f} s on {model.device}: {len(texts) / elapsed:.1f} "
            f"texts/s, {n_tok / elapsed:.0f} generated tokens/s, batch {args.batch_size}; "
            f"{bad} outputs with parse errors"
        )
        return 0
    from mre.io import dumps_line

    lines = []
    for ex in extractions:
        ex.record.meta[OUTPUT_META_KEY] = ex.output
        if ex.errors:
            ex.record.meta[PARSE_ERRORS_META_KEY] = [str(e) for e in ex.errors]
        lines.append(dumps_line(ex.record))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        print("\n".join(lines))
    return 0
