"""`python -m eval.score`: the command line, run as a subprocess and through `main`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eval.score import main

ROOT = Path(__file__).resolve().parents[2]


def _record(rid: str, text: str, label: str | None, spans: list[tuple[str, str]],
            lang: str = "ja", task: str = "SCNM", **meta: Any) -> dict[str, Any]:
    out, cursor = [], 0
    for span, span_label in spans:
        start = text.index(span, cursor)
        out.append({"start": start, "end": start + len(span), "text": span, "label": span_label})
        cursor = start + 1
    return {"id": rid, "lang": lang, "task": task, "text": text, "label": label,
            "spans": out, "relations": [], "meta": meta}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


# g1 right except that the pred writes ＡＢＣ社 full-width (NFKC makes it equal): TL ok, TP 2.
# g2 (zh, TCONER): right label, pred misses 北京 and adds 上海 as 地名: TP 0, FP 1, FN 1.
# g3 (ja, SCNM): no prediction: TL wrong, FN 1, ALL wrong.
GOLD = [
    _record("g1", "ABC社は東京にある。", "技術", [("ABC社", "法人名"), ("東京", "地名")]),
    _record("g2", "他去了北京。", "旅行", [("北京", "地名")], lang="zh", task="TCONER"),
    _record("g3", "ｿﾆｰが発表した。", "技術", [("ｿﾆｰ", "法人名")]),
]
PRED = [
    _record("g1", "ＡＢＣ社は東京にある。", "技術", [("ＡＢＣ社", "法人名"), ("東京", "地名")]),
    _record("g2", "他去了上海。", "旅行", [("上海", "地名")], lang="zh", task="TCONER"),
    _record("extra", "余分。", "技術", []),
]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval.score", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


def test_score_cli_json(tmp_path: Path) -> None:
    gold, pred = _write(tmp_path / "gold.jsonl", GOLD), _write(tmp_path / "pred.jsonl", PRED)
    out_json = tmp_path / "out" / "scores.json"
    proc = run_cli("--pred", pred, "--gold", gold, "--json", out_json)
    assert proc.returncode == 0, proc.stderr
    assert "overall" in proc.stdout and "法人名" in proc.stdout
    out = json.loads(out_json.read_text("utf-8"))
    # TL: g1, g2 right of 3 -> 2/3.  ALL: g1 only -> 1/3.
    # WL: TP 2, FP 1, FN 2 -> P 2/3, R 1/2, F1 = 2*2/(4+1+2) = 4/7.
    expected = {"tl_accuracy": 2 / 3, "wl_precision": 2 / 3, "wl_recall": 0.5,
                "wl_f1": 4 / 7, "all_accuracy": 1 / 3}
    for key, value in expected.items():
        assert out[key] == pytest.approx(value), key
        assert 0.0 <= out[key] <= 1.0
    assert (out["n"], out["missing_predictions"], out["extra_predictions"]) == (3, 1, 1)
    assert set(out["by_lang"]) == {"ja", "zh"}
    assert set(out["by_task"]) == {"SCNM", "TCONER"}
    # zh: TP 0, FP 1, FN 1 -> WL all 0, TL 1/1.
    assert out["by_lang"]["zh"]["wl_f1"] == 0.0 and out["by_lang"]["zh"]["tl_accuracy"] == 1.0
    # 法人名: g1 TP 1, g3 FN 1 -> P 1, R 1/2, support 2.
    assert out["by_label"]["法人名"]["recall"] == pytest.approx(0.5)
    assert out["by_label"]["法人名"]["support"] == 2


def test_score_cli_empty_predictions(tmp_path: Path) -> None:
    gold, pred = _write(tmp_path / "gold.jsonl", GOLD), _write(tmp_path / "pred.jsonl", [])
    out_json = tmp_path / "scores.json"
    proc = run_cli("--pred", pred, "--gold", gold, "--json", out_json)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(out_json.read_text("utf-8"))
    assert (out["missing_predictions"], out["matched"], out["wl_fn"]) == (3, 0, 4)
    for key in ("tl_accuracy", "wl_precision", "wl_recall", "wl_f1", "all_accuracy"):
        assert out[key] == 0.0


def test_score_cli_duplicate_prediction_id_names_file_and_lines(tmp_path: Path) -> None:
    gold = _write(tmp_path / "gold.jsonl", GOLD)
    pred = tmp_path / "pred.jsonl"
    rows = [PRED[0], PRED[1], PRED[0]]
    pred.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    proc = run_cli("--pred", pred, "--gold", gold)
    assert proc.returncode == 1
    assert f"{pred}:3: record 'g1'" in proc.stderr
    assert "duplicate id" in proc.stderr and "line 1" in proc.stderr


def test_score_main_bad_record_names_file_and_line(tmp_path: Path, capsys: Any) -> None:
    gold = _write(tmp_path / "gold.jsonl", GOLD)
    bad = dict(PRED[0], text="別の文。")  # span text no longer matches the text
    pred = _write(tmp_path / "pred.jsonl", [PRED[1], bad])
    assert main(["--pred", str(pred), "--gold", str(gold)]) == 1
    assert f"{pred}:2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--gold", "g.jsonl"], ["--pred", "p.jsonl"], ["--refs", "r.jsonl"], []]
)
def test_score_main_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_score_main_refs(tmp_path: Path) -> None:
    preds = [
        _record("s1-zh", "我爱北京天安门", None, [], lang="zh", source_id="s1"),
        _record("s2-zh", "我爱北京天安门", None, [], lang="zh", source_id="s2"),
        _record("s3-zh", "没有参考", None, [], lang="zh", source_id="s3"),
    ]
    refs = [
        {"id": "s1", "lang": "zh", "text": "我爱北京天安门"},
        {"id": "s2", "lang": "zh", "text": "我爱上海天安门"},
        {"id": "s1", "lang": "en", "text": "I love Beijing"},
    ]
    pred = _write(tmp_path / "pred.jsonl", preds)
    ref_path = _write(tmp_path / "refs.jsonl", refs)
    out_json = tmp_path / "mt.json"
    assert main(["--pred", str(pred), "--refs", str(ref_path), "--json", str(out_json)]) == 0
    mt = json.loads(out_json.read_text("utf-8"))["mt"]
    assert set(mt) == {"zh"}
    assert (mt["zh"]["n"], mt["zh"]["unmatched"], mt["zh"]["bleu_tokenize"]) == (2, 1, "zh")
    assert 0.0 < mt["zh"]["bleu"] < 100.0 and 0.0 < mt["zh"]["chrf"] < 100.0


def test_score_main_duplicate_reference(tmp_path: Path, capsys: Any) -> None:
    pred = _write(tmp_path / "pred.jsonl", PRED)
    refs = [{"id": "g1", "lang": "ja", "text": "a"}, {"id": "g1", "lang": "ja", "text": "b"}]
    ref_path = _write(tmp_path / "refs.jsonl", refs)
    assert main(["--pred", str(pred), "--refs", str(ref_path)]) == 1
    assert f"{ref_path}:2: record 'g1': duplicate reference" in capsys.readouterr().err


def test_score_main_run(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "run"
    _write_dir = run / "en"
    _write_dir.mkdir(parents=True)
    _write(_write_dir / "accepted.jsonl", [
        _record("a1-en", "Tokyo and Osaka", None, [("Tokyo", "地名")],
                lang="en", source_id="a1", source_spans=2, attempts=2),
    ])
    (run / "report.json").write_text(json.dumps({"llm": {"calls": 4, "cost_usd": 0.02}}))
    out_json = tmp_path / "p.json"
    assert main(["--run", str(run), "--json", str(out_json)]) == 0
    projection = json.loads(out_json.read_text("utf-8"))["projection"]
    # 1 projected of 2 source spans; 4 calls for 1 accepted record.
    assert projection["projected_share"] == 0.5
    assert projection["calls_per_accepted"] == 4.0
    assert "per accepted record" in capsys.readouterr().out
