"""Span helpers over tokens: find a phrase on token boundaries, test and snap spans.

All offsets are Python ``str`` indices into the original text, end exclusive. Tokens are the
output of a word tokenizer: sorted, not overlapping, whitespace never a token.

    >>> toks = word_tokenizers.get("en").tokenize("The cats sat.")
    >>> find_phrase("The cats sat.", "CATS", toks, ignore_case=True)
    [(4, 8)]
    >>> snap(toks, 5, 6)        # inside "cats": widen to the whole word
    (4, 8)

Functions that take `tokens` also take a :class:`Boundaries` built once with
:func:`boundary_sets`, which saves the O(n) set-up when one text is queried many times.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from word_tokenizers.base import Token


@dataclass(frozen=True, slots=True)
class Boundaries:
    """Token starts and ends of one text, sorted, as tuples (for bisect) and sets (for `in`)."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    start_set: frozenset[int]
    end_set: frozenset[int]


TokensOrBoundaries = Sequence[Token] | Boundaries


def boundary_sets(tokens: TokensOrBoundaries) -> Boundaries:
    """The token boundaries of `tokens` (returned as is when it already is a Boundaries)."""
    if isinstance(tokens, Boundaries):
        return tokens
    starts = tuple([t.start for t in tokens])
    ends = tuple([t.end for t in tokens])
    return Boundaries(starts, ends, frozenset(starts), frozenset(ends))


def on_boundaries(tokens: TokensOrBoundaries, start: int, end: int) -> bool:
    """Whether `[start, end)` is a non-empty run of whole tokens: starts where a token starts
    and ends where a token ends."""
    b = boundary_sets(tokens)
    return start < end and start in b.start_set and end in b.end_set


def snap(tokens: TokensOrBoundaries, start: int, end: int) -> tuple[int, int]:
    """The span on token boundaries nearest to `[start, end)`.

    Rule: the result runs from the start of the first token that `[start, end)` overlaps to
    the end of the last one, so a partly cut token is taken whole and whitespace at either
    edge is dropped. A span that overlaps no token (empty, or lying in whitespace) becomes
    the nearest token, measured in characters from the span; on a tie, the following token.
    An empty span inside a token becomes that token. Raises ValueError when `start > end`,
    `start < 0` or there are no tokens.
    """
    if start < 0 or start > end:
        raise ValueError(f"not a span: start={start}, end={end}")
    b = boundary_sets(tokens)
    n = len(b.starts)
    if n == 0:
        raise ValueError(f"cannot snap [{start}, {end}): the text has no tokens")
    first = bisect_right(b.ends, start)  # first token ending after `start`
    if first < n and b.starts[first] < end:  # it overlaps the span
        last = bisect_left(b.starts, end) - 1  # last token starting before `end`
        return b.starts[first], b.ends[last]
    # No overlap: tokens first-1 (before the span) and first (after it) are the candidates.
    if first == n:
        return b.starts[n - 1], b.ends[n - 1]
    if first == 0 or b.starts[first] - end <= start - b.ends[first - 1]:
        return b.starts[first], b.ends[first]
    return b.starts[first - 1], b.ends[first - 1]


# ------------------------------------------------------------------------------------------
# Normalized views: the text after NFKC and/or case folding, with a map back to the original.


@dataclass(frozen=True, slots=True)
class _View:
    """`text` folded; `start_of` / `end_of` map folded offsets that fall between the folded
    pieces of two original segments back to original offsets (None: the identity map)."""

    text: str
    start_of: dict[int, int] | None
    end_of: dict[int, int] | None


_HANGUL_VT = range(0x1161, 0x11C3)  # conjoining vowel and trailing jamo: compose with the left


@lru_cache(maxsize=65536)
def _starts_segment(ch: str) -> bool:
    """Whether NFKC can be cut before `ch` (a heuristic; the result is verified anyway)."""
    if ch.isascii():
        return True
    first = unicodedata.normalize("NFKD", ch)[:1]
    return not first or (unicodedata.combining(first) == 0 and ord(first) not in _HANGUL_VT)


