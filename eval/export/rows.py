"""The rows of the hf layout and their features (the card's ``dataset_info``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.export.run import source_id_of
from mre.record import Record, Span

MODEL_DISAGREEMENT = "model_disagreement"  # agents.findings.Code.MODEL_DISAGREEMENT


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return []


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def verification(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The ``verification`` column: what the run's account of a pair (its ``meta``) says.

    ``checks_passed``: the verifier stages the accepted attempt passed: ``form`` and
    ``cross_target`` always (an accepted record passed both), ``meaning`` when the row
    carries entity evidence, ``model_check`` when the model check ran on the pair (it
    flagged an earlier attempt, or ``meta.model_check`` says so). ``retried_for``: the
    finding codes of the failed attempts; ``notes``: the info findings of the accepted one.
    Shapes that differ from the runner's are read leniently (unknown parts left empty).
    """
    history = meta.get("history")
    history = history if isinstance(history, list) else []
    codes = [_strings(h) for h in history]
    attempts = _number(meta.get("attempts"), int) or max(len(codes), 1)
    evidence = []
    raw = meta.get("evidence")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        label, kind = item.get("label"), item.get("kind")
        evidence.append(
            {
                "span": _number(item.get("span"), int),
                "label": label if isinstance(label, str) else None,
                "score": _number(item.get("score"), float),
                "kind": kind if isinstance(kind, str) else None,
            }
        )
    checks = ["form", "cross_target"]
    if isinstance(raw, list):
        checks.append("meaning")
    if any(MODEL_DISAGREEMENT in c for c in codes) or meta.get("model_check"):
        checks.append("model_check")
    return {
        "attempts": attempts,
        "checks_passed": checks,
        "notes": sorted(set(_strings(meta.get("notes")))),
        "retried_for": sorted({c for attempt in codes[:-1] for c in attempt}),
        "evidence": evidence,
    }


def _span(s: Span) -> dict[str, Any]:
    return {"start": s.start, "end": s.end, "text": s.text, "label": s.label}


def hf_row(record: Record) -> dict[str, Any]:
    """One row of a language config (the fixed columns)."""
    return {
        "id": record.id,
        "source_id": source_id_of(record),
        "lang": record.lang,
        "task": record.task.value,
        "text": record.text,
        "label": record.label,
        "spans": [_span(s) for s in record.spans],
        "relations": [{"head": r.head, "label": r.label, "tail": r.tail} for r in record.relations],
        "verification": verification(record.meta),
        "meta": json.dumps(record.meta, ensure_ascii=False, sort_keys=True),
    }


def source_span_order(record: Record, n_source: int) -> list[Span] | None:
    """`record`'s spans in source-span order (``meta.span_map[i]`` is the source span of
    target span i), or None when the map is missing or does not cover every source span once."""
    span_map = record.meta.get("span_map")
    if not isinstance(span_map, list) or len(span_map) != len(record.spans):
        return None
    if sorted(span_map) != list(range(n_source)):
        return None
    ordered: list[Span | None] = [None] * n_source
    for i, j in enumerate(span_map):
        ordered[j] = record.spans[i]
    return [s for s in ordered if s is not None]


def parallel_row(source: Record, targets: Mapping[str, Record]) -> dict[str, Any] | None:
    """One row of the parallel view, or None when a target's spans cannot be matched."""
    langs = {source.lang: source.spans}
    for lang, record in targets.items():
        ordered = source_span_order(record, len(source.spans))
        if ordered is None:
            return None
        langs[lang] = ordered
    records = {source.lang: source, **targets}
    return {
        "source_id": source.id,
        "task": source.task.value,
        "text": {lang: records[lang].text for lang in langs},
        "label": {lang: records[lang].label for lang in langs},
        "spans": [
            {lang: _span(langs[lang][j]) for lang in langs} for j in range(len(source.spans))
        ],
    }


# ---- features (the card's dataset_info) ----------------------------------------------------

SPAN_FEATURES = [
    {"name": "start", "dtype": "int32"},
    {"name": "end", "dtype": "int32"},
    {"name": "text", "dtype": "string"},
    {"name": "label", "dtype": "string"},
]


def language_features() -> list[dict[str, Any]]:
    """The fixed columns of a language config, in the YAML form of ``datasets.Features``."""
    return [
        {"name": "id", "dtype": "string"},
        {"name": "source_id", "dtype": "string"},
        {"name": "lang", "dtype": "string"},
        {"name": "task", "dtype": "string"},
        {"name": "text", "dtype": "string"},
        {"name": "label", "dtype": "string"},
        {"name": "spans", "list": SPAN_FEATURES},
        {
            "name": "relations",
            "list": [
                {"name": "head", "dtype": "int32"},
                {"name": "label", "dtype": "string"},
                {"name": "tail", "dtype": "int32"},
            ],
        },
        {
            "name": "verification",
            "struct": [
                {"name": "attempts", "dtype": "int32"},
                {"name": "checks_passed", "list": "string"},
                {"name": "notes", "list": "string"},
                {"name": "retried_for", "list": "string"},
                {
                    "name": "evidence",
                    "list": [
                        {"name": "span", "dtype": "int32"},
                        {"name": "label", "dtype": "string"},
                        {"name": "score", "dtype": "float64"},
                        {"name": "kind", "dtype": "string"},
                    ],
                },
            ],
        },
        {"name": "meta", "dtype": "string"},
    ]


def parallel_features(langs: Sequence[str]) -> list[dict[str, Any]]:
    """The parallel view's columns: per-language text, label and (per source span) span."""
    return [
        {"name": "source_id", "dtype": "string"},
        {"name": "task", "dtype": "string"},
        {"name": "text", "struct": [{"name": lang, "dtype": "string"} for lang in langs]},
        {"name": "label", "struct": [{"name": lang, "dtype": "string"} for lang in langs]},
        {"name": "spans", "list": [{"name": lang, "struct": SPAN_FEATURES} for lang in langs]},
    ]
