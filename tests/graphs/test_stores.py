"""The PostgreSQL store's setup lock against a real server (`MMM_TEST_PG_URL`; CI starts one).

LangGraph's migrations build indexes with `CREATE INDEX CONCURRENTLY`, which waits for every
open transaction. A worker blocked in `pg_advisory_lock` holds one, so two workers starting
together deadlocked (PostgreSQL killed one: DeadlockDetected, a Ray shard lost). These tests
hold the lock, make a worker wait for it, and run `CREATE INDEX CONCURRENTLY` meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from graphs.stores import SETUP_LOCK, open_checkpointer
from tests.graphs.test_graph_scale import needs_pg, pg_url  # noqa: F401  (fixture)


@contextmanager
def lock_held_while_indexing(url: str) -> Iterator[None]:
    """Hold the setup lock in a thread; once the body starts (a worker about to wait for the
    lock), build an index concurrently, then let go. Asserts the index got built."""
    import psycopg

    started, done = threading.Event(), []

    def hold() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS lock_probe (a int)")
            locked.set()
            started.wait(10)
            time.sleep(0.3)  # the worker is inside its wait for the lock now
            conn.execute("SET statement_timeout = '20s'")
            conn.execute("CREATE INDEX CONCURRENTLY lock_probe_a ON lock_probe (a)")
            done.append("indexed")
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))

    locked = threading.Event()
    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    try:
        started.set()
        yield
    finally:
        holder.join(30)
    assert done == ["indexed"]


@needs_pg
@pytest.mark.timeout(60)
def test_checkpointer_setup_waits_without_blocking_concurrent_index(pg_url: str) -> None:  # noqa: F811
    async def worker() -> int:
        async with open_checkpointer(pg_url) as saver:
            return len([c async for c in saver.alist(None)])

    with lock_held_while_indexing(pg_url):
        assert asyncio.run(worker()) == 0


@needs_pg
@pytest.mark.timeout(60)
def test_cache_setup_waits_without_blocking_concurrent_index(pg_url: str) -> None:  # noqa: F811
    from graphs.pgstore import PostgresResponseCache

    with lock_held_while_indexing(pg_url):
        cache = PostgresResponseCache(pg_url)
        cache.put("k", {"answer": 1})
        assert cache.get("k") == {"answer": 1}
        cache.close()


@needs_pg
@pytest.mark.timeout(120)
def test_four_workers_set_up_one_fresh_database_together(pg_url: str) -> None:  # noqa: F811
    """The failure CI saw, as it happened: several workers setting up one fresh database."""

    async def one() -> int:
        async with open_checkpointer(pg_url) as saver:
            return len([c async for c in saver.alist(None)])

    async def all_four() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(4)))

    assert asyncio.run(all_four()) == [0, 0, 0, 0]
