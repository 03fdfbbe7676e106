"""The recorded-answer file and how a request finds its answer in it.

The file is JSONL, one recorded translation a line::

    {"id": "stockmark-100969", "source": "<e1>...</e1>は...", "target": "en", "text": "<e1>...</e1> is ..."}

``source`` and ``text`` are marked with the numbered entity markers of DESIGN.md contract 1;
``id`` (optional) names the source record; other keys are ignored.

A request is matched through the translator's prompt *structure*, not its wording: the marked
source sits in a user message as ``<source source_lang="ja" target_lang="en">...</source>``
(the element and attributes of ``agents.prompts.TRANSLATOR_USER``). When no such element is
there (a custom prompt) or its text is not recorded as it stands, the longest recorded ``source`` that occurs in a user message wins,
among the entries whose target is named by a ``target_lang="..."`` attribute in the request.
Standard library only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mre.errors import RecordError
from replay_server.protocol import ChatRequest, content_text

logger = logging.getLogger(__name__)

__all__ = ["ReplayBook", "ReplayEntry", "SourceElement", "read_replay", "source_elements"]

_ELEMENT = re.compile(r"<source\b(?P<attrs>[^>]*)>(?P<text>.*?)</source>", re.S)
_ATTR = re.compile(r'(?P<name>[A-Za-z_][\w-]*)="(?P<value>[^"]*)"')


@dataclass(frozen=True)
class ReplayEntry:
    """One recorded translation: the marked ``source``, the ``target`` code, the marked ``text``."""

    source: str
    target: str
    text: str
    line: int = 0
    id: str | None = None


@dataclass(frozen=True)
class SourceElement:
    """A ``<source source_lang=".." target_lang="..">marked text</source>`` in a prompt."""

    text: str
    source_lang: str | None
    target_lang: str | None


def user_texts(request: ChatRequest) -> list[str]:
    """The text of every user message, in order."""
    return [content_text(m.get("content")) for m in request.messages if m.get("role") == "user"]


def source_elements(text: str) -> Iterator[SourceElement]:
    """Every ``<source ...>...</source>`` element of ``text``, in order."""
    for match in _ELEMENT.finditer(text):
        attrs = {a["name"]: a["value"] for a in _ATTR.finditer(match["attrs"])}
        yield SourceElement(match["text"], attrs.get("source_lang"), attrs.get("target_lang"))


def read_replay(path: Path) -> Iterator[ReplayEntry]:
    """The entries of a replay file; a bad line raises :class:`RecordError` naming file, line,
    record and field. A second line with the same source and target is ignored (warning)."""
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"not JSON: {e}", path=str(path), line=lineno) from e
            if not isinstance(obj, dict):
                raise RecordError(
                    f"expected an object, got {type(obj).__name__}", path=str(path), line=lineno
                )
            record_id = str(obj["id"]) if "id" in obj else None
            for key in ("source", "target", "text"):
                value = obj.get(key)
                if not isinstance(value, str) or not value:
                    raise RecordError(
                        f"expected a non-empty string, got {value!r}",
                        path=str(path),
                        line=lineno,
                        record_id=record_id,
                        field=key,
                    )
            pair = (obj["source"], obj["target"])
            if pair in seen:
                logger.warning(
                    "%s:%d: duplicate of line %d (same source and target), ignored",
                    path,
                    lineno,
                    seen[pair],
                )
                continue
            seen[pair] = lineno
            yield ReplayEntry(obj["source"], obj["target"], obj["text"], lineno, record_id)


class ReplayBook:
    """The recorded answers of one file, looked up by (marked source, target)."""

    def __init__(self, entries: Iterable[ReplayEntry], path: Path | None = None) -> None:
        self.path = path
        self._exact: dict[tuple[str, str], ReplayEntry] = {}
        self._by_target: dict[str, list[ReplayEntry]] = {}
        for entry in entries:
            self._exact[(entry.source, entry.target)] = entry
            self._by_target.setdefault(entry.target, []).append(entry)
        for group in self._by_target.values():
            group.sort(key=lambda e: -len(e.source))  # longest first; stable on file order

    @classmethod
    def load(cls, path: str | Path) -> ReplayBook:
        path = Path(path)
        book = cls(read_replay(path), path)
        logger.info("replay %s: %d entries for targets %s", path, len(book), book.targets)
        return book

    def __len__(self) -> int:
        return len(self._exact)

    def __iter__(self) -> Iterator[ReplayEntry]:
        return iter(self._exact.values())

    @property
    def targets(self) -> list[str]:
        return sorted(self._by_target)

    def get(self, source: str, target: str) -> ReplayEntry | None:
        return self._exact.get((source, target))

    def find(self, request: ChatRequest) -> ReplayEntry | None:
        """The entry that answers ``request``, or ``None`` (see the module docstring)."""
        users = user_texts(request)
        # the first user message holds the source; a retry adds the feedback after it
        for text in users:
            for element in source_elements(text):
                if element.target_lang is not None:
                    hit = self.get(element.text, element.target_lang)
                    if hit is not None:
                        return hit
        named = set(requested_targets(request))
        joined = "\n\n".join(users)
        best: ReplayEntry | None = None
        for target in named & set(self._by_target):
            for entry in self._by_target[target]:
                if best is not None and len(entry.source) <= len(best.source):
                    break
                if entry.source in joined:
                    best = entry
                    break
        return best


def requested_targets(request: ChatRequest) -> list[str]:
    """Every ``target_lang="..."`` attribute value in the request, in order."""
    return [m["value"] for m in _ATTR.finditer(request.all_text) if m["name"] == "target_lang"]
