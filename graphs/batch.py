"""`python -m graphs.translate ... --batch`: the LLM answers come from an OpenAI-compatible
Batch API (half price, answers within 24 hours) instead of one HTTP call each.

How: the translator keeps its own `ChatOpenAI` (so the request bodies, the structured-output
parsing, the usage and the cache are exactly those of the online mode), but the model's HTTP
client is swapped for :class:`BatchTransport`. A chat request that reaches the transport is
looked up in the run's batch store (`OUT/batch.sqlite`, :mod:`graphs.batch_store`) by the hash
of its exact body: an answer there is returned at once; otherwise the request is recorded and
the pair waits. When no new request has come for a moment (every pair waits or is done), the
waiting requests go into batch input files within the per-file limits, which are uploaded
(`/v1/files`) and submitted (`/v1/batches`, tagged with the run id in `metadata`). The run
polls with backoff, downloads the output and error files, stores the answers and wakes the
waiting pairs: each goes on through align and verify, and a retry (with its feedback) is a new
request for the next round. A request is submitted again only after its batch expired, failed
or was cancelled, or after a transient per-request error (429, 5xx), at most `--max-attempts`
times; then its pair gets the error and is rejected with the reason.

Resuming (rerun the same command): answered requests are served from the store; batches in
flight are polled again; a submission recorded without a batch id (a kill around
`batches.create`) is looked up with the list endpoint by its run id and submission id, and
adopted, or sent back to pending when the server never made the batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphs.batch_store import Answer, BatchStore

if TYPE_CHECKING:
    import httpx
    import openai

    from agents.llm import LLMSettings

log = logging.getLogger(__name__)

#: Seconds without activity (a new request, a task started or ended, a busy event loop) before
#: the waiting requests are submitted: every pair then waits for an answer or is done.
SETTLE_S = 1.0
#: Batch prices are this share of the online prices (OpenAI: 50%).
BATCH_PRICE_FACTOR = 0.5
#: HTTP statuses of a per-request error that are worth another round.
TRANSIENT = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class BatchOptions:
    poll_interval: float = 30.0
    max_rounds: int = 3  # submissions of one request (the graph bounds attempts per pair)
    max_requests: int = 50_000  # per input file (OpenAI's limit)
    max_bytes: int = 200_000_000  # per input file (OpenAI: 200 MB)
    progress: bool = True


def custom_id(body: dict[str, Any]) -> str:
    """The request's id in the batch files and the store: a hash of its exact body."""
    blob = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "req-" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


class BatchTransport:
    """An httpx transport for the chat model: answers from the store, or waits for a batch."""

    def __init__(self, run: BatchRun) -> None:
        self.run = run

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import httpx

        body = json.loads(await request.aread())
        if not request.url.path.endswith("/chat/completions"):
            raise ValueError(f"--batch serves chat completions only, not {request.url.path}")
        answer = await self.run.answer(body)
        headers = {} if answer.status == 200 else {"x-should-retry": "false"}
        return httpx.Response(answer.status, json=answer.body, headers=headers, request=request)

    async def aclose(self) -> None:
        return None


