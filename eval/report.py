"""`python -m eval.report RUN_DIR`: a Markdown report with PNG plots of a run directory.

Two kinds of run directory:

- a **self-training run** (`self_training`: `RUN/round-NN/report.json`): a table per
  round (acceptance, pool, model-verified share, held back by the cap, records the model check
  flipped, gold TL / WL-F1 / ALL, model-check threshold), `plots/rounds.png` (gold TL, WL-F1,
  ALL and acceptance per round) and `plots/findings.png` (findings per code, one bar per
  round);
- a **translation run** (`graphs.translate --out DIR`: `DIR/report.json` with `findings`):
  counts and acceptance per target, attempts, rejection reasons, LLM usage, and
  `plots/findings.png` (findings over every attempt, and the final rejection reasons).

Writes `RUN_DIR/report.md` (or `--out FILE`) and its plots in `plots/` next to it; prints the
path. matplotlib (Agg backend) is imported inside the plotting functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GOLD_METRICS = (("tl_accuracy", "TL"), ("wl_f1", "WL-F1"), ("all_accuracy", "ALL"))


class NotARunError(ValueError):
    """The directory holds neither a self-training run nor a translation run."""


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def load_rounds(run: Path) -> list[dict[str, Any]]:
    """The round reports of a self-training run, in round order ([] for another run)."""
    rounds = [_json(p) for p in sorted(run.glob("round-*/report.json"))]
    return sorted(rounds, key=lambda rep: int(rep.get("round", 0)))


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


# ---- plots --------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rounds(rounds: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Gold TL / WL-F1 / ALL and acceptance (percent) per round."""
    plt = _pyplot()
    xs = [int(r["round"]) for r in rounds]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, name in GOLD_METRICS:
        ys = [100 * float(r.get("gold", {}).get(key) or 0.0) for r in rounds]
        ax.plot(xs, ys, marker="o", label=f"gold {name}")
    acc = [100 * float(r.get("acceptance") or 0.0) for r in rounds]
    ax.plot(xs, acc, marker="s", linestyle="--", label="acceptance")
    ax.set_xlabel("round")
    ax.set_ylabel("%")
    ax.set_xticks(xs)
    ax.set_ylim(-2, 102)
    ax.set_title("self-training: gold scores and acceptance per round")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_findings(series: Mapping[str, Mapping[str, int]], path: Path, title: str) -> Path:
    """A grouped horizontal bar chart: one group per finding code, one bar per series."""
    plt = _pyplot()
    codes = sorted({c for counts in series.values() for c in counts})
    from matplotlib.ticker import MaxNLocator

    rows = max(1, len(codes)) * max(1, len(series))
    fig, ax = plt.subplots(figsize=(7, min(12.0, max(2.5, 1.5 + 0.25 * rows))))
    if not codes:
        ax.text(0.5, 0.5, "no findings", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        height = 0.8 / max(1, len(series))
        for i, (name, counts) in enumerate(series.items()):
            ys = [j + i * height for j in range(len(codes))]
            ax.barh(ys, [counts.get(c, 0) for c in codes], height=height, label=name)
        ax.set_yticks([j + 0.4 - height / 2 for j in range(len(codes))])
        ax.set_yticklabels(codes)
        ax.invert_yaxis()
        ax.set_xlabel("count")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(series) > 1:
            ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- Markdown -----------------------------------------------------------------------------


def self_train_markdown(
    run: Path, rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], plots: Path, rel: str
) -> list[str]:
    lines = [f"# Self-training report: `{run}`", ""]
    stop = summary.get("stopped") or {}
    metric = summary.get("stop_metric", "wl_f1")
    if stop:
        lines.append(f"Stopped after round {stop.get('after_round')}: **{stop.get('reason')}**.")
    if summary.get("best_round"):
        lines.append(
            f"Best round by gold `{metric}`: {summary['best_round']} "
            f"({_pct(summary.get('best_score'))} %)."
        )
    gold = summary.get("gold") or {}
    if gold:
        lines.append(f"Frozen gold set: {gold.get('n')} records ({', '.join(gold.get('files', []))}).")
    lines += ["", "## Per round", ""]
    rows = []
    for r in rounds:
        pool, flipped, g = r.get("pool", {}), r.get("flipped", {}), r.get("gold", {})
        check = r.get("model_check", {})
        threshold = f"{check['threshold']:.3f}" if check.get("enabled") else "off"
        rows.append(
            [
                r.get("round"),
                r.get("records", "–"),
                f"{r.get('accepted', '–')}/{(r.get('accepted') or 0) + (r.get('rejected') or 0)}",
                _pct(r.get("acceptance")),
                threshold,
                flipped.get("records", 0),
                f"{flipped.get('rejected', 0)}/{flipped.get('accepted_after_retry', 0)}",
                pool.get("size", "–"),
                pool.get("added", "–"),
                _pct(pool.get("model_verified_share")),
                pool.get("held_back", "–"),
                sum((pool.get("dropped_gold") or {}).values()),
                _pct(g.get("tl_accuracy")),
                _pct(g.get("wl_f1")),
                _pct(g.get("all_accuracy")),
                {True: "yes", False: "no"}.get(r.get("improved"), "–"),  # type: ignore[arg-type]
            ]
        )
    lines += _table(
        [
            "round", "records", "accepted/pairs", "acceptance %", "check threshold", "flipped",
            "flipped → rejected/accepted", "pool", "added", "model-verified %", "held back",
            "gold dropped", "TL %", "WL-F1 %", "ALL %", "improved",
        ],
        rows,
    )  # fmt: skip
    lines += [
        "",
        "- *check threshold*: the model check's calibrated threshold (the previous round's "
        "model); *flipped*: pairs where an attempt passed the rule checks and failed the model "
        "check, then rejected / accepted after a retry;",
        "- *model-verified %*: share of the pool accepted with the model check on (capped); "
        "*gold dropped*: records of the gold set kept out of training.",
        "",
        f"![gold scores and acceptance per round]({rel}/rounds.png)",
        "",
        "## Findings per round",
        "",
        f"![findings per round]({rel}/findings.png)",
        "",
    ]
    codes = sorted({c for r in rounds for c in r.get("findings", {})})
    if codes:
        lines += _table(
            ["code", *(f"round {r['round']}" for r in rounds)],
            [[c, *(r.get("findings", {}).get(c, 0) for r in rounds)] for c in codes],
        )
        lines.append("")
    lines += ["## Training", ""]
    lines += _table(
        ["round", "pool records", "steps", "first loss", "last loss", "calibrated on", "mean disagreement"],
        [
            [
                r.get("round"),
                r.get("train", {}).get("records", "–"),
                r.get("train", {}).get("steps", "–"),
                _num(r.get("train", {}).get("first_loss")),
                _num(r.get("train", {}).get("last_loss")),
                r.get("calibration", {}).get("n", "–"),
                _num(r.get("calibration", {}).get("mean_disagreement")),
            ]
            for r in rounds
        ],
    )
    lines.append("")
    return lines


