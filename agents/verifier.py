"""The verifier: deterministic checks first, then an optional model check; returns a verdict."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from agents.aligner import Alignment, Projected
from agents.evidence import Evidence, EvidenceScorer, scorer
from agents.findings import Code, Finding, Severity
from agents.prompts import VERIFIER_FEEDBACK
from agents.translator import LabelMap
from mre import SCPOS_POS_CLASSES, Record, Span, sort_spans
from word_tokenizers import Language, Token
from word_tokenizers.scripts import residue, script_of
from word_tokenizers.spans import on_boundaries

#: Scripts whose word segmentation is a dictionary's guess (names are often split or merged):
#: a span that cuts such a token is noted, not rejected.
_UNSPACED = {"Han", "Hiragana", "Katakana", "Thai"}


class Decision(StrEnum):
    ACCEPT = "accept"
    RETRY = "retry"
    REJECT = "reject"
    REVIEW = "review"  # ask the reviewer agent before deciding


class ModelCheck(Protocol):
    """The seam for a model check (the trained OIELLM): findings about a projected record."""

    def __call__(self, record: Record) -> list[Finding]: ...


@dataclass(frozen=True)
class VerifierConfig:
    """Thresholds of the deterministic checks."""

    min_length_ratio: float = 0.4
    max_length_ratio: float = 2.5
    min_source_chars_for_ratio: int = 12
    meaning: bool = True  # the entity-evidence checks (swap, substitution, extent, dropped)
    swap_gain: float = 0.35  # an entity scores this much better in another marker's span...
    swap_min: float = 0.6  # ...and at least this there...
    swap_loss: float = 0.1  # ...while no other entity of the swap loses more than this
    substitute_below: float = 0.3  # a trusted score below this is a substituted name...
    substitute_gap: float = 0.4  # ...and this far below the label's median in the run
    extent_gain: float = 0.15  # a sub-span / extension must score this much better...
    extent_min: float = 0.5  # ...and at least this (an extension of a cut-short span)
    widen_min: float = 0.85  # a sub-span must read like the whole entity to call a span widened
    extent_tokens: int = 3  # tokens tried when trimming or extending a span
    dropped_z: float = -2.0  # robust z-score of log(length ratio) below which content was dropped
    dropped_min_source_chars: int = 30  # shorter sources vary too much in length ratio
    dropped_min_samples: int = 20  # run samples needed before the run's own spread is used
    prior_log_scale: float = 0.25  # spread of log ratios assumed until then (demo: 0.1-0.23)


#: Findings that say "probably wrong": retried with feedback; an answer that repeats the same
#: span (or the same length) after the feedback is kept with a DOUBT_KEPT note, not rejected.
UNCERTAIN = frozenset(
    {Code.ENTITY_SUBSTITUTED, Code.SPAN_WIDENED, Code.SPAN_CUT_SHORT, Code.CONTENT_DROPPED}
)


def feedback(code: Code | str, **values: Any) -> str:
    """The feedback sentence of a finding, from its template in `agents.prompts` (keyed by
    the code, or by a variant key such as "content_dropped_numbers")."""
    key = code.value if isinstance(code, Code) else code
    return VERIFIER_FEEDBACK[key].format(**values)


@dataclass
class RunStats:
    """What the verifier learns from the run itself: log length ratios per target language and
    evidence scores per (target, label), over the last `window` accepted answers.

    Kept in the runtime context (not checkpointed): a resumed run starts with an empty window
    and uses the prior spread until it has `VerifierConfig.dropped_min_samples` again."""

    window: int = 2000
    min_scale: float = 0.2  # floor of the spread (log units): ~20% length variation is normal
    ratios: dict[str, deque[float]] = field(default_factory=dict)
    scores: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def add(
        self, target: str, log_ratio: float | None, scores: Sequence[tuple[str, float]]
    ) -> None:
        if log_ratio is not None:
            self.ratios.setdefault(target, deque(maxlen=self.window)).append(log_ratio)
        for label, score in scores:
            self.scores.setdefault((target, label), deque(maxlen=self.window)).append(score)

    def ratio_z(
        self,
        target: str,
        log_ratio: float,
        prior_center: float,
        prior_scale: float,
        min_samples: int,
    ) -> float:
        """Robust z-score (median, 1.4826 MAD) of `log_ratio` against the run's ratios."""
        seen = self.ratios.get(target)
        if seen is None or len(seen) < min_samples:
            return 0.0  # the run's own distribution only: no judgement before it has samples
        values = sorted(seen)
        median = _median(values)
        mad = _median(sorted(abs(v - median) for v in values))
        scale = max(1.4826 * mad, self.min_scale)
        return (log_ratio - median) / scale

    def label_median(self, target: str, label: str, min_samples: int = 5) -> float | None:
        seen = self.scores.get((target, label))
        if seen is None or len(seen) < min_samples:
            return None
        return _median(sorted(seen))


