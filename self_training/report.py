"""The run's reports: ``RUN/round-NN/report.json`` per round and ``RUN/report.json`` (and,
through ``eval.report``, ``RUN/report.md`` with plots), all built from the state."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from self_training.config import SelfTrainConfig
from self_training.files import round_dir, write_json
from self_training.policy import best_round, improved
from self_training.state import LoopState, RoundState

log = logging.getLogger(__name__)


def _dump(model: Any, **kwargs: Any) -> dict[str, Any]:
    return {} if model is None else dict(model.model_dump(mode="json", **kwargs))


def round_report(state: LoopState, cfg: SelfTrainConfig, r: int) -> dict[str, Any]:
    """Round `r`'s figures: acceptance, findings, the model check and what it flipped, the
    pool, the training, the gold scores and the calibration."""
    s = state.rounds.get(r, RoundState())
    tr, ev = s.translate, s.eval
    scores = state.scores(cfg.stop_metric)
    return {
        "round": r,
        "done": list(s.done()),
        "records": tr.records if tr else None,
        "accepted": tr.accepted if tr else None,
        "rejected": tr.rejected if tr else None,
        "acceptance": tr.acceptance if tr else None,
        "by_target": tr.by_target if tr else {},
        "findings": tr.findings if tr else {},
        "rejection_reasons": tr.rejection_reasons if tr else {},
        "llm_calls": tr.llm_calls if tr else None,
        "model_check": _dump(tr.model_check, exclude={"flipped"}) if tr else {},
        "flipped": _dump(tr.model_check.flipped) if tr else {},
        "pool": _dump(s.pool),
        "train": _dump(s.train),
        "gold": _dump(ev.gold) if ev else {},
        "calibration": _dump(ev.calibration) if ev else {},
        "stop_metric": cfg.stop_metric,
        "improved": improved(scores, r, cfg.min_improvement),
    }


def run_report(state: LoopState, cfg: SelfTrainConfig, run: Path, n_gold: int) -> dict[str, Any]:
    """The whole run: every round's report, the best round, why the loop stopped."""
    scores = state.scores(cfg.stop_metric)
    best = best_round(scores)
    return {
        "run": str(run),
        "stop_metric": cfg.stop_metric,
        "best_round": best,
        "best_score": scores[best - 1] if best else None,
        "stopped": _dump(state.stopped) or None,
        "input": _dump(state.input),
        "gold": {"files": cfg.gold_files, "n": n_gold},
        "rounds": [round_report(state, cfg, r) for r in sorted(state.rounds)],
    }


def write_reports(state: LoopState, cfg: SelfTrainConfig, run: Path, n_gold: int) -> dict[str, Any]:
    """Write every round's report.json, the run's report.json and (``cfg.report``) report.md."""
    report = run_report(state, cfg, run, n_gold)
    for rep in report["rounds"]:
        write_json(round_dir(run, rep["round"]) / "report.json", rep)
    write_json(run / "report.json", report)
    if cfg.report:
        from eval.report import write_markdown_report

        try:
            write_markdown_report(run)
        except ImportError as err:  # matplotlib missing: the JSON report is still there
            log.warning("report.md not written: %s", err)
    return report


def summary_lines(report: dict[str, Any], out_dir: str) -> list[str]:
    """The lines the command prints at the end: one per round, then why it stopped."""
    lines = []
    for rep in report["rounds"]:
        gold = rep["gold"]
        lines.append(
            f"round {rep['round']}: acceptance {rep['acceptance'] or 0:.3f}, pool "
            f"{rep['pool'].get('size')}, gold TL {gold.get('tl_accuracy', 0):.3f} WL-F1 "
            f"{gold.get('wl_f1', 0):.3f} ALL {gold.get('all_accuracy', 0):.3f}, flipped "
            f"{rep['flipped'].get('records', 0)}"
        )
    stop = report["stopped"]
    lines.append(f"stopped after round {stop['after_round']}: {stop['reason']}; report: {out_dir}")
    return lines
