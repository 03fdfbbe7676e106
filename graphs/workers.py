"""Several runners on one run: `--workers N` processes on this machine (or Ray actors, see
`graphs.ray_executor`), each the asyncio runner on a shard of the records.

The shard of a record is a stable hash of its id (so every target of a record, which the
cross-target check needs together, lands in one worker, and the same record lands in the same
shard whatever the process). The workers share the run's checkpoint store and LLM response
cache; only this (the parent) process writes the output files: a worker sends each finished
row down its own pipe, and the parent appends it. So outputs stay exactly-once after a
`kill -9` of any process: a row is written once or not at all, and a pair without a row is
redone by the next run, with any number of workers.

A worker that dies does not hang the run: the parent notices (its pipe closes), finishes
writing what the others send, writes the report, and raises `IncompleteRunError` naming the
worker and how many pairs are unwritten (the CLI exits non-zero; rerun to finish them).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agents.translator import Usage
from graphs.outputs import Done, RunOutputs
from graphs.rows import AcceptedRow, RejectedRow, Status, parse_row
from graphs.runner import (
    Counters,
    InvalidInput,
    RunConfig,
    finish_report,
    translate_pairs,
    write_invalid,
)
from graphs.worker_start import split_concurrency, worker_context
from mre import Record

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from agents.llm import LLMSettings
    from graphs.context import TranslateContext

log = logging.getLogger(__name__)


class IncompleteRunError(OSError):
    """A worker process ended before its shard was written (the run can be resumed)."""


def shard_of(key: str, n: int) -> int:
    """The shard of a record id: stable across processes, machines and Python versions."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


@dataclass(frozen=True, kw_only=True)
class ContextSpec:
    """What a worker needs to build its own TranslateContext (the context itself holds HTTP
    clients and tokenizers, which do not cross a process boundary)."""

    settings: LLMSettings  # the chat model endpoint
    source: str  # source language code
    targets: tuple[str, ...]  # target language codes
    needs_pos: bool  # whether a task of the run needs POS tags
    max_attempts: int = 3
    verifier_model: Path | None = None  # OIELLM checkpoint for the model check
    verifier_url: str | None = None  # a completions endpoint serving it (None: in process)
    cache: str | None = None  # LLM response cache: a SQLite path or a postgresql:// URL
    review: str = "uncertain"  # when the reviewer agent is asked: off | uncertain | all
    memory: Path | None = None  # the entity translation memory (SQLite), None: off
    max_in_flight: int | None = None  # this process's LLM requests at once (None: unbounded)
    log_level: str = "WARNING"

    def build(self) -> TranslateContext:
        from agents.llm import build_chat_model
        from agents.translator import Translator
        from graphs.context import TranslateContext, target_tokenizers
        from word_tokenizers import get_language

        languages = {t: get_language(t) for t in self.targets}
        model_check = None
        if self.verifier_model is not None:
            from training.verifier_model import load_check

            model_check = load_check(self.verifier_model, url=self.verifier_url)
        llm = build_chat_model(self.settings, max_in_flight=self.max_in_flight)
        cache = open_cache(self.cache)
        reviewer = None
        if self.review != "off":
            from agents.reviewer import Reviewer

            reviewer = Reviewer(
                llm, model_name=self.settings.model, method=self.settings.method, cache=cache
            )
        memory = None
        if self.memory is not None:
            from agents.memory import TranslationMemory

            memory = TranslationMemory(self.memory)
        return TranslateContext(
            translator=Translator(
                llm,
                model_name=self.settings.model,
                method=self.settings.method,
                cache=cache,
            ),
            reviewer=reviewer,
            review=self.review,  # type: ignore[arg-type]
            memory=memory,
            source_language=get_language(self.source),
            target_languages=languages,
            target_tokenizers=target_tokenizers(languages, needs_pos=self.needs_pos),
            max_attempts=self.max_attempts,
            model_check=model_check,
        )


def open_cache(where: str | None) -> Any:
    """The LLM response cache at `where` (None: no cache)."""
    if where is None:
        return None
    from graphs.stores import is_postgres

    if is_postgres(where):
        from graphs.pgstore import PostgresResponseCache

        return PostgresResponseCache(where)
    from agents.cache import ResponseCache

    return ResponseCache(where)


