"""The entity-aligner and the verifier's deterministic checks, on real tokenizers."""

from __future__ import annotations

import pytest

from agents.aligner import align
from agents.findings import Code, Severity
from agents.markers import mark, parse_markers
from agents.translator import LabelMap
from agents.verifier import Decision, check, verify
from mre import Record
from word_tokenizers import get, get_language

JA, EN, ZH = get_language("ja"), get_language("en"), get_language("zh")
SOURCE = Record(
    id="s1",
    lang="ja",
    task="SCNM",
    text="トヨタは愛知県の会社で、トヨタの本社は豊田市にある。",
    label="技術",
    spans=[
        {"start": 0, "end": 3, "text": "トヨタ", "label": "法人名"},
        {"start": 4, "end": 7, "text": "愛知県", "label": "地名"},
        {"start": 12, "end": 15, "text": "トヨタ", "label": "法人名"},
        {"start": 19, "end": 22, "text": "豊田市", "label": "地名"},
    ],
)
LABELS = LabelMap(text_label="Technology", span_labels=["Corporation", "Location", "Corporation", "Location"])
GOOD = ("<e1>Toyota</e1> is a company in <e2>Aichi</e2>, and <e3>Toyota</e3>'s head office is "
        "in <e4>Toyota City</e4>.")


def codes(findings: list) -> list[str]:
    return sorted(f.code.value for f in findings)


def test_markers_mark_and_parse_round_trip() -> None:
    marked = mark(SOURCE.text, SOURCE.spans)
    assert marked.startswith("<e1>トヨタ</e1>は<e2>愛知県</e2>")
    parsed = parse_markers(marked)
    assert parsed.text == SOURCE.text
    assert {i: offs[0] for i, offs in parsed.found.items()} == {
        i + 1: (s.start, s.end) for i, s in enumerate(SOURCE.spans)
    }


def test_aligner_reordered_markers_give_exact_offsets() -> None:
    answer = "In <e4>Toyota City</e4> stands the head office of <e3>Toyota</e3>, an <e2>Aichi</e2> firm (<e1>Toyota</e1>)."
    a = align(answer, SOURCE, get("en").tokenize)
    assert codes(a.findings) == []
    for p in a.projected.values():
        assert a.text[p.start : p.end] == p.text
    assert [a.projected[i].text for i in (1, 2, 3, 4)] == ["Toyota", "Aichi", "Toyota", "Toyota City"]
    assert a.projected[4].start < a.projected[3].start < a.projected[1].start


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (GOOD.replace("<e2>", "").replace("</e2>", ""), ["marker_missing"]),
        (GOOD.replace("<e4>", "<e2>").replace("</e4>", "</e2>"), ["marker_duplicated", "marker_missing"]),
        (GOOD.replace("<e2>Aichi</e2>", "<e2> </e2>Aichi"), ["marker_empty"]),
        (GOOD.replace("is a company", "is a <e9>company</e9>"), ["marker_unknown"]),
        (GOOD.replace("</e1>", ""), ["marker_malformed"]),
    ],
    ids=["missing", "duplicated", "empty", "unknown", "unclosed"],
)
def test_aligner_marker_faults(answer: str, expected: list[str]) -> None:
    a = align(answer, SOURCE, get("en").tokenize)
    assert [c for c in codes(a.findings) if c != "span_searched"] == expected
    assert all(f.severity == Severity.ERROR for f in a.findings if f.code.value in expected)


def test_aligner_searches_a_missing_repeated_entity() -> None:
    # e3 lost its marker but its entity is the same string as e1's: found by search
    answer = GOOD.replace("<e3>", "").replace("</e3>", "")
    a = align(answer, SOURCE, get("en").tokenize)
    assert codes(a.findings) == ["span_searched"]
    assert a.projected[3].text == "Toyota" and a.projected[3].start != a.projected[1].start


