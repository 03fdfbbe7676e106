"""Entity evidence: how sure are we that a target span translates a source entity?

For one (source entity, target span) pair the score is in [0, 1], or None ("unknown") where
no evidence applies. The evidence comes from the language plugins' hooks
(`word_tokenizers.Language`): no language is named here.

- **script conversion** (`han_form`): both sides' Han characters in simplified-Chinese form,
  compared as multisets (大岡昇平 <-> 大冈升平);
- **readings** (`romanize`): both sides in Latin script, generic words dropped, long vowels and
  a few sound pairs folded, compared by rapidfuzz ratios that ignore word order
  (大岡昇平 <-> Shohei Ooka, コーフ・リヴァー <-> Cove Reber);
- **preserved tokens**: Latin words, digits and codes of the source entity (CBU-87/B, iPhone 15)
  must appear in the target span;
- **plugin scorers** (`Language.evidence` of either side).

`Evidence.raw` is the best comparison whatever it is worth (used for relative checks: which
span fits an entity better); `Evidence.score` is the same figure where it is trustworthy
evidence, and None where it is not: a kanji common noun translated by meaning (捕虜収容所 ->
prisoner-of-war camp) reads nothing like its translation, which says nothing either way, so
a low reading of a kanji entity is "unknown" unless the label is one whose entities are always
written by sound (`Language.name_labels`, e.g. person names).

Conversions are cached per entity string (the hooks cache per string too), and the scorer
caches per (entity, span) pair.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from word_tokenizers import Language
from word_tokenizers.scripts import script_of

#: A reading at least this good is evidence for the pair even where a low one would say nothing.
POSITIVE = 0.6
#: Below this, the reading of a Han span partly in sound characters says "another name": the
#: correct transliterations of the planted set read 0.5 or more (迦太基 for カルタゴ: 0.5).
FAILED_SOUND = 0.45

_PRESERVED = re.compile(r"[A-Za-z0-9]+(?:[-/.+&'][A-Za-z0-9]+)*")
#: Scripts that spell names by sound (hiragana mostly writes grammar: の, と).
_PHONETIC = {"Katakana", "Hangul", "Latin"}


@dataclass(frozen=True)
class Evidence:
    """The evidence for one (source entity, target span) pair."""

    score: float | None  # trustworthy score in [0, 1]; None: unknown
    raw: float | None  # best comparison, trustworthy or not; None: nothing could be compared
    kind: str  # "han", "reading", "preserved", "plugin", or "none"


UNKNOWN = Evidence(None, None, "none")


def written_by_sound(text: str) -> bool:
    """Whether an entity is written mostly in a phonetic script (katakana, hangul) with
    hardly any kanji or hiragana: a name spelled by sound, whose translation is spelled by sound too.
    (アメリカ合衆国 and 快速エアポート, with kanji words of their own, are often translated
    by meaning: United States, Rapid Airport; so are titles with particles: アルプスの少女ハイジ.)"""
    return _share(text, _PHONETIC - {"Latin"}) >= 0.5 and _share(text, {"Han", "Hiragana"}) < 0.25


def _letters(text: str) -> list[str]:
    return [ch for ch in text if ch.isalnum()]


def _share(text: str, scripts: set[str] | frozenset[str]) -> float:
    letters = _letters(text)
    if not letters:
        return 0.0
    return sum(1 for ch in letters if script_of(ch) in scripts) / len(letters)


def _strip_generic(text: str, generic: frozenset[str]) -> str:
    """`text` without generic words: whole words in spaced text, else prefixes and suffixes."""
    if not generic:
        return text
    words = text.split()
    if len(words) > 1 or text.isascii():
        kept = [w for w in words if w.lower().strip(".,") not in generic]
        return " ".join(kept) if kept else text
    changed = True
    ordered = sorted(generic, key=len, reverse=True)
    while changed:
        changed = False
        for g in ordered:
            if len(text) > len(g) and text.endswith(g):
                text, changed = text[: -len(g)], True
                break
            if len(text) > len(g) and text.startswith(g):
                text, changed = text[len(g) :], True
                break
    return text


# Sound folds applied to lower-case Latin readings, in order: long vowels, then spellings that
# differ between romaji, pinyin, revised romanization and English for the same sound.
_FOLDS: tuple[tuple[str, str], ...] = (
    ("ou", "o"), ("oo", "o"), ("uu", "u"), ("aa", "a"), ("ii", "i"), ("ee", "e"), ("ei", "e"),
    ("eo", "o"), ("eu", "u"), ("tsu", "tu"), ("shi", "si"), ("sh", "s"), ("chi", "ci"),
    ("ch", "c"), ("ph", "f"), ("th", "t"), ("ck", "k"), ("x", "ks"), ("q", "k"), ("c", "k"),
    ("l", "r"), ("v", "b"), ("w", "b"), ("f", "h"), ("j", "z"), ("y", "i"), ("kk", "k"),
    ("tt", "t"), ("pp", "p"), ("ss", "s"), ("nn", "n"), ("mm", "m"), ("rr", "r"),
)  # fmt: skip


@lru_cache(maxsize=65536)
def fold(reading: str) -> str:
    """A Latin reading reduced for comparison: accents dropped, lower case, words kept apart,
    long vowels and near sounds folded ("Ōoka Shōhei" and "ooka shouhei" -> "oka soh")."""
    text = unicodedata.normalize("NFKD", reading)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    words = []
    for word in text.split():
        for a, b in _FOLDS:
            word = word.replace(a, b)
        # a final "h" after a vowel marks a long vowel in some romanizations (Ohno, Oh)
        word = re.sub(r"(?<=[aeiou])h$", "", word)
        words.append(word)
    return " ".join(words)


def _skeleton(folded: str) -> str:
    return re.sub(r"[aeiou ]", "", folded)


def reading_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two folded readings, ignoring word order and spacing."""
    from rapidfuzz import fuzz

    if not a or not b:
        return 0.0
    joined = fuzz.ratio(a.replace(" ", ""), b.replace(" ", ""))
    ordered = fuzz.token_sort_ratio(a, b)
    sa, sb = _skeleton(a), _skeleton(b)
    # consonants alone (vowels differ most between romanizations): only for longer names,
    # where three or fewer consonants would match unrelated short names
    skeleton = fuzz.ratio(sa, sb) * 0.9 if min(len(sa), len(sb)) >= 4 else 0.0
    return max(joined, ordered, skeleton) / 100.0


