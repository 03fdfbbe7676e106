"""Entity markers `<e1>…</e1>` (DESIGN contract 1): wrap a record's spans, read them back."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mre import Span

MARKER_RE = re.compile(r"<(/?)e(\d+)>")
# Near-misses an LLM writes: `< e1 >`, `</ e1>`, `<E1>`, full-width brackets, slash and
# digits (`＜ｅ１＞`, `＜／e1＞`); `\d` matches full-width digits and `int()` reads them.
LOOSE_MARKER_RE = re.compile(r"[<＜〈]\s*([/／]?)\s*[eEｅＥ]\s*(\d+)\s*[>＞〉]")
# Markers escaped as HTML: `&lt;e1&gt;`, `&lt;/e1&gt;`.
ESCAPED_MARKER_RE = re.compile(r"&lt;\s*/?\s*[eE]\s*\d+\s*&gt;")


def mark(text: str, spans: Sequence[Span]) -> str:
    """`text` with span i (1-based, in span order) wrapped as `<ei>…</ei>`; nesting allowed."""
    events: list[tuple[int, int, int, str]] = []
    for i, span in enumerate(spans, start=1):
        # at one position: closings first (inner first), then openings (outer first)
        events.append((span.start, 1, -(span.end - span.start), f"<e{i}>"))
        events.append((span.end, 0, span.end - span.start, f"</e{i}>"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    out: list[str] = []
    pos = 0
    for at, _, _, tag in events:
        out.append(text[pos:at])
        out.append(tag)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def strip_markers(text: str) -> str:
    """`text` without any marker (strict or loose spelling)."""
    return LOOSE_MARKER_RE.sub("", text)


@dataclass
class MarkerParse:
    """What reading the markers of a marked translation found."""

    text: str  # the clean text, markers removed
    found: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # index -> offsets
    unclosed: list[int] = field(default_factory=list)
    stray_closings: list[int] = field(default_factory=list)
    normalized_spelling: bool = False  # loose spellings like `< e1 >` were accepted
    spellings: list[str] = field(default_factory=list)  # the loose spellings read, in order
    html_unescaped: bool = False  # the answer's markers (and entities) were HTML-escaped


def parse_markers(marked: str) -> MarkerParse:
    """Strip markers from `marked` and return each index's (start, end) in the clean text.

    An index opened twice gets two entries in `found` (the verifier calls that a duplicate).
    A closing with no opening and an opening never closed are listed, not guessed.
    """
    unescaped = False
    if ESCAPED_MARKER_RE.search(marked):  # the whole answer was escaped: read it unescaped
        marked, unescaped = html.unescape(marked), True
    loose = [
        m.group(0) for m in LOOSE_MARKER_RE.finditer(marked) if not MARKER_RE.fullmatch(m.group(0))
    ]
    result = MarkerParse(
        text="",
        normalized_spelling=bool(loose),
        spellings=list(dict.fromkeys(loose)),
        html_unescaped=unescaped,
    )
    pattern = LOOSE_MARKER_RE
    clean: list[str] = []
    length = 0
    pos = 0
    open_at: dict[int, list[int]] = {}
    for m in pattern.finditer(marked):
        piece = marked[pos : m.start()]
        clean.append(piece)
        length += len(piece)
        pos = m.end()
        closing, index = m.group(1) != "", int(m.group(2))
        if not closing:
            open_at.setdefault(index, []).append(length)
            continue
        starts = open_at.get(index)
        if not starts:
            result.stray_closings.append(index)
            continue
        result.found.setdefault(index, []).append((starts.pop(), length))
    clean.append(marked[pos:])
    result.text = "".join(clean)
    for index, starts in open_at.items():
        result.unclosed.extend(index for _ in starts)
    for offsets in result.found.values():
        offsets.sort()
    return result
