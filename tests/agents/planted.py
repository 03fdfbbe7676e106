"""Planted meaning errors for the verifier: well-formed answers that are wrong in meaning.

The planted set is built from correct hand translations of held-out real records
(`tests/fixtures/meaning/`: stockmark records not in `examples/`): each kind of error is planted
into a correct answer by moving or replacing text, so the marker syntax stays perfect.

- `swapped`: two entities of different labels exchange their translations;
- `widened`: a marker swallows the next two words;
- `cut_short`: a multi-word span loses its last word;
- `substituted`: a name is replaced by another entity's name of the same label;
- `dropped`: the longest clause without entities (at least a fifth of the text) is removed.

`MeaningHandler` plays the LLM on the local OpenAI-compatible server: the translator answers
the planted answer first and the correct one after any feedback; the reviewer compares the
marked spans with the correct answer and gives the correct span text where they differ.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from agents.aligner import Alignment, Projected, align
from agents.reviewer import mark_projected
from mre import Record
from replay_server import Answer, ChatRequest

KINDS = ("swapped", "widened", "cut_short", "substituted", "dropped")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meaning"


@dataclass(frozen=True)
class Pair:
    record: Record
    target: str
    correct: str  # the marked correct translation


def load(fixtures: Path = FIXTURES) -> tuple[dict[str, Record], list[Pair]]:
    records = {}
    for line in (fixtures / "records.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = Record.model_validate_json(line)
            records[r.id] = r
    pairs = []
    for line in (fixtures / "answers.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            a = json.loads(line)
            pairs.append(Pair(records[a["id"]], a["target"], a["text"]))
    return records, pairs


def _alnum(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _remark(al: Alignment, changes: dict[int, tuple[int, int]], text: str | None = None) -> str:
    projected = dict(al.projected)
    base = al.text if text is None else text
    for index, (s, e) in changes.items():
        projected[index] = Projected(index, s, e, base[s:e])
    return mark_projected(base, projected)


def plant(
    kind: str,
    pair: Pair,
    tokenize: Callable[[str], list[Any]],
    donors: dict[tuple[str, str], list[str]],
) -> str | None:
    """The correct answer of `pair` with one error of `kind` planted, or None where that
    kind cannot be planted in this answer."""
    al = align(pair.correct, pair.record, tokenize)
    spans = pair.record.spans
    projected = dict(sorted(al.projected.items()))
    taken = [(p.start, p.end) for p in projected.values()]
    tokens = al.tokens
    if kind == "swapped":  # the markers of two entities trade places; the text is unchanged
        for i in projected:
            for j in projected:
                if i < j and spans[i - 1].label != spans[j - 1].label:
                    a, b = projected[i], projected[j]
                    if a.text != b.text:
                        return _remark(al, {i: (b.start, b.end), j: (a.start, a.end)})
        return None
    if kind == "widened":
        for i, p in projected.items():
            after = [t for t in tokens if t.start >= p.end]
            if len(after) < 2 or not all(_alnum(t.text) for t in after[:2]):
                continue
            end = after[1].end
            if any(s < end and e > p.end for s, e in taken):
                continue
            if any(ch in al.text[p.end : end] for ch in ",.;:，。、"):
                continue
            return _remark(al, {i: (p.start, end)})
        return None
    if kind == "cut_short":
        best = None
        for i, p in projected.items():
            inside = [t for t in tokens if t.start >= p.start and t.end <= p.end and _alnum(t.text)]
            if len(inside) >= 2 and (best is None or len(inside) > best[1]):
                best = (i, len(inside), inside)
        if best is None:
            return None
        i, _, inside = best
        return _remark(al, {i: (projected[i].start, inside[-2].end)})
    if kind == "substituted":
        for i, p in projected.items():
            for other in donors.get((pair.target, spans[i - 1].label), []):
                if other != p.text and other not in al.text:
                    text = al.text[: p.start] + other + al.text[p.end :]
                    shift = len(other) - len(p.text)
                    changes = {i: (p.start, p.start + len(other))}
                    for k, q in projected.items():
                        if k != i:
                            d = shift if q.start >= p.end else 0
                            changes[k] = (q.start + d, q.end + d)
                    return _remark(al, changes, text)
        return None
    if kind == "dropped":
        text = al.text
        cuts = [m.start() for m in re.finditer(r"[,，、;；]| and | but |并且|而且", text)]
        bounds = [-1, *cuts, len(text.rstrip("。. \"”")) ]
        best_seg = None
        for a, b in pairwise(bounds):
            s, e = (a if a >= 0 else 0), b  # drop the separator before the clause with it
            if a < 0:
                continue
            if any(ts < e and te > s for ts, te in taken):
                continue
            if best_seg is None or e - s > best_seg[1] - best_seg[0]:
                best_seg = (s, e)
        if best_seg is None or best_seg[1] - best_seg[0] < 0.2 * len(text):
            return None
        s, e = best_seg
        new = text[:s] + text[e:]
        changes = {k: (q.start - (e - s if q.start >= e else 0), q.end - (e - s if q.start >= e else 0))
                   for k, q in projected.items()}
        return _remark(al, changes, new)
    raise ValueError(f"unknown kind {kind!r}")


def donors_of(pairs: list[Pair], tokenize: dict[str, Callable[[str], list[Any]]]) -> dict[tuple[str, str], list[str]]:
    """Correct span texts per (target, label), to substitute one name for another."""
    out: dict[tuple[str, str], list[str]] = {}
    for pair in pairs:
        al = align(pair.correct, pair.record, tokenize[pair.target])
        for i, p in sorted(al.projected.items()):
            out.setdefault((pair.target, pair.record.spans[i - 1].label), []).append(p.text)
    return out


@dataclass
class MeaningHandler:
    """Plays translator and reviewer on the local server for a planted run.

    `answers[(marked source, target)] = (first answer, correct answer)`."""

    answers: dict[tuple[str, str], tuple[str, str]]
    calls: dict[str, int] = field(default_factory=lambda: {"translate": 0, "review": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _find(self, request: ChatRequest) -> tuple[str, str, str] | None:
        user = "\n\n".join(
            str(m.get("content")) for m in request.messages if m.get("role") == "user"
        )
        target = re.search(r'(?:target_lang|<translation lang)="([^"]+)"', request.all_text)
        if target is None:
            return None
        best = None
        for (source, tgt), (first, correct) in self.answers.items():
            if tgt == target.group(1) and source in user and (best is None or len(source) > len(best[0])):
                best = (source, first, correct)
        return best

    def __call__(self, request: ChatRequest) -> Answer:
        found = self._find(request)
        if found is None:
            raise LookupError(f"no planted answer for {request.last_user_text[:120]!r}")
        _, first, correct = found
        if "verdicts" in json.dumps(request.schema or {}) or "reviewer" in request.system_text:
            with self._lock:
                self.calls["review"] += 1
            return Answer({"verdicts": self._review(request, correct)})
        with self._lock:
            self.calls["translate"] += 1
        retry = any("Your previous translation" in str(m.get("content")) for m in request.messages)
        return Answer({"text": correct if retry else first})

    @staticmethod
    def _review(request: ChatRequest, correct: str) -> list[dict[str, Any]]:
        from agents.markers import parse_markers

        shown = re.search(r"<translation[^>]*>(.*)</translation>", request.all_text, re.S)
        marked = parse_markers(shown.group(1) if shown else "")
        good = parse_markers(correct)
        verdicts = []
        for index, places in sorted(good.found.items()):
            want = good.text[places[0][0] : places[0][1]]
            got_places = marked.found.get(index)
            got = marked.text[got_places[0][0] : got_places[0][1]] if got_places else None
            ok = got == want
            verdicts.append({"index": index, "correct": ok, "corrected": None if ok else want})
        return verdicts
