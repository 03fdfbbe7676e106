"""Planted faults for tests: a replay handler that answers some pairs badly.

Serving recorded answers is `replay_server.ReplayHandler`'s job; `RecordedTranslator` adds
only the fault planting: on chosen (record id, target) pairs it returns a bad translation on
the first attempt (`plants`, which the verifier must catch and the retry repair) or on every
attempt (`always_bad`). A retry is a request that quotes the previous answer (the
translator's feedback message holds `<previous>...</previous>`); a first attempt may have a
second user message too (the translation memory's hints).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from replay_server import Answer, ChatRequest, ReplayBook, ReplayEntry, ReplayHandler, Reply

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.jsonl"
REPLAY = ROOT / "examples" / "replay.jsonl"


def load_replay(path: Path = REPLAY) -> dict[tuple[str, str], dict[str, str]]:
    """(marked source, target) -> the replay line's fields."""
    return {
        (e.source, e.target): {"id": e.id or "", "source": e.source, "target": e.target, "text": e.text}
        for e in ReplayBook.load(path)
    }


# Planted faults: functions of the good marked translation.
def drop_marker(text: str) -> str:
    return text.replace("<e1>", "").replace("</e1>", "")


def duplicate_index(text: str) -> str:
    return text.replace("<e2>", "<e1>").replace("</e2>", "</e1>")


def empty_marker(text: str) -> str:
    return re.sub(r"<e1>.*?</e1>", "<e1></e1>", text, count=1)


def unknown_index(text: str) -> str:
    return text.replace("<e1>", "<e7>").replace("</e1>", "</e7>")


def kana_residue(text: str) -> str:
    return re.sub(r"<e1>.*?</e1>", "<e1>ヨシダ</e1>", text, count=1)


Plant = Callable[[str], str]


def is_retry(request: ChatRequest) -> bool:
    return any(
        m.get("role") == "user" and "<previous>" in str(m.get("content") or "")
        for m in request.messages
    )


class RecordedTranslator(ReplayHandler):
    """Answers every request from the recorded translations, with optional planted faults."""

    def __init__(
        self,
        plants: dict[tuple[str, str], Plant] | None = None,
        always_bad: dict[tuple[str, str], Plant] | None = None,
        path: Path = REPLAY,
    ) -> None:
        super().__init__(path)
        self.plants = plants or {}
        self.always_bad = always_bad or {}

    def entry(self, request: ChatRequest) -> dict[str, str] | None:
        """The replay line (id, source, target, text) that answers `request`, or None."""
        found = self.find(request)
        if found is None:
            return None
        return {"id": found.id or "", "source": found.source, "target": found.target, "text": found.text}

    def answer(self, entry: ReplayEntry, request: ChatRequest) -> Reply:
        key = (entry.id or "", entry.target)
        if key in self.always_bad:
            return Answer({"text": self.always_bad[key](entry.text)})
        if key in self.plants and not is_retry(request):
            return Answer({"text": self.plants[key](entry.text)})
        return Answer({"text": entry.text})
