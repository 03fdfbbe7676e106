"""Japanese: SudachiPy with sudachidict_core; Sudachi (UniDic-style) POS mapped to Universal POS.

    >>> tok = word_tokenizers.get("ja", mode="C")      # "A" short units ... "C" named entities
    >>> [(t.text, t.pos) for t in tok.tokenize("美しい猫")]
    [('美しい', 'ADJ'), ('猫', 'NOUN')]

Offsets are Sudachi's own `begin()` / `end()` (str indices into the input). `lemma` is the
dictionary form, `norm` the normalized form (ＡＢＣ -> ABC, 附属 -> 付属). The POS mapping follows
spaCy's `spacy/lang/ja` (tag map, orth map and tag bigram rules, MIT licence).

Speed: a dictionary word's POS and forms never change, so they are read from Sudachi once per
word id and kept, with the word's POS entry, in a per-tokenizer cache; a token then costs
Sudachi's analysis, three calls (word id, begin, end) and one dict lookup. Texts over Sudachi's
input limit are cut on line breaks or sentence ends and the offsets shifted.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any

from word_tokenizers.base import MissingBackendError, Token, new_token
from word_tokenizers.lang.ja_exonyms import exonym_evidence
from word_tokenizers.lang.ja_kinds import kind_evidence
from word_tokenizers.languages import Language
from word_tokenizers.spans import chunk_bounds

MODES = ("A", "B", "C")
#: Word ids from here up are not dictionary entries (Sudachi marks OOV words with dic 0xF).
OOV_WORD_IDS = 0xF000_0000
#: Bound on the per-tokenizer cache of dictionary words' POS and forms.
MAX_CACHED_WORDS = 500_000
#: Sudachi refuses inputs over 49149 UTF-8 bytes; texts are cut into pieces of at most this
#: many characters (4 bytes each at worst) on line breaks or sentence ends.
MAX_PIECE_CHARS = 49149 // 4

#: Sudachi POS (first four levels joined by "-", "*" dropped) -> Universal POS.
TAG_MAP: dict[str, str] = {
    "記号-一般": "NOUN",  # also sounds written as symbols, like ドレミ
    "記号-文字": "NOUN",  # Greek and Latin letters used as symbols
    "感動詞-フィラー": "INTJ",
    "感動詞-一般": "INTJ",
    "空白": "SPACE",  # never emitted: whitespace tokens are dropped
    "形状詞-一般": "ADJ",
    "形状詞-タリ": "ADJ",
    "形状詞-助動詞語幹": "AUX",
    "形容詞-一般": "ADJ",
    "形容詞-非自立可能": "ADJ",
    "助詞-格助詞": "ADP",
    "助詞-係助詞": "ADP",
    "助詞-終助詞": "PART",
    "助詞-準体助詞": "SCONJ",
    "助詞-接続助詞": "SCONJ",
    "助詞-副助詞": "ADP",
    "助動詞": "AUX",
    "接続詞": "CCONJ",
    "接頭辞": "NOUN",
    "接尾辞-形状詞的": "PART",
    "接尾辞-形容詞的": "AUX",
    "接尾辞-動詞的": "PART",
    "接尾辞-名詞的-サ変可能": "NOUN",
    "接尾辞-名詞的-一般": "NOUN",
    "接尾辞-名詞的-助数詞": "NOUN",
    "接尾辞-名詞的-副詞可能": "NOUN",
    "代名詞": "PRON",
    "動詞-一般": "VERB",
    "動詞-非自立可能": "AUX",
    "副詞": "ADV",
    "補助記号-ＡＡ-一般": "SYM",
    "補助記号-ＡＡ-顔文字": "PUNCT",
    "補助記号-一般": "SYM",
    "補助記号-括弧開": "PUNCT",
    "補助記号-括弧閉": "PUNCT",
    "補助記号-句点": "PUNCT",
    "補助記号-読点": "PUNCT",
    "名詞-固有名詞-一般": "PROPN",
    "名詞-固有名詞-人名-一般": "PROPN",
    "名詞-固有名詞-人名-姓": "PROPN",
    "名詞-固有名詞-人名-名": "PROPN",
    "名詞-固有名詞-地名-一般": "PROPN",
    "名詞-固有名詞-地名-国": "PROPN",
    "名詞-助動詞語幹": "AUX",
    "名詞-数詞": "NUM",
    "名詞-普通名詞-サ変可能": "NOUN",
    "名詞-普通名詞-サ変形状詞可能": "NOUN",
    "名詞-普通名詞-一般": "NOUN",
    "名詞-普通名詞-形状詞可能": "NOUN",
    "名詞-普通名詞-助数詞可能": "NOUN",
    "名詞-普通名詞-副詞可能": "NOUN",
    "連体詞": "DET",
}
#: First level -> Universal POS, for tags missing from TAG_MAP (user dictionaries...).
FIRST_LEVEL_MAP: dict[str, str] = {
    "名詞": "NOUN",
    "代名詞": "PRON",
    "形状詞": "ADJ",
    "形容詞": "ADJ",
    "連体詞": "DET",
    "副詞": "ADV",
    "接続詞": "CCONJ",
    "感動詞": "INTJ",
    "動詞": "VERB",
    "助動詞": "AUX",
    "助詞": "ADP",
    "接頭辞": "NOUN",
    "接尾辞": "NOUN",
    "記号": "SYM",
    "補助記号": "PUNCT",
    "空白": "SPACE",
}
#: Tag -> {surface: Universal POS}: words whose POS depends on the word itself.
TAG_ORTH_MAP: dict[str, dict[str, str]] = {
    "助詞-副助詞": {"たり": "PART"},
    "連体詞": {
        **dict.fromkeys(("あの", "かの", "この", "その", "どの", "彼の", "此の", "其の"), "DET"),
        **dict.fromkeys(("ある", "こんな", "そんな", "どんな", "あらゆる"), "PRON"),
        # Adnominal adjectives: ADJ in UD Japanese (not in spaCy's table).
        **dict.fromkeys(("大きな", "小さな", "おかしな", "いろんな"), "ADJ"),
    },
}
#: (tag, next tag) -> (POS of this token or None: use TAG_MAP, POS of the next one or None).
TAG_BIGRAM_MAP: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("形容詞-非自立可能", "助詞-終助詞"): ("AUX", None),
    ("名詞-普通名詞-形状詞可能", "助動詞"): ("ADJ", None),
    ("名詞-普通名詞-サ変可能", "動詞-非自立可能"): ("VERB", "AUX"),
    ("名詞-普通名詞-サ変形状詞可能", "動詞-非自立可能"): ("VERB", "AUX"),
    ("名詞-普通名詞-副詞可能", "動詞-非自立可能"): (None, "VERB"),
    ("副詞", "動詞-非自立可能"): (None, "VERB"),
    ("形容詞-一般", "動詞-非自立可能"): (None, "VERB"),
    ("形容詞-非自立可能", "動詞-非自立可能"): (None, "VERB"),
    ("接頭辞", "動詞-非自立可能"): (None, "VERB"),
    ("助詞-係助詞", "動詞-非自立可能"): (None, "VERB"),
    ("助詞-副助詞", "動詞-非自立可能"): (None, "VERB"),
    ("助詞-格助詞", "動詞-非自立可能"): (None, "VERB"),
    ("補助記号-読点", "動詞-非自立可能"): (None, "VERB"),
    ("形容詞-一般", "接尾辞-名詞的-一般"): (None, "PART"),
    ("助詞-格助詞", "形状詞-助動詞語幹"): (None, "NOUN"),
    ("連体詞", "形状詞-助動詞語幹"): (None, "NOUN"),
    ("動詞-一般", "助詞-副助詞"): (None, "PART"),
    ("動詞-非自立可能", "助詞-副助詞"): (None, "PART"),
    ("助動詞", "助詞-副助詞"): (None, "PART"),
}


def tag_of(part_of_speech: Sequence[str]) -> str:
    """spaCy-style tag of a Sudachi POS tuple: its first four levels without "*", joined by "-"."""
    return "-".join([p for p in part_of_speech[:4] if p != "*"])


def upos_of_tag(tag: str) -> str:
    """Universal POS of a tag: TAG_MAP, then shorter prefixes, then the first level, else X."""
    parts = tag.split("-")
    for n in range(len(parts), 0, -1):
        upos = TAG_MAP.get("-".join(parts[:n]))
        if upos is not None:
            return upos
    return FIRST_LEVEL_MAP.get(parts[0], "X")


Rules = dict[str, tuple[str | None, str | None]]
#: What a POS id decides: (tag, Universal POS, orth map or None, bigram rules or None).
PosEntry = tuple[str, str, dict[str, str] | None, Rules | None]
#: What the tokenizer keeps of a dictionary word: its forms, POS entry and whether it may be
#: whitespace.
Word = tuple[str, str, str, str, dict[str, str] | None, Rules | None, bool]


def pos_entry(tag: str) -> PosEntry:
    """The tag's Universal POS and the orth / bigram rules that apply to it."""
    rules: Rules = {}
    for (first, second), rule in TAG_BIGRAM_MAP.items():
        if first == tag:
            rules[second] = rule
    # 空白 tokens are dropped when Python calls them whitespace; the rest (U+200B) are X.
    upos = upos_of_tag(tag).replace("SPACE", "X")
    return (tag, upos, TAG_ORTH_MAP.get(tag), rules or None)


