"""The command line of `python -m graphs.translate` (its flags are contracts: see README)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

#: --max-chars default. Measured on stockmark-ner-ja/ner.jsonl (4,274 records): text length
#: median 51, p90 98, p99 165, p99.9 233, max 296 characters. 1000 keeps every real record
#: with 3x headroom (MMM sentences are of the same kind) and stops a runaway record (a whole
#: article, a 1 MB line) before it is sent to the LLM.
DEFAULT_MAX_CHARS = 1000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m graphs.translate",
        description="Translate MRE mix records with verified entity spans (translator -> "
        "entity-aligner -> verifier, retried with feedback).",
    )
    p.add_argument("--input", type=Path, help="records: canonical JSONL, stockmark or MMM json")
    p.add_argument("--format", default="auto", choices=["auto", "jsonl", "stockmark", "mmm"])
    p.add_argument("--source", default="ja", help="source language code (default: ja)")
    p.add_argument("--target", nargs="+", default=[], help="target language codes, e.g. en zh")
    p.add_argument("--out", type=Path, help="output directory; rerun with the same one to resume")
    p.add_argument("--model", default=None, help="chat model name (default: gpt-4o-mini)")
    p.add_argument(
        "--base-url", default=None, help="OpenAI-compatible endpoint (or OPENAI_BASE_URL)"
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=["auto", "json_schema", "function_calling", "json_mode"],
        help="structured-output method (default: auto = json_schema where the endpoint "
        "enforces it, else json_mode with the answer's shape in the prompt)",
    )
    p.add_argument(
        "--max-chars",
        type=int,
        default=DEFAULT_MAX_CHARS,
        help="reject records whose text is longer, before any LLM call (default: "
        f"{DEFAULT_MAX_CHARS}; the longest of the 4,274 stockmark records is 296, p99 165)",
    )
    p.add_argument(
        "--concurrency", type=int, default=8,
        help="LLM requests in flight for the whole run, split among --workers (default: 8); "
        "as many pairs again do their own work meanwhile",
    )
    p.add_argument("--max-attempts", type=int, default=3, help="LLM attempts per pair (default: 3)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per LLM request")
    p.add_argument(
        "--max-llm-retries",
        type=int,
        default=6,
        help="transport retries per request with backoff (429 honours Retry-After, 5xx, drops)",
    )
    p.add_argument("--replay", type=Path, help="serve recorded answers (JSONL) on 127.0.0.1")
    # --batch: the answers come from the Batch API (graphs/batch.py)
    p.add_argument(
        "--batch",
        action="store_true",
        help="send the LLM requests through the Batch API (/v1/files, /v1/batches): half "
        "price, answers within 24 h per round; rerun the same command to resume",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        help="--batch: seconds between status checks of a batch, growing with backoff (default: 30)",
    )
    p.add_argument(
        "--batch-max-requests", type=int, default=50_000, help="--batch: requests per input file"
    )
    p.add_argument(
        "--batch-max-bytes", type=int, default=200_000_000, help="--batch: bytes per input file"
    )
    p.add_argument("--prices", type=Path, help="JSON/YAML {model: {input: $/1M, output: $/1M}}")
    p.add_argument("--no-cache", action="store_true", help="do not use the LLM response cache")
    p.add_argument(
        "--durability",
        default="exit",
        choices=["sync", "async", "exit"],
        help="when LangGraph writes checkpoints (default: exit, see bench/graph_throughput.py)",
    )
    p.add_argument(
        "--fsync",
        action="store_true",
        help="fsync every output line (survives power loss; a kill -9 loses nothing either way)",
    )
    p.add_argument("--limit", type=int, help="translate only the first N records")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.add_argument("--verifier-model", type=Path, help="OIELLM checkpoint for the model check")
    p.add_argument(
        "--verifier-url",
        default=None,
        help="an OpenAI-compatible completions endpoint serving --verifier-model (e.g. vLLM); "
        "default: the model runs in this process",
    )
    # -- scaling (graphs.workers): processes, Ray, a shared store -----------------------------
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine, each on a shard of the records (default: 1)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local processes, or Ray actors (--workers of them; needs --store)")
    p.add_argument("--ray-address", default=None, help="Ray cluster to join (default: a local one)")
    p.add_argument("--store", default=None,
                   help="postgresql://... for checkpoints, LLM cache (default: SQLite under --out)")
    p.add_argument(
        "--review",
        default="uncertain",
        choices=["off", "uncertain", "all"],
        help="when the reviewer agent judges the marked entities (one LLM call per review): "
        "off, uncertain (where the verifier's evidence is in doubt; default) or all",
    )
    p.add_argument(
        "--no-memory",
        action="store_true",
        help="do not keep the entity translation memory (DIR/memory.sqlite)",
    )
    p.add_argument("--draw", action="store_true", help="print the graph as Mermaid and exit")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)
