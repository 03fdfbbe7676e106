"""The entity-aligner: markers -> spans with exact offsets in the clean translation.

Loose answers are normalised first, with no LLM call, and each normalisation is an info
finding: marker spellings (`< e1 >`, `<E1>`, `＜ｅ１＞`, `&lt;e1&gt;`) are read as markers, and
punctuation, quotes and brackets at the edges of a span are moved outside it
(`<e1>Tokyo.</e1>` -> `<e1>Tokyo</e1>.`) unless the source span has such characters at the
same edge itself (`「進撃の巨人」`, `Yahoo!`) or they are part of the entity (a bracket closed
inside the span, the period of `Inc.`).

Where a marker is missing it searches the translation on token boundaries (the source
string kept verbatim, or the translation of the same entity found elsewhere) before giving
up. Spans that cut a word of a space-delimited script are snapped to token boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.findings import Code, Finding
from agents.markers import parse_markers
from agents.prompts import ALIGNER_FEEDBACK
from mre import Record
from word_tokenizers import Token
from word_tokenizers.scripts import script_of
from word_tokenizers.spans import find_phrase, on_boundaries, snap


@dataclass(frozen=True)
class Projected:
    """One source span's place in the translation."""

    index: int  # 1-based source span number (the marker index)
    start: int
    end: int
    text: str


@dataclass
class Alignment:
    """The clean translation, where each source span landed, and what went wrong."""

    text: str
    tokens: list[Token]
    projected: dict[int, Projected] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


TokenizeFn = Callable[[str], list[Token]]

_SNAPPABLE = {"Latin", "Cyrillic", "Greek", "Hangul"}


def _snappable(chars: str) -> bool:
    """Characters that may join a span when it is snapped: letters/digits of a spaced script."""
    return all(ch.isdigit() or script_of(ch) in _SNAPPABLE for ch in chars)


def align(
    answer: str,
    source: Record,
    tokenize: TokenizeFn,
) -> Alignment:
    """Read the markers of `answer` back into spans of its clean text.

    `tokenize` is the target language's word tokenizer (`Tokenizer.tokenize`).
    """
    n = len(source.spans)
    parsed = parse_markers(answer)
    text = parsed.text
    tokens = tokenize(text)
    result = Alignment(text=text, tokens=tokens)
    findings = result.findings
    if parsed.html_unescaped:
        findings.append(
            Finding.info(Code.MARKER_NORMALIZED, "the answer was HTML-escaped (`&lt;e1&gt;`)")
        )
    if parsed.normalized_spelling:
        shown = ", ".join(f"`{x}`" for x in parsed.spellings[:4])
        findings.append(
            Finding.info(Code.MARKER_NORMALIZED, f"markers were spelled loosely ({shown})")
        )

    def feedback(key: str, index: int, **extra: object) -> str:
        entity = source.spans[index - 1].text if 1 <= index <= n else ""
        return ALIGNER_FEEDBACK[key].format(index=index, n=n, entity=entity, **extra)

    for index in sorted(set(parsed.unclosed)):
        findings.append(
            Finding.error(Code.MARKER_MALFORMED, feedback("marker_unclosed", index), span=index)
        )
    for index in sorted(set(parsed.stray_closings)):
        findings.append(
            Finding.error(
                Code.MARKER_MALFORMED, feedback("marker_stray_closing", index), span=index
            )
        )
    for index, places in sorted(parsed.found.items()):
        if not 1 <= index <= n:
            findings.append(
                Finding.error(Code.MARKER_UNKNOWN, feedback("marker_unknown", index), span=index)
            )
            continue
        if len(places) > 1:
            findings.append(
                Finding.error(
                    Code.MARKER_DUPLICATED,
                    feedback("marker_duplicated", index, count=len(places)),
                    span=index,
                )
            )
        start, end = _trim(text, *places[0])
        if start >= end:
            findings.append(
                Finding.error(Code.MARKER_EMPTY, feedback("marker_empty", index), span=index)
            )
            continue
        start, end = _move_edges(text, start, end, source.spans[index - 1].text, index, findings)
        result.projected[index] = _on_tokens(text, tokens, index, start, end, findings)
    missing = [i for i in range(1, n + 1) if i not in result.projected]
    for index in missing:
        if any(f.span == index and f.code == Code.MARKER_EMPTY for f in findings):
            continue
        found = _search(text, tokens, source, index, result.projected)
        if found is None:
            findings.append(
                Finding.error(Code.MARKER_MISSING, feedback("marker_missing", index), span=index)
            )
            continue
        result.projected[index] = found
        findings.append(
            Finding.info(
                Code.SPAN_SEARCHED,
                f"marker <e{index}> was missing; the entity was found at "
                f"[{found.start}, {found.end}) by search",
                span=index,
            )
        )
    return result


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# Brackets and quotes by partner; a symmetric quote is its own partner.
_OPENERS = dict(zip("([{「『【〔〈《（［｛“‘«‹", ")]}」』】〕〉》）］｝”’»›", strict=True))
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_SYMMETRIC = set("\"'＂＇")
# Other punctuation that never belongs at the edge of an entity (sentence and clause marks).
_EDGE_MARKS = set(".,;:!?。、，；：！？・…‥-–—")
# The period of a short abbreviation belongs to the name (`Inc.`, `Co.`, `U.S.`).
_ABBREVIATION = re.compile(
    r"(?:\b(?:Inc|Co|Corp|Ltd|Plc|Bros|Jr|Sr|St|Mt|Ft|Dr|Mr|Mrs|Ms|Prof|Gen|Col|Lt|Dept|Univ|No)"
    r"|(?:\b[A-Z]\.)+[A-Z])\.$"
)


