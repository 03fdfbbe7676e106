"""How much of the source a translation covers: its expected length, and which source clauses
its Han characters account for. Used by the verifier's dropped-content check.

- **Expected length**: characters of the source language's own scripts are translated, and
  a script carries more or less content per character (a kanji more than a kana):
  `SCRIPT_DENSITY` weights them, normalised to a mean of 1 over the source language's scripts,
  and the target's `length_factor` scales them. Other characters (Latin words, digits,
  punctuation) pass through nearly as they are (`COPY_LENGTH`). Fitted on the parallel data
  of the repository (examples/replay.jsonl and tests/fixtures/meaning/, ja -> en/zh/ko, 135
  pairs): the robust spread of log(actual/expected) is 0.135 into English and 0.084 into
  Chinese, against 0.234 and 0.121 for log(actual / (length x length_factor)).
- **Clause coverage** (where both languages have a `han_form` hook): the source is split into
  clauses, and each clause's Han characters, in simplified form, are looked up among the
  target's. A clause of several Han characters none of which the translation has, while the
  rest of the source is well covered, was probably left out.

No language is named here: the tables are keyed by script.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from word_tokenizers import Language
from word_tokenizers.scripts import script_of

#: Relative content per character of the scripts a source language writes (translated
#: characters), normalised over the source language's scripts found here; a script not listed
#: counts 1.
SCRIPT_DENSITY: Mapping[str, float] = {"Han": 1.4, "Hiragana": 0.9, "Katakana": 0.7}
#: Target characters per source character outside the source language's scripts (copied
#: through: Latin names, digits; "other" is punctuation and spaces).
COPY_LENGTH: Mapping[str, float] = {"Latin": 1.2, "digit": 1.0, "other": 0.75}

_CLAUSE_END = re.compile(r"[、。，,；;：:！？!?\n]+")
_LONG_VOWEL = "ー"  # written in katakana words, "Common" to script_of


def char_class(ch: str) -> str:
    """The class of a character: "digit", its script ("Han", "Katakana"...), or "other"."""
    if ch.isdigit():
        return "digit"
    if ch == _LONG_VOWEL:
        return "Katakana"
    script = script_of(ch)
    return script if ch.isalpha() and script != "Common" else "other"


#: The last `expected_length` call and its value: a verdict asks for the same source twice
#: (the dropped-content check, then the run's length statistics).
_LAST: list[tuple[str, Language, Language, float]] = []


def expected_length(source_text: str, source: Language, target: Language) -> float:
    """The length a complete translation of `source_text` into `target` is expected to have."""
    if _LAST:
        text, src, tgt, value = _LAST[0]
        if src is source and tgt is target and text == source_text:
            return value
    value = _expected_length(source_text, source, target)
    _LAST[:] = [(source_text, source, target, value)]
    return value


def _expected_length(source_text: str, source: Language, target: Language) -> float:
    own = [d for s, d in SCRIPT_DENSITY.items() if s in source.scripts]
    norm = sum(own) / len(own) if own else 1.0
    translated = copied = 0.0
    for ch in unicodedata.normalize("NFKC", source_text):
        kind = char_class(ch)
        if kind in source.scripts or ch.isspace():  # spaces belong to a spaced source's words
            translated += SCRIPT_DENSITY.get(kind, norm) / norm
        else:
            copied += COPY_LENGTH.get(kind, COPY_LENGTH["other"])
    return translated * target.length_factor / source.length_factor + copied


def log_residual(source_text: str, text: str, source: Language, target: Language) -> float:
    """log(actual length / expected length): about 0 for a complete translation."""
    expected = expected_length(source_text, source, target)
    return math.log(max(len(text), 1) / max(expected, 1.0))


@dataclass(frozen=True)
class Clause:
    """A source clause and how many of its Han characters the translation has."""

    start: int
    end: int
    text: str
    han: int  # Han characters of the clause
    covered: int  # of which the translation has

    @property
    def coverage(self) -> float:
        return self.covered / self.han if self.han else 1.0


def clauses(text: str) -> list[tuple[int, int]]:
    """(start, end) of the clauses of `text`: split at commas, semicolons and sentence ends."""
    out: list[tuple[int, int]] = []
    start = 0
    for m in _CLAUSE_END.finditer(text):
        if text[start : m.start()].strip():
            out.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    return out


def _han(text: str) -> list[str]:
    return [ch for ch in text if script_of(ch) == "Han"]


def clause_coverage(
    source_text: str, text: str, source: Language, target: Language
) -> list[Clause] | None:
    """Per source clause, its Han characters found in the translation (both in simplified form);
    None where either language has no `han_form` hook."""
    if source.han_form is None or target.han_form is None:
        return None
    have = set(_han(target.han_form(text)))
    out = []
    for start, end in clauses(source_text):
        chars = _han(source.han_form(source_text[start:end]))
        covered = sum(1 for ch in chars if ch in have)
        out.append(Clause(start, end, source_text[start:end].strip(), len(chars), covered))
    return out


def missing_clause(
    found: list[Clause], *, min_han: int, max_coverage: float, rest_min: float
) -> Clause | None:
    """The clause of at least `min_han` Han characters with the lowest coverage, if that is at
    most `max_coverage` while the rest of the source (at least `min_han` Han characters) is
    covered at least `rest_min`: a clause the translation left out."""
    candidates = [c for c in found if c.han >= min_han]
    if not candidates:
        return None
    worst = min(candidates, key=lambda c: c.coverage)
    rest = [c for c in found if c is not worst]
    han = sum(c.han for c in rest)
    if worst.coverage > max_coverage or han < min_han:
        return None
    return worst if sum(c.covered for c in rest) / han >= rest_min else None
