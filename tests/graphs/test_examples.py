"""The offline demo data in `examples/`: records, recorded translations and references agree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mre.record import Record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TARGETS = ("en", "zh")
MARKER_RE = re.compile(r"<(/?)e(\d+)>")
KANA_RE = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")


def _lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AssertionError(f"{path}:{lineno}: not JSON: {e}") from e
    return rows


def _records() -> list[Record]:
    return [Record.model_validate(row) for row in _lines(EXAMPLES / "demo.jsonl")]


def _marked(record: Record) -> str:
    """The record's text with span i (1-based) wrapped as `<ei>…</ei>`, inserted from the end."""
    text = record.text
    for i, span in reversed(list(enumerate(record.spans, start=1))):
        text = f"{text[: span.start]}<e{i}>{text[span.start : span.end]}</e{i}>{text[span.end :]}"
    return text


def _markers(text: str) -> list[tuple[bool, int]]:
    return [(m.group(1) == "/", int(m.group(2))) for m in MARKER_RE.finditer(text)]


def _strip(text: str) -> str:
    return MARKER_RE.sub("", text)


REPLAY = _lines(EXAMPLES / "replay.jsonl")
REPLAY_IDS = [f"{row.get('id')}:{row.get('target')}" for row in REPLAY]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("東京", "東京"),
        ("a<e1>b</e1>c<e2>d</e2>", "abcd"),
        ("<e10>x</e10>", "x"),
    ],
)
def test_examples_strip_helper(text: str, expected: str) -> None:
    assert _strip(text) == expected


def test_examples_marked_helper_wraps_from_the_end() -> None:
    record = Record.model_validate(
        {
            "id": "t",
            "lang": "ja",
            "task": "SCNM",
            "text": "東京と大阪",
            "spans": [
                {"start": 0, "end": 2, "text": "東京", "label": "地名"},
                {"start": 3, "end": 5, "text": "大阪", "label": "地名"},
            ],
        }
    )
    assert _marked(record) == "<e1>東京</e1>と<e2>大阪</e2>"


def test_examples_demo_records_validate() -> None:
    records = _records()
    assert len(records) == 30
    for record in records:
        assert record.lang == "ja", record.id
        assert record.label in {"社会", "文芸", "学問", "技術", "自然"}, record.id
        assert record.id == f"stockmark-{record.meta['curid']}", record.id
        ends = [s.end for s in record.spans]
        starts = [s.start for s in record.spans]
        assert all(e <= s for e, s in zip(ends, starts[1:], strict=False)), (
            f"{record.id}: spans overlap, markers cannot wrap them"
        )


def test_examples_demo_ids_unique() -> None:
    ids = [r.id for r in _records()]
    assert len(ids) == len(set(ids))


def test_examples_replay_one_line_per_record_and_target() -> None:
    expected = sorted((r.id, t) for r in _records() for t in TARGETS)
    got = sorted((row["id"], row["target"]) for row in REPLAY)
    assert got == expected


@pytest.mark.parametrize("row", REPLAY, ids=REPLAY_IDS)
def test_examples_replay_source_is_marked_record(row: dict[str, Any]) -> None:
    records = {r.id: r for r in _records()}
    assert row["id"] in records, f"replay id {row['id']} has no demo record"
    assert row["source"] == _marked(records[row["id"]])


@pytest.mark.parametrize("row", REPLAY, ids=REPLAY_IDS)
def test_examples_replay_markers_balanced(row: dict[str, Any]) -> None:
    n = len(next(r for r in _records() if r.id == row["id"]).spans)
    text = row["text"]
    markers = _markers(text)
    opened = sorted(i for closing, i in markers if not closing)
    closed = sorted(i for closing, i in markers if closing)
    assert opened == list(range(1, n + 1)), f"{row['id']}/{row['target']}: openings {opened}"
    assert closed == list(range(1, n + 1)), f"{row['id']}/{row['target']}: closings {closed}"
    for i in range(1, n + 1):
        m = re.search(rf"<e{i}>(.*?)</e{i}>", text)
        assert m is not None, f"{row['id']}/{row['target']}: <e{i}> not closed after opening"
        inner = m.group(1)
        assert inner.strip(), f"{row['id']}/{row['target']}: entity {i} is empty"
        assert not MARKER_RE.search(inner), f"{row['id']}/{row['target']}: entity {i} nests"
    assert _strip(text).strip(), f"{row['id']}/{row['target']}: empty translation"


@pytest.mark.parametrize("row", REPLAY, ids=REPLAY_IDS)
def test_examples_replay_no_source_script(row: dict[str, Any]) -> None:
    text = _strip(row["text"])
    assert not KANA_RE.search(text), f"{row['id']}/{row['target']}: kana in {text!r}"
    if row["target"] == "en":
        assert not HAN_RE.search(text), f"{row['id']}/en: kanji in {text!r}"
    else:
        assert HAN_RE.search(text), f"{row['id']}/zh: no Chinese characters in {text!r}"


@pytest.mark.parametrize("lang", TARGETS)
def test_examples_references_match_replay(lang: str) -> None:
    refs = _lines(EXAMPLES / "references" / f"{lang}.jsonl")
    expected = {row["id"]: _strip(row["text"]) for row in REPLAY if row["target"] == lang}
    assert [r["lang"] for r in refs] == [lang] * len(refs)
    ids = [r["id"] for r in refs]
    assert len(ids) == len(set(ids))
    assert {r["id"]: r["text"] for r in refs} == expected
