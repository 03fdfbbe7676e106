"""Throughput of the translation graph against a local OpenAI-compatible server.

    python bench/graph_throughput.py [--latency 0.25] [--concurrency 16] [--records 160]

Prints, measured in the same run:
1. pairs/s through the whole runner (graph + SQLite checkpointer + outputs) at a fixed
   answer latency, against the ideal (concurrency / latency) and against the raw client
   (the same number of structured calls through ChatOpenAI alone). Target: >= 0.8 of ideal.
2. the non-LLM time per pair (align + verify + checkpoints + output), for each LangGraph
   durability mode, at latency 0 and concurrency 1: the pair's wall time minus the time
   spent inside the LLM call. Target: median <= 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "examples" / "demo.jsonl"
REPLAY = ROOT / "examples" / "replay.jsonl"

from agents.llm import LLMSettings, build_chat_model  # noqa: E402
from agents.schemas import TranslationAnswer  # noqa: E402
from agents.translator import Draft, Translator  # noqa: E402
from graphs.context import TranslateContext, target_tokenizers  # noqa: E402
from graphs.runner import Counters, RunConfig, run_pairs  # noqa: E402
from mre import Record  # noqa: E402
from replay_server import LocalOpenAIServer, ReplayHandler  # noqa: E402
from word_tokenizers import get_language  # noqa: E402


class TimedTranslator(Translator):
    """A Translator that records how long each LLM call took."""

    llm_seconds: list[float]

    async def __call__(self, *args: Any, **kwargs: Any) -> Draft:
        t0 = time.perf_counter()
        draft = await super().__call__(*args, **kwargs)
        self.llm_seconds.append(time.perf_counter() - t0)
        return draft


def demo_records(n: int) -> list[Record]:
    base = [Record.model_validate_json(x) for x in DEMO.read_text(encoding="utf-8").splitlines()]
    return [
        base[i % len(base)].model_copy(update={"id": f"{base[i % len(base)].id}-{i}"})
        for i in range(n)
    ]


def context(base_url: str, targets: list[str]) -> TranslateContext:
    settings = LLMSettings(model="bench", base_url=base_url, api_key="sk-bench", max_retries=0)
    translator = TimedTranslator(build_chat_model(settings), model_name="bench")
    translator.llm_seconds = []
    return TranslateContext(
        translator=translator,
        source_lang=get_language("ja"),
        languages={t: get_language(t) for t in targets},
        tokenizers=target_tokenizers({t: get_language(t) for t in targets}, needs_pos=False),
    )


async def raw_client(base_url: str, records: list[Record], targets: list[str], concurrency: int) -> float:
    """pairs/s of the bare structured call, same prompts, same concurrency."""
    settings = LLMSettings(model="bench", base_url=base_url, api_key="sk-bench", max_retries=0)
    ctx = context(base_url, targets)
    structured = build_chat_model(settings).with_structured_output(
        TranslationAnswer, method="json_schema", include_raw=True
    )
    msgs = [
        ctx.translator.messages(r, ctx.source_lang, ctx.languages[t]) for r in records for t in targets
    ]
    sem = asyncio.Semaphore(concurrency)

    async def one(m: list[tuple[str, str]]) -> None:
        async with sem:
            await structured.ainvoke(m)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(m) for m in msgs))
    return len(msgs) / (time.perf_counter() - t0)


async def graph_run(
    base_url: str, records: list[Record], targets: list[str], concurrency: int, durability: str
) -> tuple[float, list[float]]:
    ctx = context(base_url, targets)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(
            out=Path(tmp), targets=targets, concurrency=concurrency,
            durability=durability, progress=False,  # type: ignore[arg-type]
        )
        t0 = time.perf_counter()
        report = await run_pairs(records, [], ctx, cfg)
        wall = time.perf_counter() - t0
        pairs = report["counts"]["total"]["accepted"] + report["counts"]["total"]["rejected"]
        per_pair: list[float] = []
        for lang in targets:
            for line in (Path(tmp) / lang / "accepted.jsonl").read_text().splitlines():
                json.loads(line)
    translator = ctx.translator
    assert isinstance(translator, TimedTranslator)
    per_pair = translator.llm_seconds
    return pairs / wall, per_pair


async def non_llm_ms(base_url: str, records: list[Record], target: str, durability: str) -> list[float]:
    """Each pair's wall time minus its LLM call, one run at concurrency 1 (latency 0)."""
    ctx = context(base_url, [target])
    counters = Counters()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(out=Path(tmp), targets=[target], concurrency=1,
                        durability=durability, progress=False)  # type: ignore[arg-type]
        await run_pairs(records, [], ctx, cfg, counters=counters)
    translator = ctx.translator
    assert isinstance(translator, TimedTranslator)
    if len(translator.llm_seconds) != len(counters.pair_seconds):
        raise RuntimeError("a pair needed a retry: the per-pair pairing of times is off")
    return [
        (pair - llm) * 1000 for pair, llm in zip(counters.pair_seconds, translator.llm_seconds, strict=True)
    ]


async def main_async(args: argparse.Namespace) -> None:
    targets = ["en", "zh"]
    records = demo_records(args.records)
    handler = ReplayHandler(REPLAY)
    with LocalOpenAIServer(handler, latency=args.latency) as server:
        # warm up tokenizers and the client
        await graph_run(server.base_url, records[:4], targets, 4, "exit")
        raw = await raw_client(server.base_url, records, targets, args.concurrency)
        rate, _ = await graph_run(server.base_url, records, targets, args.concurrency, args.durability)
    ideal = args.concurrency / args.latency
    print(f"## throughput: {len(records)} records x {targets}, latency {args.latency * 1000:.0f} ms, "
          f"concurrency {args.concurrency}, durability {args.durability}")
    print(f"ideal (concurrency/latency): {ideal:8.1f} pairs/s")
    print(f"raw ChatOpenAI calls:        {raw:8.1f} pairs/s  ({raw / ideal:.2f} of ideal)")
    print(f"graph runner:                {rate:8.1f} pairs/s  ({rate / ideal:.2f} of ideal, "
          f"{rate / raw:.2f} of raw)   target >= 0.80 of ideal")
    print()
    print("## non-LLM time per pair (align + verify + checkpoints + outputs), latency 0, concurrency 1")
    sample = records[: args.sample]
    with LocalOpenAIServer(ReplayHandler(REPLAY), latency=0.0) as server:
        for target in targets:
            await non_llm_ms(server.base_url, sample[:3], target, "exit")  # warm-up
            for durability in ("exit", "async", "sync"):
                ms = await non_llm_ms(server.base_url, sample, target, durability)
                print(f"{target} durability={durability:5s}: median {statistics.median(ms):6.2f} ms, "
                      f"p90 {sorted(ms)[int(0.9 * len(ms))]:6.2f} ms over {len(ms)} pairs"
                      f"   target median <= 10 ms")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--records", type=int, default=160)
    p.add_argument("--sample", type=int, default=30, help="pairs timed for the non-LLM figure")
    p.add_argument("--durability", default="exit", choices=["sync", "async", "exit"])
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
