"""Handlers for the local OpenAI-compatible server that answer like a translator would.

`RecordedTranslator` answers from examples/replay.jsonl by the <source> block of the first
user message (so retries, whose last message is the feedback, still find their answer), and
plants bad answers on chosen (record, target) pairs to check that the verifier catches them
and the retry repairs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from replay_server.server import Answer, ChatRequest, HTTPError, Reply

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.jsonl"
REPLAY = ROOT / "examples" / "replay.jsonl"

SOURCE_RE = re.compile(
    r'<source source_lang="(?P<src>[^"]+)" target_lang="(?P<tgt>[^"]+)">(?P<text>.*?)</source>',
    re.S,
)


def load_replay(path: Path = REPLAY) -> dict[tuple[str, str], dict[str, str]]:
    """(marked source, target) -> the replay line."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out[(obj["source"], obj["target"])] = obj
    return out


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


class RecordedTranslator:
    """Answers every request from the recorded translations, with optional planted faults."""

    def __init__(
        self,
        plants: dict[tuple[str, str], Plant] | None = None,
        always_bad: dict[tuple[str, str], Plant] | None = None,
        path: Path = REPLAY,
    ) -> None:
        self.replay = load_replay(path)
        self.by_id = {(v["id"], v["target"]): v for v in self.replay.values()}
        self.plants = plants or {}
        self.always_bad = always_bad or {}

    def entry(self, request: ChatRequest) -> dict[str, str] | None:
        m = SOURCE_RE.search(request.all_text)
        if m is None:
            return None
        return self.replay.get((m["text"], m["tgt"]))

    def __call__(self, request: ChatRequest) -> Reply:
        entry = self.entry(request)
        if entry is None:
            return HTTPError(404, "no recorded answer")
        key = (entry["id"], entry["target"])
        retry = "<previous>" in request.all_text
        if key in self.always_bad:
            return Answer({"text": self.always_bad[key](entry["text"])})
        if key in self.plants and not retry:
            return Answer({"text": self.plants[key](entry["text"])})
        return Answer({"text": entry["text"]})
