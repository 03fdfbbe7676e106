"""The span-extent rules `agents.extent` applies: what a span's next token, its inner words
and the entity say about where a name ends (cut short, widened), per script and tag, with no
language named (the plugins' edge words, sound characters and generic words carry it)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from agents.evidence import Evidence, EvidenceScorer, han_chars, written_by_sound
from agents.verifier_config import UNSPACED_SCRIPTS
from word_tokenizers import Language, Token
from word_tokenizers.scripts import script_of

#: Universal POS tags that do not end a name: a span ending in one ran into the sentence.
NOT_NAME_END = frozenset({"VERB", "AUX", "ADP", "PART", "CCONJ", "SCONJ", "PRON", "ADV", "DET"})


def kana_then_kanji(entity: str) -> bool:
    """Whether the entity is a name by sound followed by two or more kanji (イングランド代表):
    lower-case words after the name may translate them ("England national team")."""
    tail = len(entity)
    while tail > 0 and script_of(entity[tail - 1]) == "Han":
        tail -= 1
    return len(entity) - tail >= 2 and written_by_sound(entity[:tail])


def numeral_of(word: str, entity: str) -> bool:
    """Whether `word` is a Roman numeral and the entity has a number (ジョゼ1世 -> Joseph I)."""
    return bool(re.fullmatch(r"[IVXLCDM]+", word)) and any(
        ch.isdigit() or ch in "一二三四五六七八九十" for ch in entity
    )


def not_name_end(token: Token) -> bool:
    """A tagged function word or verb, in a script whose tagger is trusted for it (dictionary
    segmenters of Han text tag characters of names as verbs: 本能寺之变, 佐世保市)."""
    return token.pos in NOT_NAME_END and all(
        script_of(ch) not in UNSPACED_SCRIPTS for ch in token.text
    )


#: Characters that join the parts of one name: a span never ends or starts at one.
NAME_JOINERS = "·・‧•"
HYPHENS = "-‐‑"


def compound_head(tokens: Sequence[Token], k: int) -> str:
    """The first part of the hyphenated compound that token k ends ("Honnō" for "Honnō-ji")."""
    while (
        k >= 2
        and tokens[k - 1].text in HYPHENS
        and tokens[k - 1].end == tokens[k].start
        and tokens[k - 2].end == tokens[k - 1].start
    ):
        k -= 2
    return tokens[k].text


def free_token(tokens: Sequence[Token], k: int, others: Sequence[tuple[int, int]]) -> bool:
    t = tokens[k]
    return all(t.end <= s or t.start >= e for s, e in others)


def joined_end(
    text: str, tokens: Sequence[Token], last: int, others: Sequence[tuple[int, int]]
) -> int | None:
    """The last token of the name the span ends inside: after a middle dot, always part of
    the name; after a hyphen, only a capital, a digit or a single letter (not "Tokyo-based")."""
    k = last
    while k + 2 < len(tokens):
        joiner, after = tokens[k + 1], tokens[k + 2]
        if text[tokens[k].end : after.end] != joiner.text + after.text:
            break  # spaces around: not one word
        if not (free_token(tokens, k + 1, others) and free_token(tokens, k + 2, others)):
            break
        word = after.text
        if joiner.text in NAME_JOINERS and any(ch.isalnum() for ch in word):
            k += 2
        elif (
            joiner.text in HYPHENS
            and word[:1].isalnum()
            and (word[0].isupper() or word[0].isdigit() or len(word) == 1)
        ):
            k += 2
        else:
            break
    return k if k != last else None


def next_free(
    tokens: Sequence[Token], last: int, others: Sequence[tuple[int, int]]
) -> Token | None:
    """The token after `last`, unless there is none or another entity's span holds it."""
    if last + 1 >= len(tokens) or not free_token(tokens, last + 1, others):
        return None
    return tokens[last + 1]


def splits_latin_word(last: Token, nxt: Token) -> bool:
    """Whether the span's last token and the next one, touching, are one Latin word cut in
    two (a segmenter splits "Omertà" before the accented letter)."""
    a, b = last.text[-1:], nxt.text[:1]
    return bool(a and b) and a.isalpha() and b.isalpha() and latin(a) and latin(b)


def latin(ch: str) -> bool:
    return script_of(ch) == "Latin"


