"""Where a run keeps its checkpoints: SQLite beside the outputs (the default, no server), or
PostgreSQL (`--store postgresql://...`, for runs over several machines)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


def is_postgres(store: str | Path | None) -> bool:
    return isinstance(store, str) and store.startswith(("postgresql://", "postgres://"))


@asynccontextmanager
async def open_checkpointer(store: str | Path) -> AsyncIterator[Any]:
    """An async LangGraph checkpoint saver on `store`, set up, with the state's serializer."""
    from graphs.state import serializer

    if is_postgres(store):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row

        async with await AsyncConnection.connect(
            str(store), autocommit=True, prepare_threshold=0, row_factory=dict_row
        ) as conn:
            saver = AsyncPostgresSaver(conn, serde=serializer())  # type: ignore[arg-type]
            await saver.setup()
            yield saver
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with aiosqlite.connect(str(store), timeout=60) as conn:
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
        # WAL is set by setup(); NORMAL syncs at checkpoints of the WAL only: a kill -9 loses
        # nothing, a power loss at most the last commits (the outputs decide what is done)
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield saver
