"""The verifier's span-extent checks: a marked span that swallowed its neighbours (widened) or
stops short of the entity (cut short), judged from the target's tokens, scripts and tags and
from the entity evidence (`agents.evidence`). Called by `agents.meaning.meaning_checks`."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from agents.aligner import Alignment, Projected
from agents.evidence import Evidence, EvidenceScorer, written_by_sound
from agents.findings import Code, Finding
from agents.verifier_config import UNSPACED_SCRIPTS, VerifierConfig, feedback
from word_tokenizers import Language, Token
from word_tokenizers.scripts import script_of


def extent(
    sc: EvidenceScorer,
    alignment: Alignment,
    projected: dict[int, Projected],
    index: int,
    entity: str,
    label: str,
    ev: Evidence,
    target: Language,
    cfg: VerifierConfig,
) -> Finding | None:
    """A span that swallowed neighbouring words, or one that stops short of the entity."""
    text, tokens = alignment.text, alignment.tokens
    p = projected[index]
    inside = [k for k, t in enumerate(tokens) if t.start >= p.start and t.end <= p.end]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    words = [k for k in inside if any(ch.isalnum() for ch in tokens[k].text)]

    def edge(k: int, *, start: bool) -> bool:
        word = tokens[k].text.lower()
        return word in target.edge_words and not (start and word in target.edge_start_ok)

    def cut_short(lo: int, hi: int) -> Finding:
        """The span should run over tokens lo..hi (it holds first..last of them)."""
        suggested = text[tokens[lo].start : tokens[hi].end]
        missing = [tokens[k].text for k in range(lo, hi + 1) if k < first or k > last]
        message = feedback(
            Code.SPAN_CUT_SHORT,
            index=index,
            span=p.text,
            entity=entity,
            suggested=suggested,
            missing=", ".join(repr(w) for w in missing),
        )
        return Finding.error(
            Code.SPAN_CUT_SHORT, message, span=index, span_text=p.text, suggested=suggested
        )

    def widened(lo: int, hi: int, why: str) -> Finding:
        suggested = text[tokens[lo].start : tokens[hi].end]
        extra = [tokens[k].text for k in inside if k < lo or k > hi]
        message = feedback(
            Code.SPAN_WIDENED,
            index=index,
            span=p.text,
            entity=entity,
            suggested=suggested,
            extra=", ".join(repr(w) for w in extra),
        )
        return Finding.error(
            Code.SPAN_WIDENED, message, span=index, span_text=p.text, suggested=suggested, why=why
        )

    # 1. function words at the edges (the span ran into its neighbours): the language's edge
    # words, or a last word the tagger calls a verb, particle, adverb... (when it tags)
    if len(words) >= 2:
        lo, hi = words[0], words[-1]
        while lo < hi and edge(lo, start=True):
            lo += 1
        while hi > lo and (edge(hi, start=False) or _not_name_end(tokens[hi])):
            if _numeral_of(tokens[hi].text, entity):  # "Joseph I" for ジョゼ1世: not "I"
                break
            hi -= 1
        lo = min(k for k in words if k >= lo)
        hi = max(k for k in words if k <= hi)
        if (lo, hi) != (words[0], words[-1]):
            return widened(lo, hi, "edge words")
    # 1b. a word inside the span that starts a clause (是, 的; a verb the entity lacks): the
    # span ran on past the entity into the sentence
    inner = _clause_word(sc, tokens, words, entity, target)
    if inner is None and not any(w in entity for w in sc.source.edge_words):
        # (an entity with a particle of its own, 本能寺の変, keeps one: 혼노지의 변)
        inner = _particle_inside(text, tokens, words)
    if inner is not None:
        # the part before it must read at least as well as the whole (大和 in 宇宙战舰大和号
        # holds 和 "and"; the whole reads better)
        whole = ev.raw if ev.raw is not None else 0.0
        part = sc.score(entity, text[tokens[words[0]].start : tokens[inner].end], label).raw
        if part is not None and part > 0 and part >= whole:
            return widened(words[0], inner, "clause word")
    # 1c. the span stops inside a name joined by a middle dot or hyphen (米兰|·巴德利,
    # Class 3|-B), inside a Latin word (Omert|à), after only the entity's Latin code (ABX|航空
    # for ABXエア), before characters of the entity (马龙|制果), before the kind word the
    # entity has (恩施许家坪|机场 for 恩施許家坪空港), or inside a transliteration
    others_at = [(q.start, q.end) for i, q in projected.items() if i != index]
    if tokens[last].end == p.end:
        grown_to = _joined_end(text, tokens, last, others_at)
        nxt = _next_free(tokens, last, others_at)
        if grown_to is None and nxt is not None:
            touching = nxt.start == tokens[last].end
            spaced = not text[tokens[last].end : nxt.start].strip()
            if (
                (touching and _splits_latin_word(tokens[last], nxt))
                or (spaced and _only_the_codes(sc, p.text, nxt, entity))
                or (touching and _holds_entity_han(sc, p.text, nxt, entity))
                or (touching and _tail_left_out(sc, p.text, nxt, entity))
                or (spaced and _ends_in_modifier(tokens[last], nxt))
                or (touching and _inside_spaced_word(text, tokens[last], nxt))
                or (spaced and _is_kind_word(sc, tokens[first : last + 1], nxt, entity))
                or (
                    touching
                    and _continues_by_sound(sc, p.text, tokens[last], nxt, entity, label, ev)
                )
            ):
                grown_to = last + 1
        if grown_to is not None:
            return cut_short(first, grown_to)
    # 2. in a cased script, names are runs of capitalised words: lower-case words after the
    # last capitalised one were swallowed; a capitalised word right next to the span is cut off
    cased = [
        k
        for k in words
        if tokens[k].text[0].isalpha()
        and tokens[k].text[0].isupper() != tokens[k].text[0].islower()
    ]
    if cased:
        caps = [k for k in cased if tokens[k].text[0].isupper()]
        if caps and caps[0] == words[0] and words[-1] != caps[-1]:
            trailing = [k for k in words if k > caps[-1]]
            # two or more: one lower-case word is often part of the name ("NBA draft")
            if (
                len(trailing) >= 2
                and all(tokens[k].text.isalpha() and tokens[k].text.islower() for k in trailing)
                and not _kana_then_kanji(entity)
            ):
                return widened(words[0], caps[-1], "case")
        grown_hi = last
        while (
            grown_hi + 1 < len(tokens)
            and _capitalised(tokens[grown_hi + 1].text)
            and _capitalised(_compound_head(tokens, grown_hi))
            and not _gap(text, tokens, grown_hi, grown_hi + 1)
            and all(
                tokens[grown_hi + 1].end <= q.start or tokens[grown_hi + 1].start >= q.end
                for i, q in projected.items()
                if i != index
            )
        ):
            grown_hi += 1
        if grown_hi != last:
            return cut_short(first, grown_hi)
    base = ev.raw
    if base is None:
        return None
    best: tuple[float, int, int] | None = None
    # 3. a shorter sub-span scores clearly better
    if len(words) >= 2:
        for cut_lo in range(0, min(cfg.extent_tokens, len(words) - 1) + 1):
            for cut_hi in range(0, min(cfg.extent_tokens, len(words) - 1 - cut_lo) + 1):
                if cut_lo == cut_hi == 0:
                    continue
                lo, hi = words[cut_lo], words[len(words) - 1 - cut_hi]
                if _name_part(tokens, words, lo, hi):
                    continue
                value = sc.score(entity, text[tokens[lo].start : tokens[hi].end], label).raw
                if value is not None and (best is None or value > best[0]):
                    best = (value, lo, hi)
        if best is not None and best[0] >= cfg.widen_min and best[0] >= base + cfg.extent_gain:
            return widened(best[1], best[2], "score")
    # 4. extending over adjacent words scores clearly better (the span was cut short)
    others = [(q.start, q.end) for i, q in projected.items() if i != index]

    def free(k: int) -> bool:
        t = tokens[k]
        unspaced = all(script_of(ch) in UNSPACED_SCRIPTS for ch in t.text)
        return (
            any(ch.isalnum() for ch in t.text)
            and not edge(k, start=False)
            and not (unspaced and t.pos in _CLAUSE_POS)  # 让 in 让美国: a verb, not the name
            and all(t.end <= s or t.start >= e for s, e in others)
        )

    grown: tuple[float, int, int] | None = None
    for add_lo in range(0, cfg.extent_tokens + 1):
        lo = first - add_lo
        if lo < 0 or not all(free(k) for k in range(lo, first)):
            break
        for add_hi in range(0, cfg.extent_tokens + 1):
            hi = last + add_hi
            if hi >= len(tokens) or not all(free(k) for k in range(last + 1, hi + 1)):
                break
            if add_lo == add_hi == 0:
                continue
            if _gap(text, tokens, lo, first) or _gap(text, tokens, last, hi):
                break
            longer = sc.score(entity, text[tokens[lo].start : tokens[hi].end], label)
            value = longer.raw
            # a trusted span does not grow into evidence that says nothing (旧金山领事 for
            # サンフランシスコ reads "unknown"), nor a good one into Han evidence grown only by
            # the length fit (新潟天鹅|主教练 holds no more of アルビレックス新潟's kanji)
            if ev.score is not None and longer.score is None:
                continue
            if (
                longer.kind == "han"
                and ev.score is not None
                and ev.score >= cfg.extent_min
                and not _adds_entity_han(
                    sc,
                    entity,
                    text[tokens[lo].start : tokens[first].start]
                    + text[tokens[last].end : tokens[hi].end],
                )
            ):
                continue
            if value is not None and (grown is None or value > grown[0]):
                grown = (value, lo, hi)
    if grown is not None and grown[0] >= cfg.extent_min and grown[0] >= base + cfg.extent_gain:
        return cut_short(grown[1], grown[2])
    return None


#: Universal POS tags that do not end a name: a span ending in one ran into the sentence.
_NOT_NAME_END = frozenset({"VERB", "AUX", "ADP", "PART", "CCONJ", "SCONJ", "PRON", "ADV", "DET"})


def _kana_then_kanji(entity: str) -> bool:
    """Whether the entity is a name by sound followed by two or more kanji (イングランド代表):
    lower-case words after the name may translate them ("England national team")."""
    tail = len(entity)
    while tail > 0 and script_of(entity[tail - 1]) == "Han":
        tail -= 1
    return len(entity) - tail >= 2 and written_by_sound(entity[:tail])


def _numeral_of(word: str, entity: str) -> bool:
    """Whether `word` is a Roman numeral and the entity has a number (ジョゼ1世 -> Joseph I)."""
    return bool(re.fullmatch(r"[IVXLCDM]+", word)) and any(
        ch.isdigit() or ch in "一二三四五六七八九十" for ch in entity
    )


def _not_name_end(token: Token) -> bool:
    """A tagged function word or verb, in a script whose tagger is trusted for it (dictionary
    segmenters of Han text tag characters of names as verbs: 本能寺之变, 佐世保市)."""
    return token.pos in _NOT_NAME_END and all(
        script_of(ch) not in UNSPACED_SCRIPTS for ch in token.text
    )


#: Characters that join the parts of one name: a span never ends or starts at one.
_NAME_JOINERS = "·・‧•"
_HYPHENS = "-‐‑"


def _compound_head(tokens: Sequence[Token], k: int) -> str:
    """The first part of the hyphenated compound that token k ends ("Honnō" for "Honnō-ji")."""
    while (
        k >= 2
        and tokens[k - 1].text in _HYPHENS
        and tokens[k - 1].end == tokens[k].start
        and tokens[k - 2].end == tokens[k - 1].start
    ):
        k -= 2
    return tokens[k].text


def _free_token(tokens: Sequence[Token], k: int, others: Sequence[tuple[int, int]]) -> bool:
    t = tokens[k]
    return all(t.end <= s or t.start >= e for s, e in others)


def _joined_end(
    text: str, tokens: Sequence[Token], last: int, others: Sequence[tuple[int, int]]
) -> int | None:
    """The last token of the name the span ends inside: after a middle dot, always part of
    the name; after a hyphen, only a capital, a digit or a single letter (not "Tokyo-based")."""
    k = last
    while k + 2 < len(tokens):
        joiner, after = tokens[k + 1], tokens[k + 2]
        if text[tokens[k].end : after.end] != joiner.text + after.text:
            break  # spaces around: not one word
        if not (_free_token(tokens, k + 1, others) and _free_token(tokens, k + 2, others)):
            break
        word = after.text
        if joiner.text in _NAME_JOINERS and any(ch.isalnum() for ch in word):
            k += 2
        elif (
            joiner.text in _HYPHENS
            and word[:1].isalnum()
            and (word[0].isupper() or word[0].isdigit() or len(word) == 1)
        ):
            k += 2
        else:
            break
    return k if k != last else None


def _next_free(
    tokens: Sequence[Token], last: int, others: Sequence[tuple[int, int]]
) -> Token | None:
    """The token after `last`, unless there is none or another entity's span holds it."""
    if last + 1 >= len(tokens) or not _free_token(tokens, last + 1, others):
        return None
    return tokens[last + 1]


