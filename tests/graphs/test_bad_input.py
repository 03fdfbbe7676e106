"""Bad input costs nothing: every bad line is rejected with its file, line and reason before
any LLM call, and the good records around it are translated (real CLI, real HTTP)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from replay_server.server import LocalOpenAIServer
from tests.conftest import read_jsonl, run_translate
from tests.graphs.test_loose_answers import RECORDS, LooseHandler

# (kind, the raw bytes of the bad line, what its rejection reason must say)
GOOD = read_jsonl(RECORDS)[:6]


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def bad_lines() -> list[tuple[str, bytes, str]]:
    base = GOOD[0]
    english = {**GOOD[1], "id": "english-1", "lang": "en"}
    huge = {**GOOD[2], "id": "huge-1", "text": GOOD[2]["text"] + "あ" * 1_000_000}
    no_text = {k: v for k, v in {**base, "id": "no-text"}.items() if k != "text"}
    bad_span = {**base, "id": "bad-span", "spans": [{**base["spans"][0], "end": 999}]}
    return [
        (
            "invalid_utf8",
            _line({**GOOD[3], "id": "latin1"}).replace("の".encode(), b"\xe9\xff"),
            "not valid UTF-8",
        ),
        ("invalid_json", b'{"id": "cut", "lang": "ja", "text": "abc', "invalid JSON"),
        ("not_object", b'["a", "list"]', "expected a JSON object"),
        ("missing_field", _line(no_text), "missing field"),
        ("schema", _line(bad_span), "spans[0]"),
        ("duplicate_id", _line(base), "duplicate id"),
        ("wrong_language", _line(english), "not in the source language 'ja'"),
        ("too_long", _line(huge), "more than the limit of 1000"),
    ]


def write_mixed(path: Path) -> tuple[list[str], dict[int, tuple[str, str]]]:
    """A BOM, good records and one bad line of every kind between them, a blank line."""
    good_ids = [g["id"] for g in GOOD]
    lines: list[bytes] = []
    expected: dict[int, tuple[str, str]] = {}
    bads = bad_lines()
    for i, rec in enumerate(GOOD):
        lines.append(_line(rec))
        if i < len(bads):
            kind, raw, reason = bads[i]
            lines.append(raw)
            expected[len(lines)] = (kind, reason)
    for kind, raw, reason in bads[len(GOOD) :]:
        lines.append(raw)
        expected[len(lines)] = (kind, reason)
    lines.insert(3, b"   ")  # blank: skipped, still counted as a line
    expected = {(n + 1 if n >= 4 else n): v for n, v in expected.items()}
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    return good_ids, expected


def run_mixed(tmp_path: Path) -> dict[str, Any]:
    data = tmp_path / "mixed.jsonl"
    good_ids, expected = write_mixed(data)
    out = tmp_path / "out"
    with LocalOpenAIServer(LooseHandler()) as server:
        rc = run_translate(
            [
                "--input",
                str(data),
                "--source",
                "ja",
                "--target",
                "en",
                "zh",
                "--out",
                str(out),
                "--method",
                "json_schema",
            ],
            server.base_url,
        )
        requests = list(server.requests)
    rows: dict[str, list[dict[str, Any]]] = {}
    for lang in ("en", "zh"):
        rows[f"{lang}/accepted"] = read_jsonl(out / lang / "accepted.jsonl")
        rows[f"{lang}/rejected"] = read_jsonl(out / lang / "rejected.jsonl")
    return {
        "rc": rc,
        "good": good_ids,
        "expected": expected,
        "requests": requests,
        "rows": rows,
        "path": data,
    }


def test_bad_input_mixed_file_every_bad_line_rejected_with_line(tmp_path: Path) -> None:
    got = run_mixed(tmp_path)
    assert got["rc"] == 0
    for lang in ("en", "zh"):
        accepted = [r["meta"]["source_id"] for r in got["rows"][f"{lang}/accepted"]]
        assert sorted(accepted) == sorted(got["good"])
        rejected = got["rows"][f"{lang}/rejected"]
        by_line = {r["findings"][0]["data"]["line"]: r for r in rejected}
        assert len(rejected) == len(got["expected"])
        for line, (kind, reason) in got["expected"].items():
            row = by_line[line]
            message = row["findings"][0]["message"]
            assert message.startswith(f"{got['path']}:{line}"), (kind, message)
            assert reason in message, (kind, message)
            assert row["reasons"] == ["invalid_input"] and row["attempts"] == 0
    # no LLM call for any bad line: one request per good pair, plus the probe
    assert len(got["requests"]) == 2 * len(got["good"]) + 1
    assert not any(
        "huge-1" in json.dumps(r.raw) or "english-1" in json.dumps(r.raw) for r in got["requests"]
    )


def test_bad_input_no_valid_record_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    only_bad = tmp_path / "bad.jsonl"
    english = {**GOOD[0], "lang": "en"}
    only_bad.write_bytes(_line(english) + b'\n{"id": "x"\n\xff\xfe\n')
    with LocalOpenAIServer(LooseHandler()) as server:
        for path in (empty, only_bad):
            capsys.readouterr()
            rc = run_translate(
                [
                    "--input",
                    str(path),
                    "--source",
                    "ja",
                    "--target",
                    "en",
                    "--out",
                    str(tmp_path / path.stem),
                ],
                server.base_url,
            )
            err = capsys.readouterr().err.strip()
            assert rc == 1
            assert err.count("\n") == 0 and err.startswith("error: no valid record in")
            assert "Traceback" not in err
        assert server.requests == []  # not even the probe
    assert len(read_jsonl(tmp_path / "bad" / "en" / "rejected.jsonl")) == 3


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_bad_input_missing_file_or_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    path = tmp_path / "nope.jsonl" if what == "missing" else tmp_path
    rc = run_translate(
        ["--input", str(path), "--source", "ja", "--target", "en", "--out", str(tmp_path / "out")],
        "http://127.0.0.1:9/v1",
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("error: input") and str(path) in err


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = run_mixed(Path(tmp))
    print(
        f"exit {got['rc']}; LLM requests {len(got['requests'])} "
        f"(= {len(got['good'])} good records x 2 targets + 1 probe)"
    )
    print("| line | kind | rejected (en, zh) | reason (en) |")
    print("|---|---|---|---|")
    rejected = {
        lang: {r["findings"][0]["data"]["line"]: r for r in got["rows"][f"{lang}/rejected"]}
        for lang in ("en", "zh")
    }
    for line, (kind, _) in sorted(got["expected"].items()):
        flags = ", ".join("yes" if line in rejected[lang] else "NO" for lang in ("en", "zh"))
        message = rejected["en"].get(line, {}).get("findings", [{}])[0].get("message", "")
        print(f"| {line} | {kind} | {flags} | {message.split(': ', 1)[-1][:90]} |")
    for lang in ("en", "zh"):
        ids = sorted(r["meta"]["source_id"] for r in got["rows"][f"{lang}/accepted"])
        print(f"{lang}: {len(ids)}/{len(got['good'])} good records accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