def _num(x: Any) -> str:
    return "–" if x is None else f"{float(x):.4f}"


def translation_markdown(run: Path, report: Mapping[str, Any], rel: str) -> list[str]:
    lines = [f"# Translation report: `{run}`", ""]
    counts = report.get("counts", {})
    targets = list(report.get("targets") or [k for k in counts if k != "total"])
    rows = []
    for t in [*targets, "total"]:
        c = counts.get(t, {})
        acc, rej = int(c.get("accepted", 0)), int(c.get("rejected", 0))
        rows.append([t, acc, rej, _pct(acc / (acc + rej)) if acc + rej else "–"])
    lines += _table(["target", "accepted", "rejected", "acceptance %"], rows)
    attempts = report.get("attempts") or {}
    if attempts:
        lines += ["", "Attempts per pair: " + ", ".join(f"{k}: {v}" for k, v in attempts.items())]
    llm = report.get("llm") or {}
    if llm:
        lines += [
            "",
            f"LLM: {llm.get('calls', 0)} calls, {llm.get('cache_hits', 0)} cache hits, "
            f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0)} tokens, "
            f"cost {llm.get('cost_usd')} USD ({llm.get('calls_per_accepted')} calls per accepted).",
        ]
    projection = report.get("projection") or {}
    if projection.get("share") is not None:
        lines.append(f"Projected spans: {_pct(projection['share'])} % of the source spans.")
    lines += ["", "## Findings", "", f"![findings]({rel}/findings.png)", ""]
    findings, reasons = report.get("findings") or {}, report.get("rejection_reasons") or {}
    codes = sorted(set(findings) | set(reasons))
    if codes:
        lines += _table(
            ["code", "findings (all attempts)", "rejection reason"],
            [[c, findings.get(c, 0), reasons.get(c, 0)] for c in codes],
        )
        lines.append("")
    return lines


