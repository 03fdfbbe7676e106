"""Unicode scripts of characters, for the residue check (kana left in an English text, ...)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# (first, last, script) for the scripts the project's languages care about; checked before
# falling back to the Unicode character name.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x3040, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x31F0, 0x31FF, "Katakana"),
    (0xFF66, 0xFF9F, "Katakana"),  # half-width katakana
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xF900, 0xFAFF, "Han"),
    (0x20000, 0x3FFFF, "Han"),
    (0x1100, 0x11FF, "Hangul"),
    (0x3130, 0x318F, "Hangul"),
    (0xAC00, 0xD7AF, "Hangul"),
    (0xFFA0, 0xFFDC, "Hangul"),  # half-width hangul
    (0x0400, 0x04FF, "Cyrillic"),
    (0x0370, 0x03FF, "Greek"),
    (0x0600, 0x06FF, "Arabic"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x0900, 0x097F, "Devanagari"),
)
# Characters shared by several scripts: never residue.
_COMMON = {0x30FC: "Common", 0x30FB: "Common", 0x3005: "Han"}  # ー ・ 々


@lru_cache(maxsize=65536)
def script_of(char: str) -> str:
    """The script of one character: "Latin", "Han", "Hiragana", ..., or "Common"."""
    cp = ord(char)
    if cp in _COMMON:
        return _COMMON[cp]
    if cp < 0x80:
        return "Latin" if char.isalpha() else "Common"
    for first, last, script in _RANGES:
        if first <= cp <= last:
            return script
    if not char.isalpha():
        return "Common"
    name = unicodedata.name(char, "")
    if name.startswith(("LATIN", "FULLWIDTH LATIN")):
        return "Latin"
    return name.split(" ", 1)[0].title() if name else "Unknown"


def residue(text: str, scripts: frozenset[str] | set[str]) -> list[tuple[int, str]]:
    """(index, character) of every character of `text` written in one of `scripts`."""
    return [(i, ch) for i, ch in enumerate(text) if script_of(ch) in scripts]
