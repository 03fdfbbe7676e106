"""The run directory (DESIGN contract 3): append-only JSONL outputs that make a run resumable.

`DIR/<lang>/accepted.jsonl` holds target-language records (`meta.source_id` points back);
`DIR/<lang>/rejected.jsonl` holds `{"source", "target", "draft", "findings", "attempts", ...}`.
A (source record, target) pair is done once its line is in one of the two files; a rerun
skips done pairs, so nothing is written twice, and a line cut short by a kill is dropped
(and its pair redone) on the next start.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mre.io import JsonlWriter

log = logging.getLogger(__name__)

ACCEPTED = "accepted.jsonl"
REJECTED = "rejected.jsonl"


@dataclass
class Done:
    """One finished (source, target) pair as read back from the outputs."""

    status: str  # "accepted" | "rejected"
    line: dict[str, Any]


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
            for name, status in ((ACCEPTED, "accepted"), (REJECTED, "rejected")):
                path = self.root / lang / name
                # opening drops a last line that a kill cut short; then read what is done
                self._files[(lang, status)] = JsonlWriter(path, fsync=self.fsync)
                self._load(path, lang, status)
        return self

    def _load(self, path: Path, lang: str, status: str) -> None:
        with path.open(encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                obj = json.loads(raw)
                key = (pair_key(obj, status), lang)
                if key in self.done:
                    log.error("%s:%d: pair %s already done earlier in the outputs", path, lineno, key)
                self.done[key] = Done(status, obj)

    def write(self, lang: str, status: str, obj: dict[str, Any]) -> None:
        self._files[(lang, status)].write(obj)
        self.done[(pair_key(obj, status), lang)] = Done(status, obj)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


def pair_key(obj: dict[str, Any], status: str) -> str:
    """The source key of an output line: the source record id (or input line for bad input)."""
    if status == "accepted":
        return str(obj["meta"]["source_id"])
    return str(obj["key"])
