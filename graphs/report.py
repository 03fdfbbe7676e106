"""`DIR/report.json`: counts, findings, attempts, LLM calls, tokens, cost, speed.

Everything but the speed figures comes from the output lines (`RunOutputs.done`: what the
files held at start plus what this run wrote), so the report of a resumed run covers the
whole run without reading the files again.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphs.outputs import Done

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
    counts: dict[str, dict[str, int]] = {}
    findings: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    usage: Counter[str] = Counter()
    per_source: dict[str, dict[str, str]] = defaultdict(dict)
    source_spans = projected_spans = 0
    lines: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (_, lang), d in done.items():
        lines[(lang, d.status)].append(d.line)
    for lang in targets:
        accepted = lines[(lang, "accepted")]
        rejected = lines[(lang, "rejected")]
        counts[lang] = {"accepted": len(accepted), "rejected": len(rejected)}
        for rec in accepted:
            meta = rec.get("meta", {})
            per_source[str(meta.get("source_id"))][lang] = "accepted"
            attempts[str(meta.get("attempts", 1))] += 1
            usage.update(meta.get("usage", {}))
            for codes in meta.get("history", []):
                findings.update(codes)
            source_spans += len(rec.get("spans", []))
            projected_spans += len(rec.get("spans", []))
        for line in rejected:
            per_source[str(line.get("key"))][lang] = "rejected"
            attempts[str(line.get("attempts", 0))] += 1
            usage.update(line.get("usage", {}))
            reasons.update(line.get("reasons", []))
            history = line.get("history") or [[f["code"] for f in line.get("findings", [])]]
            for codes in history:
                findings.update(codes)
            source = line.get("source")
            if isinstance(source, dict):
                source_spans += len(source.get("spans", []) or [])
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
    meaning = meaning_sections(lines, targets)
    review_usage: Counter[str] = Counter()
    for (_, _status), group in lines.items():
        for line in group:
            review_usage.update(line.get("meta", {}).get("review_usage") or line.get("review_usage") or {})
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
        "attempts": dict(sorted(attempts.items(), key=lambda kv: int(kv[0]))),
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
            "calls_per_pair": round(review_usage["calls"] / max(1, sum(len(g) for g in lines.values())), 4),
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


def meaning_sections(
    lines: Mapping[tuple[str, str], list[dict[str, Any]]], targets: list[str]
) -> dict[str, Any]:
    """`checks`: pairs each check flagged at least once, by final status; `evidence`: the
    distribution of evidence scores of accepted spans per target and label (unknown counted
    apart); `inconsistent_entities`: source entities accepted with several translations."""
    from agents.memory import inconsistent_entities, pairs_of

    checks: dict[str, dict[str, int]] = {c: {"accepted": 0, "rejected": 0} for c in CHECK_CODES}
    evidence: dict[str, dict[str, Any]] = {}
    rows: Counter[tuple[str, str, str]] = Counter()
    for lang in targets:
        for status in ("accepted", "rejected"):
            for line in lines.get((lang, status), []):
                history = (line.get("meta", {}) if status == "accepted" else line).get("history") or []
                for code in {c for codes in history for c in codes} & set(CHECK_CODES):
                    checks[code][status] += 1
        per_label: dict[str, list[float | None]] = defaultdict(list)
        for rec in lines.get((lang, "accepted"), []):
            meta = rec.get("meta", {})
            for e in meta.get("evidence", []):
                per_label[str(e.get("label"))].append(e.get("score"))
            for source, text in pairs_of(meta):
                rows[(lang, source, text)] += 1
        evidence[lang] = {label: _distribution(scores) for label, scores in sorted(per_label.items())}
    inconsistent = inconsistent_entities((t, s, x, n) for (t, s, x), n in sorted(rows.items()))
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