def han_chars(text: str) -> Counter[str]:
    """The Han characters of `text`, counted."""
    return Counter(ch for ch in text if script_of(ch) == "Han")


#: Kana that a transliteration into Han characters rarely writes as a character of its own
#: (the long-vowel mark, small kana, the middle dot).
_QUIET_KANA = frozenset("ーァィゥェォャュョッヮヵヶぁぃぅぇぉゃゅょっゎ・")


def _sounded_kana(text: str) -> int:
    return sum(
        1 for ch in text if script_of(ch) in ("Katakana", "Hiragana") and ch not in _QUIET_KANA
    )


def _han_score(
    src_han: Counter[str], tgt_han: Counter[str], src_all_han: bool, kana: int = 0
) -> float:
    common = sum((src_han & tgt_han).values())
    recall = common / max(1, sum(src_han.values()))
    if not src_all_han:
        # kana parts become characters chosen by sound (ドナー湖 -> 唐纳湖): recall of the
        # kanji, times how well the span's length fits the entity (one character per sounded
        # kana and one spare at most, one per two kana at least), so a long span that merely
        # contains 湖 does not fit, nor 北京 alone for 北京オリンピック
        han, have = sum(src_han.values()), max(1, sum(tgt_han.values()))
        fit = min(1.0, (han + kana + 1) / have, have / (han + kana / 2))
        return recall * fit
    precision = common / max(1, sum(tgt_han.values()))
    return 0.0 if common == 0 else 2 * precision * recall / (precision + recall)


