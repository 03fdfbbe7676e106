"""eval.mt: chrF / BLEU through sacrebleu, tokenizer by language, pairing with references."""

from __future__ import annotations

import math

import pytest

from eval.mt import bleu, bleu_tokenizer, chrf, score_translations
from mre.record import Record
from mre.tasks import Task


@pytest.mark.parametrize(
    ("lang", "tokenizer"),
    [("zh", "zh"), ("zh-Hans", "zh"), ("zh_CN", "zh"), ("ZH", "zh"), ("ja", "char"),
     ("ja-JP", "char"), ("en", "13a"), ("fr", "13a")],
)
def test_mt_bleu_tokenizer(lang: str, tokenizer: str) -> None:
    assert bleu_tokenizer(lang) == tokenizer


@pytest.mark.parametrize(
    ("text", "lang"),
    [("我爱北京天安门", "zh"), ("東京へ行きます", "ja"), ("I go to Tokyo today", "en")],
)
def test_mt_identical_is_100(text: str, lang: str) -> None:
    assert bleu([text], [text], lang) == pytest.approx(100.0)
    assert chrf([text], [text], lang) == pytest.approx(100.0)


def _bleu4(*precisions: float) -> float:
    """Geometric mean of the four n-gram precisions, brevity penalty 1, on the 0-100 scale."""
    return 100 * math.exp(sum(math.log(p) for p in precisions) / 4)


@pytest.mark.parametrize(
    ("hyp", "ref", "lang", "expected"),
    [
        # zh tokenizer splits the 7 characters: 1-grams 5/7, 2-grams 3/6 (我爱 天安 安门),
        # 3-grams 1/5 (天安门), 4-grams 0/4 -> sacrebleu exp smoothing 1/(2*4) = 1/8.
        ("我爱北京天安门", "我爱上海天安门", "zh", _bleu4(5 / 7, 3 / 6, 1 / 5, 1 / 8)),
        # the same pair with 13a: one token each, no match at all -> 0.
        ("我爱北京天安门", "我爱上海天安门", "en", 0.0),
        # ja, characters: 1-grams 6/7, 2-grams 4/6 (東京 行き きま ます),
        # 3-grams 2/5 (行きま きます), 4-grams 1/4 (行きます).
        ("東京に行きます", "東京へ行きます", "ja", _bleu4(6 / 7, 4 / 6, 2 / 5, 1 / 4)),
    ],
)
def test_mt_bleu_hand_computed(hyp: str, ref: str, lang: str, expected: float) -> None:
    assert bleu([hyp], [ref], lang) == pytest.approx(expected, abs=1e-6)


def test_mt_chrf_below_100_when_different() -> None:
    score = chrf(["我爱北京天安门"], ["我爱上海天安门"], "zh")
    assert 0.0 < score < 100.0


@pytest.mark.parametrize(
    ("hyps", "refs", "message"),
    [([], [], "no hypotheses"), (["a"], ["a", "b"], "1 hypotheses but 2 references")],
)
def test_mt_bad_input(hyps: list[str], refs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bleu(hyps, refs, "en")
    with pytest.raises(ValueError, match=message):
        chrf(hyps, refs, "en")


def _rec(rid: str, lang: str, text: str, source_id: str | None = None) -> Record:
    meta = {"source_id": source_id} if source_id else {}
    return Record(id=rid, lang=lang, task=Task.SCNM, text=text, meta=meta)


def test_mt_score_translations_matches_by_id_then_source_id() -> None:
    refs = {
        ("s1", "zh"): "我爱北京天安门",  # reached through meta.source_id
        ("z2", "zh"): "今天天气很好",  # reached through the record's own id
        ("s1", "en"): "I go to Tokyo today",
    }
    preds = [
        _rec("s1-zh", "zh", "我爱北京天安门", source_id="s1"),
        _rec("z2", "zh", "今天天气很好"),
        _rec("z3", "zh", "没有参考"),  # no reference: unmatched
        _rec("s1-en", "en", "I go to Tokyo today", source_id="s1"),
        _rec("s1-ja", "ja", "東京へ行きます", source_id="s1"),  # s1 has no ja reference
    ]
    out = score_translations(preds, refs)
    assert set(out) == {"en", "ja", "zh"}
    assert (out["zh"]["n"], out["zh"]["unmatched"], out["zh"]["bleu_tokenize"]) == (2, 1, "zh")
    assert out["zh"]["bleu"] == pytest.approx(100.0)
    assert out["zh"]["chrf"] == pytest.approx(100.0)
    assert (out["en"]["n"], out["en"]["unmatched"]) == (1, 0)
    assert (out["ja"]["n"], out["ja"]["unmatched"], out["ja"]["bleu"]) == (0, 1, 0.0)
