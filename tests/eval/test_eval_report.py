"""`python -m eval.report`: Markdown + PNG plots of self-training and translation run dirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.report import NotARunError, load_rounds, main, write_markdown_report

pytest.importorskip("matplotlib")


def round_report(r: int, *, acceptance: float, tl: float, wl: float, all_: float,
                 flipped: int, findings: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    return {
        "round": r,
        "records": 10,
        "accepted": round(10 * acceptance),
        "rejected": 10 - round(10 * acceptance),
        "acceptance": acceptance,
        "findings": findings,
        "model_check": {"enabled": r > 1, "threshold": 0.42} if r > 1 else {"enabled": False},
        "flipped": {"records": flipped, "rejected": flipped // 2, "accepted_after_retry": flipped - flipped // 2, "attempts": flipped},
        "pool": {"size": 10 * r, "added": 10, "model_verified_share": 0.1 * (r - 1), "held_back": 0,
                 "dropped_gold": {"id": 3, "text": 1}},
        "train": {"records": 10 * r, "steps": 5, "first_loss": 3.0, "last_loss": 1.5},
        "gold": {"n": 8, "tl_accuracy": tl, "wl_f1": wl, "all_accuracy": all_},
        "calibration": {"n": 8, "mean_disagreement": 0.3, "threshold": 0.42},
        "improved": r == 1 or wl > 0.5,
    }  # fmt: skip


def write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


@pytest.fixture
def self_train_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    rounds = [
        round_report(1, acceptance=0.8, tl=0.5, wl=0.25, all_=0.125, flipped=0, findings={"residue": 3}),
        round_report(2, acceptance=0.7, tl=0.625, wl=0.5625, all_=0.25, flipped=4,
                     findings={"residue": 1, "model_disagreement": 5}),
    ]  # fmt: skip
    for rep in reversed(rounds):  # written out of order: the report sorts by round
        write(run / f"round-{rep['round']:02d}" / "report.json", rep)
    write(run / "report.json", {"stopped": {"reason": "max_rounds", "after_round": 2},
                                "stop_metric": "wl_f1", "best_round": 2, "best_score": 0.5625,
                                "gold": {"n": 8, "files": ["gold.jsonl"]}})  # fmt: skip
    return run


@pytest.fixture
def translation_run(tmp_path: Path) -> Path:
    run = tmp_path / "out"
    write(
        run / "report.json",
        {
            "targets": ["en", "zh"],
            "counts": {"en": {"accepted": 7, "rejected": 1}, "zh": {"accepted": 8, "rejected": 0},
                       "total": {"accepted": 15, "rejected": 1}},
            "findings": {"residue": 3, "marker_missing": 2},
            "rejection_reasons": {"residue": 1},
            "attempts": {"1": 13, "2": 2, "3": 1},
            "llm": {"calls": 20, "cache_hits": 1, "prompt_tokens": 100, "completion_tokens": 50,
                    "cost_usd": 0.001, "calls_per_accepted": 1.33},
            "projection": {"share": 0.9},
        },
    )  # fmt: skip
    return run


def test_eval_report_self_train_run(self_train_run: Path) -> None:
    assert [r["round"] for r in load_rounds(self_train_run)] == [1, 2]
    md_path = write_markdown_report(self_train_run)
    assert md_path == self_train_run / "report.md"
    md = md_path.read_text(encoding="utf-8")
    assert "Stopped after round 2: **max_rounds**" in md
    rows = [line for line in md.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    per_round = [r for r in rows if "|" in r and r.count("|") > 10]
    assert len(per_round) == 2
    # round 2: 7/10 accepted, threshold 0.420, 4 flipped (2 rejected / 2 accepted), gold scores
    cells = [c.strip() for c in per_round[1].strip("|").split("|")]
    assert cells[:8] == ["2", "10", "7/10", "70.0", "0.420", "4", "2/2", "20"]
    assert cells[-4:] == ["62.5", "56.2", "25.0", "yes"]
    assert [c.strip() for c in per_round[0].strip("|").split("|")][4] == "off"
    assert "| model_disagreement | 0 | 5 |" in md and "| residue | 3 | 1 |" in md
    for png in ("rounds.png", "findings.png"):
        assert f"(plots/{png})" in md
        assert (self_train_run / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_report_translation_run(translation_run: Path) -> None:
    md = write_markdown_report(translation_run).read_text(encoding="utf-8")
    assert "| en | 7 | 1 | 87.5 |" in md
    assert "| total | 15 | 1 | 93.8 |" in md
    assert "| residue | 3 | 1 |" in md and "| marker_missing | 2 | 0 |" in md
    assert "1: 13, 2: 2, 3: 1" in md
    assert (translation_run / "plots" / "findings.png").read_bytes()[:4] == b"\x89PNG"
    assert not (translation_run / "plots" / "rounds.png").exists()


@pytest.mark.parametrize("kind", ["self_train_run", "translation_run"])
def test_eval_report_cli_writes_to_out(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = request.getfixturevalue(kind)
    out = tmp_path / "elsewhere" / "r.md"
    assert main([str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file() and (out.parent / "plots" / "findings.png").is_file()


@pytest.mark.parametrize("content", [None, {"counts": {}}])
def test_eval_report_not_a_run(tmp_path: Path, content: Any, capsys: pytest.CaptureFixture[str]) -> None:
    if content is not None:
        write(tmp_path / "report.json", content)
    with pytest.raises(NotARunError, match="neither"):
        write_markdown_report(tmp_path)
    assert main([str(tmp_path)]) == 1
    assert "neither a self-training run" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 1
