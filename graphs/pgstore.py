"""The LLM response cache in PostgreSQL (`--store postgresql://...`): the interface of
`agents.cache.ResponseCache` (get / put / len / close), shared by every worker and machine of
a run. Its key is whatever the translator computes (`agents.cache.cache_key`)."""

from __future__ import annotations

from agents.cache import KeyValueCache

TABLE = "mmm_llm_cache"


class PostgresResponseCache(KeyValueCache):
    """The LLM response cache in one PostgreSQL table."""

    _select = f"SELECT value FROM {TABLE} WHERE key = %s"
    _upsert = (
        f"INSERT INTO {TABLE} (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    )
    _count = f"SELECT COUNT(*) FROM {TABLE}"

    def __init__(self, url: str) -> None:
        import psycopg

        from graphs.stores import SETUP_LOCK, lock_setup

        super().__init__()
        self.url = url
        self._conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
        lock_setup(self._conn)
        try:
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
