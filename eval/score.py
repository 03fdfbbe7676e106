"""`python -m eval.score`: score predictions against gold, translations against references,
and a translation run's projection.

    python -m eval.score --pred PRED.jsonl --gold GOLD.jsonl [--json OUT.json]
    python -m eval.score --pred PRED.jsonl --refs REFS.jsonl       # chrF / BLEU only
    python -m eval.score --run DIR                                  # projection metrics only

The options combine. `--pred` and `--gold` are canonical JSONL records matched by `id`
(metric definitions in `eval.metrics`), read by `mre.io.read_records(strict=True)`: a bad
line or a duplicate `id` in either file is an error that names the file and the line.
`--refs` is JSONL `{"id", "lang", "text"}`, matched as described in `eval.mt` (by id, else
by `meta.source_id`, within one language; a repeated (id, lang) is an error). `--run` reads a
`graphs.translate` output directory (`eval.projection`).

Prints tables; `--json` writes the figures: with `--gold`, the keys of
`eval.metrics.Scores.to_dict()` at top level (`tl_accuracy`, `wl_precision`, `wl_recall`,
`wl_f1`, `all_accuracy` as fractions in [0, 1], the counts and `by_lang`, `by_task`,
`by_lang_task`, `by_label`); with `--refs`, `mt` ({lang: {chrf, bleu, ...}} on sacrebleu's
0-100 scale); with `--run`, `projection`. Exit status 1 with a message on a bad file.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import score
from eval.mt import score_translations
from eval.projection import load_records, run_metrics
from mre.errors import MREError, RecordError


def read_refs(path: Path) -> dict[tuple[str, str], str]:
    """References keyed by (id, lang); bad lines and repeated keys are RecordErrors."""
    refs: dict[tuple[str, str], str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key = (str(obj["id"]), str(obj["lang"]))
                text = obj["text"]
            except (ValueError, KeyError, TypeError) as err:
                raise RecordError(
                    f'expected {{"id", "lang", "text"}}: {err!r}', path=str(path), line=lineno
                ) from err
            if not isinstance(text, str):
                raise RecordError("text must be a string", path=str(path), line=lineno)
            if key in refs:
                raise RecordError(
                    f"duplicate reference for lang {key[1]!r}",
                    path=str(path),
                    line=lineno,
                    record_id=key[0],
                )
            refs[key] = text
    return refs


def _pct(x: float) -> str:
    return f"{100 * x:6.1f}"


def _ljust(text: str, width: int) -> str:
    """Pad to `width` display columns (wide and full-width characters take 2), at least 1."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - shown)


def format_scores(result: dict[str, Any]) -> str:
    """The TL / WL / ALL table (percentages) of a `Scores.to_dict()`."""
    head = f"{'scope':<24}{'n':>6}{'TL':>7}{'tl_n':>6}{'WL-P':>7}{'WL-R':>7}{'WL-F1':>7}{'ALL':>7}"
    rows = [head, "-" * len(head)]

    def row(name: str, g: dict[str, Any]) -> str:
        tl = _pct(g["tl_accuracy"]) if g["tl_n"] else "-"  # no labelled gold record
        return (
            f"{_ljust(name, 24)}{g['n']:>6}{tl:>7}{g['tl_n']:>6}"
            f"{_pct(g['wl_precision']):>7}{_pct(g['wl_recall']):>7}{_pct(g['wl_f1']):>7}"
            f"{_pct(g['all_accuracy']):>7}"
        )

    rows.append(row("overall", result))
    for key in ("by_lang", "by_task", "by_lang_task"):
        for name, g in result[key].items():
            rows.append(row(name, g))
    rows.append(
        f"missing predictions: {result['missing_predictions']}, "
        f"extra predictions (ignored): {result['extra_predictions']}"
    )
    if result["by_label"]:
        rows.append("")
        lhead = f"{'label':<24}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}"
        rows += [lhead, "-" * len(lhead)]
        for name, c in result["by_label"].items():
            rows.append(
                f"{_ljust(name, 24)}{_pct(c['precision']):>7}{_pct(c['recall']):>7}"
                f"{_pct(c['f1']):>7}{c['support']:>9}"
            )
    return "\n".join(rows)


def format_mt(mt: dict[str, dict[str, Any]]) -> str:
    head = f"{'lang':<8}{'chrF':>8}{'BLEU':>8}{'tok':>6}{'n':>6}{'no ref':>8}"
    rows = [head, "-" * len(head)]
    for lang, m in mt.items():
        rows.append(
            f"{lang:<8}{m['chrf']:>8.2f}{m['bleu']:>8.2f}{m['bleu_tokenize']:>6}"
            f"{m['n']:>6}{m['unmatched']:>8}"
        )
    return "\n".join(rows)


def format_projection(p: dict[str, Any]) -> str:
    head = f"{'lang':<8}{'accepted':>10}{'rejected':>10}{'spans':>12}{'projected':>11}"
    rows = [head, "-" * len(head)]
    for lang, m in [*p["languages"].items(), ("all", p)]:
        rows.append(
            f"{lang:<8}{m['accepted']:>10}{m['rejected']:>10}"
            f"{m['projected_spans']:>6}/{m['source_spans']:<5}{_pct(m['projected_share']):>10}%"
        )
    rows.append(f"attempts ({p['attempts_from']}): {p['attempts']}")
    rows.append(f"findings ({p['findings_from']}): {p['findings']}")
    llm = p["llm"]
    rows.append(
        f"LLM: {llm['calls']} calls, ${llm['cost_usd']:.4f}; per accepted record: "
        f"{p['calls_per_accepted']:.2f} calls, ${p['cost_per_accepted_usd']:.4f}, "
        f"{p['tokens_per_accepted']:.0f} tokens"
    )
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval.score",
        description="Score predictions against gold (TL, WL, ALL), translations against "
        "references (chrF, BLEU) and a translation run's projection.",
    )
    parser.add_argument("--pred", type=Path, help="predicted records (canonical JSONL)")
    parser.add_argument("--gold", type=Path, help="gold records (canonical JSONL)")
    parser.add_argument("--refs", type=Path, help='reference translations, JSONL {"id","lang","text"}')
    parser.add_argument("--run", type=Path, help="a graphs.translate output directory")
    parser.add_argument("--json", type=Path, dest="json_out", help="write the figures here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.gold or args.refs) and not args.pred:
        parser.error("--gold and --refs need --pred")
    if not (args.gold or args.refs or args.run):
        parser.error("nothing to score: give --pred with --gold and/or --refs, or --run")

    out: dict[str, Any] = {}
    tables: list[str] = []
    try:
        preds = load_records(args.pred) if args.pred else []
        if args.gold:
            out.update(score(load_records(args.gold), preds).to_dict())
            tables.append(format_scores(out))
        if args.refs:
            out["mt"] = score_translations(preds, read_refs(args.refs))
            tables.append(format_mt(out["mt"]))
        if args.run:
            out["projection"] = run_metrics(args.run)
            tables.append(format_projection(out["projection"]))
    except (MREError, ValueError, OSError) as err:
        print(f"eval.score: error: {err}", file=sys.stderr)
        return 1
    print("\n\n".join(tables))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
