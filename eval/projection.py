"""Projection metrics of a translation run (`python -m graphs.translate --out DIR`).

The rows are read with the runner's own models (`graphs.rows.AcceptedRow`, `RejectedRow`) and
counted by the same function as `report.json` (`graphs.rows.run_figures`).

The run layout read here (DESIGN.md contract 3), and the keys used:

- `DIR/<lang>/accepted.jsonl`: canonical records in the target language. Used: `spans`,
  `meta.attempts` (int, optional), `meta.source_spans` (optional: the number of spans of
  the source record, an int, or a list whose length is taken; when absent the record is
  taken as fully projected, i.e. its source had as many spans as it has).
- `DIR/<lang>/rejected.jsonl`: one JSON object a line,
  `{"source": <record>, "target": "en", "draft": <record or null>,
  "findings": [{"code": "...", "message": "...", ...}], "attempts": N}`.
  Used: `source.spans` (required: `source` must be a valid record), `findings[].code` and
  `attempts` (both optional). `draft` and `target` are not used.
- `DIR/report.json` (optional, as is every key in it): `findings` ({code: n}),
  `attempts` ({"1": n, ...}), `counts` (passed through as `report_counts`) and
  `llm.calls`, `llm.prompt_tokens`, `llm.completion_tokens`, `llm.cost_usd`.

A language is any subdirectory of DIR that holds `accepted.jsonl` or `rejected.jsonl`;
either file may be missing (a run in progress).

Metrics (`projection_metrics`, pure):

- `projected_share`: spans in accepted records / spans of the sources of every record
  (accepted and rejected). A rejected record projects nothing; an accepted record projects
  its spans out of `meta.source_spans` (or out of its own count when absent).
- `accept_rate`: accepted / (accepted + rejected).
- `findings`: findings per code. From `report.json` when it has `findings` (the runner's
  full account, including the findings of attempts that were retried and then accepted);
  otherwise counted from the final findings of the rejected lines. `findings_from` says which.
  Per language, `rejected_findings` always counts the rejected lines.
- `attempts`: histogram {"n attempts": records}, the same rule: `report.json` when it has
  `attempts`, else counted from `meta.attempts` of accepted and `attempts` of rejected lines
  (records without the number are left out). Per language, always from the files.
- `calls_per_accepted`, `cost_per_accepted_usd`, `tokens_per_accepted`: the `llm` figures of
  the report divided by the number of accepted records (0.0 when none was accepted).
Zero division gives 0.0; the counts are reported next to every share.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphs import rows
from graphs.rows import ACCEPTED, REJECTED, AcceptedRow, RejectedRow
from mre.record import Record

log = logging.getLogger(__name__)

REPORT = "report.json"
LLM_KEYS = ("calls", "prompt_tokens", "completion_tokens", "cost_usd")


def load_records(path: str | Path) -> list[Record]:
    """Canonical JSONL records of `path`: the one place `eval` reads records.

    `mre.io.read_records(path, fmt="jsonl", strict=True)`: a bad line or a repeated id is a
    RecordError naming the file and the line.
    """
    from mre.io import read_records

    return list(read_records(path, fmt="jsonl", strict=True))


def read_rejected(path: str | Path) -> list[RejectedRow]:
    """The rejected rows of `path`; a line that is not valid is a RecordError with its line."""
    return rows.read_rejected(path)


@dataclass
class Run:
    """What a run directory holds, per target language, plus its report."""

    accepted: dict[str, list[AcceptedRow]] = field(default_factory=dict)
    rejected: dict[str, list[RejectedRow]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def read_run(directory: str | Path) -> Run:
    """Read `DIR/<lang>/{accepted,rejected}.jsonl` and `DIR/report.json` (all optional)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"run directory {root} does not exist")
    run = Run()
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        acc, rej = sub / ACCEPTED, sub / REJECTED
        if not (acc.is_file() or rej.is_file()):
            continue
        run.accepted[sub.name] = rows.read_accepted(acc) if acc.is_file() else []
        run.rejected[sub.name] = read_rejected(rej) if rej.is_file() else []
    report_path = root / REPORT
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        if not isinstance(report, dict):
            raise ValueError(f"{report_path}: expected a JSON object")
        run.report = report
    else:
        log.info("%s has no %s: no LLM figures", root, REPORT)
    return run


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _histogram(counter: Counter[int]) -> dict[str, int]:
    return {str(k): counter[k] for k in sorted(counter)}


def projection_metrics(
    accepted: Mapping[str, Sequence[AcceptedRow]],
    rejected: Mapping[str, Sequence[RejectedRow]],
    report: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Projection metrics of one run (see the module docstring). Pure."""
    report = report or {}
    figures = rows.run_figures(
        [
            *((lang, r) for lang, acc in accepted.items() for r in acc),
            *((lang, x) for lang, rej in rejected.items() for x in rej),
        ]
    )
    languages: dict[str, Any] = {}
    for lang in sorted(figures.languages):
        f = figures.languages[lang]
        languages[lang] = {
            "accepted": f.accepted,
            "rejected": f.rejected,
            "accept_rate": _ratio(f.accepted, f.accepted + f.rejected),
            "source_spans": f.source_spans,
            "projected_spans": f.projected_spans,
            "projected_share": _ratio(f.projected_spans, f.source_spans),
            "attempts": _histogram(f.attempts),
            "rejected_findings": dict(sorted(f.rejected_findings.items())),
        }
    all_attempts: Counter[int] = figures.summed("attempts")
    all_findings: Counter[str] = figures.summed("rejected_findings")
    totals: Counter[str] = Counter(
        {name: figures.total(name) for name in ("accepted", "rejected", "source_spans", "projected_spans")}
    )

    out: dict[str, Any] = {
        "accepted": totals["accepted"],
        "rejected": totals["rejected"],
        "accept_rate": _ratio(totals["accepted"], totals["accepted"] + totals["rejected"]),
        "source_spans": totals["source_spans"],
        "projected_spans": totals["projected_spans"],
        "projected_share": _ratio(totals["projected_spans"], totals["source_spans"]),
    }
    if isinstance(report.get("findings"), Mapping):
        out["findings"] = {str(k): int(v) for k, v in sorted(report["findings"].items())}
        out["findings_from"] = "report"
    else:
        out["findings"] = dict(sorted(all_findings.items()))
        out["findings_from"] = "rejected"
    if isinstance(report.get("attempts"), Mapping):
        items = sorted(report["attempts"].items(), key=lambda kv: int(kv[0]))
        out["attempts"] = {str(k): int(v) for k, v in items}
        out["attempts_from"] = "report"
    else:
        out["attempts"] = _histogram(all_attempts)
        out["attempts_from"] = "files"
    llm_raw = report.get("llm")
    llm_in: Mapping[str, Any] = llm_raw if isinstance(llm_raw, Mapping) else {}
    llm = {key: llm_in.get(key, 0) or 0 for key in LLM_KEYS}
    n_acc = totals["accepted"]
    out["llm"] = llm
    out["calls_per_accepted"] = _ratio(llm["calls"], n_acc)
    out["cost_per_accepted_usd"] = _ratio(llm["cost_usd"], n_acc)
    out["tokens_per_accepted"] = _ratio(llm["prompt_tokens"] + llm["completion_tokens"], n_acc)
    out["report_counts"] = dict(report.get("counts") or {})
    out["languages"] = languages
    return out


def run_metrics(directory: str | Path) -> dict[str, Any]:
    """Read a run directory and compute its projection metrics."""
    run = read_run(directory)
    return projection_metrics(run.accepted, run.rejected, run.report)
