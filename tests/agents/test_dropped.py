"""Dropped clauses: the expected length (agents/coverage.py) predicts translation lengths better
than a plain character ratio, few correct answers are doubted, planted drops are, before the
run has samples too, and Han targets name the missing source clause."""

from __future__ import annotations

import json
import math
import statistics
from functools import cache
from pathlib import Path

import pytest

import word_tokenizers
from agents.aligner import align
from agents.coverage import clause_coverage, clauses, expected_length, log_residual, missing_clause
from agents.findings import Code, Finding
from agents.translator import LabelMap
from agents.verifier import Decision, RunStats, VerifierConfig, check, verify
from mre import Record
from tests.agents.planted import Pair, load, plant

pytest.importorskip("opencc")
pytest.importorskip("pykakasi")

ROOT = Path(__file__).resolve().parents[2]
JA = word_tokenizers.get_language("ja")
TARGETS = ("en", "zh")


@cache
def clean_pairs() -> tuple[Pair, ...]:
    """Correct marked en/zh answers: the demo's recorded ones and the held-out fixtures."""
    demo = (ROOT / "examples" / "demo.jsonl").read_text("utf-8").splitlines()
    records = {r["id"]: Record.model_validate(r) for r in map(json.loads, demo)}
    pairs = [
        Pair(records[d["id"]], d["target"], d["text"])
        for d in map(
            json.loads, (ROOT / "examples" / "replay.jsonl").read_text("utf-8").splitlines()
        )
    ]
    pairs += [p for p in load()[1] if p.target in TARGETS]
    return tuple(pairs)


#: The tighter thresholds the helper fitted first (the defaults are looser so that no answer in
#: examples/ is doubted): the tests of the mechanism use these.
TIGHT = VerifierConfig(dropped_prior_z=-1.2, dropped_prior_scale=0.13, dropped_run_z=-0.8)


def dropped_findings(
    pair: Pair, marked: str, stats: RunStats | None = None, config: VerifierConfig | None = None
) -> list[Finding]:
    al = align(marked, pair.record, word_tokenizers.get(pair.target).tokenize)
    target = word_tokenizers.get_language(pair.target)
    found = check(pair.record, JA, target, al, stats=stats, config=config)
    return [f for f in found if f.code == Code.CONTENT_DROPPED]


def planted(pair: Pair) -> str | None:
    return plant("dropped", pair, word_tokenizers.get(pair.target).tokenize, {})


def plain(pair: Pair) -> str:
    return align(pair.correct, pair.record, word_tokenizers.get(pair.target).tokenize).text


def robust_spread(values: list[float]) -> float:
    median = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - median) for v in values)


@pytest.mark.parametrize("target", TARGETS)
def test_expected_length_predicts_better_than_the_character_ratio(target: str) -> None:
    lang = word_tokenizers.get_language(target)
    pairs = [p for p in clean_pairs() if p.target == target]
    texts = [(p.record.text, plain(p)) for p in pairs]
    ratio = [math.log(len(t) / len(s) / lang.length_factor) for s, t in texts]
    model = [log_residual(s, t, JA, lang) for s, t in texts]
    # measured: en 0.234 -> 0.135, zh 0.121 -> 0.084 (robust spread of the log)
    assert robust_spread(model) < 0.75 * robust_spread(ratio)
    assert abs(statistics.median(model)) < 0.06  # centred on the expected length


def test_expected_length_weighs_kanji_above_kana_and_copies_latin() -> None:
    en = word_tokenizers.get_language("en")
    kanji, kana = "東京都庁舎建設計画", "とうきょうのおしろ"
    assert expected_length(kanji, JA, en) > 1.5 * expected_length(kana, JA, en)
    # Latin passes through: "iPhone" is about as long in any target, not 2.7 times longer
    assert expected_length("iPhone", JA, en) == pytest.approx(expected_length("iPhone", JA, JA))


def test_clean_answers_are_rarely_doubted() -> None:
    pairs = clean_pairs()
    flagged = [(p.record.id, p.target) for p in pairs if dropped_findings(p, p.correct)]
    assert len(pairs) == 122
    assert len(flagged) <= 0.08 * len(pairs), flagged  # measured: 8 of 122


