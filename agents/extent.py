"""The verifier's span-extent checks: a marked span that swallowed its neighbours (widened) or
stops short of the entity (cut short), judged from the target's tokens, scripts and tags and
from the entity evidence (`agents.evidence`). Called by `agents.meaning.meaning_checks`."""

from __future__ import annotations

from agents.aligner import Alignment, Projected
from agents.evidence import Evidence, EvidenceScorer
from agents.extent_rules import (
    CLAUSE_POS,
    adds_entity_han,
    capitalised,
    clause_verb,
    clause_word,
    compound_head,
    continues_by_sound,
    ends_in_modifier,
    gap,
    holds_entity_han,
    inside_spaced_word,
    is_kind_word,
    joined_end,
    kana_then_kanji,
    name_part,
    next_free,
    not_name_end,
    numeral_of,
    only_the_codes,
    particle_inside,
    splits_latin_word,
    tail_left_out,
)
from agents.findings import Code, Finding
from agents.verifier_config import UNSPACED_SCRIPTS, VerifierConfig, feedback
from word_tokenizers import Language
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

    def finding(code: Code, lo: int, hi: int, listed: str, words: list[str], **data: str) -> Finding:
        """The span should run over tokens lo..hi; `words` (named `listed` in the feedback)
        are those it lacks (cut short) or holds too many (widened)."""
        suggested = text[tokens[lo].start : tokens[hi].end]
        message = feedback(
            code,
            index=index,
            span=p.text,
            entity=entity,
            suggested=suggested,
            **{listed: ", ".join(repr(w) for w in words)},
        )
        return Finding.error(
            code, message, span=index, span_text=p.text, suggested=suggested, **data
        )

    def cut_short(lo: int, hi: int) -> Finding:
        """The span should run over tokens lo..hi (it holds first..last of them)."""
        missing = [tokens[k].text for k in range(lo, hi + 1) if k < first or k > last]
        return finding(Code.SPAN_CUT_SHORT, lo, hi, "missing", missing)

    def widened(lo: int, hi: int, why: str) -> Finding:
        extra = [tokens[k].text for k in inside if k < lo or k > hi]
        return finding(Code.SPAN_WIDENED, lo, hi, "extra", extra, why=why)

    # 1. function words at the edges (the span ran into its neighbours): the language's edge
    # words, or a last word the tagger calls a verb, particle, adverb... (when it tags)
    if len(words) >= 2:
        lo, hi = words[0], words[-1]
        while lo < hi and edge(lo, start=True):
            lo += 1
        while hi > lo and (edge(hi, start=False) or not_name_end(tokens[hi])):
            if numeral_of(tokens[hi].text, entity):  # "Joseph I" for ジョゼ1世: not "I"
                break
            hi -= 1
        lo = min(k for k in words if k >= lo)
        hi = max(k for k in words if k <= hi)
        if (lo, hi) != (words[0], words[-1]):
            return widened(lo, hi, "edge words")
    # 1b. a word inside the span that starts a clause (是, 的; a verb the entity lacks; a
    # lower-case "is", "was" where no tagger runs): the span ran on into the sentence
    verb = clause_verb(tokens, words, target.clause_verbs)
    if verb is not None:
        return widened(words[0], verb, "clause word")
    inner = clause_word(sc, tokens, words, entity, target)
    if inner is None and not any(w in entity for w in sc.source.edge_words):
        # (an entity with a particle of its own, 本能寺の変, keeps one: 혼노지의 변)
        inner = particle_inside(text, tokens, words)
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
        grown_to = joined_end(text, tokens, last, others_at)
        nxt = next_free(tokens, last, others_at)
        if grown_to is None and nxt is not None:
            touching = nxt.start == tokens[last].end
            spaced = not text[tokens[last].end : nxt.start].strip()
            if (
                (touching and splits_latin_word(tokens[last], nxt))
                or (spaced and only_the_codes(sc, p.text, nxt, entity))
                or (touching and holds_entity_han(sc, p.text, nxt, entity))
                or (touching and tail_left_out(sc, p.text, nxt, entity))
                or (spaced and ends_in_modifier(tokens[last], nxt))
                or (touching and inside_spaced_word(text, tokens[last], nxt, target.edge_words))
                or (spaced and is_kind_word(sc, tokens[first : last + 1], nxt, entity))
                or (
                    touching
                    and continues_by_sound(sc, p.text, tokens[last], nxt, entity, label, ev)
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
                and not kana_then_kanji(entity)
            ):
                return widened(words[0], caps[-1], "case")
        grown_hi = last
        while (
            grown_hi + 1 < len(tokens)
            and capitalised(tokens[grown_hi + 1].text)
            and capitalised(compound_head(tokens, grown_hi))
            and not gap(text, tokens, grown_hi, grown_hi + 1)
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
                if name_part(tokens, words, lo, hi):
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
            and not (unspaced and t.pos in CLAUSE_POS)  # 让 in 让美国: a verb, not the name
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
            if gap(text, tokens, lo, first) or gap(text, tokens, last, hi):
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
                and not adds_entity_han(
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
