"""graphs.rows: the accepted/rejected rows read back to the same bytes; one figures function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphs.rows import (
    AcceptedRow,
    DraftAnswer,
    RejectedRow,
    pair_key,
    read_accepted,
    read_rejected,
    run_figures,
)
from mre import Record
from mre.errors import RecordError
from mre.io import dumps_line

ROWS = Path(__file__).resolve().parents[1] / "fixtures" / "run_rows"  # lines a run wrote


@pytest.mark.parametrize("name", ["accepted.jsonl", "rejected.jsonl"])
def test_rows_dump_to_the_bytes_the_runner_wrote(name: str) -> None:
    lines = (ROWS / name).read_text(encoding="utf-8").splitlines()
    rows = read_accepted(ROWS / name) if name.startswith("accepted") else read_rejected(ROWS / name)
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows, strict=True):
        assert dumps_line(row.to_json()) == line


def test_rows_rejected_kinds() -> None:
    rows = {(r.key, r.target): r for r in read_rejected(ROWS / "rejected.jsonl")}
    broken = rows[("line:32", "en")]
    assert broken.invalid_input and isinstance(broken.source, str) and broken.line == 32
    assert "other_targets" not in broken.to_json()
    assert isinstance(rows[("wrong-lang", "en")].source, Record)  # a record in another language
    residue = rows[("stockmark-82811", "en")]
    assert isinstance(residue.source, Record) and isinstance(residue.draft, Record)
    assert residue.other_targets == {"zh": "accepted"} and "line" not in residue.to_json()
    assert pair_key(residue) == "stockmark-82811"


def test_rows_draft_answer_and_bad_source() -> None:
    good = json.loads((ROWS / "rejected.jsonl").read_text(encoding="utf-8").splitlines()[2])
    good["draft"] = {"answer": "<e1>x</e1>", "alignment": {"text": "x", "projected": [[1, 0, 1, "x"]]}}
    row = RejectedRow.model_validate(good)
    assert isinstance(row.draft, DraftAnswer) and row.draft.alignment is not None
    assert row.to_json()["draft"] == good["draft"]
    # a translated pair whose source is not a record is an error, not a raw value
    with pytest.raises(ValueError, match="validation error"):
        RejectedRow.model_validate({**good, "source": {"id": "x"}})


def test_rows_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    line = (ROWS / "accepted.jsonl").read_text(encoding="utf-8").splitlines()[0]
    broken = json.loads(line)
    broken["spans"][0]["end"] += 1
    path.write_text(line + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match="has length 35") as info:
        read_accepted(path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_rows_run_figures_counts_by_hand() -> None:
    accepted = read_accepted(ROWS / "accepted.jsonl")
    rejected = read_rejected(ROWS / "rejected.jsonl")
    figures = run_figures([*(("en", r) for r in accepted), *((r.target or "", r) for r in rejected)])
    en, zh = figures.languages["en"], figures.languages["zh"]
    assert (en.accepted, en.rejected, zh.accepted, zh.rejected) == (5, 4, 0, 3)
    assert en.projected_spans == sum(len(r.spans) for r in accepted)
    # a bad input line that is not JSON has no spans; the others count their source's spans
    want = sum(len(r.spans) for r in accepted) + sum(
        len(r.source.spans) for r in rejected if r.target == "en" and isinstance(r.source, Record)
    )
    assert en.source_spans == want
    assert en.reasons["invalid_input"] == 2 and zh.reasons["label_unmapped"] == 1
    assert en.usage["calls"] == sum(r.meta.usage.calls for r in accepted) + sum(
        r.usage.calls for r in rejected if r.target == "en"
    )
    assert figures.per_source["stockmark-82811"] == {"en": "rejected"}
    assert isinstance(accepted[0], AcceptedRow) and accepted[0].meta.source_id
