"""Entity evidence on real names (stockmark data and the issue's examples): true pairs score
high, false pairs low, meaning translations unknown."""

from __future__ import annotations

import pytest

from agents.evidence import EvidenceScorer, fold, reading_similarity, scorer
from word_tokenizers import get_language

pytest.importorskip("opencc")
pytest.importorskip("pykakasi")
pytest.importorskip("pypinyin")
pytest.importorskip("rapidfuzz")


def ja_to(code: str) -> EvidenceScorer:
    return scorer(get_language("ja"), get_language(code))


# (source entity, label, true target, false target): names of people, places, companies,
# products and events from ../shared/data/stockmark-ner-ja and the issue
EN_PAIRS = [
    ("大岡昇平", "人名", "Shohei Ooka", "Dave Thomas"),
    ("デイヴ・トーマス", "人名", "Dave Thomas", "Jacob Drumheller"),
    ("ジェイコブ・ドラムヘラー", "人名", "Jacob Drumheller", "Milan Badelj"),
    ("ミラン・バデリ", "人名", "Milan Badelj", "Manuel Neuer"),
    ("カルタゴ", "地名", "Carthage", "Canada"),
    ("サンアントニオ・スパーズ", "その他の組織名", "San Antonio Spurs", "Hamburger SV"),
    ("マロン製菓", "法人名", "Marron Seika", "Redfox Inc."),
    ("ドナー湖", "地名", "Donner Lake", "Carthage"),
    pytest.param(
        "ブラウヴァイラー修道院", "施設名", "Brauweiler Abbey", "Korakuen Stadium",
        marks=pytest.mark.xfail(
            strict=True,
            reason="known weakness: 修道院 -> Abbey is translated by meaning and is not a generic "
            "word, so the reading of the whole entity separates true from false by only 0.11",
        ),
    ),
    ("ル・マン24時間レース", "イベント名", "24 Hours of Le Mans", "NBA draft"),
]


@pytest.mark.parametrize(("entity", "label", "good", "bad"), EN_PAIRS)
def test_evidence_ja_en_true_pairs_beat_false_pairs(entity: str, label: str, good: str, bad: str) -> None:
    sc = ja_to("en")
    true, false = sc.score(entity, good, label), sc.score(entity, bad, label)
    assert true.raw is not None and false.raw is not None
    assert true.raw >= 0.5, (entity, good, true)
    assert true.raw - false.raw >= 0.2, (entity, true, false)


ZH_PAIRS = [
    ("大岡昇平", "人名", "大冈升平", "三岛由纪夫"),
    ("東京都千代田区", "地名", "东京都千代田区", "湖北省恩施市"),
    ("古賀善次", "人名", "古贺善次", "关智一"),
    ("関智一", "人名", "关智一", "古贺善次"),
    ("恩施許家坪空港", "施設名", "恩施许家坪机场", "后乐园球场"),
    ("後楽園球場", "施設名", "后乐园球场", "恩施许家坪机场"),
]


@pytest.mark.parametrize(("entity", "label", "good", "bad"), ZH_PAIRS)
def test_evidence_ja_zh_kanji_converts_through_opencc(entity: str, label: str, good: str, bad: str) -> None:
    sc = ja_to("zh")
    true, false = sc.score(entity, good, label), sc.score(entity, bad, label)
    assert true.kind == "han" and true.score is not None and true.score >= 0.6, true
    assert false.score is not None and false.score <= 0.3, false


def test_evidence_word_order_and_long_vowels_do_not_sink_a_true_match() -> None:
    sc = ja_to("en")
    for spelling in ("Shohei Ooka", "Ōoka Shōhei", "Shohei Oka", "Ooka Shouhei"):
        assert (sc.score("大岡昇平", spelling, "人名").score or 0) >= 0.85, spelling
    assert fold("Ōoka") == fold("ooka") == fold("Oka")
    assert reading_similarity(fold("ooka shouhei"), fold("Shohei Ooka")) == 1.0


def test_evidence_katakana_transliteration_from_the_issue() -> None:
    sc = ja_to("en")
    true = sc.score("コーフ・リヴァー", "Cove Reber", "人名")
    false = sc.score("コーフ・リヴァー", "Jacob Drumheller", "人名")
    assert true.score is not None and false.score is not None and true.score > false.score


