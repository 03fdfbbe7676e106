"""The batch runner: asyncio concurrency, SQLite checkpoints, resume, progress, report."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from agents.findings import Code, Finding
from agents.translator import Usage
from graphs.context import TranslateContext
from graphs.finish import finish_record as _finish  # the bench times it under this name
from graphs.finish import write_invalid
from graphs.outputs import Done, RunOutputs
from graphs.report import build_report, write_report
from graphs.rows import (  # InvalidInput: defined beside the rows, re-exported here
    AcceptedRow,
    InvalidInput,
    RejectedRow,
)
from graphs.state import InputState, OutputState
from mre import Record

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from graphs.stores import Checkpoints

log = logging.getLogger(__name__)

Durability = Literal["sync", "async", "exit"]

#: While a tokenizer loads, up to this many pairs per unit of concurrency may park (their
#: translation done, their checks waiting): about what a few seconds of loading would cost
#: in LLM requests.
PARK_FACTOR = 16


@dataclass
class RunConfig:
    out: Path
    targets: list[str]
    concurrency: int = 8  # LLM requests in flight
    # pairs in progress beyond `concurrency`: they do their CPU work (parsing, tokenizing,
    # checks, checkpoints) while the endpoint stays busy with `concurrency` requests. Only
    # with a chat model that bounds its own requests (`build_chat_model(max_in_flight=)`).
    spare_pairs: int = 0
    durability: Durability = "exit"
    fsync: bool = False  # flush is enough against kill -9; fsync also survives power loss
    progress: bool = True
    model: str = ""
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    store: str | None = None  # checkpoints: None = OUT/checkpoints.sqlite, or postgresql://...


@dataclass
class Counters:
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    pair_seconds: list[float] = field(default_factory=list)  # wall time of each pair, in order


def thread_id(record: Record, target: str, prefix: str = "") -> str:
    """The checkpoint thread of a pair (`prefix`: the run's, in a shared store)."""
    digest = hashlib.sha256(record.model_dump_json().encode()).hexdigest()[:12]
    return f"{prefix}{record.id}:{target}:{digest}"


async def run_pairs(
    records: list[Record],
    invalid: list[InvalidInput],
    ctx: TranslateContext,
    cfg: RunConfig,
    *,
    input_desc: dict[str, Any] | None = None,
    counters: Counters | None = None,
) -> dict[str, Any]:
    """Translate every (record, target) pair not yet done under `cfg.out`; returns the report.

    `counters`, when given, receives this run's figures (benchmarks read `pair_seconds`).
    """
    cfg.out.mkdir(parents=True, exist_ok=True)
    outputs = RunOutputs(cfg.out, cfg.targets, fsync=cfg.fsync).open()
    started = time.perf_counter()
    counters = counters if counters is not None else Counters()
    try:
        write_invalid(invalid, cfg.targets, outputs)
        await translate_pairs(records, ctx, cfg, outputs, counters)
    finally:
        outputs.close()
    return finish_report(outputs, cfg, counters, time.perf_counter() - started, input_desc)


def finish_report(
    outputs: RunOutputs,
    cfg: RunConfig,
    counters: Counters,
    wall: float,
    input_desc: dict[str, Any] | None,
) -> dict[str, Any]:
    """Build and write `report.json` from the outputs and this run's counters."""
    report = build_report(
        outputs.done,
        cfg.targets,
        run={
            "wall_s": wall,
            "pairs_this_run": counters.accepted + counters.rejected,
            "usage_this_run": counters.usage.model_dump(),
            "model": cfg.model,
            "input": input_desc or {},
        },
        prices=cfg.prices,
    )
    write_report(cfg.out / "report.json", report)
    return report


class Outputs(Protocol):
    """Where finished pairs go: the run's files, or a pipe to the process that writes them."""

    done: dict[tuple[str, str], Done]

    def write(self, lang: str, row: AcceptedRow | RejectedRow) -> None: ...


async def translate_pairs(
    records: list[Record],
    ctx: TranslateContext,
    cfg: RunConfig,
    outputs: Outputs,
    counters: Counters,
) -> None:
    """Run the graph on every pair of `records` not in `outputs.done`, with the run's
    checkpointer (`cfg.store`), and hand each finished record's rows to `outputs`."""
    from graphs.graph import build_graph
    from graphs.stores import Checkpoints, open_checkpointer, run_prefix

    todo = [r for r in records if any((r.id, t) not in outputs.done for t in cfg.targets)]
    pairs = [(r, t) for r in todo for t in cfg.targets if (r.id, t) not in outputs.done]
    skipped = len(records) * len(cfg.targets) - len(pairs)
    if skipped:
        log.info("resuming: %d pairs already done, %d to go", skipped, len(pairs))
    async with open_checkpointer(cfg.store or cfg.out / "checkpoints.sqlite") as saver:
        checkpoints = Checkpoints(saver, prefix=run_prefix(cfg.store, cfg.out))
        await checkpoints.load()
        if checkpoints.existing:  # threads of pairs written before a kill: not needed any more
            stale = [
                tid for r in records for t in cfg.targets
                if (r.id, t) in outputs.done
                and (tid := thread_id(r, t, checkpoints.prefix)) in checkpoints.existing
            ]
            await checkpoints.finished(stale)
        graph = build_graph(saver)
        await _run(graph, checkpoints, todo, pairs, ctx, cfg, outputs, counters)


async def _run(
    graph: Any,
    checkpoints: Checkpoints,
    records: list[Record],
    pairs: list[tuple[Record, str]],
    ctx: TranslateContext,
    cfg: RunConfig,
    outputs: Outputs,
    counters: Counters,
) -> None:
    from tqdm import tqdm

    from graphs.gate import PairGate

    pending = {r.id: {t for t in cfg.targets if (r.id, t) not in outputs.done} for r in records}
    results: dict[str, dict[str, OutputState]] = {}
    tids: dict[tuple[str, str], str] = {}  # (record id, target) -> thread id, hashed once
    bar = tqdm(total=len(pairs), disable=not cfg.progress, unit="pair", dynamic_ncols=True)
    # spare pairs need a chat model that bounds its own requests; only then may a pair that
    # waits for a loading tokenizer park (stop counting) while others send their requests
    concurrency = max(1, cfg.concurrency)
    spare = max(0, cfg.spare_pairs)
    gate = PairGate(concurrency + spare, park_limit=PARK_FACTOR * concurrency if spare else 0)
    ctx.pair_gate = gate

    async def one_pair(record: Record, target: str) -> None:
        try:
            began = time.perf_counter()
            tid = tids[(record.id, target)] = thread_id(record, target, checkpoints.prefix)
            checkpointed = tid in checkpoints.existing
            if not checkpointed:
                checkpoints.new(tid)
            if cfg.durability == "exit":
                checkpoints.hold(tid)
            final = await _one(graph, tid, record, target, ctx, cfg.durability, checkpointed)
            results.setdefault(record.id, {})[target] = final
            pending[record.id].discard(target)
            if not pending[record.id]:
                finals = results.pop(record.id)
                _finish(record, finals, cfg.targets, outputs, counters)
                await checkpoints.finished([tids.pop((record.id, t)) for t in finals])
            else:  # its row waits for the record's other targets
                await checkpoints.keep(tid)
            counters.pair_seconds.append(time.perf_counter() - began)
            bar.update(1)
            bar.set_postfix(
                accepted=counters.accepted,
                rejected=counters.rejected,
                retries=counters.retries,
                tokens=counters.usage.prompt_tokens + counters.usage.completion_tokens,
                refresh=False,
            )
        except Exception as exc:  # noted before the place is given back: start no more
            failures.append(exc)
            raise
        finally:
            gate.leave()

    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def pair_done(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            dispatcher.cancel()  # it may be waiting for a place

    async def dispatch() -> None:
        for record, target in pairs:
            await gate.enter()
            if failures:  # a pair failed the run (a missing tokenizer backend): start no more
                gate.leave()
                return
            task = asyncio.ensure_future(one_pair(record, target))
            running.add(task)
            task.add_done_callback(pair_done)

    dispatcher = asyncio.ensure_future(dispatch())
    try:
        await asyncio.sleep(0.05)  # the first requests go out; the tokenizers load meanwhile
        if running or not dispatcher.done():
            ctx.load_tokenizers()
        try:
            await dispatcher
        except asyncio.CancelledError:
            if not failures:  # this run itself is cancelled
                raise
        while running and not failures:
            await asyncio.wait(set(running), return_when=asyncio.FIRST_EXCEPTION)
        if failures:
            raise failures[0]
        await checkpoints.finished([], flush=True)
    finally:
        ctx.pair_gate = None
        dispatcher.cancel()
        for task in list(running):
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        bar.close()
        try:
            await checkpoints.persist_held()
        except Exception:  # the run's own error matters more
            log.exception("could not write the checkpoints of interrupted pairs")


async def _one(
    graph: Any,
    tid: str,
    record: Record,
    target: str,
    ctx: TranslateContext,
    durability: Durability,
    checkpointed: bool,
) -> OutputState:
    """Run (or resume, or read back) the thread of one pair; returns its final state."""
    config: RunnableConfig = {"configurable": {"thread_id": tid}}
    payload: InputState | None = {"source": record, "target": target}
    if checkpointed:  # an earlier run got this far: read back or resume, don't redo
        snapshot = await graph.aget_state(config)
        if snapshot.values.get("status") and not snapshot.next:
            return cast(OutputState, dict(snapshot.values))
        if snapshot.next:
            payload = None
    try:
        final: OutputState = await graph.ainvoke(
            payload, config, context=ctx, durability=durability
        )
    except ImportError:  # a missing tokenizer backend (loaded in the background): stop the run
        raise
    except Exception as exc:  # a bug or a backend failure must cost this pair only
        log.exception("record %s -> %s failed", record.id, target)
        finding = Finding.fatal(
            Code.LLM_ERROR if "openai" in type(exc).__module__ else Code.ANSWER_MALFORMED,
            f"internal error while translating: {type(exc).__name__}: {exc}",
        )
        final = {
            "status": "rejected",
            "record": None,
            "findings": [finding],
            "attempt": 0,
            "usage": Usage(),
            "history": [[finding.code.value]],
        }
    return final
