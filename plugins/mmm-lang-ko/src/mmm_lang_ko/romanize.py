"""Revised Romanization of Korean, syllable by syllable (no sound-change rules across syllables).

Enough for evidence: comparing a Korean transliteration of a Japanese or English name with
its romaji or Latin spelling (오오카 쇼헤이 -> "ooka syohei"). Standard library only.

    >>> romanize("서울")
    'seoul'
"""

from __future__ import annotations

from functools import lru_cache

# fmt: off
_INITIALS = ["g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k",
             "t", "p", "h"]
_VOWELS = ["a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u",
           "wo", "we", "wi", "yu", "eu", "ui", "i"]
_FINALS = ["", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m",
           "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t"]
# fmt: on
_BASE = 0xAC00
_LAST = 0xD7A3


@lru_cache(maxsize=65536)
def romanize(text: str) -> str:
    """Revised romanization of the Hangul syllables in `text`; other characters are kept."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if _BASE <= code <= _LAST:
            index = code - _BASE
            initial, rest = divmod(index, 21 * 28)
            vowel, final = divmod(rest, 28)
            out.append(_INITIALS[initial] + _VOWELS[vowel] + _FINALS[final])
        else:
            out.append(ch)
    return "".join(out)