@pytest.mark.parametrize(
    ("entity", "good", "bad"),
    [("CBU-87/B", "CBU-87/B", "CBU-97"), ("iPhone 15", "iPhone 15", "iPhone 14"), ("LV-101", "LV-101", "LV-110")],
)
def test_evidence_preserved_tokens_must_appear(entity: str, good: str, bad: str) -> None:
    for target in ("en",):  # into Chinese, Latin words may be written by sound (MGM -> 米高梅)
        sc = ja_to(target)
        assert sc.score(entity, good, "製品名").score == 1.0
        found = sc.score(entity, bad, "製品名").score
        assert found is not None and found <= 0.5


def test_evidence_meaning_translation_is_unknown_not_low() -> None:
    sc = ja_to("en")
    for entity, translation in [("捕虜収容所", "prisoner-of-war camp"), ("共和党", "Republican Party")]:
        ev = sc.score(entity, translation, "施設名")
        assert ev.score is None, (entity, ev)
        assert ev.raw is not None  # still comparable for relative checks


def test_evidence_korean_revised_romanization() -> None:
    ko = pytest.importorskip("mmm_lang_ko")
    if getattr(get_language("ko"), "romanize", None) is None:
        pytest.skip("the installed mmm-lang-ko predates the evidence hooks")
    assert ko.romanize("서울") == "seoul"
    sc = ja_to("ko")
    true = sc.score("デイヴ・トーマス", "데이브 토머스", "人名")
    false = sc.score("デイヴ・トーマス", "제이컵 드럼헬러", "人名")
    assert true.score is not None and false.score is not None
    assert true.score - false.score >= 0.25


def test_evidence_scores_are_cached_per_pair() -> None:
    sc = ja_to("en")
    first = sc.score("カルタゴ", "Carthage", "地名")
    assert sc.score("カルタゴ", "Carthage", "地名") is first
    assert scorer(get_language("ja"), get_language("en")) is sc


@pytest.mark.parametrize(
    ("entity", "target", "other", "own"),
    [
        ("恩施許家坪空港", "en", "Korakuen Stadium", "Enshi Xujiaping Airport"),
        ("ドナー記念州立公園", "en", "Enshi Xujiaping Airport", "Donner Memorial State Park"),
        ("愛媛県", "en", "Enshi City, Hubei Province", "Ehime Prefecture"),
        ("スカイラー砦", "zh", "恩施许家坪机场", "斯凯勒堡"),
    ],
)
def test_evidence_a_span_of_another_kind_scores_zero(
    entity: str, target: str, other: str, own: str
) -> None:
    """The ja plugin's kind words: a span that names another kind of place is another name;
    the entity's own kind, or none (Ehime), says nothing against it."""
    sc = ja_to(target)
    assert sc.score(entity, other, "施設名").score == 0.0
    assert sc.score(entity, own, "施設名").score != 0.0
    assert sc.score("愛媛県", "Ehime", "地名").score != 0.0


def test_evidence_a_japanese_name_in_katakana_may_keep_its_kanji_in_chinese() -> None:
    """ホンダ is 本田 in Chinese: read the span the Japanese way too."""
    sc = ja_to("zh")
    assert (sc.score("ホンダ", "本田", "法人名").raw or 0.0) >= 0.8


def test_evidence_a_place_partly_by_sound_that_reads_far_is_another_name() -> None:
    """A place (not a company: 甲骨文 for オラクル is a name by meaning) whose Chinese span is
    partly in sound characters but reads far from it."""
    sc = ja_to("zh")
    wrong = sc.score("バラ・マーケット", "恩施许家坪机场", "施設名")
    assert wrong.score is not None and wrong.score < 0.45
    assert sc.score("バラ・マーケット", "博罗市场", "施設名").raw >= 0.45  # type: ignore[operator]
    assert sc.score("オラクル", "甲骨文", "法人名").score is None


def test_evidence_a_brand_in_capitals_is_not_an_alien_acronym() -> None:
    """AEON for イオン reads like the start of the name; NBA for 第三次ポエニ戦争 does not."""
    sc = ja_to("en")
    assert sc.score("イオン銀行", "AEON Bank", "法人名").score != 0.0
    assert sc.score("第三次ポエニ戦争", "NBA draft", "イベント名").score == 0.0
    # a three-letter initialism is not read as a styled word: NBA is not "nanbo..." (南北戦争)
    assert sc.score("南北戦争", "NBA draft", "イベント名").score == 0.0
    assert sc.score("南北戦争", "Civil War", "イベント名").score != 0.0
