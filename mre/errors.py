"""Errors with context: which file, which line, which record, which field."""

from __future__ import annotations


class MREError(Exception):
    """Base class of the project's data errors."""


class RecordError(MREError, ValueError):
    """A record that breaks the schema, with where it came from.

    `str(err)` reads like ``data.jsonl:12: record 'stockmark-235': span 1 text ...``.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        record_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.record_id = record_id
        self.field = field
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"{self.path}:{self.line}" if self.line is not None else self.path)
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.record_id is not None:
            where.append(f"record {self.record_id!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        prefix = ": ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason
