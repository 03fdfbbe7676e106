"""`DIR/report.json`: counts, findings, attempts, LLM calls, tokens, cost, speed.

Everything but the speed figures comes from the output rows (`RunOutputs.done`: what the
files held at start plus what this run wrote) through `graphs.rows.run_figures`, so the
report of a resumed run covers the whole run without reading the files again.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.translator import Usage
from graphs.outputs import Done
from graphs.rows import AcceptedRow, run_figures

#: USD per million tokens (input, output). Override with --prices FILE.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
    "gpt-3.5-turbo": {"input": 0.50, "output": 1.50},
    "replay": {"input": 0.0, "output": 0.0},
}


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, prices: dict[str, dict[str, float]]) -> float | None:
    table = {**DEFAULT_PRICES, **prices}
    price = table.get(model)
    if price is None:
        return None
    return round(
        (prompt_tokens * price.get("input", 0.0) + completion_tokens * price.get("output", 0.0))
        / 1_000_000,
        6,
    )


def build_report(
    done: Mapping[tuple[str, str], Done],
    targets: list[str],
    *,
    run: dict[str, Any],
    prices: dict[str, dict[str, float]],
) -> dict[str, Any]:
    figures = run_figures(((lang, d.row) for (_, lang), d in done.items()), targets)
    per_source = figures.per_source
    counts = {
        lang: {"accepted": figures.languages[lang].accepted, "rejected": figures.languages[lang].rejected}
        for lang in targets
    }
    findings: Counter[str] = figures.summed("findings")
    reasons: Counter[str] = figures.summed("reasons")
    attempts: Counter[int] = figures.summed("attempts")
    usage: Counter[str] = figures.summed("usage")
    source_spans = figures.total("source_spans")
    projected_spans = figures.total("projected_spans")
    total = {
        "accepted": sum(c["accepted"] for c in counts.values()),
        "rejected": sum(c["rejected"] for c in counts.values()),
    }
    split = [
        {"id": key, "targets": states}
        for key, states in sorted(per_source.items())
        if len(set(states.values())) > 1
    ]
    model = str(run.get("model", ""))
    cost = cost_usd(model, usage["prompt_tokens"], usage["completion_tokens"], prices)
    pairs = int(run.get("pairs_this_run", 0))
    wall = float(run.get("wall_s", 0.0))
    accepted_total = max(1, total["accepted"])
    rows = [(lang, d) for (_, lang), d in done.items()]
    meaning = meaning_sections(rows, targets)
    review_usage: Counter[str] = Counter()
    for _, d in rows:
        review_usage.update(_review_usage(d).model_dump())
    review_cost = cost_usd(
        model, review_usage["prompt_tokens"], review_usage["completion_tokens"], prices
    )
    return {
        "targets": targets,
        "model": model,
        "input": run.get("input", {}),
        "records": len(per_source),
        "counts": {**counts, "total": total},
        "findings": dict(sorted(findings.items())),
        "rejection_reasons": dict(sorted(reasons.items())),
        "attempts": {str(k): attempts[k] for k in sorted(attempts)},
        "llm": {
            "calls": usage["calls"],
            "cache_hits": usage["cache_hits"],
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "cost_usd": cost,
            "calls_per_accepted": round(usage["calls"] / accepted_total, 4),
            "cost_per_accepted_usd": None if cost is None else round(cost / accepted_total, 8),
            "this_run": run.get("usage_this_run", {}),
        },
        "projection": {
            "source_spans": source_spans,
            "projected_spans": projected_spans,
            "share": round(projected_spans / source_spans, 4) if source_spans else None,
        },
        "cross_target": {
            "all_accepted": sum(
                1 for s in per_source.values() if len(s) == len(targets) and set(s.values()) == {"accepted"}
            ),
            "all_rejected": sum(
                1 for s in per_source.values() if len(s) == len(targets) and set(s.values()) == {"rejected"}
            ),
            "split": len(split),
            "split_records": split[:200],
        },
        "review": {
            "calls": review_usage["calls"],
            "cache_hits": review_usage["cache_hits"],
            "prompt_tokens": review_usage["prompt_tokens"],
            "completion_tokens": review_usage["completion_tokens"],
            "cost_usd": review_cost,
            "calls_per_pair": round(review_usage["calls"] / max(1, len(rows)), 4),
        },
        **meaning,
        "wall_s": round(wall, 3),
        "pairs_this_run": pairs,
        "records_per_s": round(pairs / len(targets) / wall, 3) if wall > 0 else None,
        "pairs_per_s": round(pairs / wall, 3) if wall > 0 else None,
    }


#: Finding codes of the checks counted in `checks` (form and meaning).
CHECK_CODES = (
    "residue", "length_ratio", "span_not_on_tokens", "pos_mismatch", "entity_swapped",
    "entity_substituted", "span_widened", "span_cut_short", "content_dropped", "review_rejected",
    "review_repaired", "doubt_kept",
)  # fmt: skip


def _review_usage(done: Done) -> Usage:
    row = done.row
    usage = row.meta.review_usage if isinstance(row, AcceptedRow) else row.review_usage
    return usage or Usage()


def _history(done: Done) -> list[list[str]]:
    row = done.row
    return row.meta.history if isinstance(row, AcceptedRow) else row.history


def meaning_sections(rows: Sequence[tuple[str, Done]], targets: list[str]) -> dict[str, Any]:
    """`checks`: pairs each check flagged at least once, by final status; `evidence`: the
    distribution of evidence scores of accepted spans per target and label (unknown counted
    apart); `inconsistent_entities`: source entities accepted with several translations."""
    from agents.memory import inconsistent_entities, pairs_of

    checks: dict[str, dict[str, int]] = {c: {"accepted": 0, "rejected": 0} for c in CHECK_CODES}
    per_label: dict[str, dict[str, list[float | None]]] = {t: defaultdict(list) for t in targets}
    translations: Counter[tuple[str, str, str]] = Counter()
    for lang, done in rows:
        codes = {c for attempt in _history(done) for c in attempt} & set(CHECK_CODES)
        for code in codes:
            checks[code][done.status] += 1
        row = done.row
        if not isinstance(row, AcceptedRow):
            continue
        meta = row.meta.model_dump(mode="json")
        for e in meta.get("evidence") or []:
            per_label.setdefault(lang, defaultdict(list))[str(e.get("label"))].append(e.get("score"))
        for source, text in pairs_of(meta):
            translations[(lang, source, text)] += 1
    evidence = {
        lang: {label: _distribution(scores) for label, scores in sorted(labels.items())}
        for lang, labels in per_label.items()
    }
    inconsistent = inconsistent_entities((t, s, x, n) for (t, s, x), n in sorted(translations.items()))
    return {
        "checks": checks,
        "evidence": evidence,
        "inconsistent_entities": {"count": len(inconsistent), "entities": inconsistent[:200]},
    }


def _distribution(scores: list[float | None]) -> dict[str, Any]:
    known = sorted(s for s in scores if s is not None)
    bins = [0] * 10
    for s in known:
        bins[min(9, int(s * 10))] += 1
    def q(p: float) -> float | None:
        return round(known[int(p * (len(known) - 1))], 3) if known else None

    return {
        "spans": len(scores),
        "unknown": len(scores) - len(known),
        "mean": round(sum(known) / len(known), 3) if known else None,
        "p10": q(0.1),
        "p50": q(0.5),
        "p90": q(0.9),
        "histogram": bins,  # counts of scores in [0, 0.1), [0.1, 0.2), ..., [0.9, 1]
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
