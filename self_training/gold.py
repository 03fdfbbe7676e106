"""The gold guard: the frozen gold set (and the calibration slice) never enters training.

A record belongs to the gold set by id (its ``id`` or ``meta.source_id`` equal to a gold
``id`` or gold ``meta.source_id``) or by text (equal after NFKC, case folding and whitespace
collapsing). Input records, seed records and accepted records that belong to it are dropped
and logged; the pool is checked again before every training (:class:`GoldLeakError`).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from mre.errors import MREError
from mre.record import Record

log = logging.getLogger(__name__)

HitReason = Literal["id", "text"]


class GoldLeakError(MREError, RuntimeError):
    """A gold record would enter training."""


def text_key(text: str) -> str:
    """The text compared for gold overlap: NFKC, case folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _source_id(record: Record) -> str | None:
    source_id = record.meta.get("source_id")
    return source_id if isinstance(source_id, str) and source_id else None


@dataclass
class GoldIndex:
    """What identifies a gold record: its ids (own and source) and its normalized text."""

    ids: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, records: Iterable[Record]) -> GoldIndex:
        index = cls()
        for r in records:
            index.ids.add(r.id)
            source_id = _source_id(r)
            if source_id is not None:
                index.ids.add(source_id)
            index.texts.add(text_key(r.text))
        return index

    def hit(self, record: Record) -> HitReason | None:
        """Why `record` belongs to the gold set ("id" or "text"), or None."""
        source_id = _source_id(record)
        if record.id in self.ids or (source_id is not None and source_id in self.ids):
            return "id"
        if text_key(record.text) in self.texts:
            return "text"
        return None

    def drop(self, records: Iterable[Record], what: str) -> tuple[list[Record], dict[str, int]]:
        """`records` without the gold ones (each logged); counts by reason."""
        kept: list[Record] = []
        dropped = {"id": 0, "text": 0}
        for r in records:
            why = self.hit(r)
            if why is None:
                kept.append(r)
                continue
            dropped[why] += 1
            log.warning(
                "%s: dropped record %r: it belongs to the gold set (by %s)", what, r.id, why
            )
        return kept, dropped

    def assert_clean(self, records: Iterable[Record], where: str) -> None:
        """Raise GoldLeakError naming the gold records among `records` (the first ten)."""
        leaks = [f"{r.id} (by {why})" for r in records if (why := self.hit(r)) is not None]
        if leaks:
            raise GoldLeakError(
                f"{where}: {len(leaks)} gold records would enter training: {', '.join(leaks[:10])}"
            )
