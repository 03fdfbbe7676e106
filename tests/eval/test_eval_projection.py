"""eval.projection: metrics of a translation run directory, hand-computed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.projection import read_rejected, run_metrics
from mre.errors import RecordError


def _record(rid: str, lang: str, text: str, spans: list[str], **meta: Any) -> dict[str, Any]:
    out, cursor = [], 0
    for span in spans:
        start = text.index(span, cursor)
        out.append({"start": start, "end": start + len(span), "text": span, "label": "地名"})
        cursor = start + len(span)
    return {"id": rid, "lang": lang, "task": "SCNM", "text": text, "label": None,
            "spans": out, "relations": [], "meta": meta}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


REPORT = {
    "counts": {"accepted": 3, "rejected": 1},
    "findings": {"missing_span": 4, "residue": 1},
    "llm": {"calls": 9, "prompt_tokens": 900, "completion_tokens": 300, "cost_usd": 0.03},
}


def make_run(root: Path, report: dict[str, Any] | None) -> Path:
    # en: a1 projects 2 of 3 source spans, a2 has no meta.source_spans (fully projected: 1 of
    #     1), r1 is rejected with a 2-span source -> 3 projected of 3 + 1 + 2 = 6 -> 0.5.
    _write_jsonl(root / "en" / "accepted.jsonl", [
        _record("a1-en", "en", "Tokyo and Osaka", ["Tokyo", "Osaka"],
                source_id="a1", source_spans=3, attempts=1),
        _record("a2-en", "en", "Kyoto", ["Kyoto"], source_id="a2", attempts=2),
    ])
    _write_jsonl(root / "en" / "rejected.jsonl", [{
        "source": _record("r1", "ja", "東京と大阪", ["東京", "大阪"]),
        "target": "en",
        "draft": None,
        "findings": [{"code": "missing_span", "message": "span 2"}, {"code": "residue"}],
        "attempts": 3,
    }])
    # zh: one accepted record, source_spans given as a list of 2 -> 2 of 2; no rejected file.
    _write_jsonl(root / "zh" / "accepted.jsonl", [
        _record("a1-zh", "zh", "东京和大阪", ["东京", "大阪"],
                source_id="a1", source_spans=[0, 1], attempts=1),
    ])
    (root / "checkpoints").mkdir()  # not a language: ignored
    if report is not None:
        (root / "report.json").write_text(json.dumps(report), "utf-8")
    return root


def test_projection_with_report(tmp_path: Path) -> None:
    out = run_metrics(make_run(tmp_path, REPORT))
    assert set(out["languages"]) == {"en", "zh"}
    en, zh = out["languages"]["en"], out["languages"]["zh"]
    assert (en["projected_spans"], en["source_spans"], en["projected_share"]) == (3, 6, 0.5)
    assert (zh["projected_spans"], zh["source_spans"], zh["projected_share"]) == (2, 2, 1.0)
    assert en["accept_rate"] == pytest.approx(2 / 3)
    assert en["attempts"] == {"1": 1, "2": 1, "3": 1}
    assert en["rejected_findings"] == {"missing_span": 1, "residue": 1}
    # all: 5 projected of 8 = 0.625; 3 accepted, 1 rejected.
    assert (out["projected_spans"], out["source_spans"]) == (5, 8)
    assert out["projected_share"] == pytest.approx(0.625)
    assert (out["accepted"], out["rejected"], out["accept_rate"]) == (3, 1, 0.75)
    # findings come from the report (which counts retried attempts too); attempts from files.
    assert (out["findings"], out["findings_from"]) == (REPORT["findings"], "report")
    assert (out["attempts"], out["attempts_from"]) == ({"1": 2, "2": 1, "3": 1}, "files")
    # 9 calls / 3 accepted = 3; $0.03 / 3 = $0.01; (900 + 300) / 3 = 400 tokens.
    assert out["calls_per_accepted"] == pytest.approx(3.0)
    assert out["cost_per_accepted_usd"] == pytest.approx(0.01)
    assert out["tokens_per_accepted"] == pytest.approx(400.0)
    assert out["report_counts"] == REPORT["counts"]


@pytest.mark.parametrize(
    ("report", "findings", "findings_from", "attempts", "attempts_from", "calls"),
    [
        # no report.json: findings from the rejected lines, attempts from files, no LLM figures.
        (None, {"missing_span": 1, "residue": 1}, "rejected", {"1": 2, "2": 1, "3": 1}, "files", 0),
        # a report with only some keys: the rest falls back.
        ({"attempts": {"2": 5, "1": 7}, "llm": {"calls": 6}}, {"missing_span": 1, "residue": 1},
         "rejected", {"1": 7, "2": 5}, "report", 6),
    ],
)
def test_projection_tolerates_missing_report_keys(
    tmp_path: Path,
    report: dict[str, Any] | None,
    findings: dict[str, int],
    findings_from: str,
    attempts: dict[str, int],
    attempts_from: str,
    calls: int,
) -> None:
    out = run_metrics(make_run(tmp_path, report))
    assert (out["findings"], out["findings_from"]) == (findings, findings_from)
    assert (out["attempts"], out["attempts_from"]) == (attempts, attempts_from)
    assert out["llm"]["calls"] == calls
    assert out["calls_per_accepted"] == pytest.approx(calls / 3)
    assert out["cost_per_accepted_usd"] == 0.0


def test_projection_empty_run_is_zero(tmp_path: Path) -> None:
    out = run_metrics(tmp_path)
    assert (out["accepted"], out["projected_share"], out["calls_per_accepted"]) == (0, 0.0, 0.0)
    assert out["languages"] == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "Expecting value"),
        ('{"target": "en"}', 'expected an object with a "source" record'),
        ('{"source": {"id": "x"}}', "validation error"),
    ],
)
def test_projection_bad_rejected_line_names_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    good = {"source": _record("r1", "ja", "東京", ["東京"]), "findings": [], "attempts": 1}
    path = tmp_path / "rejected.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + line + "\n", "utf-8")
    with pytest.raises(RecordError, match=message) as info:
        read_rejected(path)
    assert (info.value.path, info.value.line) == (str(path), 3)


def test_projection_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_metrics(tmp_path / "nope")
