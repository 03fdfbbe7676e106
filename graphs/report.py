"""`DIR/report.json`: counts, findings, attempts, LLM calls, tokens, cost, speed.

Everything but the speed figures comes from the output rows (`RunOutputs.done`: what the
files held at start plus what this run wrote) through `graphs.rows.run_figures`, so the
report of a resumed run covers the whole run without reading the files again.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphs.outputs import Done
from graphs.rows import run_figures

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
        "wall_s": round(wall, 3),
        "pairs_this_run": pairs,
        "records_per_s": round(pairs / len(targets) / wall, 3) if wall > 0 else None,
        "pairs_per_s": round(pairs / wall, 3) if wall > 0 else None,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
