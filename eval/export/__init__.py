"""Publishable datasets from a translation run (DESIGN contract 5).

``python -m eval.export RUN_DIR --to DIR [--format hf|mmm|conll] [--split 0.8/0.1/0.1]
[--input FILE]``

- **hf** (the default): a directory that ``datasets.load_dataset(DIR, "<lang>")`` loads.
  One config per target language (``en``, ``zh``, ...), and per language and task
  (``en-SCNM``, ...) when the run has several tasks; fixed columns ``id``, ``source_id``,
  ``lang``, ``task``, ``text``, ``label``, ``spans`` [{start, end, text, label}],
  ``relations`` [{head, label, tail}], ``verification`` {attempts, checks_passed, notes,
  retried_for, evidence [{span, label, score, kind}]} and ``meta`` (the row's whole ``meta``
  as a JSON string, so that free-form meta never changes the column types). A ``parallel``
  config has one row per source record accepted in every target: its text and label in
  every language and, for each source span, the matching span in each language (through
  the run's ``meta.span_map``). ``README.md`` is the dataset card: YAML ``configs`` and
  ``dataset_info.features``, the source dataset and its license, the model and endpoint,
  the verification figures of ``report.json``, the rejected records, and how offsets are
  defined. Files: ``data/<lang>/<TASK>/<split>.jsonl``, ``data/parallel/<TASK>/<split>.jsonl``.
- **mmm**: the MMM paper's release format, OIELLM (input, output) pairs
  (``mre.oiellm.encode``) as one JSON list per split, language and task:
  ``<Split>_<Lang>_<TASK>_dataset.json`` (``Train_En_SCNM_dataset.json``), which
  ``mre.io.read_records(fmt="mmm")`` reads back.
- **conll**: the BIO export of ``mre.conll``, ``<lang>/<split>.conll``.

Every format writes ``export.json``: what was exported where, per split and language, the
rejected records (not exported) with their reasons, and the spans that CoNLL could not
represent exactly.

Splits are made by a stable hash of ``source_id`` (SHA-256), so every translation of one
source record, and its parallel row, lands in the same split in every language: nothing
leaks across languages. A split that gets no record is left out of the configs
(``datasets`` cannot load an empty split). The source records (for the parallel view) are
read from ``report.json``'s input path, or ``--input``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from eval.export.run import DEFAULT_SPLIT, PARALLEL, ExportError, load_run, parse_split, split_of
from eval.export.writers import write_conll, write_hf, write_mmm

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SPLIT", "PARALLEL", "ExportError", "export", "main", "split_of"]

Format = Literal["hf", "mmm", "conll"]
SUMMARY = "export.json"


WRITERS = {"hf": write_hf, "mmm": write_mmm, "conll": write_conll}


def export(
    run_dir: str | Path,
    to: str | Path,
    *,
    fmt: Format = "hf",
    split: str = DEFAULT_SPLIT,
    input_path: str | None = None,
) -> dict[str, Any]:
    """Export `run_dir` to `to` in format `fmt`; returns the summary (also ``export.json``).

    The export is built in a temporary directory next to `to` and moved into place, so `to`
    is either the old export or the new one. An existing `to` is replaced only when it is an
    earlier export (it has ``export.json``) or empty.
    """
    if fmt not in WRITERS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(WRITERS)}")
    fractions = parse_split(split)
    run = load_run(run_dir, input_path=input_path, sources=fmt == "hf")
    out = Path(to)
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SUMMARY).is_file())
    ):
        raise ExportError(
            f"--to {out}: exists and is not an earlier export; choose another directory"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".export-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        summary = WRITERS[fmt](run, tmp, fractions)
        summary["to"] = str(out)
        (tmp / SUMMARY).write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        if out.exists():
            old = out.with_name(out.name + ".export-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.export",
        description="Export a translation run as a publishable dataset.",
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run", help="a graphs.translate run directory (report.json, <lang>/accepted.jsonl)"
    )
    p.add_argument("--to", required=True, help="the dataset directory to write")
    p.add_argument(
        "--format", default="hf", choices=list(WRITERS), help="hf (default), mmm or conll"
    )
    p.add_argument(
        "--split",
        default=DEFAULT_SPLIT,
        help="train/validation/test fractions (default 0.8/0.1/0.1)",
    )
    p.add_argument(
        "--input", default=None, help="the run's source records (default: report.json's input path)"
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        summary = export(
            args.run, args.to, fmt=args.format, split=args.split, input_path=args.input
        )
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parts = summary.get("configs") or summary.get("files") or {}
    rejected = sum(r["records"] for r in summary["rejected"].values())
    print(
        f"exported {sum(summary['accepted'].values())} accepted records ({rejected} rejected not "
        f"exported) as {args.format} to {args.to}: "
        + ", ".join(
            f"{name} {sum(v['rows'].values()) if isinstance(v, dict) else v}"
            for name, v in parts.items()
        )
    )
    return 0
