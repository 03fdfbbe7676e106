"""Planted meaning errors through the real HTTP path (CLI -> graph -> langchain-openai -> local
server): each is caught, fed back, and the retry's correct answer is accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import word_tokenizers
from agents.aligner import align
from agents.markers import mark
from tests.agents.planted import MeaningHandler, donors_of, load, plant
from tests.conftest import read_jsonl, run_translate

# (kind, target, record id): one held-out record per kind and language
CASES = [
    ("swapped", "en", "stockmark-446877"),
    ("widened", "en", "stockmark-3276309"),
    ("cut_short", "en", "stockmark-3013969"),
    ("substituted", "en", "stockmark-212167"),
    ("swapped", "zh", "stockmark-57366"),
    ("widened", "zh", "stockmark-446877"),
    ("cut_short", "zh", "stockmark-143092"),
    ("substituted", "zh", "stockmark-816410"),
]


@pytest.mark.slow
@pytest.mark.parametrize("review", ["off", "uncertain"])
def test_meaning_planted_caught_and_repaired_over_http(tmp_path: Path, local_server: Any, review: str) -> None:
    records, pairs = load()
    answers: dict[tuple[str, str], tuple[str, str]] = {}
    wrong_of: dict[tuple[str, str], str] = {}
    for kind, target, rid in CASES:
        tok = word_tokenizers.get(target).tokenize
        pair = next(p for p in pairs if p.record.id == rid and p.target == target)
        donors = donors_of([q for q in pairs if q.target == target], {target: tok})
        wrong = plant(kind, pair, tok, donors)
        assert wrong is not None
        key = (mark(pair.record.text, pair.record.spans), target)
        assert key not in answers, "one plant per (record, target)"
        answers[key] = (wrong, pair.correct)
        wrong_of[(rid, target)] = kind
    ids = sorted({rid for _, _, rid in CASES})
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(records[i].model_dump_json() + "\n" for i in ids), encoding="utf-8")
    # pairs not planted answer correctly at once
    for pair in pairs:
        key = (mark(pair.record.text, pair.record.spans), pair.target)
        if pair.record.id in ids and pair.target in ("en", "zh") and key not in answers:
            answers[key] = (pair.correct, pair.correct)
    handler = MeaningHandler(answers)
    with local_server(handler) as server:
        rc = run_translate(
            ["--input", str(inp), "--source", "ja", "--target", "en", "zh", "--out",
             str(tmp_path / "out"), "--review", review],
            server.base_url,
        )
    assert rc == 0
    for target in ("en", "zh"):
        assert read_jsonl(tmp_path / "out" / target / "rejected.jsonl") == []
        for rec in read_jsonl(tmp_path / "out" / target / "accepted.jsonl"):
            rid = rec["meta"]["source_id"]
            pair = next(p for p in pairs if p.record.id == rid and p.target == target)
            good = align(pair.correct, pair.record, word_tokenizers.get(target).tokenize)
            assert rec["text"] == good.text
            assert sorted(s["text"] for s in rec["spans"]) == sorted(p.text for p in good.projected.values())
            if (rid, target) in wrong_of:
                # caught on the first attempt; repaired by the retry (or by the reviewer)
                assert len(rec["meta"]["history"]) >= 2 or rec["meta"]["attempts"] == 2, (
                    wrong_of[(rid, target)], rec["meta"]["history"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["checks"]["entity_swapped"]["accepted"] == 2
    assert set(report["evidence"]) == {"en", "zh"}
    if review == "off":
        assert report["review"]["calls"] == 0