def plot_evidence(evidence: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> Path:
    """Stacked histograms of the evidence scores of accepted spans, one panel per target."""
    plt = _pyplot()
    targets = sorted(evidence)
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(5 * max(1, len(targets)), 3.5), squeeze=False)
    edges = [i / 10 for i in range(10)]
    for ax, target in zip(axes[0], targets, strict=False):
        bottom = [0] * 10
        for label, dist in sorted(evidence[target].items()):
            hist = list(dist.get("histogram") or [0] * 10)
            ax.bar(edges, hist, width=0.1, align="edge", bottom=bottom, label=label)
            bottom = [b + h for b, h in zip(bottom, hist, strict=True)]
        unknown = sum(int(d.get("unknown", 0)) for d in evidence[target].values())
        ax.set_title(f"{target}: evidence per span ({unknown} unknown)")
        ax.set_xlabel("score")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def evidence_markdown(report: Mapping[str, Any], rel: str) -> list[str]:
    """The meaning checks of a translation run: per-check counts, evidence per target and
    label, the reviewer's cost and entities translated inconsistently."""
    evidence = report.get("evidence") or {}
    checks = report.get("checks") or {}
    if not evidence and not checks:
        return []
    lines = ["## Meaning checks", ""]
    if checks:
        lines += _table(
            ["check", "pairs flagged, finally accepted", "pairs flagged, finally rejected"],
            [[c, v.get("accepted", 0), v.get("rejected", 0)] for c, v in checks.items()],
        )
        lines.append("")
    if evidence:
        lines += [f"![evidence]({rel}/evidence.png)", ""]
        rows = [
            [t, label, d.get("spans"), d.get("unknown"), _num(d.get("mean")), _num(d.get("p10")),
             _num(d.get("p50")), _num(d.get("p90"))]
            for t, labels in sorted(evidence.items())
            for label, d in sorted(labels.items())
        ]
        lines += _table(["target", "label", "spans", "unknown", "mean", "p10", "p50", "p90"], rows)
        lines.append("")
    review = report.get("review") or {}
    if review.get("calls"):
        lines.append(
            f"Reviewer: {review['calls']} calls ({review.get('calls_per_pair')} per pair), "
            f"{review.get('prompt_tokens', 0) + review.get('completion_tokens', 0)} tokens, "
            f"cost {review.get('cost_usd')} USD."
        )
    inconsistent = (report.get("inconsistent_entities") or {}).get("entities") or []
    if inconsistent:
        lines += ["", "Entities translated inconsistently:", ""]
        lines += _table(
            ["target", "source", "translations"],
            [[e["target"], e["source"], "; ".join(f"{k} ({v})" for k, v in e["translations"].items())]
             for e in inconsistent[:50]],
        )
    lines.append("")
    return lines


def write_markdown_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of `run` (Markdown + PNGs); returns the Markdown path."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} does not exist")
    md = Path(out) if out is not None else run / "report.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    plots = md.parent / "plots"
    plots.mkdir(exist_ok=True)
    rel = "plots"
    rounds = load_rounds(run)
    if rounds:
        summary = _json(run / "report.json") if (run / "report.json").is_file() else {}
        plot_rounds(rounds, plots / "rounds.png")
        plot_findings(
            {f"round {r['round']}": r.get("findings", {}) for r in rounds},
            plots / "findings.png",
            "findings per code, per round (all attempts)",
        )
        lines = self_train_markdown(run, rounds, summary, plots, rel)
    else:
        path = run / "report.json"
        report = _json(path) if path.is_file() else {}
        if "findings" not in report:
            raise NotARunError(
                f"{run} is neither a self-training run (round-NN/report.json) nor a translation "
                "run (report.json with findings)"
            )
        plot_findings(
            {
                "findings (all attempts)": report.get("findings") or {},
                "rejection reasons": report.get("rejection_reasons") or {},
            },
            plots / "findings.png",
            "findings per code",
        )
        lines = translation_markdown(run, report, rel)
        if report.get("evidence"):
            plot_evidence(report["evidence"], plots / "evidence.png")
        lines += evidence_markdown(report, rel)
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m eval.report",
        description="Markdown report with PNG plots of a self-training or translation run dir.",
    )
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--out", type=Path, help="Markdown file (default RUN/report.md)")
    args = p.parse_args(argv)
    try:
        path = write_markdown_report(args.run, args.out)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
