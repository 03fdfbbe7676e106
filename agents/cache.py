"""An LLM response cache in SQLite: a rerun costs nothing.

The key covers everything that changes the answer: model, structured-output method, the
schema asked for, temperature and the messages. Only answers that could be read are stored
(the translator does not put an unparsable answer), so a retry of a bad answer asks again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def cache_key(
    model: str,
    method: str,
    messages: Sequence[tuple[str, str]],
    *,
    schema: Mapping[str, Any] | None = None,
    temperature: float | None = None,
) -> str:
    """A stable key for one request: sha256 of model, structured-output method, schema,
    temperature and messages (JSON with sorted keys, so dict order does not matter)."""
    blob = json.dumps(
        {
            "model": model,
            "method": method,
            "schema": schema,
            "temperature": temperature,
            "messages": [list(m) for m in messages],
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class KeyValueCache:
    """Thread-safe key/value store of answers (JSON) over one SQL connection, shared by
    concurrent calls. Subclasses open `_conn` and give the three statements of their dialect."""

    _select: str  # the value of one key
    _upsert: str  # insert or replace (key, value)
    _count: str  # the number of rows

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(self._select, (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(self._upsert, (key, blob))

    def __len__(self) -> int:
        with self._lock:
            row = self._conn.execute(self._count).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class ResponseCache(KeyValueCache):
    """The LLM response cache in SQLite (`DIR/llm_cache.sqlite`)."""

    _select = "SELECT value FROM responses WHERE key = ?"
    _upsert = "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)"
    _count = "SELECT COUNT(*) FROM responses"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