def _nfkc_segments(text: str) -> list[tuple[int, int]]:
    """Cut `text` into segments whose NFKC forms, concatenated, are NFKC(text)."""
    cuts = [0] + [i for i in range(1, len(text)) if _starts_segment(text[i])] + [len(text)]
    segments = list(pairwise(cuts))
    nfkc = unicodedata.normalize
    if "".join(nfkc("NFKC", text[a:b]) for a, b in segments) == nfkc("NFKC", text):
        return segments
    # Rare (a starter that composes with its left neighbour): merge such pairs until it holds.
    merged: list[tuple[int, int]] = []
    for a, b in segments:
        if merged:
            pa, _ = merged[-1]
            left, right = text[pa:a], text[a:b]
            if nfkc("NFKC", left + right) != nfkc("NFKC", left) + nfkc("NFKC", right):
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    if "".join(nfkc("NFKC", text[a:b]) for a, b in merged) == nfkc("NFKC", text):
        return merged
    return [(0, len(text))] if text else []


def _fold_function(nfkc: bool, ignore_case: bool) -> Callable[[str], str]:
    if nfkc and ignore_case:
        return lambda s: unicodedata.normalize("NFKC", s).casefold()
    if nfkc:
        return lambda s: unicodedata.normalize("NFKC", s)
    if ignore_case:
        return str.casefold
    return str


@lru_cache(maxsize=4096)
def _view(text: str, nfkc: bool, ignore_case: bool) -> _View:
    fold = _fold_function(nfkc, ignore_case)
    folded = fold(text)
    if not nfkc and len(folded) == len(text):
        # casefold maps character by character; same length means one char for one char.
        return _View(folded, None, None)
    if nfkc and folded == text and not ignore_case:
        return _View(folded, None, None)
    segments = _nfkc_segments(text) if nfkc else [(i, i + 1) for i in range(len(text))]
    start_of: dict[int, int] = {}
    end_of: dict[int, int] = {}
    pieces: list[str] = []
    pos = 0
    for a, b in segments:
        piece = fold(text[a:b])
        start_of.setdefault(pos, a)
        pos += len(piece)
        end_of[pos] = b
        pieces.append(piece)
    joined = "".join(pieces)
    if joined != folded:  # cannot happen for casefold (per character) nor verified NFKC
        raise AssertionError(f"folded pieces of {text!r} do not add up to its folded form")
    return _View(joined, start_of, end_of)


def occurrences(haystack: str, needle: str) -> list[int]:
    """Start of every occurrence of `needle` in `haystack`, overlapping ones included."""
    found: list[int] = []
    i = haystack.find(needle)
    while i >= 0:
        found.append(i)
        i = haystack.find(needle, i + 1)
    return found


def find_phrase(
    text: str,
    phrase: str,
    tokens: TokensOrBoundaries,
    *,
    nfkc: bool = False,
    ignore_case: bool = False,
    lemma: bool = False,
    phrase_tokens: Sequence[Token] | None = None,
) -> list[tuple[int, int]]:
    """Every occurrence of `phrase` in `text` that starts and ends on token boundaries.

    - `nfkc`: compare after NFKC normalization (ＡＢＣ matches ABC, ㍿ matches 株式会社);
    - `ignore_case`: compare after Unicode case folding;
    - `lemma`: also match runs of text tokens against `phrase_tokens` (the phrase tokenized
      with the same tokenizer, required then) token by token, where two tokens match when
      their text, lemma or norm forms meet (so "cats" finds "cat", 美しかっ finds 美しい).
      `tokens` must then be the tokens themselves, not a Boundaries.

    Returns sorted, distinct `(start, end)` offsets into the original `text`: where a folding
    changes lengths the match is mapped back through the original characters, and a match
    that starts or ends inside the folded form of one character is not an occurrence.
    """
    hits: list[tuple[int, int]] = []  # occurrences in the original text, boundaries unchecked
    if phrase:
        if nfkc or ignore_case:
            view = _view(text, nfkc, ignore_case)
            needle = _fold_function(nfkc, ignore_case)(phrase)
            size = len(needle)
            for s in occurrences(view.text, needle) if needle else []:
                if view.start_of is None or view.end_of is None:
                    hits.append((s, s + size))
                elif s in view.start_of and s + size in view.end_of:
                    hits.append((view.start_of[s], view.end_of[s + size]))
        else:
            size = len(phrase)
            hits = [(s, s + size) for s in occurrences(text, phrase)]
    found: set[tuple[int, int]] = set()
    if hits:  # the boundaries are only worth computing when something was found
        starts: AbstractSet[int]
        ends: AbstractSet[int]
        if isinstance(tokens, Boundaries):
            starts, ends = tokens.start_set, tokens.end_set
        else:
            starts = {t.start for t in tokens}
            ends = {t.end for t in tokens}
        found.update((s, e) for s, e in hits if s < e and s in starts and e in ends)
    if lemma:
        if phrase_tokens is None:
            raise ValueError("find_phrase(lemma=True) needs phrase_tokens: the tokenized phrase")
        if isinstance(tokens, Boundaries):
            raise TypeError("find_phrase(lemma=True) needs the tokens, not their Boundaries")
        found.update(_token_runs(tokens, phrase_tokens, nfkc=nfkc, ignore_case=ignore_case))
    return sorted(found)