@dataclass
class ShardTask:
    """One worker's share of a run (picklable)."""

    index: int
    records: list[str]  # records as JSON
    done: dict[tuple[str, str], Done] = field(default_factory=dict)  # rows of these records


# ---- the worker side ---------------------------------------------------------------------


class PipeOutputs:
    """The worker's outputs: each finished row goes down the pipe to the writing process."""

    def __init__(self, conn: Connection, done: dict[tuple[str, str], Done]) -> None:
        self.conn = conn
        self.done = done

    def write(self, lang: str, row: AcceptedRow | RejectedRow) -> None:
        status: Status = "accepted" if isinstance(row, AcceptedRow) else "rejected"
        self.conn.send(("row", lang, status, row.to_json()))
        key = row.meta.source_id if isinstance(row, AcceptedRow) else row.key
        self.done[(str(key), lang)] = Done(status, row)


async def run_shard(task: ShardTask, spec: ContextSpec, cfg: RunConfig, outputs: Any) -> Counters:
    """The asyncio runner on one shard (a worker process or a Ray actor runs this)."""
    ctx = spec.build()
    counters = Counters()
    records = [Record.model_validate_json(r) for r in task.records]
    try:
        await translate_pairs(records, ctx, cfg, outputs, counters)
    finally:
        cache = ctx.translator.cache
        if cache is not None:
            cache.close()
    return counters


def _worker_main(task: ShardTask, spec: ContextSpec, cfg: RunConfig, conn: Connection) -> None:
    logging.basicConfig(
        level=spec.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker{task.index} %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "openai", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run_shard(task, spec, cfg, PipeOutputs(conn, task.done)))
    conn.send(("end",))
    conn.close()


# ---- the parent side ---------------------------------------------------------------------


def make_shards(
    records: Sequence[Record], done: dict[tuple[str, str], Done], targets: Sequence[str], n: int
) -> list[ShardTask]:
    """The records with a pair still to do, split in `n` shards by `shard_of(record.id)`."""
    shards = [ShardTask(i, []) for i in range(n)]
    for record in records:
        if all((record.id, t) in done for t in targets):
            continue
        shard = shards[shard_of(record.id, n)]
        shard.records.append(record.model_dump_json())
        for t in targets:
            if (record.id, t) in done:
                shard.done[(record.id, t)] = done[(record.id, t)]
    return shards


def count(counters: Counters, row: AcceptedRow | RejectedRow) -> None:
    """This run's figures, from the rows as they are written."""
    if isinstance(row, AcceptedRow):
        counters.accepted += 1
        usage, attempts = row.meta.usage, row.meta.attempts or 1
    else:
        counters.rejected += 1
        usage, attempts = row.usage, row.attempts or 0
    counters.usage = counters.usage + (usage if isinstance(usage, Usage) else Usage())
    counters.retries += max(0, attempts - 1)


