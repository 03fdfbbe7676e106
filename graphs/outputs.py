"""The run directory (DESIGN contract 3): append-only JSONL outputs that make a run resumable.

`DIR/<lang>/accepted.jsonl` holds target-language records (`meta.source_id` points back);
`DIR/<lang>/rejected.jsonl` holds `{"source", "target", "draft", "findings", "attempts", ...}`
(the rows are typed in `graphs.rows`). A (source record, target) pair is done once its line
is in one of the two files; a rerun skips done pairs, so nothing is written twice, and a line
cut short by a kill is dropped (and its pair redone) on the next start.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from graphs.rows import (
    ACCEPTED,
    REJECTED,
    AcceptedRow,
    RejectedRow,
    Row,
    Status,
    pair_key,
    parse_row,
)
from mre.errors import RecordError
from mre.io import JsonlWriter

log = logging.getLogger(__name__)

__all__ = ["ACCEPTED", "REJECTED", "Done", "RunOutputs", "pair_key"]


@dataclass
class Done:
    """One finished (source, target) pair as read back from the outputs."""

    status: Status
    row: Row


@dataclass
class RunOutputs:
    """Appends finished pairs to the per-language files; knows which pairs are done."""

    root: Path
    targets: list[str]
    fsync: bool = True
    done: dict[tuple[str, str], Done] = field(default_factory=dict)
    _files: dict[tuple[str, str], JsonlWriter] = field(default_factory=dict)

    def open(self) -> RunOutputs:
        for lang in self.targets:
            pairs: tuple[tuple[str, Status], ...] = ((ACCEPTED, "accepted"), (REJECTED, "rejected"))
            for name, status in pairs:
                path = self.root / lang / name
                # opening drops a last line that a kill cut short; then read what is done
                self._files[(lang, status)] = JsonlWriter(path, fsync=self.fsync)
                self._load(path, lang, status)
        return self

    def _load(self, path: Path, lang: str, status: Status) -> None:
        with path.open(encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    row = parse_row(json.loads(raw), status)
                except ValueError as err:  # json and pydantic errors
                    raise RecordError(str(err), path=str(path), line=lineno) from err
                key = (pair_key(row), lang)
                if key in self.done:
                    log.error("%s:%d: pair %s already done earlier in the outputs", path, lineno, key)
                self.done[key] = Done(status, row)

    def write(self, lang: str, row: AcceptedRow | RejectedRow) -> None:
        status: Status = "accepted" if isinstance(row, AcceptedRow) else "rejected"
        self._files[(lang, status)].write(row.to_json())
        self.done[(pair_key(row), lang)] = Done(status, row)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
