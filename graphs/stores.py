"""Where a run keeps its checkpoints: SQLite beside the outputs (the default, no server), or
PostgreSQL (`--store postgresql://...`, for runs over several machines); the savers' mixins,
and `Checkpoints`, the runner's bookkeeping over a saver (known threads, held and finished
ones)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The PostgreSQL advisory lock held while a process creates the run's tables.
SETUP_LOCK = 0x6D6D6D74  # "mmmt"
#: Seconds between tries to take `SETUP_LOCK`.
LOCK_POLL_S = 0.05

# Why the setup lock is polled and never waited for: LangGraph's PostgreSQL migrations run
# `CREATE INDEX CONCURRENTLY`, which waits for every transaction open when it starts, and a
# statement blocked in `pg_advisory_lock` is such a transaction. The holder would wait for the
# waiter and the waiter for the holder (PostgreSQL: DeadlockDetected, one worker lost). Each
# `pg_try_advisory_lock` is a transaction that ends at once.


def lock_setup(conn: Any) -> None:
    """Take `SETUP_LOCK` on a sync autocommit psycopg connection, polling (see above)."""
    import time

    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (SETUP_LOCK,)).fetchone()[0]:
        time.sleep(LOCK_POLL_S)


async def alock_setup(conn: Any) -> None:
    """`lock_setup` on an async autocommit psycopg connection."""
    import asyncio

    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (SETUP_LOCK,))
        row = await cursor.fetchone()
        if row["got"] if isinstance(row, dict) else row[0]:
            return
        await asyncio.sleep(LOCK_POLL_S)


def run_prefix(store: str | None, out: Path) -> str:
    """What a run's thread ids start with: nothing in the run's own SQLite file; in a shared
    PostgreSQL database, a hash of the output directory (the run the threads belong to)."""
    if not is_postgres(store):
        return ""
    import hashlib

    return hashlib.sha256(str(out.resolve()).encode("utf-8")).hexdigest()[:10] + "/"


def is_postgres(store: str | Path | None) -> bool:
    return isinstance(store, str) and store.startswith(("postgresql://", "postgres://"))


class KnownNewThreads:
    """Mixed into a saver: the runner marks the threads it knows hold no checkpoint
    (`mark_new`: not in the store when the run started, not run since), and LangGraph's read
    of such a thread's latest checkpoint, when the thread starts, is answered None without a
    query (a round trip to the store's thread for every pair). Each mark serves one read: the
    thread's later reads (a resume) go to the store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new: set[str] = set()

    def mark_new(self, thread_id: str) -> None:
        self._new.add(thread_id)

    async def aget_tuple(self, config: Any) -> Any:
        conf = config["configurable"]
        tid = conf.get("thread_id")
        if tid in self._new and not conf.get("checkpoint_id"):
            self._new.discard(tid)
            return None
        return await super().aget_tuple(config)  # type: ignore[misc]


class HeldExitCheckpoints:
    """Mixed into a saver: the checkpoint LangGraph writes when a thread ends (durability
    "exit") is held in memory for the threads the runner marks (`hold`), not written.

    The runner then either drops it (`release`) once the pair's row is in the outputs, so that
    a finished pair costs no write and no delete in the store (about 3 ms of CPU per pair on
    SQLite), or writes it (`persist`) when the pair waits for another target of its record,
    and at the end of the run for whatever is still held (a pair interrupted by an error or
    Ctrl-C keeps its progress, as before). A kill -9 loses only what is held: pairs whose rows
    were not written yet, which a resume runs again, as it does every pair in flight under
    durability "exit". Any other read or write of a held thread writes it first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold: set[str] = set()
        self._held: dict[str, tuple[Any, Any, Any, Any]] = {}

    def hold(self, thread_id: str) -> None:
        self._hold.add(thread_id)

    def release(self, thread_id: str) -> bool:
        """Forget `thread_id`; True when its exit checkpoint was held, never written."""
        self._hold.discard(thread_id)
        return self._held.pop(thread_id, None) is not None

    async def persist(self, thread_id: str) -> None:
        """Write the held exit checkpoint of `thread_id` (if any); hold no more of it."""
        self._hold.discard(thread_id)
        held = self._held.pop(thread_id, None)
        if held is not None:
            await super().aput(*held)  # type: ignore[misc]

    async def persist_all(self) -> None:
        for tid in list(self._held):
            await self.persist(tid)
        self._hold.clear()

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        conf = config["configurable"]
        tid = conf.get("thread_id")
        if tid in self._hold:
            self._held[tid] = (config, checkpoint, metadata, new_versions)
            return {
                "configurable": {
                    "thread_id": tid,
                    "checkpoint_ns": conf.get("checkpoint_ns", ""),
                    "checkpoint_id": checkpoint["id"],
                }
            }
        return await super().aput(config, checkpoint, metadata, new_versions)  # type: ignore[misc]

    async def aput_writes(self, config: Any, *args: Any, **kwargs: Any) -> None:
        await self.persist(config["configurable"].get("thread_id"))
        await super().aput_writes(config, *args, **kwargs)  # type: ignore[misc]

    async def aget_tuple(self, config: Any) -> Any:
        tid = config["configurable"].get("thread_id")
        if tid in self._held:
            await self.persist(tid)
        return await super().aget_tuple(config)  # type: ignore[misc]

    async def adelete_thread(self, thread_id: str) -> None:
        self.release(thread_id)
        await super().adelete_thread(thread_id)  # type: ignore[misc]


class Checkpoints:
    """The checkpointer plus the runner's bookkeeping: which threads it already holds (read
    once at start), and deletes of finished threads through the saver's public API."""

    def __init__(self, saver: Any, batch: int = 64, prefix: str = "") -> None:
        self.saver = saver
        self.prefix = prefix  # this run's thread ids start with it (a shared store)
        self.batch = batch
        self.existing: set[str] = set()
        self._finished: list[str] = []
        self._tasks: set[asyncio.Future[None]] = set()

    async def load(self) -> None:
        # the saver comes set up from `open_checkpointer`, under the store's setup lock
        self.existing = {
            tid
            async for item in self.saver.alist(None)
            if (tid := str(item.config["configurable"]["thread_id"])).startswith(self.prefix)
        }
        if self.existing:
            log.info("checkpointer holds %d unfinished or unwritten threads", len(self.existing))

    def hold(self, thread_id: str) -> None:
        """Keep the checkpoint `thread_id` ends with in memory (`stores.HeldExitCheckpoints`):
        under durability "exit" it is written only if the pair has to wait for another target
        of its record (`keep`) or the run stops with it unwritten."""
        hold = getattr(self.saver, "hold", None)
        if hold is not None:
            hold(thread_id)

    async def keep(self, thread_id: str) -> None:
        """The pair of `thread_id` waits for other targets of its record: write its checkpoint."""
        persist = getattr(self.saver, "persist", None)
        if persist is not None:
            await persist(thread_id)

    async def persist_held(self) -> None:
        """The run stops: write every checkpoint still held (pairs interrupted mid-way)."""
        persist_all = getattr(self.saver, "persist_all", None)
        if persist_all is not None:
            await persist_all()

    def new(self, thread_id: str) -> None:
        """`thread_id` holds no checkpoint (not in the store at start, not run since): the
        saver need not look for one when the thread starts (`stores.KnownNewThreads`)."""
        mark = getattr(self.saver, "mark_new", None)
        if mark is not None:
            mark(thread_id)

    async def finished(self, thread_ids: list[str], *, flush: bool = False) -> None:
        """Delete the threads of written pairs: in the background, a batch at a time, so that
        no pair waits for it; `flush` waits for every delete."""
        release = getattr(self.saver, "release", None)
        self._finished += [  # a thread never written needs no delete
            tid for tid in thread_ids
            if release is None or not release(tid) or tid in self.existing
        ]  # fmt: skip
        if self._finished and (flush or len(self._finished) >= self.batch):
            done, self._finished = self._finished, []
            self._tasks.add(asyncio.ensure_future(self._delete(done)))
            self._tasks = {t for t in self._tasks if not t.done()}
        if flush and self._tasks:
            await asyncio.gather(*self._tasks)
            self._tasks.clear()

    async def _delete(self, thread_ids: list[str]) -> None:
        for tid in thread_ids:
            await self.saver.adelete_thread(tid)


@asynccontextmanager
async def open_checkpointer(store: str | Path) -> AsyncIterator[Any]:
    """An async LangGraph checkpoint saver on `store`, set up, with the state's serializer."""
    from graphs.state import serializer

    if is_postgres(store):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row

        class PostgresSaver(KnownNewThreads, HeldExitCheckpoints, AsyncPostgresSaver):
            pass

        async with await AsyncConnection.connect(
            str(store), autocommit=True, prepare_threshold=0, row_factory=dict_row
        ) as conn:
            saver = PostgresSaver(conn, serde=serializer())
            # workers and machines start together: one of them creates the tables
            await alock_setup(conn)
            try:
                await saver.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
            yield saver
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    class SqliteSaver(KnownNewThreads, HeldExitCheckpoints, AsyncSqliteSaver):
        pass

    async with aiosqlite.connect(str(store), timeout=60) as db:
        lite = SqliteSaver(db, serde=serializer())
        await lite.setup()
        # WAL is set by setup(); NORMAL syncs at checkpoints of the WAL only: a kill -9 loses
        # nothing, a power loss at most the last commits (the outputs decide what is done)
        await db.execute("PRAGMA synchronous=NORMAL")
        yield lite
