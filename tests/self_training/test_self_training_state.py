"""self_training.state: state.json as pydantic models, readable from the files earlier
versions wrote; self_training.report built from it; self_training.policy's small helpers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from self_training.config import config_from_dict
from self_training.policy import best_round, improved
from self_training.report import round_report, run_report
from self_training.state import STEPS, LoopState, StateError

FLIPPED = {"records": 1, "rejected": 0, "accepted_after_retry": 1, "attempts": 2}


def translate(enabled: bool) -> dict[str, Any]:
    check: dict[str, Any] = {"enabled": enabled}
    if enabled:
        check.update(checkpoint="run/round-01/model/final", threshold=0.25, quantile=0.9)
    check["flipped"] = FLIPPED if enabled else dict.fromkeys(FLIPPED, 0)
    return {
        "records": 6, "accepted": 5, "rejected": 1, "acceptance": 5 / 6,
        "by_target": {"en": {"accepted": 5, "rejected": 1}}, "findings": {"residue": 2},
        "rejection_reasons": {"residue": 1}, "llm_calls": 8, "model_check": check,
    }  # fmt: skip


def pool(size: int) -> dict[str, Any]:
    return {
        "size": size, "previous": 0, "added": size, "seed_added": 6, "translated_added": 5,
        "model_verified": 0, "model_verified_share": 0.0, "cap": 0.25, "held_back": 0,
        "dropped_gold": {"id": 6, "text": 1}, "duplicates": 0,
    }  # fmt: skip


def evaluate(wl_f1: float) -> dict[str, Any]:
    return {
        "gold": {"n": 6, "tl_accuracy": 0.5, "wl_precision": wl_f1, "wl_recall": wl_f1,
                 "wl_f1": wl_f1, "all_accuracy": 0.0},
        "calibration": {"threshold": 0.25, "quantile": 0.9, "n": 6, "mean_disagreement": 0.1},
    }  # fmt: skip


TRAIN = {"records": 11, "steps": 3, "first_loss": 5.1, "last_loss": 4.9, "eval_loss": None,
         "final_dir": "run/round-01/model/final"}  # fmt: skip

# state.json exactly as the loop wrote it before it was split into a package
OLD_STATE: dict[str, Any] = {
    "version": 1,
    "frozen": {"input": "examples/demo.jsonl", "source": "ja", "targets": ["en"],
               "records_per_round": 6, "gold_sha256": "ab" * 32, "calibration_sha256": ""},
    "rounds": {
        "1": {"translate": translate(False), "pool": pool(11), "train": TRAIN, "eval": evaluate(0.2)},
        "2": {"translate": translate(True), "pool": pool(13),
              "train": {**TRAIN, "steps": None, "first_loss": None, "last_loss": None,
                        "launcher": "torchrun --nproc-per-node 8"},
              "eval": evaluate(0.1)},
        "3": {"translate": translate(True)},
    },
    "starts": [{"max_rounds": 1}, {"max_rounds": 3}],
    "input": {"records": 30, "dropped_gold": {"id": 6, "text": 0}},
}  # fmt: skip


def test_self_training_state_reads_and_writes_the_old_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(OLD_STATE), encoding="utf-8")
    state = LoopState.read(path)
    assert [state.rounds[r].done() for r in (1, 2, 3)] == [list(STEPS), list(STEPS), ["translate"]]
    assert state.scores("wl_f1") == [0.2, 0.1]
    assert state.done_rounds() == [1, 2]
    state.write(path)
    assert json.loads(path.read_text(encoding="utf-8")) == OLD_STATE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["rounds"]["1"]["pool"].pop("size"), "size"),
        (lambda s: s["rounds"]["1"].update(translat={}), "translat"),
        (lambda s: s.update(version=2), "state version 2"),
        (lambda s: s["frozen"].update(targets="en"), "targets"),
    ],
)
def test_self_training_state_bad_file_names_the_file(
    tmp_path: Path, change: Any, message: str
) -> None:
    bad = copy.deepcopy(OLD_STATE)
    change(bad)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(StateError, match=message) as err:
        LoopState.read(path)
    assert str(path) in str(err.value)


def test_self_training_report_rounds_from_the_state(tmp_path: Path) -> None:
    state = LoopState.model_validate(OLD_STATE)
    cfg = config_from_dict({"input": "i", "gold_files": ["g"], "stop_metric": "wl_f1"})
    r1, r2, r3 = (round_report(state, cfg, r) for r in (1, 2, 3))
    assert r1["model_check"] == {"enabled": False}
    assert r2["model_check"] == {"enabled": True, "checkpoint": "run/round-01/model/final",
                                 "threshold": 0.25, "quantile": 0.9}  # fmt: skip
    assert r2["flipped"] == FLIPPED and r1["flipped"]["records"] == 0
    assert r1["train"] == TRAIN and r2["train"]["launcher"].startswith("torchrun")
    assert (r1["improved"], r2["improved"], r3["improved"]) == (True, False, None)
    assert r3["done"] == ["translate"] and r3["pool"] == {} and r3["gold"] == {}
    assert r1["gold"]["wl_f1"] == 0.2 and r1["calibration"]["threshold"] == 0.25
    report = run_report(state, cfg, tmp_path, n_gold=6)
    assert (report["best_round"], report["best_score"], report["stopped"]) == (1, 0.2, None)
    assert [r["round"] for r in report["rounds"]] == [1, 2, 3]
    assert report["input"]["dropped_gold"] == {"id": 6, "text": 0}


@pytest.mark.parametrize(
    ("scores", "r", "min_improvement", "expected"),
    [([], 1, 0.0, None), ([0.1], 1, 0.0, True), ([0.1, 0.1], 2, 0.0, False),
     ([0.1, 0.2], 2, 0.0, True), ([0.1, 0.2], 2, 0.15, False), ([0.1, 0.2], 3, 0.0, None)],
)  # fmt: skip
def test_self_training_policy_improved(
    scores: list[float], r: int, min_improvement: float, expected: bool | None
) -> None:
    assert improved(scores, r, min_improvement) is expected


def test_self_training_policy_best_round_first_on_a_tie() -> None:
    assert best_round([]) is None
    assert best_round([0.1, 0.3, 0.3, 0.2]) == 2
