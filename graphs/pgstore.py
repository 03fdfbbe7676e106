"""The LLM response cache in PostgreSQL (`--store postgresql://...`): the interface of
`agents.cache.ResponseCache` (get / put / len / close), shared by every worker and machine of
a run. Its key is whatever the translator computes (`agents.cache.cache_key`)."""

from __future__ import annotations

import json
import threading
from typing import Any

TABLE = "mmm_llm_cache"


class PostgresResponseCache:
    """Thread-safe key/value store of answers (JSON) in one PostgreSQL table."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self._lock = threading.Lock()
        self._conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
        from graphs.stores import SETUP_LOCK

        self._conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
        try:
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(f"SELECT value FROM {TABLE} WHERE key = %s", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {TABLE} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, blob),
            )

    def __len__(self) -> int:
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