def only_the_codes(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
    """Whether the span holds nothing but the entity's Latin or digit code while the entity
    has words of its own besides (ABX for ABXエア, NBA for NBAドラフト), and the next token is
    a word that may carry them (not a function word)."""
    code = unicodedata.normalize("NFKC", span).strip().lower()
    if not code or not code.isascii() or not any(ch.isalnum() for ch in code):
        return False
    whole = unicodedata.normalize("NFKC", entity).lower()
    if code.replace(" ", "") not in whole.replace(" ", ""):
        return False
    rest = whole.replace(code, " ")
    for g in sorted(sc.source.generic_words, key=len, reverse=True):
        rest = rest.replace(g, " ")
    if not any(ch.isalpha() and not ch.isascii() for ch in rest):
        return False
    word = nxt.text
    unspaced = all(script_of(ch) in UNSPACED_SCRIPTS for ch in word)
    # jieba tags many nouns of action as verbs (选秀 "draft"): after a bare code, a verb of two
    # or more characters still carries the rest of the name
    return (
        any(ch.isalnum() for ch in word)
        and word.lower() not in sc.target.edge_words
        and not (unspaced and nxt.pos in CLAUSE_POS and not (nxt.pos == "VERB" and len(word) > 1))
    )


def spaced_word_char(ch: str) -> bool:
    return ch.isalnum() and script_of(ch) not in UNSPACED_SCRIPTS and not latin(ch)


def inside_spaced_word(text: str, last: Token, nxt: Token, edge_words: frozenset[str]) -> bool:
    """Whether the span stops inside a word of a script written with spaces but not Latin
    (Korean: 코닝엄 공동|묘지 for コニンガム共同墓地) and the rest of the word is a noun, not
    the particle or ending that follows a name (샌안토니오 스퍼스|에; 운하|가 even where the
    tagger calls 가 a noun: the target's edge words are particles)."""
    rest = re.split(r"[\s\W]", text[nxt.start :], maxsplit=1)[0]
    if nxt.text in edge_words or rest in edge_words:
        return False
    return (
        " " in text
        and nxt.pos in NOUNS
        and bool(last.text)
        and spaced_word_char(last.text[-1])
        and spaced_word_char(nxt.text[0])
    )


NOUNS = frozenset({"NOUN", "PROPN", "NUM"})


def particle_inside(text: str, tokens: Sequence[Token], words: Sequence[int]) -> int | None:
    """The word before a particle glued to it inside the span, in a script written with
    spaces but not Latin (Korean: 도쿄도 지요다구에| 본사 holds 에 "in"): the span ran on past
    the name. None if there is none."""
    if " " not in text:
        return None
    for n, k in enumerate(words[1:-1], start=1):
        t, before = tokens[k], tokens[words[n - 1]]
        if (
            t.pos == "ADP"
            and t.start == before.end
            and spaced_word_char(t.text[0])
            and spaced_word_char(before.text[-1])
        ):
            return words[n - 1]
    return None


def ends_in_modifier(last: Token, nxt: Token) -> bool:
    """Whether the span ends in a lower-case adjective and the next word is the lower-case
    noun it modifies ("England national|team"): a noun phrase does not end in its modifier."""
    a, b = last.text, nxt.text
    return (
        last.pos == "ADJ"
        and nxt.pos == "NOUN"
        and a.isalpha()
        and a.islower()
        and b.isalpha()
        and b.islower()
        and latin(a[0])
    )


def _katakana(ch: str) -> bool:
    return script_of(ch) == "Katakana" or ch == "ー"


def tail_left_out(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
    """Whether the entity ends in a part the span has no room for, and the span runs straight
    into a content word: two or more trailing kanji (英格兰|国家队 for イングランド代表,
    1979年F1世界|锦标赛 for 1979年F1世界選手権) or a trailing katakana word after another part
    (爱|电视 for あいテレビ, 勒芒24小时|耐力赛 for ル・マン24時間レース: words by meaning). Every
    character of the span is accounted for by the rest of the entity (its kanji, sound
    characters of a transliteration, Latin letters and digits), so none of it translates the
    part left out. Not a trailing generic word such as 株式会社, often left out; not one kanji,
    which may be a sound character itself (砦: 斯凯勒堡)."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None or not sc.target.sound_chars:
        return False
    source = s_form(entity)
    tail = len(source)
    while tail > 0 and script_of(source[tail - 1]) == "Han":
        tail -= 1
    have = t_form(span)
    if tail == len(source):  # no trailing kanji: a trailing katakana word after another part
        kept = tail
        while kept > 0 and _katakana(source[kept - 1]):
            kept -= 1
        # after a part in another script (あい, 24時間): not the second word of a katakana
        # name (ティム・ボッシュ), which a span may hold whole in sound characters or Latin
        rest = source[:kept]
        if len(source) - kept < 2 or not any(ch.isalnum() and not _katakana(ch) for ch in rest):
            return False
        left, kept = source[kept:], kept - 1
    else:
        # the trailing kanji the span lacks: those after the last one of them the span has
        kept = max((i for i in range(tail, len(source)) if source[i] in have), default=tail - 1)
        left = source[kept + 1 :]
    if len(left) < 2 or any(left.endswith(g) for g in sc.source.generic_words):
        return False
    own = set(source[:kept + 1])
    sound = sc.target.sound_chars
    if not all(
        ch in own or ch in sound or (ch.isascii() and ch.isalnum()) or not ch.isalnum()
        for ch in have
    ):
        return False
    word = nxt.text
    return (
        all(script_of(ch) == "Han" for ch in word)
        and word not in sc.target.edge_words
        and nxt.pos not in CLAUSE_POS
    )


def holds_entity_han(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
    """Whether the next token holds Han characters of the entity that the span lacks."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None or nxt.text in sc.target.edge_words:
        return False
    missing = han_chars(s_form(entity)) - han_chars(t_form(span))
    adds = han_chars(t_form(nxt.text))
    return bool(adds and (adds & missing))


def adds_entity_han(sc: EvidenceScorer, entity: str, added: str) -> bool:
    """Whether text added to a span holds a Han character of the entity."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None:
        return False
    return bool(han_chars(t_form(added)) & han_chars(s_form(entity)))


def is_kind_word(sc: EvidenceScorer, inside: Sequence[Token], nxt: Token, entity: str) -> bool:
    """Whether the next token is the kind word (机场, 公司) of an entity that has one (空港,
    株式会社) while the span has none."""
    long_src = [g for g in sc.source.generic_words if len(g) > 1]
    if not any(entity.endswith(g) or entity.startswith(g) for g in long_src):
        return False
    tgt_generic = sc.target.generic_words
    if any(t.text.lower() in tgt_generic for t in inside):
        return False
    return nxt.text.lower() in tgt_generic and len(nxt.text) > 1


def continues_by_sound(
    sc: EvidenceScorer,
    span: str,
    last: Token,
    nxt: Token,
    entity: str,
    label: str,
    ev: Evidence,
) -> bool:
    """Whether the entity is a name written by sound, the span's last token and the next one
    are all sound characters of the target (雅各布·德拉姆|赫勒), and the name reads better
    with the next one."""
    sound = sc.target.sound_chars
    if not sound or not written_by_sound(entity):
        return False
    if not all(ch in sound for ch in nxt.text) or not all(
        ch in sound or not ch.isalnum() for ch in last.text
    ):
        return False
    longer = sc.score(entity, span + nxt.text, label).raw
    base = ev.raw if ev.raw is not None else 0.0
    return longer is not None and longer > base + 0.03


def clause_verb(tokens: Sequence[Token], words: Sequence[int], verbs: frozenset[str]) -> int | None:
    """The word before the first lower-case clause verb inside the span ("1979 South African
    Grand Prix|was held"): the span ran on into the sentence. None if there is none."""
    for n, k in enumerate(words[1:], start=1):
        word = tokens[k].text
        if word in verbs:  # lower case only: a capitalised one is part of a title
            return words[n - 1]
    return None


def clause_word(
    sc: EvidenceScorer,
    tokens: Sequence[Token],
    words: Sequence[int],
    entity: str,
    target: Language,
) -> int | None:
    """The last word before the first clause word inside the span, in an unspaced script: an
    edge word (是, 的), or a function word or verb whose characters the entity does not have
    (使, 设有; a verb of the entity's own, 対抗 in 都市対抗野球, does not count)."""
    if len(words) < 2 or target.han_form is None:
        return None
    s_form, t_form = sc.source.han_form, target.han_form
    entity_han = han_chars(s_form(entity)) if s_form is not None else Counter()
    by_sound = written_by_sound(entity)
    # an entity with a particle of its own (アルプスの少女ハイジ) may keep one (阿尔卑斯山的少女)
    particle = any(w in entity for w in sc.source.edge_words)
    for n, k in enumerate(words[1:], start=1):
        t = tokens[k]
        if not all(script_of(ch) in UNSPACED_SCRIPTS for ch in t.text):
            continue
        chars = han_chars(t_form(t.text))
        own = bool(chars) and not (chars - entity_han)
        if own:
            continue
        if t.text in target.edge_words and not particle:
            return words[n - 1]
        if t.pos in CLAUSE_POS and (len(t.text) >= 2 or not by_sound):
            return words[n - 1]
    return None


#: Tags of a word that starts a clause inside a span (particles such as 之 do occur inside
#: names: 本能寺之变).
CLAUSE_POS = frozenset({"VERB", "AUX", "ADP", "CCONJ", "SCONJ", "PRON", "ADV"})


def capitalised(word: str) -> bool:
    return bool(word) and word[0].isalpha() and word[0].isupper()


def name_part(tokens: Sequence[Token], words: Sequence[int], lo: int, hi: int) -> bool:
    """Whether a word trimmed off [lo, hi] is capitalised like the kept word next to it, in a
    cased script: part of a multi-word name ("Bell Labs", "Fairlady Z"), not a neighbour."""

    def title(k: int) -> bool:
        first = tokens[k].text[0]
        return first.isupper()

    dropped_left = [k for k in words if k < lo]
    dropped_right = [k for k in words if k > hi]
    if dropped_left and title(lo) and any(title(k) for k in dropped_left):
        return True
    return bool(dropped_right and title(hi) and any(title(k) for k in dropped_right))


def gap(text: str, tokens: Sequence[Token], a: int, b: int) -> bool:
    """Whether anything but spaces and hyphen-like joiners lies between tokens a..b."""
    lo, hi = min(a, b), max(a, b)
    for k in range(lo, hi):
        between = text[tokens[k].end : tokens[k + 1].start]
        if between.strip(" -‐–・·"):
            return True
    return False
