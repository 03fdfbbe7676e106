"""Writers: :func:`write_jsonl` (a file at once) and :class:`JsonlWriter` (appends, resumable)."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from pydantic import BaseModel

from mre.record import Record

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# ---------------------------------------------------------------------------------------
# writers


def _dumpable(item: Record | BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json")
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"cannot write a {type(item).__name__} as a JSONL row")


def dumps_line(item: Record | BaseModel | Mapping[str, Any]) -> str:
    """One compact JSON line (no newline), UTF-8 characters kept as they are."""
    return json.dumps(_dumpable(item), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_jsonl(
    records: Iterable[Record | BaseModel | Mapping[str, Any]], dest: PathLike | TextIO
) -> int:
    """Write `records` to `dest` (a path, replaced; or an open text file), one a line.

    Returns how many were written.
    """
    if isinstance(dest, str | os.PathLike):
        p = Path(dest)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            return write_jsonl(records, fh)
    count = 0
    for record in records:
        dest.write(dumps_line(record) + "\n")
        count += 1
    dest.flush()
    return count


def _drop_partial_last_line(path: Path) -> int:
    """Cut a last line that has no newline (a write cut short); returns the bytes cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = pos + newline + 1
                break
        fh.truncate(keep)
    return size - keep


class JsonlWriter:
    """Append records to a JSONL file, one flushed line per `write`.

    Made for output that a rerun resumes: the file is opened in append mode, every line is
    flushed (and fsynced with ``fsync=True``) before `write` returns, and a last line left
    without its newline by a crash is cut off when the file is opened again (the record it
    held was never completely written). Safe to call from several threads.

        >>> with JsonlWriter("out/en/accepted.jsonl") as out:
        ...     out.write(record)
    """

    def __init__(self, path: PathLike, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        dropped = _drop_partial_last_line(self.path)
        if dropped:
            log.warning("%s: cut %d bytes of an unfinished last line", self.path, dropped)
        self._fh: io.TextIOWrapper | None = self.path.open("a", encoding="utf-8", newline="\n")
        self._lock = threading.Lock()

    def write(self, item: Record | BaseModel | Mapping[str, Any]) -> None:
        line = dumps_line(item) + "\n"
        with self._lock:
            if self._fh is None:
                raise ValueError(f"{self.path}: write to a closed JsonlWriter")
            self._fh.write(line)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self.count += 1

    def write_many(self, items: Iterable[Record | BaseModel | Mapping[str, Any]]) -> int:
        n = 0
        for item in items:
            self.write(item)
            n += 1
        return n

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