def _token_runs(
    tokens: Sequence[Token], phrase_tokens: Sequence[Token], *, nfkc: bool, ignore_case: bool
) -> list[tuple[int, int]]:
    """Runs of `tokens` that match `phrase_tokens` one to one by text, lemma or norm."""
    m = len(phrase_tokens)
    if m == 0 or m > len(tokens):
        return []
    fold = _fold_function(nfkc, ignore_case)

    def keys(t: Token) -> frozenset[str]:
        return frozenset(fold(k) for k in (t.text, t.lemma, t.norm) if k)

    want = [keys(t) for t in phrase_tokens]
    have = [keys(t) for t in tokens]
    runs: list[tuple[int, int]] = []
    for i in range(len(tokens) - m + 1):
        if all(have[i + j] & want[j] for j in range(m)):
            runs.append((tokens[i].start, tokens[i + m - 1].end))
    return runs


# ------------------------------------------------------------------------------------------
# Cutting long texts for backends with an input limit.

_SENTENCE_ENDS = frozenset("。．！？!?\u2029")  # not ".": 3.14


def _cuttable(text: str, i: int) -> bool:
    """Whether a cut before index i splits no grapheme cluster (approximately)."""
    ch, prev = text[i], text[i - 1]
    if prev == "\u200d" or (prev == "\r" and ch == "\n"):
        return False
    cp = ord(ch)
    if cp == 0x200D or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return False  # ZWJ, variation selectors
    if 0x1F3FB <= cp <= 0x1F3FF or cp in (0xFF9E, 0xFF9F):
        return False  # emoji skin tones, half-width (semi-)voiced marks
    return unicodedata.category(ch)[0] != "M"


def _last_cut_after(text: str, pos: int, hi: int, wanted: Callable[[str], bool]) -> int:
    """The last cut in (pos, hi] right after a character that is `wanted`, else 0."""
    for i in range(hi - 1, pos, -1):
        if wanted(text[i]) and (i + 1 == len(text) or _cuttable(text, i + 1)):
            return i + 1
    return 0


def chunk_bounds(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Cut `text` into `(start, end)` pieces of at most `max_chars` characters.

    Each cut goes after the last line break of the window, else after its last sentence end,
    else after its last whitespace, else at the last place that splits no character cluster.
    The pieces cover the text exactly, in order.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    n = len(text)
    bounds: list[tuple[int, int]] = []
    pos = 0
    while n - pos > max_chars:
        hi = pos + max_chars
        cut = text.rfind("\n", pos, hi) + 1
        if cut <= pos:
            cut = _last_cut_after(text, pos, hi, _SENTENCE_ENDS.__contains__)
        if cut <= pos:
            cut = _last_cut_after(text, pos, hi, str.isspace)
        if cut <= pos:
            cut = next((i for i in range(hi, pos, -1) if _cuttable(text, i)), hi)
        bounds.append((pos, cut))
        pos = cut
    if pos < n or not bounds:
        bounds.append((pos, n))
    return bounds