def _median(values: Sequence[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


@dataclass
class Verdict:
    decision: Decision
    findings: list[Finding]
    record: Record | None = None  # the projected record, when every span landed
    span_map: list[int] = field(default_factory=list)  # target span i -> source span index


def build_record(
    source: Record, target: Language, alignment: Alignment, labels: LabelMap
) -> tuple[Record, list[int]] | None:
    """The target-language record, or None when a span or a label is missing."""
    n = len(source.spans)
    if len(alignment.projected) != n or any(lab is None for lab in labels.span_labels):
        return None
    if source.label is not None and labels.text_label is None:
        return None
    spans = [
        Span(start=p.start, end=p.end, text=p.text, label=labels.span_labels[i - 1] or "")
        for i, p in sorted(alignment.projected.items())
    ]
    order = sorted(range(n), key=lambda j: (spans[j].start, spans[j].end))
    sorted_spans, relations = sort_spans(spans, source.relations)
    record = Record(
        id=f"{source.id}.{target.code}",
        lang=target.code,
        task=source.task,
        text=alignment.text,
        label=labels.text_label,
        spans=sorted_spans,
        relations=relations,
        meta={"source_id": source.id, "source_lang": source.lang},
    )
    return record, order


def check(
    source: Record,
    source_lang: Language,
    target: Language,
    alignment: Alignment,
    *,
    config: VerifierConfig | None = None,
    stats: RunStats | None = None,
) -> list[Finding]:
    """The deterministic checks over an alignment: form first, then meaning (entity evidence)."""
    cfg = config or VerifierConfig()
    findings: list[Finding] = []
    text = alignment.text
    if not text.strip():
        return [Finding.error(Code.EMPTY_TRANSLATION, feedback(Code.EMPTY_TRANSLATION))]
    findings += _residue(text, source_lang, target)
    findings += _length(source.text, text, source_lang, target, cfg)
    findings += _boundaries(alignment)
    allowed = SCPOS_POS_CLASSES.get(source.task)
    if allowed:
        findings += _pos(alignment, allowed)
    if cfg.meaning:
        if not any(f.code == Code.LENGTH_RATIO for f in findings):
            findings += _dropped(source.text, text, source_lang, target, cfg, stats)
        if not any(f.code == Code.CONTENT_DROPPED for f in findings):
            findings += _numbers(source.text, text)
        findings += meaning_checks(source, source_lang, target, alignment, cfg, stats)
    return findings


def verify(
    source: Record,
    source_lang: Language,
    target: Language,
    alignment: Alignment,
    labels: LabelMap,
    *,
    attempt: int,
    max_attempts: int,
    earlier: Sequence[Finding] = (),
    model_check: ModelCheck | None = None,
    config: VerifierConfig | None = None,
    stats: RunStats | None = None,
    previous: Sequence[Finding] = (),
    vouched: frozenset[int] = frozenset(),
    learn: bool = True,
) -> Verdict:
    """Verdict on one attempt. `earlier` are the translator's and aligner's findings;
    `previous` the verifier's findings on the attempt before (an uncertain finding the
    translator answered with the same span is kept as a note); `vouched` are entities a
    reviewer judged correct (uncertain findings about them become notes). An accepted answer
    adds its length ratio and evidence scores to `stats` when `learn`."""
    cfg = config or VerifierConfig()
    checked = check(source, source_lang, target, alignment, config=cfg, stats=stats)
    checked = _settle_doubts(checked, previous, vouched)
    findings = [*earlier, *checked]
    built = build_record(source, target, alignment, labels)
    record, span_map = built if built is not None else (None, [])
    if record is not None and model_check is not None and not _blocking(findings):
        findings += model_check(record)
    decision = decide(findings, attempt=attempt, max_attempts=max_attempts)
    if record is not None and cfg.meaning:
        scores = _span_evidence(source, source_lang, target, alignment)
        record.meta["evidence"] = scores
        if decision == Decision.ACCEPT and stats is not None and learn:
            stats.add(
                target.code,
                _log_ratio(source.text, alignment.text, cfg),
                [(e["label"], e["score"]) for e in scores if e["score"] is not None],
            )
    return Verdict(decision=decision, findings=findings, record=record, span_map=span_map)


def uncertain(findings: Sequence[Finding]) -> list[Finding]:
    """The blocking findings that only say "probably wrong" (a reviewer may settle them)."""
    return [f for f in findings if f.code in UNCERTAIN and f.severity == Severity.ERROR]


def _settle_doubts(
    findings: list[Finding], previous: Sequence[Finding], vouched: frozenset[int]
) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        if f.code in UNCERTAIN and f.severity == Severity.ERROR:
            why = None
            if f.span is not None and f.span in vouched:
                why = "a reviewer judged it correct"
            elif any(_same_doubt(f, p) for p in previous):
                why = "the translator kept it after this feedback"
            if why is not None:
                out.append(
                    Finding.info(
                        Code.DOUBT_KEPT,
                        f"{f.code.value} kept ({why}): {f.message}",
                        span=f.span,
                        doubt=f.code.value,
                        **f.data,
                    )
                )
                continue
        out.append(f)
    return out


def _same_doubt(f: Finding, p: Finding) -> bool:
    if p.code != f.code or p.span != f.span:
        return False
    if f.code == Code.CONTENT_DROPPED:  # the retry came back no longer
        return float(f.data.get("length", 0)) <= 1.1 * float(p.data.get("length", 0))
    return f.data.get("span_text") == p.data.get("span_text")


def decide(findings: Sequence[Finding], *, attempt: int, max_attempts: int) -> Decision:
    if any(f.severity == Severity.FATAL for f in findings):
        return Decision.REJECT
    if _blocking(findings):
        return Decision.RETRY if attempt < max_attempts else Decision.REJECT
    return Decision.ACCEPT


def _blocking(findings: Sequence[Finding]) -> bool:
    return any(f.severity != Severity.INFO for f in findings)


def _runs(text: str, hits: list[tuple[int, str]]) -> list[str]:
    runs: list[str] = []
    last = -2
    for i, ch in hits:
        if i == last + 1 and runs:
            runs[-1] += ch
        else:
            runs.append(ch)
        last = i
    return runs


def _residue(text: str, source_lang: Language, target: Language) -> list[Finding]:
    scripts = target.residue_scripts(source_lang)
    hits = residue(text, scripts) if scripts else []
    if not hits:
        return []
    runs = _runs(text, hits)
    shown = ", ".join(repr(r) for r in runs[:8])
    message = feedback(
        Code.RESIDUE, target_name=target.name, source_name=source_lang.name, shown=shown
    )
    return [Finding.error(Code.RESIDUE, message, residue=runs)]


def _length(
    source_text: str, text: str, source_lang: Language, target: Language, cfg: VerifierConfig
) -> list[Finding]:
    if len(source_text) < cfg.min_source_chars_for_ratio:
        return []
    expected = len(source_text) * target.length_factor / source_lang.length_factor
    ratio = len(text) / expected
    if cfg.min_length_ratio <= ratio <= cfg.max_length_ratio:
        return []
    what = "short" if ratio < cfg.min_length_ratio else "long"
    message = feedback(
        Code.LENGTH_RATIO, what=what, length=len(text), source_length=len(source_text), ratio=ratio
    )
    return [Finding.error(Code.LENGTH_RATIO, message, ratio=round(ratio, 3))]


def _log_ratio(source_text: str, text: str, cfg: VerifierConfig) -> float | None:
    if len(source_text) < cfg.min_source_chars_for_ratio or not text:
        return None
    return math.log(len(text) / len(source_text))


def _dropped(
    source_text: str,
    text: str,
    source_lang: Language,
    target: Language,
    cfg: VerifierConfig,
    stats: RunStats | None,
) -> list[Finding]:
    """A translation much shorter than this run's translations into `target` usually are."""
    log_ratio = _log_ratio(source_text, text, cfg)
    if log_ratio is None or len(source_text) < cfg.dropped_min_source_chars:
        return []
    center = math.log(target.length_factor / source_lang.length_factor)
    run = stats or RunStats()
    z = run.ratio_z(target.code, log_ratio, center, cfg.prior_log_scale, cfg.dropped_min_samples)
    if z >= cfg.dropped_z:
        return []
    message = feedback(Code.CONTENT_DROPPED, length=len(text), source_length=len(source_text), z=z)
    return [Finding.error(Code.CONTENT_DROPPED, message, z=round(z, 2), length=len(text))]


_NUMBER = re.compile(r"\d{3,}(?![\d万億千百])")


def _numbers(source_text: str, text: str) -> list[Finding]:
    """Numbers of three digits or more (years, counts, codes: rarely spelled out in words, unlike
    "第19王朝" -> "Nineteenth Dynasty") in the source that the translation lacks: the clause that
    held them was probably dropped."""
    wanted = _NUMBER.findall(unicodedata.normalize("NFKC", source_text))
    if not wanted:
        return []
    have = unicodedata.normalize("NFKC", text)
    have = re.sub(r"(?<=\d)[,，](?=\d{3})", "", have)
    found = set(_NUMBER.findall(have))
    missing = [n for n in dict.fromkeys(wanted) if n not in found]
    if not missing:
        return []
    message = feedback("content_dropped_numbers", numbers=", ".join(missing))
    return [Finding.error(Code.CONTENT_DROPPED, message, numbers=missing, length=len(text))]


def _boundaries(alignment: Alignment) -> list[Finding]:
    out: list[Finding] = []
    tokens = alignment.tokens
    if not tokens:
        return out
    text = alignment.text
    for index, p in sorted(alignment.projected.items()):
        if on_boundaries(tokens, p.start, p.end):
            continue
        cut = [t for t in tokens if t.start < p.start < t.end or t.start < p.end < t.end]
        if _before_token_punctuation(text, tokens, p, cut):
            continue
        unspaced = all(
            all(script_of(ch) in _UNSPACED or not ch.isalnum() for ch in t.text) for t in cut
        )
        make = Finding.info if unspaced else Finding.error
        shown = ", ".join(repr(t.text) for t in cut)
        out.append(
            make(
                Code.SPAN_NOT_ON_TOKENS,
                feedback(Code.SPAN_NOT_ON_TOKENS, index=index, span=p.text, cut=shown),
                span=index,
            )
        )
    return out


def _before_token_punctuation(
    text: str, tokens: Sequence[Token], p: Projected, cut: Sequence[Token]
) -> bool:
    """The span starts on a token and stops inside one only before punctuation the tokenizer
    glued to that token (spaCy keeps a sentence-final period in an abbreviation: "in C."): it
    is on a boundary."""
    if len(cut) != 1 or not any(t.start == p.start for t in tokens):
        return False
    token = cut[0]
    if not token.start < p.end < token.end:
        return False
    rest = text[p.end : token.end]
    return bool(rest) and all(not ch.isalnum() and not ch.isspace() for ch in rest)


def _pos(alignment: Alignment, allowed: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    for index, p in sorted(alignment.projected.items()):
        inside: list[Token] = [t for t in alignment.tokens if t.start < p.end and t.end > p.start]
        tags = sorted({t.pos for t in inside})
        if inside and not any(t.pos in allowed for t in inside):
            message = feedback(
                Code.POS_MISMATCH,
                index=index,
                span=p.text,
                tags="/".join(tags),
                allowed="/".join(sorted(allowed)),
            )
            out.append(Finding.error(Code.POS_MISMATCH, message, span=index, pos=tags))
    return out


# ---- meaning: entity evidence ----------------------------------------------------------


def _span_evidence(
    source: Record, source_lang: Language, target: Language, alignment: Alignment
) -> list[dict[str, Any]]:
    """Evidence score of each projected span (for the record's meta and the report)."""
    sc = scorer(source_lang, target)
    out: list[dict[str, Any]] = []
    for index, p in sorted(alignment.projected.items()):
        entity = source.spans[index - 1]
        ev = sc.score(entity.text, p.text, entity.label)
        score = None if ev.score is None else round(ev.score, 3)
        out.append(
            {
                "span": index,
                "label": entity.label,
                "score": score,
                "kind": ev.kind,
                "source": entity.text,
                "text": p.text,
            }
        )
    return out


def meaning_checks(
    source: Record,
    source_lang: Language,
    target: Language,
    alignment: Alignment,
    cfg: VerifierConfig,
    stats: RunStats | None = None,
) -> list[Finding]:
    """Swapped entities, substituted names, widened and cut-short spans."""
    projected = dict(sorted(alignment.projected.items()))
    if not projected:
        return []
    sc = scorer(source_lang, target)
    entities = {i: source.spans[i - 1] for i in projected}
    evidence = {
        i: sc.score(entities[i].text, p.text, entities[i].label) for i, p in projected.items()
    }
    findings = _swaps(source, sc, projected, entities, evidence, cfg)
    swapped = {f.span for f in findings} | {i for f in findings for i in f.data.get("entities", [])}
    for index, p in projected.items():
        if index in swapped:
            continue
        entity = entities[index]
        extent = _extent(
            sc, alignment, projected, index, entity.text, entity.label, evidence[index], target, cfg
        )
        if extent is not None:
            findings.append(extent)
            continue
        found = _substituted(
            evidence[index], index, entity.text, entity.label, p.text, target, cfg, stats
        )
        if found is not None:
            findings.append(found)
    return findings


def best_assignment(matrix: Sequence[Sequence[float]]) -> list[int]:
    """The one-to-one assignment of rows to columns with the largest total (square matrix):
    scipy's Hungarian solver when installed, else exact search for n <= 8, greedy above."""
    n = len(matrix)
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        linear_sum_assignment = None
    if linear_sum_assignment is not None:
        rows, cols = linear_sum_assignment([list(r) for r in matrix], maximize=True)
        out = [0] * n
        for r, c in zip(rows, cols, strict=True):
            out[int(r)] = int(c)
        return out
    if n <= 8:
        from itertools import permutations

        best = max(
            permutations(range(n)), key=lambda perm: sum(matrix[i][perm[i]] for i in range(n))
        )
        return list(best)
    cells = sorted(((matrix[i][j], i, j) for i in range(n) for j in range(n)), reverse=True)
    taken_r: dict[int, int] = {}
    taken_c: set[int] = set()
    for _, i, j in cells:
        if i not in taken_r and j not in taken_c:
            taken_r[i] = j
            taken_c.add(j)
    return [taken_r[i] for i in range(n)]


def _swaps(
    source: Record,
    sc: EvidenceScorer,
    projected: dict[int, Projected],
    entities: dict[int, Span],
    evidence: dict[int, Evidence],
    cfg: VerifierConfig,
) -> list[Finding]:
    order = list(projected)
    if len(order) < 2:
        return []
    matrix = [
        [
            (sc.score(entities[i].text, projected[j].text, entities[i].label).raw or 0.0)
            for j in order
        ]
        for i in order
    ]
    best = best_assignment(matrix)
    moved = [a for a in range(len(order)) if best[a] != a and matrix[a][best[a]] > matrix[a][a]]
    if not moved:
        return []
    # a cycle of the better assignment: entities whose translations sit in each other's marker
    findings: list[Finding] = []
    seen: set[int] = set()
    for a in moved:
        if a in seen:
            continue
        cycle = [a]
        b = best[a]
        while b != a and b not in cycle and len(cycle) <= len(order):
            cycle.append(b)
            b = best[b]
        seen.update(cycle)
        if b != a:
            continue
        gains = [matrix[x][best[x]] - matrix[x][x] for x in cycle]
        top = max(range(len(cycle)), key=lambda k: gains[k])
        # one entity reads clearly better in another marker's span, and no other entity of
        # the cycle reads clearly worse in the span the better assignment gives it
        if (
            gains[top] < cfg.swap_gain
            or matrix[cycle[top]][best[cycle[top]]] < cfg.swap_min
            or min(gains) < -cfg.swap_loss
        ):
            continue
        indices = [order[x] for x in cycle]
        same_label = len({entities[i].label for i in indices}) == 1
        related = any(r.head + 1 in indices or r.tail + 1 in indices for r in source.relations)
        details = "; ".join(
            f"<e{order[x]}> holds {projected[order[x]].text!r}, which translates entity "
            f"{order[_inverse(best, x)]} {entities[order[_inverse(best, x)]].text!r}"
            for x in cycle
        )
        pairs = " and ".join(f"{i} {entities[i].text!r}" for i in indices)
        make = Finding.info if same_label and not related else Finding.error
        findings.append(
            make(
                Code.ENTITY_SWAPPED,
                feedback(Code.ENTITY_SWAPPED, pairs=pairs, details=details),
                span=indices[0],
                entities=indices,
                gain=round(sum(gains) / len(cycle), 3),
            )
        )
    return findings


def _inverse(assignment: list[int], column: int) -> int:
    return assignment.index(column)


def _substituted(
    ev: Evidence,
    index: int,
    entity: str,
    label: str,
    span: str,
    target: Language,
    cfg: VerifierConfig,
    stats: RunStats | None,
) -> Finding | None:
    if ev.score is None or ev.score >= cfg.substitute_below:
        return None
    median = stats.label_median(target.code, label) if stats is not None else None
    if median is not None and ev.score > median - cfg.substitute_gap:
        return None
    message = feedback(
        Code.ENTITY_SUBSTITUTED,
        index=index,
        entity=entity,
        span=span,
        score=ev.score,
        target_name=target.name,
    )
    return Finding.error(
        Code.ENTITY_SUBSTITUTED,
        message,
        span=index,
        span_text=span,
        score=round(ev.score, 3),
        kind=ev.kind,
    )


def _extent(
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
            hi -= 1
        lo = min(k for k in words if k >= lo)
        hi = max(k for k in words if k <= hi)
        if (lo, hi) != (words[0], words[-1]):
            return widened(lo, hi, "edge words")
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
            if len(trailing) >= 2 and all(
                tokens[k].text.isalpha() and tokens[k].text.islower() for k in trailing
            ):
                return widened(words[0], caps[-1], "case")
        grown_hi = last
        while (
            grown_hi + 1 < len(tokens)
            and _capitalised(tokens[grown_hi + 1].text)
            and _capitalised(tokens[grown_hi].text)
            and not _gap(text, tokens, grown_hi, grown_hi + 1)
            and all(
                tokens[grown_hi + 1].end <= q.start or tokens[grown_hi + 1].start >= q.end
                for i, q in projected.items()
                if i != index
            )
        ):
            grown_hi += 1
        if grown_hi != last:
            suggested = text[tokens[first].start : tokens[grown_hi].end]
            missing = [tokens[k].text for k in range(last + 1, grown_hi + 1)]
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
        return (
            any(ch.isalnum() for ch in t.text)
            and not edge(k, start=False)
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
            value = sc.score(entity, text[tokens[lo].start : tokens[hi].end], label).raw
            if value is not None and (grown is None or value > grown[0]):
                grown = (value, lo, hi)
    if grown is not None and grown[0] >= cfg.extent_min and grown[0] >= base + cfg.extent_gain:
        _, lo, hi = grown
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
    return None


#: Universal POS tags that do not end a name: a span ending in one ran into the sentence.
_NOT_NAME_END = frozenset({"VERB", "AUX", "ADP", "PART", "CCONJ", "SCONJ", "PRON", "ADV", "DET"})


def _not_name_end(token: Token) -> bool:
    """A tagged function word or verb, in a script whose tagger is trusted for it (dictionary
    segmenters of Han text tag characters of names as verbs: 本能寺之变, 佐世保市)."""
    return token.pos in _NOT_NAME_END and all(
        script_of(ch) not in _UNSPACED for ch in token.text
    )


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
