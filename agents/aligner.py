"""The entity-aligner: markers -> spans with exact offsets in the clean translation.

Where a marker is missing it searches the translation on token boundaries (the source
string kept verbatim, or the translation of the same entity found elsewhere) before giving
up. Spans that cut a word of a space-delimited script are snapped to token boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.findings import Code, Finding
from agents.markers import parse_markers
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
    if parsed.normalized_spelling:
        findings.append(
            Finding.info(Code.MARKER_MALFORMED, "markers were spelled loosely (e.g. `< e1 >`)")
        )
    for index in sorted(set(parsed.unclosed)):
        findings.append(
            Finding.error(
                Code.MARKER_MALFORMED, f"marker <e{index}> is opened but never closed", span=index
            )
        )
    for index in sorted(set(parsed.stray_closings)):
        findings.append(
            Finding.error(
                Code.MARKER_MALFORMED,
                f"marker </e{index}> is closed but was never opened",
                span=index,
            )
        )
    for index, places in sorted(parsed.found.items()):
        if not 1 <= index <= n:
            findings.append(
                Finding.error(
                    Code.MARKER_UNKNOWN,
                    f"marker <e{index}> does not exist in the source (it has markers 1 to {n}); "
                    "remove it",
                    span=index,
                )
            )
            continue
        if len(places) > 1:
            findings.append(
                Finding.error(
                    Code.MARKER_DUPLICATED,
                    f"marker <e{index}> appears {len(places)} times; wrap only one occurrence of "
                    f"the entity {source.spans[index - 1].text!r}",
                    span=index,
                )
            )
        start, end = _trim(text, *places[0])
        if start >= end:
            findings.append(
                Finding.error(
                    Code.MARKER_EMPTY,
                    f"marker <e{index}> is empty; put the translation of "
                    f"{source.spans[index - 1].text!r} inside it",
                    span=index,
                )
            )
            continue
        result.projected[index] = _on_tokens(text, tokens, index, start, end, findings)
    missing = [i for i in range(1, n + 1) if i not in result.projected]
    for index in missing:
        if any(f.span == index and f.code == Code.MARKER_EMPTY for f in findings):
            continue
        found = _search(text, tokens, source, index, result.projected)
        if found is None:
            findings.append(
                Finding.error(
                    Code.MARKER_MISSING,
                    f"marker <e{index}> is missing; wrap the translation of the entity "
                    f"{source.spans[index - 1].text!r} in <e{index}>...</e{index}>",
                    span=index,
                )
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
    phrases += [
        p.text for i, p in sorted(projected.items()) if source.spans[i - 1].text == wanted
    ]
    taken = [(p.start, p.end) for p in projected.values()]
    for phrase in dict.fromkeys(phrases):
        hits = find_phrase(text, phrase, list(tokens), nfkc=True, ignore_case=True)
        free = [(s, e) for s, e in hits if all(e <= ts or s >= te for ts, te in taken)]
        if len(free) == 1:
            s, e = free[0]
            return Projected(index=index, start=s, end=e, text=text[s:e])
    return None
