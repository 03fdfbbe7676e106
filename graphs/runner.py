"""The batch runner: asyncio concurrency, SQLite checkpoints, resume, progress, report."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.findings import Code, Finding, Severity
from agents.translator import Usage
from graphs.context import TranslateContext
from graphs.outputs import Done, RunOutputs
from graphs.report import build_report, write_report
from mre import Record

log = logging.getLogger(__name__)

Durability = Literal["sync", "async", "exit"]


@dataclass(frozen=True)
class InvalidInput:
    """An input line that is not a valid record: it is rejected for every target."""

    key: str
    line: int
    reason: str
    raw: str


@dataclass
class RunConfig:
    out: Path
    targets: list[str]
    concurrency: int = 8
    durability: Durability = "exit"
    fsync: bool = False  # flush is enough against kill -9; fsync also survives power loss
    progress: bool = True
    model: str = ""
    prices: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Counters:
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    pair_seconds: list[float] = field(default_factory=list)  # wall time of each pair, in order


def thread_id(record: Record, target: str) -> str:
    digest = hashlib.sha256(record.model_dump_json().encode()).hexdigest()[:12]
    return f"{record.id}:{target}:{digest}"


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
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from graphs.graph import compile_graph

    cfg.out.mkdir(parents=True, exist_ok=True)
    outputs = RunOutputs(cfg.out, cfg.targets, fsync=cfg.fsync).open()
    started = time.perf_counter()
    counters = counters if counters is not None else Counters()
    try:
        for bad in invalid:
            for lang in cfg.targets:
                if (bad.key, lang) not in outputs.done:
                    outputs.write(lang, "rejected", _invalid_line(bad, lang))
        todo = [r for r in records if any((r.id, t) not in outputs.done for t in cfg.targets)]
        pairs = [(r, t) for r in todo for t in cfg.targets if (r.id, t) not in outputs.done]
        skipped = len(records) * len(cfg.targets) - len(pairs)
        if skipped:
            log.info("resuming: %d pairs already done, %d to go", skipped, len(pairs))
        async with AsyncSqliteSaver.from_conn_string(str(cfg.out / "checkpoints.sqlite")) as saver:
            checkpoints = Checkpoints(saver)
            await checkpoints.load()
            graph = compile_graph(saver)
            await _run(graph, checkpoints, todo, pairs, ctx, cfg, outputs, counters)
    finally:
        outputs.close()
    wall = time.perf_counter() - started
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


class Checkpoints:
    """The SQLite checkpointer plus the runner's bookkeeping: which threads it already holds
    (read once at start), and deletes of finished threads in batches."""

    def __init__(self, saver: Any, batch: int = 64) -> None:
        self.saver = saver
        self.batch = batch
        self.existing: set[str] = set()
        self._finished: list[str] = []

    async def load(self) -> None:
        await self.saver.setup()
        async with self.saver.lock, self.saver.conn.execute(
            "SELECT DISTINCT thread_id FROM checkpoints"
        ) as cur:
            self.existing = {str(row[0]) async for row in cur}
        if self.existing:
            log.info("checkpointer holds %d unfinished or unwritten threads", len(self.existing))

    async def finished(self, thread_ids: list[str], *, flush: bool = False) -> None:
        self._finished += thread_ids
        if self._finished and (flush or len(self._finished) >= self.batch):
            rows = [(t,) for t in self._finished]
            self._finished = []
            async with self.saver.lock:
                await self.saver.conn.executemany(
                    "DELETE FROM checkpoints WHERE thread_id = ?", rows
                )
                await self.saver.conn.executemany("DELETE FROM writes WHERE thread_id = ?", rows)
                await self.saver.conn.commit()


async def _run(
    graph: Any,
    checkpoints: Checkpoints,
    records: list[Record],
    pairs: list[tuple[Record, str]],
    ctx: TranslateContext,
    cfg: RunConfig,
    outputs: RunOutputs,
    counters: Counters,
) -> None:
    from tqdm import tqdm

    queue: asyncio.Queue[tuple[Record, str]] = asyncio.Queue()
    for pair in pairs:
        queue.put_nowait(pair)
    pending = {r.id: {t for t in cfg.targets if (r.id, t) not in outputs.done} for r in records}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    bar = tqdm(total=len(pairs), disable=not cfg.progress, unit="pair", dynamic_ncols=True)

    async def worker() -> None:
        while True:
            try:
                record, target = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            began = time.perf_counter()
            tid = thread_id(record, target)
            final = await _one(graph, record, target, ctx, cfg.durability, tid in checkpoints.existing)
            results.setdefault(record.id, {})[target] = final
            pending[record.id].discard(target)
            if not pending[record.id]:
                finals = results.pop(record.id)
                _finish(record, finals, cfg.targets, outputs, counters)
                await checkpoints.finished([thread_id(record, t) for t in finals])
            counters.pair_seconds.append(time.perf_counter() - began)
            bar.update(1)
            bar.set_postfix(
                accepted=counters.accepted,
                rejected=counters.rejected,
                retries=counters.retries,
                tokens=counters.usage.prompt_tokens + counters.usage.completion_tokens,
                refresh=False,
            )

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, cfg.concurrency))))
        await checkpoints.finished([], flush=True)
    finally:
        bar.close()


async def _one(
    graph: Any,
    record: Record,
    target: str,
    ctx: TranslateContext,
    durability: Durability,
    checkpointed: bool,
) -> dict[str, Any]:
    """Run (or resume, or read back) the thread of one pair; returns its final state."""
    config = {"configurable": {"thread_id": thread_id(record, target)}}
    payload: dict[str, Any] | None = {"source": record.model_dump(mode="json"), "target": target}
    if checkpointed:  # an earlier run got this far: read back or resume, don't redo
        snapshot = await graph.aget_state(config)
        if snapshot.values.get("status") and not snapshot.next:
            return dict(snapshot.values)
        if snapshot.next:
            payload = None
    try:
        final: dict[str, Any] = await graph.ainvoke(
            payload, config, context=ctx, durability=durability
        )
    except Exception as exc:  # a bug or a backend failure must cost this pair only
        log.exception("record %s -> %s failed", record.id, target)
        finding = Finding.fatal(
            Code.LLM_ERROR if "openai" in type(exc).__module__ else Code.ANSWER_MALFORMED,
            f"internal error while translating: {type(exc).__name__}: {exc}",
        )
        final = {
            "status": "rejected",
            "record": None,
            "findings": [finding.model_dump(mode="json")],
            "attempt": 0,
            "usage": {},
            "history": [[finding.code.value]],
        }
    return final


def _finish(
    source: Record,
    finals: dict[str, dict[str, Any]],
    targets: list[str],
    outputs: RunOutputs,
    counters: Counters,
) -> None:
    """Cross-target check, then write every target of one source record."""
    statuses = {t: finals[t]["status"] if t in finals else outputs.done[(source.id, t)].status for t in targets}
    mismatch = cross_target_findings(source, {t: _accepted_record(t, finals, outputs, source.id) for t in targets})
    for target, final in finals.items():
        usage = Usage.model_validate(final.get("usage") or {})
        counters.usage = counters.usage + usage
        counters.retries += max(0, int(final.get("attempt", 1)) - 1)
        findings = final.get("findings", [])
        record = final.get("record")
        if final["status"] == "accepted" and target in mismatch:
            final = {**final, "status": "rejected"}
            findings = [*findings, *(f.model_dump(mode="json") for f in mismatch[target])]
        cross = {t: s for t, s in statuses.items() if t != target}
        if final["status"] == "accepted" and record is not None:
            meta = {
                **record.get("meta", {}),
                "attempts": final.get("attempt", 1),
                "span_map": final.get("span_map", []),
                "notes": sorted({f["code"] for f in findings}),
                "usage": usage.model_dump(),
                "review_usage": final.get("review_usage") or {},
                "history": final.get("history", []),
                "other_targets": cross,
            }
            outputs.write(target, "accepted", {**record, "meta": meta})
            counters.accepted += 1
        else:
            outputs.write(
                target,
                "rejected",
                {
                    "key": source.id,
                    "target": target,
                    "source": source.model_dump(mode="json"),
                    "draft": record or _draft_from(final),
                    "findings": findings,
                    "reasons": sorted({f["code"] for f in findings if f["severity"] != "info"}),
                    "attempts": final.get("attempt", 0),
                    "history": final.get("history", []),
                    "usage": usage.model_dump(),
                    "review_usage": final.get("review_usage") or {},
                    "other_targets": cross,
                },
            )
            counters.rejected += 1


def _draft_from(final: dict[str, Any]) -> dict[str, Any] | None:
    if final.get("answer") is None:
        return None
    return {"answer": final.get("answer"), "alignment": final.get("alignment")}


def _accepted_record(
    target: str, finals: dict[str, dict[str, Any]], outputs: RunOutputs, source_id: str
) -> Record | None:
    if target in finals:
        final = finals[target]
        if final["status"] == "accepted" and final.get("record"):
            return Record.model_validate(final["record"])
        return None
    done: Done = outputs.done[(source_id, target)]
    return Record.model_validate(done.line) if done.status == "accepted" else None


def cross_target_findings(
    source: Record, accepted: dict[str, Record | None]
) -> dict[str, list[Finding]]:
    """Every accepted target must keep the source's spans (same count, same source order of
    labels through the glossary) and its relations. Returns findings per failing target."""
    from mre.glossary import map_label

    out: dict[str, list[Finding]] = {}
    for target, record in accepted.items():
        if record is None:
            continue
        problems: list[str] = []
        if len(record.spans) != len(source.spans):
            problems.append(f"{len(record.spans)} spans for {len(source.spans)} in the source")
        want = Counter(
            map_label(s.label, task=source.task, source=source.lang, target=target)
            for s in source.spans
        )
        got = Counter(s.label for s in record.spans)
        if want != got:
            problems.append(f"span labels {dict(got)} differ from the source's {dict(want)}")
        if len(record.relations) != len(source.relations):
            problems.append("relations were lost")
        if problems:
            out[target] = [
                Finding(
                    code=Code.CROSS_TARGET_MISMATCH,
                    severity=Severity.FATAL,
                    message=f"{target}: " + "; ".join(problems),
                )
            ]
    return out


def _invalid_line(bad: InvalidInput, lang: str) -> dict[str, Any]:
    finding = {
        "code": "invalid_input",
        "severity": "fatal",
        "message": bad.reason,
        "span": None,
        "data": {"line": bad.line},
    }
    return {
        "key": bad.key,
        "target": lang,
        "source": _maybe_json(bad.raw),
        "draft": None,
        "findings": [finding],
        "reasons": ["invalid_input"],
        "attempts": 0,
        "history": [],
        "usage": Usage().model_dump(),
        "line": bad.line,
    }


def _maybe_json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
