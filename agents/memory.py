"""The entity translation memory: accepted translations of each source entity, per target.

A dataset needs one entity written one way everywhere. Every accepted pair adds its
(source entity string -> target span text) pairs; the translator of a later record is told
the established translation of the entities it has seen ("write 大岡昇平 as Shohei Ooka"), and
the report lists entities translated in more than one way.

Stored in the run directory (`DIR/memory.sqlite`), so a resumed run keeps it. Adding is
idempotent per (record key, target): a pair redone after a kill is not counted twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory (
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    translation TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (target, source, translation)
);
CREATE TABLE IF NOT EXISTS added (
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (key, target)
);
"""


class TranslationMemory:
    """Accepted entity translations of a run, in SQLite."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, key: str, target: str, pairs: Iterable[tuple[str, str]]) -> bool:
        """Record the entity translations of one accepted pair; False when `key` was added
        before (a resumed run redoing it)."""
        rows = [(target, s, t) for s, t in pairs if s and t]
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO added (key, target) VALUES (?, ?)", (key, target)
            )
            if cur.rowcount == 0:
                self._conn.commit()
                return False
            self._conn.executemany(
                "INSERT INTO memory (target, source, translation, count) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (target, source, translation) DO UPDATE SET count = count + 1",
                rows,
            )
            self._conn.commit()
        return True

    def established(self, target: str, sources: Iterable[str]) -> dict[str, str]:
        """The most frequent accepted translation of each of `sources` seen before (ties: the
        alphabetically first, so the hint is stable)."""
        wanted = list(dict.fromkeys(s for s in sources if s))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT source, translation, count FROM memory WHERE target = ? "
                f"AND source IN ({marks}) ORDER BY source, count DESC, translation",
                (target, *wanted),
            ).fetchall()
        out: dict[str, str] = {}
        for source, translation, _ in rows:
            out.setdefault(source, translation)
        return {s: out[s] for s in wanted if s in out}

    def owners(self, target: str, translations: Iterable[str]) -> dict[str, set[str]]:
        """The source entities each of `translations` was accepted for in this run."""
        wanted = list(dict.fromkeys(t for t in translations if t))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT translation, source FROM memory WHERE target = ? "
                f"AND translation IN ({marks})",
                (target, *wanted),
            ).fetchall()
        out: dict[str, set[str]] = {}
        for translation, source in rows:
            out.setdefault(translation, set()).add(source)
        return out

    def inconsistent(self) -> list[dict[str, Any]]:
        """Entities accepted with more than one translation into the same target."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT target, source, translation, count FROM memory ORDER BY target, source, "
                "count DESC, translation"
            ).fetchall()
        return inconsistent_entities((t, s, tr, c) for t, s, tr, c in rows)


def inconsistent_entities(rows: Iterable[tuple[str, str, str, int]]) -> list[dict[str, Any]]:
    """(target, source, translation, count) rows -> entities with several translations."""
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for target, source, translation, count in rows:
        found = grouped.setdefault((target, source), {})
        found[translation] = found.get(translation, 0) + count
    return [
        {"target": t, "source": s, "translations": dict(sorted(v.items(), key=lambda kv: -kv[1]))}
        for (t, s), v in sorted(grouped.items())
        if len(v) > 1
    ]


def pairs_of(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(source entity, target span) pairs recorded in an accepted record's `meta.evidence`."""
    return [
        (str(e["source"]), str(e["text"]))
        for e in meta.get("evidence", [])
        if e.get("source") and e.get("text")
    ]
