"""The reader: :class:`RecordReader` / :func:`read_records` (see :mod:`mre.io`)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TextIO

from mre.errors import MREError, RecordError
from mre.io.formats import (
    Mmm,
    Stockmark,
    canonical,
    detect_format,
    mmm_lang_from_name,
    mmm_task_from_name,
)
from mre.io.items import Bad, Item, first_char, json_list_items, jsonl_items, read_text
from mre.oiellm import decode_pair
from mre.record import Record
from mre.tasks import Task

log = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "stockmark", "mmm"]
PathLike = str | os.PathLike[str]

# ---------------------------------------------------------------------------------------
# the reader


@dataclass
class ReadStats:
    """What one pass over a file gave: records yielded, items rejected and why."""

    accepted: int = 0
    rejected: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


class RecordReader(Iterator[Record]):
    """An iterator of the valid records of one file (see the module docstring).

    Single pass, like a file object. ``stats`` counts what was read so far; ``fmt`` is the
    format actually read (after auto-detection, once iteration has started).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        fmt: Format = "auto",
        strict: bool = True,
        rejects: PathLike | TextIO | None = None,
        lang: str | None = None,
        task: Task | str | None = None,
        expect_lang: str | None = None,
        max_chars: int | None = None,
    ) -> None:
        if fmt not in ("auto", "jsonl", "stockmark", "mmm"):
            raise ValueError(f"unknown format {fmt!r}; expected auto, jsonl, stockmark or mmm")
        self.path = Path(path)
        self.fmt: Format = fmt
        self.strict = strict
        self.lang = lang
        self.task = Task.parse(task) if task is not None else None
        self.expect_lang = expect_lang
        self.max_chars = max_chars
        self.stats = ReadStats()
        self._rejects_target = rejects
        self._rejects: IO[str] | None = None
        self._owns_rejects = False
        self._gen: Iterator[Record] | None = None

    @property
    def accepted(self) -> int:
        return self.stats.accepted

    @property
    def rejected(self) -> int:
        return self.stats.rejected

    def __iter__(self) -> RecordReader:
        return self

    def __next__(self) -> Record:
        if self._gen is None:
            self._gen = self._records()
        return next(self._gen)

    def close(self) -> None:
        """Stop reading and close the rejects file (done automatically at the end)."""
        if self._gen is not None and hasattr(self._gen, "close"):
            self._gen.close()
        self._close_rejects()

    # -- internals -------------------------------------------------------------------

    def _converter(self, fmt: str) -> Callable[[Any, int], Record]:
        if fmt == "jsonl":
            return canonical
        if fmt == "stockmark":
            return Stockmark(lang=self.lang or "ja", task=self.task or Task.SCNM)
        stem = self.path.stem
        lang = self.lang or mmm_lang_from_name(stem)
        if lang is None:
            raise MREError(
                f"{self.path}: cannot tell the language of this MMM file from its name; pass lang="
            )
        return Mmm(stem, lang, self.task or mmm_task_from_name(stem), decode_pair)

    def _check(self, record: Record) -> None:
        """The caller's limits: the source language, the longest text it will translate."""
        if self.expect_lang is not None and record.lang != self.expect_lang:
            raise Bad(
                "wrong_language",
                f"record is in {record.lang!r}, not in the source language {self.expect_lang!r}",
                record_id=record.id,
                field="lang",
            )
        if self.max_chars is not None and len(record.text) > self.max_chars:
            raise Bad(
                "too_long",
                f"text has {len(record.text)} characters, more than the limit of "
                f"{self.max_chars} (max_chars)",
                record_id=record.id,
                field="text",
            )

    def _items(self) -> Iterator[Item]:
        if first_char(self.path) == "[":
            yield from json_list_items(read_text(self.path), str(self.path))
        else:
            with self.path.open("rb") as fh:
                yield from jsonl_items(fh)

    def _records(self) -> Iterator[Record]:
        if self.fmt == "auto":
            detected = detect_format(self.path)
            if detected is None:
                return
            self.fmt = detected
        convert = self._converter(self.fmt)
        if not self.strict:
            self._open_rejects()
        seen: dict[str, int] = {}
        number = 0
        try:
            for item in self._items():
                number += 1
                bad: Bad | None = None
                try:
                    if item.error is not None:
                        raise Bad(item.error_kind, item.error)
                    record = convert(item.value, number)
                    first = seen.get(record.id)
                    if first is not None:
                        raise Bad(
                            "duplicate_id",
                            f"duplicate id {record.id!r}: first seen on line {first}",
                            record_id=record.id,
                        )
                    seen[record.id] = item.line
                    self._check(record)
                except Bad as exc:
                    bad = exc
                if bad is not None:
                    self._reject(item, bad)  # raises when strict
                    continue
                self.stats.accepted += 1
                yield record
        finally:
            self._close_rejects()
        if self.stats.rejected:
            log.warning(
                "%s: %d records read, %d rejected (%s)",
                self.path,
                self.stats.accepted,
                self.stats.rejected,
                ", ".join(f"{k}: {n}" for k, n in self.stats.by_kind.items()),
            )

    def _reject(self, item: Item, bad: Bad) -> None:
        if self.strict:
            raise RecordError(
                bad.reason,
                path=str(self.path),
                line=item.line,
                record_id=bad.record_id,
                field=bad.field,
            )
        self.stats.rejected += 1
        self.stats.by_kind[bad.kind] += 1
        log.debug("%s:%d: rejected (%s): %s", self.path, item.line, bad.kind, bad.reason)
        if self._rejects is not None:
            row = {
                "path": str(self.path),
                "line": item.line,
                "record_id": bad.record_id,
                "kind": bad.kind,
                "reason": bad.reason,
                "raw": item.raw,
            }
            self._rejects.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._rejects.flush()

    def _open_rejects(self) -> None:
        target = self._rejects_target
        if target is None or self._rejects is not None:
            return
        if isinstance(target, str | os.PathLike):
            p = Path(target)
            p.parent.mkdir(parents=True, exist_ok=True)
            self._rejects = p.open("w", encoding="utf-8")
            self._owns_rejects = True
        else:
            self._rejects = target

    def _close_rejects(self) -> None:
        if self._rejects is not None and self._owns_rejects:
            self._rejects.close()
        self._rejects = None


def read_records(
    path: PathLike,
    *,
    fmt: Format = "auto",
    strict: bool = True,
    rejects: PathLike | TextIO | None = None,
    lang: str | None = None,
    task: Task | str | None = None,
    expect_lang: str | None = None,
    max_chars: int | None = None,
) -> RecordReader:
    """The valid records of `path`, streamed (see the module docstring for the formats).

    - ``strict=True``: the first bad line raises RecordError (file, line, record id).
    - ``strict=False``: bad lines are skipped, counted in ``reader.stats`` and, when
      `rejects` is a path or an open text file, written there as JSONL (a path is
      truncated when reading starts).
    - `lang` / `task`: the language and task of stockmark (default ``ja`` / ``SCNM``) and
      MMM records (default: from the file name); canonical records carry their own.
    - `expect_lang`: records in another language are bad (kind ``wrong_language``).
    - `max_chars`: records whose text is longer are bad (kind ``too_long``).

        >>> reader = read_records("ner.jsonl", strict=False, rejects="rejects.jsonl")
        >>> records = list(reader); reader.stats.rejected
    """
    return RecordReader(
        path,
        fmt=fmt,
        strict=strict,
        rejects=rejects,
        lang=lang,
        task=task,
        expect_lang=expect_lang,
        max_chars=max_chars,
    )
