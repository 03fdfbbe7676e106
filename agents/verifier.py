"""The verifier: deterministic checks first, then an optional model check; returns a verdict."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from agents.aligner import Alignment, Projected
from agents.coverage import clause_coverage, expected_length, log_residual, missing_clause
from agents.findings import Code, Finding, Severity
from agents.meaning import best_assignment, claimed_spans, meaning_checks, span_evidence
from agents.translator import LabelMap
from agents.verifier_config import UNCERTAIN, UNSPACED_SCRIPTS, RunStats, VerifierConfig, feedback
from mre import SCPOS_POS_CLASSES, Record, Span, sort_spans
from word_tokenizers import Language, Token
from word_tokenizers.scripts import residue, script_of
from word_tokenizers.spans import on_boundaries

__all__ = [
    "UNCERTAIN",
    "Decision",
    "ModelCheck",
    "RunStats",
    "Verdict",
    "VerifierConfig",
    "best_assignment",
    "build_record",
    "check",
    "decide",
    "feedback",
    "meaning_checks",
    "uncertain",
    "verify",
]


class Decision(StrEnum):
    ACCEPT = "accept"
    RETRY = "retry"
    REJECT = "reject"
    REVIEW = "review"  # ask the reviewer agent before deciding


class ModelCheck(Protocol):
    """The seam for a model check (the trained OIELLM): findings about a projected record."""

    def __call__(self, record: Record) -> list[Finding]: ...


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
    claimed: Mapping[int, str] | None = None,
    learn: bool = True,
) -> Verdict:
    """Verdict on one attempt. `earlier` are the translator's and aligner's findings;
    `previous` the verifier's findings on the attempt before (an uncertain finding the
    translator answered with the same span is kept as a note); `vouched` are entities a
    reviewer judged correct or whose span the run accepted before (uncertain findings about
    them become notes); `claimed` maps an entity to another source entity whose accepted
    translation its span is (a substituted name, when this entity has no finding of its own).
    An accepted answer adds its length ratio and evidence scores to `stats` when `learn`."""
    cfg = config or VerifierConfig()
    checked = check(source, source_lang, target, alignment, config=cfg, stats=stats)
    if claimed and cfg.meaning:
        checked += claimed_spans(source, source_lang, target, alignment, claimed, checked)
    checked = _settle_doubts(checked, previous, vouched)
    findings = [*earlier, *checked]
    built = build_record(source, target, alignment, labels)
    record, span_map = built if built is not None else (None, [])
    if record is not None and model_check is not None and not _blocking(findings):
        findings += model_check(record)
    decision = decide(findings, attempt=attempt, max_attempts=max_attempts)
    if record is not None and cfg.meaning:
        scores = span_evidence(source, source_lang, target, alignment)
        record.meta["evidence"] = scores
        if decision == Decision.ACCEPT and stats is not None and learn:
            stats.add(
                target.code,
                _log_ratio(source.text, alignment.text, source_lang, target, cfg),
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
                why = "a reviewer, or the run's translation memory, vouched for it"
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


def _log_ratio(
    source_text: str, text: str, source_lang: Language, target: Language, cfg: VerifierConfig
) -> float | None:
    """log(length / expected length) of a translation (`agents.coverage`), or None where the
    source is too short to say."""
    if len(source_text) < cfg.min_source_chars_for_ratio or not text:
        return None
    return log_residual(source_text, text, source_lang, target)


def _dropped(
    source_text: str,
    text: str,
    source_lang: Language,
    target: Language,
    cfg: VerifierConfig,
    stats: RunStats | None,
) -> list[Finding]:
    """A source clause the translation has none of (Han coverage), or a translation much shorter
    than expected: a doubt (retried once with feedback)."""
    found = clause_coverage(source_text, text, source_lang, target) or []
    clause = missing_clause(
        found,
        min_han=cfg.coverage_min_han,
        max_coverage=cfg.coverage_max,
        rest_min=cfg.coverage_rest_min,
    )
    if clause is not None:
        message = feedback("content_dropped_clause", clause=clause.text)
        coverage = round(clause.coverage, 2)
        return [
            Finding.error(
                Code.CONTENT_DROPPED,
                message,
                length=len(text),
                clause=clause.text,
                coverage=coverage,
            )
        ]
    return _short(source_text, text, source_lang, target, cfg, stats)


def _short(
    source_text: str,
    text: str,
    source_lang: Language,
    target: Language,
    cfg: VerifierConfig,
    stats: RunStats | None,
) -> list[Finding]:
    """A translation much shorter than expected: judged against the prior spread until the run
    has `dropped_min_samples` accepted answers into `target`, then against the run's own."""
    log_ratio = _log_ratio(source_text, text, source_lang, target, cfg)
    if log_ratio is None or len(source_text) < cfg.dropped_min_source_chars:
        return []
    seen = stats.ratios.get(target.code, ()) if stats is not None else ()
    if stats is not None and len(seen) >= cfg.dropped_min_samples:
        z = stats.ratio_z(
            target.code, log_ratio, 0.0, cfg.dropped_prior_scale, cfg.dropped_min_samples
        )
        limit = cfg.dropped_run_z
    else:
        z, limit = log_ratio / cfg.dropped_prior_scale, cfg.dropped_prior_z
    if z >= limit:
        return []
    expected = round(expected_length(source_text, source_lang, target))
    message = feedback(Code.CONTENT_DROPPED, length=len(text), expected=expected)
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
            all(script_of(ch) in UNSPACED_SCRIPTS or not ch.isalnum() for ch in t.text) for t in cut
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