class EvidenceScorer:
    """Scores (source entity, target span) pairs for one language pair, with caches."""

    def __init__(self, source: Language, target: Language, *, cache_size: int = 65536) -> None:
        self.source = source
        self.target = target
        self.score = lru_cache(maxsize=cache_size)(self._score)  # type: ignore[method-assign]
        self._source_reading = lru_cache(maxsize=cache_size)(self._reading_of_source)
        self._target_reading = lru_cache(maxsize=cache_size)(self._reading_of_target)

    # ---- readings, cached per string ------------------------------------------------------

    def _reading_of_source(self, text: str) -> str:
        return self._reading(text, self.source)

    def _reading_of_target(self, text: str) -> str:
        return self._reading(text, self.target)

    @staticmethod
    def _reading(text: str, lang: Language) -> str:
        text = unicodedata.normalize("NFKC", text)
        text = _strip_generic(text, lang.generic_words)
        if lang.romanize is not None:
            text = lang.romanize(text)
        elif _share(text, {"Latin"}) < 0.5:
            return ""
        folded = fold(text)
        kept = [w for w in folded.split() if w not in {fold(g) for g in lang.generic_words}]
        return " ".join(kept) if kept else folded

    def _by_sound(self, span: str, share: float = 0.7) -> bool:
        """Whether a Han span is a transliteration: mostly (`share` of its Han) the target's
        sound characters."""
        han = [ch for ch in span if script_of(ch) == "Han"]
        sound = self.target.sound_chars
        return bool(han) and bool(sound) and sum(ch in sound for ch in han) >= share * len(han)

    # ---- the score --------------------------------------------------------------------------

    def _score(self, entity: str, span: str, label: str | None = None) -> Evidence:
        """Evidence that `span` (target language) translates `entity` (source language)."""
        entity_n = unicodedata.normalize("NFKC", entity)
        span_n = unicodedata.normalize("NFKC", span)
        matches = list(_PRESERVED.finditer(entity_n))
        if "Latin" in self.source.scripts:
            # Latin words are translated when they are the source's own: only codes with digits
            matches = [m for m in matches if any(ch.isdigit() for ch in m.group())]
        elif "Latin" not in self.target.scripts:
            # a non-Latin target may write a Latin word by sound (Omega -> 欧米茄), seldom an
            # acronym (DHL, JR, NBA stay; MGM -> 米高梅 is the rare exception: a doubt)
            matches = [
                m
                for m in matches
                if any(ch.isdigit() for ch in m.group()) or _ACRONYM.fullmatch(m.group())
            ]
        # a lone digit is often a regnal or ordinal number written otherwise (1世 -> I)
        matches = [m for m in matches if len(m.group()) > 1 or not m.group().isdigit()]
        preserved = [m.group() for m in matches]
        if "Latin" not in self.source.scripts and _alien_codes(
            entity_n, span_n, self._source_reading(entity_n)
        ):
            # the span holds an acronym or a number the entity does not have (NBA选秀 for
            # 第三次ポエニ戦争, "the 1971 ..."): another entity's name, or neighbouring words
            return Evidence(0.0, 0.0, "preserved")
        rest = entity_n
        for m in reversed(matches):
            rest = rest[: m.start()] + " " + rest[m.end() :]
        rest = rest.strip()
        pres: float | None = None
        span_rest = span_n
        if preserved:
            low = span_n.lower()
            found = [p for p in preserved if p.lower() in low]
            pres = len(found) / len(preserved)
            if not _letters(rest):
                return Evidence(pres, pres, "preserved")
            for p in sorted(found, key=len, reverse=True):  # the rest is compared with the rest
                span_rest = re.sub(
                    rf"(?<![A-Za-z0-9]){re.escape(p)}(?![A-Za-z0-9])", " ", span_rest, flags=re.I
                )
            span_rest = " ".join(span_rest.split())
        best: Evidence = UNKNOWN
        if _letters(span_rest):
            for evidence in (
                self._han(rest, span_rest, label),
                self._readings(rest, span_rest, label),
            ):
                if evidence.raw is not None and (best.raw is None or _better(evidence, best)):
                    best = evidence
        for extra in (*self.source.evidence, *self.target.evidence):
            value = extra(entity, self.source, span, self.target)
            if value is not None and (best.score is None or value > best.score):
                best = Evidence(value, value, "plugin")
        if pres is None:
            return best
        # preserved tokens and the rest weigh by their share of the entity (a kana or kanji
        # character reads as about two Latin letters)
        w_pres = sum(len(p) for p in preserved)
        w_rest = sum(1 if ch.isascii() else 2 for ch in _letters(rest))

        def mix(x: float | None) -> float | None:
            if x is None or pres is None:
                return None
            return (w_pres * pres + w_rest * x) / (w_pres + w_rest)

        if best.raw is None:
            # the rest of the span is missing (reads as 0) or cannot be compared (neutral 0.5)
            return Evidence(
                pres if pres < 1 else None, mix(0.5 if _letters(span_rest) else 0.0), "preserved"
            )
        score = mix(best.score) if best.score is not None else (pres if pres < 1 else None)
        return Evidence(score, mix(best.raw), best.kind)

    def _han(self, entity: str, span: str, label: str | None) -> Evidence:
        s_form, t_form = self.source.han_form, self.target.han_form
        if s_form is None or t_form is None:
            return UNKNOWN
        # only multi-character generic words (株式会社 / 公司) are dropped: single ones (川, 河)
        # convert into each other and count as evidence
        stripped = _strip_generic(entity, _long(self.source.generic_words))
        src = han_chars(_cached(s_form, stripped))
        if not src:
            return UNKNOWN
        tgt = han_chars(_cached(t_form, _strip_generic(span, _long(self.target.generic_words))))
        if not tgt:
            if _share(span, {"Han"}) == 0 and _letters(span):
                # a target that writes Han writes a kanji entity in Han (3年B組金八先生 is not
                # "Omertà"); into other scripts only names are evidence
                mostly_han = _share(stripped, {"Han"}) >= 0.5
                against = label in self.source.name_labels or mostly_han
                return Evidence(0.0 if against else None, 0.0, "han")
            return UNKNOWN
        all_han = _share(stripped, {"Han"}) >= 0.99
        value = _han_score(src, tgt, all_han, _sounded_kana(stripped))
        # three or more kanji of a mixed entity (ドナー記念州立公園) carry over into Chinese
        # characters: none of them found is evidence too (some found says little: 共同墓地 ->
        # 公墓)
        trusted = (
            all_han
            or label in self.source.name_labels
            or value >= POSITIVE
            or (sum(src.values()) >= 3 and value == 0)
        )
        return Evidence(value if trusted else None, value, "han")

    def _readings(self, entity: str, span: str, label: str | None) -> Evidence:
        if self.source.romanize is None and _share(entity, {"Latin"}) < 0.5:
            return UNKNOWN
        if self.target.romanize is None and _share(span, {"Latin"}) < 0.5:
            return UNKNOWN
        if self.target.han_form is not None and _share(span, {"Han"}) > 0.5:
            # Chinese characters chosen by meaning or by sound: pinyin against romaji is weak
            # evidence, worth something only when it is high
            # (an entity written by sound, in katakana or hangul, is transliterated or
            # translated by meaning: its reading is trusted, a low one makes a doubt)
            a, b = self._source_reading(entity), self._target_reading(span)
            value = reading_similarity(a, b)
            if value < FAILED_SOUND:
                # a source-language name written by sound (ホンダ) keeps its own characters in
                # Chinese (本田): read the span the source language's way too
                # (only a close reading counts: short readings of unrelated names meet halfway)
                own = reading_similarity(a, self._source_reading(span))
                value = own if own >= 0.8 else value
            # (a person's name is never translated by meaning: its reading always counts;
            # a place's span partly in sound characters (恩施许家坪机场 for バラ・マーケット)
            # that reads far from the name is another name: its low reading counts too)
            trusted = value >= 0.8 or (
                written_by_sound(entity)
                and (
                    self._by_sound(span)
                    or label in self.source.name_labels
                    or (
                        label in self.source.place_labels
                        and value < FAILED_SOUND
                        and self._by_sound(span, share=0.2)
                    )
                )
            )
            return Evidence(value if trusted else None, value, "reading")
        a, b = self._source_reading(entity), self._target_reading(span)
        if not a or not b:
            return UNKNOWN
        value = reading_similarity(a, b)
        phonetic = _share(entity, _PHONETIC) >= 0.5
        trusted = phonetic or label in self.source.name_labels or value >= POSITIVE
        return Evidence(value if trusted else None, value, "reading")