def _edge_char(ch: str) -> bool:
    return ch in _OPENERS or ch in _CLOSERS or ch in _SYMMETRIC or ch in _EDGE_MARKS


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _move_edges(
    text: str, start: int, end: int, source_span: str, index: int, findings: list[Finding]
) -> tuple[int, int]:
    """Move punctuation, quotes and brackets at the edges of `text[start:end]` outside it.

    An edge is left alone when the source span itself has punctuation at that edge; a
    bracket or quote whose partner is inside the span stays (`Apple (Japan)`), and so does
    the period of an abbreviation (`Acme Inc.`).
    """
    keep_left = bool(source_span) and _is_punct(source_span[0])
    keep_right = bool(source_span) and _is_punct(source_span[-1])
    s, e = start, end
    while e - s > 1:
        ch = text[s]
        if keep_left or not _edge_char(ch):
            break
        inner = text[s + 1 : e - 1]
        partner = _OPENERS.get(ch, ch if ch in _SYMMETRIC else None)
        if partner is not None and partner in inner:
            break  # closed inside the span: part of the entity
        s += 1
        while s < e and text[s].isspace():
            s += 1
    while e - s > 1:
        ch = text[e - 1]
        if keep_right or not _edge_char(ch):
            break
        inner = text[s + 1 : e - 1]
        partner = _CLOSERS.get(ch, ch if ch in _SYMMETRIC else None)
        if partner is not None and partner in inner:
            break  # opened inside the span: part of the entity
        if ch == "." and _ABBREVIATION.search(text[s:e]):
            break
        e -= 1
        while e > s and text[e - 1].isspace():
            e -= 1
    if (s, e) != (start, end) and s < e:
        findings.append(
            Finding.info(
                Code.SPAN_EDGE_MOVED,
                f"span {index}: {text[start:end]!r} -> {text[s:e]!r} (edge punctuation moved "
                "outside the marker)",
                span=index,
            )
        )
        return s, e
    return start, end


def _on_tokens(
    text: str, tokens: Sequence[Token], index: int, start: int, end: int, findings: list[Finding]
) -> Projected:
    if tokens and not on_boundaries(tokens, start, end):
        s2, e2 = snap(tokens, start, end)
        added = text[s2:start] + text[end:e2]
        if (s2, e2) != (start, end) and _snappable(added):
            findings.append(
                Finding.info(
                    Code.SPAN_SNAPPED,
                    f"span {index} {text[start:end]!r} cut a word; snapped to {text[s2:e2]!r}",
                    span=index,
                )
            )
            start, end = s2, e2
    return Projected(index=index, start=start, end=end, text=text[start:end])


def _search(
    text: str,
    tokens: Sequence[Token],
    source: Record,
    index: int,
    projected: dict[int, Projected],
) -> Projected | None:
    """Find a missing span on token boundaries: the verbatim source string, or the
    translation of an identical source entity that did get its marker."""
    wanted = source.spans[index - 1].text
    phrases = [wanted]
    phrases += [p.text for i, p in sorted(projected.items()) if source.spans[i - 1].text == wanted]
    taken = [(p.start, p.end) for p in projected.values()]
    for phrase in dict.fromkeys(phrases):
        hits = find_phrase(text, phrase, list(tokens), nfkc=True, ignore_case=True)
        free = [(s, e) for s, e in hits if all(e <= ts or s >= te for ts, te in taken)]
        if len(free) == 1:
            s, e = free[0]
            return Projected(index=index, start=s, end=e, text=text[s:e])
    return None
