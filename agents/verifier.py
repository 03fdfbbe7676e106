"""The verifier: deterministic checks first, then an optional model check; returns a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from agents.aligner import Alignment
from agents.findings import Code, Finding, Severity
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


class ModelCheck(Protocol):
    """The seam for a model check (the trained OIELLM): findings about a projected record."""

    def __call__(self, record: Record) -> list[Finding]: ...


@dataclass(frozen=True)
class VerifierConfig:
    """Thresholds of the deterministic checks."""

    min_length_ratio: float = 0.4
    max_length_ratio: float = 2.5
    min_source_chars_for_ratio: int = 12


@dataclass
class Verdict:
    decision: Decision
    findings: list[Finding]
    record: Record | None = None  # the projected record, when every span landed
    span_map: list[int] = field(default_factory=list)  # target span i -> source span index


def build_record(source: Record, target: Language, alignment: Alignment, labels: LabelMap) -> tuple[Record, list[int]] | None:
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
) -> list[Finding]:
    """The deterministic checks over an alignment."""
    cfg = config or VerifierConfig()
    findings: list[Finding] = []
    text = alignment.text
    if not text.strip():
        return [Finding.error(Code.EMPTY_TRANSLATION, "the translation is empty")]
    findings += _residue(text, source_lang, target)
    findings += _length(source.text, text, source_lang, target, cfg)
    findings += _boundaries(alignment)
    allowed = SCPOS_POS_CLASSES.get(source.task)
    if allowed:
        findings += _pos(alignment, allowed)
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
) -> Verdict:
    """Verdict on one attempt. `earlier` are the translator's and aligner's findings."""
    findings = [*earlier, *check(source, source_lang, target, alignment, config=config)]
    built = build_record(source, target, alignment, labels)
    record, span_map = built if built is not None else (None, [])
    if record is not None and model_check is not None and not _blocking(findings):
        findings += model_check(record)
    return Verdict(
        decision=decide(findings, attempt=attempt, max_attempts=max_attempts),
        findings=findings,
        record=record,
        span_map=span_map,
    )


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
    return [
        Finding.error(
            Code.RESIDUE,
            f"the {target.name} translation still contains {source_lang.name} script: {shown}; "
            f"write these in {target.name}",
            residue=runs,
        )
    ]


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
    return [
        Finding.error(
            Code.LENGTH_RATIO,
            f"the translation looks too {what}: {len(text)} characters for a source of "
            f"{len(source_text)} (ratio {ratio:.2f} of the usual length); translate the whole "
            "text, nothing more",
            ratio=round(ratio, 3),
        )
    ]


def _boundaries(alignment: Alignment) -> list[Finding]:
    out: list[Finding] = []
    tokens = alignment.tokens
    if not tokens:
        return out
    for index, p in sorted(alignment.projected.items()):
        if on_boundaries(tokens, p.start, p.end):
            continue
        cut = [t for t in tokens if t.start < p.start < t.end or t.start < p.end < t.end]
        unspaced = all(
            all(script_of(ch) in _UNSPACED or not ch.isalnum() for ch in t.text) for t in cut
        )
        make = Finding.info if unspaced else Finding.error
        out.append(
            make(
                Code.SPAN_NOT_ON_TOKENS,
                f"entity {index} {p.text!r} cuts the word(s) "
                f"{', '.join(repr(t.text) for t in cut)}; mark whole words",
                span=index,
            )
        )
    return out


def _pos(alignment: Alignment, allowed: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    for index, p in sorted(alignment.projected.items()):
        inside: list[Token] = [
            t for t in alignment.tokens if t.start < p.end and t.end > p.start
        ]
        tags = sorted({t.pos for t in inside})
        if inside and not any(t.pos in allowed for t in inside):
            out.append(
                Finding.error(
                    Code.POS_MISMATCH,
                    f"entity {index} {p.text!r} is tagged {'/'.join(tags)}, but the task needs "
                    f"{'/'.join(sorted(allowed))}; translate it with a word of that class",
                    span=index,
                    pos=tags,
                )
            )
    return out
