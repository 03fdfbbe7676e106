"""The three export formats: hf (data files; the card is ``eval.export.card``), mmm, conll."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.export.card import dataset_card
from eval.export.rows import hf_row, language_features, parallel_features, parallel_row
from eval.export.run import (
    PARALLEL,
    SPLITS,
    Config,
    ExportError,
    Run,
    source_id_of,
    split_of,
    task_slug,
)
from mre.record import Record
from mre.tasks import Task

log = logging.getLogger(__name__)

# the MMM release's language names in file names (mre.io reads them back)
MMM_LANG_NAMES = {"en": "En", "zh": "Ch", "ja": "Ja"}


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _by_split(
    records: Iterable[Record], fractions: Sequence[float], key: Any = source_id_of
) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r in records:
        out[split_of(key(r), fractions)].append(r)
    return out


def write_hf(run: Run, out: Path, fractions: Sequence[float]) -> dict[str, Any]:
    """The Hugging Face layout (data files + README.md card); returns the summary."""
    tasks = run.tasks
    configs: list[Config] = []
    for lang in run.targets:
        per_lang = Config(lang, {}, {}, language_features())
        per_task = {t: Config(f"{lang}-{task_slug(t)}", {}, {}, language_features()) for t in tasks}
        for task in tasks:
            rows = [r for r in run.accepted[lang] if r.task is task]
            for split, part in _by_split(rows, fractions).items():
                if not part:
                    continue
                rel = f"data/{lang}/{task_slug(task)}/{split}.jsonl"
                n = _write_jsonl(out / rel, (hf_row(r) for r in part))
                for cfg in (per_lang, per_task[task]):
                    cfg.files.setdefault(split, []).append(rel)
                    cfg.rows[split] = cfg.rows.get(split, 0) + n
        configs.append(per_lang)
        if len(tasks) > 1:
            configs += per_task.values()
    parallel, left_out = _write_parallel(run, out, fractions)
    configs.append(parallel)
    empty = [c.name for c in configs if not c.files]
    if empty:
        log.warning("configs with no accepted record are left out: %s", ", ".join(empty))
    configs = [c for c in configs if c.files]
    summary = _summary(run, "hf", fractions, configs, parallel_left_out=left_out)
    (out / "README.md").write_text(dataset_card(run, configs, summary), encoding="utf-8")
    return summary


def _write_parallel(
    run: Run, out: Path, fractions: Sequence[float]
) -> tuple[Config, dict[str, int]]:
    """The parallel view: one row per source record accepted in every target language."""
    if run.sources is None:
        raise ExportError("the parallel view needs the source records (--input FILE)")
    source_lang = run.source_lang or "source"
    langs = [source_lang, *run.targets]
    cfg = Config(PARALLEL, {}, {}, parallel_features(langs))
    by_target = {lang: {source_id_of(r): r for r in rows} for lang, rows in run.accepted.items()}
    left_out: Counter[str] = Counter()
    rows: dict[tuple[Task, str], list[dict[str, Any]]] = {}
    for source in run.sources.values():
        found = {lang: by_target[lang].get(source.id) for lang in run.targets}
        present = {lang: r for lang, r in found.items() if r is not None}
        if not present:
            continue
        if len(present) < len(found):
            left_out["not_accepted_in_every_target"] += 1
            continue
        row = parallel_row(source, present)
        if row is None:
            left_out["spans_not_matched"] += 1
            continue
        rows.setdefault((source.task, split_of(source.id, fractions)), []).append(row)
    for task in Task:
        for split in SPLITS:
            part = rows.get((task, split))
            if not part:
                continue
            rel = f"data/{PARALLEL}/{task_slug(task)}/{split}.jsonl"
            cfg.files.setdefault(split, []).append(rel)
            cfg.rows[split] = cfg.rows.get(split, 0) + _write_jsonl(out / rel, part)
    return cfg, dict(left_out)


def _summary(
    run: Run,
    fmt: str,
    fractions: Sequence[float],
    configs: Sequence[Config] = (),
    *,
    files: Mapping[str, int] | None = None,
    parallel_left_out: Mapping[str, int] | None = None,
    problems: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format": fmt,
        "run": str(run.dir),
        "input": run.source_path,
        "source_lang": run.source_lang,
        "targets": run.targets,
        "tasks": [t.value for t in run.tasks],
        "split": dict(zip(SPLITS, fractions, strict=True)),
        "split_key": "sha256(source_id)",
        "accepted": {lang: len(rows) for lang, rows in run.accepted.items()},
        "rejected": {
            lang: {"records": rej.n, "reasons": dict(sorted(rej.reasons.items()))}
            for lang, rej in run.rejected.items()
        },
    }
    if configs:
        out["configs"] = {c.name: {"rows": c.rows, "files": c.files} for c in configs}
    if files is not None:
        out["files"] = dict(files)
    if parallel_left_out is not None:
        out["parallel_left_out"] = dict(parallel_left_out)
    if problems is not None:
        out["conll_problems"] = dict(problems)
    return out


def write_mmm(run: Run, out: Path, fractions: Sequence[float]) -> dict[str, Any]:
    """OIELLM (input, output) pairs, one JSON list per split, language and task."""
    from mre.oiellm import encode

    files: dict[str, int] = {}
    for lang in run.targets:
        name = MMM_LANG_NAMES.get(lang, lang.capitalize())
        for task in run.tasks:
            rows = [r for r in run.accepted[lang] if r.task is task]
            for split, part in _by_split(rows, fractions).items():
                if not part:
                    continue
                pairs = []
                for r in part:
                    model_input, output = encode(r)
                    pairs.append({"input": model_input, "output": output})
                rel = f"{split.capitalize()}_{name}_{task_slug(task)}_dataset.json"
                (out / rel).write_text(
                    json.dumps(pairs, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
                )
                files[rel] = len(pairs)
    return _summary(run, "mmm", fractions, files=files)


def write_conll(run: Run, out: Path, fractions: Sequence[float]) -> dict[str, Any]:
    """The BIO export (``mre.conll``) per language and split; the spans the tokens cannot
    represent exactly are counted in the summary and logged."""
    from mre.conll import write_conll as conll

    files: dict[str, int] = {}
    problems: Counter[str] = Counter()
    for lang in run.targets:
        for split, part in _by_split(run.accepted[lang], fractions).items():
            if not part:
                continue
            rel = f"{lang}/{split}.conll"
            found = conll(part, out / rel, lang)
            for p in found:
                log.info("%s: %s", rel, p)
                problems[p.kind] += 1
            files[rel] = len(part)
    return _summary(run, "conll", fractions, files=files, problems=problems)