def test_aligner_searches_a_verbatim_entity_in_chinese() -> None:
    source = Record(id="s2", lang="ja", task="SCNM", text="愛知県に住む。",
                    spans=[{"start": 0, "end": 3, "text": "愛知県", "label": "地名"}])
    a = align("住在愛知县。", source, get("zh").tokenize)
    assert Code.MARKER_MISSING in [f.code for f in a.findings]  # simplified form: not verbatim
    b = align("我住在愛知県。", source, get("zh").tokenize)
    assert [f.code for f in b.findings] in ([Code.SPAN_SEARCHED], [Code.MARKER_MISSING])


def test_aligner_snaps_a_cut_english_word() -> None:
    answer = GOOD.replace("<e1>Toyota</e1>", "<e1>Toyot</e1>a")
    a = align(answer, SOURCE, get("en").tokenize)
    assert a.projected[1].text == "Toyota"
    assert Code.SPAN_SNAPPED in [f.code for f in a.findings]


def test_verifier_accepts_a_good_answer_and_builds_the_record() -> None:
    a = align(GOOD, SOURCE, get("en").tokenize)
    verdict = verify(SOURCE, JA, EN, a, LABELS, attempt=1, max_attempts=3)
    assert verdict.decision == Decision.ACCEPT
    rec = verdict.record
    assert rec is not None and rec.lang == "en" and rec.label == "Technology"
    assert rec.meta["source_id"] == "s1"
    assert [(s.label, s.text) for s in rec.spans] == [
        ("Corporation", "Toyota"), ("Location", "Aichi"), ("Corporation", "Toyota"), ("Location", "Toyota City")
    ]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (GOOD.replace("Aichi", "愛知"), "residue"),
        (GOOD.replace("Toyota City", "とよた"), "residue"),
        ("<e1>T</e1> <e2>A</e2> <e3>T</e3> <e4>TC</e4>.", "length_ratio"),  # 10 chars for ~70
        (GOOD + " " + GOOD.replace("<", "[").replace(">", "]") * 3, "length_ratio"),
    ],
)
def test_verifier_finds(answer: str, code: str) -> None:
    a = align(answer, SOURCE, get("en").tokenize)
    found = check(SOURCE, JA, EN, a)
    assert code in codes(found)


def test_verifier_residue_follows_the_language_pair() -> None:
    # kanji are residue in English, not in Chinese; kana are residue in both
    zh = get("zh").tokenize
    ok = align("<e1>丰田</e1>是<e2>爱知县</e2>的公司，<e3>丰田</e3>总部位于<e4>丰田市</e4>。", SOURCE, zh)
    assert "residue" not in codes(check(SOURCE, JA, ZH, ok))
    kana = align("<e1>トヨタ</e1>是<e2>爱知县</e2>的公司，<e3>丰田</e3>总部位于<e4>丰田市</e4>。", SOURCE, zh)
    assert "residue" in codes(check(SOURCE, JA, ZH, kana))


@pytest.mark.parametrize(
    ("task", "word", "ok"),
    [("SCPOS:Adj", "beautiful", True), ("SCPOS:Adj", "cat", False),
     ("SCPOS:N", "cat", True), ("SCPOS:N", "beautiful", False)],
)
def test_verifier_pos_class_for_scpos(task: str, word: str, ok: bool) -> None:
    source = Record(id="p", lang="ja", task=task, text="美しい猫", label="ポジティブ",
                    spans=[{"start": 0, "end": 2, "text": "美し", "label": "ポジティブ"}])
    answer = f"It is a very <e1>{word}</e1> thing indeed."
    a = align(answer, source, get("en").tokenize)
    assert ("pos_mismatch" in codes(check(source, JA, EN, a))) is not ok


def test_verifier_decisions() -> None:
    bad = align(GOOD.replace("Aichi", "愛知"), SOURCE, get("en").tokenize)
    assert verify(SOURCE, JA, EN, bad, LABELS, attempt=1, max_attempts=3).decision == Decision.RETRY
    assert verify(SOURCE, JA, EN, bad, LABELS, attempt=3, max_attempts=3).decision == Decision.REJECT