_ACRONYM = re.compile(r"[A-Z][A-Z0-9]{1,4}")
_CODE = re.compile(r"[A-Za-z0-9]+")
_ROMAN = re.compile(r"[IVXLCDM]+")
_DIGITS = re.compile(r"\d+")
_KANJI_DIGITS = {ch: i for i, ch in enumerate("〇一二三四五六七八九")}


def _kanji_numbers(text: str) -> set[str]:
    """Numbers written in kanji numerals (三 -> 3, 二十三 -> 23, 十 -> 10), as digit strings."""
    out: set[str] = set()
    for run in re.findall(r"[〇一二三四五六七八九十百]+", text):
        if "十" not in run and "百" not in run:
            out.add("".join(str(_KANJI_DIGITS[ch]) for ch in run))
            continue
        total, current = 0, 0
        for ch in run:
            if ch in _KANJI_DIGITS:
                current = _KANJI_DIGITS[ch]
            else:
                total += (current or 1) * (10 if ch == "十" else 100)
                current = 0
        out.add(str(total + current))
    return out


def _alien_codes(entity: str, span: str, reading: str = "") -> bool:
    """Whether `span` holds an acronym (NBA, UEFA) or a number that `entity` does not. An
    acronym that reads like the start of the entity's `reading` is its name styled in capitals
    (AEON for イオン銀行)."""
    entity_low = entity.lower()
    start = reading.replace(" ", "")
    entity_numbers = set(_DIGITS.findall(entity)) | _kanji_numbers(entity)
    for m in _CODE.finditer(span):
        word = m.group()
        if (
            _ACRONYM.fullmatch(word)
            and not word.isdigit()
            and not _ROMAN.fullmatch(word)  # Ramesses II for ラムセス2世
            and word.lower() not in entity_low
            and not _styled_start(word.lower(), start)
        ):
            return True
        for number in _DIGITS.findall(word):
            if number not in entity_numbers and not any(number in n for n in entity_numbers):
                return True
    return False


