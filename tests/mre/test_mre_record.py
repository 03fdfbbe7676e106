"""The record schema: every invariant is enforced, valid records round-trip."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from mre import Record, Relation, Span, Task, sort_spans

TEXT = "レッドフォックス株式会社は、東京都千代田区に本社を置く。"


def _valid() -> dict[str, Any]:
    return {
        "id": "r1",
        "lang": "ja",
        "task": "SCNM",
        "text": TEXT,
        "label": "技術",
        "spans": [
            {"start": 0, "end": 12, "text": "レッドフォックス株式会社", "label": "法人名"},
            {"start": 14, "end": 21, "text": "東京都千代田区", "label": "地名"},
        ],
        "relations": [{"head": 0, "label": "所在地", "tail": 1}],
        "meta": {},
    }


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = _valid()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()
_SWAPPED = _valid()
_SWAPPED["spans"] = list(reversed(_SWAPPED["spans"]))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(_with(("spans", 1, "end"), 99), "has length 85", id="length_mismatch"),
        pytest.param(
            _with(
                ("spans", 1), {"start": 40, "end": 47, "text": "東京都千代田区", "label": "地名"}
            ),
            "out of range",
            id="out_of_range",
        ),
        pytest.param(
            _with(("spans", 1, "text"), "大阪府大阪市北"), "does not match", id="mismatch"
        ),
        pytest.param(_SWAPPED, "sorted", id="unsorted"),
        pytest.param(_with(("relations", 0, "tail"), 2), "relation 0 tail 2", id="bad_relation"),
        pytest.param(_with(("task",), "NER"), "unknown task 'NER'", id="unknown_task"),
        pytest.param(_with(("text",), _DELETE), "Field required", id="missing_text"),
        pytest.param(_with(("spans", 0, "end"), 0), "greater than start", id="empty_span"),
        pytest.param(_with(("extra",), 1), "Extra inputs", id="extra_field"),
    ],
)
def test_record_rejects_broken_invariants(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        Record.model_validate(data)
    assert expected in str(info.value)


def test_record_valid_round_trips() -> None:
    data = _valid()
    record = Record.model_validate(copy.deepcopy(data))
    assert record.task is Task.SCNM
    assert record.model_dump(mode="json") == data
    assert record.pairs() == [("法人名", "レッドフォックス株式会社"), ("地名", "東京都千代田区")]


def test_record_sort_spans_reindexes_relations() -> None:
    a = Span(start=14, end=21, text="東京都千代田区", label="地名")
    b = Span(start=0, end=12, text="レッドフォックス株式会社", label="法人名")
    spans, rels = sort_spans([a, b], [Relation(head=1, label="所在地", tail=0)])
    assert spans == [b, a]
    assert rels == [Relation(head=0, label="所在地", tail=1)]
    Record(id="r", lang="ja", task=Task.SCNM, text=TEXT, spans=spans, relations=rels)
