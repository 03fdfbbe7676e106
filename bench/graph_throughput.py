"""Throughput of the translation runner against a local OpenAI-compatible server.

    python bench/graph_throughput.py [--latency 0.25] [--records 1000]
    python bench/graph_throughput.py --only runner16 workers64 --no-cpu   # some configurations

Everything measured runs in a child process of its own (the server's threads live in this
process, so they take no CPU from what is measured), against the same `replay_server`
serving recorded answers of the demo records, made distinct per record (a numbered suffix
on every text, so no prompt repeats and the response cache never answers).

Printed, measured in the same run:

1. Rates at a fixed answer latency, each as a share of the ideal
   (LLM calls x latency / concurrency), wall time from process start (start-up included):
   - floor: a minimal asyncio loop with the raw `openai.AsyncOpenAI` client;
   - bare langchain-openai: the structured-output runnable built once, `ainvoke` per pair;
   - the runner (`python -m graphs.translate`), one process at concurrency 16, and with
     `--workers 2` at concurrency 64 (when the CLI has `--workers`).
   And the time from process start to the first LLM request of each.
2. CPU per pair, at latency 0 and concurrency 1, one target at a time: the client
   (langchain-openai `ainvoke` incl. HTTP), tokenization, aligner + verifier (without the
   tokenization they call for), output writing,
   and LangGraph + checkpointer (the rest of the pair's CPU); "ours" is the pair's CPU
   without the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "examples" / "demo.jsonl"
REPLAY = ROOT / "examples" / "replay.jsonl"
TARGETS = ["en", "zh"]
SUFFIX = {"ja": "（{i}）", "en": " ({i})", "zh": "（{i}）"}


# ---- data ----------------------------------------------------------------------------------


def make_data(n: int, folder: Path) -> tuple[Path, Path]:
    """`n` distinct records (the demo's, numbered) and the replay file that answers them."""
    from agents.markers import mark
    from mre import Record

    base = [Record.model_validate_json(x) for x in DEMO.read_text(encoding="utf-8").splitlines()]
    answers: dict[tuple[str, str], str] = {}
    for line in REPLAY.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        answers[(obj["source"], obj["target"])] = obj["text"]
    records, replay = [], []
    for i in range(n):
        rec = base[i % len(base)]
        marked = mark(rec.text, rec.spans)
        new = rec.model_copy(update={"id": f"{rec.id}-{i}", "text": rec.text + SUFFIX["ja"].format(i=i)})
        records.append(new.model_dump_json())
        for t in TARGETS:
            replay.append(json.dumps({
                "source": marked + SUFFIX["ja"].format(i=i),
                "target": t,
                "text": answers[(marked, t)] + SUFFIX[t].format(i=i),
            }, ensure_ascii=False))
    data, rep = folder / "records.jsonl", folder / "replay.jsonl"
    data.write_text("\n".join(records) + "\n", encoding="utf-8")
    rep.write_text("\n".join(replay) + "\n", encoding="utf-8")
    return data, rep


def write_messages(data: Path, dest: Path) -> None:
    """The first-attempt messages of every pair (what the baselines send), and the schema."""
    from agents.llm import LLMSettings, build_chat_model
    from agents.schemas import TranslationAnswer
    from agents.translator import Translator
    from mre import Record
    from word_tokenizers import get_language

    settings = LLMSettings(model="bench", base_url="http://127.0.0.1:9/v1", api_key="sk-bench")
    translator = Translator(build_chat_model(settings), model_name="bench")
    src = get_language("ja")
    msgs = [
        translator.messages(Record.model_validate_json(line), src, get_language(t))
        for line in data.read_text(encoding="utf-8").splitlines()
        for t in TARGETS
    ]
    dest.write_text(json.dumps({"schema": TranslationAnswer.model_json_schema(), "messages": msgs},
                               ensure_ascii=False), encoding="utf-8")


class FirstSeen:
    """The replay handler, noting when the first request of each phase arrived."""

    def __init__(self, path: Path) -> None:
        from replay_server import ReplayHandler

        self.inner = ReplayHandler(path)
        self.first: float | None = None
        self.calls = 0
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.first, self.calls = None, 0

    def __call__(self, request: Any) -> Any:
        with self.lock:
            self.calls += 1
            if self.first is None:
                self.first = time.perf_counter()
        return self.inner(request)


# ---- children ------------------------------------------------------------------------------


async def child_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The raw openai client, no graph, no checkpoints, no verification."""
    import openai

    spec = json.loads(Path(args.messages).read_text(encoding="utf-8"))
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="sk-bench", max_retries=0)
    fmt = {"type": "json_schema", "json_schema": {"name": "TranslationAnswer", "schema": spec["schema"]}}
    sem = asyncio.Semaphore(args.concurrency)
    roles = {"human": "user", "system": "system"}

    async def one(msgs: list[list[str]]) -> None:
        async with sem:
            out = await client.chat.completions.create(
                model="bench",
                messages=[{"role": roles[r], "content": c} for r, c in msgs],  # type: ignore[misc]
                response_format=fmt,  # type: ignore[arg-type]
            )
            json.loads(out.choices[0].message.content or "{}")["text"]

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(m) for m in spec["messages"]))
    await client.close()
    return {"loop_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "calls": len(spec["messages"])}


async def child_langchain(args: argparse.Namespace) -> dict[str, Any]:
    """The bare langchain-openai structured call, the runnable built once."""
    from agents.llm import LLMSettings, build_chat_model
    from agents.schemas import TranslationAnswer

    spec = json.loads(Path(args.messages).read_text(encoding="utf-8"))
    settings = LLMSettings(model="bench", base_url=args.base_url, api_key="sk-bench", max_retries=0)
    structured = build_chat_model(settings).with_structured_output(
        TranslationAnswer, method="json_schema", include_raw=True
    )
    sem = asyncio.Semaphore(args.concurrency)

    async def one(msgs: list[list[str]]) -> None:
        async with sem:
            await structured.ainvoke([tuple(m) for m in msgs])

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(m) for m in spec["messages"]))
    return {"loop_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "calls": len(spec["messages"])}


async def child_breakdown(args: argparse.Namespace) -> dict[str, Any]:
    """CPU per pair by part, concurrency 1 (the parts then run one after the other)."""
    import graphs.graph as gg
    import graphs.runner as gr
    from agents.llm import LLMSettings, build_chat_model
    from agents.translator import Translator
    from graphs.context import TranslateContext, target_tokenizers
    from graphs.outputs import RunOutputs
    from mre import Record
    from word_tokenizers import get_language

    parts: dict[str, float] = {"client": 0.0, "tokenize": 0.0, "align_verify": 0.0, "write": 0.0}
    pair_cpu: list[float] = []
    client_cpu: list[float] = []

    inside: list[str] = []  # the timed parts running now, innermost last

    def timed(name: str, fn: Any) -> Any:
        """Time `fn` as part `name`; time spent in a part nested in it (the tokenizer, called
        by the aligner) is that part's only, so that the parts add up."""
        def wrapper(*a: Any, **k: Any) -> Any:
            c0 = time.process_time()
            inside.append(name)
            try:
                return fn(*a, **k)
            finally:
                inside.pop()
                spent = time.process_time() - c0
                parts[name] += spent
                if inside:
                    parts[inside[-1]] -= spent
        return wrapper

    def atimed(name: str, fn: Any) -> Any:
        async def wrapper(*a: Any, **k: Any) -> Any:
            c0 = time.process_time()
            try:
                return await fn(*a, **k)
            finally:
                parts[name] += time.process_time() - c0
        return wrapper

    target = args.target
    settings = LLMSettings(model="bench", base_url=args.base_url, api_key="sk-bench", max_retries=0)
    translator = Translator(build_chat_model(settings), model_name="bench")
    structured = translator.runnable

    class Client:
        async def ainvoke(self, msgs: Any) -> Any:
            c0 = time.process_time()
            try:
                return await structured.ainvoke(msgs)
            finally:
                client_cpu.append(time.process_time() - c0)
                parts["client"] += client_cpu[-1]

    translator.runnable = Client()
    lang = get_language(target)
    tokenizers = target_tokenizers({target: lang}, needs_pos=False)
    for tok in tokenizers.values():
        tok.tokenize = timed("tokenize", tok.tokenize)  # type: ignore[method-assign]
    gg.align = timed("align_verify", gg.align)  # type: ignore[assignment]
    gg.verify = timed("align_verify", gg.verify)  # type: ignore[assignment]
    RunOutputs.write = timed("write", RunOutputs.write)  # type: ignore[method-assign]
    one, finish = gr._one, gr._finish

    async def one_timed(*a: Any, **k: Any) -> Any:
        c0 = time.process_time()
        out = await one(*a, **k)
        pair_cpu.append(time.process_time() - c0)
        return out

    def finish_timed(*a: Any, **k: Any) -> Any:
        c0 = time.process_time()
        out = finish(*a, **k)
        pair_cpu[-1] += time.process_time() - c0
        return out

    gr._one, gr._finish = one_timed, finish_timed  # type: ignore[assignment]
    ctx = TranslateContext(
        translator=translator, source_language=get_language("ja"),
        target_languages={target: lang}, target_tokenizers=tokenizers,
    )
    records = [Record.model_validate_json(x)
               for x in Path(args.records).read_text(encoding="utf-8").splitlines()[: args.sample]]
    with tempfile.TemporaryDirectory() as tmp:
        warm = gr.RunConfig(out=Path(tmp) / "warm", targets=[target], concurrency=1, progress=False)
        await gr.run_pairs(records[:5], [], ctx, warm)
        for k in parts:
            parts[k] = 0.0
        pair_cpu.clear()
        client_cpu.clear()
        cfg = gr.RunConfig(out=Path(tmp) / "run", targets=[target], concurrency=1, progress=False)
        c0 = time.process_time()
        report = await gr.run_pairs(records[5:], [], ctx, cfg)
        total = time.process_time() - c0
    n = report["counts"]["total"]["accepted"] + report["counts"]["total"]["rejected"]
    ours = [p - c for p, c in zip(pair_cpu, client_cpu, strict=False)]
    return {"pairs": n, "calls": report["llm"]["calls"], "total_cpu_s": total, "parts": parts,
            "ours_ms": [x * 1000 for x in ours]}


def run_child(kind: str, **kw: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_cli(data: Path, base_url: str, out: Path, concurrency: int, extra: list[str]) -> tuple[float, dict[str, Any], str]:
    cmd = [sys.executable, "-m", "graphs.translate", "--input", str(data), "--source", "ja",
           "--target", *TARGETS, "--out", str(out), "--base-url", base_url, "--model", "bench",
           "--concurrency", str(concurrency), "--no-progress", "--no-cache", "--log-level", "WARNING",
           *extra]
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"runner failed ({' '.join(extra)}):\n{proc.stderr[-3000:]}")
    return wall, json.loads((out / "report.json").read_text(encoding="utf-8")), proc.stderr


# ---- main ------------------------------------------------------------------------------------


def cli_has(flag: str) -> bool:
    files = [ROOT / "graphs" / "translate.py", ROOT / "graphs" / "cli_args.py"]
    return any(p.exists() and flag in p.read_text(encoding="utf-8") for p in files)


def main_bench(args: argparse.Namespace) -> None:
    from replay_server import LocalOpenAIServer

    rows: list[tuple[str, int, float, float, float | None]] = []  # name, conc, wall, ratio, ttfr
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        data, rep = make_data(args.records, tmp)
        msgs = tmp / "messages.json"
        write_messages(data, msgs)
        handler = FirstSeen(rep)
        lat = args.latency
        with LocalOpenAIServer(handler, latency=lat) as server:
            url = server.base_url

            def measure(name: str, conc: int, fn: Any) -> None:
                handler.reset()
                t0 = time.perf_counter()
                wall, calls, note = fn()
                ideal = calls * lat / conc
                ttfr = (handler.first - t0) if handler.first is not None else None
                rows.append((name, conc, wall, ideal / wall, ttfr))
                print(f"  {name:34s} conc {conc:3d}: {calls} calls in {wall:6.2f} s, "
                      f"{ideal / wall:.2f} of ideal, first request after "
                      f"{ttfr if ttfr is None else round(ttfr, 2)} s {note}", flush=True)

            def child(kind: str, conc: int) -> Any:
                def go() -> tuple[float, int, str]:
                    t0 = time.perf_counter()
                    r = run_child(kind, base_url=url, messages=msgs, concurrency=conc)
                    wall = time.perf_counter() - t0
                    return wall, r["calls"], (f"(loop {r['loop_s']:.2f} s = "
                                              f"{r['calls'] * lat / conc / r['loop_s']:.2f}; "
                                              f"client CPU {r['cpu_s'] / r['calls'] * 1000:.2f} ms/call)")
                return go

            def runner(conc: int, extra: list[str]) -> Any:
                def go() -> tuple[float, int, str]:
                    out = tmp / f"run-{len(rows)}"
                    wall, report, _ = run_cli(data, url, out, conc, extra)
                    total = report["counts"]["total"]
                    return wall, report["llm"]["calls"], f"({total['accepted']} acc, {total['rejected']} rej)"
                return go

            print(f"## throughput: {args.records} records x {TARGETS}, latency {lat * 1000:.0f} ms",
                  flush=True)
            configs = [
                ("floor16", "floor: raw openai.AsyncOpenAI", 16, child("floor", 16)),
                ("langchain16", "bare langchain-openai structured", 16, child("langchain", 16)),
                ("runner16", "runner, 1 process", 16, runner(16, [])),
            ]
            if cli_has('"--workers"'):
                configs += [
                    ("floor64", "floor: raw openai.AsyncOpenAI", 64, child("floor", 64)),
                    ("workers64", "runner --workers 2", 64, runner(64, ["--workers", "2"])),
                ]
            for _ in range(0 if args.cpu_only else args.repeat):
                for key, name, conc, fn in configs:
                    if not args.only or key in args.only:
                        measure(name, conc, fn)
        print()
        print(f"## CPU per pair, latency 0, concurrency 1, {args.sample - 5} pairs per target")
        handler0 = FirstSeen(rep)
        with LocalOpenAIServer(handler0, latency=0.0) as server:
            for target in [] if args.no_cpu else TARGETS:
                r = run_child("breakdown", base_url=server.base_url, records=data, target=target,
                              sample=args.sample)
                n = r["pairs"]
                parts = {k: v / n * 1000 for k, v in r["parts"].items()}
                total = r["total_cpu_s"] / n * 1000
                graph = total - sum(parts.values())
                ours = r["ours_ms"]
                print(f"  {target}: total {total:5.2f} ms/pair = client {parts['client']:5.2f} + "
                      f"LangGraph+checkpointer {graph:5.2f} + tokenize {parts['tokenize']:5.2f} + "
                      f"aligner+verifier {parts['align_verify']:5.2f} + writing {parts['write']:5.2f}; "
                      f"ours (all but the client) median {statistics.median(ours):5.2f} ms, "
                      f"p90 {sorted(ours)[int(0.9 * len(ours))]:5.2f} ms ({r['calls']} calls)")
    print()
    print("| configuration | concurrency | wall s | share of ideal | first request s |")
    print("|---|---|---|---|---|")
    for name, conc, wall, ratio, ttfr in rows:
        print(f"| {name} | {conc} | {wall:.2f} | {ratio:.2f} | "
              f"{'-' if ttfr is None else f'{ttfr:.2f}'} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--records", default="1000", help="how many records (a file, for a child)")
    p.add_argument("--sample", type=int, default=105, help="records per target for the CPU figures")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--cpu-only", action="store_true", help="only the CPU per pair, no throughput runs")
    p.add_argument("--only", nargs="*", default=[],
                   choices=["floor16", "langchain16", "runner16", "floor64", "workers64"],
                   help="only these throughput configurations (default: all)")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU-per-pair figures")
    p.add_argument("--child", choices=["floor", "langchain", "breakdown"])
    p.add_argument("--base-url")
    p.add_argument("--messages")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--target", default="en")
    args, _ = p.parse_known_args()
    if args.child is None:
        args.records = int(args.records)
        main_bench(args)
        return
    fn = {"floor": child_floor, "langchain": child_langchain, "breakdown": child_breakdown}[args.child]
    print(json.dumps(asyncio.run(fn(args))))


if __name__ == "__main__":
    main()