class BatchRun:
    """The batch side of one run: the store, the waiting requests, the batches in flight."""

    def __init__(self, out: Path, settings: LLMSettings, options: BatchOptions) -> None:
        self.settings = settings
        self.options = options
        self.store = BatchStore(out / "batch.sqlite")
        self._waiters: dict[str, asyncio.Future[Answer]] = {}
        self._queued: dict[str, None] = {}  # waiting and pending: the next round, in order
        self._last_request = time.monotonic()
        self._next_poll: dict[str, tuple[float, float]] = {}  # batch -> (when, interval)
        self._client: openai.AsyncOpenAI | None = None
        self.started = time.monotonic()

    # -- the chat model -----------------------------------------------------------------------

    def chat_model(self, llm: Any) -> Any:
        """`llm` (a ChatOpenAI built for the online mode) with its HTTP client swapped for the
        batch transport: the request bodies stay the ones the online mode sends."""
        import httpx

        client = httpx.AsyncClient(transport=BatchTransport(self))  # type: ignore[arg-type]
        llm.root_async_client = llm.root_async_client.with_options(http_client=client)
        llm.async_client = llm.root_async_client.chat.completions
        return llm

    async def answer(self, body: dict[str, Any]) -> Answer:
        """The answer to one chat request: from the store, or once its batch is done."""
        cid = custom_id(body)
        known = self.store.lookup(cid)
        if known is not None and known[1] is not None:
            return known[1]
        if known is None:
            self.store.add(cid, body)
        future = self._waiters.get(cid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[cid] = future
            if known is None or known[0] == "pending":
                self._queued[cid] = None
            self._last_request = time.monotonic()
        return await asyncio.shield(future)

    # -- the loop -------------------------------------------------------------------------------

    async def run(
        self,
        work: Callable[[], Awaitable[dict[str, Any]]],
        prices: dict[str, dict[str, float]] | None = None,
    ) -> dict[str, Any]:
        """Run `work()` (the runner over every pair) while feeding its requests through
        batches; returns its report with a `batch` section added (and written to report.json).
        """
        import openai
        from tqdm import tqdm

        from graphs.report import write_report

        s = self.settings
        self._client = openai.AsyncOpenAI(
            base_url=s.base_url, api_key=s.api_key, timeout=s.timeout, max_retries=s.max_retries
        )
        bar = tqdm(disable=not self.options.progress, desc="batches", dynamic_ncols=True)
        try:
            await self._resume()
            task = asyncio.ensure_future(work())
            try:
                tasks: frozenset[int] = frozenset()
                while not task.done():
                    await self._poll(bar)
                    if self._ready_to_submit():
                        await self._submit()
                    tick = min(self.options.poll_interval, SETTLE_S) / 4
                    began = time.monotonic()
                    await asyncio.wait({task}, timeout=tick)
                    now_tasks = frozenset(id(t) for t in asyncio.all_tasks() if not t.done())
                    if now_tasks != tasks or time.monotonic() - began > tick + 0.2:
                        self._last_request = time.monotonic()  # the pairs are still working
                    tasks = now_tasks
            finally:
                if not task.done():
                    task.cancel()
            report = task.result()
            summary = self.store.summary()
        finally:
            bar.close()
            await self._client.close()
            self.store.close()
        summary["cost_usd"] = _batch_cost(str(report.get("model", "")), summary, prices or {})
        summary["price_factor"] = BATCH_PRICE_FACTOR
        summary["poll_interval_s"] = self.options.poll_interval
        summary["wall_s"] = round(time.monotonic() - self.started, 3)
        report["batch"] = summary
        write_report(self.store.path.parent / "report.json", report)
        return report

    def _ready_to_submit(self) -> bool:
        """A round starts when requests wait and the pairs are quiet (all wait or are done).
        No file goes out before that even when one is full: rounds stay clean (a retry is
        always in a later round than its first attempt), and against hours of batch time
        the seconds the pairs take to make their requests do not count."""
        return bool(self._queued) and time.monotonic() - self._last_request >= SETTLE_S

    # -- submitting -------------------------------------------------------------------------------

    async def _submit(self) -> None:
        """Upload and submit every waiting pending request, in files within the limits."""
        queued, self._queued = list(self._queued), {}
        rows = self.store.pending(queued)
        round_ = self.store.rounds() + 1
        give_up = [c for c, _ in rows if self.store.tries(c) >= self.options.max_rounds]
        for cid in give_up:
            reason = self._reason(cid)
            message = f"no answer after {self.store.tries(cid)} batch submissions: {reason}"
            self._finish(cid, "failed", Answer(503, _error(503, message)), reason)
        rows = [(c, b) for c, b in rows if c not in give_up]
        for chunk in self._chunks(rows):
            await self._submit_one(round_, chunk)

    def _reason(self, cid: str) -> str:
        row = self.store._db.execute("SELECT reason FROM requests WHERE custom_id = ?", (cid,))
        found = row.fetchone()
        return str(found[0]) if found and found[0] else "unknown"

    def _chunks(self, rows: list[tuple[str, str]]) -> list[list[tuple[str, bytes]]]:
        chunks: list[list[tuple[str, bytes]]] = [[]]
        size = 0
        for cid, body in rows:
            line = json.dumps(
                {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                 "body": json.loads(body)},
                ensure_ascii=False,
            ).encode("utf-8") + b"\n"
            if len(line) > self.options.max_bytes:
                message = (f"the request has {len(line)} bytes, over the batch file limit of "
                           f"{self.options.max_bytes}")
                self._finish(cid, "failed", Answer(400, _error(400, message)), message)
                continue
            full = len(chunks[-1]) >= self.options.max_requests
            if chunks[-1] and (full or size + len(line) > self.options.max_bytes):
                chunks.append([])
                size = 0
            chunks[-1].append((cid, line))
            size += len(line)
        return [c for c in chunks if c]

    async def _submit_one(self, round_: int, chunk: list[tuple[str, bytes]]) -> None:
        assert self._client is not None
        data = b"".join(line for _, line in chunk)
        name = f"{self.store.run_id}-round{round_}.jsonl"
        uploaded = await self._client.files.create(
            file=(name, data, "application/jsonl"), purpose="batch"
        )
        ids = [cid for cid, _ in chunk]
        sub = self.store.begin_submission(round_, uploaded.id, ids, len(data))
        metadata = {"mmm_run": self.store.run_id, "mmm_submission": sub}
        try:
            batch = await self._client.with_options(max_retries=0).batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata=metadata,
            )
            batch_id: str = batch.id
            status: str = batch.status
        except Exception as exc:  # did the server make it anyway? never submit twice
            from openai import APIError

            if not isinstance(exc, APIError):
                raise
            found = await self._find_submissions({sub})
            if sub not in found:
                log.warning("creating the batch for %s failed (%s); will retry", sub, exc)
                self.store.abandon(sub)
                return
            batch_id, status = found[sub]
        self.store.batch_created(sub, batch_id, status)
        self._next_poll[batch_id] = (time.monotonic() + self.options.poll_interval,
                                     self.options.poll_interval)
        log.info("round %d: batch %s with %d requests (%d bytes)", round_, batch_id, len(ids),
                 len(data))

    async def _find_submissions(self, wanted: set[str]) -> dict[str, tuple[str, str]]:
        """submission id -> (batch id, status) of this run's batches on the server."""
        assert self._client is not None
        found: dict[str, tuple[str, str]] = {}
        async for batch in self._client.batches.list(limit=100):
            meta = batch.metadata or {}
            if meta.get("mmm_run") == self.store.run_id and meta.get("mmm_submission") in wanted:
                found[meta["mmm_submission"]] = (batch.id, batch.status)
            if batch.created_at < self.store.created - 3600 or len(found) == len(wanted):
                break  # newest first: older batches cannot be this run's
        return found

    async def _resume(self) -> None:
        unconfirmed = set(self.store.unconfirmed())
        if unconfirmed:
            found = await self._find_submissions(unconfirmed)
            for sub in unconfirmed:
                if sub in found:
                    log.info("adopting batch %s of submission %s (made before a kill)",
                             found[sub][0], sub)
                    self.store.batch_created(sub, *found[sub])
                else:
                    self.store.abandon(sub)
        for batch_id, _ in self.store.open_batches():
            self._next_poll[batch_id] = (0.0, self.options.poll_interval)
        if self._next_poll:
            log.info("resuming: %d batches in flight", len(self._next_poll))

    # -- polling and collecting -------------------------------------------------------------------

    async def _poll(self, bar: Any) -> None:
        assert self._client is not None
        now = time.monotonic()
        statuses: Counter[str] = Counter()
        for batch_id, (when, interval) in list(self._next_poll.items()):
            if when > now:
                statuses["waiting"] += 1
                continue
            batch = await self._client.batches.retrieve(batch_id)
            statuses[batch.status] += 1
            if batch.status in ("completed", "expired", "failed", "cancelled"):
                await self._collect(batch)
                del self._next_poll[batch_id]
            else:
                self.store.set_status(batch_id, batch.status)
                backoff = min(interval * 1.5, self.options.poll_interval * 20)
                self._next_poll[batch_id] = (now + interval, backoff)
            counts = batch.request_counts
            if counts is not None:
                bar.set_postfix_str(f"{batch_id[-8:]}: {batch.status} "
                                    f"{counts.completed}/{counts.total}", refresh=False)
        if statuses:
            bar.set_description(" ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
            bar.refresh()

    async def _collect(self, batch: Any) -> None:
        """Download a finished batch's files; store answers, requeue or fail the rest."""
        assert self._client is not None
        rows: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._client.files.content(file_id)
                for line in content.text.splitlines():
                    if line.strip():
                        row = json.loads(line)
                        rows[str(row.get("custom_id"))] = row
        results: dict[str, tuple[str, Answer | None, str]] = {}
        for cid in self.store.batch_requests(batch.id):
            results[cid] = self._result(cid, rows.get(cid), batch)
        self.store.collect(batch.id, batch.status, results)
        answered = sum(1 for s, _, _ in results.values() if s == "answered")
        log.info("batch %s %s: %d answered, %d to resubmit, %d failed", batch.id, batch.status,
                 answered, sum(1 for s, _, _ in results.values() if s == "pending"),
                 sum(1 for s, _, _ in results.values() if s == "failed"))
        for cid, (state, answer, _) in results.items():
            if state != "pending" and answer is not None:
                self._wake(cid, answer)
            elif state == "pending" and cid in self._waiters:
                self._queued[cid] = None

    def _result(
        self, cid: str, row: dict[str, Any] | None, batch: Any
    ) -> tuple[str, Answer | None, str]:
        if row is None:  # not run: the batch failed, expired or was cancelled
            errors = getattr(batch, "errors", None)
            detail = "; ".join(e.message or "" for e in (errors.data or [])) if errors else ""
            return "pending", None, f"batch {batch.id} {batch.status}" + (f": {detail}" if detail else "")
        response = row.get("response") or {}
        code = int(response.get("status_code") or 0)
        if code == 200 and isinstance(response.get("body"), dict):
            return "answered", Answer(200, response["body"]), ""
        if row.get("error"):
            err = row["error"]
            return "pending", None, f"{err.get('code')}: {err.get('message')}"
        body = response.get("body") if isinstance(response.get("body"), dict) else None
        answer = Answer(code or 500, body or _error(code or 500, "no body"))
        message = str((answer.body.get("error") or {}).get("message", ""))
        if answer.status in TRANSIENT:
            return "pending", None, f"HTTP {answer.status}: {message}"
        return "failed", answer, f"HTTP {answer.status}: {message}"

    def _finish(self, cid: str, state: str, answer: Answer, reason: str) -> None:
        self.store.settle(cid, state, answer, reason)
        self._wake(cid, answer)

    def _wake(self, cid: str, answer: Answer) -> None:
        self._last_request = time.monotonic()  # the woken pair goes on
        future = self._waiters.pop(cid, None)
        if future is not None and not future.done():
            future.set_result(answer)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "batch_error", "param": None, "code": None}}


def _batch_cost(model: str, summary: dict[str, Any], prices: dict[str, Any]) -> float | None:
    from graphs.report import cost_usd

    cost = cost_usd(model, summary["prompt_tokens"], summary["completion_tokens"], prices)
    return None if cost is None else round(cost * BATCH_PRICE_FACTOR, 6)
