"""The run's batch state (`OUT/batch.sqlite`): every chat request the run needs, which batch
holds it, its answer; every submission and batch. It is what makes `--batch` resumable and
never billed twice: a request is put in a new batch only while it is `pending`, and the
submission that moves it out of `pending` is written *before* the batch is created.

Request states: `pending` (known, in no live batch) -> `submitting` (in an uploaded file whose
batch may or may not exist yet) -> `submitted` (in a batch) -> `answered` (a 200 response) or
`failed` (an error answer to hand to the client), or back to `pending` (the batch expired,
failed or was cancelled, or a transient per-request error).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    custom_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    submission TEXT,
    batch_id TEXT,
    status_code INTEGER,
    response TEXT,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    round INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    batch_id TEXT,
    status TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Answer:
    """What a request's client gets: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


class BatchStore:
    """SQLite, one connection, used from the event loop's thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.run_id = self._meta("run_id") or self._set_meta("run_id", f"mmm-{uuid.uuid4().hex}")
        self.created = float(self._meta("created") or self._set_meta("created", str(time.time())))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> str:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def close(self) -> None:
        self._db.close()

    # -- requests -------------------------------------------------------------------------------

    def lookup(self, custom_id: str) -> tuple[str, Answer | None] | None:
        """`(state, answer)` of a known request (answer for `answered` / `failed`), or None."""
        row = self._db.execute(
            "SELECT state, status_code, response FROM requests WHERE custom_id = ?", (custom_id,)
        ).fetchone()
        if row is None:
            return None
        state, code, response = row
        answer = Answer(int(code), json.loads(response)) if response is not None else None
        return str(state), answer if state in ("answered", "failed") else None

    def add(self, custom_id: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO requests (custom_id, body, state) VALUES (?, ?, 'pending')",
            (custom_id, json.dumps(body, ensure_ascii=False, sort_keys=True)),
        )

    def pending(self, custom_ids: Iterable[str]) -> list[tuple[str, str]]:
        """`(custom_id, body)` of the given requests that are `pending`, in the given order."""
        out = []
        for cid in custom_ids:
            row = self._db.execute(
                "SELECT body FROM requests WHERE custom_id = ? AND state = 'pending'", (cid,)
            ).fetchone()
            if row is not None:
                out.append((cid, str(row[0])))
        return out

    def tries(self, custom_id: str) -> int:
        row = self._db.execute("SELECT tries FROM requests WHERE custom_id = ?", (custom_id,))
        found = row.fetchone()
        return 0 if found is None else int(found[0])

    def settle(self, custom_id: str, state: str, answer: Answer | None, reason: str = "") -> None:
        """Set a request's end (`answered` / `failed`) or send it back to `pending`."""
        self._db.execute(
            "UPDATE requests SET state = ?, status_code = ?, response = ?, reason = ?, "
            "batch_id = CASE WHEN ? = 'pending' THEN NULL ELSE batch_id END, "
            "submission = CASE WHEN ? = 'pending' THEN NULL ELSE submission END "
            "WHERE custom_id = ?",
            (
                state,
                None if answer is None else answer.status,
                None if answer is None else json.dumps(answer.body, ensure_ascii=False),
                reason or None,
                state,
                state,
                custom_id,
            ),
        )

    # -- submissions ------------------------------------------------------------------------------

    def begin_submission(
        self, round_: int, file_id: str, custom_ids: list[str], n_bytes: int
    ) -> str:
        """Record an uploaded file about to become a batch; its requests become `submitting`."""
        sub = f"sub-{uuid.uuid4().hex[:16]}"
        with self._tx():
            self._db.execute(
                "INSERT INTO submissions (id, round, file_id, n_requests, n_bytes, created, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'submitting')",
                (sub, round_, file_id, len(custom_ids), n_bytes, time.time()),
            )
            self._db.executemany(
                "UPDATE requests SET state = 'submitting', submission = ?, tries = tries + 1 "
                "WHERE custom_id = ? AND state = 'pending'",
                [(sub, cid) for cid in custom_ids],
            )
        return sub

    def batch_created(self, submission: str, batch_id: str, status: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE submissions SET batch_id = ?, status = ? WHERE id = ?",
                (batch_id, status, submission),
            )
            self._db.execute(
                "UPDATE requests SET state = 'submitted', batch_id = ? "
                "WHERE submission = ? AND state = 'submitting'",
                (batch_id, submission),
            )

    def abandon(self, submission: str) -> None:
        """A submission whose batch was never created: its requests go back to `pending`."""
        with self._tx():
            self._db.execute(
                "UPDATE submissions SET status = 'abandoned', collected = 1 WHERE id = ?",
                (submission,),
            )
            self._db.execute(
                "UPDATE requests SET state = 'pending', submission = NULL, tries = tries - 1 "
                "WHERE submission = ? AND state = 'submitting'",
                (submission,),
            )

    def unconfirmed(self) -> list[str]:
        """Submissions recorded but with no batch id (a kill around `batches.create`)."""
        rows = self._db.execute("SELECT id FROM submissions WHERE status = 'submitting'")
        return [str(r[0]) for r in rows]

    def open_batches(self) -> list[tuple[str, str]]:
        """`(batch_id, submission)` of the batches not collected yet."""
        rows = self._db.execute(
            "SELECT batch_id, id FROM submissions WHERE batch_id IS NOT NULL AND collected = 0"
        )
        return [(str(b), str(s)) for b, s in rows]

    def batch_requests(self, batch_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT custom_id FROM requests WHERE batch_id = ? AND state = 'submitted'",
            (batch_id,),
        )
        return [str(r[0]) for r in rows]

    def set_status(self, batch_id: str, status: str, *, collected: bool = False) -> None:
        self._db.execute(
            "UPDATE submissions SET status = ?, collected = MAX(collected, ?) WHERE batch_id = ?",
            (status, int(collected), batch_id),
        )

    def collect(
        self, batch_id: str, status: str, results: dict[str, tuple[str, Answer | None, str]]
    ) -> None:
        """Store a finished batch's results (custom_id -> (state, answer, reason)) at once."""
        with self._tx():
            for cid, (state, answer, reason) in results.items():
                self.settle(cid, state, answer, reason)
            self.set_status(batch_id, status, collected=True)

    def rounds(self) -> int:
        (n,) = self._db.execute("SELECT COALESCE(MAX(round), 0) FROM submissions").fetchone()
        return int(n)

    # -- the report -------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        batches = self._db.execute(
            "SELECT batch_id, round, status, n_requests, n_bytes FROM submissions "
            "WHERE batch_id IS NOT NULL ORDER BY created"
        ).fetchall()
        states = dict(self._db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state"))
        (resubmitted,) = self._db.execute(
            "SELECT COALESCE(SUM(MAX(tries - 1, 0)), 0) FROM requests"
        ).fetchone()
        prompt = completion = 0
        for (response,) in self._db.execute(
            "SELECT response FROM requests WHERE state = 'answered'"
        ):
            usage = json.loads(response).get("usage") or {}
            prompt += int(usage.get("prompt_tokens", 0))
            completion += int(usage.get("completion_tokens", 0))
        by_status: dict[str, int] = {}
        for _, _, status, _, _ in batches:
            by_status[status] = by_status.get(status, 0) + 1
        return {
            "run_id": self.run_id,
            "rounds": self.rounds(),
            "batches": {
                "total": len(batches),
                "by_status": dict(sorted(by_status.items())),
                "list": [
                    {"id": b, "round": r, "status": s, "requests": n, "bytes": nb}
                    for b, r, s, n, nb in batches
                ],
            },
            "requests": {
                "total": sum(states.values()),
                **{k: int(v) for k, v in sorted(states.items())},
                "resubmitted": int(resubmitted),
            },
            "prompt_tokens": prompt,
            "completion_tokens": completion,
        }

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
