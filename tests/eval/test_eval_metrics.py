"""eval.metrics: TL / WL / ALL on small hand-computed cases (arithmetic in the comments)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from eval.metrics import Counts, normalize, score
from mre.record import Record, Span
from mre.tasks import Task


def rec(
    rid: str,
    text: str,
    label: str | None,
    pairs: Sequence[tuple[str, str]] = (),
    lang: str = "ja",
    task: str = "SCNM",
) -> Record:
    """A record whose spans are the (span text, label) pairs, found left to right in `text`."""
    spans, cursor = [], 0
    for span_text, span_label in pairs:
        start = text.index(span_text, cursor)
        spans.append(Span(start=start, end=start + len(span_text), text=span_text, label=span_label))
        cursor = start + 1
    spans.sort(key=lambda s: (s.start, s.end))
    return Record(id=rid, lang=lang, task=Task.parse(task), text=text, label=label, spans=spans)


# g1 (ja SCNM): everything right.       TL ok,  pairs TP 2,            ALL ok
# g2 (en SCNM): wrong label, extra pair. TL bad, TP 1 (人名), FP 1 (地名), ALL bad
# g3 (ja TCONER): no prediction.         TL bad, FN 1 (地名),            ALL bad
GOLD = [
    rec("g1", "A社は東京にある。", "技術", [("A社", "法人名"), ("東京", "地名")]),
    rec("g2", "山田が大阪に行った。", "社会", [("山田", "人名")], lang="en"),
    rec("g3", "富士山が見える。", "自然", [("富士山", "地名")], task="TCONER"),
]
PRED = [
    rec("g1", "A社は東京にある。", "技術", [("A社", "法人名"), ("東京", "地名")]),
    rec("g2", "山田が大阪に行った。", "技術", [("山田", "人名"), ("大阪", "地名")], lang="en"),
    rec("x9", "余分な予測。", "技術"),  # not in gold: ignored, counted
]


def test_metrics_overall_hand_computed() -> None:
    out = score(GOLD, PRED).to_dict()
    # TL: 1 right of 3 labelled gold records; ALL: 1 of 3.
    assert out["tl_accuracy"] == pytest.approx(1 / 3)
    assert (out["tl_n"], out["tl_correct"]) == (3, 1)
    assert out["all_accuracy"] == pytest.approx(1 / 3)
    # TP = 2 + 1 = 3, FP = 1, FN = 1 -> P = 3/4, R = 3/4, F1 = 3/4.
    assert (out["wl_tp"], out["wl_fp"], out["wl_fn"]) == (3, 1, 1)
    assert out["wl_precision"] == pytest.approx(0.75)
    assert out["wl_recall"] == pytest.approx(0.75)
    assert out["wl_f1"] == pytest.approx(0.75)
    assert (out["n"], out["matched"], out["missing_predictions"]) == (3, 2, 1)
    assert out["extra_predictions"] == 1


@pytest.mark.parametrize(
    ("key", "group", "expected"),
    [
        # ja = g1 + g3: TL 1/2; TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 4/5; ALL 1/2.
        ("by_lang", "ja", {"n": 2, "tl_accuracy": 0.5, "wl_precision": 1.0,
                           "wl_recall": 2 / 3, "wl_f1": 0.8, "all_accuracy": 0.5,
                           "missing_predictions": 1}),
        # en = g2: TL 0; TP 1, FP 1 -> P 1/2, R 1, F1 2/3; ALL 0.
        ("by_lang", "en", {"n": 1, "tl_accuracy": 0.0, "wl_precision": 0.5,
                           "wl_recall": 1.0, "wl_f1": 2 / 3, "all_accuracy": 0.0}),
        # SCNM = g1 + g2: TL 1/2; TP 3, FP 1, FN 0 -> P 3/4, R 1, F1 6/7; ALL 1/2.
        ("by_task", "SCNM", {"n": 2, "tl_accuracy": 0.5, "wl_precision": 0.75,
                             "wl_recall": 1.0, "wl_f1": 6 / 7, "all_accuracy": 0.5}),
        # TCONER = g3, missing: all zero (FN 1, no TP: P = R = F1 = 0 by the zero rule).
        ("by_task", "TCONER", {"n": 1, "tl_accuracy": 0.0, "wl_precision": 0.0,
                               "wl_recall": 0.0, "wl_f1": 0.0, "wl_fn": 1,
                               "all_accuracy": 0.0, "missing_predictions": 1}),
        ("by_lang_task", "ja/TCONER", {"n": 1, "wl_fn": 1}),
        ("by_lang_task", "en/SCNM", {"n": 1, "wl_tp": 1, "wl_fp": 1}),
        # 法人名: TP 1 -> 1/1/1, support 1.  地名: TP 1 (g1), FP 1 (g2), FN 1 (g3) -> 1/2 each.
        ("by_label", "法人名", {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}),
        ("by_label", "地名", {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}),
        ("by_label", "人名", {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}),
    ],
)
def test_metrics_breakdowns(key: str, group: str, expected: dict[str, float]) -> None:
    got = score(GOLD, PRED).to_dict()[key][group]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name


def test_metrics_breakdown_keys_are_exactly_the_gold_groups() -> None:
    out = score(GOLD, PRED).to_dict()
    assert set(out["by_lang"]) == {"ja", "en"}
    assert set(out["by_task"]) == {"SCNM", "TCONER"}
    assert set(out["by_lang_task"]) == {"ja/SCNM", "en/SCNM", "ja/TCONER"}
    assert set(out["by_label"]) == {"法人名", "地名", "人名"}


def test_metrics_empty_predictions_all_wrong() -> None:
    out = score(GOLD, []).to_dict()
    # 4 gold pairs, all FN; nothing predicted.
    assert (out["wl_tp"], out["wl_fp"], out["wl_fn"]) == (0, 0, 4)
    assert out["tl_accuracy"] == out["all_accuracy"] == out["wl_f1"] == 0.0
    assert (out["missing_predictions"], out["matched"]) == (3, 0)


def test_metrics_empty_gold_is_zero_with_counts() -> None:
    out = score([], PRED).to_dict()
    assert (out["n"], out["tl_n"], out["extra_predictions"]) == (0, 0, 3)
    assert out["tl_accuracy"] == out["wl_precision"] == out["all_accuracy"] == 0.0
    assert out["by_lang"] == {} and out["by_label"] == {}


@pytest.mark.parametrize(
    ("gold_pairs", "pred_pairs", "tp", "fp", "fn", "all_ok"),
    [
        # pred has (地名, 東京) twice, gold once: multiset -> TP 1, FP 1.
        ([("東京", "地名")], [("東京", "地名"), ("東京", "地名")], 1, 1, 0, False),
        # gold twice, pred once: TP 1, FN 1.
        ([("東京", "地名"), ("東京", "地名")], [("東京", "地名")], 1, 0, 1, False),
        # both twice: TP 2, record fully right.
        ([("東京", "地名"), ("東京", "地名")], [("東京", "地名"), ("東京", "地名")], 2, 0, 0, True),
        # same text, other label: no TP.
        ([("東京", "地名")], [("東京", "施設名")], 0, 1, 1, False),
    ],
)
def test_metrics_duplicate_pairs_are_a_multiset(
    gold_pairs: list[tuple[str, str]],
    pred_pairs: list[tuple[str, str]],
    tp: int,
    fp: int,
    fn: int,
    all_ok: bool,
) -> None:
    text = "東京と東京。"
    out = score([rec("r", text, "社会", gold_pairs)], [rec("r", text, "社会", pred_pairs)])
    got = out.to_dict()
    assert (got["wl_tp"], got["wl_fp"], got["wl_fn"]) == (tp, fp, fn)
    assert got["all_accuracy"] == (1.0 if all_ok else 0.0)


@pytest.mark.parametrize(
    ("gold_text", "gold_span", "pred_text", "pred_span", "match"),
    [
        ("ＡＢＣ社の発表。", "ＡＢＣ社", "ABC社の発表。", "ABC社", True),  # full-width Latin
        ("ｿﾆｰの発表。", "ｿﾆｰ", "ソニーの発表。", "ソニー", True),  # half-width katakana
        ("ﾊﾟﾅｿﾆｯｸの発表。", "ﾊﾟﾅｿﾆｯｸ", "パナソニックの発表。", "パナソニック", True),  # ﾊﾟ -> パ
        ("第１位。", "１", "第1位。", "1", True),  # full-width digit
        ("Apple rose.", "Apple", "apple rose.", "apple", False),  # case is kept
        ("東京 へ", "東京 ", "東京 へ", "東京", True),  # surrounding whitespace stripped
    ],
)
def test_metrics_span_text_nfkc(
    gold_text: str, gold_span: str, pred_text: str, pred_span: str, match: bool
) -> None:
    gold = [rec("r", gold_text, None, [(gold_span, "法人名")])]
    pred = [rec("r", pred_text, None, [(pred_span, "法人名")])]
    assert score(gold, pred).to_dict()["wl_tp"] == int(match)


@pytest.mark.parametrize(
    ("gold_label", "pred_label", "span_label_gold", "span_label_pred", "tl_ok", "wl_ok"),
    [
        ("ＩＴ", "IT", "ﾁｰﾑ", "チーム", True, True),
        ("技術 ", "技術", "人名", "人名 ", True, True),
        ("Tech", "tech", "Person", "person", False, False),
        ("技術", None, "人名", "人名", False, True),
    ],
)
def test_metrics_labels_nfkc(
    gold_label: str,
    pred_label: str | None,
    span_label_gold: str,
    span_label_pred: str,
    tl_ok: bool,
    wl_ok: bool,
) -> None:
    gold = [rec("r", "山田さん", gold_label, [("山田", span_label_gold)])]
    pred = [rec("r", "山田さん", pred_label, [("山田", span_label_pred)])]
    out = score(gold, pred).to_dict()
    assert out["tl_accuracy"] == (1.0 if tl_ok else 0.0)
    assert out["wl_tp"] == int(wl_ok)
    assert out["all_accuracy"] == (1.0 if tl_ok and wl_ok else 0.0)


def test_metrics_null_gold_label_left_out_of_tl_and_all_needs_pairs_only() -> None:
    gold = [
        rec("a", "東京にいる。", None, [("東京", "地名")]),  # no label: pairs decide ALL
        rec("b", "大阪にいる。", None, [("大阪", "地名")]),
        rec("c", "京都にいる。", "社会", [("京都", "地名")]),
    ]
    pred = [
        rec("a", "東京にいる。", "技術", [("東京", "地名")]),  # any label: ALL ok
        rec("b", "大阪にいる。", None, []),  # pairs wrong: ALL bad
        rec("c", "京都にいる。", "社会", [("京都", "地名")]),
    ]
    out = score(gold, pred).to_dict()
    # TL over c only: 1/1.  ALL: a and c right -> 2/3.
    assert (out["tl_n"], out["tl_correct"], out["tl_accuracy"]) == (1, 1, 1.0)
    assert out["all_accuracy"] == pytest.approx(2 / 3)
    # TP 2 (a, c), FN 1 (b): P 1, R 2/3.
    assert out["wl_precision"] == 1.0
    assert out["wl_recall"] == pytest.approx(2 / 3)


def test_metrics_records_without_pairs_count_for_all() -> None:
    # Both sides have no pairs: ALL right (empty multisets are equal); WL has nothing: 0.0.
    out = score([rec("r", "文。", "社会")], [rec("r", "文。", "社会")]).to_dict()
    assert out["all_accuracy"] == 1.0
    assert (out["wl_tp"], out["wl_f1"]) == (0, 0.0)


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([rec("a", "文。", "x"), rec("a", "文。", "y")], [], "duplicate id 'a' in gold"),
        ([rec("a", "文。", "x")], [rec("a", "文。", "x")] * 2, "duplicate id 'a' in predictions"),
    ],
)
def test_metrics_duplicate_ids_are_an_error(
    gold: list[Record], pred: list[Record], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        score(gold, pred)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ＡＢＣ", "ABC"), ("ｶﾀｶﾅ", "カタカナ"), (" 東京\u3000", "東京"), ("Apple", "Apple"), ("①", "1")],
)
def test_metrics_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "p", "r", "f1"),
    [
        (3, 1, 1, 0.75, 0.75, 0.75),
        (1, 0, 3, 1.0, 0.25, 0.4),  # 2*1*0.25/1.25 = 0.4
        (0, 0, 0, 0.0, 0.0, 0.0),
        (0, 2, 0, 0.0, 0.0, 0.0),
    ],
)
def test_metrics_counts(tp: int, fp: int, fn: int, p: float, r: float, f1: float) -> None:
    c = Counts(tp, fp, fn)
    assert (c.precision, c.recall, c.f1) == pytest.approx((p, r, f1))
    assert c.support == tp + fn