def pos_table(pos_of: Any) -> list[PosEntry]:
    """Entries of every POS id of a dictionary, from `Dictionary.pos_of` (None past the end)."""
    entries: list[PosEntry] = []
    while (pos := pos_of(len(entries))) is not None:
        entries.append(pos_entry(tag_of(pos)))
    return entries


class JapaneseTokenizer:
    """Sudachi in one split mode; one Sudachi tokenizer per thread over a shared dictionary."""

    lang = "ja"

    def __init__(self, dictionary: Any, mode: str = "C") -> None:
        from sudachipy.errors import SudachiError

        if mode not in MODES:
            raise ValueError(f"Sudachi split mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.dictionary = dictionary  # sudachipy.Dictionary, shared by threads
        self._pos = pos_table(dictionary.pos_of)
        self._local = threading.local()
        self._error: type[Exception] = SudachiError
        # Dictionary words seen: word id -> (dictionary form, normalized form, *POS entry,
        # may be whitespace). Shared by threads (dict operations are atomic).
        self._words: dict[int, Word] = {}

    def __repr__(self) -> str:
        return f"JapaneseTokenizer(mode={self.mode!r})"

    @property
    def backend(self) -> Any:
        """This thread's Sudachi tokenizer (Sudachi tokenizers must not be shared by threads)."""
        try:
            return self._local.tokenizer
        except AttributeError:
            self._local.tokenizer = self.dictionary.tokenizer(self.mode)
            return self._local.tokenizer

    def tokenize(self, text: str) -> list[Token]:
        out: list[Token] = []
        if len(text) <= MAX_PIECE_CHARS:
            self._tokenize_piece(self.backend, text, 0, out)
        else:
            sudachi = self.backend
            for start, end in chunk_bounds(text, MAX_PIECE_CHARS):
                self._tokenize_piece(sudachi, text[start:end], start, out)
        return out

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        # Tokens hold no reference cycles: collections while a batch piles up are pure cost.
        with gc_paused():
            return [self.tokenize(text) for text in texts]

    def _tokenize_piece(self, sudachi: Any, text: str, offset: int, out: list[Token]) -> None:
        """Append the tokens of `text` (which starts at `offset` of the full text) to `out`."""
        try:
            morphemes = sudachi.tokenize(text)
        except self._error as e:
            if "too long" not in str(e) or len(text) < 2:
                raise ValueError(
                    f"Sudachi failed on a text of {len(text)} characters at offset {offset} "
                    f"({text[:30]!r}...): {e}"
                ) from e
            # Under the raw limit but over it once normalized (㍿ -> 株式会社): halve and retry.
            for start, end in chunk_bounds(text, (len(text) + 1) // 2):
                self._tokenize_piece(sudachi, text[start:end], offset + start, out)
            return
        pos_entries = self._pos
        append = out.append
        # One pass. A bigram rule (tag, next tag) is applied when the next morpheme arrives:
        # it may change the POS of the token just emitted (rare: rebuilt) and force this one's.
        prev_rules: Rules | None = None
        words = self._words
        for m in morphemes:
            # A dictionary word's POS, dictionary and normalized forms are fixed: read them from
            # Sudachi once per word id. Unknown words (joined numbers, OOV) are read every time.
            word_id = m.word_id()
            begin = m.begin()
            end = m.end()
            surface = text[begin:end]
            word = words.get(word_id)
            if word is None:
                pid = m.part_of_speech_id()
                entry = (
                    pos_entries[pid]
                    if pid < len(pos_entries)
                    else pos_entry(tag_of(m.part_of_speech()))
                )
                oov = word_id >= OOV_WORD_IDS
                # Whitespace comes as 空白 words or unknown words (U+001C, U+2028...): only those
                # are tested for it below.
                maybe_space = oov or entry[0] == "空白" or surface.isspace()
                word = (m.dictionary_form(), m.normalized_form(), *entry, maybe_space)
                if not oov:
                    if len(words) >= MAX_CACHED_WORDS:
                        words.clear()
                    words[word_id] = word
            lemma, norm, tag, pos, by_surface, rules, maybe_space = word
            forced = None
            if prev_rules is not None:
                rule = prev_rules.get(tag)
                if rule is not None:
                    current, forced = rule
                    if current is not None:
                        last = out[-1]
                        out[-1] = new_token(
                            last.text, last.start, last.end, current, last.lemma, last.norm
                        )
            if begin == end or (maybe_space and surface.isspace()):
                prev_rules = None
                continue
            if forced is not None:
                pos = forced
                prev_rules = None
            elif by_surface is not None and surface in by_surface:
                pos = by_surface[surface]
                prev_rules = None
            else:
                prev_rules = rules
            append(new_token(surface, begin + offset, end + offset, pos, lemma, norm))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block that allocates many acyclic objects.

    Re-enables it afterwards only if it was enabled, so nesting and a caller's own
    `gc.disable()` are respected."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _dictionary(name: str) -> Any:
    """One Sudachi dictionary per process (read-only, shared by all tokenizers and threads)."""
    from sudachipy import Dictionary

    return Dictionary(dict=name)


def make_tokenizer(mode: str = "C", dictionary: str = "core") -> JapaneseTokenizer:
    """The Japanese word tokenizer: Sudachi split `mode` ("A" short units, "B" middle, "C"
    named-entity units) over the Sudachi dictionary package `sudachidict_<dictionary>`."""
    if importlib.util.find_spec("sudachipy") is None:
        raise MissingBackendError("ja", "sudachipy", "ja")
    if importlib.util.find_spec(f"sudachidict_{dictionary}") is None:
        raise MissingBackendError("ja", f"sudachidict_{dictionary}", "ja")
    if mode not in MODES:
        raise ValueError(f"Sudachi split mode must be one of {', '.join(MODES)}, not {mode!r}")
    return JapaneseTokenizer(_dictionary(dictionary), mode)


@cache
def _kakasi() -> Any:
    if importlib.util.find_spec("pykakasi") is None:
        raise MissingBackendError("ja", "pykakasi (romaji readings)", "ja")
    import pykakasi

    return pykakasi.kakasi()


@lru_cache(maxsize=65536)
def romanize(text: str) -> str:
    """Hepburn romaji of `text` (pykakasi), words separated by spaces: 大岡昇平 -> "ooka shouhei".
    Long vowels are kept as written ("ou", "oo"); `agents.evidence` folds them."""
    parts = []
    for item in _kakasi().convert(text):
        reading = item["hepburn"] or item["orig"]
        parts.append(reading.replace("・", " ").replace("ー", ""))
    return " ".join(" ".join(parts).split())


def han_form(text: str) -> str:
    """Kanji in simplified-Chinese form (OpenCC jp2t then t2s): 大岡昇平 -> 大冈升平."""
    from word_tokenizers.lang._readings import simplified

    return simplified(text, japanese=True)


#: Words that name the kind of an entity, not the entity: dropped before readings are compared.
GENERIC_WORDS = frozenset(
    "株式会社 有限会社 合同会社 会社 グループ ホールディングス 財団法人 社団法人 大学 高等学校 学校 "
    "研究所 銀行 病院 駅 空港 県 府 都 市 区 町 村 郡 州 国 島 山 川 湖 線 号 社 法".split()
)

LANGUAGE = Language(
    code="ja",
    name="Japanese",
    tokenizer=make_tokenizer,
    scripts=frozenset({"Han", "Hiragana", "Katakana"}),
    foreign_ok=frozenset({"Latin"}),
    romanize=romanize,
    han_form=han_form,
    generic_words=GENERIC_WORDS,
    name_labels=frozenset({"人名"}),
    place_labels=frozenset({"地名", "施設名"}),
    edge_words=frozenset("は が を に で と の へ や も から まで より".split()),
    evidence=(exonym_evidence, kind_evidence),
)