def _styled_start(word: str, reading: str) -> bool:
    """Whether `word` reads like the start of `reading` (aeon / "ion..."). Four letters at
    least: a shorter initialism reads like too many starts (NBA like "nanbo..." of 南北戦争)."""
    n = len(word)
    return n >= 4 and any(
        reading_similarity(reading[:k], word) >= 0.55 for k in (n - 1, n, n + 1) if k <= len(reading)
    )


def _better(a: Evidence, b: Evidence) -> bool:
    """Trustworthy evidence beats untrustworthy; then the higher comparison wins."""
    if (a.score is None) != (b.score is None):
        return a.score is not None
    return (a.raw or 0.0) > (b.raw or 0.0)


@lru_cache(maxsize=64)
def _long(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words if len(w) > 1)


_CONVERTED: dict[tuple[int, str], str] = {}


def _cached(fn: Callable[[str], str], text: str) -> str:
    key = (id(fn), text)
    hit = _CONVERTED.get(key)
    if hit is None:
        if len(_CONVERTED) > 65536:
            _CONVERTED.clear()
        hit = _CONVERTED[key] = fn(text)
    return hit


_SCORERS: dict[tuple[str, str], EvidenceScorer] = {}


def scorer(source: Language, target: Language) -> EvidenceScorer:
    """The scorer of one language pair, built once per process."""
    key = (source.code, target.code)
    found = _SCORERS.get(key)
    if found is None or found.source is not source or found.target is not target:
        found = _SCORERS[key] = EvidenceScorer(source, target)
    return found