def _splits_latin_word(last: Token, nxt: Token) -> bool:
    """Whether the span's last token and the next one, touching, are one Latin word cut in
    two (a segmenter splits "Omertà" before the accented letter)."""
    a, b = last.text[-1:], nxt.text[:1]
    return bool(a and b) and a.isalpha() and b.isalpha() and _latin(a) and _latin(b)


def _latin(ch: str) -> bool:
    return script_of(ch) == "Latin"


def _only_the_codes(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
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
        and not (unspaced and nxt.pos in _CLAUSE_POS and not (nxt.pos == "VERB" and len(word) > 1))
    )


def _spaced_word_char(ch: str) -> bool:
    return ch.isalnum() and script_of(ch) not in UNSPACED_SCRIPTS and not _latin(ch)


def _inside_spaced_word(text: str, last: Token, nxt: Token) -> bool:
    """Whether the span stops inside a word of a script written with spaces but not Latin
    (Korean: 코닝엄 공동|묘지 for コニンガム共同墓地) and the rest of the word is a noun, not
    the particle or ending that follows a name (샌안토니오 스퍼스|에)."""
    return (
        " " in text
        and nxt.pos in _NOUNS
        and bool(last.text)
        and _spaced_word_char(last.text[-1])
        and _spaced_word_char(nxt.text[0])
    )


