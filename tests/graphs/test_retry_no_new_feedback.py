"""A pair whose answer never changes: no retry repeats a request, and the pair ends with its
own rejection reason (`no_new_feedback`) instead of burning attempts (real CLI, real HTTP)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from replay_server.server import Answer, ChatRequest, LocalOpenAIServer, Reply
from tests.conftest import read_jsonl, run_translate
from tests.graphs.test_loose_answers import GOLD, RECORDS, SOURCE_RE


def test_retry_same_answer_ends_with_no_new_feedback(tmp_path: Path) -> None:
    record = read_jsonl(RECORDS)[0]
    gold = next(g for g in read_jsonl(GOLD) if g["id"] == record["id"] and g["target"] == "en")
    bad = re.sub(r"</?e1>", "", gold["text"])  # marker 1 dropped, every time

    def handler(request: ChatRequest) -> Reply:
        if SOURCE_RE.search(request.all_text) is None:
            return Answer({"text": "OK"})  # the probe
        return Answer({"text": bad})

    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    with LocalOpenAIServer(handler) as server:
        rc = run_translate(
            [
                "--input",
                str(data),
                "--source",
                "ja",
                "--target",
                "en",
                "--out",
                str(out),
                "--max-attempts",
                "5",
            ],
            server.base_url,
        )
        translations = [r for r in server.requests if SOURCE_RE.search(r.all_text)]
    assert rc == 0
    bodies = [json.dumps(r.messages, ensure_ascii=False) for r in translations]
    assert len(bodies) == 3 and len(set(bodies)) == 3  # first try, feedback, reworded feedback
    [row] = read_jsonl(out / "en" / "rejected.jsonl")
    assert "no_new_feedback" in row["reasons"]
    assert row["attempts"] == 4  # the 4th attempt stopped before any request
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["rejection_reasons"].get("no_new_feedback") == 1
    assert report["llm"]["calls"] == 3
