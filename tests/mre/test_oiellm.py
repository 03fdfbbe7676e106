"""mre.oiellm: the OIELLM text format, its round trip and its parser's errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mre import Record, Relation, Span, Task
from mre.oiellm import (
    FormatError,
    ParseIssue,
    decode,
    decode_pair,
    decode_with_errors,
    encode,
    escape,
    split_unescaped,
    unescape,
)


def rec(
    text: str, task: str, label: str | None, spans: list[tuple[str, str, int]], **kw: Any
) -> Record:
    """A record from (label, span text, occurrence index 1-based) triples."""
    out = []
    for span_label, span_text, k in spans:
        start = -1
        for _ in range(k):
            start = text.index(span_text, start + 1)
        out.append(Span(start=start, end=start + len(span_text), text=span_text, label=span_label))
    out.sort(key=lambda s: (s.start, s.end))
    return Record(
        id="t", lang=kw.pop("lang", "en"), task=task, text=text, label=label, spans=out, **kw
    )


def same(a: Record, b: Record) -> bool:
    return a.model_dump(exclude={"id", "meta"}) == b.model_dump(exclude={"id", "meta"})


def roundtrip(r: Record) -> tuple[Record, list[ParseIssue]]:
    input_text, output_text = encode(r)
    assert input_text == f"{r.text}/{input_text.rsplit('/', 1)[1]}"
    return decode_with_errors(output_text, text=r.text, task=r.task, lang=r.lang, id=r.id)


# -- hand cases: the exact text of every task -------------------------------------------------

CASES = [
    (  # the model card's example shape
        rec(
            "Marlon Brando starred in On the Waterfront.",
            "SCNM",
            "Literature",
            [("Person", "Marlon Brando", 1), ("Product Name", "On the Waterfront", 1)],
        ),
        "Marlon Brando starred in On the Waterfront./NER",
        "Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront",
    ),
    (  # stockmark: no text label
        rec(
            "鳥山は漫画家の則巻千兵衛を描いた。",
            "SCNM",
            None,
            [("人名", "鳥山", 1), ("人名", "則巻千兵衛", 1)],
            lang="ja",
        ),
        "鳥山は漫画家の則巻千兵衛を描いた。/NER",
        "/NER/:人名;鳥山:人名;則巻千兵衛",
    ),
    (
        rec(
            "The food was great but the room was dirty.",
            "SCPOS:RW",
            "neutral",
            [("positive", "great", 1), ("negative", "dirty", 1)],
        ),
        "The food was great but the room was dirty./Sentiment Relation Word",
        "neutral/Sentiment Relation Word/:positive;great:negative;dirty",
    ),
    (
        rec(
            "A lovely hotel.",
            "SCPOS:Adj&N",
            "positive",
            [("positive", "lovely", 1), ("neutral", "hotel", 1)],
        ),
        "A lovely hotel./Sentiment Adj and N",
        "positive/Sentiment Adj and N/:positive;lovely:neutral;hotel",
    ),
    (
        rec("A lovely hotel.", "SCPOS:Adj", "positive", [("positive", "lovely", 1)]),
        "A lovely hotel./Sentiment Adj",
        "positive/Sentiment Adj/:positive;lovely",
    ),
    (
        rec("A lovely hotel.", "SCPOS:N", "positive", [("neutral", "hotel", 1)]),
        "A lovely hotel./Sentiment N",
        "positive/Sentiment N/:neutral;hotel",
    ),
    (
        rec(
            "Toriyama drew Dragon Ball.",
            "TCREE",
            "culture",
            [("person", "Toriyama", 1), ("work", "Dragon Ball", 1)],
            relations=[Relation(head=0, label="author of", tail=1)],
        ),
        "Toriyama drew Dragon Ball./Relation Extraction",
        "culture/Relation Extraction/:person;Toriyama:work;Dragon Ball:Toriyama;author of;Dragon Ball",
    ),
    (
        rec(
            "The army attacked the town.",
            "TCREE",
            "military",
            [("trigger", "attacked", 1), ("target", "the town", 1)],
            relations=[Relation(head=0, label="target", tail=1)],
            meta={"event": True},
        ),
        "The army attacked the town./Event Extraction",
        "military/Event Extraction/:trigger;attacked:target;the town:attacked;target;the town",
    ),
    (
        rec(
            "Ada Lovelace wrote notes on the Analytical Engine.",
            "TCONER",
            "computing history",
            [("mathematician", "Ada Lovelace", 1), ("machine", "Analytical Engine", 1)],
        ),
        "Ada Lovelace wrote notes on the Analytical Engine./NER",
        "computing history/NER/:mathematician;Ada Lovelace:machine;Analytical Engine",
    ),
    (  # no spans at all
        rec("Nothing here.", "SCNM", "society", []),
        "Nothing here./NER",
        "society/NER/",
    ),
]


@pytest.mark.parametrize(("record", "input_text", "output_text"), CASES)
def test_format_encode_writes_the_oiellm_text(
    record: Record, input_text: str, output_text: str
) -> None:
    assert encode(record) == (input_text, output_text)


@pytest.mark.parametrize(("record", "input_text", "output_text"), CASES)
def test_format_decode_reads_it_back(record: Record, input_text: str, output_text: str) -> None:
    back, errors = decode_with_errors(
        output_text, text=record.text, task=record.task, lang=record.lang
    )
    assert errors == []
    assert same(back, record)
    assert back.meta.get("event", False) == bool(record.meta.get("event"))


# -- round trip on tricky records --------------------------------------------------------------

TRICKY = {
    "repeated, both annotated": rec(
        "IBM met IBM.", "SCNM", "x", [("ORG", "IBM", 1), ("ORG", "IBM", 2)]
    ),
    "repeated, only the second": rec("IBM met IBM.", "SCNM", "x", [("ORG", "IBM", 2)]),
    "inside an unannotated word": rec(
        "富野由悠季の作品が富野の目にとまり", "SCNM", None, [("人名", "富野", 2)], lang="ja"
    ),
    "nested, same start": rec(
        "東京都に住む", "SCNM", None, [("地名", "東京", 1), ("地名", "東京都", 1)], lang="ja"
    ),
    "same place, two labels": rec(
        "Paris is big", "SCNM", "x", [("LOC", "Paris", 1), ("PER", "Paris", 1)]
    ),
    "overlapping occurrences": rec("aaaa", "SCNM", "x", [("A", "aa", 2), ("A", "aa", 3)]),
    "separators in span, label and text label": rec(
        "see a:b;c/d#e\\f here",
        "TCONER",
        "lbl/with:all;#\\",
        [("ty;pe:x/y#z", "a:b;c/d#e\\f", 1)],
    ),
    "empty string label is null": rec("x y", "SCNM", None, [("A", "y", 1)]),
    "relation to the second of two same texts": rec(
        "Bo saw Bo and Kai.",
        "TCREE",
        "t",
        [("P", "Bo", 1), ("P", "Bo", 2), ("P", "Kai", 1)],
        relations=[Relation(head=1, label="knows", tail=2), Relation(head=0, label="is", tail=1)],
    ),
    "relation ends with separators": rec(
        "A:B likes C;D",
        "TCREE",
        "t",
        [("X", "A:B", 1), ("Y", "C;D", 1)],
        relations=[Relation(head=0, label="li:kes", tail=1)],
    ),
}


@pytest.mark.parametrize("name", list(TRICKY))
def test_format_round_trip_tricky_records(name: str) -> None:
    record = TRICKY[name]
    back, errors = roundtrip(record)
    assert errors == []
    assert same(back, record), (encode(record), back)


def test_format_marks_an_occurrence_only_when_needed() -> None:
    assert encode(TRICKY["repeated, both annotated"])[1] == "x/NER/:ORG;IBM:ORG;IBM"
    assert encode(TRICKY["repeated, only the second"])[1] == "x/NER/:ORG;IBM#2"
    assert encode(TRICKY["separators in span, label and text label"])[1] == (
        "lbl\\/with\\:all\\;\\#\\\\/NER/:ty\\;pe\\:x\\/y\\#z;a\\:b\\;c\\/d\\#e\\\\f"
    )


def test_format_relation_end_that_cannot_be_told_apart_raises() -> None:
    r = rec(
        "Paris is big",
        "TCREE",
        "x",
        [("LOC", "Paris", 1), ("PER", "Paris", 1)],
        relations=[Relation(head=1, label="r", tail=0)],
    )
    with pytest.raises(FormatError, match="cannot be told"):
        encode(r)


@pytest.mark.parametrize("s", ["", "plain", "a:b;c/d#e\\f", "\\\\::", "末尾\\"])
def test_format_escape_round_trips(s: str) -> None:
    assert unescape(escape(s)) == s
    assert split_unescaped(escape(s), ":") == [escape(s)]


# -- every record of the shared data --------------------------------------------------------------


def _shared_data() -> Path:
    env = os.environ.get("MMM_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_format_round_trip_every_shared_record() -> None:
    from mre.io import read_records

    files = sorted(_shared_data().rglob("*.jsonl"))
    if not files:
        pytest.skip(f"no shared data under {_shared_data()}")
    n = 0
    failures = []
    for path in files:
        for r in read_records(path, fmt="auto"):
            n += 1
            back, errors = roundtrip(r)
            if errors or not same(back, r):
                failures.append((r.id, encode(r)[1], [str(e) for e in errors]))
    assert n > 0
    assert failures == [], f"{len(failures)} of {n} records do not round-trip: {failures[:3]}"


# -- reading model outputs: order, truncation, malformed text -----------------------------------

TEXT = "IBM and Sony met in Tokyo; IBM won."


@pytest.mark.parametrize(
    ("output", "complete", "want_spans", "want_label", "error_part"),
    [
        # out of text order (as the released OIELLM writes): a string found once is placed
        ("biz/NER/:LOC;Tokyo:ORG;Sony", True, [("ORG", 8), ("LOC", 20)], "biz", None),
        # ... a repeated one is looked for after the previous item first, then from the start
        (
            "biz/NER/:LOC;Tokyo:ORG;IBM:ORG;IBM",
            True,
            [("ORG", 0), ("LOC", 20), ("ORG", 27)],
            "biz",
            None,
        ),
        # a repeated string takes its occurrences in order
        ("biz/NER/:ORG;IBM:ORG;IBM", True, [("ORG", 0), ("ORG", 27)], "biz", None),
        # more repeats than occurrences
        ("biz/NER/:ORG;IBM:ORG;IBM:ORG;IBM", True, [("ORG", 0), ("ORG", 27)], "biz", "more often"),
        # cut off by the token limit: the last item may be a prefix ("Tok"), so it goes
        ("biz/NER/:ORG;IBM:LOC;Tok", False, [("ORG", 0)], "biz", "cut off"),
        ("biz/NE", False, [], "biz", "task word"),
        ("bi", False, [], None, "before the task word"),
        ("", True, [], None, "before the task word"),
        # a trailing ':' is fine; a span not in the text is skipped
        ("biz/NER/:ORG;IBM:ORG;Apple:", True, [("ORG", 0)], "biz", "not found"),
        ("biz/NER/:ORG;IBM:ORG:LOC;Tokyo", True, [("ORG", 0), ("LOC", 20)], "biz", "fields"),
        ("biz/NER/:ORG;IBM:a;b;c;d", True, [("ORG", 0)], "biz", "fields"),
        ("biz/NER/junk:ORG;IBM", True, [("ORG", 0)], "biz", "before the first"),
        ("biz/NER/:ORG;IBM#3", True, [], "biz", "occurs 2 times"),
        ("biz/NER/:ORG;IBM#x", True, [], "biz", "#k"),
        ("biz/NER/:;IBM", True, [], "biz", "empty label"),
        ("biz/Sentiment N/:ORG;IBM", True, [("ORG", 0)], "biz", "task word"),
        ("biz/NER", True, [], "biz", "after the task word"),
    ],
)
def test_format_decode_reads_what_it_can(
    output: str,
    complete: bool,
    want_spans: list[tuple[str, int]],
    want_label: str | None,
    error_part: str | None,
) -> None:
    record, errors = decode_with_errors(
        output, text=TEXT, task="SCNM", lang="en", complete=complete
    )
    assert [(s.label, s.start) for s in record.spans] == want_spans
    assert all(TEXT[s.start : s.end] == s.text for s in record.spans)
    assert record.label == want_label
    if error_part is None:
        assert errors == []
    else:
        assert any(error_part in str(e) for e in errors), errors


def test_format_decode_puts_errors_in_meta_and_keeps_the_id() -> None:
    r = decode("biz/NER/:ORG;Apple", text=TEXT, task=Task.SCNM, lang="en", id="r7")
    assert r.id == "r7" and r.spans == []
    assert r.meta["parse_errors"] == ["span not found in the text: 'Apple'"]
    assert "parse_errors" not in decode("biz/NER/", text=TEXT, task="SCNM", lang="en").meta


def test_format_decode_relations_from_bare_triples() -> None:
    r, errors = decode_with_errors(
        "t/Relation Extraction/:IBM;rival of;Sony:Tokyo;hosts;Nobody",
        text=TEXT,
        task="TCREE",
        lang="en",
    )
    assert [(s.text, s.label) for s in r.spans] == [("IBM", "entity"), ("Sony", "entity")]
    assert r.relations == [Relation(head=0, label="rival of", tail=1)]
    assert len(errors) == 1 and "relation" in str(errors[0])
    loop, errors = decode_with_errors(
        "t/Relation Extraction/:Sony;is;Sony", text=TEXT, task="TCREE", lang="en"
    )
    assert (
        errors == []
        and len(loop.spans) == 1
        and loop.relations == [Relation(head=0, label="is", tail=0)]
    )


def test_format_decode_pair_reads_mmm_items() -> None:
    r = decode_pair(
        "Toriyama drew Dragon Ball./Relation Extraction",
        "culture/Relation Extraction/:person;Toriyama:work;Dragon Ball:Toriyama;author of;Dragon Ball",
        id="mmm-1",
        lang="en",
    )
    assert r.task is Task.TCREE and r.id == "mmm-1" and len(r.relations) == 1
    assert decode_pair("a b/NER", "x/NER/:T;b", lang="en", task="TCONER").task is Task.TCONER
    with pytest.raises(FormatError, match="SCNM, TCONER"):
        decode_pair("a b/NER", "x/NER/:T;b", lang="en")
    with pytest.raises(FormatError, match="not found"):
        decode_pair("a b/NER", "x/NER/:T;zzz", lang="en", task="SCNM")
    lenient = decode_pair("a b/NER", "x/NER/:T;zzz", lang="en", task="SCNM", strict=False)
    assert lenient.meta["parse_errors"]


# -- the paper's format: no escapes; the escaped form is still read ----------------------------


@pytest.mark.parametrize(
    ("text", "pairs", "output"),
    [
        ("CBU-87/Bは新型である。", [("製品名", "CBU-87/B")], "/NER/:製品名;CBU-87/B"),
        ("A:B likes C;D.", [("X", "A:B"), ("Y", "C;D")], "/NER/:X;A:B:Y;C;D"),
        ("Tag #1 and tag", [("T", "Tag #1"), ("T", "tag")], "/NER/:T;Tag #1:T;tag"),
        ("a:b:c a", [("L", "a:b"), ("L", "c")], "/NER/:L;a:b:L;c"),
    ],
)
def test_format_writes_fields_as_the_paper_does(
    text: str, pairs: list[tuple[str, str]], output: str
) -> None:
    spans = []
    for label, name in pairs:
        start = text.index(name)
        spans.append(Span(start=start, end=start + len(name), text=name, label=label))
    r = Record(id="p", lang="ja", task=Task.SCNM, text=text, spans=spans)
    assert encode(r)[1] == output
    back, errors = decode_with_errors(output, text=text, task="SCNM", lang="ja")
    assert errors == [] and same(back, r)


def test_format_still_reads_the_escaped_form() -> None:
    text = "CBU-87/Bと新型A:Bを発表"
    back, errors = decode_with_errors(
        "/NER/:製品名;CBU-87\\/B:製品名;A\\:B", text=text, task="SCNM", lang="ja"
    )
    assert errors == []
    assert [s.text for s in back.spans] == ["CBU-87/B", "A:B"]


def test_format_shared_records_carry_no_escapes() -> None:
    from mre.io import read_records

    files = sorted(_shared_data().rglob("*.jsonl"))
    if not files:
        pytest.skip(f"no shared data under {_shared_data()}")
    escaped = [
        r.id
        for path in files
        for r in read_records(path, fmt="auto")
        if "\\" in encode(r)[1] and not any("\\" in s.text for s in r.spans)
    ]
    assert escaped == []