_NOUNS = frozenset({"NOUN", "PROPN", "NUM"})


def _particle_inside(text: str, tokens: Sequence[Token], words: Sequence[int]) -> int | None:
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
            and _spaced_word_char(t.text[0])
            and _spaced_word_char(before.text[-1])
        ):
            return words[n - 1]
    return None


def _ends_in_modifier(last: Token, nxt: Token) -> bool:
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
        and _latin(a[0])
    )


def _tail_left_out(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
    """Whether the entity ends in kanji that the span has no room for, and the span runs
    straight into a content word (英格兰|国家队 for イングランド代表, 1979年F1世界|锦标赛 for
    1979年F1世界選手権): every character of the span is accounted for by the rest of the
    entity (its kanji, sound characters of a transliteration, Latin letters and digits) and
    none of two or more trailing kanji (not a generic word such as 株式会社, often left out;
    one kanji such as 砦 may be a sound character itself: 斯凯勒堡) is in it."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None or not sc.target.sound_chars:
        return False
    source = s_form(entity)
    tail = len(source)
    while tail > 0 and script_of(source[tail - 1]) == "Han":
        tail -= 1
    have = t_form(span)
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
        and nxt.pos not in _CLAUSE_POS
    )


def _holds_entity_han(sc: EvidenceScorer, span: str, nxt: Token, entity: str) -> bool:
    """Whether the next token holds Han characters of the entity that the span lacks."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None or nxt.text in sc.target.edge_words:
        return False
    missing = _han_counter(s_form(entity)) - _han_counter(t_form(span))
    adds = _han_counter(t_form(nxt.text))
    return bool(adds and (adds & missing))


def _adds_entity_han(sc: EvidenceScorer, entity: str, added: str) -> bool:
    """Whether text added to a span holds a Han character of the entity."""
    s_form, t_form = sc.source.han_form, sc.target.han_form
    if s_form is None or t_form is None:
        return False
    return bool(_han_counter(t_form(added)) & _han_counter(s_form(entity)))


def _is_kind_word(sc: EvidenceScorer, inside: Sequence[Token], nxt: Token, entity: str) -> bool:
    """Whether the next token is the kind word (机场, 公司) of an entity that has one (空港,
    株式会社) while the span has none."""
    long_src = [g for g in sc.source.generic_words if len(g) > 1]
    if not any(entity.endswith(g) or entity.startswith(g) for g in long_src):
        return False
    tgt_generic = sc.target.generic_words
    if any(t.text.lower() in tgt_generic for t in inside):
        return False
    return nxt.text.lower() in tgt_generic and len(nxt.text) > 1


def _continues_by_sound(
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


def _clause_word(
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
    entity_han = _han_counter(s_form(entity)) if s_form is not None else Counter()
    by_sound = written_by_sound(entity)
    # an entity with a particle of its own (アルプスの少女ハイジ) may keep one (阿尔卑斯山的少女)
    particle = any(w in entity for w in sc.source.edge_words)
    for n, k in enumerate(words[1:], start=1):
        t = tokens[k]
        if not all(script_of(ch) in UNSPACED_SCRIPTS for ch in t.text):
            continue
        chars = _han_counter(t_form(t.text))
        own = bool(chars) and not (chars - entity_han)
        if own:
            continue
        if t.text in target.edge_words and not particle:
            return words[n - 1]
        if t.pos in _CLAUSE_POS and (len(t.text) >= 2 or not by_sound):
            return words[n - 1]
    return None


#: Tags of a word that starts a clause inside a span (particles such as 之 do occur inside
#: names: 本能寺之变).
_CLAUSE_POS = frozenset({"VERB", "AUX", "ADP", "CCONJ", "SCONJ", "PRON", "ADV"})


def _han_counter(text: str) -> Counter[str]:
    return Counter(ch for ch in text if script_of(ch) == "Han")


def _capitalised(word: str) -> bool:
    return bool(word) and word[0].isalpha() and word[0].isupper()


def _name_part(tokens: Sequence[Token], words: Sequence[int], lo: int, hi: int) -> bool:
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


def _gap(text: str, tokens: Sequence[Token], a: int, b: int) -> bool:
    """Whether anything but spaces and hyphen-like joiners lies between tokens a..b."""
    lo, hi = min(a, b), max(a, b)
    for k in range(lo, hi):
        between = text[tokens[k].end : tokens[k + 1].start]
        if between.strip(" -‐–・·"):
            return True
    return False
