"""`python -m graphs.translate`: translate an annotated dataset with verified span projection.

    python -m graphs.translate --input data.jsonl --source ja --target en zh --out runs/x
    python -m graphs.translate --input examples/demo.jsonl --source ja --target en zh \\
        --out demo-out --replay examples/replay.jsonl          # offline, recorded answers

Rerunning with the same --out resumes: done pairs are skipped, nothing is written twice.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

log = logging.getLogger("graphs.translate")


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
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (or OPENAI_BASE_URL)")
    p.add_argument(
        "--method",
        default="json_schema",
        choices=["json_schema", "function_calling", "json_mode"],
        help="structured-output method (default: json_schema)",
    )
    p.add_argument("--concurrency", type=int, default=8, help="pairs in flight (default: 8)")
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
    p.add_argument("--draw", action="store_true", help="print the graph as Mermaid and exit")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpx2", "openai", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.draw:
        from graphs.graph import graph

        print(graph.get_graph().draw_mermaid())
        return 0
    if args.input is None or args.out is None or not args.target:
        print("error: --input, --target and --out are required (see --help)", file=sys.stderr)
        return 2
    if args.source in args.target:
        print(f"error: target {args.source!r} is the source language", file=sys.stderr)
        return 2

    from agents.llm import EndpointNotConfigured, LLMSettings

    with ExitStack() as stack:
        base_url, model = args.base_url, args.model
        if args.replay is not None:
            from replay_server import LocalOpenAIServer, ReplayHandler

            server = stack.enter_context(LocalOpenAIServer(ReplayHandler(args.replay)))
            base_url, model = server.base_url, model or "replay"
            env["OPENAI_API_KEY"] = "sk-replay"
            log.info("replaying %s on %s", args.replay, base_url)
        try:
            settings = LLMSettings.from_env(
                env,
                model=model,
                base_url=base_url,
                method=args.method,
                timeout=args.timeout,
                max_retries=args.max_llm_retries,
            )
        except EndpointNotConfigured as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        log.info("endpoint: %r", settings)
        try:
            report = asyncio.run(run_cli(args, settings))
        except (KeyError, ImportError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    totals = report["counts"]["total"]
    per_target = ", ".join(f"{t}: {report['counts'][t]}" for t in report["targets"])
    print(
        f"done: {totals['accepted']} accepted, {totals['rejected']} rejected ({per_target}); "
        f"LLM calls {report['llm']['calls']} (cache hits {report['llm']['cache_hits']}), "
        f"tokens {report['llm']['prompt_tokens'] + report['llm']['completion_tokens']}; "
        f"report: {args.out / 'report.json'}"
    )
    return 0


async def run_cli(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    from agents.cache import ResponseCache
    from agents.llm import build_chat_model
    from agents.translator import Translator
    from graphs.context import TranslateContext, target_tokenizers
    from graphs.runner import RunConfig, run_pairs
    from word_tokenizers import get_language

    records, invalid = read_input(args.input, fmt=args.format, strict=args.strict, limit=args.limit)
    source = get_language(args.source)
    languages = {t: get_language(t) for t in args.target}
    from graphs.runner import InvalidInput

    for record in [r for r in records if r.lang != source.code]:
        invalid.append(
            InvalidInput(
                key=record.id,
                line=0,
                reason=f"{args.input}: record {record.id!r} is in {record.lang!r}, not in the "
                f"source language {source.code!r} (--source)",
                raw=record.model_dump_json(),
            )
        )
    records = [r for r in records if r.lang == source.code]
    tokenizers = target_tokenizers(languages, needs_pos=any(r.task.is_scpos for r in records))
    args.out.mkdir(parents=True, exist_ok=True)
    cache = None if args.no_cache else ResponseCache(args.out / "llm_cache.sqlite")
    llm = build_chat_model(settings)
    batch = None
    if args.batch:  # same chat model, its HTTP client swapped for the batch store
        from graphs.batch import BatchOptions, BatchRun

        options = BatchOptions(
            poll_interval=args.poll_interval,
            max_rounds=args.max_attempts,
            max_requests=args.batch_max_requests,
            max_bytes=args.batch_max_bytes,
            progress=not args.no_progress,
        )
        batch = BatchRun(args.out, settings, options)
        llm = batch.chat_model(llm)
    translator = Translator(llm, model_name=settings.model, method=settings.method, cache=cache)
    model_check = None
    if args.verifier_model is not None:
        from agents.model_check import OIELLMCheck

        model_check = OIELLMCheck.load(args.verifier_model)
    ctx = TranslateContext(
        translator=translator,
        source_lang=source,
        languages=languages,
        tokenizers=tokenizers,
        max_attempts=args.max_attempts,
        model_check=model_check,
    )
    cfg = RunConfig(
        out=args.out,
        targets=list(args.target),
        concurrency=args.concurrency,
        durability=args.durability,
        fsync=args.fsync,
        progress=not args.no_progress,
        model=settings.model,
        prices=load_prices(args.prices),
    )
    def work() -> Any:
        return run_pairs(
            records,
            invalid,
            ctx,
            cfg,
            input_desc={"path": str(args.input), "records": len(records), "invalid": len(invalid)},
        )

    try:
        if batch is not None:  # every pair in flight at once: each waits for its batch
            cfg.concurrency = max(1, len(records) * len(cfg.targets))
            return await batch.run(work, cfg.prices)
        return await work()
    finally:
        if cache is not None:
            cache.close()


def read_input(
    path: Path, *, fmt: str = "auto", strict: bool = False, limit: int | None = None
) -> tuple[list[Any], list[Any]]:
    """Valid records and invalid lines (each becomes a rejection with its reason)."""
    from graphs.runner import InvalidInput
    from mre.io import read_records

    if not path.exists():
        raise OSError(f"input file not found: {path}")
    rejects = io.StringIO()
    reader = read_records(path, fmt=fmt, strict=strict, rejects=rejects)  # type: ignore[arg-type]
    records = list(reader)
    invalid = []
    for row in rejects.getvalue().splitlines():
        bad = json.loads(row)
        rid = f" (record {bad['record_id']!r})" if bad.get("record_id") else ""
        invalid.append(
            InvalidInput(
                key=f"line:{bad['line']}",
                line=int(bad["line"]),
                reason=f"{path}:{bad['line']}{rid}: {bad['reason']}",
                raw=bad.get("raw") or "",
            )
        )
    for bad in invalid:
        log.warning("rejected input: %s", bad.reason)
    if limit is not None:
        records = records[:limit]
    return records, invalid


def load_prices(path: Path | None) -> dict[str, dict[str, float]]:
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of model -> {{input, output}}")
    return data


if __name__ == "__main__":
    sys.exit(main())
