"""Readers and writers: formats, strict and lenient bad-line handling, round trips."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mre import JsonlWriter, Record, RecordError, Span, Task, read_records, write_jsonl
from mre.io import detect_format, validation_reason

SHARED_DATA = Path(
    os.environ.get("MMM_SHARED_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
STOCKMARK = SHARED_DATA / "stockmark-ner-ja" / "ner.jsonl"
needs_stockmark = pytest.mark.skipif(
    not STOCKMARK.is_file(), reason=f"shared data not found at {STOCKMARK} (set MMM_SHARED_DATA)"
)


def _rec(rid: str = "r1", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": rid,
        "lang": "ja",
        "task": "SCNM",
        "text": "東京と大阪に住む",
        "label": "社会",
        "spans": [
            {"start": 0, "end": 2, "text": "東京", "label": "地名"},
            {"start": 3, "end": 5, "text": "大阪", "label": "地名"},
        ],
        "relations": [],
        "meta": {},
    }
    data.update(changes)
    return data


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _spans(*pairs: tuple[int, int, str]) -> list[dict[str, Any]]:
    return [{"start": s, "end": e, "text": t, "label": "地名"} for s, e, t in pairs]


# (bad line, the record id the error must name, text the reason must contain, kind)
BAD_LINES = [
    pytest.param('{"id": "r2", "lang": ', None, "invalid JSON", "invalid_json", id="invalid_json"),
    pytest.param(
        "[1, 2]", None, "expected a JSON object, found list", "not_object", id="not_object"
    ),
    pytest.param(
        _line({k: v for k, v in _rec("r2").items() if k != "text"}),
        "r2",
        "text: missing field",
        "missing_field",
        id="missing_field",
    ),
    pytest.param(
        _line(_rec("r2", task="NER")), "r2", "task: unknown task 'NER'", "schema", id="unknown_task"
    ),
    pytest.param(
        _line(_rec("r2", spans=_spans((6, 8, "住む"), (7, 9, "むx")))),
        "r2",
        "out of range",
        "schema",
        id="span_out_of_range",
    ),
    pytest.param(
        _line(_rec("r2", spans=_spans((0, 2, "京都")))),
        "r2",
        "does not match",
        "schema",
        id="span_text_mismatch",
    ),
    pytest.param(
        _line(_rec("r2", spans=_spans((3, 5, "大阪"), (0, 2, "東京")))),
        "r2",
        "sorted",
        "schema",
        id="unsorted_spans",
    ),
    pytest.param(
        _line(_rec("r2", relations=[{"head": 0, "label": "隣", "tail": 5}])),
        "r2",
        "relation 0 tail 5 is out of range",
        "schema",
        id="bad_relation",
    ),
    pytest.param(
        _line(_rec("r2", spans=[{"start": -1, "end": 2, "text": "東京", "label": "地名"}])),
        "r2",
        "spans[0].start: Input should be greater than or equal to 0",
        "schema",
        id="negative_start",
    ),
    pytest.param(
        _line(_rec("r1")),
        "r1",
        "duplicate id 'r1': first seen on line 1",
        "duplicate_id",
        id="duplicate_id",
    ),
]


def _file_with_bad_line(tmp_path: Path, bad: str) -> Path:
    path = tmp_path / "data.jsonl"
    # line 1 valid, line 2 blank (skipped but counted), line 3 bad, line 4 valid
    path.write_text(f"{_line(_rec('r1'))}\n\n{bad}\n{_line(_rec('r9'))}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("bad", "record_id", "reason", "kind"), BAD_LINES)
def test_io_strict_error_names_file_line_and_record(
    tmp_path: Path, bad: str, record_id: str | None, reason: str, kind: str
) -> None:
    path = _file_with_bad_line(tmp_path, bad)
    reader = read_records(path)
    assert next(reader).id == "r1"
    with pytest.raises(RecordError) as info:
        next(reader)
    err = info.value
    assert (err.path, err.line, err.record_id) == (str(path), 3, record_id)
    assert reason in err.reason
    message = str(err)
    assert message.startswith(f"{path}:3")
    assert (f"record {record_id!r}" in message) == (record_id is not None)
    assert "\n" not in message and "pydantic" not in message and "Value error" not in message


@pytest.mark.parametrize(("bad", "record_id", "reason", "kind"), BAD_LINES)
def test_io_lenient_rejects_bad_line_and_continues(
    tmp_path: Path, bad: str, record_id: str | None, reason: str, kind: str
) -> None:
    path = _file_with_bad_line(tmp_path, bad)
    rejects = tmp_path / "out" / "rejects.jsonl"
    reader = read_records(path, strict=False, rejects=rejects)
    assert [r.id for r in reader] == ["r1", "r9"]
    assert (reader.stats.accepted, reader.stats.rejected) == (2, 1)
    assert reader.stats.by_kind == {kind: 1}
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert (row["path"], row["line"], row["record_id"], row["kind"]) == (
        str(path),
        3,
        record_id,
        kind,
    )
    assert reason in row["reason"]
    assert row["raw"] == bad


def test_io_lenient_counts_many_rejects_into_open_file(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    bads = [str(p.values[0]) for p in BAD_LINES]
    path.write_text("\n".join([_line(_rec("r1")), *bads, _line(_rec("r9"))]) + "\n", "utf-8")
    sink = io.StringIO()
    reader = read_records(path, strict=False, rejects=sink)
    assert [r.id for r in reader] == ["r1", "r9"]
    assert reader.rejected == len(bads)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert [x["line"] for x in lines] == list(range(2, 2 + len(bads)))


def test_io_lenient_without_rejects_file_still_counts(tmp_path: Path) -> None:
    path = _file_with_bad_line(tmp_path, "not json")
    reader = read_records(path, strict=False)
    assert len(list(reader)) == 2 and reader.rejected == 1


def test_io_validation_reason_is_one_readable_line() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        Record.model_validate({"id": "x", "lang": "ja", "task": "SCNM", "spans": [{"start": "a"}]})
    reason, field = validation_reason(info.value)
    assert field == "text"
    assert reason.startswith("text: missing field; spans[0].start: Input should be a valid integer")
    assert "\n" not in reason and "errors.pydantic.dev" not in reason


# -- formats -----------------------------------------------------------------------------


def _stockmark_rows() -> list[dict[str, Any]]:
    return [
        {
            "curid": "7",
            "text": "鳥山は東京に住む",
            "entities": [
                {"name": "東京", "span": [3, 5], "type": "地名"},
                {"name": "鳥山", "span": [0, 2], "type": "人名"},
            ],
        },
        {"curid": "8", "text": "何もない文", "entities": []},
        {
            "curid": "7",
            "text": "鳥嶋も東京に住む",
            "entities": [
                {"name": "鳥嶋", "span": [0, 2], "type": "人名"},
            ],
        },
    ]


@pytest.mark.parametrize("as_list", [False, True], ids=["jsonl", "json_list"])
def test_io_stockmark_becomes_sorted_scnm_records(tmp_path: Path, as_list: bool) -> None:
    rows = _stockmark_rows()
    path = tmp_path / "ner.json"
    if as_list:
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        path.write_text("\n".join(_line(r) for r in rows) + "\n", encoding="utf-8")
    assert detect_format(path) == "stockmark"
    records = list(read_records(path))
    assert [r.id for r in records] == ["stockmark-7", "stockmark-8", "stockmark-7-2"]
    first = records[0]
    assert (first.lang, first.task.value, first.label, first.meta) == (
        "ja",
        "SCNM",
        None,
        {"curid": "7"},
    )
    assert first.spans == [
        Span(start=0, end=2, text="鳥山", label="人名"),
        Span(start=3, end=5, text="東京", label="地名"),
    ]
    assert records[1].spans == []


@pytest.mark.parametrize(
    ("row", "record_id", "reason"),
    [
        pytest.param(
            {"curid": "9", "text": "東京", "entities": [{"name": "東京", "span": [0, 2]}]},
            "stockmark-9",
            "entities[0]: missing field(s): type",
            id="entity_no_type",
        ),
        pytest.param(
            {
                "curid": "9",
                "text": "東京",
                "entities": [{"name": "京都", "span": [0, 2], "type": "地名"}],
            },
            "stockmark-9",
            "does not match",
            id="entity_mismatch",
        ),
        pytest.param(
            {
                "curid": "9",
                "text": "東京",
                "entities": [{"name": "東京", "span": [0], "type": "地名"}],
            },
            "stockmark-9",
            "entities[0].span: expected [start, end]",
            id="entity_bad_span",
        ),
        pytest.param(
            {"curid": "9", "entities": []}, "stockmark-9", "missing field(s): text", id="no_text"
        ),
        pytest.param(
            _stockmark_rows()[0],
            "stockmark-7-2",
            "the same curid and text",
            id="duplicate_sentence",
        ),
    ],
)
def test_io_stockmark_bad_rows_name_the_record(
    tmp_path: Path, row: dict[str, Any], record_id: str, reason: str
) -> None:
    path = tmp_path / "ner.jsonl"
    path.write_text(_line(_stockmark_rows()[0]) + "\n" + _line(row) + "\n", encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(read_records(path, fmt="stockmark"))
    assert (info.value.line, info.value.record_id) == (2, record_id)
    assert reason in info.value.reason


@needs_stockmark
def test_io_real_stockmark_file_gives_4274_records(tmp_path: Path) -> None:
    reader = read_records(STOCKMARK)
    records = list(reader)
    assert len(records) == 4274 == reader.stats.accepted
    assert reader.stats.rejected == 0
    assert len({r.id for r in records}) == 4274
    raw = [json.loads(line) for line in STOCKMARK.read_text(encoding="utf-8").splitlines()]
    assert sum(len(r.spans) for r in records) == sum(len(x["entities"]) for x in raw)
    assert all(r.task.value == "SCNM" and r.label is None and r.lang == "ja" for r in records)
    # the JSON-list variant of the same data reads the same
    as_list = tmp_path / "ner.json"
    as_list.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    assert list(read_records(as_list)) == records


def test_io_canonical_json_list_names_item_line(tmp_path: Path) -> None:
    path = tmp_path / "recs.json"
    items = [_rec("a"), _rec("b", task="???")]
    path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(read_records(path))
    expected_line = path.read_text(encoding="utf-8").splitlines().index(" {", 2) + 1
    assert (info.value.line, info.value.record_id) == (expected_line, "b")


def test_io_broken_json_list_raises_even_when_lenient(tmp_path: Path) -> None:
    path = tmp_path / "recs.json"
    path.write_text("[" + _line(_rec("a")) + ",\n{oops}]", encoding="utf-8")
    with pytest.raises(RecordError, match="broken JSON list") as info:
        list(read_records(path, fmt="jsonl", strict=False))
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(_line(_rec()) + "\n", "jsonl", id="canonical"),
        pytest.param("\n\n" + _line(_rec()) + "\n", "jsonl", id="leading_blank_lines"),
        pytest.param("not json\n" + _line(_rec()) + "\n", "jsonl", id="first_line_broken"),
        pytest.param(json.dumps([_rec()]), "jsonl", id="canonical_list"),
        pytest.param(
            _line({"curid": "1", "text": "x", "entities": []}), "stockmark", id="stockmark"
        ),
        pytest.param(json.dumps([{"input": "x/NER", "output": "a/NER/"}]), "mmm", id="mmm_list"),
        pytest.param("", None, id="empty"),
        pytest.param("[]", None, id="empty_list"),
    ],
)
def test_io_detect_format(tmp_path: Path, content: str, expected: str | None) -> None:
    path = tmp_path / "f.json"
    path.write_text(content, encoding="utf-8")
    assert detect_format(path) == expected


def test_io_detect_format_unknown_keys_raises(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"foo": 1}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"cannot tell the format.*\['foo'\]"):
        detect_format(path)


def test_io_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    assert list(read_records(path)) == []


# -- MMM files through the real OIELLM parser, mre.oiellm.decode_pair ---------------


def test_io_mmm_reads_pairs_through_training_format(tmp_path: Path) -> None:
    path = tmp_path / "Train_En_0_SCNM_dataset.json"
    items = [
        {
            "input": "Kazan met Marlon Brando./NER",
            "output": "Literature/NER/:Person;Marlon Brando:Person;Kazan",
        },
        {"input": "Nothing here./NER", "output": "Nature/NER/:Place;Mars"},
    ]
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    reader = read_records(path, strict=False)
    records = list(reader)
    assert [r.id for r in records] == ["mmm-Train_En_0_SCNM_dataset-1"]
    assert records[0].pairs() == [("Person", "Kazan"), ("Person", "Marlon Brando")]
    assert (records[0].lang, records[0].label) == ("en", "Literature")
    assert records[0].task.value == "SCNM"
    assert reader.stats.by_kind == {"format": 1}
    with pytest.raises(RecordError, match="Mars") as info:
        list(read_records(path))
    assert (info.value.line, info.value.record_id) == (6, "mmm-Train_En_0_SCNM_dataset-2")


@pytest.mark.parametrize(
    ("name", "lang", "task"),
    [
        ("Train_Ch_1_SCPOS_RW_clear2.json", "zh", "SCPOS:RW"),
        ("Train_Ch_2_SCPOS_1W_adj_n_clear2.json", "zh", "SCPOS:Adj&N"),
        ("Train_En_3_SCPOS_1W_n_clear2.json", "en", "SCPOS:N"),
        ("Train_En_4_SCPOS_1W_adj_clear2.json", "en", "SCPOS:Adj"),
        ("test_Ja_5_TCREE_2k.json", "ja", "TCREE"),
        ("Train_Ch_MRE_OIEDataset.json", "zh", None),
    ],
)
def test_io_mmm_language_and_task_from_file_name(
    tmp_path: Path, name: str, lang: str, task: str | None
) -> None:
    # the name gives lang and task; without a task in the name, the task word decides
    word = Task(task).task_word if task else "Relation Extraction"
    path = tmp_path / name
    path.write_text(json.dumps([{"input": f"a b/{word}", "output": f"x/{word}/"}]), encoding="utf-8")
    [record] = list(read_records(path))
    assert record.lang == lang
    assert record.task.value == (task or "TCREE")
    assert (record.text, record.label, record.spans) == ("a b", "x", [])


# -- writers --------------------------------------------------------------------------------


def test_io_write_read_round_trip_keeps_non_ascii(tmp_path: Path) -> None:
    records = [Record.model_validate(_rec("r1")), Record.model_validate(_rec("r2", label=None))]
    path = tmp_path / "sub" / "out.jsonl"
    assert write_jsonl(records, path) == 2
    raw = path.read_bytes().decode("utf-8")
    assert "東京" in raw and "\\u" not in raw
    lines = raw.splitlines()
    assert len(lines) == 2 and all(": " not in x and ", " not in x for x in lines)
    assert list(read_records(path)) == records


def test_io_write_jsonl_to_open_file() -> None:
    sink = io.StringIO()
    write_jsonl([Record.model_validate(_rec())], sink)
    assert json.loads(sink.getvalue()) == _rec()


@pytest.mark.parametrize("fsync", [False, True])
def test_io_jsonl_writer_appends_across_opens(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "out" / "accepted.jsonl"
    with JsonlWriter(path, fsync=fsync) as out:
        out.write(Record.model_validate(_rec("r1")))
        assert path.read_text(encoding="utf-8").count("\n") == 1  # flushed at once
    with JsonlWriter(path, fsync=fsync) as out:
        out.write({"id": "r2", "findings": ["ラベル"]})
        assert out.count == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r1", "r2"]


def test_io_jsonl_writer_cuts_unfinished_last_line(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    path.write_text(_line(_rec("r1")) + "\n" + '{"id": "r2", "te', encoding="utf-8")
    with JsonlWriter(path) as out:
        out.write(Record.model_validate(_rec("r3")))
    assert [r.id for r in read_records(path)] == ["r1", "r3"]


def test_io_jsonl_writer_refuses_after_close(tmp_path: Path) -> None:
    out = JsonlWriter(tmp_path / "x.jsonl")
    out.close()
    with pytest.raises(ValueError, match="closed"):
        out.write({"id": "x"})


# ---- issue 11: bad bytes, a BOM, the caller's limits --------------------------------------


def test_io_invalid_utf8_line_is_one_reject_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    good = [_line(_rec(f"r{i}")).encode("utf-8") for i in (1, 3)]
    bad = _line(_rec("r2")).encode("utf-8").replace("大阪".encode(), b"\xff\xfe\xe5")
    path.write_bytes(b"\n".join([good[0], bad, good[1]]) + b"\n")
    with pytest.raises(RecordError) as info:
        list(read_records(path))
    assert (info.value.line, "not valid UTF-8" in info.value.reason) == (2, True)
    rejects = io.StringIO()
    reader = read_records(path, strict=False, rejects=rejects)
    assert [r.id for r in reader] == ["r1", "r3"]
    (row,) = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert (row["line"], row["kind"]) == (2, "invalid_utf8")
    assert "byte(s) ff at byte" in row["reason"]


def test_io_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (_line(_rec("r1")) + "\n").encode("utf-8"))
    assert detect_format(path) == "jsonl"
    assert [r.id for r in read_records(path)] == ["r1"]


def test_io_invalid_utf8_in_a_json_list_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(b'[\n{"id": "r1",\n "text": "\xff"}\n]\n')
    with pytest.raises(RecordError) as info:
        list(read_records(path, fmt="jsonl"))
    assert info.value.line == 3 and "UTF-8" in info.value.reason


def test_io_expect_lang_and_max_chars_reject_with_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    long_text = "東京" + "あ" * 50
    rows = [
        _rec("r1"),
        _rec("r2", lang="en"),
        _rec("r3", text=long_text, spans=_spans((0, 2, "東京"))),
        _rec("r4"),
    ]
    path.write_text("\n".join(_line(r) for r in rows) + "\n", encoding="utf-8")
    rejects = io.StringIO()
    reader = read_records(path, strict=False, rejects=rejects, expect_lang="ja", max_chars=20)
    assert [r.id for r in reader] == ["r1", "r4"]
    got = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert [(g["line"], g["record_id"], g["kind"]) for g in got] == [
        (2, "r2", "wrong_language"),
        (3, "r3", "too_long"),
    ]
    assert "52 characters" in got[1]["reason"] and "20" in got[1]["reason"]
