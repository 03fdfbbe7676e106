"""The verifier's meaning checks: is each marked target span the translation of its source
entity, with the right extent? Built on per-language entity evidence (`agents.evidence`):
swapped entities, substituted names, and spans widened or cut short (`agents.extent`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.aligner import Alignment, Projected
from agents.evidence import POSITIVE, Evidence, EvidenceScorer, scorer, written_by_sound
from agents.extent import extent as span_extent
from agents.findings import Code, Finding
from agents.verifier_config import RunStats, VerifierConfig, feedback
from mre import Record, Span
from word_tokenizers import Language

# ---- meaning: entity evidence ----------------------------------------------------------


def span_evidence(
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
        extent = span_extent(
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


def claimed_spans(
    source: Record,
    source_lang: Language,
    target: Language,
    alignment: Alignment,
    claimed: Mapping[int, str],
    findings: Sequence[Finding],
) -> list[Finding]:
    """A substituted-name doubt for each entity whose span the run has accepted only as the
    translation of another entity (`claimed`: index -> that entity), unless a check already
    found something about the entity, one entity's name holds the other's (アメリカ and
    アメリカ合衆国 are both "United States"), or the evidence says the span reads like it."""
    taken = {f.span for f in findings} | {i for f in findings for i in f.data.get("entities", [])}
    sc = scorer(source_lang, target)
    out = []
    for index, other in sorted(claimed.items()):
        p = alignment.projected.get(index)
        if p is None or index in taken:
            continue
        entity = source.spans[index - 1].text
        if entity in other or other in entity:
            continue
        ev = sc.score(entity, p.text, source.spans[index - 1].label)
        if ev.score is not None and ev.score >= POSITIVE:
            continue
        message = feedback(
            "entity_substituted_claimed", index=index, entity=entity, span=p.text, other=other
        )
        out.append(
            Finding.error(
                Code.ENTITY_SUBSTITUTED, message, span=index, span_text=p.text, other=other
            )
        )
    return out


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
    if ev.score is None:
        return None
    by_sound = written_by_sound(entity)
    below = cfg.substitute_below_phonetic if by_sound else cfg.substitute_below
    gap = cfg.substitute_gap_phonetic if by_sound else cfg.substitute_gap
    if ev.score >= below:
        return None
    median = stats.label_median(target.code, label) if stats is not None else None
    if median is not None and ev.score > median - gap:
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
