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

import pytest

from graphs.stores import SETUP_LOCK, open_checkpointer
from tests.graphs.test_graph_scale import needs_pg, pg_url  # noqa: F401  (fixture)


def hold_lock_and_index(url: str, waiting: threading.Event, done: list[str]) -> None:
    """Hold the setup lock, wait until a worker waits for it, build an index concurrently."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS lock_probe (a int)")
        waiting.wait(10)
        time.sleep(0.3)  # the worker is inside its wait for the lock now
        conn.execute("SET statement_timeout = '20s'")
        conn.execute("CREATE INDEX CONCURRENTLY lock_probe_a ON lock_probe (a)")
        done.append("indexed")
        conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


@needs_pg
@pytest.mark.timeout(60)
def test_checkpointer_setup_waits_without_blocking_concurrent_index(pg_url: str) -> None:  # noqa: F811
    waiting, done = threading.Event(), []
    holder = threading.Thread(target=hold_lock_and_index, args=(pg_url, waiting, done))
    holder.start()

    async def worker() -> int:
        time.sleep(0.2)  # the holder has the lock
        waiting.set()
        async with open_checkpointer(pg_url) as saver:
            return len([c async for c in saver.alist(None)])

    try:
        assert asyncio.run(worker()) == 0
    finally:
        holder.join(30)
    assert done == ["indexed"]


@needs_pg
@pytest.mark.timeout(60)
def test_cache_setup_waits_without_blocking_concurrent_index(pg_url: str) -> None:  # noqa: F811
    from graphs.pgstore import PostgresResponseCache

    waiting, done = threading.Event(), []
    holder = threading.Thread(target=hold_lock_and_index, args=(pg_url, waiting, done))
    holder.start()
    time.sleep(0.2)
    waiting.set()
    try:
        cache = PostgresResponseCache(pg_url)
        cache.put("k", {"answer": 1})
        assert cache.get("k") == {"answer": 1}
        cache.close()
    finally:
        holder.join(30)
    assert done == ["indexed"]


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
