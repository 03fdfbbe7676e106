"""End to end: the CLI, the graph, the real langchain-openai client and a local HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphs.translate import main
from replay_server.server import LocalOpenAIServer
from tests.llm_fakes import (
    DEMO,
    RecordedTranslator,
    drop_marker,
    duplicate_index,
    empty_marker,
    kana_residue,
    unknown_index,
)

pytestmark = pytest.mark.timeout(300)

DEMO_IDS = [json.loads(line)["id"] for line in DEMO.read_text(encoding="utf-8").splitlines()]

PLANTS = {
    ("stockmark-100969", "en"): ("marker_missing", drop_marker),
    ("stockmark-69104", "en"): ("marker_duplicated", duplicate_index),
    ("stockmark-94492", "zh"): ("marker_empty", empty_marker),
    ("stockmark-20711", "zh"): ("marker_unknown", unknown_index),
    ("stockmark-53548", "en"): ("residue", kana_residue),
}
ALWAYS_BAD = {("stockmark-82811", "en"): kana_residue}


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


def run_cli(args: list[str], base_url: str) -> int:
    return main(
        [*args, "--base-url", base_url, "--no-progress", "--log-level", "WARNING"],
        environ={"OPENAI_API_KEY": "sk-test"},
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_graph_e2e_demo_with_planted_faults(run_dir: Path, tmp_path: Path, method: str) -> None:
    # the demo records plus one with an unmapped label and one broken line
    records = DEMO.read_text(encoding="utf-8").splitlines()
    odd = json.loads(records[7])
    odd.update(id="odd-label", label="未知のラベル")
    english = {**odd, "id": "wrong-lang", "lang": "en", "label": None}
    records += [
        json.dumps(odd, ensure_ascii=False),
        '{"id": "broken", "lang": "ja"',
        json.dumps(english, ensure_ascii=False),
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(records) + "\n", encoding="utf-8")

    handler = RecordedTranslator(
        plants={k: fn for k, (_, fn) in PLANTS.items()}, always_bad=ALWAYS_BAD
    )
    # enforce_json_mention=False until the json_mode prompt says JSON (agents engineer)
    with LocalOpenAIServer(handler, enforce_json_mention=False) as server:
        rc = run_cli(
            ["--input", str(data), "--source", "ja", "--target", "en", "zh", "--out",
             str(run_dir), "--method", method, "--concurrency", "4"],
            server.base_url,
        )
        requests = list(server.requests)
    assert rc == 0

    for lang in ("en", "zh"):
        accepted = read(run_dir / lang / "accepted.jsonl")
        rejected = read(run_dir / lang / "rejected.jsonl")
        acc_ids = [r["meta"]["source_id"] for r in accepted]
        rej_ids = [r["key"] for r in rejected]
        # every input record ends up in exactly one of the two files
        assert sorted(acc_ids + rej_ids) == sorted([*DEMO_IDS, "odd-label", "line:32", "wrong-lang"])
        assert len(set(acc_ids + rej_ids)) == len(acc_ids + rej_ids)
        for rec in accepted:
            assert rec["lang"] == lang
            for span in rec["spans"]:
                assert rec["text"][span["start"] : span["end"]] == span["text"]
        by_id = {r["meta"]["source_id"]: r for r in accepted}
        for (rid, target), (code, _) in PLANTS.items():
            if target != lang:
                continue
            assert rid in by_id, f"{rid}/{target} planted {code} was not repaired"
            assert by_id[rid]["meta"]["attempts"] == 2
            assert code in by_id[rid]["meta"]["history"][0]
        rejected_by = {r["key"]: r for r in rejected}
        assert rejected_by["odd-label"]["reasons"] == ["label_unmapped"]
        assert rejected_by["line:32"]["reasons"] == ["invalid_input"]
        assert "in.jsonl:32" in rejected_by["line:32"]["findings"][0]["message"]
        assert "not in the source language 'ja'" in rejected_by["wrong-lang"]["findings"][0]["message"]
    bad = {r["key"]: r for r in read(run_dir / "en" / "rejected.jsonl")}["stockmark-82811"]
    assert bad["attempts"] == 3 and "residue" in bad["reasons"]
    assert bad["draft"] is not None
    # labels come from the glossary: no LLM call was spent on the record with the odd label
    assert not any("odd-label" in json.dumps(r.raw, ensure_ascii=False) for r in requests)

    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["en"] == {"accepted": 29, "rejected": 4}
    assert report["counts"]["zh"] == {"accepted": 30, "rejected": 3}
    assert report["findings"]["residue"] >= 4  # 1 planted + 3 attempts of the always-bad one
    assert report["attempts"]["2"] == len(PLANTS)
    # 30 records x 2 targets, +1 retry per plant, +2 retries of the always-bad record; its
    # third attempt would repeat the second's messages, so the feedback is reworded (a real
    # call, never a cache hit); one more request: the endpoint probe at start-up
    llm = report["llm"]
    assert llm["calls"] == len(requests) - 1
    assert (llm["calls"], llm["cache_hits"]) == (60 + len(PLANTS) + 2, 0)
    assert report["cross_target"]["split"] == 1  # stockmark-82811: zh accepted, en rejected


def test_graph_e2e_rerun_is_free_and_changes_nothing(run_dir: Path) -> None:
    handler = RecordedTranslator()
    args = ["--input", str(DEMO), "--source", "ja", "--target", "en", "--out", str(run_dir)]
    with LocalOpenAIServer(handler) as server:
        assert run_cli(args, server.base_url) == 0
        first = (run_dir / "en" / "accepted.jsonl").read_bytes()
        n_requests = len(server.requests)
        assert run_cli(args, server.base_url) == 0
        assert len(server.requests) == n_requests  # nothing left to do
        assert (run_dir / "en" / "accepted.jsonl").read_bytes() == first
        # a third run in the same process, new out dir: real requests again (a client cached
        # on the first run's closed event loop would fail here)
        other = run_dir.parent / "other"
        assert run_cli([*args[:-1], str(other)], server.base_url) == 0
        assert len(server.requests) == 2 * n_requests
    assert len(read(run_dir / "en" / "accepted.jsonl")) == 30
    assert len(read(other / "en" / "accepted.jsonl")) == 30


def test_graph_e2e_no_endpoint_says_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["--input", str(DEMO), "--target", "en", "--out", str(tmp_path / "o"), "--no-progress"],
        environ={},
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "OPENAI_API_KEY" in err and "--base-url" in err and "--replay" in err


def test_graph_e2e_draw_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--draw"]) == 0
    out = capsys.readouterr().out
    for node in ("translate", "align", "verify", "review", "__end__"):
        assert node in out
    assert "graph TD" in out or "flowchart" in out