def test_planted_drops_are_doubted() -> None:
    wrong = [(p, w) for p in clean_pairs() if (w := planted(p)) is not None]
    missed = [(p.record.id, p.target) for p, w in wrong if not dropped_findings(p, w)]
    assert len(wrong) == 31
    # measured: 17 of 31 missed with the defaults (prior z -1.7 x spread 0.18: the thresholds
    # that keep every answer in examples/ free of doubts); TIGHT misses 3 but doubts 3 of the
    # 30 Chinese examples and 4 of the 31 English fixtures
    assert len(missed) <= 0.6 * len(wrong), missed
    tight = [p.record.id for p, w in wrong if not dropped_findings(p, w, config=TIGHT)]
    assert len(tight) <= 0.15 * len(wrong), tight


def fixture(rid: str, target: str) -> Pair:
    return next(p for p in clean_pairs() if p.record.id == rid and p.target == target)


def test_latin_target_drop_is_caught_by_length_before_the_run_has_samples() -> None:
    pair = fixture("stockmark-446877", "en")
    wrong = planted(pair)
    assert wrong is not None and "stores all over the country" not in wrong
    assert dropped_findings(pair, pair.correct, RunStats(), TIGHT) == []
    found = dropped_findings(pair, wrong, RunStats(), TIGHT)
    assert found and "too short" in found[0].message and found[0].data["z"] < -1.2


def test_run_statistics_take_over_once_the_run_has_samples() -> None:
    pair = fixture("stockmark-446877", "en")
    wrong = planted(pair)
    assert wrong is not None
    cfg = VerifierConfig()
    stats = RunStats()
    for _ in range(cfg.dropped_min_samples):  # a run whose translations are all this short
        stats.add(
            "en",
            log_residual(pair.record.text, plain(pair), JA, word_tokenizers.get_language("en"))
            - 0.3,
            [],
        )
    assert dropped_findings(pair, wrong, stats, TIGHT) == []  # a terse run: not a drop here
    stats = RunStats()
    for v in (-0.05, 0.0, 0.05, 0.02, -0.02) * 4:
        stats.add("en", v, [])
    found = dropped_findings(pair, wrong, stats, TIGHT)
    assert found and found[0].data["z"] < TIGHT.dropped_run_z


def test_han_target_names_the_missing_clause() -> None:
    pair = fixture("stockmark-18272", "zh")
    wrong = planted(pair)
    assert wrong is not None
    found = dropped_findings(pair, wrong)
    assert found and found[0].data["clause"] == "血縁関係は一切ない"
    assert "血縁関係は一切ない" in found[0].message


def test_clause_coverage_measures_each_source_clause() -> None:
    zh = word_tokenizers.get_language("zh")
    source = "東京大学の教授陣は、新しい電池材料を開発し、高い性能を確認した。"
    assert [source[s:e] for s, e in clauses(source)] == [
        "東京大学の教授陣は",
        "新しい電池材料を開発し",
        "高い性能を確認した",
    ]
    full = clause_coverage(
        source, "东京大学的教授阵容开发了新的电池材料，并确认了其高性能。", JA, zh
    )
    assert full is not None and [c.coverage for c in full] == [1.0, 1.0, 1.0]
    cut = clause_coverage(source, "东京大学的教授阵容确认了其高性能。", JA, zh)
    assert cut is not None
    gone = missing_clause(cut, min_han=5, max_coverage=0.15, rest_min=0.6)
    assert gone is not None and gone.text == "新しい電池材料を開発し"
    assert missing_clause(full, min_han=5, max_coverage=0.15, rest_min=0.6) is None
    assert clause_coverage(source, "whatever", JA, word_tokenizers.get_language("en")) is None


def test_a_doubted_correct_answer_is_kept_after_one_retry() -> None:
    pair = fixture("stockmark-3237461", "en")  # a correct answer the length doubts
    en = word_tokenizers.get_language("en")
    al = align(pair.correct, pair.record, word_tokenizers.get("en").tokenize)
    labels = LabelMap(span_labels=["x"] * len(pair.record.spans), text_label="x")
    first = verify(pair.record, JA, en, al, labels, attempt=1, max_attempts=3, config=TIGHT)
    assert first.decision == Decision.RETRY
    assert [f.code for f in first.findings if f.code == Code.CONTENT_DROPPED]
    again = verify(
        pair.record, JA, en, al, labels, attempt=2, max_attempts=3, previous=first.findings,
        config=TIGHT,
    )
    assert again.decision == Decision.ACCEPT
    assert any(f.code == Code.DOUBT_KEPT for f in again.findings)