async def run_workers(
    records: list[Record],
    invalid: list[InvalidInput],
    spec: ContextSpec,
    cfg: RunConfig,
    *,
    workers: int,
    input_desc: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`run_pairs` over `workers` processes on this machine; returns the report."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    outputs = RunOutputs(cfg.out, cfg.targets, fsync=cfg.fsync).open()
    started = time.perf_counter()
    counters = Counters()
    problems: list[str] = []
    try:
        write_invalid(invalid, cfg.targets, outputs)
        n = max(1, min(workers, cfg.concurrency))  # each worker needs a request of its own
        shards = [s for s in make_shards(records, outputs.done, cfg.targets, n) if s.records]
        context = worker_context()
        procs = []
        for i, shard in enumerate(shards):
            worker_spec, worker_cfg = split_concurrency(spec, cfg, len(shards), i)
            parent_end, child_end = context.Pipe(duplex=False)
            proc = context.Process(
                target=_worker_main, args=(shard, worker_spec, worker_cfg, child_end),
                name=f"mmm-worker-{shard.index}",
            )
            proc.start()
            child_end.close()
            procs.append((shard, proc, parent_end))
        log.info("%d workers on %d records", len(procs), sum(len(s.records) for s in shards))
        await asyncio.to_thread(_collect, procs, outputs, counters, problems, cfg.targets)
    finally:
        outputs.close()
    report = finish_report(outputs, cfg, counters, time.perf_counter() - started, input_desc)
    if problems:
        raise IncompleteRunError(
            "; ".join(problems) + f". The rows written are kept; rerun the same command "
            f"(any --workers) to finish the {_missing(records, outputs, cfg.targets)} pairs left"
        )
    return report


def _missing(records: Sequence[Record], outputs: RunOutputs, targets: Sequence[str]) -> int:
    return sum(1 for r in records for t in targets if (r.id, t) not in outputs.done)


def _collect(
    procs: list[tuple[ShardTask, Any, Connection]],
    outputs: RunOutputs,
    counters: Counters,
    problems: list[str],
    targets: Sequence[str],
) -> None:
    """Write the rows the workers send until every pipe is closed; note each worker that
    ended without saying it finished."""
    from multiprocessing.connection import wait

    open_ends = {conn: (shard, proc) for shard, proc, conn in procs}
    finished: set[int] = set()
    while open_ends:
        for conn in cast("list[Connection]", wait(list(open_ends))):
            shard, proc = open_ends[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the worker is gone (a kill cuts a message short too)
                del open_ends[conn]
                continue
            if message[0] == "row":
                _, lang, status, obj = message
                row = parse_row(obj, cast(Status, status))
                outputs.write(lang, row)
                count(counters, row)
            elif message[0] == "end":
                finished.add(shard.index)
    for shard, proc, _ in procs:
        proc.join(timeout=30)
        if shard.index in finished and proc.exitcode == 0:
            continue
        how = (
            f"was killed by signal {-proc.exitcode}" if proc.exitcode is not None and proc.exitcode < 0
            else f"exited with status {proc.exitcode}"
        )
        left = sum(
            1 for raw in shard.records
            for t in targets
            if (Record.model_validate_json(raw).id, t) not in outputs.done
        )
        msg = f"worker {shard.index} (pid {proc.pid}) {how} with {left} pairs of its shard unwritten"
        if left == 0:
            log.warning("%s (all its rows were written)", msg)
            continue
        log.error(msg)
        problems.append(msg)


# ---- the CLI's entry -------------------------------------------------------------------------


def wants_scaling(args: Any) -> bool:
    """Whether the CLI's run goes through here (`--workers`, `--executor ray`, `--store`)."""
    return args.workers > 1 or args.executor == "ray" or args.store is not None


async def run_from_cli(
    args: Any,
    settings: LLMSettings,
    records: list[Record],
    invalid: list[InvalidInput],
    *,
    prices: dict[str, dict[str, float]],
    input_desc: dict[str, Any],
) -> dict[str, Any]:
    """The CLI's run with `--workers N`, `--executor ray` or `--store URL`."""
    from graphs.stores import is_postgres

    if args.store is not None and not is_postgres(args.store):
        raise ValueError(f"--store {args.store!r}: expected a postgresql://... URL")
    if args.executor == "ray" and args.store is None:
        raise ValueError("--executor ray needs --store postgresql://... (shared by the machines)")
    if args.no_cache:
        cache = None
    else:
        cache = args.store if args.store is not None else str(args.out / "llm_cache.sqlite")
    spec = ContextSpec(
        settings=settings,
        source=args.source,
        targets=tuple(args.target),
        needs_pos=any(r.task.is_scpos for r in records),
        max_attempts=args.max_attempts,
        verifier_model=args.verifier_model,
        verifier_url=getattr(args, "verifier_url", None),
        cache=cache,
        review=getattr(args, "review", "uncertain"),
        memory=None if getattr(args, "no_memory", False) else args.out / "memory.sqlite",
        max_in_flight=args.concurrency,
        log_level=args.log_level,
    )
    cfg = RunConfig(
        out=args.out,
        targets=list(args.target),
        concurrency=args.concurrency,
        spare_pairs=args.concurrency,
        durability=args.durability,
        fsync=args.fsync,
        progress=not args.no_progress,
        model=settings.model,
        prices=prices,
        store=args.store,
    )
    if args.executor == "ray":
        from graphs.ray_executor import run_ray

        return await run_ray(
            records, invalid, spec, cfg, actors=max(1, args.workers),
            address=args.ray_address, input_desc=input_desc,
        )
    if args.workers <= 1:
        from graphs.runner import run_pairs

        ctx = spec.build()
        try:
            return await run_pairs(records, invalid, ctx, cfg, input_desc=input_desc)
        finally:
            if ctx.translator.cache is not None:
                ctx.translator.cache.close()
    return await run_workers(records, invalid, spec, cfg, workers=args.workers, input_desc=input_desc)
